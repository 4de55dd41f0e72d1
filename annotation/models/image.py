from __future__ import annotations

from django.db import models

from .project import Project


def image_upload_to(instance: Image, filename: str) -> str:
    # The stored name comes from the content hash, never from the uploaded file name (no traversal).
    ext = filename.rsplit(".", 1)[-1].lower()
    return f"images/{instance.project_id}/{instance.sha256[:2]}/{instance.sha256}.{ext}"


class Image(models.Model):
    """A face image in a project. `name` is how rating files refer to it (the file name or path).

    Placeholders (created by import_ratings for images not imported yet) have no file and no
    sha256 until import_images fills them in.
    """

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="images")
    name = models.CharField(max_length=500)
    file = models.ImageField(upload_to=image_upload_to, width_field="width", height_field="height", blank=True)
    # NULL (not "") for placeholders, so the partial unique index ignores them.
    sha256 = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    format = models.CharField(max_length=10, blank=True)
    ethnicity = models.CharField(max_length=100, blank=True)
    age = models.PositiveSmallIntegerField(null=True, blank=True)
    gender = models.CharField(max_length=50, blank=True)
    prompt = models.TextField(blank=True)
    source = models.CharField(max_length=200, blank=True)
    extra = models.JSONField(default=dict, blank=True)
    # Higher = served first. Filled by the scoring/priority step; a seeded shuffle until then.
    priority = models.FloatField(default=0.0)
    flagged = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="image_name_unique_in_project"),
            models.UniqueConstraint(fields=["project", "sha256"], condition=models.Q(sha256__isnull=False),
                                    name="image_sha256_unique_in_project"),
        ]
        indexes = [models.Index(fields=["project", "-priority", "id"], name="image_queue_order")]

    def __str__(self) -> str:
        return self.name

    @property
    def is_placeholder(self) -> bool:
        return not self.file
