from __future__ import annotations

from django.conf import settings
from django.db import models

from .fields import FloatVectorField, SmallIntVectorField
from .image import Image
from .project import Project


class RatingSource(models.TextChoices):
    PAGE = "page", "Rated in emorate"
    IMPORT = "import", "Imported from a file"
    SIMULATED = "simulated", "Simulated (demo data)"


class Rating(models.Model):
    """One expert's rating of one image: all emotions (intensity) or one emotion (binary).

    `values` is a vector: intensity mode holds one value per taxonomy emotion in taxonomy order
    (annotation.taxonomy.EMOTIONS); binary mode holds one value (0 = no, 1 = yes) for `emotion`.
    The database enforces one rating per rater and image (and emotion, in binary mode), and on
    PostgreSQL also that every value lies in 0..scale_max (migration 0002).
    """

    # No index of its own: rating_project_image (project, image) serves "this project's ratings".
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="ratings", db_index=False)
    image = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="ratings")
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="ratings")
    emotion = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Binary mode: taxonomy index")
    values = SmallIntVectorField()
    scale_max = models.PositiveSmallIntegerField()
    taxonomy_version = models.CharField(max_length=40)
    source = models.CharField(max_length=10, choices=RatingSource.choices, default=RatingSource.PAGE)
    seconds_spent = models.FloatField(null=True, blank=True, help_text="From claim to submit")
    active_seconds = models.FloatField(null=True, blank=True, help_text="Time the page was active")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["rater", "image"], condition=models.Q(emotion__isnull=True),
                                    name="rating_one_per_rater_image"),
            models.UniqueConstraint(fields=["rater", "image", "emotion"], condition=models.Q(emotion__isnull=False),
                                    name="rating_one_per_rater_image_emotion"),
            models.CheckConstraint(condition=models.Q(scale_max__gte=1), name="rating_scale_positive"),
            models.CheckConstraint(condition=models.Q(seconds_spent__isnull=True) | models.Q(seconds_spent__gte=0),
                                   name="rating_seconds_nonnegative"),
            models.CheckConstraint(condition=models.Q(active_seconds__isnull=True) | models.Q(active_seconds__gte=0),
                                   name="rating_active_seconds_nonnegative"),
        ]
        indexes = [models.Index(fields=["project", "image"], name="rating_project_image")]

    def __str__(self) -> str:
        return f"rating {self.pk} of {self.image_id} by {self.rater_id}"


class RaterTally(models.Model):
    """How many ratings (test-retest repeats included) a rater gave in a project: the count on the
    rate page's progress line, read on every claim.

    Kept by the database, never by the application: an AFTER INSERT trigger on annotation_rating
    and on annotation_retestrating adds each statement's new rows, whatever wrote them (the rate
    page, import_ratings, the demo, raw SQL), as an upsert in (project, rater) order. Ratings are
    never deleted and never change project or rater, so inserts are all it needs to follow
    (migration 0017; the SQLite demo: annotation/db/sqlite.py). Counting the rater's ratings on
    every claim instead read one heap row per rating they ever gave: slower with every image rated.

    A table of its own rather than a Membership column: only rating inserts lock these rows, so a
    submit never waits on (or deadlocks with) a lead's change to the membership. Derived data, so
    no foreign-key constraints (the ratings carry them); Django still deletes a tally with its
    project or user.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+", db_constraint=False,
                                db_index=False)  # rater_tally_unique leads with it
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+",
                              db_constraint=False, db_index=False)
    n_rated = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "rater"], name="rater_tally_unique")]

    def __str__(self) -> str:
        return f"{self.n_rated} ratings by {self.rater_id} in project {self.project_id}"


class RatingRevision(models.Model):
    """The values a rating had before a change: nothing a rater submitted is ever lost."""

    rating = models.ForeignKey(Rating, on_delete=models.PROTECT, related_name="revisions")
    values = SmallIntVectorField()
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    changed_at = models.DateTimeField(auto_now_add=True)
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["rating", "changed_at"]

    def __str__(self) -> str:
        return f"revision of rating {self.rating_id} at {self.changed_at:%Y-%m-%d %H:%M}"


class ModelScore(models.Model):
    """A model's 40 scores for one image (pre-scoring, or model predictions found in imported files).

    Kept apart from expert ratings on purpose: they never count as a human rating, and raters never
    see them. One row per image and model version: `model_version` identifies the weights (the
    scoring worker stores the SHA-256 of the model files; "" for predictions imported from rating
    files), so re-scoring with the same weights stores nothing and new weights score again
    (annotation/scoring, docs/scoring.md).
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="model_scores")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="model_scores")
    model_name = models.CharField(max_length=200)
    model_version = models.CharField(max_length=64, blank=True, default="",
                                     help_text="Checksum of the weights that produced the scores")
    scores = FloatVectorField()
    taxonomy_version = models.CharField(max_length=40)
    seconds = models.FloatField(null=True, blank=True, help_text="Inference time per image (batch time / size)")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["image", "model_name", "model_version"], name="model_score_unique_version"),
        ]
        indexes = [models.Index(fields=["project", "model_name", "model_version"], name="model_score_project_model")]

    def __str__(self) -> str:
        return f"{self.model_name} scores for image {self.image_id}"
