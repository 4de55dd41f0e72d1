"""REST API v1 for rounds (batches, #22): list and make, one batch (read, change), its state.

    GET  /api/v1/projects/<slug>/batches/                       every round with its progress
    POST /api/v1/projects/<slug>/batches/                       {"name", "spec", "target_ratings"?, "priority"?,
                                                                 "due_on"?, "raters"?, "open"?}
    GET  /api/v1/projects/<slug>/batches/<id>/                  progress, pace, projection, contributions, agreement
    PATCH /api/v1/projects/<slug>/batches/<id>/                 {"target_ratings"?, "priority"?, "due_on"?, "raters"?}
    POST /api/v1/projects/<slug>/batches/<id>/state/            {"state": "open" | "paused" | "closed"}

`spec` is annotation.services.batches' spec ({"filter": {...}}, {"sample": {...}}, {"disputed": {...}},
{"images": [...]}). Leads and admins of the project only, as the pages. Refusals are 400 with the
service's message under the field it names.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import selectors_batches as sb
from .api import managed_project
from .models import Batch, BatchState, Project
from .services import batches as service


def _row(p: sb.BatchProgress) -> dict[str, Any]:
    b = p.batch
    return {
        "id": b.pk, "name": b.name, "state": b.state, "source": b.source, "target_ratings": b.target_ratings,
        "priority": b.priority, "due_on": b.due_on.isoformat() if b.due_on else None,
        "raters": "all" if b.all_raters else sb.batch_raters(b),
        "images": p.n_images, "complete_images": p.n_complete, "ratings_taken": p.taken, "ratings_needed": p.needed,
        "coverage_percent": p.coverage_percent, "pace_per_day": round(p.projection.pace_per_day, 3),
        "projected_on": p.projection.projected_on.isoformat() if p.projection.projected_on else None,
        "behind": bool(p.projection.behind and not p.complete),
        "opened_at": b.opened_at.isoformat() if b.opened_at else None,
        "closed_at": b.closed_at.isoformat() if b.closed_at else None,
    }


_SETTINGS: dict[str, serializers.Field] = {  # type: ignore[type-arg]
    "target_ratings": serializers.IntegerField(required=False, help_text="ratings wanted per image (1..50)"),
    "priority": serializers.IntegerField(required=False, help_text="higher = served before other rounds"),
    "due_on": serializers.DateField(required=False, allow_null=True),
    "raters": serializers.ListField(child=serializers.CharField(), required=False, allow_null=True,
                                    help_text="emails (or ids) of the raters who may rate it; absent or null: all"),
}
CREATE = inline_serializer("BatchCreate", {
    "name": serializers.CharField(),
    "spec": serializers.DictField(help_text='where the images come from: {"filter": {...}}, {"sample": {"size": N, '
                                            '"seed": S}}, {"disputed": {"limit": N}} or {"images": [names]}'),
    "open": serializers.BooleanField(required=False),
    **_SETTINGS})
CHANGE = inline_serializer("BatchChange", dict(_SETTINGS))
STATE = inline_serializer("BatchState", {"state": serializers.ChoiceField(choices=["open", "paused", "closed"])})
class BatchRowSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """A round as the API answers it (the schema's; the answer carries more keys, see _row)."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    state = serializers.CharField()
    coverage_percent = serializers.IntegerField()


ROW = BatchRowSerializer
ROWS = BatchRowSerializer(many=True)


def _refused(exc: service.BatchError) -> ValidationError:
    return ValidationError({exc.field or "detail": [str(exc)]})


def _batch(project: Project, batch_id: int) -> Batch:
    batch = Batch.objects.filter(project=project, pk=batch_id).first()
    if batch is None:
        raise NotFound("No such batch in this project.")
    return batch


def _body(request: Request) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise ValidationError({"detail": ["send a JSON object"]})
    return request.data


def _settings(data: Any, *, partial: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("target_ratings", "priority", "due_on", "raters"):
        if key in data:
            out[key] = data[key]
    if not partial:
        out.setdefault("priority", 0)
    return out


class BatchListCreateView(APIView):
    """The project's rounds (GET) and making one (POST)."""

    @extend_schema(responses={200: ROWS}, operation_id="v1_projects_batches_list")
    def get(self, request: Request, slug: str) -> Response:
        project = managed_project(request, slug)
        return Response([_row(p) for p in sb.batch_list(project)])

    @extend_schema(request=CREATE, responses={201: ROW})
    def post(self, request: Request, slug: str) -> Response:
        project = managed_project(request, slug)
        data = _body(request)
        spec = data.get("spec")
        if not isinstance(spec, dict):
            raise ValidationError({"spec": ["give the images as an object: filter, sample, disputed or images"]})
        try:
            batch = service.batch_create_from_spec(project=project, name=str(data.get("name", "")), spec=spec,
                                                   actor=request.user, **_settings(data, partial=False))
            if data.get("open"):
                batch = service.batch_set_state(batch=batch, state=BatchState.OPEN, actor=request.user)
        except service.BatchError as exc:
            raise _refused(exc) from None
        return Response(_row(sb.batch_progress(batch)), status=201)


class BatchDetailView(APIView):
    """One round: progress, pace, projection, contributions and agreement (GET); settings (PATCH)."""

    @extend_schema(responses={200: ROW}, operation_id="v1_projects_batches_retrieve")
    def get(self, request: Request, slug: str, batch_id: int) -> Response:
        project = managed_project(request, slug)
        batch = _batch(project, batch_id)
        progress = sb.batch_progress(batch)
        body = _row(progress)
        body["ratings_per_day"] = [{"day": d.isoformat(), "ratings": n} for d, n in progress.per_day]
        body["contributions"] = [{"rater": label, "ratings": n} for label, n in sb.batch_contributions(batch)]
        body["agreement"] = batch.agreement
        return Response(body)

    @extend_schema(request=CHANGE, responses={200: ROW})
    def patch(self, request: Request, slug: str, batch_id: int) -> Response:
        project = managed_project(request, slug)
        batch = _batch(project, batch_id)
        try:
            batch = service.batch_update(batch=batch, actor=request.user, **_settings(_body(request), partial=True))
        except service.BatchError as exc:
            raise _refused(exc) from None
        return Response(_row(sb.batch_progress(batch)))


class BatchStateView(APIView):
    """Open, pause or close a round (POST {"state": ...}); pausing or closing returns its open leases."""

    @extend_schema(request=STATE, responses={200: ROW})
    def post(self, request: Request, slug: str, batch_id: int) -> Response:
        project = managed_project(request, slug)
        batch = _batch(project, batch_id)
        try:
            batch = service.batch_set_state(batch=batch, state=str(_body(request).get("state", "")), actor=request.user)
        except service.BatchError as exc:
            raise _refused(exc) from None
        return Response(_row(sb.batch_progress(batch)))
