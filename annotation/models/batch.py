"""Batches (rounds): named sets of a project's images that a lead plans, assigns and tracks (#22).

Contracts (the services are in annotation/services/batches.py, the serving in annotation/rating/claim.py):

- A *Batch* has its own target ratings per image (copied from the project's when it is made, so a
  later change of the project's target leaves a planned round alone), a priority relative to the
  project's other batches (higher first), an optional due date, a state and who may rate it: every
  rater of the project (`all_raters`) or the raters listed in `raters`.
- States: draft (planned, not served) -> open (served) <-> paused (not served) -> closed (never
  served again). Pausing or closing returns the batch's open leases.
- Once a project has a batch that is not a draft, its raters are served from open batches only
  ("rounds mode"); a project that never opened a batch is served as one queue, as before.
- An image can be in several batches (BatchImage). Its ratings count once: a batch's target is
  compared with the image's ratings, wherever they were made, and agreement and releases read the
  ratings, never the batches.
- BatchImage.priority and BatchImage.open are kept by the database (annotation/db: a trigger on
  annotation_image), never by Python: the image's priority, and whether the image still has room
  for ratings in this batch (not flagged, has a file, n_ratings below the batch's target plus the
  image's extra target). The claim walks the partial index `batch_image_open` of the open rows, so
  its cost does not grow with a batch's progress.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from .image import Image
from .project import Project


class BatchState(models.TextChoices):
    DRAFT = "draft", "Draft (planned, not served)"
    OPEN = "open", "Open (served)"
    PAUSED = "paused", "Paused (not served)"
    CLOSED = "closed", "Closed"


class BatchSource(models.TextChoices):
    MANUAL = "manual", "Chosen images"
    IMPORT = "import", "An import"
    FILTER = "filter", "A filter"
    SAMPLE = "sample", "A stratified random sample"
    DISPUTED = "disputed", "Disputed images sent back"


class Batch(models.Model):
    """A round of work. See the module docstring for the rules."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="batches", db_index=False)
    name = models.CharField(max_length=100)
    state = models.CharField(max_length=10, choices=BatchState.choices, default=BatchState.DRAFT)
    target_ratings = models.PositiveSmallIntegerField(help_text="Ratings wanted per image in this batch")
    priority = models.IntegerField(default=0, help_text="Higher = served before the project's other batches")
    due_on = models.DateField(null=True, blank=True)
    all_raters = models.BooleanField(default=True, help_text="Every rater of the project may rate it")
    raters = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="batches_assigned",
                                    help_text="Who may rate it when not all raters may")
    source = models.CharField(max_length=10, choices=BatchSource.choices, default=BatchSource.MANUAL)
    # How the images were chosen (the filter, the sample's size, strata and seed, the import), as given.
    source_spec = models.JSONField(default=dict, blank=True)
    n_images = models.PositiveIntegerField(default=0, help_text="Images in the batch (kept by the services)")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # When the "finished" / "behind its due date" alerts were raised (once each; annotation.services.batches).
    completed_alert_at = models.DateTimeField(null=True, blank=True)
    behind_alert_at = models.DateTimeField(null=True, blank=True)
    # Agreement for the batch's images, computed by the snapshot job (annotation.services.batches).
    agreement = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-priority", "id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="batch_name_unique_in_project"),
            models.CheckConstraint(condition=models.Q(state__in=BatchState.values), name="batch_state_valid"),
            models.CheckConstraint(condition=models.Q(target_ratings__gte=1), name="batch_target_positive"),
        ]
        indexes = [models.Index(fields=["project", "state"], name="batch_project_state")]

    def __str__(self) -> str:
        return f"{self.name} ({self.state})"

    @property
    def is_served(self) -> bool:
        return self.state == BatchState.OPEN


class BatchImage(models.Model):
    """An image's place in a batch. `priority` and `open` are kept by the database (module docstring)."""

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="members", db_index=False)
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="batch_memberships", db_index=False)
    priority = models.FloatField(default=0.0)
    open = models.BooleanField(default=True)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["batch", "image"], name="batch_image_unique")]
        indexes = [
            models.Index(fields=["image"], name="batch_image_image"),
            models.Index(fields=["batch", "-priority", "image"], name="batch_image_open",
                         condition=models.Q(open=True)),
        ]

    def __str__(self) -> str:
        return f"image {self.image_id} in batch {self.batch_id}"
