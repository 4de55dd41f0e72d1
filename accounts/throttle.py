"""One throttle for every way in: password login (site and admin, through the authentication
backend), API token use and creation, the single sign-on callback and password reset.

Each attempt is counted before it is judged (`cache.add` then `cache.incr`, both atomic in Redis),
so N parallel guesses take N slots and only the first `limit` get through; a successful attempt
gives its slot back. Three counters per attempt, each with its own limit, in one fixed window:

- the account from one client address (the familiar lockout: `LOGIN_MAX_FAILURES`);
- the account from anywhere (caps guessing spread over many addresses: `EMORATE_THROTTLE_ACCOUNT_MAX`);
- the client address against any account (caps password spraying: `EMORATE_THROTTLE_CLIENT_MAX`).

Accounts are keyed on the user's id when the identifier names one, else on the canonical form of
the identifier (NFKC + casefold), so Unicode case variants of one email share a counter. The client
address is read through the trusted proxies configured in `EMORATE_TRUSTED_PROXIES` (never the
proxy's own address, which would lock every user out at once); IPv6 clients count per /64.

When Redis is down the counters cannot be kept and attempts are let through (logged by the cache).
"""

from __future__ import annotations

import hashlib
import ipaddress
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest


class Throttled(Exception):
    """Too many attempts; `minutes` says how long the window lasts."""

    def __init__(self, minutes: int) -> None:
        self.minutes = minutes
        super().__init__(f"Too many attempts. Try again in {minutes} minutes.")


def canonical_email(raw: str) -> str:
    """The one spelling of an email address used for storage, lookup and throttle keys."""
    return unicodedata.normalize("NFKC", raw or "").strip().casefold()


@lru_cache(maxsize=8)
def _networks(spec: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(s, strict=False) for s in spec)


def _parse(addr: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(addr.strip().strip("[]"))
    except ValueError:
        return None


def _trusted(addr: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> bool:
    return addr is not None and any(addr in net for net in _networks(tuple(settings.EMORATE_TRUSTED_PROXIES)))


def client_address(request: HttpRequest | None) -> str:
    """The client's address: REMOTE_ADDR, unless that is a trusted proxy; then the right-most
    X-Forwarded-For hop that is not a trusted proxy (the hops left of it are client-supplied)."""
    if request is None:
        return "-"
    remote = str(request.META.get("REMOTE_ADDR", "") or "-")
    if not _trusted(_parse(remote)):
        return remote
    hops = [h.strip() for h in str(request.META.get("HTTP_X_FORWARDED_FOR", "")).split(",") if h.strip()]
    for hop in reversed(hops):
        parsed = _parse(hop)
        if parsed is None:
            return hop[:64]  # garbage from the client side: count it as its own (odd) client
        if not _trusted(parsed):
            return str(parsed)
    return remote


def _client_bucket(client: str) -> str:
    parsed = _parse(client)
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed.ipv4_mapped if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped else client)


def _key(*parts: str) -> str:
    return "throttle:" + hashlib.sha256("|".join(parts).encode()).hexdigest()[:40]


def _count(key: str, window: int) -> int:
    """Add one to the counter and return the new value, atomically."""
    cache.add(key, 0, timeout=window)
    try:
        return int(cache.incr(key))
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=window)
        return 1


@dataclass
class Attempt:
    """A counted attempt; call `succeeded()` when it turned out to be legitimate."""

    keys: list[str] = field(default_factory=list)
    pair_key: str = ""

    def succeeded(self) -> None:
        for key in self.keys:
            try:
                cache.decr(key)
            except ValueError:  # the window ended meanwhile
                pass
        if self.pair_key:
            cache.delete(self.pair_key)


def attempt(*, way: str, account: str, client: str) -> Attempt:
    """Count one attempt of kind `way` (login, reset, token, sso) for `account` from `client`.

    `account` is a user id ("user:<pk>") or any identifier (canonicalised here); empty when the way
    names no account (then only the client counter applies). Raises Throttled when a limit is passed;
    the refused attempt stays counted.
    """
    window = settings.LOGIN_LOCKOUT_SECONDS
    if account and not account.startswith("user:"):
        account = "id:" + canonical_email(account)
    bucket = _client_bucket(client)
    limits: list[tuple[str, int]] = [(_key(way, "client", bucket), settings.EMORATE_THROTTLE_CLIENT_MAX)]
    pair_key = ""
    if account:
        pair_key = _key(way, "pair", account, bucket)
        limits += [(pair_key, settings.LOGIN_MAX_FAILURES), (_key(way, "account", account), settings.EMORATE_THROTTLE_ACCOUNT_MAX)]
    counted = Attempt(pair_key=pair_key)
    over = False
    for key, limit in limits:
        n = _count(key, window)
        counted.keys.append(key)
        over = over or n > limit
    if over:
        raise Throttled(max(1, window // 60))
    return counted
