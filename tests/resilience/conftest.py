"""Fixtures for fault tests: a dedicated Redis server we may kill (helpers: tests/support/processes.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.processes import RedisServer


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.stop()


