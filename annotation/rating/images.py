"""The rate page's image URLs (#16 finding 11): opaque, per rater and per serving
(annotation.rating.imagetoken), served by views.rate.rate_image to that rater only.

`rate_image_url` names an image for the rater's page; `rate_image_open` reads a token back (None
when it is not one of this rater's in this project). The key comes from SECRET_KEY, the project
and the rater; it is derived once per process and rater.
"""

from __future__ import annotations

import functools

from django.conf import settings
from django.urls import reverse

from . import imagetoken
from .imagetoken import CALIBRATION, HISTORY, NEW, RETEST

__all__ = ["CALIBRATION", "HISTORY", "NEW", "RETEST", "rate_image_open", "rate_image_url"]


@functools.lru_cache(maxsize=4096)
def _key(secret: str, project_id: int, rater_id: int) -> bytes:
    return imagetoken.rater_key(secret.encode(), project_id=project_id, rater_id=rater_id)


@functools.lru_cache(maxsize=256)
def _prefix(slug: str) -> str:
    placeholder = "A" * 22
    return reverse("annotation:rate-image", args=[slug, placeholder])[:-len(placeholder) - 1]


def rate_image_url(*, project_id: int, slug: str, rater_id: int, image_id: int, serving: int) -> str:
    """The URL of `image_id` on the page of rater `rater_id`, served as `serving` (imagetoken.NEW,
    RETEST, HISTORY or CALIBRATION)."""
    token = imagetoken.token_make(_key(settings.SECRET_KEY, project_id, rater_id), image_id, serving)
    return f"{_prefix(slug)}{token}/"


def rate_image_open(*, project_id: int, rater_id: int, token: str) -> tuple[int, int] | None:
    """(image id, serving) of one of this rater's tokens in this project, else None."""
    return imagetoken.token_open(_key(settings.SECRET_KEY, project_id, rater_id), token)
