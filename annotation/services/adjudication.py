"""A lead's decision on a disputed image: confirm it, flag it, or send it back for more ratings.

Each decision locks the image row, changes it and writes one AuditEvent ("image.adjudicated") in
the same transaction, so the history and the image never disagree.

- confirm: the ratings stand. Clears the dispute (Image.adjudication = "confirmed") and the flag:
  open rater flags are dismissed by the lead and the image returns to the data (flagged = False).
- flag: the image is unusable. Image.flagged = True (it leaves the queue, agreement and releases)
  with an ImageFlag by the lead, resolved at once (the lead's flag is itself the decision); open
  rater flags of the image are confirmed with it.

A rater's flag (#16 finding 5) removes nothing by itself: it waits here for a lead, who confirms it
(`flag_confirm`: the image is flagged as above) or dismisses it (`flag_dismiss`: the image stays;
the flagging rater is still never served it again). `flag_decide` is the one entry for the page
and the API.
- more_ratings: ask for `extra` more ratings than the project's target. Image.extra_target grows;
  the queue counters (migration 0010) then see room again, and the image jumps to the front of the
  queue (priority above every other image of the project).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from annotation.models import FlagReason, FlagResolution, Image, ImageFlag, Project
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
            resolved_at=now, resolved_by=actor, resolution=FlagResolution.DISMISSED)
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
        confirmed = ImageFlag.objects.filter(image=locked, resolved_at__isnull=True).update(
            resolved_at=now, resolved_by=actor, resolution=FlagResolution.CONFIRMED)
        ImageFlag.objects.create(project=locked.project, image=locked, rater=actor, reason=reason, note=note[:500],
                                 resolved_at=now, resolved_by=actor, resolution=FlagResolution.CONFIRMED)
        locked.adjudication, locked.adjudicated_at, locked.flagged = "flagged", now, True
        locked.save(update_fields=["adjudication", "adjudicated_at", "flagged"])
        audit_record(actor=actor, action="image.adjudicated", project=locked.project, obj=locked,
                     decision="flag", reason=reason, note=note[:500], flags_confirmed=confirmed)
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


FLAG_DECISIONS = ("confirm", "dismiss")


def flag_confirm(*, flag: ImageFlag, actor: Any, note: str = "") -> ImageFlag:
    """A lead agrees with a rater's flag: the image is flagged (image_flag with the rater's reason),
    which resolves this and every other open flag of the image as confirmed. Idempotent."""
    if flag.resolved_at is not None:
        return flag
    image_flag(image=flag.image, actor=actor, reason=flag.reason,
               note=note or f"confirmed the flag of rater {flag.rater_id}")
    flag.refresh_from_db()
    return flag


def flag_dismiss(*, flag: ImageFlag, actor: Any, note: str = "") -> ImageFlag:
    """A lead disagrees with a rater's flag: it is resolved as dismissed, the image stays in the
    data (its other open flags wait for their own decision). Idempotent."""
    with transaction.atomic():
        locked = _locked(flag.image)
        n = ImageFlag.objects.filter(pk=flag.pk, resolved_at__isnull=True).update(
            resolved_at=timezone.now(), resolved_by=actor, resolution=FlagResolution.DISMISSED)
        if n:
            audit_record(actor=actor, action="image.flag_dismissed", project=locked.project, obj=locked,
                         flag=flag.pk, rater=flag.rater_id, reason=flag.reason, note=note[:500])
    flag.refresh_from_db()
    return flag


def flag_decide(*, project: Project, flag_id: int, decision: str, actor: Any, note: str = "") -> ImageFlag:
    """The page's and the API's entry: `decision` is confirm or dismiss. Raises ImageFlag.DoesNotExist
    for a flag of another project, AdjudicationError for another decision or a flag already
    decided the other way."""
    if decision not in FLAG_DECISIONS:
        raise AdjudicationError(f"decision {decision!r} is not allowed (allowed: {', '.join(FLAG_DECISIONS)})")
    flag = ImageFlag.objects.select_related("image").get(project=project, pk=flag_id)
    wanted = FlagResolution.CONFIRMED if decision == "confirm" else FlagResolution.DISMISSED
    if flag.resolved_at is not None and flag.resolution != wanted:
        raise AdjudicationError(f"flag {flag.pk} was already {flag.resolution}")
    if decision == "confirm":
        return flag_confirm(flag=flag, actor=actor, note=note)
    return flag_dismiss(flag=flag, actor=actor, note=note)
