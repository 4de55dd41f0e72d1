"""Finishing an assignment: submit a rating, skip, flag; and revising one's own rating.

Contracts:

- **Idempotent.** Submitting an assignment that is already submitted returns the stored rating
  (whatever the second request carried): a double click, a retry after a network error or a
  replay stores exactly one rating. Skip and flag are idempotent in the same way.
- **All or nothing.** Values are validated completely before anything is written; a refused
  submit stores nothing. Errors are `RatingError` subclasses with a message naming the problem
  and an HTTP status (400 bad values, 403 foreign assignment, 409 conflict).
- **Locks.** The assignment row and its queue row (Image in intensity mode, BinaryItem in binary
  mode) are locked for the transaction, in that order, so concurrent submits of one assignment
  serialise and capacity counts of the claim stay exact.
- **Expired lease (our choice).** A rater's work is precious: a submit after the lease ran out is
  still accepted when the rater's assignment was not replaced and the image (item) still needs a
  rating counting every other rating and open lease; otherwise it is refused with 409 and a clear
  message ("the lease expired and the image already has its ratings").
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from annotation import taxonomy
from annotation.models import (
    Assignment,
    AssignmentStatus,
    BinaryItem,
    FlagReason,
    Image,
    ImageFlag,
    Project,
    Rating,
    RatingRevision,
    RatingSource,
    RetestRating,
    SkipReason,
)
from annotation.services.agreement_snapshot import agreement_schedule
from annotation.services.audit import audit_record
from core import prepared


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


def values_parse(*, project: Project, raw: RawValues, emotion: int | None = None) -> list[int]:
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


def _active(active_seconds: Any, spent: float) -> float | None:
    if active_seconds in (None, ""):
        return None
    try:
        value = float(active_seconds)
    except (TypeError, ValueError):
        raise InvalidValues(f"active_seconds {active_seconds!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise InvalidValues(f"active_seconds {active_seconds!r} must be a non-negative number")
    return round(min(value, spent), 3)  # never more than the lease lasted


# The view's fast path (the project is known already): the assignment row and its image locked in
# one raw statement, in the same order as the ORM's `FOR UPDATE OF self, image`, without
# compiling a select_related query on every submit.
_LOCK_SQL = """
SELECT a.* FROM annotation_assignment a JOIN annotation_image i ON i.id = a.image_id
WHERE a.id = %s {lock}
"""


def _lock(assignment: Assignment | int, rater: Any, project: Project | None) -> Assignment:
    """Lock the assignment and its queue row; 404 unknown (or in another project), 403 another
    rater's assignment."""
    assignment_id = assignment if isinstance(assignment, int) else assignment.pk
    if project is None:
        try:
            locked = (Assignment.objects.select_related("project", "image")
                      .select_for_update(of=("self", "image")).get(pk=assignment_id))
        except Assignment.DoesNotExist:
            raise AssignmentNotFound(f"assignment {assignment_id} does not exist") from None
    else:
        lock = "FOR UPDATE OF a, i" if connection.features.has_select_for_update_of else ""
        rows = list(Assignment.objects.raw(_LOCK_SQL.format(lock=lock), [assignment_id]))
        if not rows:
            raise AssignmentNotFound(f"assignment {assignment_id} does not exist")
        locked = rows[0]
        if locked.project_id != project.pk:
            raise AssignmentNotFound(f"assignment {assignment_id} is not in project {project.slug!r}")
        locked.project = project  # the image is read only when needed (an expired lease), under the lock
    if locked.rater_id != rater.pk:
        raise ForeignAssignment(f"assignment {assignment_id} belongs to another rater")
    if locked.item_id is not None:
        locked.item = BinaryItem.objects.select_for_update().get(pk=locked.item_id)
    return locked


def _still_needed(a: Assignment, now: Any) -> bool:
    """Under the locks: may this expired lease still be honoured?"""
    others_open = (Assignment.objects.filter(status=AssignmentStatus.OPEN, expires_at__gt=now, is_retest=False)
                   .exclude(pk=a.pk))
    if a.item is not None:
        if a.item.closed:
            return False
        return a.item.n_yes + a.item.n_no + others_open.filter(item=a.item).count() < a.project.target_ratings
    # a.image was locked and read by _lock: its trigger-kept count is current.
    return (a.image.n_ratings + others_open.filter(image_id=a.image_id).count()
            < a.project.target_ratings + a.image.extra_target)


def _tally(item: BinaryItem, target: int) -> None:
    """Recount a binary item's answers from its ratings (caller holds the item lock)."""
    answers = list(Rating.objects.filter(image_id=item.image_id, emotion=item.emotion).values_list("values", flat=True))
    item.n_yes = sum(1 for v in answers if v and v[0] == 1)
    item.n_no = len(answers) - item.n_yes
    item.closed = item.n_no > 0 or item.n_yes >= target
    item.save(update_fields=["n_yes", "n_no", "closed"])


def _retest_submit(a: Assignment, rater: Any, values: RawValues, client_token: str, active_seconds: Any,
                   now: Any) -> RetestRating:
    """Under the assignment lock: store a test-retest repeat apart from the ratings. A repeat takes no
    capacity, so an expired lease is still honoured while it was not replaced."""
    if a.status == AssignmentStatus.SUBMITTED:
        return RetestRating.objects.get(assignment=a)
    vector = values_parse(project=a.project, raw=values)
    if a.status != AssignmentStatus.OPEN:
        raise AssignmentConflict(f"assignment {a.pk} was {a.get_status_display().lower()}; "
                                 "it cannot take a rating any more")
    original = Rating.objects.filter(image_id=a.image_id, rater=rater, emotion__isnull=True).first()
    if original is None:  # the original was removed meanwhile: nothing to compare with
        raise AssignmentConflict("this image cannot take a rating any more; your values were not stored")
    spent = max(0.0, (now - a.claimed_at).total_seconds())
    retest = RetestRating.objects.create(
        project=a.project, image_id=a.image_id, rater=rater, original=original, assignment=a, values=vector,
        original_values=original.values, scale_max=a.project.scale_max, seconds_spent=round(spent, 3),
        active_seconds=_active(active_seconds, spent))
    a.status, a.finished_at, a.client_token = AssignmentStatus.SUBMITTED, now, client_token[:64]
    a.save(update_fields=["status", "finished_at", "client_token"])
    return retest


# PostgreSQL: the rating and the finished assignment in one statement (one round trip instead of
# two, and no ORM insert/update to compile on every submit).
_SUBMIT_SQL = """
WITH r AS (
  INSERT INTO annotation_rating (project_id, image_id, rater_id, emotion, "values", scale_max, taxonomy_version,
                                 source, seconds_spent, active_seconds, created_at, updated_at)
  VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
  RETURNING id
)
UPDATE annotation_assignment SET status = %s, rating_id = (SELECT id FROM r), finished_at = %s, client_token = %s
WHERE id = %s
RETURNING rating_id
"""


def _store_rating(rating: Rating, a: Assignment) -> None:
    """Insert `rating` and save the finished assignment `a` (status, finished_at, client_token set
    by the caller) pointing at it. Under the assignment lock."""
    if connection.vendor != "postgresql":
        rating.save(force_insert=True)
        a.rating = rating
        a.save(update_fields=["status", "rating", "finished_at", "client_token"])
        return
    rating.created_at = rating.updated_at = timezone.now()
    ops = connection.ops
    values = Rating._meta.get_field("values").get_db_prep_save(rating.values, connection)
    with connection.cursor() as cur:
        cur.execute(_SUBMIT_SQL, [
            rating.project_id, rating.image_id, rating.rater_id, rating.emotion, values, rating.scale_max,
            rating.taxonomy_version, rating.source, rating.seconds_spent, rating.active_seconds,
            ops.adapt_datetimefield_value(rating.created_at), ops.adapt_datetimefield_value(rating.updated_at),
            a.status, ops.adapt_datetimefield_value(a.finished_at), a.client_token, a.pk])
        rating.pk = cur.fetchone()[0]
    rating._state.adding, rating._state.db = False, connection.alias
    a.rating = rating


# The common case in one autocommitted statement (PostgreSQL, intensity mode): lock the assignment
# and its image (the same rows, in the same order, as _lock), and store the rating and finish the
# assignment only if the lease is the rater's, open, unexpired and not a test-retest repeat. Under
# READ COMMITTED a concurrent submit of the same assignment makes the lock wait and then re-check
# these conditions on the new row version, so a double submit stores one rating. Every other case
# (a replay, an expired lease, a foreign or unknown assignment, a repeat) finds no row and goes
# the careful way below, which answers it. Time spent is counted as in rating_submit: from the
# claim, never negative; the page's active time never exceeds it.
_FAST_SUBMIT_SQL = """
WITH a AS (
  SELECT a.id, a.image_id, GREATEST(0, EXTRACT(EPOCH FROM (%s::timestamptz - a.claimed_at)))::float8 AS spent
  FROM annotation_assignment a JOIN annotation_image i ON i.id = a.image_id
  WHERE a.id = %s::bigint AND a.project_id = %s::bigint AND a.rater_id = %s::bigint AND a.status = 'open'
    AND a.expires_at > %s::timestamptz AND NOT a.is_retest AND a.item_id IS NULL
  FOR UPDATE OF a, i
), r AS (
  INSERT INTO annotation_rating (project_id, image_id, rater_id, emotion, "values", scale_max, taxonomy_version,
                                 source, seconds_spent, active_seconds, created_at, updated_at)
  SELECT %s::bigint, a.image_id, %s::bigint, NULL, %s::smallint[], %s::smallint, %s::varchar, %s::varchar,
         round(a.spent::numeric, 3),
         CASE WHEN %s::float8 IS NULL THEN NULL ELSE round(LEAST(%s::float8, a.spent)::numeric, 3) END,
         %s::timestamptz, %s::timestamptz
  FROM a
  RETURNING id, image_id, seconds_spent, active_seconds
)
UPDATE annotation_assignment SET status = 'submitted', rating_id = r.id, finished_at = %s::timestamptz,
                                 client_token = %s::varchar
FROM r WHERE annotation_assignment.id = %s::bigint
RETURNING r.id, r.image_id, r.seconds_spent, r.active_seconds
"""


def _submit_fast(assignment_id: int, project: Project, rater: Any, raw: RawValues, client_token: str,
                 active_seconds: Any, now: Any) -> Rating | None:
    """The stored rating, or None when the common case does not apply (nothing written then; the
    caller goes the careful way, which also answers every refusal with its message)."""
    try:
        vector = values_parse(project=project, raw=raw)
        active = _active(active_seconds, math.inf)
    except InvalidValues:
        return None  # a replay with bad values must still be answered as a replay: the careful way
    ops = connection.ops
    when = ops.adapt_datetimefield_value(now)
    values = Rating._meta.get_field("values").get_db_prep_save(vector, connection)
    token = client_token[:64]
    try:
        with transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext(), \
                connection.cursor() as cur:
            prepared.execute(cur, _FAST_SUBMIT_SQL, [
                when, assignment_id, project.pk, rater.pk, when,
                project.pk, rater.pk, values, project.scale_max, taxonomy.TAXONOMY_VERSION, RatingSource.PAGE,
                active, active, when, when,
                when, token, assignment_id])
            row = cur.fetchone()
    except IntegrityError:
        return None  # rated already some other way (an import): the careful way names it
    if row is None:
        return None
    rating = Rating(pk=row[0], project=project, image_id=row[1], rater=rater, emotion=None, values=vector,
                    scale_max=project.scale_max, taxonomy_version=taxonomy.TAXONOMY_VERSION, source=RatingSource.PAGE,
                    seconds_spent=row[2], active_seconds=row[3], created_at=now, updated_at=now)
    rating._state.adding, rating._state.db = False, connection.alias
    agreement_schedule(project)  # debounced; after commit when in a transaction
    return rating


def rating_submit(*, assignment: Assignment | int, rater: Any, values: RawValues, client_token: str = "",
                  active_seconds: Any = None, project: Project | None = None, now: Any | None = None
                  ) -> Rating | RetestRating:
    """Store the rating for an assignment (an instance or its id) and finish it. Idempotent; see the
    module docstring. With `project`, an assignment of another project is refused (404).

    A test-retest assignment (Assignment.is_retest) stores a RetestRating instead: kept out of
    annotation_rating, so agreement, consolidation and releases never count it.

    Called as the rate page calls it (an assignment id and the project) on PostgreSQL, the common
    case is one statement (_FAST_SUBMIT_SQL) and everything else goes the careful way below; the
    contracts are the same either way (tests run both)."""
    now = now or timezone.now()
    if (project is not None and isinstance(assignment, int) and not project.is_binary
            and connection.vendor == "postgresql"):
        fast = _submit_fast(assignment, project, rater, values, client_token, active_seconds, now)
        if fast is not None:
            return fast
    try:
        with transaction.atomic():
            a = _lock(assignment, rater, project)
            if a.is_retest:
                return _retest_submit(a, rater, values, client_token, active_seconds, now)
            if a.status == AssignmentStatus.SUBMITTED:
                assert a.rating_id is not None
                return Rating.objects.get(pk=a.rating_id)
            item = a.item
            vector = values_parse(project=a.project, raw=values, emotion=item.emotion if item else None)
            if a.status != AssignmentStatus.OPEN:
                raise AssignmentConflict(f"assignment {a.pk} was {a.get_status_display().lower()}; "
                                         "it cannot take a rating any more")
            if a.expires_at <= now and not _still_needed(a, now):
                raise AssignmentConflict("the lease on this image expired and the image already has its ratings; "
                                         "your values were not stored")
            spent = max(0.0, (now - a.claimed_at).total_seconds())
            # The first write of the transaction: if the rater already rated this image some other
            # way (an import), the unique constraint refuses it and the whole transaction is void.
            rating = Rating(
                project=a.project, image_id=a.image_id, rater=rater, emotion=item.emotion if item else None,
                values=vector, scale_max=a.project.scale_max, taxonomy_version=taxonomy.TAXONOMY_VERSION,
                source=RatingSource.PAGE, seconds_spent=round(spent, 3), active_seconds=_active(active_seconds, spent))
            a.status, a.finished_at, a.client_token = AssignmentStatus.SUBMITTED, now, client_token[:64]
            _store_rating(rating, a)
            if item is not None:
                item.n_yes += vector[0]
                item.n_no += 1 - vector[0]
                item.closed = item.n_no > 0 or item.n_yes >= a.project.target_ratings
                item.save(update_fields=["n_yes", "n_no", "closed"])
            agreement_schedule(a.project)  # debounced; sent after commit, never blocks the rating
            return rating
    except IntegrityError as exc:
        if "rating_one_per_rater_image" not in str(exc) and "retest_one_per_rater_image" not in str(exc):
            raise
        raise AssignmentConflict("you have already rated this image; open it from your recent ratings "
                                 "to change it") from None


def _finish(assignment: Assignment | int, rater: Any, status: str, reason: str, note: str, now: Any,
            project: Project | None) -> tuple[Assignment, bool]:
    a = _lock(assignment, rater, project)
    if a.status == status:
        return a, False  # idempotent replay
    if a.status != AssignmentStatus.OPEN:
        raise AssignmentConflict(f"assignment {a.pk} was already {a.get_status_display().lower()}")
    a.status, a.reason, a.note, a.finished_at = status, reason, note[:500], now
    a.save(update_fields=["status", "reason", "note", "finished_at"])
    return a, True


def assignment_skip(*, assignment: Assignment | int, rater: Any, reason: str, note: str = "",
                    project: Project | None = None, now: Any | None = None) -> Assignment:
    """Give the image back without rating it; this rater is not served it again. Idempotent."""
    if reason not in SkipReason.values:
        raise InvalidValues(f"skip reason {reason!r} is not one of: {', '.join(SkipReason.values)}")
    with transaction.atomic():
        a, _ = _finish(assignment, rater, AssignmentStatus.SKIPPED, reason, note, now or timezone.now(),
                       project)
        return a


def assignment_flag(*, assignment: Assignment | int, rater: Any, reason: str, note: str = "",
                    project: Project | None = None, now: Any | None = None) -> ImageFlag:
    """Report the image as unusable: it leaves the queue (Image.flagged) until a lead looks at it.
    Records who and why (ImageFlag). Idempotent."""
    if reason not in FlagReason.values:
        raise InvalidValues(f"flag reason {reason!r} is not one of: {', '.join(FlagReason.values)}")
    with transaction.atomic():
        a, fresh = _finish(assignment, rater, AssignmentStatus.FLAGGED, reason, note, now or timezone.now(),
                               project)
        if not fresh:
            return ImageFlag.objects.filter(image_id=a.image_id, rater=rater).first() or ImageFlag(image=a.image)
        Image.objects.filter(pk=a.image_id).update(flagged=True)
        return ImageFlag.objects.create(project=a.project, image_id=a.image_id, rater=rater, reason=reason, note=note[:500])


def rating_revise(*, rating: Rating, rater: Any, values: RawValues, reason: str = "") -> Rating:
    """Change one's own rating; the old values are kept as a RatingRevision. A no-op when the values
    are unchanged. Locks the rating row (and the binary item, whose tally is recomputed)."""
    with transaction.atomic():
        r = Rating.objects.select_related("project").select_for_update(of=("self",)).get(pk=rating.pk)
        if r.rater_id != rater.pk:
            raise ForeignAssignment(f"rating {r.pk} belongs to another rater")
        if r.source != RatingSource.PAGE:
            raise AssignmentConflict(f"rating {r.pk} was imported; it cannot be changed here")
        vector = values_parse(project=r.project, raw=values, emotion=r.emotion)
        if vector == r.values:
            return r
        RatingRevision.objects.create(rating=r, values=r.values, changed_by=rater, reason=reason[:200])
        audit_record(actor=rater, action="rating.revised", project=r.project, obj=r, old=r.values, new=vector,
                     reason=reason[:200])
        r.values = vector
        r.save(update_fields=["values", "updated_at"])
        agreement_schedule(r.project)
        if r.emotion is not None:
            item = BinaryItem.objects.select_for_update().filter(image_id=r.image_id, emotion=r.emotion).first()
            if item is not None:
                _tally(item, r.project.target_ratings)
        return r
