#!/bin/sh
# A Celery worker (docker-compose.yml `worker`, and `gpu-worker` with EMORATE_WORKER_QUEUES=gpu).
set -eu
python -m core.preflight --wait "${EMORATE_PREFLIGHT_WAIT:-30}"
exec celery -A config worker --queues "${EMORATE_WORKER_QUEUES:-default,agreement,releases}" \
  --concurrency "${EMORATE_WORKER_CONCURRENCY:-2}" --loglevel INFO
