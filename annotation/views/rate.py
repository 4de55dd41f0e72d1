"""The rating page: thin views over the rate flow (annotation.rating: stage, submit, skip, flag, revise).

One page (`annotation/rate.html`) with one swapped part, `#rate-stage`
(`annotation/partials/rate_stage.html`): a submit, skip or flag answers with the next stage, so
htmx swaps the next image in without reloading the page. Without htmx every POST redirects back
to the page (POST/redirect/GET). Refusals answer with their 4xx status and
`annotation/partials/rate_message.html`, which rate.js shows above the stage.

What a rater sees is deliberately narrow: the image, the taxonomy, their own values and their own
count, plus the project's overall coverage — never other raters' values, per-image counts, model
scores or agreement.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from .. import rating as flow
from .. import taxonomy
from ..models import FlagReason, Image, Project, Rating, SkipReason
from ..rating import RatingError, assignment_flag, assignment_skip, rating_revise, rating_submit
from ..rating.images import CALIBRATION, HISTORY, rate_image_open, rate_image_url
from ..services import calibration
from .access import require_rater, signed_in
from .pages import image_response

EMOTION_FIELD_PREFIX = "emo:"


def _to_calibration(request: HttpRequest, project: Project) -> HttpResponse:
    url = reverse("annotation:calibration", args=[project.slug])
    if request.htmx:  # type: ignore[attr-defined]
        return HttpResponseClientRedirect(url)
    return redirect(url)


def _groups(values: list[int] | None) -> list[dict[str, Any]]:
    tax = taxonomy.load()
    by_name = {e.name: e for e in tax.emotions}
    out = []
    for g in tax.groups:
        rows = []
        for name in g.emotions:
            e = by_name[name]
            rows.append({"index": e.index, "name": e.name, "descriptors": ", ".join(e.descriptors),
                         "value": values[e.index] if values else 0})
        out.append({"name": g.name, "emotions": rows})
    return out


def _stage_context(stage: flow.Stage) -> dict[str, Any]:
    project = stage.project
    # A paused rater (annotation.services.raters) is told so; the claim serves them nothing anyway.
    ctx: dict[str, Any] = {"project": project, "progress": stage.progress, "field_prefix": EMOTION_FIELD_PREFIX,
                           "paused": stage.paused, "round": stage.round}
    a = stage.assignment
    if a is None:
        return ctx
    ctx.update(assignment=a, image_url=stage.image_url, next_image_url=stage.next_image_url,
               skip_options_html=_options_html(SkipReason), flag_options_html=_options_html(FlagReason))
    if stage.emotion is not None:
        ctx.update(emotion=stage.emotion, descriptors=", ".join(stage.emotion.descriptors))
    else:
        ctx["sliders_html"] = _sliders_html(project.scale_max, tuple(project.scale_anchors.items()))
    return ctx


# Parts of the stage that are the same for every image: rendered once per process (and scale and
# anchors) instead of on every submit, where Django's template engine spent most of the
# response's rendering time on them (the 40 sliders; the legend; the reason lists).

@functools.lru_cache(maxsize=64)
def _sliders_html(scale_max: int, anchors: tuple[tuple[int, str], ...]) -> str:
    """The legend and the untouched sliders of a fresh stage."""
    html = render_to_string("annotation/partials/rate_sliders.html", {
        "groups": _groups(None), "project": {"scale_max": scale_max}, "anchors": dict(anchors),
        "field_prefix": EMOTION_FIELD_PREFIX})
    return mark_safe(html)  # noqa: S308 - our own template's output, autoescaped when rendered


@functools.cache
def _options_html(choices: Any) -> str:
    return format_html_join("", '<option value="{}">{}</option>', ((v, str(label)) for v, label in choices.choices))


def _stage(request: HttpRequest, ctx: dict[str, Any]) -> HttpResponse:
    """The swapped stage alone (htmx). It uses nothing the context processors add (user, messages,
    request) but the CSRF token, which it is given; skipping them saves a tenth of the render."""
    ctx["csrf_token"] = get_token(request)
    return HttpResponse(render_to_string("annotation/partials/rate_stage.html", ctx))


def _next_stage(request: HttpRequest, project: Project, *, message: str) -> HttpResponse:
    """The stage after the rater finished their assignment (so they hold no open lease)."""
    ctx = _stage_context(flow.rate_stage(project=project, rater=signed_in(request), just_finished=True))
    ctx["message"] = message
    return _stage(request, ctx)


def _refused(request: HttpRequest, project: Project, exc: RatingError) -> HttpResponse:
    ctx = {"project": project, "error": str(exc), "status": exc.status}
    template = "annotation/partials/rate_message.html" if request.htmx else "annotation/rate_refused.html"  # type: ignore[attr-defined]
    return render(request, template, ctx, status=exc.status)


@login_required
@require_GET
def rate_page(request: HttpRequest, slug: str) -> HttpResponse:
    """Claims (or returns the open) assignment and shows the whole page."""
    project = require_rater(request, slug)
    if flow.needs_calibration(project):
        return _to_calibration(request, project)
    ctx = _stage_context(flow.rate_stage(project=project, rater=signed_in(request)))
    return render(request, "annotation/rate.html", ctx)


def _fields(request: HttpRequest) -> Mapping[str, Any]:
    """The submitted fields. The rate page's htmx sends them as one JSON object (rate.js: parsing
    the 43 urlencoded fields was an eighth of a submit's time in Django); a form posted without
    JavaScript, or by a script, arrives urlencoded as usual. Raises RatingError (400) for a body
    that is not a JSON object."""
    if request.content_type != "application/json":
        return request.POST
    try:
        data = json.loads(request.body)
    except ValueError as exc:
        raise RatingError(f"the request body is not valid JSON ({exc})") from None
    except RecursionError:  # a body of 100k nested arrays (#16): a refusal, never a 500
        raise RatingError("the request body is nested too deeply; send one flat JSON object") from None
    if not isinstance(data, dict):
        raise RatingError("the request body must be a JSON object of field names and values")
    return data


@login_required
@require_POST
def rate_submit(request: HttpRequest, slug: str, assignment_id: int) -> HttpResponse:
    """Store the rating (idempotent per assignment), answer with the next stage."""
    project = require_rater(request, slug)
    if flow.needs_calibration(project):
        return _to_calibration(request, project)
    try:
        fields = _fields(request)
        if project.is_binary:
            values: Any = [fields.get("answer", "")]
        else:
            values = {k[len(EMOTION_FIELD_PREFIX):]: v for k, v in fields.items() if k.startswith(EMOTION_FIELD_PREFIX)}
        rating_submit(assignment=assignment_id, project=project, rater=signed_in(request), values=values,
                      client_token=str(fields.get("client_token", "")),
                      active_seconds=fields.get("active_seconds"))
    except RatingError as exc:
        return _refused(request, project, exc)
    if not request.htmx:  # type: ignore[attr-defined]
        return redirect("annotation:rate", slug=project.slug)
    return _next_stage(request, project, message="Saved.")


def _leave(request: HttpRequest, slug: str, assignment_id: int, action: Any, message: str) -> HttpResponse:
    """Skip or flag: the image leaves this rater's queue (with a reason), the next one comes in."""
    project = require_rater(request, slug)
    if flow.needs_calibration(project):
        return _to_calibration(request, project)
    try:
        action(assignment=assignment_id, project=project, rater=signed_in(request), reason=request.POST.get("reason", ""),
               note=request.POST.get("note", ""))
    except RatingError as exc:
        return _refused(request, project, exc)
    if not request.htmx:  # type: ignore[attr-defined]
        return redirect("annotation:rate", slug=project.slug)
    return _next_stage(request, project, message=message)


@login_required
@require_POST
def rate_skip(request: HttpRequest, slug: str, assignment_id: int) -> HttpResponse:
    return _leave(request, slug, assignment_id, assignment_skip, "Skipped.")


@login_required
@require_POST
def rate_flag(request: HttpRequest, slug: str, assignment_id: int) -> HttpResponse:
    return _leave(request, slug, assignment_id, assignment_flag, "Flagged for a lead; you won't be shown this image again.")


def _image_url(request: HttpRequest, project: Project, image: Image, serving: int) -> str:
    """The rater's own opaque URL of an image ("" without a file); see annotation.rating.images."""
    if not image.file:
        return ""
    return rate_image_url(project_id=project.pk, slug=project.slug, rater_id=signed_in(request).pk,
                          image_id=image.pk, serving=serving)


@login_required
@require_GET
def rate_image(request: HttpRequest, slug: str, image_token: str) -> FileResponse:
    """An image of the rate flow, by one of the rater's opaque tokens (annotation.rating.images):
    only the rater it was made for, while they may rate the project, opens it; anything else is a
    404 (a token says nothing about the image). Served like every stored image (image_response)."""
    project = require_rater(request, slug)
    opened = rate_image_open(project_id=project.pk, rater_id=signed_in(request).pk, token=image_token)
    if opened is None:
        raise Http404("No such image.")
    name = Image.objects.filter(project=project, pk=opened[0]).exclude(file="").values_list("file", flat=True).first()
    if name is None:
        raise Http404("No such image.")
    return image_response(name)


@login_required
@require_GET
def rate_history(request: HttpRequest, slug: str) -> HttpResponse:
    """The rater's own last 10 ratings in this project, each with a link to revise it."""
    project = require_rater(request, slug)
    names = taxonomy.EMOTIONS
    rows = []
    for r in (Rating.objects.filter(project=project, rater=signed_in(request)).select_related("image")
              .order_by("-created_at", "-id")[:10]):
        if r.emotion is not None:
            summary = f"{names[r.emotion]}: {'Yes' if r.values[0] else 'No'}"
        else:
            nz = [f"{names[i]} {v}" for i, v in enumerate(r.values) if v]
            summary = ", ".join(nz) if nz else "all 0"
        rows.append({"rating": r, "summary": summary, "image_url": _image_url(request, project, r.image, HISTORY),
                     "url": reverse("annotation:rate-revise", args=[project.slug, r.pk])})
    return render(request, "annotation/rate_history.html", {"project": project, "rows": rows})


@login_required
@require_http_methods(["GET", "POST"])
def rate_revise(request: HttpRequest, slug: str, rating_id: int) -> HttpResponse:
    """Show and change one of the rater's own ratings; the old values go to RatingRevision."""
    project = require_rater(request, slug)
    rating = get_object_or_404(Rating.objects.select_related("image"), pk=rating_id, project=project,
                               rater=signed_in(request))
    error = ""
    if request.method == "POST":
        if project.is_binary:
            values: Any = [request.POST.get("answer", "")]
        else:
            values = {k[len(EMOTION_FIELD_PREFIX):]: v for k, v in request.POST.items()
                      if k.startswith(EMOTION_FIELD_PREFIX)}
        try:
            rating_revise(rating=rating, rater=signed_in(request), values=values, reason=request.POST.get("reason", ""))
        except RatingError as exc:
            error = str(exc)
            status = exc.status
        else:
            return redirect("annotation:rate-history", slug=project.slug)
    else:
        status = 200
    ctx: dict[str, Any] = {"project": project, "rating": rating, "anchors": project.scale_anchors,
                           "scale": range(project.scale_max + 1), "field_prefix": EMOTION_FIELD_PREFIX,
                           "error": error, "image_url": _image_url(request, project, rating.image, HISTORY)}
    if project.is_binary:
        emotion = taxonomy.load().emotions[rating.emotion or 0]
        ctx.update(emotion=emotion, descriptors=", ".join(emotion.descriptors))
    else:
        ctx["groups"] = _groups(rating.values)
    return render(request, "annotation/rate_revise.html", ctx, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def calibration_page(request: HttpRequest, slug: str) -> HttpResponse:
    """Onboarding: the next calibration image with the usual sliders; once all are rated, the
    rater's own values vs the reference (calibration set only) until a lead admits them."""
    project = require_rater(request, slug)
    if not project.require_calibration:
        return redirect("annotation:rate", slug=project.slug)
    error, status = "", 200
    if request.method == "POST" and not flow.needs_calibration(project):
        return redirect("annotation:rate", slug=project.slug)
    if request.method == "POST":
        values = {k[len(EMOTION_FIELD_PREFIX):]: v for k, v in request.POST.items() if k.startswith(EMOTION_FIELD_PREFIX)}
        try:
            seconds: float | None = float(request.POST.get("active_seconds") or "nan")
        except ValueError:
            seconds = None
        try:
            item_id = int(request.POST.get("item", ""))
            calibration.calibration_submit(project=project, rater=signed_in(request), item=item_id, values=values,
                                           seconds=seconds if seconds is not None and math.isfinite(seconds) else None)
        except ValueError as exc:  # CalibrationError, InvalidValues (a RatingError) and a bad item id
            error, status = str(exc), 400
        else:
            return redirect("annotation:calibration", slug=project.slug)
    needs = flow.needs_calibration(project)
    item = calibration.calibration_next(project, request.user) if needs else None
    comparison = calibration.calibration_comparison(project, request.user)
    ctx: dict[str, Any] = {"project": project, "item": item, "error": error, "admitted": not needs,
                           "field_prefix": EMOTION_FIELD_PREFIX,
                           "n_done": len(comparison.items), "n_items": comparison.n_items}
    if item is not None:
        ctx.update(sliders_html=_sliders_html(project.scale_max, tuple(project.scale_anchors.items())),
                   image_url=_image_url(request, project, item.image, CALIBRATION))
    else:
        names = taxonomy.EMOTIONS
        ctx.update(comparison=comparison,
                   per_emotion=[(names[e], v) for e, v in enumerate(comparison.per_emotion)],
                   items=[{"image": c.image, "rows": [(names[e], c.values[e], c.reference[e], c.abs_diff[e])
                                                       for e in range(len(names))]} for c in comparison.items])
    return render(request, "annotation/calibration.html", ctx, status=status)
