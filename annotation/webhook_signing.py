"""Signed webhook bodies and the address rule for their targets. PURE: no Django.

Every delivery is a POST of a JSON body with:
- `X-Emorate-Signature: sha256=<hex>`: HMAC-SHA256 of the raw body with the webhook's secret;
- `X-Emorate-Timestamp: <unix seconds>`: also inside the signed body as `sent_at`, so a receiver
  that checks the signature, that the two agree, and that the time is recent (a few minutes)
  refuses a replayed delivery;
- `X-Emorate-Delivery: <uuid>`: the same on every retry of one delivery (receivers drop duplicates);
- `X-Emorate-Event: <event name>`.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

SIGNATURE_HEADER = "X-Emorate-Signature"
TIMESTAMP_HEADER = "X-Emorate-Timestamp"
DELIVERY_HEADER = "X-Emorate-Delivery"
EVENT_HEADER = "X-Emorate-Event"


def signature(secret: str, body: bytes) -> str:
    """The X-Emorate-Signature value of `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_valid(secret: str, body: bytes, header: str) -> bool:
    """Constant-time check of a received X-Emorate-Signature (for receivers and tests)."""
    return hmac.compare_digest(signature(secret, body), header or "")


def address_refusal(address: str) -> str | None:
    """Why a webhook may not be sent to this IP address (None: a public address). Loopback, private,
    link-local (cloud metadata at 169.254.169.254), multicast, reserved and unspecified addresses
    are internal: a lead must not be able to make the server call them (SSRF)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"{address!r} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for kind, hit in (("unspecified", ip.is_unspecified), ("loopback", ip.is_loopback),
                      ("link-local", ip.is_link_local), ("multicast", ip.is_multicast),
                      ("reserved", ip.is_reserved), ("private", ip.is_private)):
        if hit:
            return f"{ip} is a {kind} address"
    return None
