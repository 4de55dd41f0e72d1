"""A release built chunk by chunk of images is the release built in one chunk, file by file (#21)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from annotation.services.agreement_snapshot import agreement_snapshot_create
from annotation.services.rater_model import rater_model_attach
from annotation.services.releases import release_build, release_create, release_dir
from tests.support.ratermodel_seed import seed_simulated

pytestmark = pytest.mark.django_db


def _hashes(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_small_chunks_give_the_single_chunk_files(settings):
    project, _ = seed_simulated("chk", n_images=150)
    snapshot = agreement_snapshot_create(project, n_boot=0)
    assert rater_model_attach(snapshot.pk)
    release = release_create(project=project, version="1.0.0", n_boot=20)
    assert "rater_model" in release.inputs
    settings.EMORATE_RELEASE_CHUNK_IMAGES = 1_000_000
    whole = _hashes(release_dir(release_build(release)))
    settings.EMORATE_RELEASE_CHUNK_IMAGES = 7
    chunked = _hashes(release_dir(release_build(release)))
    assert len(whole) >= 8 and any(p.startswith("data/") for p in whole)
    assert chunked == whole


def test_columnar_diff_is_the_row_by_row_diff():
    import numpy as np
    import pyarrow as pa

    from annotation.exporters import diff_columns, diff_releases, diff_tables

    def same(a: dict, b: dict) -> bool:  # NaN labels compare by their text
        return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)

    rng = np.random.default_rng(5)
    shas = [f"{i:064x}" for i in rng.permutation(400)]

    def table(rows: list[str], *, binary: bool, extra: str | None = None) -> pa.Table:
        n = len(rows)
        cols: dict[str, pa.Array] = {"sha256": pa.array(rows), "split": pa.array(
            [None if k % 37 == 0 else ["train", "test"][int(v)] for k, v in enumerate(rng.random(n) < 0.2)])}
        for slug in ("anger", "joy", "awe"):
            if binary:
                lab = rng.integers(-1, 2, n)
                cols[f"{slug}__label"] = pa.array(lab.astype(np.int8), pa.int8(), mask=lab < 0)
                cols[f"{slug}__yes"] = pa.array(rng.integers(0, 3, n).astype(np.int16))
                cols[f"{slug}__no"] = pa.array(rng.integers(0, 2, n).astype(np.int16))
            else:
                v = np.round(rng.integers(0, 3, n) / 2, 1)
                v[rng.random(n) < 0.02] = np.nan
                cols[f"{slug}__consensus"] = pa.array(v, pa.float64(), mask=rng.random(n) < 0.03)
        if not binary:
            cols["n_ratings"] = pa.array(rng.integers(2, 5, n).astype(np.int16))
        if extra:
            cols[extra] = pa.array(np.zeros(n))
        return pa.table(cols)

    for binary in (False, True):
        old = table(shas[:300], binary=binary)
        new = table(shas[50:400], binary=binary, extra="joy__p_present")
        expected = diff_releases(old, new)
        assert expected["labels_changed"] and expected["split_changed"] and expected["ratings_added"]
        assert same(diff_tables(old, new), expected)
        # only the compared columns read, every name given
        slim_old, slim_new = old.select(diff_columns(old.column_names)), new.select(diff_columns(new.column_names))
        assert "joy__p_present" not in slim_new.column_names
        assert same(diff_tables(slim_old, slim_new, old_names=old.column_names, new_names=new.column_names), expected)
    empty = table([], binary=False)
    fixed = table(shas[:5], binary=False)
    assert same(diff_tables(empty, fixed), diff_releases(empty, fixed))


def test_chunked_reader_gives_rating_rows():
    import numpy as np

    from annotation import selectors
    from annotation.models import Image, Rating

    project, raters = seed_simulated("chr", n_images=60, odd_rater=False)
    image_ids = list(Image.objects.filter(project=project).order_by("pk").values_list("pk", flat=True))
    Image.objects.filter(pk=image_ids[3]).update(flagged=True)
    max_id = Rating.objects.filter(project=project).order_by("-pk").values_list("pk", flat=True)[10]
    for kwargs in ({}, {"max_rating_id": max_id, "exclude_raters": [raters[0].pk],
                        "flagged_image_ids": [image_ids[5], image_ids[40]]}):
        whole = selectors.rating_rows(project, **kwargs)
        parts = list(selectors.rating_rows_chunks(project, chunk_images=7, **kwargs))
        assert len(parts) == 9
        for name in ("image_ids", "rater_ids", "values"):
            assert np.array_equal(np.concatenate([getattr(p, name) for p in parts]), getattr(whole, name)), name
    assert image_ids[3] not in selectors.rating_rows(project).image_ids


def test_tables_written_slice_by_slice_are_the_whole_table_files(tmp_path):
    import numpy as np
    import pyarrow as pa

    from annotation.exporters.release import ROW_GROUP, _FileSink
    from annotation.exporters.text import (
        _csv_bytes,
        _csv_chunks,
        _jsonl_bytes,
        _jsonl_chunks,
        _parquet_bytes,
        _segments,
    )

    rng = np.random.default_rng(2)
    n = 2 * ROW_GROUP + 12_345
    table = pa.table({"sha256": pa.array([f"{i:064x}" for i in range(n)]),
                      "split": pa.array(np.where(rng.random(n) < 0.5, "train", "te,st")),
                      "x": pa.array(np.round(rng.random(n) * 7, 4)), "k": pa.array(rng.integers(0, 8, n).astype(np.int16)),
                      "p": pa.array(["=1+1" if i % 1000 == 0 else f"prompt {i % 50}" for i in range(n)])})
    sink = _FileSink(tmp_path)
    for rel in ("t.parquet", "t.csv", "t.jsonl"):
        sink.open(rel)
    for lo in range(0, n, ROW_GROUP):
        part = table.slice(lo, ROW_GROUP)
        sink.table("t.parquet", part)
        chunks = iter(_csv_chunks(part, _segments(part)))
        if lo:
            next(chunks)
        for c in chunks:
            sink.data("t.csv", c)
        for c in _jsonl_chunks(part):
            sink.data("t.jsonl", c)
    for rel in ("t.parquet", "t.csv", "t.jsonl"):
        sink.close(rel)
    entries = sink.finish()
    assert (tmp_path / "t.parquet").read_bytes() == _parquet_bytes(table)
    assert (tmp_path / "t.csv").read_bytes() == _csv_bytes(table)
    assert (tmp_path / "t.jsonl").read_bytes() == _jsonl_bytes(table)
    assert entries["t.csv"].sha256 == hashlib.sha256(_csv_bytes(table)).hexdigest()
    assert entries["t.parquet"].size == len(_parquet_bytes(table))


def test_consolidation_in_blocks_of_images_is_the_same(monkeypatch):
    import numpy as np

    import annotation.consolidation as cons

    rng = np.random.default_rng(0)
    counts = rng.integers(1, 6, 3000)
    ids = np.repeat(np.arange(3000) * 7, counts)
    vals = (rng.integers(0, 8, (ids.size, 40)) * (rng.random((ids.size, 40)) < 0.2)).astype(np.int16)
    rule = cons.ConsolidationRule(disputed_spread=5, presence_split_min=1)
    whole = cons.consolidate_intensity(ids, vals, rule=rule, flagged_image_ids=[14, 70])
    monkeypatch.setattr(cons, "BLOCK_IMAGES", 37)
    blocked = cons.consolidate_intensity(ids, vals, rule=rule, flagged_image_ids=[14, 70])
    assert whole.disputed.any() and whole.left_out["below_min_ratings"] > 0
    for name in ("image_ids", "consensus", "spread", "n_ratings", "disputed_emotions", "disputed"):
        assert np.array_equal(getattr(whole, name), getattr(blocked, name)), name
    assert whole.left_out == blocked.left_out


def test_release_from_columns_with_soft_labels_per_slice_is_the_release_from_image_rows(tmp_path, monkeypatch):
    """#21: write_release_columns (Arrow columns, split codes, soft labels computed slice by slice by
    ratermodel_posterior.SoftRows) writes the files write_release writes from ImageRows, a sha256 ->
    split mapping and the soft labels held whole, byte for byte, over several slices."""
    import dataclasses

    import numpy as np
    import pyarrow as pa

    import annotation.exporters.release as rel
    from annotation.agreement import ratermodel_posterior as rp
    from annotation.consolidation import SoftLabels, consolidate_intensity
    from annotation.exporters import CardInfo, ImageRow
    from annotation.pgcopy import RatingRows
    from annotation.taxonomy import EMOTIONS

    rng = np.random.default_rng(5)
    n_img, per, E, K = 40, 3, len(EMOTIONS), 7
    ids = np.repeat(np.arange(1, n_img + 1) * 3, per).astype(np.int64)
    raters = np.concatenate([rng.choice(np.arange(10, 16), per, replace=False) for _ in range(n_img)]).astype(np.int64)
    vals = (rng.integers(1, K + 1, (ids.size, E)) * (rng.random((ids.size, E)) < 0.3)).astype(np.int16)
    rows = RatingRows(image_ids=ids, rater_ids=raters, values=vals)
    params = rp.ModelParameters(
        rater_ids=np.arange(10, 15, dtype=np.int64), presence_shift=rng.normal(0, 0.3, (5, E)),
        intensity_latent=rng.normal(0, 0.3, (5, E)), discrimination=rng.uniform(0.7, 1.3, 5),
        presence_mean=rng.normal(-1.5, 0.3, E), presence_sd=rng.uniform(0.8, 1.2, E),
        intensity_sd=rng.uniform(0.8, 1.2, E), cutpoints=np.sort(rng.normal(0, 1.5, (E, K - 1)), axis=1),
        scale_max=K)  # rater 15 is unknown to the parameters: counted as the panel
    post = rp.posterior_soft_labels(params, ids, raters, vals)
    soft = SoftLabels(image_ids=post.unit_ids, p_present=post.p_present.T, expected_intensity=post.expected_intensity.T,
                      sd=post.sd.T)
    labels = consolidate_intensity(ids, vals, soft=soft, flagged_image_ids=[9])
    n = labels.image_ids.size
    sha = [hashlib.sha256(str(i).encode()).hexdigest() for i in labels.image_ids.tolist()]
    eth = rng.choice(["A", "B", ""], n).tolist()
    ages = [None if i % 5 == 0 else 20 + i for i in range(n)]
    codes = rng.integers(0, 3, n).astype(np.int8)
    names = ("train", "validation", "test")
    common = {"labels": labels, "raw": rows, "balance": {}, "agreement": {"measurement_model": {"source": "x"}},
              "card": CardInfo(pretty_name="P", version="1.0.0", released="2026-03-01", description="d"),
              "config": {"k": None}, "pseudonym_key": b"k" * 32, "scale_max": K}
    monkeypatch.setattr(rel, "ROW_GROUP", 7)
    rel.write_release(tmp_path / "rows", images=[
        ImageRow(image_id=int(i), file_name=f"img{i}.png", sha256=s, ethnicity=e, gender="woman", age=a, prompt=f"p{i % 4}")
        for i, s, e, a in zip(labels.image_ids.tolist(), sha, eth, ages, strict=True)],
        assignment={s: names[c] for s, c in zip(sha, codes.tolist(), strict=True)},
        allocation=["quota"] * ids.size, **common)
    info = pa.table({"id": pa.array(labels.image_ids), "name": pa.array([f"img{i}.png" for i in labels.image_ids.tolist()]),
                     "sha256": pa.array(sha), "ethnicity": pa.array(eth), "gender": pa.array(["woman"] * n),
                     "age": pa.array(ages, pa.int16()), "prompt": pa.array([f"p{i % 4}" for i in labels.image_ids.tolist()])})
    lazy = np.broadcast_to(np.zeros((1, 1)), labels.consensus.shape)
    compact = consolidate_intensity(ids, vals, soft=soft, flagged_image_ids=[9], compact=True)
    assert compact.consensus.dtype == np.int8 and compact.consensus_halves and compact.spread.dtype == np.int8
    common["labels"] = dataclasses.replace(compact, p_present=lazy, expected_intensity=lazy, soft_sd=lazy)
    monkeypatch.setattr(rel, "TEXT_ROWS", 3)  # text lines formatted 3 rows at a time: the same bytes
    rel.write_release_columns(tmp_path / "cols", info=info, split=codes, split_names=names,
                              allocation=pa.array(["quota"] * ids.size),
                              soft=rp.SoftRows(params, ids, raters, vals, chunk_images=3).of_emotion_major, **common)
    whole, columns = _hashes(tmp_path / "rows"), _hashes(tmp_path / "cols")
    assert len(whole) >= 10 and any("__p_present" in (tmp_path / "rows" / p).read_text(errors="ignore")
                                    for p in whole if p.startswith("csv/"))
    assert columns == whole


def test_a_sink_with_a_tiny_budget_writes_the_same_files_and_waits_for_its_tables(tmp_path):
    """#21: the writer's queue bounded in bytes (one text chunk at a time) and the caller waiting
    for each table before the next: the same bytes as the default budget."""
    import numpy as np
    import pyarrow as pa

    from annotation.exporters.release import ROW_GROUP, _FileSink
    from annotation.exporters.text import _csv_bytes, _csv_chunks, _parquet_bytes

    rng = np.random.default_rng(5)
    n = ROW_GROUP + 777
    table = pa.table({"x": pa.array(np.round(rng.random(n), 3)), "k": pa.array(rng.integers(0, 5, n))})
    sink = _FileSink(tmp_path, max_pending=1)
    sink.open("t.parquet")
    sink.open("t.csv")
    for lo in range(0, n, ROW_GROUP):
        sink.tables_done()
        assert sink._tables == 0
        part = table.slice(lo, ROW_GROUP)
        sink.table("t.parquet", part)
        chunks = iter(_csv_chunks(part))
        if lo:
            next(chunks)
        for c in chunks:
            sink.data("t.csv", c)
    sink.tables_done()
    assert sink._tables == 0
    sink.close("t.parquet")
    sink.close("t.csv")
    sink.finish()
    assert sink._pending == 0
    assert (tmp_path / "t.parquet").read_bytes() == _parquet_bytes(table)
    assert (tmp_path / "t.csv").read_bytes() == _csv_bytes(table)


def test_int8_ratings_consolidate_as_int16_ones():
    """#21: a release reads its ratings as int8 (releases._compact_ratings): every label, the
    noise rule's included, is the same as from int16."""
    import numpy as np

    import annotation.consolidation as cons
    from annotation.pgcopy import RatingRows
    from annotation.services.releases import _compact_ratings

    rng = np.random.default_rng(1)
    counts = rng.integers(1, 7, 2000)
    ids = np.repeat(np.arange(2000) * 3, counts)
    vals = (rng.integers(0, 8, (ids.size, 40)) * (rng.random((ids.size, 40)) < 0.3)).astype(np.int16)
    rows = RatingRows(image_ids=ids.astype(np.int64), rater_ids=np.arange(ids.size, dtype=np.int64), values=vals)
    small = _compact_ratings(rows, 7)
    assert small.values.dtype == np.int8 and np.array_equal(small.values, vals)
    rule = cons.ConsolidationRule(disputed_spread=5, presence_split_min=1, disputed_noise_p=0.05)
    a = cons.consolidate_intensity(ids, vals, rule=rule, compact=True)
    b = cons.consolidate_intensity(ids, small.values, rule=rule, compact=True)
    assert 0 < a.disputed_emotions.sum() < a.disputed_emotions.size
    for name in ("image_ids", "consensus", "spread", "n_ratings", "disputed_emotions", "disputed"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    # values that do not fit int8 stay as they are (the consolidation names the one off the scale)
    wide = RatingRows(image_ids=ids[:3], rater_ids=np.arange(3, dtype=np.int64), values=np.full((3, 40), 300, np.int16))
    assert _compact_ratings(wide, 7).values.dtype == np.int16
    assert _compact_ratings(rows, 300).values.dtype == np.int16
    with pytest.raises(ValueError, match="value 300 is off the scale"):
        cons.consolidate_intensity(wide.image_ids, _compact_ratings(wide, 7).values)


def test_shared_int_lists_are_the_plain_lists():
    import numpy as np

    from annotation.splits import _shared_int_list

    col = np.random.default_rng(3).integers(0, 5000, 20_000)
    out = _shared_int_list(col)
    assert out == col.tolist() and all(type(x) is int for x in out[:10])
    first = {}
    for x in out:
        assert first.setdefault(x, x) is x  # one object per value
    assert _shared_int_list(np.zeros(0, dtype=np.int64)) == []
