"""Onboarding with a calibration set (docs/decisions/0002-rater-quality.md).

Contracts:

- A lead chooses calibration images with reference values (`calibration_item_set`, validated like
  a rating; or `calibration_item_from_ratings`: the per-emotion median of the image's ratings).
- A rater *needs calibration* while `Project.require_calibration` is on and their membership has
  no `admitted_at`. Such a rater is sent to the calibration page instead of the rate page; they
  rate every calibration item once (`calibration_submit`, idempotent per item) and then see how
  their values compare with the reference, for the calibration set only.
- Calibration ratings live in `CalibrationRating`, never in `annotation_rating`: agreement,
  consolidation and releases never see them.
- A rater who rated a calibration item (and so is shown its reference) is never served that image
  for the benchmark, nor as a test-retest repeat (#16): the claim leaves out every image of the
  rater's CalibrationRatings (annotation.rating.sql, _NOT_SHOWN_IN_CALIBRATION). Other raters
  still get it.
- `calibration_assessment` scores presence and intensity separately (annotation.calibration_scoring),
  so that leaving every slider at 0 cannot clear the bar; the mean |difference| over all emotions is
  still shown but is not a quality score (an all-zero rater does best on it).
- `rater_admit` (a lead) lets the rater rate for the benchmark; audited, idempotent.
- `calibration_items_from_release`: n images of a published release, its consensus as reference
  (`manage.py calibration_from_release --project SLUG --release X.Y.Z --n 10`).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation import calibration_scoring, taxonomy
from annotation.models import CalibrationItem, CalibrationRating, Image, Membership, Project, Rating
from annotation.rating.values import RawValues, values_parse
from annotation.services.audit import audit_record


class CalibrationError(ValueError):
    """A refused calibration action; the message names the problem."""


@dataclass(frozen=True)
class ItemComparison:
    item: int
    image: int
    values: list[int]
    reference: list[int]
    abs_diff: list[int]


@dataclass(frozen=True)
class Comparison:
    """A rater's calibration ratings vs the reference: per item, and the mean |difference| per emotion."""

    items: list[ItemComparison]
    n_items: int  # items in the calibration set
    per_emotion: list[float | None]  # mean |rater - reference| per taxonomy emotion (None: nothing rated)
    mean_abs_diff: float | None  # over every rated item and emotion

    @property
    def complete(self) -> bool:
        return self.n_items > 0 and len(self.items) == self.n_items


def _user_id(user: Any) -> int:
    return int(user if isinstance(user, int) else user.pk)


def needs_calibration(project: Project, rater: Any) -> bool:
    """Whether the rater must finish calibration and be admitted before rating for the benchmark."""
    if not project.require_calibration:
        return False
    return not Membership.objects.filter(project=project, user_id=_user_id(rater), admitted_at__isnull=False).exists()


def calibration_item_set(*, project: Project, image: Image | int, values: RawValues, actor: Any,
                         source: str = "lead") -> CalibrationItem:
    """Make (or update) a calibration item with the lead's reference values (validated like a rating)."""
    if project.is_binary:
        raise CalibrationError("calibration sets are for intensity projects")
    image_id = image if isinstance(image, int) else image.pk
    if not Image.objects.filter(project=project, pk=image_id).exists():
        raise CalibrationError(f"image {image_id} is not in project {project.slug!r}")
    reference = values_parse(project=project, raw=values)
    with transaction.atomic():
        item, created = CalibrationItem.objects.update_or_create(
            project=project, image_id=image_id,
            defaults={"reference": reference, "source": source[:200],
                      "created_by": actor if getattr(actor, "is_authenticated", False) else None})
        audit_record(actor=actor, action="calibration.item_set", project=project, obj=item, image=image_id,
                     created=created, source=source[:200])
    return item


def median_reference(ratings: Sequence[Sequence[int]]) -> list[int]:
    """Per-emotion median of rating vectors, rounded half up to the scale's integers."""
    if not ratings:
        raise CalibrationError("the image has no ratings to take a median of")
    return [int(statistics.median(col) + 0.5) for col in zip(*ratings, strict=True)]


def calibration_item_from_ratings(*, project: Project, image: Image | int, actor: Any) -> CalibrationItem:
    """A calibration item whose reference is the median of the image's expert ratings."""
    image_id = image if isinstance(image, int) else image.pk
    vectors = list(Rating.objects.filter(project=project, image_id=image_id, emotion__isnull=True)
                   .values_list("values", flat=True))
    return calibration_item_set(project=project, image=image_id, values=median_reference(vectors), actor=actor,
                                source=f"median of {len(vectors)} expert ratings")


def calibration_next(project: Project, rater: Any) -> CalibrationItem | None:
    """The first calibration item (in the lead's order) the rater has not rated yet."""
    return (CalibrationItem.objects.filter(project=project).exclude(ratings__rater_id=_user_id(rater))
            .select_related("image").order_by("id").first())


def calibration_submit(*, project: Project, rater: Any, item: CalibrationItem | int, values: RawValues,
                       seconds: float | None = None) -> CalibrationRating:
    """Store the rater's values for a calibration item. Idempotent: a repeat returns the first rating."""
    item_id = item if isinstance(item, int) else item.pk
    if not CalibrationItem.objects.filter(project=project, pk=item_id).exists():
        raise CalibrationError(f"calibration item {item_id} is not in project {project.slug!r}")
    parsed = values_parse(project=project, raw=values)
    if seconds is not None and seconds < 0:
        seconds = None
    existing = CalibrationRating.objects.filter(item_id=item_id, rater_id=_user_id(rater)).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            return CalibrationRating.objects.create(project=project, item_id=item_id, rater_id=_user_id(rater),
                                                    values=parsed, seconds=seconds)
    except IntegrityError:  # a concurrent double submit
        return CalibrationRating.objects.get(item_id=item_id, rater_id=_user_id(rater))


def calibration_comparison(project: Project, rater: Any) -> Comparison:
    """The rater's calibration values vs the reference, per item and emotion (their own ratings only)."""
    n_items = CalibrationItem.objects.filter(project=project).count()
    items = []
    for r in (CalibrationRating.objects.filter(project=project, rater_id=_user_id(rater)).select_related("item")
              .order_by("item_id")):
        ref = r.item.reference
        items.append(ItemComparison(item=r.item_id, image=r.item.image_id, values=r.values, reference=ref,
                                    abs_diff=[abs(a - b) for a, b in zip(r.values, ref, strict=True)]))
    n = taxonomy.N_EMOTIONS
    per_emotion: list[float | None] = [
        (sum(c.abs_diff[e] for c in items) / len(items)) if items else None for e in range(n)]
    overall = (sum(sum(c.abs_diff) for c in items) / (len(items) * n)) if items else None
    return Comparison(items=items, n_items=n_items, per_emotion=per_emotion, mean_abs_diff=overall)


def calibration_summaries(project: Project) -> dict[int, tuple[int, float | None]]:
    """Per rater with calibration ratings: (items rated, mean |difference| over items and emotions)."""
    out: dict[int, list[int]] = {}
    for rater_id, values, ref in (CalibrationRating.objects.filter(project=project)
                                  .values_list("rater_id", "values", "item__reference")):
        acc = out.setdefault(rater_id, [0, 0, 0])
        acc[0] += 1
        acc[1] += sum(abs(a - b) for a, b in zip(values, ref, strict=True))
        acc[2] += len(ref)
    return {r: (n, (s / k) if k else None) for r, (n, s, k) in out.items()}


def _expert_scores(project: Project) -> list[calibration_scoring.CalibrationScore]:
    """Each expert's score against the median of the *other* experts on the calibration images they
    rated for the benchmark (images with three or more ratings): what a panel member achieves
    against a reference as uncertain as the calibration one."""
    image_ids = list(CalibrationItem.objects.filter(project=project).values_list("image_id", flat=True))
    by_image: dict[int, list[tuple[int, list[int]]]] = {}
    for image_id, rater_id, values in (Rating.objects.filter(project=project, image_id__in=image_ids,
                                                             emotion__isnull=True)
                                       .values_list("image_id", "rater_id", "values")):
        by_image.setdefault(image_id, []).append((rater_id, list(values)))
    mine: dict[int, tuple[list[list[int]], list[list[int]]]] = {}
    for ratings in by_image.values():
        if len(ratings) < 3:
            continue
        for k, (rater_id, values) in enumerate(ratings):
            others = [v for j, (_, v) in enumerate(ratings) if j != k]
            acc = mine.setdefault(rater_id, ([], []))
            acc[0].append(values)
            acc[1].append(median_reference(others))
    return [calibration_scoring.calibration_score(v, ref) for v, ref in mine.values()]


def calibration_assessment(project: Project) -> dict[int, dict[str, Any]]:
    """Per rater with calibration ratings: presence and intensity scores against the reference and
    whether they clear the admission bar (annotation.calibration_scoring), which leaving every
    slider at 0 cannot. The bar adapts to how well the experts themselves match the reference."""
    per: dict[int, tuple[list[list[int]], list[list[int]]]] = {}
    for rater_id, values, ref in (CalibrationRating.objects.filter(project=project).order_by("rater_id", "item_id")
                                  .values_list("rater_id", "values", "item__reference")):
        acc = per.setdefault(rater_id, ([], []))
        acc[0].append(list(values))
        acc[1].append(list(ref))
    experts = _expert_scores(project) if per else []
    out: dict[int, dict[str, Any]] = {}
    for rater_id, (values, refs) in per.items():
        score = calibration_scoring.calibration_score(values, refs)
        verdict = calibration_scoring.calibration_verdict(score, experts)
        out[rater_id] = {"items": score.n_items, "presence_agreement": score.presence_agreement,
                         "sensitivity": score.sensitivity, "specificity": score.specificity,
                         "intensity_diff": score.intensity_diff, "passed": verdict.passed, "reason": verdict.reason}
    return out


def rater_admit(*, project: Project, rater: Any, actor: Any) -> Membership:
    """Admit a rater to rate for the benchmark (after calibration). Audited; idempotent."""
    with transaction.atomic():
        m = Membership.objects.select_for_update().filter(project=project, user_id=_user_id(rater)).first()
        if m is None:
            raise CalibrationError(f"user {_user_id(rater)} is not a member of project {project.slug!r}")
        if m.admitted_at is not None:
            return m
        m.admitted_at = timezone.now()
        m.admitted_by = actor if getattr(actor, "is_authenticated", False) else None
        m.save(update_fields=["admitted_at", "admitted_by"])
        summary = calibration_summaries(project).get(m.user_id, (0, None))
        assessed = calibration_assessment(project).get(m.user_id) or {}
        audit_record(actor=actor, action="rater.admitted", project=project, obj=m, rater=m.user_id,
                     calibration_items=summary[0], calibration_mean_abs_diff=summary[1],
                     calibration_presence_agreement=assessed.get("presence_agreement"),
                     calibration_passed=assessed.get("passed"))
        return m


def calibration_items_from_release(*, project: Project, release: Any, n: int, actor: Any,
                                   seed: int = 0) -> list[CalibrationItem]:
    """Take `n` images of a published release of this project as calibration items, with the
    release's consensus, rounded to the scale (halves up), as reference.

    Undisputed images are preferred; the choice is deterministic (sha256 keyed by `seed`).
    Raises CalibrationError for an unpublished or foreign release or a bad `n`.
    """
    import hashlib

    from annotation.models import ReleaseImage, ReleaseStatus
    from annotation.services.releases import release_tables

    if release.project_id != project.pk or release.status != ReleaseStatus.PUBLISHED:
        raise CalibrationError(f"release {release.version} is not a published release of {project.slug!r}")
    if not 1 <= n <= 200:
        raise CalibrationError(f"n {n} out of range (allowed: 1..200 calibration images)")
    released = release_tables(release)
    table = released.to_pylist() if released is not None else []
    image_ids = dict(ReleaseImage.objects.filter(release=release).values_list("sha256", "image_id"))
    slugs = [taxonomy.emotion_slug(name) for name in taxonomy.EMOTIONS]
    rows = sorted((r for r in table if r["sha256"] in image_ids),
                  key=lambda r: (bool(r.get("disputed")), hashlib.sha256(f"{seed}:{r['sha256']}".encode()).digest()))
    items = []
    for row in rows[:n]:
        reference = [min(project.scale_max, int(float(row[f"{s}__consensus"] or 0) + 0.5)) for s in slugs]
        items.append(calibration_item_set(project=project, image=image_ids[row["sha256"]], values=reference,
                                          actor=actor, source=f"consensus of release {release.version}"))
    return items
