#!/bin/sh
# One-shot: apply the database migrations (docker-compose.yml `migrate`; web waits for it to finish).
set -eu
python -m core.preflight --wait "${EMORATE_PREFLIGHT_WAIT:-60}"
exec python manage.py migrate --noinput
