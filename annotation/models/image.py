from __future__ import annotations

from typing import Any

from django.db import models

from .project import Project

# Image columns that only the database writes (see Image.n_ratings).
DB_KEPT_FIELDS = frozenset({"n_ratings", "queue_full"})


def image_upload_to(instance: Image, filename: str) -> str:
    # The stored name comes from the content hash, never from the uploaded file name (no traversal).
    ext = filename.rsplit(".", 1)[-1].lower()
    assert instance.sha256, "the importer sets the hash before the file"
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
    # The priority's dominant term (annotation.scoring.priority.dominant_reasons: coverage,
    # disagreement, model_gap or quota), copied into Assignment.allocation_reason by the claim.
    priority_reason = models.CharField(max_length=12, default="coverage", db_default="coverage")
    flagged = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # Kept by database triggers (migration 0007), whatever stores the rating (the page, an import,
    # the demo), never by Python: the number of intensity ratings of the image (binary answers are
    # counted on BinaryItem), and whether that reached the project's target_ratings. The claim walks
    # the partial index `image_queue_open` of the images that are not full, so its cost does not
    # grow with the project's progress.
    n_ratings = models.PositiveIntegerField(default=0, db_default=0, editable=False)
    queue_full = models.BooleanField(default=False, db_default=False, editable=False)
    # Adjudication by a lead (annotation/services/adjudication.py). `extra_target` asks for more
    # ratings than the project's target for this image ("send back"): the triggers compare n_ratings
    # with target_ratings + extra_target (migration 0010).
    extra_target = models.PositiveSmallIntegerField(default=0, db_default=0)
    adjudication = models.CharField(max_length=20, blank=True, default="", db_default="",
                                    help_text="confirmed, flagged or more_ratings; empty = not adjudicated")
    adjudicated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="image_name_unique_in_project"),
            models.UniqueConstraint(fields=["project", "sha256"], condition=models.Q(sha256__isnull=False),
                                    name="image_sha256_unique_in_project"),
        ]
        indexes = [
            models.Index(fields=["project", "-priority", "id"], name="image_queue_order"),
            models.Index(fields=["project", "-priority", "id"], name="image_queue_open",
                         condition=models.Q(queue_full=False, flagged=False) & ~models.Q(file="")),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Never writes the trigger-kept counters back: an instance loaded before a rating arrived
        would otherwise overwrite the database's count with its stale copy."""
        if not self._state.adding and kwargs.get("update_fields") is None and not kwargs.get("force_insert"):
            kwargs["update_fields"] = [f.name for f in self._meta.concrete_fields
                                       if not f.primary_key and f.name not in DB_KEPT_FIELDS]
        super().save(*args, **kwargs)

    @property
    def is_placeholder(self) -> bool:
        return not self.file


class ImageTally(models.Model):
    """How many images of a project have each (n_ratings, demographics, sent back) combination:
    the lead's coverage figures (overview, demographics) without a pass over a million images (#21).

    Append-only deltas kept by statement-level triggers on annotation_image (annotation/db/
    postgres.py: emorate_image_tally): every INSERT, UPDATE or DELETE adds, per combination it
    changed, one row with the change in `images` (non-flagged images only). Readers sum the rows of a
    project; annotation.services.tallies.image_tally_compact folds them into one row per
    combination. No row is ever updated in place, so raters submitting at once never wait on each
    other here. PostgreSQL only: the SQLite demo counts the images directly.
    """

    # No foreign key constraint: deleting a project deletes its images first, and their trigger rows
    # must not block that (annotation.receivers removes a deleted project's rows).
    project = models.ForeignKey(Project, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    n_ratings = models.PositiveIntegerField()
    ethnicity = models.CharField(max_length=100, blank=True)
    age = models.PositiveSmallIntegerField(null=True, blank=True)
    gender = models.CharField(max_length=50, blank=True)
    sent_back = models.BooleanField(default=False)
    images = models.IntegerField(help_text="Change in the number of images (negative: images left)")

    def __str__(self) -> str:
        return f"project {self.project_id}: {self.images:+d} images with {self.n_ratings} ratings"
