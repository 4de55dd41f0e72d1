"""Release soft labels from the measurement model's parameters stored with the latest snapshot,
frozen at creation (#18): no refit at build time, byte-identical rebuilds, and the old full fit
when no snapshot carries usable parameters."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from annotation.agreement import ratermodel_posterior as rp
from annotation.models import AgreementSnapshot
from annotation.services.agreement_snapshot import agreement_snapshot_create
from annotation.services.rater_model import rater_model_attach
from annotation.services.releases import release_build, release_create, release_dir
from annotation.taxonomy import EMOTIONS, emotion_slug
from tests.support.ratermodel_seed import seed_simulated

pytestmark = pytest.mark.django_db


def _table(folder: Path) -> pa.Table:
    return pa.concat_tables([pq.read_table(p) for p in sorted((folder / "data").glob("*.parquet"))])


def _hashes(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _soft(table: pa.Table) -> np.ndarray:
    return np.array([[table.column(f"{emotion_slug(e)}__{n}").to_numpy() for e in EMOTIONS]
                     for n in ("p_present", "expected_intensity", "sd")])


def test_release_uses_the_snapshots_parameters_and_rebuilds_identically():
    project, _ = seed_simulated("frz", n_images=240)
    snapshot = agreement_snapshot_create(project, n_boot=0)
    assert rater_model_attach(snapshot.pk)
    snapshot.refresh_from_db()
    params = snapshot.payload["rater_model"]["parameters"]
    assert params["fingerprint"] == snapshot.payload["rater_model"]["fingerprint"]
    assert len(params["rater_ids"]) == 5 and len(params["cutpoints"]) == 40 and len(params["presence_offset"]) == 40

    frozen = release_create(project=project, version="1.0.0", n_boot=20)
    assert frozen.inputs["rater_model"] == {"snapshot_id": snapshot.pk, "parameters": params}
    frozen = release_build(frozen)
    assert frozen.status == "built"
    folder = release_dir(frozen)
    meta = json.loads((folder / "release.json").read_text())
    model = meta["agreement"]["measurement_model"]
    assert model["source"] == f"parameters of the measurement model fitted after snapshot {snapshot.pk}"
    assert model["snapshot_id"] == snapshot.pk and model["converged"] is True
    card = (folder / "README.md").read_text()
    assert f"Source of the model: parameters of the measurement model fitted after snapshot {snapshot.pk}." in card
    first = _hashes(folder)
    # A newer snapshot (another fit) does not change a rebuild: the parameters were frozen.
    payload = dict(snapshot.payload)
    later = AgreementSnapshot.objects.create(project=project, fingerprint="x", status="done", payload=payload)
    assert later.pk != snapshot.pk
    assert _hashes(release_dir(release_build(frozen))) == first

    # The same labels as the full fit the old path does, to the fit's own tolerance.
    refit = release_build(release_create(project=project, version="1.1.0", n_boot=20,
                                         consolidation={"soft_labels": True, "method": "median"}))
    assert refit.inputs["rater_model"]["snapshot_id"] == later.pk
    model_release = release_build(release_create(project=project, version="1.1.1", n_boot=0,
                                                 consolidation={"method": "model"}))
    assert model_release.inputs["rater_model"]["snapshot_id"] == later.pk
    table = _table(release_dir(model_release))
    slug = emotion_slug(EMOTIONS[2])
    expected = table.column(f"{slug}__p_present").to_numpy() * table.column(f"{slug}__expected_intensity").to_numpy()
    assert np.allclose(table.column(f"{slug}__consensus").to_numpy(), expected, atol=2e-3)
    AgreementSnapshot.objects.filter(project=project).delete()
    fallback = release_build(release_create(project=project, version="1.2.0", n_boot=20))
    assert "rater_model" not in fallback.inputs
    fb_model = json.loads((release_dir(fallback) / "release.json").read_text())["agreement"]["measurement_model"]
    assert fb_model["source"] == "fitted to this release's ratings" and fb_model["converged"] is True
    assert "Source of the model: fitted to this release's ratings." in (release_dir(fallback) / "README.md").read_text()
    ours, theirs = _soft(_table(folder)), _soft(_table(release_dir(fallback)))
    assert ours.shape == theirs.shape
    assert np.abs(ours[0] - theirs[0]).max() < 1e-3  # p_present (columns rounded)
    assert np.abs(ours[1] - theirs[1]).max() < 0.15 and np.abs(ours[1] - theirs[1]).mean() < 0.03
    assert np.abs(ours[2] - theirs[2]).max() < 0.05


def test_parameters_on_another_scale_or_not_converged_are_not_used():
    project, _ = seed_simulated("frz2", n_images=120)
    snapshot = agreement_snapshot_create(project, n_boot=0)
    assert rater_model_attach(snapshot.pk)
    snapshot.refresh_from_db()
    payload = dict(snapshot.payload)
    payload["rater_model"] = {**payload["rater_model"], "converged": False}
    AgreementSnapshot.objects.filter(pk=snapshot.pk).update(payload=payload)
    assert "rater_model" not in release_create(project=project, version="1.0.0", n_boot=0).inputs
    model = dict(payload["rater_model"], converged=True)
    model["parameters"] = dict(model["parameters"], scale_max=5, cutpoints=[[0.0] * 4] * 40)
    payload["rater_model"] = model
    AgreementSnapshot.objects.filter(pk=snapshot.pk).update(payload=payload)
    assert "rater_model" not in release_create(project=project, version="1.0.1", n_boot=0).inputs
    with pytest.raises(ValueError, match="cutpoints has shape"):
        rp.ModelParameters.from_json(dict(model["parameters"], scale_max=7))


def _intensity_modes_every_element(params, Yc, ui, ri, N):
    """The intensity latents as first written: a Newton step on every element each time (the
    stopped ones stepping by 0), the reference for the compacted loop of ratermodel_posterior._modes."""
    from annotation.agreement.ratermodel import _BIG

    Ec, K, R1 = Yc.shape[0], params.scale_max, params.rater_ids.size + 1
    D = np.vstack([np.nan_to_num(params.intensity_latent, nan=0.0), np.zeros((1, Ec))]).T.copy()
    lam_r = np.r_[params.discrimination, 1.0]
    size = Ec * N
    B = np.zeros(size)
    prec_b = np.repeat(1.0 / params.intensity_sd ** 2, N)
    elp, jp = np.nonzero(Yc > 0)
    ip = elp * N + ui[jp]
    yp = Yc[elp, jp].astype(np.intp)
    rp_ = ri[jp]
    lam = np.take(lam_r, rp_)
    off_d = np.take(D.reshape(-1), elp * R1 + rp_)
    cext = np.concatenate([np.full((Ec, 1), -_BIG), params.cutpoints, np.full((Ec, 1), _BIG)], axis=1).reshape(-1)
    c_up, c_lo = np.take(cext, elp * (K + 1) + yp), np.take(cext, elp * (K + 1) + yp - 1)
    active = np.bincount(ip, minlength=size) > 0
    lo, hi = np.full(size, -np.inf), np.full(size, np.inf)
    for _ in range(rp.MAX_STEPS):
        score, w = rp._ordinal_terms(lam, c_up, c_lo, np.take(B, ip) + off_d)
        g = np.bincount(ip, score, size) - B * prec_b
        hb = np.bincount(ip, w, size) + prec_b
        step = rp._safeguarded(B, g, hb, lo, hi)
        step[~active] = 0.0
        B += step
        active &= np.abs(step) >= rp.TOL
        if not active.any():
            break
    _score, w = rp._ordinal_terms(lam, c_up, c_lo, np.take(B, ip) + off_d)
    return B, 1.0 / (np.bincount(ip, w, size) + prec_b)


def test_newton_on_the_moving_elements_only_is_stepping_every_element():
    rng = np.random.default_rng(8)
    E, K, n_img, R = 6, 7, 3000, 12
    counts = rng.integers(1, 6, n_img)
    ui = np.repeat(np.arange(n_img), counts).astype(np.intp)
    ri = np.concatenate([np.sort(rng.choice(R + 1, c, replace=False)) for c in counts]).astype(np.intp)
    Yc = (rng.integers(1, K + 1, (E, ui.size)) * (rng.random((E, ui.size)) < 0.3)).astype(np.int8)
    params = rp.ModelParameters(
        rater_ids=np.arange(R, dtype=np.int64), presence_shift=rng.normal(0, 0.5, (R, E)),
        intensity_latent=rng.normal(0, 0.8, (R, E)), discrimination=rng.uniform(0.4, 2.5, R),
        presence_mean=rng.normal(-1.5, 0.3, E), presence_sd=rng.uniform(0.8, 1.2, E),
        intensity_sd=rng.uniform(0.5, 2.2, E), cutpoints=np.sort(rng.normal(0, 2.5, (E, K - 1)), axis=1), scale_max=K)
    S = np.vstack([params.presence_shift, np.zeros((1, E))]).T.copy()
    D = np.vstack([params.intensity_latent, np.zeros((1, E))]).T.copy()
    _A, _VA, B, VB, _has = rp._modes(params, Yc, 0, ui, ri, n_img, S, D, np.r_[params.discrimination, 1.0])
    B_ref, VB_ref = _intensity_modes_every_element(params, Yc, ui, ri, n_img)
    assert np.array_equal(B.reshape(-1), B_ref) and np.array_equal(VB.reshape(-1), VB_ref)
    assert (B != 0).mean() > 0.5  # most elements have a present rating and moved


def test_soft_rows_emotion_major_is_the_transpose():
    """#21: SoftRows.of_emotion_major (what a release's table slice takes) gives ``of``'s figures
    transposed, to the bit, C-contiguous, for image ids in any order and chunks across images."""
    rng = np.random.default_rng(9)
    E, K, n_img, R = 5, 7, 400, 9
    counts = rng.integers(1, 5, n_img)
    ids = np.repeat(np.arange(10, 10 + n_img), counts).astype(np.int64)
    raters = np.concatenate([np.sort(rng.choice(R, c, replace=False)) for c in counts]).astype(np.int64)
    vals = (rng.integers(1, K + 1, (ids.size, E)) * (rng.random((ids.size, E)) < 0.4)).astype(np.float64)
    params = rp.ModelParameters(
        rater_ids=np.arange(R, dtype=np.int64), presence_shift=rng.normal(0, 0.5, (R, E)),
        intensity_latent=rng.normal(0, 0.8, (R, E)), discrimination=rng.uniform(0.4, 2.5, R),
        presence_mean=rng.normal(-1.5, 0.3, E), presence_sd=rng.uniform(0.8, 1.2, E),
        intensity_sd=rng.uniform(0.5, 2.2, E), cutpoints=np.sort(rng.normal(0, 2.5, (E, K - 1)), axis=1), scale_max=K)
    soft = rp.SoftRows(params, ids, raters, vals, chunk_images=37)
    want = rng.permutation(np.unique(ids))[:250]
    rows, cols = soft.of(want), soft.of_emotion_major(want)
    for r, c in zip(rows, cols, strict=True):
        assert c.shape == (E, want.size) and c.flags.c_contiguous
        assert np.array_equal(c, r.T) and np.isfinite(c).all()
    with pytest.raises(ValueError, match="image 5 has no ratings"):
        soft.of_emotion_major(np.array([5]))


def test_soft_labels_per_value_pattern_are_each_elements_own(monkeypatch):
    """#21: the posterior computed once per value pattern (the same raters in the same order giving
    the same values) and copied gives, to the bit, what each element computed on its own gives
    (patterns turned off); with few raters and mostly zeros the patterns are far fewer than the
    elements. Mixed numbers of ratings per image, unknown raters and a presence carry included."""
    rng = np.random.default_rng(11)
    E, K, n_img, R = 7, 7, 4000, 10
    counts = rng.integers(1, 5, n_img)
    ids = np.repeat(np.arange(100, 100 + n_img), counts).astype(np.int64)
    start = rng.integers(0, R + 2, n_img)
    raters = np.concatenate([(s + np.arange(c)) % (R + 2) for s, c in zip(start, counts, strict=True)]).astype(np.int64)
    vals = np.where(rng.random((ids.size, E)) < 0.75, 0, rng.integers(1, K + 1, (ids.size, E))).astype(np.int8)
    params = rp.ModelParameters(
        rater_ids=np.arange(R, dtype=np.int64), presence_shift=rng.normal(0, 0.5, (R, E)),
        intensity_latent=rng.normal(0, 0.8, (R, E)), discrimination=rng.uniform(0.4, 2.5, R),
        presence_mean=rng.normal(-1.5, 0.3, E), presence_sd=rng.uniform(0.8, 1.2, E),
        intensity_sd=rng.uniform(0.5, 2.2, E), cutpoints=np.sort(rng.normal(0, 2.5, (E, K - 1)), axis=1), scale_max=K,
        presence_offset=rng.normal(0, 0.2, E))
    yt = np.ascontiguousarray(vals.T)
    ui = np.unique(ids, return_inverse=True)[1].astype(np.intp)
    pats = rp._patterns(yt, ui, np.minimum(raters, R).astype(np.intp), n_img, K)
    assert pats is not None and pats[6] and pats[4].size * 3 < E * n_img  # value patterns, far fewer
    by_pattern = rp.posterior_soft_labels(params, ids, raters, vals)
    monkeypatch.setattr(rp, "MAX_PATTERN_RATINGS", 0)  # no patterns: every element on its own
    assert rp._patterns(yt, ui, np.minimum(raters, R).astype(np.intp), n_img, K) is None
    own = rp.posterior_soft_labels(params, ids, raters, vals)
    for name in ("p_present", "expected_intensity", "sd"):
        assert np.array_equal(getattr(by_pattern, name), getattr(own, name)), name
    assert np.isfinite(own.sd).all() and (own.expected_intensity >= 1).all()
