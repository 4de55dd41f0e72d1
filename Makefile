# emorate: `make demo` runs the demo, `make test` runs the whole suite on real servers.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP_FLAGS := -q --disable-pip-version-check $(if $(wildcard /opt/wheels),--find-links /opt/wheels)
# The tests also load tiny EmpathicInsight-Face models, so they need the scoring extra (CPU torch).
EXTRAS ?= dev,scoring
comma := ,
STAMP := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))
DEMO_ENV := DJANGO_DEBUG=1 DATABASE_URL= REDIS_URL=
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install demo-install system-deps test lint types check demo demo-setup prod-local bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# the grep drops pip's harmless notes about this machine's partial local package indexes
	$(VENV)/bin/pip install $(PIP_FLAGS) -e ".[$(EXTRAS)]" 2>&1 | { grep -v 'is ignored: it is neither' || true; }
	$(PY) -c "import django, rest_framework, celery, psycopg2, PIL, numpy, krippendorff"
	touch $@

install: $(STAMP)

# The demo needs the app alone: no torch, transformers, Playwright or test tools. A virtualenv that
# already has everything (after `make test`) serves the demo as it is.
BASE_STAMP := $(VENV)/.installed-base
$(BASE_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_FLAGS) -e . 2>&1 | { grep -v 'is ignored: it is neither' || true; }
	$(PY) -c "import django, rest_framework, celery, psycopg2, PIL, numpy, krippendorff"
	touch $@

demo-install:
	@if [ -f $(STAMP) ] && [ $(STAMP) -nt pyproject.toml ]; then echo "using the full virtualenv"; \
	else $(MAKE) --no-print-directory $(BASE_STAMP); fi

system-deps:
	bash .ci/system-deps.sh

test: system-deps install tests/oidc/node_modules tests/a11y/node_modules
	bash .ci/test.sh $(PYTEST_ARGS)

# The single sign-on tests run npm's oidc-provider (pinned in tests/oidc/package-lock.json).
tests/oidc/node_modules: tests/oidc/package-lock.json
	cd tests/oidc && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The accessibility tests inject npm's axe-core into every page (pinned in tests/a11y/package-lock.json).
tests/a11y/node_modules: tests/a11y/package-lock.json
	cd tests/a11y && npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint: install
	$(VENV)/bin/ruff check .

types: install
	$(VENV)/bin/mypy

check: lint types test

demo-setup: demo-install
	$(DEMO_ENV) $(PY) manage.py migrate --noinput -v0
	$(DEMO_ENV) $(PY) manage.py seed_demo

demo: demo-setup
	@echo "emorate demo: open http://$(HOST):$(PORT)/ (logins printed above; Ctrl-C stops)"
	$(DEMO_ENV) $(PY) manage.py runserver $(HOST):$(PORT)

# Production mode on this machine: PostgreSQL, Redis, gunicorn with config.settings.production, a
# worker, beat and Caddy terminating TLS (deploy/), the same topology tests/deploy/test_topology.py runs.
prod-local: system-deps install
	PORT=$(or $(PROD_PORT),8443) $(PY) -m deploy.topology

clean:
	rm -rf var/demo.sqlite3 var/media

# Benchmarks (not part of the test suite): `make bench-NAME` runs bench/NAME.py with its own
# PostgreSQL and Redis, e.g. `make bench-ratings_read_bench`.
bench-%: install
	.ci/with-services.sh $(PY) bench/$*.py
