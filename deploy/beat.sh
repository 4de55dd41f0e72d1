#!/bin/sh
# Celery beat: the periodic jobs (CELERY_BEAT_SCHEDULE in config/settings/base.py). Its schedule
# file lives in a writable place (the image's /app is read-only to the app user).
set -eu
python -m core.preflight --wait "${EMORATE_PREFLIGHT_WAIT:-30}"
exec celery -A config beat --loglevel INFO --schedule "${EMORATE_BEAT_SCHEDULE_FILE:-/tmp/celerybeat-schedule}"
