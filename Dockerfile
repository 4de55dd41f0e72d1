# One image for web, worker and beat; the gpu-worker builds with the scoring extra.
FROM python:3.11-slim
ARG EXTRAS=""
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY config ./config
COPY accounts ./accounts
COPY annotation ./annotation
RUN pip install --no-cache-dir ".${EXTRAS:+[$EXTRAS]}"
COPY . .
RUN useradd --create-home emorate && mkdir -p /data/media /data/static && chown -R emorate /data
USER emorate
EXPOSE 8000
