"""Shared fixtures: real PostgreSQL/Redis (from `make test`), Debian's Chromium for Playwright."""

from __future__ import annotations

import logging
import os
import shutil

import pytest

# Playwright's sync API runs an event loop in the test thread; Django's ORM refuses to run there
# unless told this is safe (it is: the test thread owns its connection).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-default-apps", "--disable-extensions"]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):  # type: ignore[no-untyped-def]
    # Playwright cannot download its own browser here: use Debian's Chromium.
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(autouse=True)
def _clear_cache():  # type: ignore[no-untyped-def]
    """Each test starts with an empty cache (login throttling counters live there)."""
    from django.core.cache import cache

    from core.cache import clear_process_memos

    cache.clear()
    clear_process_memos()
    yield


@pytest.fixture
def celery_worker_real(transactional_db):  # type: ignore[no-untyped-def]
    """An in-process Celery worker on the real Redis broker, seeing the test database."""
    import celery.contrib.testing.tasks  # noqa: F401  registers celery.ping
    from celery.contrib.testing.worker import start_worker

    from config.celery import app

    app.conf.task_always_eager = False
    root_level = logging.getLogger().level  # the test worker sets the root logger to ERROR: put it back after
    with start_worker(app, pool="solo", perform_ping_check=True, shutdown_timeout=10,
                      queues=["default", "agreement", "releases", "gpu"]) as worker:
        yield worker
    logging.getLogger().setLevel(root_level)
