"""A lead's decision on a disputed image: confirm it, flag it, or send it back for more ratings.

Each decision locks the image row, changes it and writes one AuditEvent ("image.adjudicated") in
the same transaction, so the history and the image never disagree.

- confirm: the ratings stand. Clears the dispute (Image.adjudication = "confirmed") and the flag:
  open rater flags are resolved by the lead and the image returns to the data (flagged = False).
- flag: the image is unusable. Image.flagged = True (it leaves the queue, agreement and releases)
  with an ImageFlag by the lead, resolved at once (the lead's flag is itself the decision).
- more_ratings: ask for `extra` more ratings than the project's target. Image.extra_target grows;
  the queue counters (migration 0010) then see room again, and the image jumps to the front of the
  queue (priority above every other image of the project).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from annotation.models import FlagReason, Image, ImageFlag
from annotation.services.audit import audit_record

DECISIONS = ("confirm", "flag", "more_ratings")
MAX_EXTRA = 10


class AdjudicationError(ValueError):
    """A refused decision; the message names the field and what is allowed."""


def _locked(image: Image) -> Image:
    return Image.objects.select_for_update().select_related("project").get(pk=image.pk)


def image_confirm(*, image: Image, actor: Any, note: str = "") -> Image:
    """Confirm the image's ratings: not disputed any more, open flags resolved, back in the data."""
    with transaction.atomic():
        locked = _locked(image)
        now = timezone.now()
        resolved = ImageFlag.objects.filter(image=locked, resolved_at__isnull=True).update(
            resolved_at=now, resolved_by=actor)
        was_flagged = locked.flagged
        locked.adjudication, locked.adjudicated_at, locked.flagged = "confirmed", now, False
        locked.save(update_fields=["adjudication", "adjudicated_at", "flagged"])
        audit_record(actor=actor, action="image.adjudicated", project=locked.project, obj=locked,
                     decision="confirm", note=note[:500], flags_resolved=resolved, was_flagged=was_flagged)
    return locked


def image_flag(*, image: Image, actor: Any, reason: str, note: str = "") -> Image:
    """Flag the image as unusable (reason: one of FlagReason)."""
    if reason not in FlagReason.values:
        raise AdjudicationError(f"reason {reason!r} is not allowed (allowed: {', '.join(FlagReason.values)})")
    with transaction.atomic():
        locked = _locked(image)
        now = timezone.now()
        ImageFlag.objects.create(project=locked.project, image=locked, rater=actor, reason=reason, note=note[:500],
                                 resolved_at=now, resolved_by=actor)
        locked.adjudication, locked.adjudicated_at, locked.flagged = "flagged", now, True
        locked.save(update_fields=["adjudication", "adjudicated_at", "flagged"])
        audit_record(actor=actor, action="image.adjudicated", project=locked.project, obj=locked,
                     decision="flag", reason=reason, note=note[:500])
    return locked


def image_send_back(*, image: Image, actor: Any, extra: int = 1, note: str = "") -> Image:
    """Ask for `extra` (1..MAX_EXTRA) more ratings of the image and serve it first."""
    if not 1 <= extra <= MAX_EXTRA:
        raise AdjudicationError(f"extra ratings {extra} out of range (allowed: 1..{MAX_EXTRA})")
    with transaction.atomic():
        locked = _locked(image)
        top = Image.objects.filter(project_id=locked.project_id).aggregate(m=Max("priority"))["m"] or 0.0
        priority = max(top + 1.0, locked.priority)
        # An UPDATE (not save()): the database recomputes queue_full from the new extra_target.
        Image.objects.filter(pk=locked.pk).update(extra_target=F("extra_target") + extra, priority=priority,
                                                  adjudication="more_ratings", adjudicated_at=None)
        locked.refresh_from_db()
        audit_record(actor=actor, action="image.adjudicated", project=locked.project, obj=locked,
                     decision="more_ratings", extra=extra, extra_target=locked.extra_target,
                     target=locked.project.target_ratings + locked.extra_target, priority=priority, note=note[:500])
    return locked


def image_adjudicate(*, image: Image, actor: Any, decision: str, reason: str = "", extra: int = 1,
                     note: str = "") -> Image:
    """One entry for the page: dispatch on `decision` (confirm, flag, more_ratings)."""
    if decision == "confirm":
        return image_confirm(image=image, actor=actor, note=note)
    if decision == "flag":
        return image_flag(image=image, actor=actor, reason=reason or FlagReason.OTHER, note=note)
    if decision == "more_ratings":
        return image_send_back(image=image, actor=actor, extra=extra, note=note)
    raise AdjudicationError(f"decision {decision!r} is not allowed (allowed: {', '.join(DECISIONS)})")
