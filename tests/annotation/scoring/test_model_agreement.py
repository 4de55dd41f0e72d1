"""Model vs experts per emotion: kappa, Spearman, "could be an annotator" (pure and on the DB)."""

from __future__ import annotations

import numpy as np
import pytest

from annotation.models import Rating
from annotation.scoring.model_agreement import model_vs_humans, to_scale
from annotation.scoring.priority import model_independent
from annotation.scoring.selectors import model_agreement, model_summary
from annotation.scoring.services import model_scores_push
from annotation.taxonomy import EMOTIONS, N_EMOTIONS
from tests.factories import add_member, make_image, make_project, make_user


def experts(rng: np.random.Generator, n_images: int, n_raters: int, noise: float):  # type: ignore[no-untyped-def]
    truth = rng.integers(0, 8, (n_images, N_EMOTIONS)).astype(float)
    units, raters, values = [], [], []
    for i in range(n_images):
        for r in range(n_raters):
            units.append(i + 1)
            raters.append(r + 1)
            values.append(np.clip(np.rint(truth[i] + rng.normal(0, noise, N_EMOTIONS)), 0, 7))
    return truth, np.array(units), np.array(raters), np.array(values, dtype=np.int16)


def test_a_model_that_rates_like_the_experts_could_be_an_annotator():
    rng = np.random.default_rng(3)
    truth, units, raters, values = experts(rng, 60, 4, noise=1.0)
    like_a_human = np.clip(truth + rng.normal(0, 1.0, truth.shape), 0, 7)
    rows = model_vs_humans(units, raters, values, np.arange(1, 61), like_a_human, scale_max=7)
    assert len(rows) == N_EMOTIONS
    share = np.mean([r.could_be_annotator for r in rows])
    assert share >= 0.7  # a two-sided test at 0.05 on 6 vs 6 kappas per emotion
    assert all(r.spearman_rho is not None and r.spearman_rho > 0.5 for r in rows)
    assert all(r.model_kappa is not None and r.human_kappa is not None for r in rows)

    noise = rng.random(truth.shape) * 7
    rows = model_vs_humans(units, raters, values, np.arange(1, 61), noise, scale_max=7)
    assert np.mean([r.could_be_annotator for r in rows]) < 0.2
    assert all(r.verdict == "differs from the annotators" for r in rows if r.could_be_annotator is False)


def test_model_scores_map_onto_the_project_scale():
    assert to_scale([0.0, 3.4, 3.6, 7.0, 9.0, -1.0], scale_max=7, model_scale_max=7).tolist() == [0, 3, 4, 7, 7, 0]
    assert to_scale([0.0, 3.4, 7.0], scale_max=2, model_scale_max=7).tolist() == [0, 1, 2]


@pytest.mark.django_db
def test_model_agreement_selector_reads_ratings_and_the_latest_model_version():
    rng = np.random.default_rng(5)
    project = make_project()
    raters = [make_user() for _ in range(3)]
    add_member(project, *raters)
    images = [make_image(project) for _ in range(20)]
    truth, _, _, _ = experts(rng, 20, 0, 1.0)
    for im, t in zip(images, truth, strict=True):
        for rater in raters:
            v = np.clip(np.rint(t + rng.normal(0, 0.7, N_EMOTIONS)), 0, 7).astype(int).tolist()
            Rating.objects.create(project=project, image=im, rater=rater, values=v, scale_max=7,
                                  taxonomy_version=project.taxonomy_version)
    model_scores_push(project, "empathic-insight-face", "old", [(im.name, [0.0] * N_EMOTIONS) for im in images])
    model_scores_push(project, "empathic-insight-face", "new", [(im.name, t.tolist()) for im, t in
                                                                zip(images, truth, strict=True)])
    rows = model_agreement(project)
    assert len(rows) == N_EMOTIONS and rows[0]["emotion"] == EMOTIONS[0]
    assert {r["model_version"] for r in rows} == {"new"}
    assert all(r["n_images"] == 20 for r in rows)
    assert np.mean([r["spearman"]["rho"] for r in rows]) > 0.7
    assert "annotator_test" not in rows[0]  # the Mann-Whitney verdict is replaced by the alt-test (#17)
    assert model_agreement(project, "no-such-model") == []
    # the model against the experts as a whole (#17): 3 experts x 20 images are too few for the
    # alt-test's 30 images per expert, so it gives no verdict and says why
    summary = model_summary(project, "empathic-insight-face", "new")
    held = [im.pk for im in images if model_independent([im.pk], 0.2)[0]]
    assert summary is not None and summary["evaluated_images"] == len(held)  # the held-out sample only
    assert summary["evaluation_sample"]["kind"] == "model-independent"
    assert summary["alt_test"]["passed"] is None and "at least 3 experts" in summary["alt_test"]["reason"]
    assert len(summary["alt_test"]["per_emotion"]) == N_EMOTIONS
    project.priority_weights = {"model_independent_share": 0}
    project.save(update_fields=["priority_weights"])
    every = model_summary(project, "empathic-insight-face", "new")
    assert every is not None and every["evaluated_images"] == 20 and every["evaluation_sample"]["kind"] == "all"
    assert every["spearman_mean"] > 0.7 and 0 < every["spearman_ceiling"] <= 1
