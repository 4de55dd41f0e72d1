#!/bin/sh
# One-shot: apply the database migrations (docker-compose.yml `migrate`; web waits for it to finish).
set -eu
# The bucket first (a self-hosted S3 server starts empty), then the checks, then the schema.
python manage.py storage_init --wait "${EMORATE_PREFLIGHT_WAIT:-60}"
python -m core.preflight --wait "${EMORATE_PREFLIGHT_WAIT:-60}"
exec python manage.py migrate --noinput
