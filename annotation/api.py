"""REST API v1 (DRF). Thin: parse, call a selector or service, serialise. Roles as in the pages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.http import FileResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import generics, serializers
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import selectors, selectors_dashboard, taxonomy
from .imagefiles import ImageRejected
from .manifests import ImageMeta
from .models import Image, ImageFlag, Project, Rating, Release, Webhook
from .models.release import semver_key
from .scoring.contracts import ScoreValidationError
from .scoring.services import model_scores_push, scoring_enqueue_for_images
from .services import adjudication, batches, releases
from .services import webhooks as webhook_service
from .services.image_import import DuplicateImage, image_import_one, upload_read


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
    """annotation.payloads.SnapshotEmotion, key for key (tests/annotation/test_payloads.py)."""

    emotion = serializers.CharField()
    index = serializers.IntegerField()
    alpha = serializers.FloatField(allow_null=True)
    ci = serializers.ListField(child=serializers.FloatField(allow_null=True), allow_null=True)
    reason = serializers.CharField(allow_null=True)
    n_images = serializers.IntegerField()
    n_ratings = serializers.IntegerField()
    nonzero_share = serializers.FloatField(allow_null=True)
    warnings = serializers.ListField(child=serializers.CharField())
    ci_raters = serializers.ListField(child=serializers.FloatField(allow_null=True), allow_null=True, required=False,
                                      help_text="interval with rater sampling (intensity)")
    ci_raters_reason = serializers.CharField(allow_null=True, required=False)
    n_boot_undefined = serializers.IntegerField(required=False, help_text="resamples without a defined alpha")
    presence_alpha = serializers.FloatField(allow_null=True, required=False)
    intensity_alpha = serializers.FloatField(allow_null=True, required=False)
    intensity_images = serializers.IntegerField(required=False)
    ac2 = serializers.FloatField(allow_null=True, required=False, help_text="Gwet's AC2")
    vote_patterns = serializers.DictField(child=serializers.IntegerField(), required=False, help_text="binary mode")
    n_images_with_2_or_more_votes = serializers.IntegerField(required=False, help_text="binary mode")


class AgreementSnapshotSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """Documentation of the snapshot payload (annotation.payloads.SnapshotPayload, key for key, and
    the snapshot's own fields); the stored JSON is returned as it is. Definitions: docs/agreement.md."""

    project = serializers.CharField()
    mode = serializers.CharField()
    level = serializers.CharField()
    n_boot = serializers.IntegerField()
    seed = serializers.IntegerField()
    confidence = serializers.FloatField()
    scale = serializers.ListField(child=serializers.IntegerField(), help_text="[0, scale_max]")
    taxonomy_version = serializers.CharField()
    flagged_images_excluded = serializers.IntegerField()
    definitions = serializers.CharField()
    n_images = serializers.IntegerField()
    n_ratings = serializers.IntegerField()
    n_raters = serializers.IntegerField()
    mean_alpha = serializers.FloatField(allow_null=True)
    mean_alpha_ci = serializers.DictField(allow_null=True, required=False)
    label_reliability = serializers.DictField(allow_null=True, required=False)
    emotions = EmotionAgreementSerializer(many=True)
    raters = serializers.ListField(child=serializers.DictField(), required=False)
    kappa = serializers.DictField(required=False)
    strata = serializers.DictField(required=False)
    models = serializers.ListField(child=serializers.DictField(), required=False)
    snapshot_id = serializers.IntegerField()
    status = serializers.CharField()
    computed_at = serializers.DateTimeField(allow_null=True)
    seconds = serializers.FloatField(allow_null=True)


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
    split = serializers.DictField(required=False, help_text="SplitConfig fields, e.g. {'seed': 1, 'group_key': None}. Defaults: "
                                  "group_key 'prompt' where images have one, presence true, "
                                  "test_from_model_independent when a model scored the images and the "
                                  "sample is big enough, min_stratum 20 (docs/agreement.md)")
    include_images = serializers.BooleanField(default=False)
    n_boot = serializers.IntegerField(default=1000, min_value=0, max_value=100_000)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    batches = serializers.ListField(child=serializers.CharField(), required=False, allow_empty=True,
                                    help_text="Cut the release from these rounds' images only (#22)")


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
                include_images=data["include_images"], n_boot=data["n_boot"], description=data["description"],
                batches=data.get("batches") or None)
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


class FlagSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    image = serializers.IntegerField(source="image_id")
    image_name = serializers.CharField(source="image.name")
    rater = serializers.EmailField(source="rater.email")

    class Meta:
        model = ImageFlag
        fields = ["id", "image", "image_name", "rater", "reason", "note", "created_at", "resolved_at", "resolution"]


class FlagDecisionSerializer(serializers.Serializer):  # type: ignore[type-arg]
    decision = serializers.ChoiceField(choices=adjudication.FLAG_DECISIONS,
                                       help_text="confirm: the image leaves the queue, agreement and new "
                                                 "releases; dismiss: the image stays")
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)


class FlagListView(APIView):
    """Raters' flags waiting for a lead's decision, oldest first (leads and admins)."""

    @extend_schema(responses={200: FlagSerializer(many=True)})
    def get(self, request: Request, slug: str) -> Response:
        project = managed_project(request, slug)
        return Response(FlagSerializer(selectors_dashboard.flags_open(project), many=True).data)


class FlagDecisionView(APIView):
    """Confirm or dismiss one rater's flag (leads and admins; a read-write token)."""

    @extend_schema(request=FlagDecisionSerializer, responses={200: FlagSerializer})
    def post(self, request: Request, slug: str, flag_id: int) -> Response:
        project = managed_project(request, slug)
        params = FlagDecisionSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        try:
            flag = adjudication.flag_decide(project=project, flag_id=flag_id, actor=request.user,
                                            decision=params.validated_data["decision"],
                                            note=params.validated_data["note"])
        except ImageFlag.DoesNotExist:
            raise NotFound(f"project {slug} has no flag {flag_id}") from None
        except adjudication.AdjudicationError as exc:
            raise ValidationError({"decision": str(exc)}) from None
        return Response(FlagSerializer(ImageFlag.objects.select_related("image", "rater").get(pk=flag.pk)).data)


class ReleaseFileView(APIView):
    """Download one file of a built or published release (only files listed in its manifest)."""

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    def get(self, request: Request, slug: str, version: str, path: str) -> FileResponse:
        release = _release(request, slug, version)
        return releases.release_file_response(release, path)


class ImageSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    n_ratings = serializers.IntegerField(read_only=True)
    file_url = serializers.SerializerMethodField()

    class Meta:
        model = Image
        fields = ["id", "name", "sha256", "width", "height", "format", "ethnicity", "age", "gender", "prompt",
                  "source", "extra", "priority", "flagged", "n_ratings", "file_url", "created_at"]

    def get_file_url(self, image: Image) -> str | None:
        return image.file.url if image.file else None


class ImageUploadSerializer(serializers.Serializer):  # type: ignore[type-arg]
    file = serializers.FileField(help_text="JPEG, PNG or WebP; decoded with Pillow, size and pixel limits apply")
    name = serializers.CharField(required=False, help_text="How rating files refer to it (default: the file name)")
    ethnicity = serializers.CharField(required=False, allow_blank=True, default="")
    age = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=150, default=None)
    gender = serializers.CharField(required=False, allow_blank=True, default="")
    prompt = serializers.CharField(required=False, allow_blank=True, default="")
    # a field named like Field.source: the serializer's metaclass moves declared fields off the class
    source = serializers.CharField(required=False, allow_blank=True, default="")  # type: ignore[assignment]
    batch = serializers.CharField(required=False, allow_blank=True, default="",
                                  help_text="Add the image to this round (batch), made as a draft if new (#22)")


class ImageListCreateView(generics.ListAPIView):  # type: ignore[type-arg]
    """Images of a project (leads and admins), filterable; POST uploads one image (multipart)."""

    serializer_class = ImageSerializer
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(parameters=[
        OpenApiParameter("flagged", bool, description="Only flagged (true) or unflagged (false) images"),
        OpenApiParameter("name", str, description="Exact image name"),
        OpenApiParameter("min_ratings", int, description="Images with at least this many ratings"),
        OpenApiParameter("ethnicity", str), OpenApiParameter("gender", str), OpenApiParameter("age", int),
    ])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self):  # type: ignore[no-untyped-def]
        project = managed_project(self.request, self.kwargs["slug"])
        params = self.request.query_params
        try:
            return selectors.image_list(project, flagged=_bool_param(params, "flagged"), name=params.get("name"),
                                        min_ratings=_int_param(params, "min_ratings"),
                                        ethnicity=params.get("ethnicity"), gender=params.get("gender"),
                                        age=_int_param(params, "age"))
        except ValueError as exc:
            raise ValidationError({"detail": str(exc)}) from None

    @extend_schema(request={"multipart/form-data": ImageUploadSerializer}, responses={201: ImageSerializer})
    def post(self, request: Request, slug: str) -> Response:
        project = managed_project(request, slug)
        params = ImageUploadSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        upload = data["file"]
        meta = ImageMeta(ethnicity=data["ethnicity"], age=data["age"], gender=data["gender"], prompt=data["prompt"],
                         source=data["source"])
        batch, made = _import_batch(project, data["batch"], request)
        try:
            content, sha256 = upload_read(upload)
            image = image_import_one(project=project, name=data.get("name") or Path(upload.name).name,
                                     data=content, meta=meta, sha256=sha256)
        except (ImageRejected, DuplicateImage) as exc:
            if batch is not None and made:
                batches.batch_discard_if_empty(batch)
            raise ValidationError({"file": [f"{upload.name}: {exc}"]}) from None
        if batch is not None:
            batches.batch_add_images(batch=batch, image_ids=[image.pk], actor=request.user)
        scoring_enqueue_for_images(project, [image.pk])
        return Response(ImageSerializer(image).data, status=201)


def _import_batch(project: Project, name: str, request: Request) -> tuple[Any, bool]:
    """The round an upload adds its images to (#22), checked before anything is imported."""
    if not name.strip():
        return None, False
    try:
        return batches.batch_for_import(project=project, name=name, actor=request.user)
    except batches.BatchError as exc:
        raise ValidationError({"batch": [str(exc)]}) from None


def _bool_param(params: Any, key: str) -> bool | None:
    raw = params.get(key)
    if raw is None or raw == "":
        return None
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise ValidationError({key: [f"{raw!r} is not true or false"]})


def _int_param(params: Any, key: str) -> int | None:
    raw = params.get(key)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError({key: [f"{raw!r} is not a whole number"]}) from None
    if not -(2**31) <= value < 2**31:
        raise ValidationError({key: [f"{raw} is out of range"]})
    return value


class ImageBulkSerializer(serializers.Serializer):  # type: ignore[type-arg]
    files = serializers.ListField(child=serializers.FileField(), allow_empty=False,
                                  help_text="Several image files in one multipart request")
    batch = serializers.CharField(required=False, allow_blank=True, default="",
                                  help_text="Add the imported images to this round (batch), made as a draft if new")


class ImageBulkImportView(APIView):
    """Upload several images at once; every file is reported, a bad one never stops the others."""

    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request={"multipart/form-data": ImageBulkSerializer},
                   responses={200: inline_serializer("BulkImportResult", {
                       "imported": serializers.ListField(child=serializers.CharField()),
                       "duplicates": serializers.ListField(child=serializers.DictField()),
                       "rejected": serializers.ListField(child=serializers.DictField())})})
    def post(self, request: Request, slug: str) -> Response:
        project = managed_project(request, slug)
        files = request.FILES.getlist("files")
        if not files:
            raise ValidationError({"files": ["no files in the request (send them as multipart field 'files')"]})
        batch, made = _import_batch(project, str(request.POST.get("batch", "")), request)
        out: dict[str, list[Any]] = {"imported": [], "duplicates": [], "rejected": []}
        new_ids = []
        for upload in files:
            name = Path(upload.name).name
            try:
                content, sha256 = upload_read(upload)
                new_ids.append(image_import_one(project=project, name=name, data=content, meta=None,
                                                sha256=sha256).pk)
                out["imported"].append(name)
            except ImageRejected as exc:
                out["rejected"].append({"name": name, "reason": str(exc)})
            except DuplicateImage as exc:
                out["duplicates"].append({"name": name, "reason": str(exc)})
        if batch is not None and new_ids:
            batches.batch_add_images(batch=batch, image_ids=new_ids, actor=request.user)
        elif batch is not None and made:
            batches.batch_discard_if_empty(batch)
        scoring_enqueue_for_images(project, new_ids)
        return Response(out, status=200 if out["imported"] else 400)


class RatingExportSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.IntegerField()
    image = serializers.CharField(source="image.name")
    sha256 = serializers.CharField(source="image.sha256", allow_null=True)
    rater = serializers.IntegerField(source="rater_id")
    emotion = serializers.SerializerMethodField()
    values = serializers.ListField(child=serializers.IntegerField())
    source = serializers.CharField()  # type: ignore[assignment]  # (as in ImageUploadSerializer)
    seconds_spent = serializers.FloatField(allow_null=True)
    taxonomy_version = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_emotion(self, rating: Rating) -> str | None:
        return None if rating.emotion is None else taxonomy.EMOTIONS[rating.emotion]


class RatingExportView(generics.ListAPIView):  # type: ignore[type-arg]
    """All ratings of a project for leads and admins (values in taxonomy order, see `emotions`)."""

    serializer_class = RatingExportSerializer

    @extend_schema(parameters=[OpenApiParameter("rater", int), OpenApiParameter("image", str),
                               OpenApiParameter("since", str, description="ISO time: changed at or after")])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().get(request, *args, **kwargs)
        response.data["emotions"] = list(taxonomy.EMOTIONS)
        return response

    def get_queryset(self):  # type: ignore[no-untyped-def]
        project = managed_project(self.request, self.kwargs["slug"])
        params = self.request.query_params
        raw = params.get("since") or ""
        since = None
        if raw:
            try:
                since = parse_datetime(raw)
            except ValueError:  # well-formed but impossible, e.g. February 30
                since = None
            if since is None:
                raise ValidationError({"since": [f"{raw!r} is not an ISO date-time like 2026-01-31T12:00:00Z"]})
        return selectors.rating_export(project, rater=_int_param(params, "rater"), image=params.get("image"),
                                       since=since)


class ModelScorePushSerializer(serializers.Serializer):  # type: ignore[type-arg]
    model_name = serializers.CharField(max_length=200)
    model_version = serializers.CharField(max_length=100, allow_blank=True, default="")
    scores = serializers.ListField(
        child=serializers.DictField(), allow_empty=False, max_length=10_000,
        help_text="[{'image': image name or sha256, 'scores': [40 numbers in taxonomy order]}]")


class ModelScoreView(APIView):
    """GET: model scores of a project (leads and admins). POST: push scores from an external scorer
    (all or nothing; an image that already has a score of this model version keeps it)."""

    @extend_schema(responses={200: inline_serializer("ModelScoreList", {
        "emotions": serializers.ListField(child=serializers.CharField()),
        "results": serializers.ListField(child=serializers.DictField())})})
    def get(self, request: Request, slug: str) -> Response:
        project = managed_project(request, slug)
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(selectors.model_score_list(project), request, view=self)
        rows = [{"image": s.image.name, "sha256": s.image.sha256, "model": s.model_name,
                 "model_version": s.model_version, "scores": s.scores} for s in page or []]
        response = paginator.get_paginated_response(rows)
        response.data["emotions"] = list(taxonomy.EMOTIONS)
        return response

    @extend_schema(request=ModelScorePushSerializer, responses={201: inline_serializer("ModelScorePushResult", {
        "stored": serializers.IntegerField(), "already_present": serializers.IntegerField()})})
    def post(self, request: Request, slug: str) -> Response:
        project = managed_project(request, slug)
        params = ModelScorePushSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        items = [(str(item.get("image", "")), item.get("scores")) for item in data["scores"]]
        try:
            result = model_scores_push(project, data["model_name"], data["model_version"], items)
        except ScoreValidationError as exc:
            raise ValidationError({"scores": list(exc.errors)}) from None
        return Response({"stored": result.stored, "already_present": result.already_present}, status=201)


class WebhookSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """A registered webhook; the secret is write-only (never shown again)."""

    events = serializers.ListField(child=serializers.ChoiceField(choices=list(webhook_service.EVENTS)),
                                   allow_empty=False)
    secret = serializers.CharField(write_only=True, min_length=16, max_length=200)

    class Meta:
        model = Webhook
        fields = ["id", "url", "events", "secret", "active", "created_at"]
        read_only_fields = ["id", "active", "created_at"]


class WebhookListCreateView(APIView):
    """A project's webhooks (leads and admins); POST registers one: `url`, `events`, `secret`."""

    @extend_schema(responses={200: WebhookSerializer(many=True)})
    def get(self, request: Request, slug: str) -> Response:
        project = managed_project(request, slug)
        return Response(WebhookSerializer(Webhook.objects.filter(project=project), many=True).data)

    @extend_schema(request=WebhookSerializer, responses={201: WebhookSerializer})
    def post(self, request: Request, slug: str) -> Response:
        project = managed_project(request, slug)
        params = WebhookSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        try:
            webhook = webhook_service.webhook_create(project=project, url=data["url"], events=data["events"],
                                                     secret=data["secret"], actor=request.user)
        except webhook_service.WebhookError as exc:
            raise ValidationError({exc.field: [str(exc)]}) from None
        return Response(WebhookSerializer(webhook).data, status=201)
