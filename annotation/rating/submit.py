"""Finishing an assignment: submit a rating, skip, flag; and revising one's own rating.

One write function per action; rating_submit's PostgreSQL one-statement variant (_submit_fast)
and its careful variant (PostgreSQL and the SQLite demo) sit behind the one function. The
statements are in annotation/rating/sql.py, value parsing in annotation/rating/values.py.

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
import math
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.models import User
from annotation import taxonomy
from annotation.models import (
    Assignment,
    AssignmentStatus,
    Batch,
    BinaryItem,
    CalibrationRating,
    FlagReason,
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

from . import sql
from .values import (
    AssignmentConflict,
    AssignmentNotFound,
    ForeignAssignment,
    InvalidValues,
    RawValues,
    active_seconds_parse,
    values_parse,
)


def _lock(assignment: Assignment | int, rater: User, project: Project | None) -> Assignment:
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
        text = sql.lock(for_update_of=connection.features.has_select_for_update_of)
        rows = list(Assignment.objects.raw(text, {"assignment": assignment_id}))
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


def _still_needed(a: Assignment, now: datetime) -> bool:
    """Under the locks: may this expired lease still be honoured?"""
    others_open = (Assignment.objects.filter(status=AssignmentStatus.OPEN, expires_at__gt=now, is_retest=False)
                   .exclude(pk=a.pk))
    if a.item is not None:
        if a.item.closed:
            return False
        return a.item.n_yes + a.item.n_no + others_open.filter(item=a.item).count() < a.project.target_ratings
    # a.image was locked and read by _lock: its trigger-kept count is current. A round's lease (#22)
    # counts against its batch's target.
    target = (Batch.objects.filter(pk=a.batch_id).values_list("target_ratings", flat=True).first()
              if a.batch_id is not None else None) or a.project.target_ratings
    return (a.image.n_ratings + others_open.filter(image_id=a.image_id).count()
            < target + a.image.extra_target)


def _tally(item: BinaryItem, target: int) -> None:
    """Recount a binary item's answers from its ratings (caller holds the item lock)."""
    answers = list(Rating.objects.filter(image_id=item.image_id, emotion=item.emotion).values_list("values", flat=True))
    item.n_yes = sum(1 for v in answers if v and v[0] == 1)
    item.n_no = len(answers) - item.n_yes
    item.closed = item.n_no > 0 or item.n_yes >= target
    item.save(update_fields=["n_yes", "n_no", "closed"])


def _retest_submit(a: Assignment, rater: User, values: RawValues, client_token: str, active_seconds: Any,
                   now: datetime) -> RetestRating:
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
        active_seconds=active_seconds_parse(active_seconds, spent))
    a.status, a.finished_at, a.client_token = AssignmentStatus.SUBMITTED, now, client_token[:64]
    a.save(update_fields=["status", "finished_at", "client_token"])
    return retest


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
        cur.execute(sql.SUBMIT, {
            "project": rating.project_id, "image": rating.image_id, "rater": rating.rater_id,
            "emotion": rating.emotion, "values": values, "scale_max": rating.scale_max,
            "taxonomy_version": rating.taxonomy_version, "source": rating.source,
            "seconds_spent": rating.seconds_spent, "active_seconds": rating.active_seconds,
            "created_at": ops.adapt_datetimefield_value(rating.created_at),
            "updated_at": ops.adapt_datetimefield_value(rating.updated_at), "status": a.status,
            "finished_at": ops.adapt_datetimefield_value(a.finished_at), "client_token": a.client_token,
            "assignment": a.pk})
        rating.pk = cur.fetchone()[0]
    rating._state.adding, rating._state.db = False, connection.alias
    a.rating = rating


def _submit_fast(assignment_id: int, project: Project, rater: User, raw: RawValues, client_token: str,
                 active_seconds: Any, now: datetime) -> Rating | None:
    """The stored rating, or None when the common case does not apply (nothing written then; the
    caller goes the careful way, which also answers every refusal with its message)."""
    try:
        vector = values_parse(project=project, raw=raw)
        active = active_seconds_parse(active_seconds, math.inf)
    except InvalidValues:
        return None  # a replay with bad values must still be answered as a replay: the careful way
    ops = connection.ops
    when = ops.adapt_datetimefield_value(now)
    values = Rating._meta.get_field("values").get_db_prep_save(vector, connection)
    token = client_token[:64]
    try:
        with transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext(), \
                connection.cursor() as cur:
            prepared.execute(cur, sql.FAST_SUBMIT, {
                "now": when, "assignment": assignment_id, "project": project.pk, "rater": rater.pk,
                "values": values, "scale_max": project.scale_max, "taxonomy_version": taxonomy.TAXONOMY_VERSION,
                "source": str(RatingSource.PAGE), "active": active, "client_token": token})
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


def rating_submit(*, assignment: Assignment | int, rater: User, values: RawValues, client_token: str = "",
                  active_seconds: Any = None, project: Project | None = None, now: datetime | None = None
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
                source=RatingSource.PAGE, seconds_spent=round(spent, 3), active_seconds=active_seconds_parse(active_seconds, spent))
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


def _finish(assignment: Assignment | int, rater: User, status: str, reason: str, note: str, now: datetime,
            project: Project | None) -> tuple[Assignment, bool]:
    a = _lock(assignment, rater, project)
    if a.status == status:
        return a, False  # idempotent replay
    if a.status != AssignmentStatus.OPEN:
        raise AssignmentConflict(f"assignment {a.pk} was already {a.get_status_display().lower()}")
    a.status, a.reason, a.note, a.finished_at = status, reason, note[:500], now
    a.save(update_fields=["status", "reason", "note", "finished_at"])
    return a, True


def assignment_skip(*, assignment: Assignment | int, rater: User, reason: str, note: str = "",
                    project: Project | None = None, now: datetime | None = None) -> Assignment:
    """Give the image back without rating it; this rater is not served it again. Idempotent."""
    if reason not in SkipReason.values:
        raise InvalidValues(f"skip reason {reason!r} is not one of: {', '.join(SkipReason.values)}")
    with transaction.atomic():
        a, _ = _finish(assignment, rater, AssignmentStatus.SKIPPED, reason, note, now or timezone.now(),
                       project)
        return a


def assignment_flag(*, assignment: Assignment | int, rater: User, reason: str, note: str = "",
                    project: Project | None = None, now: datetime | None = None) -> ImageFlag:
    """Report the image as unusable: it leaves this rater's queue (the assignment is finished as
    flagged) and waits in the lead's review as an open ImageFlag (who and why). Nothing else changes
    until a lead confirms it (annotation.services.adjudication): one rater's word never takes an
    image out of agreement, releases or the other raters' queues (#16). Idempotent."""
    if reason not in FlagReason.values:
        raise InvalidValues(f"flag reason {reason!r} is not one of: {', '.join(FlagReason.values)}")
    with transaction.atomic():
        a, fresh = _finish(assignment, rater, AssignmentStatus.FLAGGED, reason, note, now or timezone.now(),
                               project)
        if not fresh:
            return ImageFlag.objects.filter(image_id=a.image_id, rater=rater).first() or ImageFlag(image=a.image)
        return ImageFlag.objects.create(project=a.project, image_id=a.image_id, rater=rater, reason=reason, note=note[:500])


def rating_revise(*, rating: Rating, rater: User, values: RawValues, reason: str = "") -> Rating:
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
        # Shown this image's reference values in calibration since (#16): a change now would be
        # anchored on other experts' ratings, so the rating stays as it was given.
        if CalibrationRating.objects.filter(rater_id=rater.pk, item__image_id=r.image_id).exists():
            raise AssignmentConflict("you have seen this image's reference values in calibration since you "
                                     "rated it; this rating can no longer be changed")
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
