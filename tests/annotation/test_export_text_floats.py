"""Floats in the release's CSV and JSONL are formatted by array kernels (exporters.text._float_texts,
#21): the text must be Python's repr of every value, the one json.dumps writes, byte for byte."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from annotation.exporters import text


def _expected(values: np.ndarray) -> list[str]:
    return [repr(v) for v in values.tolist()]


@pytest.mark.parametrize("decimals", [0, 1, 2, 4, 6])
def test_rounded_floats_are_written_as_repr_without_fallback(decimals: int):
    rng = np.random.default_rng(decimals)
    values = np.concatenate([
        np.round(rng.random(20_000), decimals),  # 0..1, the soft labels
        np.round(rng.random(20_000) * 7, decimals),  # the consensus and expected intensities
        np.round((rng.random(20_000) - 0.5) * 2e6, decimals),  # negatives, larger magnitudes
        np.round((rng.random(5_000) - 0.5) * 1.999e9, decimals),  # up to just under the 1e9 limit
        np.array([0.0, -0.0, 1.0, -1.0, 0.5, 0.0001, -0.0001, 5e-05 if decimals == 6 else 0.0, 999_999_999.0, -999_999_999.0, 10.0,
                  100.0, 0.1 + 0.2 if decimals == 6 else 0.3]),
    ])
    values = np.round(values, decimals)  # 0.1 + 0.2 has 17 digits: rounded it has few
    got, regular = text._float_texts(values, repr)
    assert regular == (decimals <= 4)  # 6 decimals: some below 1e-4 (repr: "5e-05") go through repr
    assert got.to_pylist() == _expected(values)


def test_floats_the_kernels_cannot_prove_go_through_fmt():
    odd = np.array([0.1 + 0.2, 1 / 3, 1e-05, 1e-07, 9.9e-05, -5e-05, 5e-324, 1.5e16, 1e9, -1e9, 123456789.123456, 2.0**60,
                    float("nan"), float("inf"), float("-inf"), 0.25, -0.0])
    got, regular = text._float_texts(odd, repr)
    assert not regular
    assert got.to_pylist() == _expected(odd)
    with pytest.raises(ValueError, match="not JSON compliant"):
        text._float_texts(odd, text._json_text)
    finite = odd[np.isfinite(odd)]
    assert text._float_texts(finite, text._json_text)[0].to_pylist() == \
        [json.dumps(v) for v in finite.tolist()]


def test_every_4_decimal_value_of_the_release_ranges():
    # every value a release rounds to FLOAT_DECIMALS (4) between -8 and 8: all 160,001 of them
    values = np.round(np.arange(-80_000, 80_001) / 1e4, 4)
    got, regular = text._float_texts(values, repr)
    assert regular and got.to_pylist() == _expected(values)


def test_float_columns_of_a_table_are_written_alike_in_csv_and_jsonl():
    rng = np.random.default_rng(11)
    table = pa.table({"a": pa.array(np.round(rng.random(5000), 4), pa.float64()),
                      "b": pa.array(np.round(rng.random(5000) * 7, 1), pa.float64()),
                      "c": pa.array(rng.random(5000), pa.float64())})  # full precision: the fallback
    rows = table.to_pylist()
    assert text._jsonl_bytes(table) == "".join(json.dumps(r) + "\n" for r in rows).encode()
    assert text._csv_bytes(table) == ("a,b,c\n" + "".join(f"{r['a']!r},{r['b']!r},{r['c']!r}\n" for r in rows)).encode()


@pytest.mark.parametrize(("decimals", "low", "width"), [(0, -300, 1000), (1, -2, 5), (4, -1.5, 5), (6, 0.2, 0.1)])
def test_float_columns_on_a_decimal_grid_are_coded_by_their_steps(decimals: int, low: float, width: float):
    rng = np.random.default_rng(decimals + 20)
    values = np.round(low + rng.random(6000) * width, decimals)
    values[values == 0] = 0.0  # -0.0 has no step of its own: such a column is hashed instead
    grid, codes = text._grid_codes(values)
    assert len(grid) <= text.GRID_MAX
    # many values: the whole grid; few: the steps present (so runs of columns merge)
    assert isinstance(grid, text._Grid if decimals >= 4 else text._GridPart)
    run = text._Run([0], [grid], codes, np.arange(len(grid))[:, None])
    texts = run.vocab([", \"x\": "], repr).to_pylist()
    assert [texts[c] for c in codes.tolist()] == [", \"x\": " + repr(v) for v in values.tolist()]
    assert text._grid_codes(np.array([0.5, -0.0])) is None
    assert text._grid_codes(np.array([0.5, 1 / 3])) is None  # 16 decimals
    assert text._grid_codes(np.array([0.0, 0.5, 1e6])) is None  # 2e6 steps of 0.5
    assert text._grid_codes(np.array([0.00001, 0.5])) is None  # repr: 1e-05


def test_grid_texts_are_kept_within_their_byte_budget(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(text, "_GRID_TEXTS", text.OrderedDict())
    monkeypatch.setattr(text, "GRID_TEXT_BYTES", 200_000)
    monkeypatch.setattr(text, "_grid_bytes", 0)
    rng = np.random.default_rng(4)
    for k in range(12):  # 12 tables, each column on its own grid of ~2,000-20,000 values
        table = pa.table({f"c{j}": pa.array(np.round(rng.random(2000) * (k + j + 1), 3), pa.float64())
                          for j in range(3)})
        rows = table.to_pylist()
        assert text._jsonl_bytes(table) == "".join(json.dumps(r) + "\n" for r in rows).encode()
        kept = sum(t.nbytes for t in text._GRID_TEXTS.values())
        assert kept == text._grid_bytes and (kept <= 200_000 or len(text._GRID_TEXTS) == 1)


def test_many_valued_float_columns_share_their_grid_in_csv_and_jsonl():
    rng = np.random.default_rng(12)
    n = 6000  # more distinct values than a run may hold: each column is written from its grid
    table = pa.table({"name": [f"img{i}" for i in range(n)],
                      "p": pa.array(np.round(rng.random(n), 4), pa.float64()),
                      "q": pa.array(np.round(rng.random(n), 4), pa.float64()),  # the same grid as p
                      "flag": pa.array(rng.random(n) < 0.5, pa.bool_()),
                      "e": pa.array(np.round(1 + 6 * rng.random(n), 4), pa.float64())})
    segments = text._segments(table)
    grids = [s.values[0] for s in segments if isinstance(s, text._Run) and isinstance(s.values[0], text._Grid)]
    assert len(grids) == 3 and grids[0] == grids[1] != grids[2]
    rows = table.to_pylist()
    assert text._jsonl_bytes(table) == "".join(json.dumps(r) + "\n" for r in rows).encode()
    expect = "name,p,q,flag,e\n" + "".join(
        f"{r['name']},{r['p']!r},{r['q']!r},{str(r['flag']).lower()},{r['e']!r}\n" for r in rows)
    assert text._csv_bytes(table) == expect.encode()
