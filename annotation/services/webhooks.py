"""Webhooks: a project's events POSTed, signed, to the URLs its leads registered (#20).

Events:
- `release.published`: a release was published (version, manifest sha256, image count);
- `agreement.snapshot_done`: an agreement snapshot finished (mean alpha, images, ratings);
- `image.target_reached`: images that reached the project's target ratings since the last sweep
  (a periodic task, never the rate path; one delivery lists them all, at most 1,000 names);
- `rater.alert`: a finished snapshot raised rater alerts (the same rules as the dashboard);
- `batch.completed`, `batch.behind`: a round (#22) reached its target on every image, or will miss
  its due date at its current pace (once each per round; annotation.services.batches).

Delivery (annotation.tasks.webhook_deliver_task, through annotation.jobs): one row per event and
webhook, POSTed with the headers of annotation.webhook_signing, retried with exponential backoff
(EMORATE_WEBHOOK_RETRY_SECONDS x 2^n, EMORATE_WEBHOOK_MAX_ATTEMPTS tries); every try is recorded
on the row, which the lead's webhook page lists. Redirects are not followed.

SSRF: a target whose host resolves to a loopback, private, link-local, multicast or reserved
address is refused when the webhook is registered, and again before every delivery (the name may
resolve elsewhere by then), unless the deployment sets EMORATE_WEBHOOK_ALLOW_PRIVATE=1.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
import uuid
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Max
from django.utils import timezone

from annotation import jobs, selectors
from annotation.models import DeliveryStatus, Image, Project, Rating, Webhook, WebhookDelivery
from annotation.services.audit import audit_record
from annotation.webhook_signing import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    address_refusal,
    signature,
)

EVENTS = ("release.published", "agreement.snapshot_done", "image.target_reached", "rater.alert", "batch.completed",
          "batch.behind")
TARGET_REACHED_LIST_MAX = 1000


class WebhookError(ValueError):
    """A refused webhook registration; the message names the problem, `field` the input at fault."""

    def __init__(self, message: str, field: str = "url") -> None:
        super().__init__(message)
        self.field = field


class DeliveryFailed(Exception):
    """A delivery attempt that should be tried again (the task retries with backoff)."""


def target_refusal(url: str) -> str | None:
    """Why `url` may not receive webhooks (None: it may). Resolves the host name."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return f"the URL must start with http:// or https:// (got {parts.scheme or 'no scheme'!r})"
    if not parts.hostname:
        return "the URL has no host name"
    if parts.username or parts.password:
        return "the URL must not carry a user name or password (sign with the secret instead)"
    if settings.EMORATE_WEBHOOK_ALLOW_PRIVATE:
        return None
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80),
                                   type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        return f"the host {parts.hostname!r} does not resolve ({exc})"
    for info in infos:
        refusal = address_refusal(str(info[4][0]))
        if refusal is not None:
            return (f"{parts.hostname} resolves to an internal address ({refusal}); "
                    "set EMORATE_WEBHOOK_ALLOW_PRIVATE=1 to allow internal targets")
    return None


@transaction.atomic
def webhook_create(*, project: Project, url: str, events: list[str], secret: str, actor: Any = None) -> Webhook:
    """Register a webhook. Raises WebhookError naming the problem (nothing is stored then)."""
    url = (url or "").strip()
    if len(url) > 500:
        raise WebhookError("the URL is longer than 500 characters")
    refusal = target_refusal(url)
    if refusal is not None:
        raise WebhookError(refusal)
    unknown = sorted(set(events) - set(EVENTS))
    if unknown:
        raise WebhookError(f"unknown event(s) {', '.join(unknown)} (known: {', '.join(EVENTS)})", "events")
    if not events:
        raise WebhookError(f"choose at least one event ({', '.join(EVENTS)})", "events")
    if not 16 <= len(secret or "") <= 200:
        raise WebhookError("the secret must be 16 to 200 characters long", "secret")
    watermark = Rating.objects.filter(project=project).aggregate(m=Max("id"))["m"] or 0
    webhook = Webhook.objects.create(project=project, url=url, events=sorted(set(events), key=EVENTS.index),
                                     secret=secret, created_by=actor, last_rating_id=watermark)
    audit_record(actor=actor, action="webhook.created", project=project, obj=webhook, url=url,
                 events=webhook.events)
    return webhook


@transaction.atomic
def webhook_delete(*, webhook: Webhook, actor: Any = None) -> None:
    audit_record(actor=actor, action="webhook.deleted", project=webhook.project, obj=webhook, url=webhook.url)
    webhook.delete()


def webhooks_emit(project: Project, event: str, data: dict[str, Any]) -> int:
    """Queue `event` for every active webhook of the project that subscribed to it (sent when the
    caller's transaction commits). Returns how many deliveries were queued."""
    assert event in EVENTS, event
    hooks = [w for w in Webhook.objects.filter(project=project, active=True) if event in w.events]
    return sum(_emit_one(webhook, project, event, data) for webhook in hooks)


def webhook_deliver(delivery_id: int) -> WebhookDelivery | None:
    """One delivery attempt. Raises DeliveryFailed when it should be tried again; a refused target
    ends the delivery as failed at once. None when the webhook (and its deliveries) was removed."""
    delivery = WebhookDelivery.objects.select_related("webhook").filter(pk=delivery_id).first()
    if delivery is None or delivery.status != DeliveryStatus.PENDING:
        return delivery
    webhook = delivery.webhook
    refusal = target_refusal(webhook.url)
    if refusal is not None:
        return _finish(delivery, DeliveryStatus.FAILED, error=f"not sent: {refusal}")
    sent_at = int(time.time())
    body = json.dumps({**delivery.payload, "sent_at": sent_at}, sort_keys=True, separators=(",", ":")).encode()
    request = urllib.request.Request(webhook.url, data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": "emorate-webhooks/1",
        SIGNATURE_HEADER: signature(webhook.secret, body), TIMESTAMP_HEADER: str(sent_at),
        DELIVERY_HEADER: str(delivery.uuid), EVENT_HEADER: delivery.event})
    attempts = delivery.attempts + 1
    try:
        with _opener().open(request, timeout=settings.EMORATE_WEBHOOK_TIMEOUT) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        status, error = int(exc.code), f"HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        status, error = 0, f"{type(exc).__name__}: {exc}"
    else:
        error = "" if 200 <= status < 300 else f"HTTP {status}"
    if not error:
        return _finish(delivery, DeliveryStatus.DELIVERED, attempts=attempts, response_status=status)
    last = attempts >= settings.EMORATE_WEBHOOK_MAX_ATTEMPTS
    _finish(delivery, DeliveryStatus.FAILED if last else DeliveryStatus.PENDING, attempts=attempts,
            response_status=status or None, error=error)
    if last:
        return delivery
    raise DeliveryFailed(error)


def retry_countdown(attempts: int) -> float:
    """Seconds before the next try after `attempts` failed ones: exponential backoff."""
    base = float(settings.EMORATE_WEBHOOK_RETRY_SECONDS)
    return base * float(2 ** max(0, attempts - 1))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect is an answer (3xx: failed), never followed to another address


def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_NoRedirect)


def _finish(delivery: WebhookDelivery, status: str, *, attempts: int | None = None,
            response_status: int | None = None, error: str = "") -> WebhookDelivery:
    delivery.status = status
    if attempts is not None:
        delivery.attempts = attempts
    delivery.response_status = response_status
    delivery.error = error[:2000]
    delivery.finished_at = timezone.now() if status != DeliveryStatus.PENDING else None
    delivery.save(update_fields=["status", "attempts", "response_status", "error", "finished_at"])
    return delivery


# --- the event sources ---------------------------------------------------------------------------

def webhooks_target_sweep() -> int:
    """image.target_reached for every webhook that wants it: the images whose rating count reached
    the project's target with a rating stored since the webhook's last sweep. Idempotent (the
    watermark moves in the same transaction). Returns the number of deliveries queued."""
    queued = 0
    for webhook in Webhook.objects.filter(active=True).select_related("project"):
        if "image.target_reached" not in webhook.events:
            continue
        with transaction.atomic():
            locked = Webhook.objects.select_for_update(skip_locked=True).filter(pk=webhook.pk).first()
            if locked is None:
                continue
            project = webhook.project
            newest = Rating.objects.filter(project=project).aggregate(m=Max("id"))["m"] or 0
            if newest <= locked.last_rating_id:
                continue
            target = project.target_ratings
            touched = (Rating.objects.filter(project=project, id__gt=locked.last_rating_id, id__lte=newest)
                       .values("image_id").annotate(new=Count("id")))
            new_by_image = {row["image_id"]: row["new"] for row in touched}
            totals = (Rating.objects.filter(project=project, image_id__in=list(new_by_image), id__lte=newest)
                      .values("image_id").annotate(n=Count("id")))
            reached = sorted(row["image_id"] for row in totals
                             if row["n"] >= target and row["n"] - new_by_image[row["image_id"]] < target)
            Webhook.objects.filter(pk=locked.pk).update(last_rating_id=newest)
            if reached:
                names = list(Image.objects.filter(pk__in=reached[:TARGET_REACHED_LIST_MAX]).order_by("pk")
                             .values("name", "sha256"))
                data = {"target": target, "count": len(reached), "images": names,
                        "more": max(0, len(reached) - TARGET_REACHED_LIST_MAX)}
                queued += _emit_one(locked, project, "image.target_reached", data)
    return queued


def _emit_one(webhook: Webhook, project: Project, event: str, data: dict[str, Any]) -> int:
    delivery_id = uuid.uuid4()
    delivery = WebhookDelivery.objects.create(webhook=webhook, event=event, uuid=delivery_id, payload={
        "event": event, "project": project.slug, "data": data, "created_at": timezone.now().isoformat(),
        "delivery": str(delivery_id)})
    jobs.enqueue(jobs.WEBHOOK_DELIVER, delivery.pk)
    return 1


def webhooks_snapshot_done(project: Project, snapshot_id: int, payload: dict[str, Any]) -> None:
    """agreement.snapshot_done, and rater.alert when the snapshot raised rater alerts."""
    if not Webhook.objects.filter(project=project, active=True).exists():
        return
    webhooks_emit(project, "agreement.snapshot_done", {
        "snapshot": snapshot_id, "mean_alpha": payload.get("mean_alpha"), "n_images": payload.get("n_images"),
        "n_ratings": payload.get("n_ratings"), "n_raters": payload.get("n_raters")})
    alerts = [{"rater": label, "reasons": reasons}
              for label, reasons in selectors.snapshot_rater_alerts(project, payload.get("raters"))]
    if alerts:
        webhooks_emit(project, "rater.alert", {"snapshot": snapshot_id, "alerts": alerts})
