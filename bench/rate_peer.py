"""The peer of bench/rate_bench.py's HTTP part: the same submit + next claim written the textbook
Django way, served by gunicorn next to ours in the same run (bench only; never deployed).

What it does per request, as most Django projects would: `get_object_or_404` for the project and an
`exists()` for the membership; in `transaction.atomic()` the assignment `select_for_update()`,
`Rating.objects.create`, `assignment.save()`; the rater's open lease looked up (a replay finds the
one its first submit took), else the next image claimed with one ORM query that counts
each candidate's ratings and open leases in subqueries, locked `FOR UPDATE SKIP LOCKED`, and the
lease created with `Assignment.objects.create`; the rater's count with `.count()`; the stage rendered
with `render()`, sliders and all. Same database, same triggers and constraints, same session and
cache settings, same template: only our hot-path work (prepared statements, one-statement submit,
cached fragments) is missing. Values are validated by the same pure parser.

Run by rate_bench.py as `gunicorn --pythonpath bench rate_peer:application`.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
from django.conf import settings  # noqa: E402

settings.ROOT_URLCONF = __name__
django.setup()

from django.contrib.auth.decorators import login_required  # noqa: E402
from django.core.exceptions import PermissionDenied  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.db import transaction  # noqa: E402
from django.db.models import Count, Exists, IntegerField, OuterRef, Subquery, Value  # noqa: E402
from django.db.models.functions import Coalesce  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.shortcuts import get_object_or_404, render  # noqa: E402
from django.urls import include, path  # noqa: E402
from django.utils import timezone  # noqa: E402
from django.utils.html import format_html_join  # noqa: E402
from django.views.decorators.http import require_POST  # noqa: E402

from annotation import taxonomy  # noqa: E402
from annotation.models import (  # noqa: E402
    Assignment,
    AssignmentStatus,
    FlagReason,
    Image,
    Membership,
    Project,
    Rating,
    RatingSource,
    SkipReason,
)
from annotation.rating import (  # noqa: E402
    Progress,  # noqa: E402
    RatingError,
    values_parse,
)
from annotation.views.rate import EMOTION_FIELD_PREFIX, _groups  # noqa: E402


def _count(qs: Any) -> Any:
    return Coalesce(Subquery(qs.order_by().values("image").annotate(n=Count("id")).values("n")[:1],
                             output_field=IntegerField()), Value(0))


def _claim(project: Project, rater: Any, now: Any) -> Assignment | None:
    done = [AssignmentStatus.SUBMITTED, AssignmentStatus.SKIPPED, AssignmentStatus.FLAGGED]
    candidate = (
        Image.objects.filter(project=project, flagged=False).exclude(file="")
        .exclude(Exists(Rating.objects.filter(image=OuterRef("pk"), rater=rater)))
        .exclude(Exists(Assignment.objects.filter(image=OuterRef("pk"), rater=rater, status__in=done)))
        .alias(taken=_count(Rating.objects.filter(image=OuterRef("pk"), emotion__isnull=True))
               + _count(Assignment.objects.filter(image=OuterRef("pk"), status=AssignmentStatus.OPEN,
                                                  expires_at__gt=now)))
        .filter(taken__lt=project.target_ratings)
        .order_by("-priority", "id").select_for_update(skip_locked=True, of=("self",)).first())
    if candidate is None:
        return None
    return Assignment.objects.create(project=project, image=candidate, rater=rater, status=AssignmentStatus.OPEN,
                                     claimed_at=now, expires_at=now + timedelta(minutes=project.lease_minutes))


@login_required
@require_POST
def peer_submit(request: HttpRequest, slug: str, assignment_id: int) -> HttpResponse:
    project = get_object_or_404(Project, slug=slug)
    if not Membership.objects.filter(project=project, user=request.user).exists():
        raise PermissionDenied
    values = {k[len(EMOTION_FIELD_PREFIX):]: v for k, v in request.POST.items() if k.startswith(EMOTION_FIELD_PREFIX)}
    now = timezone.now()
    with transaction.atomic():
        a = get_object_or_404(Assignment.objects.select_for_update(), pk=assignment_id, project=project,
                              rater=request.user)
        if a.status == AssignmentStatus.OPEN:
            try:
                vector = values_parse(project=project, raw=values)
            except RatingError as exc:
                return HttpResponse(str(exc), status=400)
            rating = Rating.objects.create(
                project=project, image_id=a.image_id, rater=request.user, values=vector, scale_max=project.scale_max,
                taxonomy_version=taxonomy.TAXONOMY_VERSION, source=RatingSource.PAGE,
                seconds_spent=(now - a.claimed_at).total_seconds())
            a.status, a.rating, a.finished_at = AssignmentStatus.SUBMITTED, rating, now
            a.client_token = request.POST.get("client_token", "")[:64]
            a.save()
    nxt = (Assignment.objects.select_related("image")
           .filter(project=project, rater=request.user, status=AssignmentStatus.OPEN).first())
    if nxt is None:
        with transaction.atomic():
            nxt = _claim(project, request.user, now)
    mine = Rating.objects.filter(project=project, rater=request.user).count()
    ctx: dict[str, Any] = {
        "project": project, "progress": Progress(mine, project.target_ratings, 0), "message": "Saved.",
        "field_prefix": EMOTION_FIELD_PREFIX, "anchors": project.scale_anchors, "groups": _groups(None),
        "skip_options_html": format_html_join("", '<option value="{}">{}</option>', SkipReason.choices),
        "flag_options_html": format_html_join("", '<option value="{}">{}</option>', FlagReason.choices)}
    if nxt is not None:
        ctx.update(assignment=nxt, image_url=nxt.image.file.url)
    return render(request, "annotation/partials/rate_stage.html", ctx)


urlpatterns = [
    path("peer/<slug:slug>/rate/<int:assignment_id>/submit/", peer_submit),
    path("", include("config.urls")),
]

application = get_wsgi_application()
