from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from .image import Image
from .project import Project

SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?$")


def validate_semver(value: str) -> None:
    if not SEMVER.match(value):
        raise ValidationError(f"version {value!r} is not a semantic version like 1.2.0")


def semver_key(version: str) -> tuple[int, int, int, int, str]:
    """Sort key: 1.2.0 > 1.2.0-rc.1 > 1.1.9."""
    m = SEMVER.match(version)
    if m is None:
        raise ValueError(f"version {version!r} is not a semantic version like 1.2.0")
    return int(m[1]), int(m[2]), int(m[3]), 0 if m[4] else 1, m[4] or ""


class ReleaseStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    BUILDING = "building", "Building"
    BUILT = "built", "Built (not published)"
    FAILED = "failed", "Failed"
    PUBLISHED = "published", "Published"


class Release(models.Model):
    """A versioned benchmark release. Its configuration is frozen at creation; once published the
    row, its image list and its files never change (PostgreSQL triggers, migration 0006); a new
    version supersedes it."""

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="releases")
    version = models.CharField(max_length=50, validators=[validate_semver])
    status = models.CharField(max_length=10, choices=ReleaseStatus.choices, default=ReleaseStatus.DRAFT)
    config = models.JSONField(help_text="Frozen: consolidation rule, split config, taxonomy and code versions")
    inputs = models.JSONField(default=dict, blank=True, help_text="Fingerprint of the ratings it was built from")
    progress = models.PositiveSmallIntegerField(default=0)
    stage = models.CharField(max_length=100, blank=True)
    summary = models.JSONField(default=dict, blank=True, help_text="Counts, left-out images, balance, diff")
    manifest = models.JSONField(default=dict, blank=True)
    manifest_sha256 = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    # Keys the rater pseudonyms in the raw ratings: copied from the project's previous release so a
    # rater keeps one pseudonym across versions. Never exported.
    pseudonym_key = models.CharField(max_length=64, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    built_at = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["project", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["project", "version"], name="release_version_unique"),
            models.CheckConstraint(condition=models.Q(status__in=ReleaseStatus.values), name="release_status_valid"),
            models.CheckConstraint(condition=models.Q(progress__lte=100), name="release_progress_percent"),
            models.CheckConstraint(
                condition=~models.Q(status="published") | (models.Q(published_at__isnull=False) & ~models.Q(
                    manifest_sha256="")),
                name="release_published_is_complete",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project.slug} {self.version} ({self.status})"

    @property
    def is_published(self) -> bool:
        return self.status == ReleaseStatus.PUBLISHED

    @property
    def files_dir(self) -> str:
        """Folder of the files, relative to MEDIA_ROOT."""
        return f"releases/{self.project.slug}/{self.version}"


class ReleaseImage(models.Model):
    """Which split an image went to in a release: what keeps a test image in test forever."""

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="images")
    image = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="+")
    sha256 = models.CharField(max_length=64)
    split = models.CharField(max_length=30)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["release", "image"], name="release_image_unique")]
        indexes = [models.Index(fields=["sha256"], name="release_image_sha")]

    def __str__(self) -> str:
        return f"{self.sha256[:12]} in {self.split}"
