from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from . import selectors
from .models import Project
from .scoring.selectors import scoring_status


@login_required
def home(request: HttpRequest) -> HttpResponse:
    projects = selectors.project_list_for(request.user)
    return render(request, "annotation/home.html", {"projects": projects})


@login_required
def project_detail(request: HttpRequest, slug: str) -> HttpResponse:
    project = get_object_or_404(Project, slug=slug)
    if not (selectors.can_rate(request.user, project) or selectors.can_manage(request.user, project)):
        raise PermissionDenied("You are not a member of this project.")
    can_manage = selectors.can_manage(request.user, project)
    return render(request, "annotation/project_detail.html", {
        "project": project,
        "can_manage": can_manage,
        "can_rate": selectors.can_rate(request.user, project),
        # Model scores and their status are for leads only: raters must never be anchored by them.
        "scoring": scoring_status(project) if can_manage else None,
    })
