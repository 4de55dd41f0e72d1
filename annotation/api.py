"""REST API v1 (DRF). Thin: parse, call a selector or service, serialise. Roles as in the pages."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import selectors
from .models import Project


class ProjectSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    class Meta:
        model = Project
        fields = ["slug", "name", "mode", "scale_max", "target_ratings", "guidelines", "taxonomy_version"]


class ProjectListView(generics.ListAPIView):  # type: ignore[type-arg]
    """Projects the caller belongs to (admins: all)."""

    serializer_class = ProjectSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.project_list_for(self.request.user)


def managed_project(request: Request, slug: str) -> Project:
    """The project, if the caller leads it (or is an admin); 403 otherwise, 404 if unknown."""
    project = get_object_or_404(Project, slug=slug)
    if not selectors.can_manage(request.user, project):
        raise PermissionDenied("Only the project's leads and admins can see this.")
    return project


class EmotionAgreementSerializer(serializers.Serializer):  # type: ignore[type-arg]
    emotion = serializers.CharField()
    index = serializers.IntegerField()
    alpha = serializers.FloatField(allow_null=True)
    ci = serializers.ListField(child=serializers.FloatField(allow_null=True), allow_null=True)
    reason = serializers.CharField(allow_null=True)
    n_images = serializers.IntegerField()
    n_ratings = serializers.IntegerField()
    nonzero_share = serializers.FloatField(allow_null=True)
    warnings = serializers.ListField(child=serializers.CharField())


class AgreementSnapshotSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """Documentation of the snapshot payload; the stored JSON is returned as it is."""

    project = serializers.CharField()
    level = serializers.CharField()
    n_boot = serializers.IntegerField()
    seed = serializers.IntegerField()
    n_images = serializers.IntegerField()
    n_ratings = serializers.IntegerField()
    n_raters = serializers.IntegerField()
    mean_alpha = serializers.FloatField(allow_null=True)
    emotions = EmotionAgreementSerializer(many=True)
    raters = serializers.ListField(child=serializers.DictField(), required=False)
    kappa = serializers.DictField(required=False)
    strata = serializers.DictField(required=False)
    models = serializers.ListField(child=serializers.DictField(), required=False)
    snapshot_id = serializers.IntegerField()
    status = serializers.CharField()
    computed_at = serializers.DateTimeField(allow_null=True)


class AgreementLatestView(APIView):
    """The latest agreement snapshot of a project (leads and admins only). Figures: docs/agreement.md."""

    @extend_schema(responses={200: AgreementSnapshotSerializer})
    def get(self, request: Request, slug: str) -> Response:
        project = managed_project(request, slug)
        snapshot = selectors.agreement_latest(project)
        if snapshot is None:
            raise NotFound(f"no agreement snapshot yet for project {slug}; one is computed after new ratings "
                           "or with `manage.py agreement --project SLUG --save`")
        body: dict[str, Any] = {**snapshot.payload, "snapshot_id": snapshot.pk, "status": snapshot.status,
                                "computed_at": snapshot.finished_at, "seconds": snapshot.seconds}
        return Response(body)
