"""A project's webhooks (leads): register, remove, and read the delivery log (#20)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from ..models import Webhook, WebhookDelivery
from ..services.webhooks import EVENTS, WebhookError, webhook_create, webhook_delete
from .access import require_lead, signed_in

DELIVERIES_SHOWN = 20


@login_required
def webhook_list(request: HttpRequest, slug: str) -> HttpResponse:
    project = require_lead(request, slug, refusal="Only the project's leads and admins manage its webhooks.")
    error, url, events = "", "", list(EVENTS)
    if request.method == "POST":
        url, events = str(request.POST.get("url", "")), [str(e) for e in request.POST.getlist("events")]
        try:
            webhook_create(project=project, url=url, events=events, secret=str(request.POST.get("secret", "")),
                           actor=signed_in(request))
        except WebhookError as exc:
            error = str(exc)
        else:
            messages.success(request, f"Webhook for {url} added; deliveries are signed with its secret.")
            return redirect("annotation:webhooks", slug=project.slug)
    hooks = list(Webhook.objects.filter(project=project))
    for hook in hooks:
        hook.recent = list(WebhookDelivery.objects.filter(webhook=hook)[:DELIVERIES_SHOWN])  # type: ignore[attr-defined]
    return render(request, "annotation/webhooks.html", {
        "project": project, "webhooks": hooks, "events": EVENTS, "form": {"url": url, "events": events},
        "error": error,
    }, status=400 if error else 200)


@login_required
@require_POST
def webhook_remove(request: HttpRequest, slug: str, webhook_id: int) -> HttpResponse:
    project = require_lead(request, slug, refusal="Only the project's leads and admins manage its webhooks.")
    webhook = get_object_or_404(Webhook, pk=webhook_id, project=project)
    webhook_delete(webhook=webhook, actor=signed_in(request))
    messages.success(request, f"Webhook for {webhook.url} removed.")
    return redirect("annotation:webhooks", slug=project.slug)
