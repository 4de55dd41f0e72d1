# One image for web, worker, beat and the migrate job; the gpu-worker builds with the scoring extra.
# Each service's command is a script under deploy/, the same scripts tests/deploy/test_topology.py runs.
FROM python:3.11-slim
ARG EXTRAS=""
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=config.settings.production STATIC_ROOT=/app/staticfiles
WORKDIR /app
# postgresql-client: pg_dump/pg_restore for `manage.py backup` and `restore` (same major version as the server)
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 postgresql-client \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY config ./config
COPY core ./core
COPY accounts ./accounts
COPY annotation ./annotation
RUN pip install --no-cache-dir ".${EXTRAS:+[$EXTRAS]}"
COPY . .
# Static files are collected (hashed, compressed) once, here, not at every container start.
RUN sh deploy/collectstatic.sh
RUN useradd --create-home emorate && mkdir -p /data/media && chown -R emorate /data
USER emorate
EXPOSE 8000
CMD ["deploy/web.sh"]
