from __future__ import annotations

from django.db import models

from .project import Project


class SnapshotStatus(models.TextChoices):
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class AgreementSnapshot(models.Model):
    """Agreement figures for a project at one moment, computed by a worker; pages only read these.

    `fingerprint` identifies the ratings the snapshot was computed from (count and latest change),
    so recomputing with the same inputs and parameters reuses the stored result (idempotent task).
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="agreement_snapshots")
    level = models.CharField(max_length=10, default="interval")
    n_boot = models.PositiveIntegerField(default=1000)
    seed = models.BigIntegerField(default=0)
    fingerprint = models.CharField(max_length=100)
    status = models.CharField(max_length=10, choices=SnapshotStatus.choices, default=SnapshotStatus.RUNNING)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent done")
    payload = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    seconds = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["project", "status", "-created_at"], name="snapshot_latest")]
        constraints = [
            models.CheckConstraint(condition=models.Q(level__in=["nominal", "ordinal", "interval", "ratio"]),
                                   name="snapshot_level_valid"),
            models.CheckConstraint(condition=models.Q(progress__lte=100), name="snapshot_progress_percent"),
        ]

    def __str__(self) -> str:
        return f"{self.project.slug} agreement ({self.level}) {self.created_at:%Y-%m-%d %H:%M} {self.status}"
