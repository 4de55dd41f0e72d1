from __future__ import annotations

from django.conf import settings
from django.db import models

from .project import Project


class AuditEvent(models.Model):
    """Who did what, when: rating changes, adjudications, role changes, releases. Append-only
    (PostgreSQL refuses UPDATE and DELETE, migration 0009); visible to admins."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # PROTECT: the history is append-only, so users and projects it names are deactivated, not deleted.
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                              related_name="+")
    action = models.CharField(max_length=60, help_text="e.g. rating.revised, image.adjudicated, release.published")
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    object_type = models.CharField(max_length=40, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["project", "-created_at"], name="audit_project_recent")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action} {self.object_type}:{self.object_id}"
