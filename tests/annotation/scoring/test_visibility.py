"""Raters never see model scores: no rater route reads them, and the rate page shows none."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from annotation.rating.images import NEW, rate_image_url
from annotation.scoring.services import model_scores_push
from annotation.taxonomy import N_EMOTIONS
from tests.factories import add_member, image_bytes, make_image, make_project, make_user

# Distinctive values: if any of them is rendered, it shows up in the page.
SCORES = [round(3.1 + 0.0123 * i, 4) for i in range(N_EMOTIONS)]


@pytest.mark.django_db
def test_rate_page_of_a_scored_image_shows_no_score(client):
    project = make_project(slug="blind")
    rater = make_user()
    add_member(project, rater)
    image = make_image(project)
    image.file.save(f"{image.sha256}.jpg", ContentFile(image_bytes()), save=True)
    model_scores_push(project, "empathic-insight-face", "v1", [(image.name, SCORES)])
    client.force_login(rater)
    response = client.get(reverse("annotation:rate", args=[project.slug]))
    assert response.status_code == 200
    html = response.content.decode()
    # the scored image is the one on the page (by the rater's opaque URL, #16)
    assert rate_image_url(project_id=project.pk, slug=project.slug, rater_id=rater.pk, image_id=image.pk,
                          serving=NEW) in html
    for value in SCORES:
        assert str(value) not in html and f"{value:.2f}" not in html
    lowered = html.lower()
    assert "empathic" not in lowered and "model_score" not in lowered and "modelscore" not in lowered


def test_no_rater_view_imports_model_scores():
    import inspect

    from annotation.views import rate as views_rate

    source = inspect.getsource(views_rate)
    assert "ModelScore" not in source and "scoring" not in source
