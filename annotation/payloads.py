"""PURE: the shapes of the JSON the platform stores and passes around, in one module.

- `SnapshotPayload`: AgreementSnapshot.payload, written by
  annotation.services.agreement_snapshot.agreement_compute and read by the dashboards, the API and
  the queue priority. Definitions of every figure: docs/agreement.md.
- `ReleaseConfig`, `ReleaseInputs`: Release.config / Release.inputs, frozen by release_create.
- `ReleaseSummary`: Release.summary, written when a build ends.

Version 1 of each shape (SNAPSHOT_PAYLOAD_VERSION, RELEASE_CONFIG_VERSION, RELEASE_SUMMARY_VERSION)
is what every stored row has today; a change that renames or drops a key raises the version and
says how older rows are read. tests/annotation/test_payloads.py checks real payloads, configs and
summaries against these declarations, key by key.
"""

# No `from __future__ import annotations`: TypedDict must see NotRequired[...] as an object (Python 3.11
# reads __required_keys__ from evaluated annotations only).
from collections.abc import Mapping
from typing import Any, NotRequired, TypedDict, cast

SNAPSHOT_PAYLOAD_VERSION = 1
RELEASE_CONFIG_VERSION = 1
RELEASE_SUMMARY_VERSION = 1


class SnapshotEmotion(TypedDict):
    """One emotion's agreement (intensity and binary mode)."""

    emotion: str
    index: int
    alpha: float | None
    ci: list[float | None] | None  # [low, high]; None without a bootstrap or an alpha
    reason: str | None  # why alpha is undefined
    n_images: int
    n_ratings: int
    nonzero_share: float | None
    warnings: list[str]
    # intensity mode (issue #17; docs/agreement.md): interval with rater sampling, undefined resamples,
    # zero inflation (alpha on presence, alpha on co-present intensities, Gwet's AC2)
    ci_raters: NotRequired[list[float | None] | None]
    ci_raters_reason: NotRequired[str | None]
    n_boot_undefined: NotRequired[int]
    presence_alpha: NotRequired[float | None]
    intensity_alpha: NotRequired[float | None]
    intensity_images: NotRequired[int]
    ac2: NotRequired[float | None]
    vote_patterns: NotRequired[dict[str, int]]  # binary mode
    n_images_with_2_or_more_votes: NotRequired[int]  # binary mode


class SnapshotKappa(TypedDict):
    raters: list[Any]
    pairs: list[dict[str, Any]]
    per_emotion_mean: dict[str, Any]


class SnapshotPayload(TypedDict):
    """AgreementSnapshot.payload. Intensity projects carry raters, kappa, strata and models too."""

    project: str
    mode: str
    level: str
    n_boot: int
    seed: int
    confidence: float
    scale: list[int]  # [0, scale_max]
    taxonomy_version: str
    flagged_images_excluded: int
    definitions: str
    n_images: int
    n_ratings: int
    n_raters: int
    emotions: list[SnapshotEmotion]
    mean_alpha: float | None
    mean_alpha_ci: NotRequired[dict[str, Any] | None]  # {"estimate", "n_emotions", "ci", "ci_raters", "reason"}
    label_reliability: NotRequired[dict[str, Any] | None]  # {"ratings_per_image": k, "reliability": r}
    raters: NotRequired[list[dict[str, Any]]]
    kappa: NotRequired[SnapshotKappa]
    strata: NotRequired[dict[str, Any]]
    models: NotRequired[list[dict[str, Any]]]


class ReleaseAgreementConfig(TypedDict):
    level: str
    n_boot: int
    seed: int
    confidence: float


class ExcludedRater(TypedDict):
    rater: str  # the release pseudonym
    reason: str


class ReleaseConfig(TypedDict):
    """Release.config: everything a build needs besides the frozen inputs."""

    project: str
    mode: str
    scale_max: int
    k: int | None  # binary mode: votes needed
    consolidation: dict[str, Any]  # annotation.consolidation.ConsolidationRule.as_dict()
    split: dict[str, Any]  # annotation.splits.SplitConfig.as_dict()
    agreement: ReleaseAgreementConfig
    include_images: bool
    taxonomy_version: str
    code_version: str
    description: str
    excluded_raters: list[ExcludedRater]
    # how the test split was drawn (model-independent sample or not, and why), for the card (#17); absent before
    test_split_note: NotRequired[str]
    batches: NotRequired[list[str]]  # the rounds it was cut from (#22); absent: the whole project


class ReleaseInputs(TypedDict):
    """Release.inputs: which ratings a build reads (never written out)."""

    max_rating_id: int
    as_of: str
    ratings: int
    excluded_rater_ids: list[int]
    flagged_image_ids: NotRequired[list[int]]  # images left out, frozen at creation (#16); absent before
    # the raters' consented backgrounds in aggregate, frozen at creation for the card (#20); absent before
    rater_pool: NotRequired[dict[str, Any]]
    batch_image_ids: NotRequired[list[int]]  # a release cut from rounds (#22): their images, frozen at creation
    # the measurement model's parameters from the latest snapshot, frozen at creation (#18): {"snapshot_id",
    # "parameters"}; absent: the build fits the model to the release's ratings
    rater_model: NotRequired[dict[str, Any]]


class ReleaseSummary(TypedDict):
    """Release.summary, once built."""

    images: int
    splits: dict[str, int]
    left_out: dict[str, Any]
    raw_ratings: int
    n_raters: int
    balance_violations: list[str]
    diff: dict[str, Any] | None  # against the previous release, details capped
    excluded_raters: list[ExcludedRater]
    mean_alpha: float | None


# --- reading what is stored -------------------------------------------------------------------
# A JSONField reads back as Any: these name the shape of what a row holds. Every stored row is
# version 1 (above); a later version is read here, into the shape its readers expect.


def snapshot_payload(stored: Mapping[str, Any] | None) -> SnapshotPayload | None:
    """AgreementSnapshot.payload as declared; None while a snapshot has none (queued, running, failed)."""
    return cast(SnapshotPayload, stored) if stored else None


def release_config(stored: Mapping[str, Any]) -> ReleaseConfig:
    """Release.config as declared (frozen at creation, so every release has one)."""
    return cast(ReleaseConfig, stored)


def release_inputs(stored: Mapping[str, Any]) -> ReleaseInputs:
    """Release.inputs as declared (frozen at creation)."""
    return cast(ReleaseInputs, stored)


def release_summary(stored: Mapping[str, Any] | None) -> ReleaseSummary | None:
    """Release.summary as declared; None before a build has finished."""
    return cast(ReleaseSummary, stored) if stored else None
