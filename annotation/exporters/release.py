"""Release files: writing a release folder and its manifest (part of annotation.exporters; contracts in its docstring). PURE."""

from __future__ import annotations

import hashlib
import json
import os
import queue
import shutil
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]

from annotation.consolidation import BinaryConsolidated, Consolidated
from annotation.taxonomy import EMOTIONS, TAXONOMY_VERSION, emotion_slug

from .card import render_card
from .helpers import _split_names, image_columns
from .records import (
    FLOAT_DECIMALS,
    RELEASE_FORMAT,
    CardInfo,
    ImageRow,
    Labels,
    Manifest,
    ManifestEntry,
    Raw,
    _dumps,
)
from .tables import image_table, raw_ratings_table
from .text import _csv_chunks, _jsonl_chunks, _parquet_bytes, _segments


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _FileSink:
    """Writes a release's files under ``root`` on one background thread, in submission order,
    hashing them on the way: the caller formats the next chunk while the last one is written.
    Parquet files are encoded on that thread too (pyarrow releases the GIL). At most a few chunks
    wait in the queue, which bounds the memory held."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.entries: dict[str, ManifestEntry] = {}
        self._queue: queue.Queue[tuple[str, Any] | None] = queue.Queue(maxsize=4)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="release-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        fh: Any = None
        digest: Any = None
        rel, size = "", 0
        while (item := self._queue.get()) is not None:
            if self._error is not None:
                continue  # drain until the sentinel
            kind, arg = item
            try:
                if kind == "open":
                    rel, size, digest = arg, 0, hashlib.sha256()
                    path = self.root / rel
                    path.parent.mkdir(parents=True, exist_ok=True)
                    fh = path.open("wb")
                elif kind == "data":
                    chunks = [_parquet_bytes(arg)] if isinstance(arg, pa.Table) else [arg]
                    for data in chunks:
                        fh.write(data)
                        digest.update(data)
                        size += len(memoryview(data))
                else:
                    fh.close()
                    fh = None
                    self.entries[rel] = ManifestEntry(path=rel, sha256=digest.hexdigest(), size=size)
            except BaseException as exc:  # handed to the caller at its next put / finish
                self._error = exc
        if fh is not None:
            fh.close()

    def _put(self, item: tuple[str, Any] | None) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(item)

    def file(self, rel: str, chunks: Iterable[Any]) -> None:
        """A file made of the chunks (bytes or pyarrow Buffers), in order."""
        self._put(("open", rel))
        for chunk in chunks:
            self._put(("data", chunk))
        self._put(("close", None))

    def parquet(self, rel: str, table: Any) -> None:
        self.file(rel, [table])

    def finish(self) -> dict[str, ManifestEntry]:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self.entries

    def abort(self) -> None:
        if self._thread.is_alive():
            self._error = self._error or RuntimeError("aborted")
            self._queue.put(None)
            self._thread.join()


def write_release(
    out_dir: Path,
    *,
    images: Sequence[ImageRow],
    labels: Labels,
    raw: Raw,
    assignment: Mapping[str, str],
    balance: Mapping[str, Any],
    agreement: Mapping[str, Any],
    card: CardInfo,
    config: Mapping[str, Any],
    pseudonym_key: bytes,
    emotions: Sequence[str] = EMOTIONS,
    scale_max: int | None = None,
    allocation: Sequence[str] | None = None,
) -> Manifest:
    """Write a complete release folder (layout in the module docstring) and return its manifest.

    out_dir must not exist: files are written to a temporary sibling folder that is renamed into
    place at the end, so a failure leaves nothing half-written. ``config`` is the frozen release
    configuration (consolidation rule, split config, ...) and goes into release.json unchanged
    except for float rounding; it must not contain secrets (pseudonym_key is never written).
    ``scale_max`` defaults to labels.scale_max (intensity) or 1 (binary). ``allocation``: why each
    raw rating was collected, aligned with ``raw`` (raw/ratings.parquet's allocation_reason).
    Precondition: every labelled image has an ImageRow and a split (ValueError otherwise).
    """
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise FileExistsError(f"{out_dir} exists; a release folder is written once")
    binary = isinstance(labels, BinaryConsolidated)
    if scale_max is None:
        scale_max = 1 if isinstance(labels, BinaryConsolidated) else labels.scale_max
    table = image_table(images, labels, assignment, emotions=emotions)
    released = set(table.column("sha256").to_pylist())
    released_assignment = {s: sp for s, sp in assignment.items() if s in released}
    raw_table = raw_ratings_table(raw, images, released_assignment, pseudonym_key=pseudonym_key,
                                  emotions=emotions, allocation=allocation)
    splits = _split_names(released_assignment)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    sink = _FileSink(tmp)
    try:
        split_counts: dict[str, int] = {}
        split_col = table.column("split")
        if raw_table.num_rows:
            sink.parquet("raw/ratings.parquet", raw_table)
        for s in splits:
            part = table.filter(pc.equal(split_col, s))
            split_counts[s] = part.num_rows
            sink.parquet(f"data/{s}-00000-of-00001.parquet", part)
            segments = _segments(part)
            sink.file(f"csv/{s}.csv", _csv_chunks(part, segments))
            sink.file(f"jsonl/{s}.jsonl", _jsonl_chunks(part, segments))
        n_raters = pc.count_distinct(raw_table.column("rater")).as_py()
        sink.file("README.md", [render_card(
            card=card, labels=labels, split_counts=split_counts, n_raw=raw_table.num_rows, n_raters=n_raters,
            agreement=agreement, balance=balance, emotions=emotions, scale_max=scale_max,
            split_config=config.get("split"), test_split_note=str(config.get("test_split_note") or ""),
        ).encode("utf-8")])
        meta = {
            "format": RELEASE_FORMAT,
            "card": asdict(card),
            "mode": "binary" if binary else "intensity",
            "scale_max": scale_max,
            "taxonomy_version": TAXONOMY_VERSION,
            "emotions": [{"name": e, "slug": emotion_slug(e)} for e in emotions],
            "columns": image_columns(emotions, binary=binary,
                                     soft=isinstance(labels, Consolidated) and labels.p_present is not None),
            "config": config,
            "consolidation": (labels.rule.as_dict() if isinstance(labels, Consolidated) else {"k": labels.k}),
            "counts": {"images": split_counts, "raw_ratings": raw_table.num_rows, "raters": n_raters},
            "left_out": labels.left_out,
            "agreement": agreement,
            "balance": balance,
            "float_decimals": FLOAT_DECIMALS,
        }
        if isinstance(labels, BinaryConsolidated):
            meta["undecided_items"] = labels.undecided_items
        sink.file("release.json", [_dumps(meta).encode("utf-8")])
        entries = sink.finish()
        manifest = Manifest(files=tuple(entries[p] for p in sorted(entries)))
        (tmp / "manifest.json").write_bytes(manifest.to_json().encode("utf-8"))
        os.chmod(tmp, 0o755)
        os.rename(tmp, out_dir)
    except BaseException:
        sink.abort()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def verify_manifest(release_dir: Path) -> list[str]:
    """Problems found checking a release folder against its manifest.json (empty = intact)."""
    release_dir = Path(release_dir)
    listed = json.loads((release_dir / "manifest.json").read_text(encoding="utf-8"))["files"]
    problems = []
    names = set()
    for entry in listed:
        names.add(entry["path"])
        path = release_dir / entry["path"]
        if not path.is_file():
            problems.append(f"{entry['path']}: missing")
            continue
        data = path.read_bytes()
        if len(data) != entry["size"] or _sha256(data) != entry["sha256"]:
            problems.append(f"{entry['path']}: size or sha256 differs from the manifest")
    on_disk = {p.relative_to(release_dir).as_posix() for p in release_dir.rglob("*") if p.is_file()}
    problems += [f"{p}: not in the manifest" for p in sorted(on_disk - names - {"manifest.json"})]
    return problems
