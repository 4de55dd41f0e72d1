"""The home page: one card per project, for what each person does there (#20).

Raters: a "Start rating" (or "Continue") button, their own count, images rated and time spent
today, their calibration state. Never other raters' progress.
Leads and admins: coverage against the target, agreement at a glance (mean alpha with its
interval, the snapshot's age), what waits for them (raters' flags, rater alerts), and links.
A handful of small queries per project; the home page lists the projects of one person.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Q, Sum
from django.utils import timezone

from accounts.models import User
from annotation import selectors
from annotation.models import (
    AgreementSnapshot,
    Assignment,
    AssignmentStatus,
    Image,
    ImageFlag,
    Membership,
    Project,
    RaterTally,
    Rating,
    SnapshotStatus,
)
from annotation.selectors_batches import RoundLine, rater_rounds


@dataclass
class RaterCard:
    rated: int = 0
    rated_today: int = 0
    minutes_today: int = 0
    open_assignment: bool = False
    paused: bool = False
    calibration: str = ""  # "", "to do", "waiting for admission", "admitted"
    rounds: list[RoundLine] = field(default_factory=list)  # open rounds they may rate, their own counts (#22)


@dataclass
class LeadCard:
    images: int = 0
    complete: int = 0
    ratings: int = 0
    mean_alpha: float | None = None
    mean_alpha_ci: list[float] | None = None
    ci_with_raters: bool = False  # the interval resamples raters too (else images only)
    snapshot_at: datetime | None = None
    snapshot_age: str = ""  # "12 min ago"
    flags_waiting: int = 0
    alerts: list[str] = field(default_factory=list)

    @property
    def coverage_pct(self) -> int:
        return round(100 * self.complete / self.images) if self.images else 0


@dataclass
class HomeCard:
    project: Project
    rater: RaterCard | None = None
    lead: LeadCard | None = None


def home_cards(user: User, *, now: datetime | None = None) -> list[HomeCard]:
    now = now or timezone.now()
    day_start = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    cards = []
    for project in selectors.project_list_for(user):
        card = HomeCard(project=project)
        if selectors.can_manage(user, project):
            card.lead = _lead_card(project)
            card.lead.snapshot_age = snapshot_age(card.lead.snapshot_at, now)
        elif selectors.can_rate(user, project):
            card.rater = _rater_card(user, project, day_start, now)
        cards.append(card)
    return cards


def _rater_card(user: User, project: Project, day_start: datetime, now: datetime) -> RaterCard:
    card = RaterCard()
    tally = RaterTally.objects.filter(project=project, rater=user).values_list("n_rated", flat=True).first()
    card.rated = int(tally or 0)
    today = Rating.objects.filter(project=project, rater=user, created_at__gte=day_start).aggregate(
        n=Count("id"), seconds=Sum("active_seconds"))
    card.rated_today = int(today["n"] or 0)
    card.minutes_today = round((today["seconds"] or 0) / 60)
    card.open_assignment = Assignment.objects.filter(project=project, rater=user, status=AssignmentStatus.OPEN,
                                                     expires_at__gt=now).exists()
    membership = Membership.objects.filter(project=project, user=user).first()
    card.paused = bool(membership and membership.paused_at)
    card.rounds = rater_rounds(project=project, rater=user)
    if project.require_calibration and membership is not None:
        card.calibration = "admitted" if membership.admitted_at else (
            "waiting for admission" if _calibration_done(project, user) else "to do")
    return card


def _calibration_done(project: Project, user: User) -> bool:
    from annotation.models import CalibrationItem, CalibrationRating

    items = CalibrationItem.objects.filter(project=project).count()
    return bool(items) and CalibrationRating.objects.filter(item__project=project, rater=user).count() >= items


def _lead_card(project: Project) -> LeadCard:
    """Three queries: the images' stored rating counts (as the overview dashboard counts them), the
    latest snapshot's few fields (never its whole payload), the open flags."""
    card = LeadCard()
    counts = Image.objects.filter(project=project, flagged=False).aggregate(
        images=Count("id"), complete=Count("id", filter=Q(n_ratings__gte=project.target_ratings)),
        ratings=Sum("n_ratings"))
    card.images, card.complete = int(counts["images"] or 0), int(counts["complete"] or 0)
    card.ratings = int(counts["ratings"] or 0)
    latest = (AgreementSnapshot.objects.filter(project=project, status=SnapshotStatus.DONE)
              .order_by("-created_at", "-id")
              .values_list("created_at", "finished_at", "payload__mean_alpha", "payload__mean_alpha_ci",
                           "payload__raters").first())
    if latest is not None:
        created_at, finished_at, mean_alpha, mean_ci, raters = latest
        card.mean_alpha = float(mean_alpha) if mean_alpha is not None else None
        ci: dict[str, Any] = dict(mean_ci or {})
        interval = ci.get("ci_raters") or ci.get("ci")
        card.mean_alpha_ci = list(interval) if interval else None
        card.ci_with_raters = bool(ci.get("ci_raters"))
        card.snapshot_at = finished_at or created_at
        card.alerts = [f"{label}: {reason}" for label, reasons in selectors.snapshot_rater_alerts(project, raters)
                       for reason in reasons]
    card.flags_waiting = (ImageFlag.objects.filter(project=project, resolved_at__isnull=True)
                          .values("image_id").distinct().count())
    return card


def snapshot_age(at: datetime | None, now: datetime) -> str:
    if at is None:
        return ""
    age = now - at
    if age < timedelta(hours=1):
        return f"{max(1, int(age.total_seconds() // 60))} min ago"
    if age < timedelta(days=2):
        return f"{int(age.total_seconds() // 3600)} h ago"
    return f"{age.days} days ago"
