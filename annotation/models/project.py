from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from annotation.taxonomy import TAXONOMY_VERSION, default_anchors


class Mode(models.TextChoices):
    INTENSITY = "intensity", "Intensity (all 40 emotions per image)"
    BINARY = "binary", "Binary (one emotion per image, yes/no)"


class Project(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.INTENSITY)
    # The scale is a project setting (EmoNet-Face: 0..7; EmoNet-Voice: 0..2). Binary projects use 0..1.
    scale_max = models.PositiveSmallIntegerField(default=7, validators=[MinValueValidator(1), MaxValueValidator(100)])
    anchors = models.JSONField(default=dict, blank=True, help_text="Scale point -> label; empty = the EmoNet-Face defaults")
    target_ratings = models.PositiveSmallIntegerField(default=4, validators=[MinValueValidator(1)],
                                                      help_text="Ratings wanted per image (binary: the k of the k-of-k rule)")
    lease_minutes = models.PositiveSmallIntegerField(default=30, validators=[MinValueValidator(1)])
    guidelines = models.TextField(blank=True)
    taxonomy_version = models.CharField(max_length=40, default=TAXONOMY_VERSION, editable=False)
    # Weights of the queue priority formula (annotation/scoring/priority.py, docs/scoring.md);
    # missing keys take the defaults there.
    priority_weights = models.JSONField(default=dict, blank=True,
                                        help_text="Queue priority weights; empty = defaults (docs/scoring.md)")
    # Test-retest (annotation.rating.claim): this share of a rater's claims re-serves, unannounced, an
    # image they rated at least retest_min_hours ago; the repeat is stored apart (RetestRating).
    retest_share = models.FloatField(default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(0.5)],
                                     help_text="Share of claims that repeat the rater's own earlier image (0 = off)")
    retest_min_hours = models.PositiveIntegerField(default=24, help_text="Minimum age of a rating before it is repeated")
    # Rater alerts on the raters dashboard (annotation.rater_quality.rater_alerts); empty = no alert.
    alert_min_kappa = models.FloatField(null=True, blank=True,
                                        help_text="Alert when a rater's mean kappa with the others falls below this")
    alert_min_retest_alpha = models.FloatField(null=True, blank=True,
                                               help_text="Alert when a rater's test-retest alpha falls below this")
    alert_speed_ratio = models.FloatField(default=0.5, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
                                          help_text="Alert when recent time per image < this x the rater's usual")
    # Onboarding (annotation.services.calibration): new raters rate the calibration set first and
    # rate for the benchmark only once a lead admitted them (Membership.admitted_at).
    require_calibration = models.BooleanField(default=False,
                                              help_text="New raters rate the calibration set and wait for admission")
    # With the weekly lead digest (annotation.services.digest): one reminder per week to each rater
    # who still has images to rate here and has not turned the digest email off.
    rater_reminders = models.BooleanField(default=False, db_default=False,
                                          help_text="Email raters who have images waiting a weekly reminder")
    # The agreement snapshot breaks agreement down by this field of the raters' consented
    # background profiles (accounts.RaterProfile), like a demographic stratum; "" = not at all.
    agreement_by_profile = models.CharField(
        max_length=20, blank=True, default="", db_default="",
        choices=[("", "No breakdown"), ("discipline", "Discipline"), ("years_experience", "Years of experience"),
                 ("native_language", "Native language"), ("training_country", "Country of training")],
        help_text="Break agreement down by this field of raters' consented profiles (groups of 3+ raters)")
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership",
                                     through_fields=("project", "user"), related_name="projects")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=models.Q(scale_max__gte=1, scale_max__lte=100), name="project_scale_range"),
            models.CheckConstraint(condition=models.Q(target_ratings__gte=1), name="project_target_positive"),
            models.CheckConstraint(condition=models.Q(mode__in=Mode.values), name="project_mode_valid"),
            models.CheckConstraint(condition=models.Q(retest_share__gte=0, retest_share__lte=0.5),
                                   name="project_retest_share_range"),
            models.CheckConstraint(
                condition=~models.Q(mode=Mode.BINARY) | models.Q(scale_max=1), name="project_binary_scale_is_0_1"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_binary(self) -> bool:
        return self.mode == Mode.BINARY

    @property
    def scale_anchors(self) -> dict[int, str]:
        if self.anchors:
            return {int(k): str(v) for k, v in sorted(self.anchors.items(), key=lambda kv: int(kv[0]))}
        if self.is_binary:
            return {0: "No", 1: "Yes"}
        return default_anchors(self.scale_max)


class Membership(models.Model):
    """A user's place in a project. Raters rate it; leads manage it. Admins see every project."""

    # No index of its own: membership_unique (project, user) leads with it. Two indexes that both fit
    # "project = %s AND user = %s" let a generic plan pick the one that reads every member.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships", db_index=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    created_at = models.DateTimeField(auto_now_add=True)
    # Rater quality (annotation.services.raters): a paused rater is served nothing in this project;
    # an excluded rater's ratings are left out of new releases (kept, and still in agreement).
    paused_at = models.DateTimeField(null=True, blank=True, help_text="Set while a lead has paused the rater")
    excluded_from_releases = models.BooleanField(default=False)
    exclusion_reason = models.CharField(max_length=500, blank=True)
    # Set when a lead admits the rater after calibration (only consulted when Project.require_calibration).
    admitted_at = models.DateTimeField(null=True, blank=True)
    admitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="membership_unique"),
            models.CheckConstraint(condition=models.Q(excluded_from_releases=False) | ~models.Q(exclusion_reason=""),
                                   name="membership_exclusion_has_reason"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.project}"

    @property
    def is_paused(self) -> bool:
        return self.paused_at is not None
