"""Rater quality actions of a lead: pause / resume a rater, exclude / re-include their ratings.

Contracts:

- **Pause.** A paused rater (Membership.paused_at set) is served nothing in the project: the claim
  query skips them (annotation.rating.claim) and the rate page says they are paused. Pausing
  ends their open leases at once (status "expired"), so those images return to the queue for
  other raters. Their submitted ratings stay and keep counting.
- **Exclude.** An excluded rater's ratings are left out of every release *created* afterwards
  (release_create freezes the list, with the reasons, into the release config; the card lists
  them). Agreement snapshots still include them: the lead needs to see what the rater does.
- Every action is audited (audit_record) in the transaction that makes it, and is idempotent: a
  repeat changes nothing and records nothing.
- Errors are RaterActionError (message names the problem): no membership, empty reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from annotation.models import Assignment, AssignmentStatus, Membership, Project
from annotation.services.audit import audit_record

MAX_REASON = 500


class RaterActionError(ValueError):
    """A refused rater action; the message names the problem."""


@dataclass(frozen=True)
class ExcludedRater:
    rater_id: int
    reason: str


def _membership(project: Project, rater: Any) -> Membership:
    """The rater's membership, locked for the transaction."""
    rater_id = rater if isinstance(rater, int) else rater.pk
    membership = Membership.objects.select_for_update().filter(project=project, user_id=rater_id).first()
    if membership is None:
        raise RaterActionError(f"user {rater_id} is not a member of project {project.slug!r}")
    return membership


def rater_pause(*, project: Project, rater: Any, actor: Any, reason: str = "", now: Any | None = None) -> Membership:
    """Pause a rater in a project and give their open leases back to the queue. Idempotent."""
    now = now or timezone.now()
    with transaction.atomic():
        m = _membership(project, rater)
        if m.paused_at is not None:
            return m
        m.paused_at = now
        m.save(update_fields=["paused_at"])
        returned = Assignment.objects.filter(project=project, rater_id=m.user_id, status=AssignmentStatus.OPEN
                                             ).update(status=AssignmentStatus.EXPIRED, finished_at=now)
        audit_record(actor=actor, action="rater.paused", project=project, obj=m, rater=m.user_id,
                     leases_returned=returned, reason=reason[:MAX_REASON])
        return m


def rater_resume(*, project: Project, rater: Any, actor: Any) -> Membership:
    """Let a paused rater rate again. Idempotent."""
    with transaction.atomic():
        m = _membership(project, rater)
        if m.paused_at is None:
            return m
        m.paused_at = None
        m.save(update_fields=["paused_at"])
        audit_record(actor=actor, action="rater.resumed", project=project, obj=m, rater=m.user_id)
        return m


def rater_exclude(*, project: Project, rater: Any, actor: Any, reason: str) -> Membership:
    """Leave the rater's ratings out of new releases, for a stated reason (required). A repeat with
    another reason updates the reason (and is audited)."""
    reason = (reason or "").strip()
    if not reason:
        raise RaterActionError("a reason is required to exclude a rater's ratings from releases")
    if len(reason) > MAX_REASON:
        raise RaterActionError(f"the reason is {len(reason)} characters long (allowed: up to {MAX_REASON})")
    with transaction.atomic():
        m = _membership(project, rater)
        if m.excluded_from_releases and m.exclusion_reason == reason:
            return m
        m.excluded_from_releases, m.exclusion_reason = True, reason
        m.save(update_fields=["excluded_from_releases", "exclusion_reason"])
        audit_record(actor=actor, action="rater.excluded", project=project, obj=m, rater=m.user_id, reason=reason)
        return m


def rater_include(*, project: Project, rater: Any, actor: Any) -> Membership:
    """Undo rater_exclude for releases created from now on (earlier releases stay as they are)."""
    with transaction.atomic():
        m = _membership(project, rater)
        if not m.excluded_from_releases:
            return m
        old = m.exclusion_reason
        m.excluded_from_releases, m.exclusion_reason = False, ""
        m.save(update_fields=["excluded_from_releases", "exclusion_reason"])
        audit_record(actor=actor, action="rater.included", project=project, obj=m, rater=m.user_id, old_reason=old)
        return m


def raters_excluded(project: Project) -> list[ExcludedRater]:
    """The raters whose ratings new releases leave out, by id."""
    return [ExcludedRater(rater_id=u, reason=r) for u, r in
            Membership.objects.filter(project=project, excluded_from_releases=True).order_by("user_id")
            .values_list("user_id", "exclusion_reason")]
