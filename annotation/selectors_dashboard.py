"""READ side of the lead dashboards. Agreement figures come from stored snapshots only (never
computed on request); the rest are a fixed, small number of aggregate queries per page.

Callers check permissions first (selectors.can_manage).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cached_property
from typing import Any

from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Max, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.models import Role

from .models import (
    AgreementSnapshot,
    Assignment,
    AssignmentStatus,
    AuditEvent,
    Image,
    ImageFlag,
    Membership,
    ModelScore,
    Project,
    Rating,
    Release,
    ReleaseStatus,
    SnapshotStatus,
)
from .models.release import semver_key
from .payloads import SnapshotEmotion, SnapshotKappa, SnapshotPayload, snapshot_payload
from .scoring.selectors import scoring_progress
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
    scoring: dict[str, int] | None = None  # {"done", "total"} of a running scoring job
    rater_model: bool = False  # the measurement model being fitted after a snapshot (#18)

    @property
    def running(self) -> bool:
        return (self.snapshot is not None or self.snapshot_queued or bool(self.releases) or self.scoring is not None
                or self.rater_model)

    @property
    def scoring_percent(self) -> int:
        if not self.scoring or not self.scoring.get("total"):
            return 0
        return int(100 * self.scoring["done"] / self.scoring["total"])


def jobs_running(project: Project) -> Jobs:
    """Running agreement snapshot, release builds and scoring run (2 queries + 2 cache reads)."""
    snapshot = (AgreementSnapshot.objects.filter(project=project, status=SnapshotStatus.RUNNING)
                .defer("payload").order_by("-created_at", "-id").first())
    queued = bool(cache.get(recompute_queued_key(project.pk)))
    if snapshot is not None and queued:
        cache.delete(recompute_queued_key(project.pk))
        queued = False
    releases = list(Release.objects.filter(project=project, status__in=[ReleaseStatus.DRAFT, ReleaseStatus.BUILDING])
                    .defer("manifest", "summary", "config", "inputs").order_by("-created_at"))
    return Jobs(snapshot=snapshot, snapshot_queued=queued, releases=releases, scoring=scoring_progress(project),
                rater_model=cache.get(rater_model_running_key(project.pk)) is not None)


def model_ambiguity(project: Project, limit: int = 20) -> list[dict[str, Any]]:
    """The most ambiguous labels under the measurement model stored with the latest snapshot (#18):
    ``{"image", "name", "sd", "emotion"}``, largest sd first; [] when none converged (1 query, the
    subtree only)."""
    row = (AgreementSnapshot.objects.filter(project=project, status=SnapshotStatus.DONE)
           .order_by("-created_at", "-id")
           .values_list("payload__rater_model__converged", "payload__rater_model__ambiguity__top").first())
    if not row or row[0] is not True or not row[1]:
        return []
    return list(row[1])[:limit]


def rater_model_running_key(project_id: int) -> str:
    """The cache key set while the measurement model is being fitted (services.rater_model, #18)."""
    return f"rater-model-running:v1:{project_id}"


# --- throughput counters (ratings per day / per rater and week) -------------------------------

# Ratings are never deleted and never change their created_at or rater, so counts per day are
# final once counted. The cache keeps counts of ratings up to a watermark id; each request counts
# only the ratings above it (a short range scan of the primary key). The watermark trails the
# newest id by TAIL_IDS so that a rating whose transaction committed late (a lower id appearing
# after a higher one) is still counted: rows above the watermark are always counted live.
TAIL_IDS = 5000
THROUGHPUT_DAYS = 120
THROUGHPUT_TTL = 24 * 3600  # a day: a cold start also drops days that left the window


def _throughput_key(project_id: int) -> str:
    return f"dashboard-throughput:v1:{project_id}"


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, datetime.min.time()))


def _counts(project: Project, *, since: date, lo: int, hi: int | None = None) -> tuple[dict[tuple[int, date], int], int]:
    """Ratings per (rater, day) with lo < id <= hi created since `since`, and the largest id seen."""
    qs = Rating.objects.filter(project=project, pk__gt=lo, created_at__gte=_day_start(since))
    if hi is not None:
        qs = qs.filter(pk__lte=hi)
    out: dict[tuple[int, date], int] = {}
    newest = lo
    for rater, day, n, last in (qs.annotate(day=TruncDate("created_at")).values_list("rater_id", "day")
                                .annotate(n=Count("id"), last=Max("id")).order_by()):
        out[(int(rater), day)] = int(n)
        newest = max(newest, int(last))
    return out, newest


def _merge(a: dict[tuple[int, date], int], b: dict[tuple[int, date], int]) -> dict[tuple[int, date], int]:
    out = dict(a)
    for k, n in b.items():
        out[k] = out.get(k, 0) + n
    return out


def throughput(project: Project) -> dict[tuple[int, date], int]:
    """Ratings per (rater, day) over the last THROUGHPUT_DAYS days.

    Warm cache: one query, over the ratings above the watermark (at most about 2 x TAIL_IDS rows).
    Cold cache (first request, or a day after the last): two queries over the window. Every
    TAIL_IDS new ratings one more query moves the watermark up."""
    since = timezone.localdate() - timedelta(days=THROUGHPUT_DAYS - 1)
    key = _throughput_key(project.pk)
    cached = cache.get(key)
    if cached is None:
        newest = Rating.objects.filter(project=project).aggregate(m=Max("id"))["m"] or 0
        watermark = max(newest - TAIL_IDS, 0)
        base, _ = _counts(project, since=since, lo=0, hi=watermark)
    else:
        watermark = int(cached["watermark"])
        base = {(int(r), date.fromisoformat(d)): int(n) for r, d, n in cached["counts"]}
    tail, newest = _counts(project, since=since, lo=watermark)
    if cached is None or newest - watermark > 2 * TAIL_IDS:
        if cached is not None:
            settled, _ = _counts(project, since=since, lo=watermark, hi=newest - TAIL_IDS)
            base, watermark = _merge(base, settled), newest - TAIL_IDS
            tail, _ = _counts(project, since=since, lo=watermark)
        cache.set(key, {"watermark": watermark,
                        "counts": [(r, d.isoformat(), n) for (r, d), n in base.items() if d >= since]}, THROUGHPUT_TTL)
    return {k: v for k, v in _merge(base, tail).items() if k[1] >= since}


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
    tally_rows: int = 0  # ImageTally rows summed (annotation.services.tallies folds them)


@dataclass(frozen=True)
class TallyRow:
    """Non-flagged images of a project with one combination of these values (ImageTally summed)."""

    n_ratings: int
    ethnicity: str
    age: int | None
    gender: str
    sent_back: bool
    images: int


_TALLY_SQL = """
SELECT n_ratings, ethnicity, age, gender, sent_back, sum(images), sum(count(*)) OVER ()
FROM annotation_imagetally WHERE project_id = %s
GROUP BY 1, 2, 3, 4, 5 HAVING sum(images) <> 0
"""


def image_tally(project: Project) -> tuple[list[TallyRow], int]:
    """The project's non-flagged images counted by (n_ratings, demographics, sent back), and how
    many tally rows were summed for it (annotation.services.tallies folds them when that grows).

    PostgreSQL: the trigger-kept ImageTally rows (a few thousand rows, whatever the number of
    images: #21). The SQLite demo: one pass over the images."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute(_TALLY_SQL, [project.pk])
            got = cur.fetchall()
        rows = [TallyRow(int(k), e, a, g, bool(b), int(n)) for k, e, a, g, b, n, _ in got]
        return rows, int(got[0][6]) if got else 0
    grouped = (Image.objects.filter(project=project, flagged=False)
               .values_list("n_ratings", "ethnicity", "age", "gender")
               .annotate(back=Count("id", filter=Q(adjudication="more_ratings")), n=Count("id")).order_by())
    out: list[TallyRow] = []
    for k, e, a, g, back, n in grouped:
        if back:
            out.append(TallyRow(k, e, a, g, True, back))
        if n - back:
            out.append(TallyRow(k, e, a, g, False, n - back))
    return out, 0


def overview(project: Project) -> Overview:
    """Coverage, throughput and what waits for a lead (6 queries with a warm throughput cache)."""
    now = timezone.now()
    # The coverage histogram and the images sent back for more ratings, from the image tallies.
    by_count: dict[int, int] = {}
    sent_back = 0
    tally, tally_rows = image_tally(project)
    for row in tally:
        by_count[row.n_ratings] = by_count.get(row.n_ratings, 0) + row.images
        sent_back += row.images if row.sent_back else 0
    top = max([project.target_ratings, *by_count])
    coverage = [(k, by_count.get(k, 0)) for k in range(top + 1)]
    today = timezone.localdate(now)
    since = today - timedelta(days=DAYS - 1)
    per_day: dict[date, int] = {}
    for (_rater, day), n in throughput(project).items():
        per_day[day] = per_day.get(day, 0) + n
    # Images with a rater's flag no lead has decided yet (index image_flag_open).
    flagged_waiting = (ImageFlag.objects.filter(project=project, resolved_at__isnull=True)
                       .values("image_id").distinct().count())
    latest = (AgreementSnapshot.objects.filter(project=project, status=SnapshotStatus.DONE)
              .order_by("-created_at", "-id").values_list("created_at", "payload__mean_alpha").first())
    return Overview(
        target=project.target_ratings, coverage=coverage, n_images=sum(by_count.values()),
        n_ratings=sum(k * n for k, n in by_count.items()),
        n_complete=sum(n for k, n in by_count.items() if k >= project.target_ratings),
        ratings_per_day=[(since + timedelta(days=i), per_day.get(since + timedelta(days=i), 0)) for i in range(DAYS)],
        open_leases=Assignment.objects.filter(project=project, status=AssignmentStatus.OPEN,
                                              expires_at__gt=now).count(),
        flagged_waiting=flagged_waiting, disputes_open=sent_back,
        model_scores=list(ModelScore.objects.filter(project=project).values_list("model_name")
                          .annotate(n=Count("id")).order_by("model_name")),
        snapshot_at=latest[0] if latest else None,
        mean_alpha=float(latest[1]) if latest and latest[1] is not None else None, tally_rows=tally_rows,
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
    payload: SnapshotPayload | None  # None: no finished snapshot yet
    trend: list[TrendPoint]  # oldest first

    @property
    def emotions(self) -> list[SnapshotEmotion]:
        return list(self.payload["emotions"]) if self.payload else []

    @property
    def level(self) -> str:
        return self.payload["level"] if self.payload else "interval"

    @property
    def models(self) -> list[dict[str, Any]]:
        """Per model, its agreement with the experts (intensity snapshots; [] before any model scores)."""
        return list(self.payload.get("models", [])) if self.payload else []

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
    return AgreementPage(snapshot=snapshot, payload=snapshot_payload(snapshot.payload) if snapshot else None,
                         trend=trend)


# --- raters -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RatersPage:
    snapshot: AgreementSnapshot | None
    raters: list[dict[str, Any]]  # SnapshotPayload["raters"]
    kappa: SnapshotKappa
    weeks: list[date]
    per_week: dict[int, dict[date, int]]  # rater -> week -> ratings
    labels: dict[int, str]
    alpha_without_trend: list[tuple[datetime, dict[int, float | None]]]  # oldest first
    members: list[RaterStatus] = field(default_factory=list)  # every rater of the project, paused / excluded


@dataclass(frozen=True)
class RaterStatus:
    """A rater's standing in the project, for the lead's pause / exclude buttons."""

    rater: int
    label: str
    paused_at: datetime | None
    excluded: bool
    exclusion_reason: str


def rater_statuses(project: Project) -> list[RaterStatus]:
    """Every rater member of the project with their pause / exclusion state (one query)."""
    rows = (Membership.objects.filter(project=project, user__role=Role.RATER).order_by("user_id")
            .values_list("user_id", "user__display_name", "user__email", "paused_at", "excluded_from_releases",
                         "exclusion_reason"))
    return [RaterStatus(rater=u, label=name or email, paused_at=p, excluded=x, exclusion_reason=reason)
            for u, name, email, p, x, reason in rows]


def raters_page(project: Project) -> RatersPage:
    """Per-rater figures of the latest snapshot, ratings per week, leave-one-out trend (3 queries warm)."""
    snapshot = agreement_latest(project)
    payload = snapshot_payload(snapshot.payload) if snapshot else None
    raters = list(payload.get("raters", [])) if payload else []
    labels = {int(r["rater"]): str(r["label"]) for r in raters}
    today = timezone.localdate()
    first_week = today - timedelta(days=today.weekday()) - timedelta(weeks=WEEKS - 1)
    per_week: dict[int, dict[date, int]] = {}
    for (rater_id, day), n in throughput(project).items():
        if day >= first_week:
            week = day - timedelta(days=day.weekday())
            weeks = per_week.setdefault(rater_id, {})
            weeks[week] = weeks.get(week, 0) + n
    history = (AgreementSnapshot.objects.filter(project=project, status=SnapshotStatus.DONE)
               .order_by("-created_at", "-id").values_list("created_at", "payload__raters")[:TREND_SNAPSHOTS])
    trend = [(at, {int(r["rater"]): r.get("alpha_without") for r in (rs or [])}) for at, rs in history][::-1]
    return RatersPage(snapshot=snapshot, raters=raters,
                      kappa=(payload.get("kappa") if payload else None) or {"raters": [], "pairs": [],
                                                                             "per_emotion_mean": {}},
                      weeks=[first_week + timedelta(weeks=i) for i in range(WEEKS)], per_week=per_week,
                      labels=labels, alpha_without_trend=trend, members=rater_statuses(project))


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
    """Per-stratum agreement (snapshot) and coverage (the image tallies)."""
    snapshot = agreement_latest(project)
    payload = snapshot_payload(snapshot.payload) if snapshot else None
    strata = dict(payload.get("strata", {})) if payload else {}
    coverage: dict[str, list[StratumCoverage]] = {key: [] for key in STRATA}
    for key, value, n, r, done in _strata_counts(project):
        coverage[key].append(StratumCoverage("unknown" if value in (None, "") else str(value), n, int(r or 0), done))
    for key in STRATA:
        coverage[key].sort(key=lambda c: (c.stratum == "unknown", _stratum_order(c.stratum)))
    return DemographicsPage(snapshot=snapshot, strata=strata, coverage=coverage)


def _stratum_order(label: str) -> tuple[int, float, str]:
    try:
        return (0, float(label), "")
    except ValueError:
        return (1, 0.0, label)


def _strata_counts(project: Project) -> list[tuple[str, Any, int, int, int]]:
    """(key, stratum, images, ratings, complete images) per stratum of every key, from the image
    tallies (image_tally)."""
    acc: dict[tuple[str, Any], list[int]] = {}
    for row in image_tally(project)[0]:
        for key, value in (("ethnicity", row.ethnicity), ("age", row.age), ("gender", row.gender)):
            cell = acc.setdefault((key, value), [0, 0, 0])
            cell[0] += row.images
            cell[1] += row.images * row.n_ratings
            cell[2] += row.images if row.n_ratings >= project.target_ratings else 0
    return [(key, value, n, r, done) for (key, value), (n, r, done) in acc.items() if n]


# --- disputed images --------------------------------------------------------------------------


@dataclass(frozen=True)
class DisputedImage:
    image: Image
    ratings: list[list[int]]  # one values vector per rating
    model: dict[str, list[float]]  # model name -> 40 scores

    @cached_property
    def _spread(self) -> list[tuple[int, int, float]]:
        out = []
        for e in range(len(EMOTIONS)):
            vals = [r[e] for r in self.ratings if e < len(r)]
            if len(vals) >= 2:
                mean = sum(vals) / len(vals)
                sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / len(vals))
                out.append((e, max(vals) - min(vals), sd))
        return sorted(out, key=lambda t: (-t[2], -t[1], t[0]))

    def spread(self) -> list[tuple[int, int, float]]:
        """(emotion index, max - min, population standard deviation) per emotion rated by two or
        more experts, most disputed first."""
        return self._spread

    @property
    def dispute(self) -> float:
        """Mean standard deviation of the ratings over the emotions (0 = full agreement)."""
        s = self.spread()
        return sum(t[2] for t in s) / len(s) if s else 0.0


@dataclass(frozen=True)
class DisputedPage:
    images: list[DisputedImage]
    page: int
    has_next: bool


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
    """One page of the gallery, highest priority first (3 queries; no total count, which would scan
    every image: one row more than a page tells whether a next page exists)."""
    page = max(page, 1)
    images = list(_disputed_qs(project).order_by("-priority", "id")
                  [(page - 1) * GALLERY_PAGE: page * GALLERY_PAGE + 1])
    has_next = len(images) > GALLERY_PAGE
    return DisputedPage(images=_with_ratings(images[:GALLERY_PAGE]), page=page, has_next=has_next)


def project_raters(project: Project) -> list[Any]:
    """The project's active raters, by email (the rounds forms: who rates a round; 1 query)."""
    return [m.user for m in Membership.objects.filter(project=project, user__role=Role.RATER, user__is_active=True)
            .select_related("user").order_by("user__email")]


def flags_open(project: Project, limit: int = 100) -> list[ImageFlag]:
    """Raters' flags waiting for a lead's decision, oldest first, with image and rater (1 query)."""
    return list(ImageFlag.objects.filter(project=project, resolved_at__isnull=True)
                .select_related("image", "rater").order_by("created_at", "id")[:limit])


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
