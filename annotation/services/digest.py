"""The weekly lead digest: one email per project and lead per period (ISO week by default), with
coverage, the agreement change since the previous digest, rater alerts and releases built.

Idempotent: accounts' EmailSent holds one row per (project, lead, period) and the email goes out
only with the first row. Leads who turned `email_digest` off get nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, Q
from django.utils import timezone

from accounts.emails import email_render, email_send_later, site_url
from accounts.models import EmailSent, Role, User
from annotation import selectors
from annotation.models import AgreementSnapshot, Image, Project, Rating, Release
from annotation.models.agreement import SnapshotStatus
from annotation.payloads import snapshot_payload
from annotation.rating.claim import rater_has_work


def digest_period(now: datetime) -> str:
    """The period a digest covers: the ISO week, e.g. 2026-W49."""
    year, week, _ = now.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass
class Digest:
    project: Project
    period: str
    images: int = 0
    complete: int = 0
    ratings_in_period: int = 0
    alpha_now: float | None = None
    alpha_before: float | None = None
    alerts: list[str] = field(default_factory=list)
    releases: list[str] = field(default_factory=list)
    reminded: int | None = None  # raters reminded this period; None: reminders are off

    @property
    def coverage_percent(self) -> int:
        return round(100 * self.complete / self.images) if self.images else 0


def _alpha(snapshot: AgreementSnapshot | None) -> float | None:
    payload = snapshot_payload(snapshot.payload) if snapshot is not None else None
    value = payload.get("mean_alpha") if payload is not None else None
    return float(value) if isinstance(value, int | float) else None


def digest_build(project: Project, *, now: datetime, since: datetime) -> Digest:
    """Read the figures for one project's digest (reads snapshots; computes nothing heavy)."""
    digest = Digest(project=project, period=digest_period(now))
    counts = Image.objects.filter(project=project).annotate(n=Count("ratings")).aggregate(
        images=Count("id"), complete=Count("id", filter=Q(n__gte=project.target_ratings)))
    digest.images, digest.complete = counts["images"], counts["complete"]
    digest.ratings_in_period = Rating.objects.filter(project=project, created_at__gte=since, created_at__lt=now).count()
    done = AgreementSnapshot.objects.filter(project=project, status=SnapshotStatus.DONE)
    latest = done.filter(created_at__lt=now).order_by("-created_at").first()
    digest.alpha_now = _alpha(latest)
    digest.alpha_before = _alpha(done.filter(created_at__lt=since).order_by("-created_at").first())
    raters = ((latest.payload or {}).get("raters") or []) if latest else []
    digest.alerts += [f"{label}: {reason}" for label, reasons in selectors.snapshot_rater_alerts(project, raters)
                      for reason in reasons]
    digest.releases = list(Release.objects.filter(project=project, built_at__gte=since, built_at__lt=now)
                           .order_by("built_at").values_list("version", flat=True))
    return digest


def _reminder_key(project: Project, rater: User, period: str) -> str:
    return f"reminder:{project.pk}:{rater.pk}:{period}"


def rater_reminders_send(project: Project, *, now: datetime, period: str) -> list[str]:
    """With Project.rater_reminders on: queue this period's reminder for every active, unpaused
    rater of the project who has images waiting (annotation.rating.claim.rater_has_work) and has not
    turned the digest email off; once per project, rater and period (EmailSent). The email names
    the rater's own count only, never anything about other raters. Returns the keys queued."""
    if not project.rater_reminders:
        return []
    raters = (User.objects.filter(memberships__project=project, memberships__paused_at__isnull=True,
                                  role=Role.RATER, is_active=True, email_digest=True).order_by("pk"))
    queued: list[str] = []
    for rater in raters:
        key = _reminder_key(project, rater, period)
        if EmailSent.objects.filter(key=key).exists() or not rater_has_work(project=project, rater=rater, now=now):
            continue
        mine = Rating.objects.filter(project=project, rater=rater).count()
        subject, body = email_render("rater_reminder", {
            "project": project, "rater": rater, "mine": mine,
            "rate": site_url(f"/projects/{project.slug}/rate/")})
        email_send_later(to=rater.email, subject=subject, body=body, key=key)
        queued.append(key)
    return queued


def lead_digests_send(*, now: datetime | None = None) -> int:
    """Queue this period's digest for every lead of every project (once per project, lead and
    period), and the raters' reminders of projects that want them (rater_reminders_send, first, so
    the digest can say how many went out); returns how many emails were queued."""
    now = now or timezone.now()
    period = digest_period(now)
    since = now - timedelta(days=7)
    sent = 0
    for project in Project.objects.order_by("pk"):
        reminded = rater_reminders_send(project, now=now, period=period)
        sent += len(reminded)
        leads = User.objects.filter(memberships__project=project, role=Role.LEAD, is_active=True, email_digest=True)
        digest: Digest | None = None
        for lead in leads:
            key = f"digest:{project.pk}:{lead.pk}:{period}"
            if EmailSent.objects.filter(key=key).exists():
                continue
            if digest is None:
                digest = digest_build(project, now=now, since=since)
                if project.rater_reminders:  # this period's: this run's (sent or still queued) and earlier runs'
                    digest.reminded = len(set(reminded) | set(EmailSent.objects.filter(
                        key__startswith=f"reminder:{project.pk}:", key__endswith=f":{period}")
                        .values_list("key", flat=True)))
            subject, body = email_render("lead_digest", {
                "d": digest, "lead": lead, "dashboard": site_url(f"/projects/{project.slug}/dashboard/")})
            email_send_later(to=lead.email, subject=subject, body=body, key=key)
            sent += 1
    return sent

