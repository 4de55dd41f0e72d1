"""Read side of batches (rounds, #22): progress, pace and projection for leads; a rater's own round.

Definitions (docs/agreement.md, "Rounds"): a batch's images are its usable images (a file, not
flagged); an image is complete at the batch's target plus its extra target; coverage is the
ratings taken (each image's ratings, capped at what it needs) over the ratings needed; ratings per
day count every rating of the batch's images since the batch was first opened; the projection is
annotation.batching.project_completion. A rater sees their own count in a round, never others'.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db import connection
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import Least, TruncDate
from django.utils import timezone

from accounts.models import User
from annotation.batching import Projection, project_completion
from annotation.models import Assignment, AssignmentStatus, Batch, BatchImage, BatchState, Project, Rating
from core import prepared

DAYS = 14  # ratings per day shown for a batch


@dataclass(frozen=True)
class BatchProgress:
    batch: Batch
    n_images: int  # usable images
    n_complete: int  # images at their target in this batch
    taken: int  # ratings counted towards the target (capped per image)
    needed: int  # ratings the target asks for
    per_day: list[tuple[date, int]]  # the last DAYS days (or since opening), zero-filled
    projection: Projection

    @property
    def coverage_percent(self) -> int:
        return min(100, int(100 * self.taken / self.needed)) if self.needed else 100

    @property
    def complete(self) -> bool:
        return self.taken >= self.needed


def _counts(batch: Batch) -> tuple[int, int, int, int]:
    need = batch.target_ratings + F("image__extra_target")
    row = (BatchImage.objects.filter(batch=batch, image__flagged=False).exclude(image__file="")
           .aggregate(n=Count("id"), complete=Count("id", filter=Q(image__n_ratings__gte=need)),
                      taken=Sum(Least(F("image__n_ratings"), need)), needed=Sum(need)))
    return int(row["n"] or 0), int(row["complete"] or 0), int(row["taken"] or 0), int(row["needed"] or 0)


def _ratings(batch: Batch) -> object:
    """The ratings of the batch's images made since it was first opened."""
    qs = Rating.objects.filter(project_id=batch.project_id, emotion__isnull=True,
                               image__batch_memberships__batch=batch)
    since = batch.opened_at
    return qs.filter(created_at__gte=since) if since is not None else qs.none()


def batch_progress(batch: Batch, *, today: date | None = None) -> BatchProgress:
    """A batch's coverage, ratings per day and projected completion (2 queries)."""
    today = today or timezone.localdate()
    n, complete, taken, needed = _counts(batch)
    first = today - timedelta(days=DAYS - 1)
    opened_on = timezone.localdate(batch.opened_at) if batch.opened_at else None
    counts: dict[date, int] = {}
    if batch.opened_at is not None:
        start = timezone.make_aware(datetime.combine(max(first, opened_on or first), datetime.min.time()))
        qs = _ratings(batch).filter(created_at__gte=start)  # type: ignore[attr-defined]
        counts = {d: int(c) for d, c in qs.annotate(day=TruncDate("created_at")).values_list("day")
                  .annotate(c=Count("id")).values_list("day", "c").order_by()}
    days_from = max(first, opened_on) if opened_on else today
    per_day = [(days_from + timedelta(days=k), counts.get(days_from + timedelta(days=k), 0))
               for k in range((today - days_from).days + 1)]
    projection = project_completion(remaining=max(0, needed - taken), per_day=counts, today=today,
                                    opened_on=opened_on, due_on=batch.due_on)
    return BatchProgress(batch, n, complete, taken, needed, per_day, projection)


def batch_list(project: Project, *, today: date | None = None) -> list[BatchProgress]:
    """Every batch of the project with its progress, open ones first, then by priority."""
    order = {str(BatchState.OPEN): 0, str(BatchState.PAUSED): 1, str(BatchState.DRAFT): 2, str(BatchState.CLOSED): 3}
    batches = sorted(Batch.objects.filter(project=project), key=lambda b: (order[b.state], -b.priority, b.pk))
    return [batch_progress(b, today=today) for b in batches]


def batch_contributions(batch: Batch) -> list[tuple[str, int]]:
    """(rater, ratings of the batch's images since it was opened), most first (1-2 queries)."""
    rows = list(_ratings(batch).values_list("rater_id").annotate(n=Count("id")).values_list(  # type: ignore[attr-defined]
        "rater_id", "n").order_by())
    labels = {u.pk: (u.display_name or u.email) for u in User.objects.filter(pk__in=[r for r, _ in rows])}
    return sorted(((labels.get(r, str(r)), int(n)) for r, n in rows), key=lambda t: (-t[1], t[0]))


def batch_raters(batch: Batch) -> list[str]:
    """The raters chosen for the batch (emails); [] when every rater of the project may rate it."""
    return [] if batch.all_raters else sorted(batch.raters.values_list("email", flat=True))


@dataclass(frozen=True)
class RoundLine:
    """What a rater sees of a round: its name, their own count in it, its size and due date."""

    name: str
    done: int
    n_images: int
    due_on: date | None


# The rate page's round line: one prepared statement (on every rate page of a rater in rounds; the
# count walks the rater's leases of the round through assignment_batch_rater). Parameters: batch, rater.
_ROUND_LINE = """
SELECT b.name, (SELECT count(*) FROM annotation_assignment a WHERE a.batch_id = b.id AND a.rater_id = %(rater)s
                AND a.status = 'submitted'), b.n_images, b.due_on
FROM annotation_batch b WHERE b.id = %(batch)s
"""


def rater_round(*, batch_id: int, rater: User) -> RoundLine | None:
    """The rater's line for the round their lease came from (1 prepared statement)."""
    with connection.cursor() as cur:
        prepared.execute(cur, _ROUND_LINE, {"batch": batch_id, "rater": rater.pk})
        row = cur.fetchone()
    if row is None:
        return None
    due = row[3]
    if isinstance(due, str):  # SQLite (the demo) gives the date as text
        due = date.fromisoformat(due)
    return RoundLine(str(row[0]), int(row[1]), int(row[2]), due)


def rater_rounds(*, project: Project, rater: User) -> list[RoundLine]:
    """The open rounds the rater may rate in the project, best first, with their own counts (1 query)."""
    rows = (Batch.objects.filter(project=project, state=BatchState.OPEN)
            .filter(Q(all_raters=True) | Q(raters=rater)).distinct()
            .annotate(done=Count("assignments", filter=Q(assignments__rater=rater,
                                                         assignments__status=AssignmentStatus.SUBMITTED),
                                 distinct=True))
            .order_by("-priority", "id").values_list("name", "done", "n_images", "due_on"))
    return [RoundLine(*r) for r in rows]


def open_leases(batch: Batch) -> int:
    return Assignment.objects.filter(batch=batch, status=AssignmentStatus.OPEN, expires_at__gt=timezone.now()).count()
