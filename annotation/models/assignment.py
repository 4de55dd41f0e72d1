"""The rating queue: leases on images (Assignment), binary-mode questions (BinaryItem), flags.

How the queue works (contracts; the code is in annotation/rating/claim.py):

- An *Assignment* is a lease: one rater holds one image (intensity mode) or one image+emotion
  question (binary mode) until `expires_at`. A rater holds at most one OPEN assignment per project
  (partial unique constraint), so reopening the page returns it instead of taking another.
- An image counts as "taken" by its ratings plus its OPEN, unexpired assignments; it is never
  handed out beyond Project.target_ratings. An expired lease simply stops counting: no sweeper is
  needed, the image is claimable again at once.
- The claim locks the queue row (Image, or BinaryItem in binary mode) with
  `SELECT ... FOR UPDATE SKIP LOCKED`; submits lock the same row, so counts are exact.
- Binary mode asks BinaryItems (image, emotion). Escalation as in EmoNet-Face: an item gets another
  rater only while every earlier answer was "yes"; it is *positive* when `target_ratings` of
  `target_ratings` said yes. A "no" closes the item at once. Items are created lazily by the claim
  (annotation.rating.claim.binary_items_ensure) for images that have none: the image's generation emotion
  (Image.extra["emotion"], if any) plus one contrastive emotion from another group, or, when the
  image names no emotion, all 40 emotions.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from .fields import SmallIntVectorField
from .image import Image
from .project import Project
from .rating import Rating


class AssignmentStatus(models.TextChoices):
    OPEN = "open", "Open (leased)"
    SUBMITTED = "submitted", "Submitted"
    SKIPPED = "skipped", "Skipped by the rater"
    FLAGGED = "flagged", "Flagged by the rater"
    EXPIRED = "expired", "Expired (lease ran out; replaced)"


class AllocationReason(models.TextChoices):
    """Why an assignment was made (issue #17, allocation provenance). A normal claim copies the
    image's dominant priority term at claim time (Image.priority_reason, written by the priority
    recompute); a lead's request for more ratings and the test-retest draw are recorded as such.
    Calibration ratings are not assignments: their provenance is their own table (CalibrationRating)."""

    COVERAGE = "coverage", "Base coverage (ratings missing towards the target)"
    DISAGREEMENT = "disagreement", "Human disagreement (the experts' ratings spread)"
    MODEL_GAP = "model_gap", "Model gap (the model disagrees with the experts, or finds an unrated face expressive)"
    QUOTA = "quota", "Stratum quota (a demographic stratum is under-covered)"
    SENT_BACK = "sent_back", "Sent back by a lead for more ratings"
    RETEST = "retest", "Test-retest repeat"
    UNKNOWN = "", "Made before provenance was recorded"


class SkipReason(models.TextChoices):
    CANNOT_JUDGE = "cannot_judge", "I can't judge this face"
    NOT_LOADING = "not_loading", "The image doesn't load"
    OTHER = "other", "Other"


class FlagReason(models.TextChoices):
    ARTIFACT = "artifact", "Generation artifact"
    NOT_ONE_FACE = "not_one_face", "Not exactly one face"
    OFFENSIVE = "offensive", "Offensive"
    OTHER = "other", "Other"


class BinaryItem(models.Model):
    """One yes/no question of a binary project: does `image` express emotion number `emotion`?

    `n_yes`/`n_no` count the submitted answers; they change only under the row lock taken by
    rating_submit / rating_revise. `closed` = no further rater is needed (a "no" arrived, or
    target_ratings "yes" votes).
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="binary_items")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="binary_items")
    emotion = models.PositiveSmallIntegerField(help_text="Taxonomy index")
    contrastive = models.BooleanField(default=False, help_text="Asked to supply true negatives")
    n_yes = models.PositiveSmallIntegerField(default=0)
    n_no = models.PositiveSmallIntegerField(default=0)
    closed = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["image", "emotion"], name="binary_item_unique")]
        indexes = [models.Index(fields=["project", "closed"], name="binary_item_open")]

    def __str__(self) -> str:
        return f"image {self.image_id} / emotion {self.emotion}"


class Assignment(models.Model):
    """A rater's lease on one image (or binary item). See the module docstring for the rules."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="assignments")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="assignments")
    # Indexed below: `item` only where set (intensity leases have none), `rater` by assignment_rater_image.
    item = models.ForeignKey(BinaryItem, null=True, blank=True, on_delete=models.CASCADE, related_name="assignments",
                             db_index=False)
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments",
                              db_index=False)
    status = models.CharField(max_length=10, choices=AssignmentStatus.choices, default=AssignmentStatus.OPEN)
    claimed_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    rating = models.OneToOneField(Rating, null=True, blank=True, on_delete=models.PROTECT, related_name="assignment")
    client_token = models.CharField(max_length=64, blank=True, help_text="Token of the submit that finished it")
    reason = models.CharField(max_length=20, blank=True, help_text="Skip or flag reason")
    # Why the lease was made (AllocationReason), fixed at claim time; see annotation.rating.sql.
    allocation_reason = models.CharField(max_length=12, blank=True, default="", db_default="",
                                         choices=AllocationReason.choices)
    note = models.CharField(max_length=500, blank=True)
    # A test-retest repeat of an image the rater rated before (Project.retest_share). Its submit stores a
    # RetestRating, never a Rating; it takes no capacity of the image. Never shown to the rater.
    is_retest = models.BooleanField(default=False)
    # The batch (round, #22) the lease was served from; None outside rounds and for repeats. Pausing or
    # closing the batch returns its open leases; the rater's progress in a round counts these.
    batch = models.ForeignKey("annotation.Batch", null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="assignments", db_index=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "rater"], condition=models.Q(status="open"),
                                    name="assignment_one_open_per_rater"),
            models.CheckConstraint(condition=models.Q(status__in=AssignmentStatus.values), name="assignment_status_valid"),
            models.CheckConstraint(condition=models.Q(allocation_reason__in=AllocationReason.values),
                                   name="assignment_allocation_reason_valid"),
            models.CheckConstraint(condition=~models.Q(status="submitted") | models.Q(rating__isnull=False)
                                   | models.Q(is_retest=True),
                                   name="assignment_submitted_has_rating"),
            models.CheckConstraint(condition=models.Q(is_retest=False) | models.Q(rating__isnull=True),
                                   name="assignment_retest_has_no_rating"),
        ]
        indexes = [
            # The claim counts an image's (an item's) open leases through the image's (item's) own
            # index, never a partial index on status = 'open': see open_lease in annotation.rating.sql.
            models.Index(fields=["item"], condition=models.Q(item__isnull=False), name="assignment_item"),
            models.Index(fields=["rater", "image"], name="assignment_rater_image"),
            # a round's leases (returned on pause/close) and a rater's count in it (the rate page)
            models.Index(fields=["batch", "rater", "status"], condition=models.Q(batch__isnull=False),
                         name="assignment_batch_rater"),
        ]

    def __str__(self) -> str:
        return f"assignment {self.pk}: image {self.image_id} to {self.rater_id} ({self.status})"


class FlagResolution(models.TextChoices):
    CONFIRMED = "confirmed", "Confirmed by a lead: the image is left out"
    DISMISSED = "dismissed", "Dismissed by a lead: the image stays"


class ImageFlag(models.Model):
    """A rater's report that an image is unusable (#16 finding 5: one rater cannot remove an image).

    While open (`resolved_at` empty) it takes the image out of that rater's queue only (their
    assignment is finished as "flagged") and puts it in the lead's review; agreement, releases and
    the other raters' queues still have the image. A lead resolves it (annotation.services.
    adjudication): *confirmed* sets Image.flagged (the image leaves the queue, agreement and new
    releases; a release freezes the set left out in its inputs), *dismissed* leaves the image as it is.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="image_flags")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="flags")
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="image_flags")
    reason = models.CharField(max_length=20, choices=FlagReason.choices)
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    resolution = models.CharField(max_length=10, choices=FlagResolution.choices, blank=True, default="",
                                  db_default="", help_text="The lead's decision; empty while the flag is open")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(reason__in=FlagReason.values), name="image_flag_reason_valid"),
            # open = no resolution; resolved = a lead's decision
            models.CheckConstraint(
                condition=(models.Q(resolved_at__isnull=True, resolution="")
                           | models.Q(resolved_at__isnull=False, resolution__in=FlagResolution.values)),
                name="image_flag_resolution_valid"),
        ]
        indexes = [models.Index(fields=["project"], condition=models.Q(resolved_at__isnull=True),
                                name="image_flag_open")]

    def __str__(self) -> str:
        return f"flag on image {self.image_id}: {self.reason}"


class RetestRating(models.Model):
    """A rater's second rating of an image they rated before (test-retest; Project.retest_share).

    Kept apart from Rating on purpose: it never counts in agreement, consolidation or releases (they
    read annotation_rating only). `original` is the rating being repeated, `original_values` its
    values when the repeat was served (the rater may revise the original later). One repeat per
    rater and image.
    """

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="retest_ratings")
    image = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="retest_ratings")
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="retest_ratings")
    original = models.ForeignKey(Rating, on_delete=models.PROTECT, related_name="retests")
    assignment = models.OneToOneField(Assignment, on_delete=models.PROTECT, related_name="retest_rating")
    values = SmallIntVectorField()
    original_values = SmallIntVectorField()
    scale_max = models.PositiveSmallIntegerField()
    seconds_spent = models.FloatField(null=True, blank=True)
    active_seconds = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rater", "image"], name="retest_one_per_rater_image")]
        indexes = [models.Index(fields=["project", "rater"], name="retest_project_rater")]

    def __str__(self) -> str:
        return f"retest of rating {self.original_id} by {self.rater_id}"
