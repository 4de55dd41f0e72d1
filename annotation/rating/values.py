"""PURE: the rating's values and the refusals of the rate flow (no Django here).

`values_parse` validates what a rater (or an import, or a calibration reference) submitted
against the project's scale and returns the stored vector; the RatingError family names every
refusal of the rate flow with its HTTP status. Nothing is stored by anything in this module.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from annotation import taxonomy


class RatingError(ValueError):
    """A refused request; `status` is the HTTP status to answer with. Nothing was stored."""

    status = 400


class InvalidValues(RatingError):
    status = 400


class ForeignAssignment(RatingError):
    status = 403


class AssignmentNotFound(RatingError):
    status = 404


class AssignmentConflict(RatingError):
    status = 409


RawValues = Mapping[str, Any] | Sequence[Any]


def _int_value(raw: Any, scale_max: int, what: str) -> int:
    if isinstance(raw, bool):
        return int(raw)
    if isinstance(raw, int):
        value = raw
    else:
        try:
            value = taxonomy.parse_value(str(raw), scale_max)
        except ValueError as exc:
            raise InvalidValues(f"{what}: {exc}") from None
    if not 0 <= value <= scale_max:
        raise InvalidValues(f"{what}: value {value} is off the scale (allowed: 0..{scale_max})")
    return value


class ScaleOwner(Protocol):
    """What parsing needs of a project (annotation.models.Project has both)."""

    @property
    def scale_max(self) -> int: ...

    @property
    def is_binary(self) -> bool: ...


def values_parse(*, project: ScaleOwner, raw: RawValues, emotion: int | None = None) -> list[int]:
    """Validate submitted values and return the stored vector.

    Intensity: a mapping of every taxonomy emotion name (exact name or known alias) to 0..scale_max,
    or a sequence of N_EMOTIONS values in taxonomy order. Binary: the one answer, as a mapping
    {emotion name: 0|1} or a one-element sequence. Raises InvalidValues naming unknown, missing or
    duplicate emotions and off-scale values.
    """
    tax = taxonomy.load()
    if project.is_binary:
        if emotion is None:
            raise InvalidValues("binary rating without an emotion")
        if isinstance(raw, Mapping):
            unknown = [k for k in raw if _index_or_none(tax, k) != emotion]
            if unknown or len(raw) != 1:
                raise InvalidValues(f"expected exactly one answer, for {tax.emotions[emotion].name!r}; "
                                    f"got {sorted(map(str, raw))}")
            raw = list(raw.values())
        if isinstance(raw, str) or len(raw) != 1:
            raise InvalidValues("expected exactly one answer (0 = no, 1 = yes)")
        return [_int_value(raw[0], 1, tax.emotions[emotion].name)]
    n = taxonomy.N_EMOTIONS
    if isinstance(raw, Mapping):
        out: list[int | None] = [None] * n
        unknown, dupes = [], []
        for key, v in raw.items():
            idx = _index_or_none(tax, str(key))
            if idx is None:
                unknown.append(str(key))
                continue
            if out[idx] is not None:
                dupes.append(str(key))
            out[idx] = _int_value(v, project.scale_max, tax.emotions[idx].name)
        if unknown:
            raise InvalidValues(f"unknown emotion(s): {', '.join(repr(u) for u in unknown)}")
        if dupes:
            raise InvalidValues(f"emotion(s) given twice: {', '.join(repr(d) for d in dupes)}")
        missing = [tax.emotions[i].name for i, v in enumerate(out) if v is None]
        if missing:
            raise InvalidValues(f"missing emotion(s): {', '.join(repr(m) for m in missing)} "
                                f"(every one of the {n} emotions needs a value; 0 = not present)")
        return [int(v) for v in out if v is not None]
    if isinstance(raw, str) or len(raw) != n:
        raise InvalidValues(f"expected {n} values in taxonomy order, got {len(raw)}")
    return [_int_value(v, project.scale_max, tax.emotions[i].name) for i, v in enumerate(raw)]


@functools.cache
def _exact_indexes() -> dict[str, int]:
    """{exact emotion name: index}: what the rate page sends, looked up without normalising."""
    return {e.name: e.index for e in taxonomy.load().emotions}


def _index_or_none(tax: taxonomy.Taxonomy, name: str) -> int | None:
    idx = _exact_indexes().get(name)
    if idx is not None:
        return idx
    try:
        return tax.index_of(name)  # aliases, other spellings
    except KeyError:
        return None


def active_seconds_parse(active_seconds: Any, spent: float) -> float | None:
    """The page's active time in seconds (None when not sent), never more than `spent`; InvalidValues
    for anything but a non-negative number."""
    if active_seconds in (None, ""):
        return None
    shown = repr(active_seconds)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."  # a 400-digit number is not echoed back
    try:
        value = float(active_seconds)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int beyond float's range (#16)
        raise InvalidValues(f"active_seconds {shown} is not a number in range") from None
    if not math.isfinite(value) or value < 0:
        raise InvalidValues(f"active_seconds {shown} must be a non-negative number")
    return round(min(value, spent), 3)  # never more than the lease lasted
