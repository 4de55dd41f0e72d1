"""Rounds (batches, #22) in the lead's pages: the list with a form to make one, one batch's page,
its actions (open, pause, close, change), and "send these back as a round" from the disputed gallery.

Thin: parse the form into a spec (annotation.services.batches), call one service or selector.
A refused form is shown again with the service's message (status 400); nothing is stored.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.models import User
from annotation import charts
from annotation import selectors_batches as sb
from annotation import selectors_dashboard as sd
from annotation.models import Batch, BatchState, Project
from annotation.services import batches as service
from annotation.views.access import require_lead, signed_in
from annotation.views.dashboard import _svg

SOURCES = ("filter", "sample", "disputed", "images")


def _project_raters(project: Project) -> list[User]:
    return sd.project_raters(project)


def _int_or_none(raw: str | None) -> int | str | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        return raw  # the service names it


def spec_from_form(data: QueryDict) -> dict[str, Any]:
    """The batch spec (annotation.services.batches) of the make-a-round form."""
    source = data.get("source", "filter")
    if source not in SOURCES:
        raise service.BatchError(f"source: {source!r} unknown (allowed: {', '.join(SOURCES)})", "source")
    if source == "images":
        names = [line.strip() for line in str(data.get("images", "")).splitlines() if line.strip()]
        return {"images": names}
    if source == "disputed":
        ids = data.getlist("image_ids")
        if ids:
            return {"disputed": {"image_ids": ids}}
        return {"disputed": {"limit": _int_or_none(data.get("limit"))}}
    flt: dict[str, Any] = {}
    for key in ("ethnicity", "gender"):
        text = str(data.get(key) or "").strip()
        if text:
            flt[key] = text
    for key in ("age", "fewer_than", "limit"):
        value = _int_or_none(data.get(key))
        if value is not None:
            flt[key] = value
    for key in ("unrated", "disputed", "usable_after_flag"):
        if data.get(key):
            flt[key] = True
    if source == "sample":
        flt.pop("limit", None)
        strata = data.getlist("strata") if "strata_given" in data else list(service.STRATA)
        return {"sample": {"size": _int_or_none(data.get("size")), "seed": _int_or_none(data.get("seed")) or 0,
                           "strata": strata, "filter": flt}}
    return {"filter": flt}


def _settings_from_form(data: QueryDict, project: Project) -> dict[str, Any]:
    raters = [r for r in data.getlist("raters") if r]
    return {"target_ratings": _int_or_none(data.get("target_ratings")),
            "priority": _int_or_none(data.get("priority")) or 0,
            "due_on": data.get("due_on") or None,
            "raters": [int(r) if r.isdigit() else r for r in raters] if raters else None}


def _list_response(request: HttpRequest, project: Project, *, error: str = "", status: int = 200) -> HttpResponse:
    rows = sb.batch_list(project)
    return render(request, "annotation/dashboard/batches.html", {
        "project": project, "tab": "batches", "rows": rows, "raters": _project_raters(project), "error": error,
        "form": request.POST if request.method == "POST" else {}, "states": BatchState}, status=status)


@login_required
def batch_list(request: HttpRequest, slug: str) -> HttpResponse:
    """GET: the project's rounds with their progress and the form to make one. POST: make one (a
    draft; with `open`, opened at once)."""
    project = require_lead(request, slug)
    if request.method != "POST":
        return _list_response(request, project)
    actor = signed_in(request)
    try:
        settings = _settings_from_form(request.POST, project)
        batch = service.batch_create_from_spec(project=project, name=request.POST.get("name", ""),
                                               spec=spec_from_form(request.POST), actor=actor, **settings)
        if request.POST.get("open"):
            batch = service.batch_set_state(batch=batch, state=BatchState.OPEN, actor=actor)
    except service.BatchError as exc:
        return _list_response(request, project, error=str(exc), status=400)
    return redirect(reverse("annotation:batch-detail", args=[project.slug, batch.pk]))


def _batch(project: Project, batch_id: int) -> Batch:
    batch = Batch.objects.filter(project=project, pk=batch_id).first()
    if batch is None:
        raise Http404("No such round in this project.")
    return batch


def _detail_response(request: HttpRequest, project: Project, batch: Batch, *, error: str = "",
                     status: int = 200) -> HttpResponse:
    progress = sb.batch_progress(batch)
    per_day = charts.bar_chart(
        [charts.Bar(d.strftime("%d %b"), n, f"{d:%a %d %b %Y}: {n:,} ratings") for d, n in progress.per_day],
        title="Ratings per day of this round's images", x_label="day", y_label="ratings", max_x_labels=8,
        chart_id="chart-batch-per-day") if progress.per_day else ""
    agreement = batch.agreement or {}
    return render(request, "annotation/dashboard/batch_detail.html", {
        "project": project, "tab": "batches", "batch": batch, "p": progress, "per_day": _svg(per_day),
        "contributions": sb.batch_contributions(batch), "chosen": sb.batch_raters(batch),
        "raters": _project_raters(project), "agreement": agreement, "open_leases": sb.open_leases(batch),
        "error": error, "states": BatchState}, status=status)


@login_required
def batch_detail(request: HttpRequest, slug: str, batch_id: int) -> HttpResponse:
    """GET: one round's progress, pace, projection, contributions and agreement. POST: change its
    priority, due date, target or raters."""
    project = require_lead(request, slug)
    batch = _batch(project, batch_id)
    if request.method != "POST":
        return _detail_response(request, project, batch)
    try:
        settings = _settings_from_form(request.POST, project)
        if not request.POST.get("target_ratings"):
            settings.pop("target_ratings")
        batch = service.batch_update(batch=batch, actor=signed_in(request), **settings)
    except service.BatchError as exc:
        return _detail_response(request, project, batch, error=str(exc), status=400)
    return redirect(reverse("annotation:batch-detail", args=[project.slug, batch.pk]))


@login_required
@require_POST
def batch_state(request: HttpRequest, slug: str, batch_id: int, state: str) -> HttpResponse:
    """Open, pause or close a round (pausing or closing returns its open leases)."""
    project = require_lead(request, slug)
    batch = _batch(project, batch_id)
    try:
        service.batch_set_state(batch=batch, state=state, actor=signed_in(request))
    except service.BatchError as exc:
        return _detail_response(request, project, batch, error=str(exc), status=409)
    return redirect(reverse("annotation:batch-detail", args=[project.slug, batch.pk]))
