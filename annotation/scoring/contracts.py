"""Contracts between the platform and any emotion scorer. PURE: no Django, no torch.

A *scorer* turns images into one vector of N_EMOTIONS floats each, in taxonomy order
(annotation.taxonomy.EMOTIONS), on the model's own scale (EmpathicInsight-Face: about 0..7, the
EmoNet-Face intensity scale). It is identified by a *name* (what it is, e.g.
"empathic-insight-face") and a *version* (which weights: the checksum of its files), and every
stored score carries both, so a score is stored once per image and model version.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from annotation.taxonomy import ALIASES, EMOTIONS, N_EMOTIONS, emotion_slug

DEFAULT_MODEL_NAME: Final = "empathic-insight-face"
# EmpathicInsight-Face predicts on the EmoNet-Face intensity scale 0..7.
MODEL_SCALE_MAX: Final = 7.0
# What a pushed or computed score may be: finite and within this range (a regression head can
# leave 0..7 a little; neutral-relative scores can be negative). Anything else is a bug upstream.
SCORE_MIN: Final = -7.0
SCORE_MAX: Final = 14.0
MAX_NAME_LENGTH: Final = 200
MAX_VERSION_LENGTH: Final = 64


class ScoringError(Exception):
    """Base class: the message says what is wrong and how to fix it."""


class ScoringNotConfigured(ScoringError):
    """No model folder is configured (settings.EMORATE_SCORING_MODEL_DIR / --model)."""


class ModelDirError(ScoringError):
    """The model folder is missing a file or holds something the loader cannot use."""


class ScoreValidationError(ScoringError):
    """Pushed scores were refused; `errors` names every bad item. Nothing was stored."""

    def __init__(self, errors: Sequence[str]):
        self.errors = list(errors)
        shown = "; ".join(self.errors[:20])
        more = f" (and {len(self.errors) - 20} more)" if len(self.errors) > 20 else ""
        super().__init__(f"{len(self.errors)} problem(s): {shown}{more}")


def head_stems(emotion: str) -> tuple[str, ...]:
    """File stems that may hold the head of `emotion`: its slug, then the slugs of its known aliases
    (the authors' data spells Helplessness as Hopelessness)."""
    stems = [emotion_slug(emotion)]
    stems += [emotion_slug(alias) for alias, target in ALIASES.items() if target == emotion]
    return tuple(dict.fromkeys(stems))


def head_filename(emotion: str) -> str:
    """The authors' file name of an emotion's head: ``model_<slug>_best.pth``."""
    return f"model_{emotion_slug(emotion)}_best.pth"


def score_vector_problems(values: object, *, low: float = SCORE_MIN, high: float = SCORE_MAX) -> str | None:
    """Why `values` is not a valid score vector (None when it is): exactly N_EMOTIONS finite numbers
    within [low, high]."""
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        return f"scores must be a list of {N_EMOTIONS} numbers"
    if len(values) != N_EMOTIONS:
        return f"scores must have {N_EMOTIONS} values (taxonomy order), got {len(values)}"
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, int | float):
            return f"score {i} ({EMOTIONS[i]}) is not a number: {v!r}"
        if not math.isfinite(v):
            return f"score {i} ({EMOTIONS[i]}) is not finite: {v!r}"
        if not low <= v <= high:
            return f"score {i} ({EMOTIONS[i]}) = {v} is outside the allowed range {low}..{high}"
    return None


@dataclass(frozen=True)
class ImageSource:
    """One image to score: its id (returned with the scores) and how to read its encoded bytes.

    `read` is called from a prefetch thread: it must be thread-safe and touch no database.
    """

    image_id: int
    read: ReadBytes


class ReadBytes(Protocol):
    def __call__(self) -> bytes: ...


@dataclass(frozen=True)
class ScoredBatch:
    """Scores of one batch, in input order. `failed` maps image ids that could not be decoded to
    the reason; they have no row in `scores`."""

    image_ids: list[int]
    scores: list[list[float]]
    failed: dict[int, str]
    decode_seconds: float
    infer_seconds: float


class Scorer(Protocol):
    """What the services need from a loaded model."""

    name: str
    version: str
    device: str

    def score_stream(self, sources: Iterable[ImageSource], *, batch_size: int) -> Iterator[ScoredBatch]:
        """Score `sources` in batches, decoding ahead of the model; yields batches in input order."""
        ...
