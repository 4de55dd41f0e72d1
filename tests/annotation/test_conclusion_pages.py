"""Issue #17, "Done when": the raters and model panels print no verdict the statistics cannot
support (no Mann-Whitney "could be an annotator" / "differs", no red "lowers agreement" mark);
they show estimates with intervals instead."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.support.seed import seed_rated_project

pytestmark = pytest.mark.django_db

UNSUPPORTED = ("could be an annotator", "differs from the annotators", "lowers agreement", "human-expert level")


def test_raters_and_model_panels_print_no_unsupported_verdict(client):
    seeded = seed_rated_project(slug="verdicts", n_images=40, n_raters=5, per_image=4)
    project = seeded["project"]
    client.force_login(seeded["lead"])
    raters = client.get(reverse("annotation:dashboard-raters", args=[project.slug])).content.decode()
    agreement = client.get(reverse("annotation:dashboard-agreement", args=[project.slug])).content.decode()
    for text in UNSUPPORTED:
        assert text not in raters.lower() and text not in agreement.lower()
    assert 'class="consistency"' in raters and "95% interval" in raters
    assert "An interval that contains 0 means no difference was detected" in raters
    assert "alternative annotator test" in agreement
