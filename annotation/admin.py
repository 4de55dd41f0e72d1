"""Admin: browse everything; ratings, revisions, audit events and published releases are read-only."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import (
    AgreementSnapshot,
    AuditEvent,
    Image,
    Membership,
    ModelScore,
    Project,
    Rating,
    RatingRevision,
    Release,
)


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class MembershipInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["slug", "name", "mode", "scale_max", "target_ratings", "created_at"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["name", "project", "ethnicity", "age", "gender", "priority", "flagged"]
    list_filter = ["project", "flagged", "gender"]
    search_fields = ["name", "sha256", "prompt"]
    readonly_fields = ["sha256", "width", "height", "format", "file"]


@admin.register(Rating)
class RatingAdmin(ReadOnlyAdmin):
    list_display = ["id", "project", "image", "rater", "emotion", "source", "created_at", "updated_at"]
    list_filter = ["project", "source"]
    list_select_related = ["project", "image", "rater"]


@admin.register(RatingRevision)
class RatingRevisionAdmin(ReadOnlyAdmin):
    list_display = ["rating", "changed_by", "changed_at", "reason"]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "action", "actor", "project", "object_type", "object_id"]
    list_filter = ["action", "project"]
    search_fields = ["action", "object_id"]


@admin.register(AgreementSnapshot)
class AgreementSnapshotAdmin(ReadOnlyAdmin):
    list_display = ["project", "level", "status", "created_at", "seconds"]


@admin.register(ModelScore)
class ModelScoreAdmin(ReadOnlyAdmin):
    list_display = ["project", "image", "model_name", "created_at"]


@admin.register(Release)
class ReleaseAdmin(ReadOnlyAdmin):
    """Releases are created, built and published through their page, command or API, never edited here."""

    list_display = ["project", "version", "status", "created_at", "published_at"]
