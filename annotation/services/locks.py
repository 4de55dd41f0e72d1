"""Advisory locks: one worker at a time per long job, released automatically if the worker dies.

A task redelivered while its first run is still alive (the broker's visibility timeout passed)
finds the lock taken and leaves; a task redelivered after its worker died (its database session
ended, and with it the lock) takes the lock and redoes the job from scratch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection


def _key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextmanager
def job_lock(name: str) -> Iterator[bool]:
    """Yield True if this process holds the lock for `name`, False if another one does.

    PostgreSQL session-level advisory lock; on other databases (the demo) always True.
    """
    if connection.vendor != "postgresql":
        yield True
        return
    key = _key(name)
    with connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s)", [key])
        got = bool(cur.fetchone()[0])
    try:
        yield got
    finally:
        if got:
            with connection.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s)", [key])


def content_lock(name: str) -> None:
    """Hold the lock for `name` until the current transaction ends (PostgreSQL transaction-level
    advisory lock; waits for another holder). On other databases (the demo, one writer at a time)
    nothing. Call inside transaction.atomic()."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", [_key(name)])
