"""Releases carry the measurement model's soft labels, and can use it as the consolidation (#18)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from accounts.models import Role
from annotation.consolidation import ConsolidationRule
from annotation.exporters import image_columns
from annotation.services.releases import release_build, release_create, release_dir
from annotation.taxonomy import EMOTIONS, emotion_slug
from tests.factories import make_user
from tests.support.ratermodel_seed import seed_simulated

pytestmark = pytest.mark.django_db


def _table(folder) -> pa.Table:
    return pa.concat_tables([pq.read_table(p) for p in sorted((folder / "data").glob("*.parquet"))])


def test_default_release_has_soft_label_columns_explained_in_the_card():
    project, _ = seed_simulated("soft", n_images=240)
    release = release_build(release_create(project=project, version="1.0.0", n_boot=50,
                                           created_by=make_user(Role.LEAD)))
    assert release.status == "built"
    folder = release_dir(release)
    table = _table(folder)
    slug = emotion_slug(EMOTIONS[0])
    assert table.column_names == image_columns(soft=True)
    for col in (f"{slug}__p_present", f"{slug}__expected_intensity", f"{slug}__sd"):
        assert col in table.column_names
    p = np.array([table.column(f"{emotion_slug(e)}__p_present").to_numpy() for e in EMOTIONS])
    ei = np.array([table.column(f"{emotion_slug(e)}__expected_intensity").to_numpy() for e in EMOTIONS])
    sd = np.array([table.column(f"{emotion_slug(e)}__sd").to_numpy() for e in EMOTIONS])
    assert ((p >= 0) & (p <= 1)).all() and ((ei >= 1) & (ei <= 7)).all() and (sd >= 0).all()
    # Images whose median marks the emotion present get a much higher p_present than those whose median does not.
    cons = np.array([table.column(f"{emotion_slug(e)}__consensus").to_numpy() for e in EMOTIONS])
    assert p[cons >= 2].mean() > 3 * p[cons == 0].mean()
    card = (folder / "README.md").read_text()
    assert "## Soft labels" in card and f"`{slug}__p_present`" in card and "`<slug>__expected_intensity`" in card
    meta = json.loads((folder / "release.json").read_text())
    assert meta["consolidation"]["soft_labels"] is True
    assert meta["agreement"]["measurement_model"]["converged"] is True
    assert f"{slug}__sd" in meta["columns"]


def test_model_consolidation_uses_the_expected_rating():
    project, _ = seed_simulated("softm", n_images=200)
    release = release_build(release_create(project=project, version="1.0.0", n_boot=0,
                                           consolidation={"method": "model"}))
    table = _table(release_dir(release))
    slug = emotion_slug(EMOTIONS[3])
    expected = table.column(f"{slug}__p_present").to_numpy() * table.column(f"{slug}__expected_intensity").to_numpy()
    assert np.allclose(table.column(f"{slug}__consensus").to_numpy(), expected, atol=2e-3)
    assert "measurement model" in (release_dir(release) / "README.md").read_text()


def test_soft_labels_can_be_left_out_and_old_configs_keep_their_shape():
    project, _ = seed_simulated("softoff", n_images=60)
    release = release_build(release_create(project=project, version="1.0.0", n_boot=0,
                                           consolidation={"soft_labels": False}))
    assert _table(release_dir(release)).column_names == image_columns()
    old = {k: v for k, v in ConsolidationRule().as_dict().items() if k != "soft_labels"}
    assert ConsolidationRule.from_config(old).soft_labels is False
    with pytest.raises(ValueError, match="method 'model' releases the model's soft labels"):
        ConsolidationRule(method="model", soft_labels=False)
