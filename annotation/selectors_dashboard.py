"""READ side of the lead dashboards. Agreement figures come from stored snapshots only (never
computed on request); the rest are a fixed, small number of aggregate queries per page.

Callers check permissions first (selectors.can_manage).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.core.cache import cache
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate, TruncWeek
from django.utils import timezone

from .models import (
    AgreementSnapshot,
    Assignment,
    AssignmentStatus,
    AuditEvent,
    Image,
    ImageFlag,
    ModelScore,
    Project,
    Rating,
    Release,
    ReleaseStatus,
    SnapshotStatus,
)
from .models.release import semver_key
from .selectors import agreement_latest
from .taxonomy import EMOTIONS

TREND_SNAPSHOTS = 30
DAYS = 30
WEEKS = 12
GALLERY_PAGE = 24
STRATA = ("ethnicity", "age", "gender")
RECOMPUTE_QUEUED_SECONDS = 15 * 60


def recompute_queued_key(project_id: int) -> str:
    """Cache key set when a lead asks for a snapshot, until the worker starts it (shown as 'queued')."""
    return f"dashboard-recompute-queued:{project_id}"


# --- jobs (polled) ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Jobs:
    snapshot: AgreementSnapshot | None  # running
    snapshot_queued: bool
    releases: list[Release]  # draft or building

    @property
    def running(self) -> bool:
        return self.snapshot is not None or self.snapshot_queued or bool(self.releases)


def jobs_running(project: Project) -> Jobs:
    """Running agreement snapshot and release builds (2 queries + 1 cache read)."""
    snapshot = (AgreementSnapshot.objects.filter(project=project, status=SnapshotStatus.RUNNING)
                .defer("payload").order_by("-created_at", "-id").first())
    queued = bool(cache.get(recompute_queued_key(project.pk)))
    if snapshot is not None and queued:
        cache.delete(recompute_queued_key(project.pk))
        queued = False
    releases = list(Release.objects.filter(project=project, status__in=[ReleaseStatus.DRAFT, ReleaseStatus.BUILDING])
                    .defer("manifest", "summary", "config", "inputs").order_by("-created_at"))
    return Jobs(snapshot=snapshot, snapshot_queued=queued, releases=releases)


# --- overview ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Overview:
    target: int
    coverage: list[tuple[int, int]]  # (number of ratings, images), every count from 0 to the max
    n_images: int
    n_ratings: int
    n_complete: int
    ratings_per_day: list[tuple[date, int]]  # the last DAYS days, zero-filled
    open_leases: int
    flagged_waiting: int
    disputes_open: int
    model_scores: list[tuple[str, int]]
    snapshot_at: datetime | None  # the latest finished agreement snapshot
    mean_alpha: float | None


def overview(project: Project) -> Overview:
    """Coverage, throughput and what waits for a lead (6 queries)."""
    now = timezone.now()
    by_count = dict(Image.objects.filter(project=project, flagged=False).values_list("n_ratings")
                    .annotate(n=Count("id")).order_by())
    top = max([project.target_ratings, *by_count])
    coverage = [(k, by_count.get(k, 0)) for k in range(top + 1)]
    today = timezone.localdate(now)
    since = today - timedelta(days=DAYS - 1)
    per_day = dict(Rating.objects.filter(project=project, created_at__date__gte=since)
                   .annotate(day=TruncDate("created_at")).values_list("day").annotate(n=Count("id")).order_by())
    waiting = Image.objects.filter(project=project).aggregate(
        flagged=Count("id", filter=Q(flagged=True, flags__resolved_at__isnull=True), distinct=True),
        sent_back=Count("id", filter=Q(adjudication="more_ratings"), distinct=True))
    latest = (AgreementSnapshot.objects.filter(project=project, status=SnapshotStatus.DONE)
              .order_by("-created_at", "-id").values_list("created_at", "payload__mean_alpha").first())
    return Overview(
        target=project.target_ratings, coverage=coverage, n_images=sum(by_count.values()),
        n_ratings=sum(k * n for k, n in by_count.items()),
        n_complete=sum(n for k, n in by_count.items() if k >= project.target_ratings),
        ratings_per_day=[(since + timedelta(days=i), per_day.get(since + timedelta(days=i), 0)) for i in range(DAYS)],
        open_leases=Assignment.objects.filter(project=project, status=AssignmentStatus.OPEN,
                                              expires_at__gt=now).count(),
        flagged_waiting=waiting["flagged"], disputes_open=waiting["sent_back"],
        model_scores=list(ModelScore.objects.filter(project=project).values_list("model_name")
                          .annotate(n=Count("id")).order_by("model_name")),
        snapshot_at=latest[0] if latest else None,
        mean_alpha=float(latest[1]) if latest and latest[1] is not None else None,
    )


# --- agreement --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrendPoint:
    snapshot_id: int
    created_at: datetime
    mean_alpha: float | None
    level: str


@dataclass(frozen=True)
class AgreementPage:
    snapshot: AgreementSnapshot | None
    payload: dict[str, Any]
    trend: list[TrendPoint]  # oldest first

    @property
    def emotions(self) -> list[dict[str, Any]]:
        return list(self.payload.get("emotions", []))

    @property
    def warnings(self) -> list[tuple[str, str]]:
        return [(e["emotion"], w) for e in self.emotions for w in e.get("warnings", [])]


def agreement_page(project: Project) -> AgreementPage:
    """The latest snapshot and the mean-alpha trend of the last TREND_SNAPSHOTS (2 queries)."""
    snapshot = agreement_latest(project)
    rows = (AgreementSnapshot.objects.filter(project=project, status=SnapshotStatus.DONE)
            .order_by("-created_at", "-id").values_list("pk", "created_at", "payload__mean_alpha", "level")
            [:TREND_SNAPSHOTS])
    trend = [TrendPoint(pk, at, float(m) if m is not None else None, level) for pk, at, m, level in rows][::-1]
    return AgreementPage(snapshot=snapshot, payload=snapshot.payload if snapshot else {}, trend=trend)


# --- raters -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RatersPage:
    snapshot: AgreementSnapshot | None
    raters: list[dict[str, Any]]
    kappa: dict[str, Any]
    weeks: list[date]
    per_week: dict[int, dict[date, int]]  # rater -> week -> ratings
    labels: dict[int, str]
    alpha_without_trend: list[tuple[datetime, dict[int, float | None]]]  # oldest first


def raters_page(project: Project) -> RatersPage:
    """Per-rater figures of the latest snapshot, ratings per week, leave-one-out trend (3 queries)."""
    snapshot = agreement_latest(project)
    payload = snapshot.payload if snapshot else {}
    raters = list(payload.get("raters", []))
    labels = {int(r["rater"]): str(r["label"]) for r in raters}
    today = timezone.localdate()
    first_week = today - timedelta(days=today.weekday()) - timedelta(weeks=WEEKS - 1)
    per_week: dict[int, dict[date, int]] = {}
    rows = (Rating.objects.filter(project=project, created_at__date__gte=first_week)
            .annotate(week=TruncWeek("created_at")).values_list("rater_id", "week").annotate(n=Count("id")).order_by())
    for rater_id, week, n in rows:
        day = week.date() if isinstance(week, datetime) else week
        per_week.setdefault(int(rater_id), {})[day] = n
    history = (AgreementSnapshot.objects.filter(project=project, status=SnapshotStatus.DONE)
               .order_by("-created_at", "-id").values_list("created_at", "payload__raters")[:TREND_SNAPSHOTS])
    trend = [(at, {int(r["rater"]): r.get("alpha_without") for r in (rs or [])}) for at, rs in history][::-1]
    return RatersPage(snapshot=snapshot, raters=raters,
                      kappa=dict(payload.get("kappa", {"raters": [], "pairs": []})),
                      weeks=[first_week + timedelta(weeks=i) for i in range(WEEKS)], per_week=per_week,
                      labels=labels, alpha_without_trend=trend)


# --- demographics -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StratumCoverage:
    stratum: str
    n_images: int
    n_ratings: int
    n_complete: int


@dataclass(frozen=True)
class DemographicsPage:
    snapshot: AgreementSnapshot | None
    strata: dict[str, list[dict[str, Any]]]
    coverage: dict[str, list[StratumCoverage]] = field(default_factory=dict)


def demographics_page(project: Project) -> DemographicsPage:
    """Per-stratum agreement (snapshot) and coverage (one grouped query per key: 4 queries)."""
    snapshot = agreement_latest(project)
    strata = dict((snapshot.payload if snapshot else {}).get("strata", {}))
    coverage: dict[str, list[StratumCoverage]] = {}
    for key in STRATA:
        rows = (Image.objects.filter(project=project, flagged=False).values_list(key)
                .annotate(n=Count("id"), r=Sum("n_ratings"),
                          done=Count("id", filter=Q(n_ratings__gte=project.target_ratings))).order_by(key))
        coverage[key] = [StratumCoverage("unknown" if value in (None, "") else str(value), n, int(r or 0), done)
                         for value, n, r, done in rows]
    return DemographicsPage(snapshot=snapshot, strata=strata, coverage=coverage)


# --- disputed images --------------------------------------------------------------------------


@dataclass(frozen=True)
class DisputedImage:
    image: Image
    ratings: list[list[int]]  # one values vector per rating
    model: dict[str, list[float]]  # model name -> 40 scores

    def spread(self) -> list[tuple[int, int, float]]:
        """(emotion index, max - min, standard deviation) per emotion, most disputed first."""
        out = []
        for e in range(len(EMOTIONS)):
            vals = [r[e] for r in self.ratings if e < len(r)]
            if len(vals) >= 2:
                out.append((e, max(vals) - min(vals), statistics.pstdev(vals)))
        return sorted(out, key=lambda t: (-t[2], -t[1], t[0]))

    @property
    def dispute(self) -> float:
        """Mean standard deviation of the ratings over the emotions (0 = full agreement)."""
        s = self.spread()
        return sum(t[2] for t in s) / len(s) if s else 0.0


@dataclass(frozen=True)
class DisputedPage:
    images: list[DisputedImage]
    page: int
    n_pages: int
    n_total: int


def _disputed_qs(project: Project) -> Any:
    # Not yet decided (or sent back for more ratings), with at least two ratings to disagree.
    return Image.objects.filter(project=project, n_ratings__gte=2, adjudication__in=["", "more_ratings"])


def _with_ratings(images: list[Image]) -> list[DisputedImage]:
    ids = [i.pk for i in images]
    ratings: dict[int, list[list[int]]] = {}
    for image_id, values in (Rating.objects.filter(image_id__in=ids, emotion__isnull=True)
                             .order_by("image_id", "rater_id").values_list("image_id", "values")):
        ratings.setdefault(image_id, []).append(values)
    scores: dict[int, dict[str, list[float]]] = {}
    for image_id, name, s in (ModelScore.objects.filter(image_id__in=ids).order_by("model_name")
                              .values_list("image_id", "model_name", "scores")):
        scores.setdefault(image_id, {})[name] = s
    return [DisputedImage(i, ratings.get(i.pk, []), scores.get(i.pk, {})) for i in images]


def disputed_page(project: Project, page: int = 1) -> DisputedPage:
    """One page of the gallery, highest priority first (4 queries)."""
    qs = _disputed_qs(project)
    n_total = qs.count()
    n_pages = max(1, -(-n_total // GALLERY_PAGE))
    page = min(max(page, 1), n_pages)
    images = list(qs.order_by("-priority", "id")[(page - 1) * GALLERY_PAGE: page * GALLERY_PAGE])
    return DisputedPage(images=_with_ratings(images), page=page, n_pages=n_pages, n_total=n_total)


@dataclass(frozen=True)
class DisputedDetail:
    item: DisputedImage
    raters: list[tuple[str, list[int], float | None]]  # label, values, seconds
    flags: list[ImageFlag]
    history: list[AuditEvent]


def disputed_detail(project: Project, image_id: int) -> DisputedDetail | None:
    """One image with its ratings, model scores, flags and audit history (5 queries)."""
    image = Image.objects.filter(project=project, pk=image_id).first()
    if image is None:
        return None
    rows = list(Rating.objects.filter(image=image, emotion__isnull=True).select_related("rater")
                .order_by("created_at", "pk"))
    raters = [(r.rater.display_name or r.rater.email, r.values, r.seconds_spent) for r in rows]
    scores = dict(ModelScore.objects.filter(image=image).order_by("model_name").values_list("model_name", "scores"))
    flags = list(ImageFlag.objects.filter(image=image).select_related("rater", "resolved_by").order_by("-created_at"))
    history = list(AuditEvent.objects.filter(project=project, object_type="image", object_id=str(image.pk))
                   .select_related("actor").order_by("-created_at", "-id")[:50])
    return DisputedDetail(item=DisputedImage(image, [r[1] for r in raters], scores), raters=raters, flags=flags,
                          history=history)


# --- releases ---------------------------------------------------------------------------------


def releases_sorted(project: Project) -> list[Release]:
    """The project's releases, newest version first (1 query)."""
    return sorted(Release.objects.filter(project=project), key=lambda r: semver_key(r.version), reverse=True)
