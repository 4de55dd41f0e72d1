#!/usr/bin/env bash
# `make test`: start throwaway PostgreSQL + Redis, run the whole pytest suite against them, stop
# them (also on failure or Ctrl-C). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/services.sh
trap stop_services EXIT
start_services
start_s3
export DJANGO_SETTINGS_MODULE=config.settings.test
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 DJANGO_ALLOW_ASYNC_UNSAFE=true
set +e
.venv/bin/python -m pytest -p no:cacheprovider "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then echo "pytest collected no tests"; rc=1; fi
exit "$rc"
