from __future__ import annotations

from django import forms

from .models import Project


class ProjectSettingsForm(forms.ModelForm):  # type: ignore[type-arg]
    """What a lead may change on a running project. Mode, scale and slug are fixed once ratings exist."""

    class Meta:
        model = Project
        fields = ["name", "guidelines", "target_ratings", "lease_minutes", "require_calibration", "retest_share",
                  "retest_min_hours", "alert_min_kappa", "alert_min_retest_alpha", "alert_speed_ratio",
                  "rater_reminders", "agreement_by_profile"]
        widgets = {"guidelines": forms.Textarea(attrs={"rows": 6})}
        labels = {"target_ratings": "Ratings wanted per image", "lease_minutes": "Lease (minutes)",
                  "require_calibration": "New raters rate the calibration set first",
                  "rater_reminders": "Weekly reminder to raters with images waiting",
                  "agreement_by_profile": "Break agreement down by raters' background",
                  "retest_share": "Share of claims that repeat a rater's own earlier image (0-0.5)",
                  "retest_min_hours": "Repeat only ratings older than (hours)"}
