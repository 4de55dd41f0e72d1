"""REST API v1 (DRF). Thin: parse, call a selector or service, serialise. Roles as in the pages."""

from __future__ import annotations

from typing import Any

from django.http import FileResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import selectors
from .models import Project, Release
from .models.release import semver_key
from .services import releases


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


class ReleaseSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    files = serializers.SerializerMethodField()

    class Meta:
        model = Release
        fields = ["version", "status", "progress", "stage", "config", "inputs", "summary", "manifest_sha256",
                  "error", "created_at", "built_at", "published_at", "files"]

    def get_files(self, release: Release) -> list[dict[str, Any]]:
        request = self.context.get("request")
        out = []
        for f in (release.manifest or {}).get("files", []):
            url = reverse("api:release-file", args=[release.project.slug, release.version, f["path"]])
            out.append({**f, "url": request.build_absolute_uri(url) if request else url})
        return out


class ReleaseCreateSerializer(serializers.Serializer):  # type: ignore[type-arg]
    version = serializers.CharField(help_text="Semantic version above the project's latest, e.g. 1.1.0")
    publish = serializers.BooleanField(default=False, help_text="Publish as soon as the build succeeds")
    consolidation = serializers.DictField(required=False, help_text="ConsolidationRule fields, e.g. {'method': 'mean'}")
    split = serializers.DictField(required=False, help_text="SplitConfig fields, e.g. {'seed': 1, 'group_key': 'prompt'}")
    include_images = serializers.BooleanField(default=False)
    n_boot = serializers.IntegerField(default=1000, min_value=0, max_value=100_000)
    description = serializers.CharField(required=False, allow_blank=True, default="")


class ReleaseListCreateView(APIView):
    """Releases of a project (leads and admins). POST creates one and queues its build."""

    @extend_schema(responses={200: ReleaseSerializer(many=True)})
    def get(self, request: Request, slug: str) -> Response:
        project = managed_project(request, slug)
        releases = sorted(project.releases.all(), key=lambda r: semver_key(r.version), reverse=True)
        return Response(ReleaseSerializer(releases, many=True, context={"request": request}).data)

    @extend_schema(request=ReleaseCreateSerializer, responses={202: ReleaseSerializer})
    def post(self, request: Request, slug: str) -> Response:
        project = managed_project(request, slug)
        params = ReleaseCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        try:
            release = releases.release_create(
                project=project, version=data["version"], created_by=request.user,
                consolidation=data.get("consolidation"), split=data.get("split"),
                include_images=data["include_images"], n_boot=data["n_boot"], description=data["description"])
        except releases.ReleaseError as exc:
            raise ValidationError({"detail": str(exc)}) from None
        releases.release_enqueue_build(release, publish=data["publish"])
        return Response(ReleaseSerializer(release, context={"request": request}).data, status=202)


def _release(request: Request, slug: str, version: str) -> Release:
    project = managed_project(request, slug)
    release = Release.objects.filter(project=project, version=version).first()
    if release is None:
        raise NotFound(f"project {slug} has no release {version}")
    return release


class ReleaseDetailView(APIView):
    """One release: status, live progress, configuration, summary, files with download links."""

    @extend_schema(responses={200: ReleaseSerializer})
    def get(self, request: Request, slug: str, version: str) -> Response:
        release = _release(request, slug, version)
        return Response(ReleaseSerializer(release, context={"request": request}).data)


class ReleaseFileView(APIView):
    """Download one file of a built or published release (only files listed in its manifest)."""

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    def get(self, request: Request, slug: str, version: str, path: str) -> FileResponse:
        release = _release(request, slug, version)
        return releases.release_file_response(release, path)
