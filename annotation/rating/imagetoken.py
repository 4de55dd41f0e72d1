"""Opaque image names for the rate page (#16 finding 11). PURE (standard library only).

A rater's page never names an image by its id or its content hash: a test-retest repeat would show
the same URL as the rater's first rating of it (their history links it), and the hash is the join
key into published releases. Instead each image is named by a token: the image id and a *serving*
number (0 = served as new work, 1 = served again as a test-retest repeat, 2 = the rater's own
history, 3 = calibration), enciphered with a key that belongs to one rater in one project.

So the same image gets unrelated tokens as new work, as a repeat and in the history; another
rater's token opens nothing for you; and a token is stable (the browser's cache and the page's
prefetch hint work as before). The cipher is a 4-round Feistel network over a 128-bit block
(Luby-Rackoff: a strong pseudo-random permutation) with HMAC-SHA256 as round function; the block
holds 64 bits of image id, 8 bits of serving and 56 zero bits that `token_open` checks, so a
forged or foreign token is refused (chance 2^-56).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac

NEW, RETEST, HISTORY, CALIBRATION = 0, 1, 2, 3
_ROUNDS = 4
_CHECK = bytes(7)


def rater_key(secret: bytes, *, project_id: int, rater_id: int) -> bytes:
    """The key of one rater in one project, derived from the deployment's secret."""
    return hmac.new(secret, f"emorate/rate-image/{int(project_id)}/{int(rater_id)}".encode(), hashlib.sha256).digest()


@functools.lru_cache(maxsize=4096)
def _mac(key: bytes) -> hmac.HMAC:
    """The keyed HMAC state, computed once per key (copying it is cheaper than a new HMAC)."""
    return hmac.new(key, digestmod=hashlib.sha256)


def _f(key: bytes, r: int, half: bytes) -> bytes:
    h = _mac(key).copy()
    h.update(bytes([r]) + half)
    return h.digest()[:8]


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def token_make(key: bytes, image_id: int, serving: int) -> str:
    """The token naming `image_id` served as `serving` (0..255) to the key's rater."""
    if not 0 <= serving <= 255 or not 0 <= image_id < 1 << 64:
        raise ValueError("image id or serving out of range")
    block = int(image_id).to_bytes(8, "big") + bytes([serving]) + _CHECK
    left, right = block[:8], block[8:]
    for r in range(_ROUNDS):
        left, right = right, _xor(left, _f(key, r, right))
    return base64.urlsafe_b64encode(left + right).rstrip(b"=").decode()


def token_open(key: bytes, token: str) -> tuple[int, int] | None:
    """(image id, serving) of a token made with `key`; None for anything else."""
    if len(token) != 22:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "==")
    except ValueError:
        return None
    if len(raw) != 16 or base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != token:
        return None
    left, right = raw[:8], raw[8:]
    for r in reversed(range(_ROUNDS)):
        left, right = _xor(right, _f(key, r, left)), left
    block = left + right
    if block[9:] != _CHECK:
        return None
    return int.from_bytes(block[:8], "big"), block[8]
