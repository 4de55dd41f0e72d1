"""Claiming the next image (or binary question) under a lease; the rater's progress.

The statements and the room rule they share are in annotation/rating/sql.py.

Contracts (the rules themselves are described in annotation/models/assignment.py):

- `assignment_claim` returns the rater's open, unexpired assignment if there is one (reopening the
  page never takes a second image); otherwise it locks the best queue row with
  `SELECT ... FOR UPDATE SKIP LOCKED` (PostgreSQL; SQLite, the demo, serialises writers anyway),
  re-counts its ratings and open leases *after* the lock (in a fresh snapshot: a claim committed
  just before we got the lock is seen) and inserts the lease. Concurrent claimers therefore skip
  each other's rows and never push an image beyond its target. On PostgreSQL an intensity claim
  does all of it in one autocommitted statement (sql.fast_claim, the re-count in a VOLATILE
  function); the careful way (a transaction: lock, then a separate lease statement) takes every
  other case and every claim that statement could not settle.
- Rounds (#22, annotation/models/batch.py): once a project has a batch that is not a draft, the
  claim serves only from the open batches the rater may rate, in batch priority order (then id),
  and within a batch by image priority; each batch against its own target (the room rule with the
  batch's target), and the lease records its batch. A project that never opened a batch is one queue.
- Order: Image.priority descending, then id (the indexed `image_queue_order`). Flagged images,
  placeholders without a file, images the rater rated, skipped or flagged, and images whose
  calibration reference the rater was shown are never served; a rater paused in the project
  (Membership.paused_at) is served nothing.
- Every function here is safe to call again (idempotent reads, or guarded by constraints).
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from accounts.models import User
from annotation import taxonomy
from annotation.models import (
    AllocationReason,
    Assignment,
    AssignmentStatus,
    BinaryItem,
    CalibrationRating,
    Image,
    Project,
    Rating,
)
from core import prepared
from core.cache import ProcessMemo

from . import sql
from .images import NEW, RETEST, rate_image_url

# Statuses after which a rater is never served the same image (intensity) / question (binary) again.
_DONE_FOR_RATER = [AssignmentStatus.SUBMITTED, AssignmentStatus.SKIPPED, AssignmentStatus.FLAGGED]
assert {str(v) for v in _DONE_FOR_RATER} == set(sql.DONE_FOR_RATER)
assert {str(v) for v in AssignmentStatus} - set(sql.FINISHED) == {"open"}
# The one-statement claim on PostgreSQL (sql.fast_claim); the tests switch it off to run the
# careful way alone.
_FAST_CLAIM = True
_MAX_ATTEMPTS = 20
# Oldest eligible ratings a test-retest repeat is drawn from.
_RETEST_POOL = 2000
# Images given BinaryItems per lazy batch (binary mode).
_BINARY_BATCH = 50


@dataclass(frozen=True)
class Scope:
    """Where a claim looks: the project's queue (`batch` None) or one round, with the target the
    room rule counts against (the project's, or the batch's)."""

    target: int
    batch: int | None = None


def claim_scopes(project: Project, rater: User) -> list[Scope]:
    """The queues a rater is served from, in order: the project's own, or (rounds mode) the open
    batches they may rate, best first; [] in rounds mode with nothing open for them. One prepared
    statement (sql.ROUNDS), none when the project was read with `in_rounds` False (the rate page's
    annotation.rating.stage.project_for_rater); binary projects have no rounds."""
    in_rounds = getattr(project, "in_rounds", None)
    if project.is_binary or (in_rounds is not None and not in_rounds):
        return [Scope(project.target_ratings)]
    with connection.cursor() as cur:
        prepared.execute(cur, sql.ROUNDS, {"project": project.pk, "rater": rater.pk})
        rows = cur.fetchall()
    if not rows:
        return [Scope(project.target_ratings)]
    return [Scope(int(target), int(batch)) for batch, target, _ in sorted((r for r in rows if r[0]),
                                                                            key=lambda r: (-r[2], r[0]))]


@dataclass(frozen=True)
class Claim:
    """The result of a claim: the lease and, if known, the next image's URL (a prefetch hint only) and
    the rater's own count of ratings (counted in passing by a new lease; for rater_progress)."""

    assignment: Assignment
    next_image_url: str | None = None
    rater_count: int | None = None


def assignment_current(*, project: Project, rater: User) -> Assignment | None:
    """The rater's open assignment in the project, expired or not (no lock), with its image and
    binary item. A prepared statement: this runs on every rate page request."""
    found = prepared.fetch_models(Assignment, sql.current(), {"project": project.pk, "rater": rater.pk},
                                  related=(("image", Image), ("item", BinaryItem)))
    return found[0] if found else None


def _candidates(project: Project, rater: User, now: datetime, exclude: list[int], *, limit: int, lock: bool,
                scope: Scope | None = None) -> list[Any]:
    """Free queue rows (Image, or BinaryItem in binary mode) of the scope (default: the project's
    queue) for the rater, best first; with `lock`, locked FOR UPDATE SKIP LOCKED where the database can."""
    scope = scope or Scope(project.target_ratings)
    table = "b" if project.is_binary else "i"
    lock_sql = ""
    if lock and connection.features.has_select_for_update_skip_locked:
        lock_sql = f"FOR UPDATE OF {table} SKIP LOCKED"
    model: Any = BinaryItem if project.is_binary else Image
    text = sql.candidates(binary=project.is_binary, columns=prepared.select_list(model, table), limit=limit,
                          lock=lock_sql, n_exclude=len(exclude), batch=scope.batch is not None)
    params = {"project": project.pk, "rater": rater.pk, "now": connection.ops.adapt_datetimefield_value(now),
              "target": scope.target, "batch": scope.batch, **{f"exclude{k}": pk for k, pk in enumerate(exclude)}}
    return prepared.fetch_models(model, text, params)


def _lease_if_room(project: Project, rater: User, now: datetime, image: Image, item: BinaryItem | None,
                   scope: Scope) -> tuple[Assignment, int] | None:
    """Under the queue row's lock: insert the rater's lease if the row still has room (re-counted in
    the INSERT itself, a fresh statement), else None. One round trip; also returns the rater's own
    count of ratings."""
    expires = now + timedelta(minutes=project.lease_minutes)
    params = {"project": project.pk, "image": image.pk, "item": item.pk if item else None, "rater": rater.pk,
              "now": connection.ops.adapt_datetimefield_value(now),
              "expires": connection.ops.adapt_datetimefield_value(expires), "target": scope.target,
              "batch": scope.batch}
    with connection.cursor() as cur:
        prepared.execute(cur, sql.lease(binary=item is not None, db=connection), params)
        row = cur.fetchone()
    if row is None:
        return None
    assignment = Assignment(pk=row[0], project=project, image=image, item=item, rater=rater,
                            status=AssignmentStatus.OPEN, claimed_at=now, expires_at=expires, batch_id=scope.batch)
    assignment._state.adding, assignment._state.db = False, connection.alias
    return assignment, int(row[1])


def binary_items_ensure(*, project: Project, batch: int = _BINARY_BATCH) -> int:
    """Create BinaryItems for up to `batch` served-eligible images that have none (highest priority
    first). Returns how many items were created. Idempotent (unique image+emotion, ignore_conflicts).

    Which questions: the image's generation emotion (Image.extra["emotion"], a taxonomy name or
    alias) plus one contrastive emotion from another group, chosen with the image id as seed; an
    image that names no emotion gets all 40 questions.
    """
    tax = taxonomy.load()
    images = list(Image.objects.filter(project=project, flagged=False).exclude(file="")
                  .exclude(Exists(BinaryItem.objects.filter(image=OuterRef("pk"))))
                  .order_by("-priority", "id").values("id", "extra")[:batch])
    items: list[BinaryItem] = []
    for row in images:
        name = (row["extra"] or {}).get("emotion") if isinstance(row["extra"], dict) else None
        try:
            target = tax.index_of(str(name)) if name else None
        except KeyError:
            target = None
        if target is None:
            items += [BinaryItem(project=project, image_id=row["id"], emotion=i) for i in range(taxonomy.N_EMOTIONS)]
            continue
        others = [e.index for e in tax.emotions if e.group != tax.emotions[target].group]
        contrast = random.Random(row["id"]).choice(others)
        items += [BinaryItem(project=project, image_id=row["id"], emotion=target),
                  BinaryItem(project=project, image_id=row["id"], emotion=contrast, contrastive=True)]
    BinaryItem.objects.bulk_create(items, ignore_conflicts=True)
    return len(items)


def assignment_claim(*, project: Project, rater: User, now: datetime | None = None) -> Assignment | None:
    """The rater's lease on the next image; None when nothing is left for them. See module docstring."""
    claim = assignment_claim_next(project=project, rater=rater, now=now)
    return claim.assignment if claim else None


def assignment_claim_next(*, project: Project, rater: User, now: datetime | None = None, just_finished: bool = False
                          ) -> Claim | None:
    """Like assignment_claim, with the next candidate's image URL as a prefetch hint.

    `just_finished`: the caller has just finished the rater's open assignment (submit, skip, flag),
    so there is no open one to look up first (saves a query; should another tab have claimed one
    meanwhile, the one-open-lease constraint refuses our insert and theirs is returned).

    Preconditions: the caller checked that `rater` may rate `project`. Runs in its own transaction
    (or a savepoint of the caller's). Locks: the chosen Image row (intensity) or BinaryItem row
    (binary), until the transaction ends.
    """
    now = now or timezone.now()
    current = None if just_finished else assignment_current(project=project, rater=rater)
    if current is not None:
        if current.expires_at > now:
            return Claim(current)
        # The lease ran out without a submit: give it up; the same image may well come back below.
        Assignment.objects.filter(pk=current.pk, status=AssignmentStatus.OPEN).update(
            status=AssignmentStatus.EXPIRED, finished_at=now)
    retest, n_claims = _retest_lease(project, rater, now)
    if retest is not None:
        # a prefetch hint as new work has one (#16: a repeat must look like new work)
        return _with_repeat_hint(project, rater, now, Claim(retest, _next_hint(project, rater, now)), n_claims)
    for _round in range(2):
        claim = _claim_locked(project, rater, now)
        if claim is not None or not project.is_binary:
            return _with_repeat_hint(project, rater, now, claim, n_claims)
        if binary_items_ensure(project=project) == 0:
            return None
    return None


def rater_has_work(*, project: Project, rater: User, now: datetime | None = None) -> bool:
    """Whether a claim now would serve the rater something (the same candidates, unlocked, nothing
    stored); False for a paused rater. For the weekly reminder (annotation.services.digest). Binary
    projects: only questions already created count (they are created lazily by claims)."""
    now = now or timezone.now()
    return any(_candidates(project, rater, now, [], limit=1, lock=False, scope=scope)
               for scope in claim_scopes(project, rater))


def retest_due(*, project_id: int, rater_id: int, n_claims: int, share: float) -> bool:
    """Whether the rater's next claim (their `n_claims`-th assignment in the project, counting from 0)
    is a test-retest repeat. Seeded by project, rater and claim count, so a given sequence of claims
    is reproducible; over many claims the share of repeats approaches `share`."""
    if share <= 0:
        return False
    return random.Random(f"retest:{project_id}:{rater_id}:{n_claims}").random() < share


def _retest_pick(project: Project, rater: User, now: datetime, n_claims: int) -> int | None:
    """The image of a test-retest repeat when the rater's `n_claims`-th claim is due one (seeded by
    project, rater and claim count), else None."""
    if not retest_due(project_id=project.pk, rater_id=rater.pk, n_claims=n_claims, share=project.retest_share):
        return None
    repeated = Assignment.objects.filter(rater=rater, image=OuterRef("image_id"), is_retest=True).exclude(
        status=AssignmentStatus.EXPIRED)
    # never an image whose reference the rater was shown in calibration (as in sql.candidates)
    shown = CalibrationRating.objects.filter(project=project, rater=rater, item__image=OuterRef("image_id"))
    old = list(Rating.objects.filter(project=project, rater=rater, emotion__isnull=True, image__flagged=False,
                                     created_at__lte=now - timedelta(hours=project.retest_min_hours))
               .exclude(image__file="").exclude(Exists(repeated)).exclude(Exists(shown)).order_by("id")
               .values_list("image_id", flat=True)[:_RETEST_POOL])
    if not old:
        return None
    return random.Random(f"retest-pick:{project.pk}:{rater.pk}:{n_claims}").choice(old)


def _retest_lease(project: Project, rater: User, now: datetime) -> tuple[Assignment | None, int | None]:
    """With probability Project.retest_share, a lease on an image the rater rated at least
    retest_min_hours ago and has not been served again (intensity projects only; binary questions
    are not repeated); None when no repeat is due or none is possible. Also the rater's count of
    claims before this one (None outside retest projects). The lease takes no capacity of the image
    and looks like any other on the page; see rating_submit for where it is stored."""
    if project.is_binary or project.retest_share <= 0:
        return None, None
    n_claims = Assignment.objects.filter(project=project, rater=rater).count()
    image_id = _retest_pick(project, rater, now, n_claims)
    if image_id is None:
        return None, n_claims
    try:
        with transaction.atomic():
            return Assignment.objects.create(project=project, image_id=image_id, rater=rater,
                                             status=AssignmentStatus.OPEN, claimed_at=now, is_retest=True,
                                             allocation_reason=AllocationReason.RETEST,
                                             expires_at=now + timedelta(minutes=project.lease_minutes)), n_claims
    except IntegrityError:
        return None, n_claims  # another tab of the rater claimed meanwhile: the normal claim returns theirs


def _with_repeat_hint(project: Project, rater: User, now: datetime, claim: Claim | None,
                      n_claims: int | None) -> Claim | None:
    """When the rater's next claim will be a test-retest repeat, the prefetch hint names the repeat
    (as it will be served), as a hint names the next new image: the page before a repeat must not
    give it away by a hint that does not come true (#16). Retest projects only."""
    if claim is None or n_claims is None:
        return claim
    image_id = _retest_pick(project, rater, now, n_claims + 1)
    if image_id is None:
        return claim
    url = rate_image_url(project_id=project.pk, slug=project.slug, rater_id=rater.pk, image_id=image_id,
                         serving=RETEST)
    return dataclasses.replace(claim, next_image_url=url)


def _image_url(project: Project, rater: User, image_id: int) -> str:
    """The rater's opaque URL of an image served as new work (annotation.rating.images)."""
    return rate_image_url(project_id=project.pk, slug=project.slug, rater_id=rater.pk, image_id=image_id,
                          serving=NEW)


def _next_hint(project: Project, rater: User, now: datetime) -> str | None:
    """The prefetch hint of a test-retest lease: the first free candidate, as a new lease shows it."""
    for scope in claim_scopes(project, rater):
        rows = _candidates(project, rater, now, [], limit=1, lock=False, scope=scope)
        if rows:
            return _image_url(project, rater, rows[0].pk) if rows[0].file else None
    return None


def _claim_fast(project: Project, rater: User, now: datetime, scope: Scope) -> Claim | None:
    """The one-statement claim (see sql.fast_claim); None when it leased nothing (nothing stored)."""
    expires = now + timedelta(minutes=project.lease_minutes)
    params = {"project": project.pk, "rater": rater.pk, "now": connection.ops.adapt_datetimefield_value(now),
              "target": scope.target, "expires": connection.ops.adapt_datetimefield_value(expires), "batch": scope.batch}
    rows = prepared.fetch_models(Image, sql.fast_claim(batch=scope.batch is not None), params,
                                 extra=("lease_id", "rater_count"))
    leased = [r for r in rows if r.lease_id is not None]
    if not leased:
        return None
    image = leased[0]
    assignment = Assignment(pk=image.lease_id, project=project, image=image, item=None, rater=rater,
                            status=AssignmentStatus.OPEN, claimed_at=now, expires_at=expires, batch_id=scope.batch)
    assignment._state.adding, assignment._state.db = False, connection.alias
    nxt = next((r for r in rows if r.pk != image.pk and r.file), None)
    return Claim(assignment, _image_url(project, rater, nxt.pk) if nxt is not None else None,
                 rater_count=int(image.rater_count))


def _busy(project: Project, rater: User, now: datetime, exclude: list[int], attempt: int, scope: Scope) -> bool:
    """Nothing was free, but are there candidates other claimers hold locked right now? Then they
    will be done within milliseconds (a claim transaction is short): wait a little and retry,
    rather than telling the rater there is nothing left."""
    if attempt >= _MAX_ATTEMPTS - 1 or not _candidates(project, rater, now, exclude, limit=1, lock=False,
                                                        scope=scope):
        return False
    time.sleep(0.005 * (attempt + 1))
    return True


def _claim_locked(project: Project, rater: User, now: datetime) -> Claim | None:
    """The next lease from the rater's queues in order (claim_scopes): the first that has one."""
    for scope in claim_scopes(project, rater):
        claim = _claim_in(project, rater, now, scope)
        if claim is not None:
            return claim
    return None


def _claim_in(project: Project, rater: User, now: datetime, scope: Scope) -> Claim | None:
    if _FAST_CLAIM and connection.vendor == "postgresql" and not project.is_binary:
        try:
            # in a caller's transaction, a savepoint: a refused insert must not end the caller's
            with transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext():
                claim = _claim_fast(project, rater, now, scope)
        except IntegrityError:
            # A second claim by the same rater raced us (assignment_one_open_per_rater): use theirs.
            current = assignment_current(project=project, rater=rater)
            return Claim(current) if current else None
        if claim is not None:
            return claim
    exclude: list[int] = []
    for attempt in range(_MAX_ATTEMPTS):
        try:
            with transaction.atomic():
                rows = _candidates(project, rater, now, exclude, limit=sql.LOCK_BATCH, lock=True, scope=scope)
                if not rows:
                    if _busy(project, rater, now, exclude, attempt, scope):
                        continue
                    return None
                if project.is_binary:
                    images = Image.objects.in_bulk([r.image_id for r in rows])
                    first_item: BinaryItem | None = rows[0]
                    image = images[rows[0].image_id]
                    nxt = images[rows[1].image_id] if len(rows) > 1 else None
                else:
                    first_item, image = None, rows[0]
                    nxt = rows[1] if len(rows) > 1 else None
                leased = _lease_if_room(project, rater, now, image, first_item, scope)
                if leased is None:
                    exclude.append(rows[0].pk)
                    continue
        except IntegrityError:
            # A second claim by the same rater raced us (assignment_one_open_per_rater): use theirs.
            current = assignment_current(project=project, rater=rater)
            return Claim(current) if current else None
        url = _image_url(project, rater, nxt.pk) if nxt is not None and nxt.file and nxt.pk != image.pk else None
        return Claim(leased[0], url, rater_count=leased[1])
    return None


@dataclass(frozen=True)
class Progress:
    """What a rater may see about progress: their own count and the project's overall coverage."""

    mine: int
    target_per_image: int
    coverage_percent: int


def rater_progress(*, project: Project, rater: User, mine: int | None = None) -> Progress:
    """The rater's own count (one query, unless a claim counted it already: `mine`) and the
    project's coverage (project_coverage)."""
    if mine is None:
        with connection.cursor() as cur:
            prepared.execute(cur, f"SELECT {sql.RATER_COUNT}", {"project": project.pk, "rater": rater.pk})
            mine = int(cur.fetchone()[0])
    return Progress(mine=mine, target_per_image=project.target_ratings, coverage_percent=project_coverage(project))


_COVERAGE_MEMO = ProcessMemo(seconds=5)


def project_coverage(project: Project) -> int:
    """The project's coverage in percent (ratings taken of those needed), the same for everyone and
    never per image: cached a minute in the shared cache and, in front of it, 5 seconds per process
    (read on every rate page request)."""
    coverage = _COVERAGE_MEMO.get(project.pk)
    if coverage is not None:
        return int(coverage)
    key = f"emorate:coverage:{project.pk}"
    coverage = cache.get(key)
    if coverage is None:
        if project.is_binary:
            done = BinaryItem.objects.filter(project=project, closed=True).count()
            total = BinaryItem.objects.filter(project=project).count()
        else:
            total = Image.objects.filter(project=project, flagged=False).exclude(file="").count() * project.target_ratings
            done = Rating.objects.filter(project=project, emotion__isnull=True).count()
        coverage = min(100, round(100 * done / total)) if total else 0
        cache.set(key, coverage, 60)
    _COVERAGE_MEMO.set(project.pk, coverage)
    return int(coverage)
