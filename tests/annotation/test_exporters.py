"""Release writers: loadable by pandas / pyarrow / datasets, byte-deterministic, documented (no database)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from annotation import exporters
from annotation.consolidation import BinaryVotes, ConsolidationRule, consolidate_binary, consolidate_intensity
from annotation.exporters import (
    CardInfo,
    ImageRow,
    diff_releases,
    image_columns,
    image_table,
    pseudonym,
    raw_ratings_table,
    verify_manifest,
    write_release,
)
from annotation.pgcopy import RatingRows
from annotation.splits import SplitConfig, SplitItem, assign_splits, balance_table
from annotation.taxonomy import EMOTIONS, emotion_slug

KEY = b"test-pseudonym-key"
N_IMAGES = 120
RATER_IDS = [101, 102, 103, 104, 105]


def make_images(n: int = N_IMAGES) -> list[ImageRow]:
    rng = np.random.default_rng(0)
    return [
        ImageRow(image_id=i + 1, file_name=f"faces/img_{i:04d}.png",
                 sha256=hashlib.sha256(f"image {i}".encode()).hexdigest(),
                 ethnicity=str(rng.choice(["White", "Black", "East Asian", "Latino"])),
                 gender=str(rng.choice(["woman", "man", "non-binary person"])),
                 age=None if i % 17 == 0 else int(rng.choice([20, 30, 40, 50])),
                 prompt=f"portrait, \"quoted\", comma {i // 3}, naïve")
        for i in range(n)
    ]


def make_ratings(n: int = N_IMAGES, seed: int = 1) -> RatingRows:
    rng = np.random.default_rng(seed)
    ids, raters, values = [], [], []
    for image_id in range(1, n + 1):
        k = 1 if image_id == 5 else 3 + (image_id % 2)  # image 5: one rating -> left out
        for r in rng.choice(RATER_IDS, size=k, replace=False):
            ids.append(image_id)
            raters.append(int(r))
            values.append(np.where(rng.random(40) < 0.2, rng.integers(1, 8, 40), 0))
    return RatingRows(image_ids=np.array(ids, dtype=np.int64), rater_ids=np.array(raters, dtype=np.int64),
                      values=np.array(values, dtype=np.int16))


AGREEMENT = {
    "level": "interval", "confidence": 0.95, "n_boot": 1000, "mean_alpha": 0.1912,
    "emotions": {e: {"alpha": 0.2 + i / 100, "ci_low": 0.1, "ci_high": 0.3 + i / 1000, "n_units": 119}
                 for i, e in enumerate(EMOTIONS) if i != 3},
}
CARD = CardInfo(pretty_name="EmoRate Faces", version="1.0.0", released="2026-03-01",
                description="Expert ratings of synthetic faces.")


def build(images=None, ratings=None, *, flagged=(), seed=0, previous=None):  # type: ignore[no-untyped-def]
    images = images or make_images()
    ratings = ratings or make_ratings()
    rule = ConsolidationRule()
    labels = consolidate_intensity(ratings.image_ids, ratings.values, rule=rule, flagged_image_ids=flagged)
    kept = set(labels.image_ids.tolist())
    items = [SplitItem(im.sha256, im.ethnicity, im.gender, im.age, im.prompt) for im in images if im.image_id in kept]
    config = SplitConfig(seed=seed)
    assignment = assign_splits(items, config, previous)
    balance = balance_table(items, assignment)
    kwargs = dict(images=images, labels=labels, raw=ratings, assignment=assignment, balance=balance,
                  agreement=AGREEMENT, card=CARD, pseudonym_key=KEY,
                  config={"consolidation": rule.as_dict(), "splits": config.as_dict()})
    return kwargs


@pytest.fixture
def release(tmp_path: Path) -> Path:
    write_release(tmp_path / "release", **build())
    return tmp_path / "release"


def file_hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_and_row_counts_with_pandas_and_pyarrow(release: Path):
    pd = pytest.importorskip("pandas")
    assert sorted(file_hashes(release)) == [
        "README.md", "csv/test.csv", "csv/train.csv", "csv/validation.csv",
        "data/test-00000-of-00001.parquet", "data/train-00000-of-00001.parquet",
        "data/validation-00000-of-00001.parquet", "jsonl/test.jsonl", "jsonl/train.jsonl",
        "jsonl/validation.jsonl", "manifest.json", "raw/ratings.parquet", "release.json",
    ]
    counts = {}
    for split in ("train", "validation", "test"):
        df = pd.read_parquet(release / f"data/{split}-00000-of-00001.parquet")
        table = pq.read_table(release / f"data/{split}-00000-of-00001.parquet")
        assert list(df.columns) == table.column_names == image_columns()
        assert (df["split"] == split).all()
        assert list(df["sha256"]) == sorted(df["sha256"])
        counts[split] = len(df)
    assert counts == {"train": 95, "validation": 12, "test": 12}  # 120 images, one left out
    raw = pd.read_parquet(release / "raw/ratings.parquet")
    assert len(raw) == int(make_ratings().image_ids.size) - 1  # the left-out image's one rating dropped
    meta = json.loads((release / "release.json").read_text())
    assert meta["counts"]["images"] == counts and meta["left_out"]["below_min_ratings"] == 1


def test_consensus_columns_hold_the_consolidated_values(release: Path):
    ratings = make_ratings()
    images = {im.sha256: im for im in make_images()}
    table = pq.read_table(release / "data/train-00000-of-00001.parquet").to_pylist()
    row = table[0]
    image_id = images[row["sha256"]].image_id
    block = ratings.values[ratings.image_ids == image_id]
    slug = emotion_slug(EMOTIONS[0])
    assert row[f"{slug}__consensus"] == float(np.median(block[:, 0]))
    assert row[f"{slug}__spread"] == int(block[:, 0].max() - block[:, 0].min())
    assert row["n_ratings"] == block.shape[0]
    assert row["age"] == images[row["sha256"]].age and row["prompt"] == images[row["sha256"]].prompt


def test_datasets_load_dataset_reads_the_splits(release: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf_cache"))
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset("parquet", data_dir=str(release), cache_dir=str(tmp_path / "hf_cache"))
    assert {k: v.num_rows for k, v in ds.items()} == {"train": 95, "validation": 12, "test": 12}
    assert ds["test"].column_names == image_columns()
    # the card's configs: the folder itself loads, and the raw ratings are their own config
    raw = datasets.load_dataset(str(release), "raw_ratings", cache_dir=str(tmp_path / "hf_cache"))
    assert raw["ratings"].num_rows == int(make_ratings().image_ids.size) - 1


def test_two_writes_are_byte_identical_and_the_manifest_is_complete(tmp_path: Path):
    m1 = write_release(tmp_path / "a", **build())
    m2 = write_release(tmp_path / "b", **build())
    assert m1 == m2
    h1, h2 = file_hashes(tmp_path / "a"), file_hashes(tmp_path / "b")
    assert h1 == h2
    manifest = json.loads((tmp_path / "a/manifest.json").read_text())
    listed = {f["path"]: f for f in manifest["files"]}
    assert [f["path"] for f in manifest["files"]] == sorted(listed)
    assert set(listed) == set(h1) - {"manifest.json"}
    for path, entry in listed.items():
        data = (tmp_path / "a" / path).read_bytes()
        assert entry == {"path": path, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    assert verify_manifest(tmp_path / "a") == []
    (tmp_path / "a/csv/test.csv").write_text("tampered\n")
    (tmp_path / "a/extra.txt").write_text("x")
    assert verify_manifest(tmp_path / "a") == ["csv/test.csv: size or sha256 differs from the manifest",
                                                "extra.txt: not in the manifest"]
    with pytest.raises(FileExistsError):
        write_release(tmp_path / "b", **build())


def test_card_yaml_header_and_sections(release: Path):
    text = (release / "README.md").read_text()
    assert text.startswith("---\n")
    header = yaml.safe_load(text.split("---\n")[1])
    assert header["license"] == "cc-by-4.0"
    assert header["pretty_name"] == "EmoRate Faces"
    assert "image-classification" in header["task_categories"] and "emotion" in header["tags"]
    assert header["size_categories"] == ["n<1K"]
    default = next(c for c in header["configs"] if c["config_name"] == "default")
    assert default["data_files"] == [{"split": s, "path": f"data/{s}-*.parquet"}
                                     for s in ("train", "validation", "test")]
    body = text.split("---\n", 2)[2]
    assert "## Prohibited uses" in body
    prohibited = body.split("## Prohibited uses")[1].split("\n## ")[0]
    assert "workplace" in prohibited and "education" in prohibited and "Surveillance" in prohibited
    assert "Decisions about people" in prohibited
    assert 'datasets.load_dataset("parquet", data_dir=' in body and "pandas.read_parquet(" in body
    assert "| Rater pool (experts with at least one rating) | 5 |" in body
    assert f"| {EMOTIONS[1]} | 0.210 | [0.100, 0.301] | 119 |" in body
    assert f"| {EMOTIONS[3]} | n/a | n/a | n/a |" in body  # no agreement figure given
    assert "median of the experts' ratings" in body and "## Intended uses" in body
    assert "### gender" in body and "| woman |" in body


def test_raw_ratings_carry_pseudonyms_only(release: Path):
    raw = pq.read_table(release / "raw/ratings.parquet")
    assert raw.column_names[:4] == ["sha256", "file_name", "split", "rater"]
    assert raw.column_names[4:] == [emotion_slug(e) for e in EMOTIONS]
    raters = set(raw.column("rater").to_pylist())
    assert raters == {pseudonym(r, KEY) for r in RATER_IDS}
    assert all(re.fullmatch(r"rater_[0-9a-f]{10}", r) for r in raters)
    everything = b"".join(p.read_bytes() for p in release.rglob("*") if p.is_file())
    assert KEY not in everything
    assert pseudonym(101, KEY) == pseudonym(101, KEY) != pseudonym(101, b"another key") != pseudonym(102, KEY)


def test_csv_and_jsonl_match_the_parquet_rows(release: Path):
    rows = pq.read_table(release / "data/validation-00000-of-00001.parquet").to_pylist()
    with (release / "csv/validation.csv").open(newline="", encoding="utf-8") as fh:
        csv_rows = list(csv.DictReader(fh))
    jsonl = [json.loads(line) for line in (release / "jsonl/validation.jsonl").read_text().splitlines()]
    assert len(rows) == len(csv_rows) == len(jsonl) == 12
    assert jsonl == rows
    slug = emotion_slug(EMOTIONS[0])
    for r, c in zip(rows, csv_rows, strict=True):
        assert c["sha256"] == r["sha256"] and c["prompt"] == r["prompt"]
        assert c[f"{slug}__consensus"] == repr(r[f"{slug}__consensus"])
        assert c["disputed"] == ("true" if r["disputed"] else "false")
        assert c["age"] == ("" if r["age"] is None else str(r["age"]))


def test_binary_release(tmp_path: Path):
    images = make_images(6)
    items = [  # (image, emotion, votes)
        (1, 0, [1, 1, 1]), (1, 7, [0]), (2, 0, [1, 1, 0]), (3, 2, [1, 1]), (3, 4, [1, 1, 1]),
        (4, 1, [1, 1, 1]), (5, 1, [0]), (6, 9, [1, 1, 1]),
    ]
    ids, raters, emo, votes = [], [], [], []
    for image, e, vs in items:
        for r, v in enumerate(vs):
            ids.append(image)
            raters.append(RATER_IDS[r])
            emo.append(e)
            votes.append(v)
    raw = BinaryVotes(np.array(ids), np.array(raters), np.array(emo), np.array(votes))
    labels = consolidate_binary(raw, k=3)
    sit = [SplitItem(im.sha256, im.ethnicity, im.gender, im.age) for im in images]
    assignment = assign_splits(sit, SplitConfig(fractions=(("train", 0.5), ("test", 0.5))))
    write_release(tmp_path / "bin", images=images, labels=labels, raw=raw, assignment=assignment,
                  balance=balance_table(sit, assignment), agreement={}, card=CARD, config={"k": 3},
                  pseudonym_key=KEY)
    rows = {r["sha256"]: r for s in ("train", "test")
            for r in pq.read_table(tmp_path / f"bin/data/{s}-00000-of-00001.parquet").to_pylist()}
    assert len(rows) == 6
    first, second = rows[images[0].sha256], rows[images[1].sha256]
    s0, s2, s7 = (emotion_slug(EMOTIONS[i]) for i in (0, 2, 7))
    assert (first[f"{s0}__label"], first[f"{s0}__yes"], first[f"{s0}__no"]) == (1, 3, 0)
    assert (first[f"{s7}__label"], first[f"{s7}__no"]) == (0, 1)
    assert (second[f"{s0}__label"], second[f"{s0}__yes"], second[f"{s0}__no"]) == (0, 2, 1)
    assert rows[images[2].sha256][f"{s2}__label"] is None  # 2 yes of 3 needed: undecided
    assert first[f"{s2}__label"] is None and first[f"{s2}__yes"] == 0  # never asked
    raw_t = pq.read_table(tmp_path / "bin/raw/ratings.parquet")
    assert raw_t.column_names == ["sha256", "file_name", "split", "rater", "emotion", "vote"]
    assert raw_t.num_rows == len(votes)
    meta = json.loads((tmp_path / "bin/release.json").read_text())
    assert meta["mode"] == "binary" and meta["undecided_items"] == 1
    assert "k-of-k rule with k = 3" in (tmp_path / "bin/README.md").read_text()


def test_diff_finds_added_removed_changed_and_new_ratings():
    old_kwargs = build(images=make_images(100), ratings=make_ratings(100))
    old = image_table(old_kwargs["images"], old_kwargs["labels"], old_kwargs["assignment"])
    images = make_images(110)[3:]  # images 1-3 removed, 101-110 added
    ratings = make_ratings(110)
    # image 50 gets one more rating that changes its first emotion
    extra_vals = np.full((1, 40), 7, dtype=np.int16)
    ids = np.concatenate([ratings.image_ids, [50]])
    order = np.argsort(ids, kind="stable")
    order = order[ids[order] > 3]  # the removed images' ratings go too
    ratings = RatingRows(image_ids=ids[order], rater_ids=np.concatenate([ratings.rater_ids, [999]])[order],
                         values=np.concatenate([ratings.values, extra_vals])[order])
    new_kwargs = build(images=images, ratings=ratings, previous=old_kwargs["assignment"])
    new = image_table(new_kwargs["images"], new_kwargs["labels"], new_kwargs["assignment"])
    diff = diff_releases(old, new)
    old_images = {im.image_id: im.sha256 for im in make_images(110)}
    assert diff["removed"] == sorted(old_images[i] for i in (1, 2, 3))
    assert diff["added"] == sorted(old_images[i] for i in range(101, 111))
    assert diff["summary"]["added"] == 10 and diff["summary"]["removed"] == 3
    assert diff["summary"]["split_changed"] == 0  # sticky
    assert diff["ratings_added"] == [{"sha256": old_images[50], "old": 3, "new": 4}]
    assert diff["summary"]["ratings_added"] == 1
    changed = [c for c in diff["labels_changed"] if c["sha256"] == old_images[50]]
    assert changed and all(c["old"] != c["new"] for c in changed)
    assert {c["sha256"] for c in diff["labels_changed"]} == {old_images[50]}
    assert diff_releases(old, old)["summary"]["labels_changed"] == 0
    # also works on plain row dicts, e.g. read back from two releases' Parquet files
    assert diff_releases(old.to_pylist(), new.to_pylist())["summary"] == diff["summary"]


# --- text formats: the column-wise writer against a row-by-row reference ------------------------

def _ref_text(v, type_):  # type: ignore[no-untyped-def]
    if v is None:
        return ""
    if pa.types.is_boolean(type_):
        return "true" if v else "false"
    return repr(v) if pa.types.is_floating(type_) else str(v)


def _ref_csv(table) -> bytes:  # type: ignore[no-untyped-def]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(table.column_names)
    types = [f.type for f in table.schema]
    w.writerows([_ref_text(v, t) for v, t in zip(row.values(), types, strict=True)] for row in table.to_pylist())
    return buf.getvalue().encode()


def _ref_jsonl(table) -> bytes:  # type: ignore[no-untyped-def]
    return "".join(json.dumps(r, ensure_ascii=False, allow_nan=False) + "\n" for r in table.to_pylist()).encode()


def _tricky_table(n: int = 300):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    few = ["a,b", 'say "hi"', "plain", "é\u2028 naïve", "tab\tctl\x01\x1f back\\slash", "", "line\nbreak"]
    return pa.table({
        "many": [f'img {i}, "q"\n\t\x02\\ é' if i % 5 == 0 else f"img{i}" for i in range(n)],
        "few": [None if i % 7 == 0 else few[i % len(few)] for i in range(n)],
        "i16": pa.array([None if i % 11 == 0 else int(v) for i, v in enumerate(rng.integers(-3, 9, n))], pa.int16()),
        "big": pa.array([i * 100_003 - 7 for i in range(n)], pa.int64()),
        "f": pa.array([[0.0, -0.0, 0.1 + 0.2, 1e-05, 1.5e16, round(1 / 3, 4), 3.5, None][i % 8] for i in range(n)],
                      pa.float64()),
        "f_many": pa.array(rng.random(n), pa.float64()),
        "b": pa.array([[True, False, None][i % 3] for i in range(n)], pa.bool_()),
        "b2": pa.array(rng.random(n) < 0.5, pa.bool_()),
        "tail": ["x"] * n,
    })


@pytest.mark.parametrize(("chunk", "vocab"), [(16 << 20, 1 << 14), (300, 1 << 14), (1, 4), (5000, 40)])
def test_csv_and_jsonl_equal_the_row_by_row_reference(monkeypatch: pytest.MonkeyPatch, chunk: int, vocab: int):
    monkeypatch.setattr(exporters.text, "TEXT_CHUNK_BYTES", chunk)  # rows joined in many small chunks
    monkeypatch.setattr(exporters.text, "TOKEN_VOCAB", vocab)  # runs of coded columns split early
    table = _tricky_table()
    assert exporters._csv_bytes(table) == _ref_csv(table)
    assert exporters._jsonl_bytes(table) == _ref_jsonl(table)
    small = table.slice(0, 3)  # every string column takes the many-values path
    assert exporters._csv_bytes(small) == _ref_csv(small)
    assert exporters._jsonl_bytes(small) == _ref_jsonl(small)
    empty = table.slice(0, 0)
    assert exporters._csv_bytes(empty) == _ref_csv(empty) and exporters._jsonl_bytes(empty) == b""


def test_csv_quotes_carriage_returns_and_jsonl_refuses_nan():
    pd = pytest.importorskip("pandas")
    table = pa.table({"prompt": ["a\rb", "c"], "x": pa.array([1.5, float("nan")], pa.float64())})
    data = exporters._csv_bytes(table)
    assert data == b'prompt,x\n"a\rb",1.5\nc,nan\n'
    assert [r["prompt"] for r in csv.DictReader(io.StringIO(data.decode(), newline=""))] == ["a\rb", "c"]
    assert list(pd.read_csv(io.BytesIO(data))["prompt"]) == ["a\rb", "c"]
    with pytest.raises(ValueError, match="not JSON compliant"):
        exporters._jsonl_bytes(table)


def test_raw_ratings_sorted_like_sorted_on_tuples_and_stable():
    images = make_images(8)
    assignment = {im.sha256: "train" for im in images[:6]}  # images 7 and 8 not released
    rng = np.random.default_rng(5)
    n = 200
    ids = rng.integers(1, 10, n)  # 9: no ImageRow at all
    raters = rng.choice([7, 3, 11, 5], n)
    emo = rng.integers(0, 40, n)
    votes = np.arange(n) % 2
    by_id = {im.image_id: im for im in images}
    kept = [t for t in range(n) if ids[t] in by_id and by_id[ids[t]].sha256 in assignment]
    name = {r: pseudonym(r, KEY) for r in (7, 3, 11, 5)}
    expect = sorted(kept, key=lambda t: (by_id[ids[t]].sha256, name[raters[t]], emo[t]))
    table = raw_ratings_table(BinaryVotes(ids, raters, emo, votes), images, assignment, pseudonym_key=KEY)
    got = list(zip(table.column("sha256").to_pylist(), table.column("rater").to_pylist(),
                   table.column("emotion").to_pylist(), table.column("vote").to_pylist(), strict=True))
    assert got == [(by_id[ids[t]].sha256, name[raters[t]], EMOTIONS[emo[t]], votes[t]) for t in expect]
    values = rng.integers(0, 8, (n, 40)).astype(np.int16)
    table = raw_ratings_table(RatingRows(ids, raters, values), images, assignment, pseudonym_key=KEY)
    expect = sorted(kept, key=lambda t: (by_id[ids[t]].sha256, name[raters[t]]))  # ties keep input order
    assert table.column("file_name").to_pylist() == [by_id[ids[t]].file_name for t in expect]
    assert table.column(emotion_slug(EMOTIONS[3])).to_pylist() == [int(values[t, 3]) for t in expect]
