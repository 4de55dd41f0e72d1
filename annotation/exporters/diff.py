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
    return {
        "summary": {
            "images_old": len(old_rows), "images_new": len(new_rows), "added": len(added), "removed": len(removed),
            "labels_changed": len(changed), "images_with_changed_labels": len({c["sha256"] for c in changed}),
            "split_changed": len(split_changed), "ratings_added": sum(m["new"] - m["old"] for m in more),
            "images_with_new_ratings": len(more),
        },
        "added": added, "removed": removed, "labels_changed": changed, "split_changed": split_changed,
        "ratings_added": more,
        "columns_added": sorted(new_cols - old_cols), "columns_removed": sorted(old_cols - new_cols),
    }
