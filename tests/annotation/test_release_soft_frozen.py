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
