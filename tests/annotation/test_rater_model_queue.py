"""The measurement model in the queue and the disputed view: information gain (where one more
rating helps the label most) and ambiguity (the label's largest posterior sd), #18."""

from __future__ import annotations

import numpy as np
import pytest

from annotation.agreement import ratermodel as rm
from annotation.models import Image
from annotation.scoring import priority as prio
from annotation.scoring.services import priority_recompute
from annotation.services.agreement_snapshot import agreement_snapshot_create
from annotation.services.rater_model import information_gain_for, rater_model_attach
from tests.support.ratermodel_seed import seed_simulated


def test_gain_is_larger_where_fewer_ratings_are_in_and_ambiguity_where_experts_split():
    sim = rm.simulate_ratings(np.random.default_rng(21), n_images=800, ratings_per_image=4, n_raters=8)
    pos = np.tile(np.arange(4), 800)
    few = sim.units < 400  # the first 400 images keep one rating, the others all four
    keep = ~few | (pos == 0)
    fit = rm.fit_rater_model(sim.units[keep], sim.raters[keep], sim.values[keep], scale_max=7)
    one = np.isin(fit.unit_ids, np.arange(400))
    assert fit.information_gain[one].mean() > 1.5 * fit.information_gain[~one].mean()
    # Among the four-rating images, per image and emotion: experts split 2:2 on presence -> a
    # less certain label than when all four leave it at 0; the image's ambiguity is its largest sd.
    vv = sim.values.reshape(800, 4, -1)[400:]
    present = (vv > 0).sum(axis=1)  # (400, E)
    sd = fit.sd[:, ~one].T  # (400, E)
    assert sd[present == 2].mean() > 1.5 * sd[present == 0].mean()
    assert np.allclose(fit.ambiguity, fit.sd.max(axis=0))


def test_topping_up_by_information_gain_is_no_worse_than_at_random():
    sim = rm.simulate_ratings(np.random.default_rng(2), n_images=600, ratings_per_image=3, n_raters=8)
    pos = np.tile(np.arange(3), 600)
    base = pos < 2
    fit = rm.fit_rater_model(sim.units[base], sim.raters[base], sim.values[base], scale_max=7)

    def error_after(order: np.ndarray) -> float:
        chosen = np.zeros(600, dtype=bool)
        chosen[order[:150]] = True
        keep = base | ((pos == 2) & chosen[sim.units])
        f = rm.fit_rater_model(sim.units[keep], sim.raters[keep], sim.values[keep], scale_max=7)
        return float(np.sqrt(((f.expected_rating - sim.expected_rating) ** 2).mean()))

    by_gain = error_after(np.argsort(-fit.information_gain))
    at_random = error_after(np.random.default_rng(12).permutation(600))
    # A small effect (0-0.5% lower error in simulation, docs/agreement.md): never worse than chance.
    assert by_gain <= at_random + 1e-3


def test_priority_term_is_optional_and_never_touches_the_model_independent_sample():
    ids = np.arange(1, 201, dtype=np.int64)
    gain = np.linspace(0, 1, 200)
    base = dict(image_ids=ids, rating_image_ids=np.zeros(0, np.int64), rating_values=np.zeros((0, 40), np.int16),
                scale_max=7, target=3, n_emotions=40, information_gain=gain)
    off = prio.compute_priorities(prio.PriorityInputs(**base), prio.resolve_weights({"model_independent_share": 0.3}))
    on = prio.compute_priorities(prio.PriorityInputs(**base),
                                 prio.resolve_weights({"information_gain": 1.0, "model_independent_share": 0.3}))
    held = prio.model_independent(ids, 0.3)
    assert held.any() and (~held).any()
    assert np.allclose(on.priority[held], off.priority[held])
    assert np.allclose(on.priority[~held] - off.priority[~held], gain[~held])
    assert set(prio.dominant_reasons(on, prio.resolve_weights({"information_gain": 1.0}))[~held][-5:]) == {"disagreement"}


@pytest.mark.django_db
def test_recompute_reads_the_stored_gain_when_weighted():
    project, _ = seed_simulated("rmg", n_images=200, odd_rater=False)
    snapshot = agreement_snapshot_create(project, n_boot=0)
    assert rater_model_attach(snapshot.pk)
    snapshot.refresh_from_db()
    ids = np.array(sorted(Image.objects.filter(project=project).values_list("pk", flat=True)), dtype=np.int64)
    gain = information_gain_for(snapshot.payload, ids)
    assert gain is not None and gain.max() == pytest.approx(1.0) and (gain >= 0).all()
    top = snapshot.payload["rater_model"]["ambiguity"]["top"]
    assert top and top[0]["sd"] >= top[-1]["sd"] and top[0]["emotion"]
    priority_recompute(project)
    before = dict(Image.objects.filter(project=project).values_list("pk", "priority"))
    project.priority_weights = {"information_gain": 2.0}
    project.save(update_fields=["priority_weights"])
    priority_recompute(project)
    after = dict(Image.objects.filter(project=project).values_list("pk", "priority"))
    held = prio.model_independent(ids, prio.DEFAULT_WEIGHTS["model_independent_share"],
                                  np.array([""] * ids.size))
    moved = np.array([after[i] - before[i] for i in ids.tolist()])
    assert np.allclose(moved[held], 0.0)
    assert np.allclose(moved[~held], 2.0 * gain[~held])
