"""A Redis cache that degrades instead of failing when Redis is down.

The cache only holds what can be rebuilt (debounce keys, coverage counts, login-failure counters,
session copies written through to the database); ratings are always written to PostgreSQL in the
request. So when Redis restarts, requests go on: reads miss, writes are dropped, and a warning is
logged. Login throttling fails open for the length of the outage.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger("emorate.cache")
_DOWN = (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError, OSError)


def _degrade(name: str, default: Any) -> Any:
    def method(self: ResilientRedisCache, *args: Any, **kwargs: Any) -> Any:
        try:
            return getattr(RedisCache, name)(self, *args, **kwargs)
        except _DOWN as exc:
            log.warning("cache %s failed, Redis unavailable: %s", name, exc)
            return default() if callable(default) else default
    method.__name__ = name
    return method


class ReusingRedisCacheClient(RedisCacheClient):
    """Django's client builds a new `redis.Redis` for every operation (about half a millisecond of
    CPU with redis-py 5+, which sets up its response callbacks each time); one client per
    connection pool is thread-safe and enough."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        # _get_connection_pool and _client are Django's own (private, so not in django-stubs)
        pool = self._get_connection_pool(write)  # type: ignore[attr-defined]
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)  # type: ignore[attr-defined]
        return client


class ResilientRedisCache(RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = ReusingRedisCacheClient

    get = _degrade("get", None)
    get_many = _degrade("get_many", dict)
    set = _degrade("set", None)
    set_many = _degrade("set_many", list)
    add = _degrade("add", False)
    touch = _degrade("touch", False)
    delete = _degrade("delete", False)
    delete_many = _degrade("delete_many", None)
    has_key = _degrade("has_key", False)
    incr = _degrade("incr", 0)
    clear = _degrade("clear", None)


class ProcessMemo:
    """A small per-process memo with a time limit, in front of the shared cache for values every
    request of the rate page reads and that may be a few seconds stale (the project's coverage; the
    agreement debounce). At hundreds of submits a second, each such Redis round trip was a visible
    share of a submit's CPU. Thread-safe for what it does (single dict operations)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._data: dict[Any, tuple[float, Any]] = {}
        _MEMOS.append(self)

    def get(self, key: Any, now: float | None = None) -> Any:
        """The value set less than `seconds` ago, else None."""
        found = self._data.get(key)
        if found is None or found[0] <= (time.monotonic() if now is None else now):
            return None
        return found[1]

    def set(self, key: Any, value: Any, now: float | None = None) -> None:
        if len(self._data) > 10_000:  # keys are project ids; never let a long-lived worker grow
            self._data.clear()
        self._data[key] = ((time.monotonic() if now is None else now) + self.seconds, value)

    def clear(self) -> None:
        self._data.clear()


_MEMOS: list[ProcessMemo] = []


def clear_process_memos() -> None:
    """Forget every ProcessMemo of this process (tests clear them with the cache)."""
    for memo in _MEMOS:
        memo.clear()
