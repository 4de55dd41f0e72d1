"""Soft labels from fixed measurement-model parameters (annotation.agreement.ratermodel_posterior, #18):
on a fit's own data they reproduce the fit's soft labels, they beat the median against the truth,
and any chunking of the images gives the same figures to the last bit."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from annotation.agreement import ratermodel as rm
from annotation.agreement import ratermodel_posterior as rp


@pytest.fixture(scope="module")
def fitted():
    sim = rm.simulate_ratings(np.random.default_rng(3), n_images=1500, ratings_per_image=3, n_raters=10)
    fit = rm.fit_rater_model(sim.units, sim.raters, sim.values, scale_max=7)
    assert fit.converged
    params = rp.ModelParameters.from_fit(fit)
    offset = rp.presence_offsets(params, sim.units, sim.raters, sim.values, fit.unit_ids, fit.p_present)
    # through JSON, as the snapshot stores them
    params = rp.ModelParameters.from_json(json.loads(json.dumps(dataclasses.replace(params, presence_offset=offset)
                                                                .as_json())))
    return sim, fit, params


def test_posteriors_from_the_fits_parameters_reproduce_the_fits_soft_labels(fitted):
    sim, fit, params = fitted
    post = rp.posterior_soft_labels(params, sim.units, sim.raters, sim.values)
    assert np.array_equal(post.unit_ids, fit.unit_ids)
    # p_present: the same fixed point as the fitter's (presence carry included), to rounding.
    assert np.abs(post.p_present - fit.p_present).max() < 1e-6
    # Intensity: the fitter takes one Newton step per sweep and stops at a 2e-3 change of its
    # parameters; here each image's latent is taken to its mode, so they differ by that lag only.
    assert np.abs(post.expected_intensity - fit.expected_intensity).max() < 0.1
    assert np.abs(post.expected_intensity - fit.expected_intensity).mean() < 0.01
    assert np.abs(post.sd - fit.sd).max() < 0.03
    assert post.unknown_raters == 0 and post.warnings == []


def test_soft_labels_beat_the_median_against_the_truth(fitted):
    sim, _fit, params = fitted
    post = rp.posterior_soft_labels(params, sim.units, sim.raters, sim.values)
    truth = sim.expected_rating
    order = np.argsort(sim.units, kind="stable")
    median = np.median(sim.values[order].reshape(-1, 3, sim.values.shape[1]), axis=1).T
    rmse_soft = float(np.sqrt(((post.p_present * post.expected_intensity - truth) ** 2).mean()))
    rmse_median = float(np.sqrt(((median - truth) ** 2).mean()))
    assert rmse_soft < 0.7 * rmse_median


def test_chunks_of_images_give_identical_results(fitted):
    sim, _fit, params = fitted
    whole = rp.posterior_soft_labels(params, sim.units, sim.raters, sim.values.astype(np.int16))
    parts = []
    for lo in range(0, 1500, 317):
        rows = (sim.units >= lo) & (sim.units < lo + 317)
        parts.append(rp.posterior_soft_labels(params, sim.units[rows], sim.raters[rows],
                                              sim.values[rows].astype(np.int16)))
    assert np.array_equal(np.concatenate([p.unit_ids for p in parts]), whole.unit_ids)
    for name in ("p_present", "expected_intensity", "sd"):
        assert np.array_equal(np.concatenate([getattr(p, name) for p in parts], axis=1), getattr(whole, name)), name


def test_unknown_raters_count_as_the_panel_and_bad_input_is_named(fitted):
    sim, _fit, params = fitted
    rows = sim.units < 50
    raters = sim.raters[rows].copy()
    raters[:6] = 999  # joined after the fit
    post = rp.posterior_soft_labels(params, sim.units[rows], raters, sim.values[rows])
    assert post.unknown_raters == 1 and "1 rater(s) unknown" in post.warnings[0]
    panel = dataclasses.replace(params, presence_shift=np.zeros_like(params.presence_shift),
                                intensity_latent=np.zeros_like(params.intensity_latent),
                                discrimination=np.ones_like(params.discrimination))
    alone = rp.posterior_soft_labels(panel, sim.units[rows][:3], sim.raters[rows][:3], sim.values[rows][:3])
    same = rp.posterior_soft_labels(params, sim.units[rows][:3], raters[:3], sim.values[rows][:3])
    assert np.array_equal(alone.p_present, same.p_present)
    with pytest.raises(ValueError, match="ratings must be whole numbers in 0..7"):
        rp.posterior_soft_labels(params, [1], [1], np.full((1, 40), 9.0))
    with pytest.raises(ValueError, match="values2d has 3 emotions, the parameters 40"):
        rp.posterior_soft_labels(params, [1], [1], np.zeros((1, 3)))
    broken = params.as_json()
    del broken["cutpoints"]
    with pytest.raises(ValueError, match="'cutpoints' is missing"):
        rp.ModelParameters.from_json(broken)
