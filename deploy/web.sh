#!/bin/sh
# The web service (docker-compose.yml `web`, tests/deploy/test_topology.py): check the configuration
# and the database, then gunicorn with config/gunicorn.conf.py. Static files were collected when the
# image was built (deploy/collectstatic.sh); migrations run in the `migrate` service (deploy/migrate.sh).
set -eu
python -m core.preflight --wait "${EMORATE_PREFLIGHT_WAIT:-30}"
exec gunicorn config.wsgi:application --config config/gunicorn.conf.py
