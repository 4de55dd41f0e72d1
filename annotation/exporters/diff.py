"""Release files: comparing two releases (part of annotation.exporters; contracts in its docstring). PURE."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _rows(table: Any) -> list[dict[str, Any]]:
    if hasattr(table, "to_pylist"):
        return list(table.to_pylist())
    return [dict(r) for r in table]


def _n_ratings(row: Mapping[str, Any]) -> int:
    if "n_ratings" in row:
        return int(row["n_ratings"] or 0)
    return sum(int(v or 0) for k, v in row.items() if k.endswith(("__yes", "__no")))


def diff_releases(old: Any, new: Any, *, tolerance: float = 1e-9) -> dict[str, Any]:
    """Compare two releases' per-image tables (pyarrow Tables or sequences of row dicts).

    Images are matched by sha256. Labels are the ``<slug>__consensus`` (intensity) or
    ``<slug>__label`` (binary) columns present in both; a label changed when the values differ by
    more than ``tolerance`` (or one is null). Ratings added = growth of n_ratings (binary: yes +
    no votes) of images in both releases. Returns::

        {"summary": {"images_old", "images_new", "added", "removed", "labels_changed",
                     "images_with_changed_labels", "split_changed", "ratings_added",
                     "images_with_new_ratings"},
         "added": [sha256...], "removed": [sha256...],
         "labels_changed": [{"sha256", "emotion", "old", "new"}...],
         "split_changed": [{"sha256", "old", "new"}...],
         "ratings_added": [{"sha256", "old", "new"}...],
         "columns_added": [...], "columns_removed": [...]}

    All lists are sorted (by sha256, then emotion slug).
    """
    old_rows = {r["sha256"]: r for r in _rows(old)}
    new_rows = {r["sha256"]: r for r in _rows(new)}
    old_cols = set(next(iter(old_rows.values()), {}).keys())
    new_cols = set(next(iter(new_rows.values()), {}).keys())
    label_cols = sorted(c for c in old_cols & new_cols if c.endswith(("__consensus", "__label")))
    added = sorted(new_rows.keys() - old_rows.keys())
    removed = sorted(old_rows.keys() - new_rows.keys())
    changed: list[dict[str, Any]] = []
    split_changed: list[dict[str, Any]] = []
    more: list[dict[str, Any]] = []
    for sha in sorted(old_rows.keys() & new_rows.keys()):
        a, b = old_rows[sha], new_rows[sha]
        for c in label_cols:
            va, vb = a.get(c), b.get(c)
            same = (va is None and vb is None) or (
                va is not None and vb is not None and abs(float(va) - float(vb)) <= tolerance)
            if not same:
                changed.append({"sha256": sha, "emotion": c.rsplit("__", 1)[0], "old": va, "new": vb})
        if a.get("split") != b.get("split"):
            split_changed.append({"sha256": sha, "old": a.get("split"), "new": b.get("split")})
        na, nb = _n_ratings(a), _n_ratings(b)
        if nb > na:
            more.append({"sha256": sha, "old": na, "new": nb})
    return _diff_result(len(old_rows), len(new_rows), added, removed, changed, split_changed, more, old_cols,
                        new_cols)


def _columns_of(table: Any, names: Any = None) -> set[str]:
    return set(table.column_names if names is None else names) if table.num_rows else set()


def _n_ratings_column(table: Any, rows: Any) -> Any:
    """n_ratings of the given rows as int64 (binary: yes + no votes; nulls count 0), as _n_ratings."""
    import numpy as np
    import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]

    names = table.column_names
    if "n_ratings" in names:
        cols = ["n_ratings"]
    else:
        cols = [c for c in names if c.endswith(("__yes", "__no"))]
    total = np.zeros(len(rows), dtype=np.int64)
    for c in cols:
        total += pc.fill_null(pc.take(table.column(c), rows), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    return total


def diff_tables(old: Any, new: Any, *, tolerance: float = 1e-9, old_names: Any = None,
                new_names: Any = None) -> dict[str, Any]:
    """:func:`diff_releases` for two pyarrow Tables, column by column (no Python object per cell:
    a release of a million images is compared in seconds, with the same result to the last entry).
    Only the columns the comparison reads are touched (sha256, split, n_ratings or the vote counts,
    the label columns): read only those (diff_columns) and give every column's name in
    ``old_names`` / ``new_names`` for columns_added / columns_removed."""
    import numpy as np
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
    import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]

    old_cols, new_cols = _columns_of(old, old_names), _columns_of(new, new_names)
    label_cols = sorted(c for c in old_cols & new_cols if c.endswith(("__consensus", "__label")))
    old_sha = old.column("sha256") if "sha256" in old.column_names else pa.array([], pa.string())
    new_sha = new.column("sha256") if "sha256" in new.column_names else pa.array([], pa.string())
    old_sha, new_sha = pc.cast(old_sha, pa.string()), pc.cast(new_sha, pa.string())
    if pc.count_distinct(old_sha).as_py() != len(old_sha) or pc.count_distinct(new_sha).as_py() != len(new_sha):
        out = diff_releases(old, new, tolerance=tolerance)  # duplicate sha256s: the row-by-row rule (last wins)
        out["columns_added"], out["columns_removed"] = sorted(new_cols - old_cols), sorted(old_cols - new_cols)
        return out
    in_old = pc.index_in(new_sha, value_set=old_sha)
    new_order = pc.sort_indices(new_sha).to_numpy()
    matched = np.asarray(pc.is_valid(in_old).to_numpy(zero_copy_only=False), dtype=bool)
    added = pc.take(new_sha, pa.array(new_order[~matched[new_order]], pa.int64())).to_pylist()
    old_in_new = np.asarray(pc.is_in(old_sha, value_set=new_sha).to_numpy(zero_copy_only=False), dtype=bool)
    old_order = pc.sort_indices(old_sha).to_numpy()
    removed = pc.take(old_sha, pa.array(old_order[~old_in_new[old_order]], pa.int64())).to_pylist()
    # the images in both, ascending by sha256: row j is new[i_new[j]] and old[i_old[j]]
    i_new = new_order[matched[new_order]]
    i_old = pc.take(in_old, pa.array(i_new, pa.int64())).to_numpy(zero_copy_only=False).astype(np.int64)
    n = i_new.size
    common_sha = pc.take(new_sha, pa.array(i_new, pa.int64()))
    ix_old, ix_new = pa.array(i_old, pa.int64()), pa.array(i_new, pa.int64())
    hits_row: list[Any] = []
    hits_col: list[Any] = []
    vals_old: list[Any] = []
    vals_new: list[Any] = []
    for k, c in enumerate(label_cols):
        a = pc.take(old.column(c), ix_old)
        b = pc.take(new.column(c), ix_new)
        a_null = np.asarray(pc.is_null(a).to_numpy(zero_copy_only=False), dtype=bool)
        b_null = np.asarray(pc.is_null(b).to_numpy(zero_copy_only=False), dtype=bool)
        fa = pc.fill_null(pc.cast(a, pa.float64()), 0.0).to_numpy(zero_copy_only=False)
        fb = pc.fill_null(pc.cast(b, pa.float64()), 0.0).to_numpy(zero_copy_only=False)
        with np.errstate(invalid="ignore"):
            close = np.abs(fa - fb) <= tolerance
        same = (a_null & b_null) | (~a_null & ~b_null & close)
        rows = np.flatnonzero(~same)
        if rows.size:
            sel = pa.array(rows, pa.int64())
            hits_row.append(rows)
            hits_col.append(np.full(rows.size, k, dtype=np.int64))
            vals_old += pc.take(a, sel).to_pylist()
            vals_new += pc.take(b, sel).to_pylist()
    changed: list[dict[str, Any]] = []
    if hits_row:
        rows_all, cols_all = np.concatenate(hits_row), np.concatenate(hits_col)
        order = np.lexsort([cols_all, rows_all])
        shas = pc.take(common_sha, pa.array(rows_all[order], pa.int64())).to_pylist()
        emotions = [c.rsplit("__", 1)[0] for c in label_cols]
        changed = [{"sha256": sha, "emotion": emotions[int(cols_all[o])], "old": vals_old[o], "new": vals_new[o]}
                   for sha, o in zip(shas, order.tolist(), strict=True)]

    def split_of(table: Any, ix: Any) -> Any:
        if "split" not in table.column_names or not table.num_rows:
            return pa.nulls(n, pa.string())
        return pc.take(table.column("split"), ix)

    sa, sb = split_of(old, ix_old), split_of(new, ix_new)
    differs = pc.fill_null(pc.not_equal(sa, sb), True)
    both_null = pc.and_(pc.is_null(sa), pc.is_null(sb))
    moved = np.flatnonzero(np.asarray(pc.and_(differs, pc.invert(both_null)).to_numpy(zero_copy_only=False),
                                      dtype=bool))
    split_changed = []
    if moved.size:
        sel = pa.array(moved, pa.int64())
        split_changed = [{"sha256": h, "old": o, "new": w} for h, o, w in zip(
            pc.take(common_sha, sel).to_pylist(), pc.take(sa, sel).to_pylist(), pc.take(sb, sel).to_pylist(),
            strict=True)]
    na, nb = _n_ratings_column(old, ix_old), _n_ratings_column(new, ix_new)
    grew = np.flatnonzero(nb > na)
    more = [{"sha256": h, "old": int(na[j]), "new": int(nb[j])}
            for h, j in zip(pc.take(common_sha, pa.array(grew, pa.int64())).to_pylist(), grew.tolist(), strict=True)]
    return _diff_result(len(old_sha), len(new_sha), added, removed, changed, split_changed, more, old_cols,
                        new_cols)


def diff_columns(names: list[str]) -> list[str]:
    """The columns of a release's per-image table that :func:`diff_tables` reads."""
    return [c for c in names if c in ("sha256", "split", "n_ratings")
            or c.endswith(("__consensus", "__label", "__yes", "__no"))]


def _diff_result(n_old: int, n_new: int, added: list[Any], removed: list[Any], changed: list[dict[str, Any]],
                 split_changed: list[dict[str, Any]], more: list[dict[str, Any]], old_cols: set[str],
                 new_cols: set[str]) -> dict[str, Any]:
    """The diff document both comparisons return (diff_releases on rows, diff_tables on columns)."""
    return {
        "summary": {
            "images_old": n_old, "images_new": n_new, "added": len(added), "removed": len(removed),
            "labels_changed": len(changed), "images_with_changed_labels": len({c["sha256"] for c in changed}),
            "split_changed": len(split_changed), "ratings_added": sum(m["new"] - m["old"] for m in more),
            "images_with_new_ratings": len(more),
        },
        "added": added, "removed": removed, "labels_changed": changed, "split_changed": split_changed,
        "ratings_added": more,
        "columns_added": sorted(new_cols - old_cols), "columns_removed": sorted(old_cols - new_cols),
    }
