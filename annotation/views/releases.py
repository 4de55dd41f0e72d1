"""Lead pages for releases: list, create (queued build), live progress through htmx polling, downloads."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseStopPolling

from ..models import Release, ReleaseStatus
from ..models.release import semver_key
from ..services import releases
from .access import require_lead, signed_in

REFUSAL = "Only the project's leads and admins can manage releases."


@login_required
def release_list(request: HttpRequest, slug: str) -> HttpResponse:
    project = require_lead(request, slug, refusal=REFUSAL)
    items = sorted(project.releases.all(), key=lambda r: semver_key(r.version), reverse=True)
    return render(request, "annotation/releases.html", {"project": project, "releases": items, "error": None,
                                                        "form": {}})


def _split_options(form: Any) -> dict[str, Any]:
    """The form's split options; "auto" (or absent) leaves a setting to the release's default
    (docs/agreement.md, "Release splits")."""
    split: dict[str, Any] = {"seed": int(form.get("seed") or 0)}
    group = form.get("group_key") or "auto"
    if group != "auto":
        split["group_key"] = None if group == "none" else group
    test = form.get("test_from_model_independent") or "auto"
    if test != "auto":
        split["test_from_model_independent"] = test == "yes"
    return split


@login_required
@require_POST
def release_create(request: HttpRequest, slug: str) -> HttpResponse:
    project = require_lead(request, slug, refusal=REFUSAL)
    form = request.POST
    try:
        n_boot = int(form.get("n_boot") or 1000)
        release = releases.release_create(
            project=project, version=form.get("version", "").strip(), created_by=signed_in(request),
            consolidation={"method": form.get("method", "median"), "min_ratings": int(form.get("min_ratings") or 2)},
            split=_split_options(form),
            include_images=bool(form.get("include_images")), n_boot=n_boot, description=form.get("description", ""),
            batches=form.getlist("batches") or None)
    except (releases.ReleaseError, ValueError) as exc:
        items = sorted(project.releases.all(), key=lambda r: semver_key(r.version), reverse=True)
        return render(request, "annotation/releases.html",
                      {"project": project, "releases": items, "error": str(exc), "form": form}, status=400)
    releases.release_enqueue_build(release, publish=bool(form.get("publish")))
    return redirect("annotation:release-list", slug=project.slug)


@login_required
def release_row(request: HttpRequest, slug: str, version: str) -> HttpResponse:
    """The htmx-polled row of one release; polling stops once the build has finished."""
    project = require_lead(request, slug, refusal=REFUSAL)
    release = get_object_or_404(Release, project=project, version=version)
    response = render(request, "annotation/partials/release_row.html", {"project": project, "r": release})
    if release.status not in (ReleaseStatus.DRAFT, ReleaseStatus.BUILDING) and request.headers.get("HX-Request"):
        return HttpResponseStopPolling(response.content)
    return response


@login_required
@require_POST
def release_publish(request: HttpRequest, slug: str, version: str) -> HttpResponse:
    project = require_lead(request, slug, refusal=REFUSAL)
    release = get_object_or_404(Release, project=project, version=version)
    try:
        releases.release_publish(release, actor=signed_in(request))
    except releases.ReleaseError as exc:
        return HttpResponse(str(exc), status=409)
    return redirect("annotation:release-list", slug=project.slug)


@login_required
def release_file(request: HttpRequest, slug: str, version: str, path: str) -> FileResponse:
    project = require_lead(request, slug, refusal=REFUSAL)
    release = get_object_or_404(Release, project=project, version=version)
    return releases.release_file_response(release, path)
