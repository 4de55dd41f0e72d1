from __future__ import annotations

import re
from pathlib import PurePosixPath

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from .. import selectors
from ..forms import ProjectSettingsForm
from ..imagefiles import ImageRejected
from ..models import Project
from ..scoring.selectors import scoring_status
from ..selectors_home import home_cards
from ..services import stored_files
from ..services.projects import project_settings_update
from .access import require_lead, require_member, signed_in

# images/<project id>/<first two hex digits>/<sha256>.<ext>, as annotation.models.image names them
_IMAGE_PATH = re.compile(r"^images/(?P<project>\d+)/[0-9a-f]{2}/[0-9a-f]{64}\.(?:jpg|png|webp)$")


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "annotation/home.html", {"cards": home_cards(signed_in(request))})


@login_required
def project_detail(request: HttpRequest, slug: str) -> HttpResponse:
    project = require_member(request, slug=slug)
    can_manage = selectors.can_manage(request.user, project)
    return render(request, "annotation/project_detail.html", {
        "project": project,
        "can_manage": can_manage,
        "can_rate": selectors.can_rate(request.user, project),
        # Model scores and their status are for leads only: raters must never be anchored by them.
        "scoring": scoring_status(project) if can_manage else None,
    })


def image_response(name: str) -> FileResponse:
    """The served copy of a stored image (only allow-listed parts kept, pixels untouched),
    streamed from the media storage after the caller's permission check (docs/decisions/0007-object-storage.md).

    Stored files are named by their content hash, so a copy can be cached for good.
    """
    try:
        handle = stored_files.served_copy_open(name)
    except FileNotFoundError:
        raise Http404("no such file") from None
    except ImageRejected as exc:  # an old import whose layout the allow-list cannot strip safely
        raise Http404(f"this image cannot be served without its metadata: {exc}") from None
    response = FileResponse(handle, content_type=stored_files.CONTENT_TYPES.get(PurePosixPath(name).suffix, ""))
    response["Cache-Control"] = "private, max-age=31536000, immutable"
    return response


@login_required
def media_file(request: HttpRequest, path: str) -> FileResponse:
    """Serve an uploaded image to the members of its project (and admins); never a directory listing.

    Release folders are served through the release pages and API only.
    """
    match = _IMAGE_PATH.match(path)
    if match is None:
        raise Http404("no such file")
    require_member(request, pk=int(match["project"]), files=True)
    return image_response(path)


@login_required
def project_settings(request: HttpRequest, slug: str) -> HttpResponse:
    """Leads change the project's guidelines, targets, calibration, retest and alert settings."""
    project = require_lead(request, slug, refusal="Only the project's leads and admins can change its settings.")
    form = ProjectSettingsForm(request.POST or None, instance=Project.objects.get(pk=project.pk))
    if request.method == "POST":
        if form.is_valid():
            project_settings_update(project=project, changes={f: form.cleaned_data[f] for f in form.changed_data},
                                    actor=signed_in(request))
            messages.success(request, "Settings saved.")
            return redirect("annotation:project-settings", slug=project.slug)
        return render(request, "annotation/project_settings.html", {"project": project, "form": form}, status=400)
    return render(request, "annotation/project_settings.html", {"project": project, "form": form})
