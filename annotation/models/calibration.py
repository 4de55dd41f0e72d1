"""Onboarding calibration (docs/decisions/0002-rater-quality.md): reference items and the ratings of them.

Kept apart from `Rating` on purpose: agreement, consolidation, releases and the queue read
`annotation_rating` only, so a calibration rating can never count as a benchmark rating.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from .fields import SmallIntVectorField
from .image import Image
from .project import Project


class CalibrationItem(models.Model):
    """An image of the calibration set with its reference values (one per taxonomy emotion)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="calibration_items")
    image = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="calibration_items")
    reference = SmallIntVectorField()
    source = models.CharField(max_length=200, blank=True, help_text="Where the reference came from")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "id"]
        constraints = [models.UniqueConstraint(fields=["project", "image"], name="calibration_item_unique")]

    def __str__(self) -> str:
        return f"calibration item {self.image_id} of {self.project_id}"


class CalibrationRating(models.Model):
    """A rater's values for one calibration item (never a benchmark rating)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="calibration_ratings")
    item = models.ForeignKey(CalibrationItem, on_delete=models.CASCADE, related_name="ratings")
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calibration_ratings")
    values = SmallIntVectorField()
    seconds = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "rater"], name="calibration_rating_unique"),
            models.CheckConstraint(condition=models.Q(seconds__isnull=True) | models.Q(seconds__gte=0),
                                   name="calibration_seconds_nonnegative"),
        ]
        indexes = [models.Index(fields=["project", "rater"], name="calibration_project_rater")]

    def __str__(self) -> str:
        return f"calibration rating of item {self.item_id} by {self.rater_id}"
