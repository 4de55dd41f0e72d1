"""Release files: helpers (part of annotation.exporters; contracts in its docstring). PURE."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from annotation.taxonomy import EMOTIONS, emotion_slug

from .records import BASE_COLUMNS, SPLIT_ORDER, ImageRow


def whole_array(col: Any) -> Any:
    """A pyarrow ChunkedArray as one Array: its only chunk as it is (#21: combine_chunks copies even
    one chunk, and the image columns of a million images are hundreds of MB), else the chunks combined."""
    return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()


def pseudonym(rater_id: int, key: bytes) -> str:
    """Stable pseudonym of a rater: ``rater_`` + 10 hex digits of HMAC-SHA256(key, str(rater_id)).

    The key is a secret of the release series (never published): with it the same rater keeps one
    pseudonym across releases; without it the ids cannot be recovered by trying small integers.
    """
    return "rater_" + hmac.new(key, str(int(rater_id)).encode(), hashlib.sha256).hexdigest()[:10]


def _slugs(emotions: Sequence[str]) -> list[str]:
    slugs = [emotion_slug(e) for e in emotions]
    if len(set(slugs)) != len(slugs):
        raise ValueError("two emotions share a column slug")
    return slugs


def image_columns(emotions: Sequence[str] = EMOTIONS, *, binary: bool = False, soft: bool = False) -> list[str]:
    """Column names of the per-image tables, in order (see the module docstring); ``soft``: with the
    measurement model's soft labels (intensity mode)."""
    cols = list(BASE_COLUMNS)
    if binary:
        for s in _slugs(emotions):
            cols += [f"{s}__label", f"{s}__yes", f"{s}__no"]
    else:
        cols += ["n_ratings", "disputed"]
        for s in _slugs(emotions):
            cols += [f"{s}__consensus", f"{s}__spread", f"{s}__disputed"]
            if soft:
                cols += [f"{s}__p_present", f"{s}__expected_intensity", f"{s}__sd"]
    return cols


def _split_names(assignment: Mapping[str, str]) -> list[str]:
    present = set(assignment.values())
    return [s for s in SPLIT_ORDER if s in present] + sorted(present - set(SPLIT_ORDER))


def _images_by_id(images: Iterable[ImageRow]) -> dict[int, ImageRow]:
    ims = list(images)
    out = {im.image_id: im for im in ims}
    if len(out) == len(ims) and len({im.sha256 for im in ims}) == len(ims) and all(len(im.sha256) == 64 for im in ims):
        return out
    out, seen = {}, set()  # something is wrong: name the first problem
    for im in ims:
        if im.image_id in out:
            raise ValueError(f"image id {im.image_id} appears twice")
        if im.sha256 in seen:
            raise ValueError(f"sha256 {im.sha256} appears twice")
        if len(im.sha256) != 64:
            raise ValueError(f"image {im.image_id} has no valid sha256 ({im.sha256!r})")
        seen.add(im.sha256)
        out[im.image_id] = im
    return out
