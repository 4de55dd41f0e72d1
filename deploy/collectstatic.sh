#!/bin/sh
# Build step (Dockerfile, and the topology test before it starts the web service): hashed and
# compressed static files into STATIC_ROOT, with the production settings. The key and the service
# addresses are placeholders: collectstatic signs nothing and contacts no service.
set -eu
DJANGO_SETTINGS_MODULE=config.settings.production \
DJANGO_SECRET_KEY="build-only-$(python -c 'import secrets; print(secrets.token_urlsafe(40))')" \
DJANGO_ALLOWED_HOSTS="${DJANGO_ALLOWED_HOSTS:-build.invalid}" \
DATABASE_URL="${DATABASE_URL:-postgres://build@build.invalid/build}" \
REDIS_URL="${REDIS_URL:-redis://build.invalid:6379/0}" \
  exec python manage.py collectstatic --noinput -v0
