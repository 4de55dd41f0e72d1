#!/usr/bin/env bash
# Run a command with throwaway PostgreSQL + Redis (DATABASE_URL / REDIS_URL exported); both are
# stopped afterwards, also on failure. Used by `make bench-*`.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/services.sh
trap stop_services EXIT
start_services
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-config.settings.test}"
"$@"
