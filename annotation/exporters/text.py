"""Release files: CSV and JSON Lines, built column-wise (part of annotation.exporters; contracts in its docstring). PURE."""

from __future__ import annotations

import csv
import io
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]
import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]

from annotation.csvsafe import FORMULA_START_RE, PLAIN_NUMBER_RE, csv_text_safe

from .helpers import whole_array
from .records import PARQUET_OPTIONS

#
# CSV and JSONL are built column-wise with numpy and Arrow kernels, never as Python objects per row
# or cell. A column with few distinct values (integers, booleans, categories) becomes codes into
# its distinct values, each formatted once by Python; runs of such columns are merged into one code
# per row whose text is the whole run (at most TOKEN_VOCAB distinct runs each). A float column on a
# decimal grid (the release's rounded floats, #21) is coded by its values' integer steps, and the
# grid's texts (Python's repr, made by array kernels: _float_texts) are made once per process and
# shared by every column and table on that grid. Columns with many distinct strings (sha256, file
# names) are formatted by Arrow kernels. Rows are assembled in chunks of at most TEXT_CHUNK_BYTES,
# each one Arrow take from all those texts, whose bytes go straight to the file.

TEXT_CHUNK_BYTES = 16 << 20
TOKEN_VOCAB = 1 << 14
_CSV_QUOTE = r'[,"\r\n]'  # fields holding a comma, quote, CR or LF are quoted (RFC 4180)
_JSON_ESCAPE = r'["\\\x00-\x1f]'  # what json.dumps(ensure_ascii=False) escapes in a string
_CSV_QUOTE_RE = re.compile(_CSV_QUOTE)


def _csv_text(v: Any) -> str:
    """One CSV field: "" for null, true/false, Python's shortest float repr, str otherwise, text
    that a spreadsheet would run as a formula prefixed with ' (annotation.csvsafe); quoted (with ""
    for ") when it holds a comma, quote, CR or LF."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    s = csv_text_safe(v) if isinstance(v, str) else str(v)
    return '"' + s.replace('"', '""') + '"' if _CSV_QUOTE_RE.search(s) else s


def _json_text(v: Any) -> str:
    """One JSON value as json.dumps(v, ensure_ascii=False, allow_nan=False) writes it."""
    return json.dumps(v, ensure_ascii=False, allow_nan=False)


@dataclass
class _Run:
    """Adjacent low-cardinality columns: codes[r] = the row's combination, comp[code] = its
    per-column value indices, values[j] = the distinct values of column j."""

    columns: list[int]
    values: list[Any]  # each a list, or float64 numpy values (see _codes)
    codes: Any  # (n,) int64
    comp: Any  # (size, len(columns)) int64
    # column j's float texts when fmt writes them all as repr (shared by the CSV and the JSONL)
    texts: dict[int, Any] = field(default_factory=dict)

    def add(self, column: int, values: Any, codes: Any) -> bool:
        """Merge the next column in unless the product of distinct counts exceeds TOKEN_VOCAB."""
        size, k = len(self.comp), len(values)
        if size * k > TOKEN_VOCAB:
            return False
        combo = self.codes * k + codes
        seen = np.zeros(size * k, dtype=bool)
        seen[combo] = True
        present = np.flatnonzero(seen)
        remap = np.zeros(size * k, dtype=np.int64)
        remap[present] = np.arange(present.size)
        self.codes = remap[combo]
        self.comp = np.column_stack([self.comp[present // k], present % k])
        self.columns.append(column)
        self.values.append(values)
        return True

    def vocab(self, prefixes: Sequence[str], fmt: Any) -> Any:
        """The text of each combination (prefixes of its columns included), a pyarrow string array."""
        texts = [self._texts(j, fmt, prefixes[c]) for j, c in enumerate(self.columns)]
        if len(texts) == 1:
            return texts[0]
        parts = [pc.take(t, pa.array(self.comp[:, j], pa.int64())) for j, t in enumerate(texts)]
        return pc.binary_join_element_wise(*parts, "")

    def _texts(self, j: int, fmt: Any, prefix: str) -> Any:
        """prefix + fmt(v) of each distinct value of column j."""
        values = self.values[j]
        if isinstance(values, _Grid):
            return _grid_texts(values, fmt, prefix)
        if isinstance(values, _GridPart):  # the few values' plain texts, then the prefix (#21: not
            # a prefixed copy of the whole grid per column, which also pushed the shared texts out of the cache)
            text = pc.take(_grid_texts(values.grid, fmt, ""), pa.array(values.steps, pa.int64()))
            return pc.binary_join_element_wise(prefix, text, "") if prefix else text
        if not isinstance(values, np.ndarray):
            return pa.array([prefix + fmt(v) for v in values], pa.string())
        text = self.texts.get(j)
        if text is None:
            text, regular = _float_texts(values, fmt)
            if regular:
                self.texts[j] = text
        return pc.binary_join_element_wise(prefix, text, "") if prefix else text


_DECIMALS = 6  # floats with at most this many decimals are formatted by array kernels
_DECIMAL_LIMIT = 1e9  # ... below this magnitude, where a 6-decimal step is many ulps wide


def _float_texts(values: Any, fmt: Any) -> tuple[Any, bool]:
    """fmt(v) of each float64 value (a pyarrow string array), and whether every value was regular
    (formatted without fmt, so the same texts serve any fmt), where fmt writes finite floats as
    Python's repr. A finite value below 1e9 in magnitude (and 0 or from 1e-4 up: repr writes
    smaller ones with an exponent) with at most 6 decimals (every float the
    release rounds, FLOAT_DECIMALS) is formatted by array kernels: it is the double nearest a
    decimal m / 10**6 (the division is exact to the nearest double and checked), no other decimal
    with as few digits lies within half a unit in the last place of it (neighbours of that decimal
    are 1e-6 apart, many ulps below 1e9), so repr gives that decimal's shortest fixed-point text
    (sign, integer part, ".", the decimals without trailing zeros, at least one). Other values
    (NaN, infinities, more decimals, huge) go through fmt one by one."""
    a = np.asarray(values, dtype=np.float64)
    scale = 10.0 ** _DECIMALS
    with np.errstate(invalid="ignore", over="ignore"):
        m = np.rint(a * scale)
        ok = (np.abs(a) < _DECIMAL_LIMIT) & ((np.abs(a) >= 1e-4) | (a == 0)) & (m / scale == a)
    digits = np.abs(np.where(ok, m, 0.0)).astype(np.int64)
    whole, frac = np.divmod(digits, 10**_DECIMALS)
    # (numpy arrays go to Arrow with their type named: inferring it can cost more than the kernels)
    frac_text = pc.utf8_rtrim(pc.utf8_lpad(pc.cast(pa.array(frac, pa.int64()), pa.string()), _DECIMALS, "0"), "0")
    frac_text = pc.if_else(pa.array(frac == 0, pa.bool_()), pa.scalar("0"), frac_text)
    sign = pc.if_else(pa.array(np.signbit(a), pa.bool_()), pa.scalar("-"), pa.scalar(""))
    text = pc.binary_join_element_wise(sign, pc.cast(pa.array(whole, pa.int64()), pa.string()), ".", frac_text, "")
    regular = bool(ok.all())
    if not regular:
        odd = [fmt(v) for v in a[~ok].tolist()]
        text = pc.replace_with_mask(text, pa.array(~ok, pa.bool_()), pa.array(odd, pa.string()))
    return text, regular


def _csv_cells(col: Any) -> Any:
    """A many-valued string column as CSV fields (same rules as _csv_text)."""
    formula = pc.and_(pc.match_substring_regex(col, FORMULA_START_RE),
                      pc.invert(pc.match_substring_regex(col, PLAIN_NUMBER_RE)))
    if pc.any(formula).as_py():
        col = pc.if_else(formula, pc.binary_join_element_wise("'", col, ""), col)
    need = pc.match_substring_regex(col, _CSV_QUOTE)
    cells = pc.if_else(need, pc.binary_join_element_wise('"', pc.replace_substring(col, '"', '""'), '"', ""), col)
    return pc.fill_null(cells, "") if cells.null_count else cells


def _json_cells(col: Any) -> Any:
    """A many-valued string column as JSON strings (same text as _json_text)."""
    cells = pc.binary_join_element_wise('"', col, '"', "")
    need = pc.fill_null(pc.match_substring_regex(col, _JSON_ESCAPE), False)
    if pc.any(need).as_py():
        escaped = [_json_text(v) for v in col.filter(need).to_pylist()]
        cells = pc.replace_with_mask(cells, need, pa.array(escaped, pa.string()))
    return pc.fill_null(cells, "null") if cells.null_count else cells


@dataclass(frozen=True)
class _Grid:
    """The values lo / 10**decimals, (lo + 1) / 10**decimals, ... (size of them): a float column's
    codes are its values' steps from lo (see _grid_codes)."""

    decimals: int
    lo: int
    size: int

    def __len__(self) -> int:
        return self.size


GRID_MAX = 1 << 17  # the most values a _Grid spans
_GRID_BLOCK = 1 << 10  # a grid spans whole blocks of this many steps


def _grid_codes(a: Any) -> tuple[Any, Any] | None:
    """(_Grid or _GridPart (few values), code per row) of float values that are all regular for
    _float_texts (no -0.0) with the fewest decimals (0..6) that hold them all, spanning at most
    GRID_MAX steps; else None. No
    hashing: a value's code is its integer number of steps; the grid's texts are made once per
    process and kept (_grid_texts), so the release's rounded floats cost no formatting per table."""
    with np.errstate(invalid="ignore", over="ignore"):
        if not (np.abs(a) < _DECIMAL_LIMIT).all() or (np.signbit(a) & (a == 0)).any():
            return None
        head = a[:64]
        for decimals in range(_DECIMALS + 1):
            scale = 10.0 ** decimals
            if not (np.rint(head * scale) / scale == head).all():
                continue
            m = np.rint(a * scale)
            if (m / scale == a).all():
                break
        else:
            return None
    if decimals > 4 and ((a != 0) & (np.abs(a) < 1e-4)).any():
        return None  # repr writes those with an exponent
    # the span widened to whole blocks, so the tables of one release mostly share their grids
    lo, hi = int(m.min()) // _GRID_BLOCK * _GRID_BLOCK, (int(m.max()) // _GRID_BLOCK + 1) * _GRID_BLOCK - 1
    if hi - lo >= GRID_MAX:
        return None
    codes = m.astype(np.int64)
    codes -= lo
    grid = _Grid(decimals, lo, hi - lo + 1)
    present = np.flatnonzero(np.bincount(codes, minlength=grid.size))
    if present.size * 4 > TOKEN_VOCAB:
        return grid, codes
    # few values (a consensus of medians): coded by the values present, so runs merge as before
    remap = np.zeros(grid.size, dtype=np.int64)
    remap[present] = np.arange(present.size)
    return _GridPart(grid, present), remap[codes]


@dataclass(frozen=True, eq=False)
class _GridPart:
    """The values of a grid at the given steps (ascending)."""

    grid: _Grid
    steps: Any  # (k,) int64

    def __len__(self) -> int:
        return int(self.steps.size)


_GRID_TEXTS: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
GRID_TEXT_BYTES = 64 << 20  # the most text kept (least recently used dropped first)
_GRID_LOCK = threading.Lock()
_grid_bytes = 0


def _grid_texts(grid: _Grid, fmt: Any, prefix: str, suffix: str = "") -> Any:
    """prefix + fmt(v) + suffix of each value of the grid (a pyarrow string array), kept for the
    next table (as are the values' plain texts, shared by every column on that grid)."""
    key = (grid, fmt, prefix, suffix)
    text = _kept(key)
    if text is None:
        text = _kept((grid, fmt, "", ""))
        if text is None:
            values = np.arange(grid.lo, grid.lo + grid.size, dtype=np.int64) / 10.0 ** grid.decimals
            text = _keep((grid, fmt, "", ""), _float_texts(values, fmt)[0])
        if prefix or suffix:
            text = _keep(key, pc.binary_join_element_wise(prefix, text, suffix, ""))
    return text


def _kept(key: tuple[Any, ...]) -> Any:
    with _GRID_LOCK:
        text = _GRID_TEXTS.get(key)
        if text is not None:
            _GRID_TEXTS.move_to_end(key)
        return text


def _keep(key: tuple[Any, ...], text: Any) -> Any:
    global _grid_bytes
    with _GRID_LOCK:
        if key not in _GRID_TEXTS:
            _GRID_TEXTS[key] = text
            _grid_bytes += text.nbytes
        while _grid_bytes > GRID_TEXT_BYTES and len(_GRID_TEXTS) > 1:
            _grid_bytes -= _GRID_TEXTS.popitem(last=False)[1].nbytes
    return text


def _codes(col: Any) -> tuple[Any, Any] | None:
    """(distinct values, code per row) of a column with few distinct values, else None; the values
    are a list, a _Grid (floats with few decimals), or a float64 numpy array for another float
    column without nulls."""
    n = len(col)
    type_ = col.type
    if not col.null_count and pa.types.is_boolean(type_):
        return [False, True], col.to_numpy(zero_copy_only=False).astype(np.int64)
    if not col.null_count and pa.types.is_integer(type_) and n:
        a = col.to_numpy().astype(np.int64)
        lo, hi = int(a.min()), int(a.max())
        if hi - lo <= TOKEN_VOCAB:
            present = np.flatnonzero(np.bincount(a - lo))
            remap = np.zeros(hi - lo + 1, dtype=np.int64)
            remap[present] = np.arange(present.size)
            return (present + lo).tolist(), remap[a - lo]
    if pa.types.is_string(type_):
        head = min(n, 1024)
        if len(pc.unique(col.slice(0, head))) * 4 > head:  # e.g. sha256, file names
            return None
    if pa.types.is_float64(type_) and not col.null_count and n:
        grid = _grid_codes(col.to_numpy())
        if grid is not None:
            return grid
    enc = pc.dictionary_encode(col)  # -0.0 and 0.0 stay distinct; NaNs are one value
    if pa.types.is_float64(type_) and not col.null_count:  # formatted by array kernels (_float_texts)
        return enc.dictionary.to_numpy(), enc.indices.to_numpy().astype(np.int64)
    values = enc.dictionary.to_pylist()
    if pa.types.is_string(type_) and len(values) * 4 > n:
        return None
    idx = enc.indices
    if idx.null_count:
        idx = pc.fill_null(idx, len(values))
        values.append(None)
    return values, idx.to_numpy().astype(np.int64)


def _segments(table: Any) -> list[Any]:
    """The table's columns in order as _Runs (few distinct values) and (index, column) of plain
    string columns; shared by the CSV and the JSONL of one table."""
    out: list[Any] = []
    for c in range(table.num_columns):
        col = whole_array(table.column(c))  # a slice of one chunk stays a view (#21)
        type_ = col.type
        if not (pa.types.is_string(type_) or pa.types.is_integer(type_) or pa.types.is_floating(type_)
                or pa.types.is_boolean(type_)):
            raise TypeError(f"cannot write a {type_} column as text")
        coded = _codes(col)
        if coded is None:
            out.append((c, col))
            continue
        values, codes = coded
        if not (out and isinstance(out[-1], _Run) and out[-1].add(c, values, codes)):
            out.append(_Run([c], [values], codes, np.arange(len(values), dtype=np.int64)[:, None]))
    return out


def _text_chunks(n: int, segments: list[Any], prefixes: list[str], suffix: str, fmt: Any,
                 strings: Any) -> Iterable[Any]:
    """Rows as prefixes[0] + cell[0] + prefixes[1] + cell[1] ... + suffix, in chunks (Arrow buffers)
    of at most TEXT_CHUNK_BYTES (or one row), each assembled on its own so memory is reused.

    Every piece of text a row can hold (each run's vocabulary, each many-valued column's cells,
    the constants) is one string array; a chunk is one ``take`` from it with the row-major
    matrix of piece indices (row r, part p), whose data buffer is the rows' text, in order.
    A many-valued float column takes its value from its grid's plain texts, one piece for every
    column on that grid (a small piece that stays in the CPU's cache, where one prefixed copy per
    column would not). Fewer parts per row, fewer elements to take: a constant is appended to the
    run vocabulary before it, and to a grid's texts when the pair recurs (CSV's ",")."""
    if n == 0:
        return
    # the row as items: ("const", text) | ("vocab", texts, codes) | ("grid", grid, codes) | ("rows", cells)
    items: list[list[Any]] = []

    def const(text: str) -> None:
        if text:
            items.append(["const", text])

    for seg in segments:
        if isinstance(seg, _Run) and len(seg.columns) == 1 and isinstance(seg.values[0], _Grid):
            const(prefixes[seg.columns[0]])
            items.append(["grid", (seg.values[0], ""), seg.codes])
        elif isinstance(seg, _Run):
            items.append(["vocab", seg.vocab(prefixes, fmt), seg.codes])
        else:
            c, col = seg
            const(prefixes[c])
            items.append(["rows", strings(col)])
    const(suffix)
    pairs: dict[tuple[Any, str], int] = {}
    for a, b in zip(items, items[1:], strict=False):
        if a[0] == "grid" and b[0] == "const":
            pairs[(a[1][0], b[1])] = pairs.get((a[1][0], b[1]), 0) + 1
    merged: list[list[Any]] = []
    for item in items:
        last = merged[-1] if merged else None
        if item[0] == "const" and last is not None:
            if last[0] == "const":
                last[1] += item[1]
                continue
            if last[0] == "vocab":
                last[1] = pc.binary_join_element_wise(last[1], item[1], "")
                continue
            if last[0] == "grid" and not last[1][1] and pairs[(last[1][0], item[1])] > 1:
                last[1] = (last[1][0], item[1])
                continue
        merged.append(item)

    pieces: list[Any] = []  # string arrays, concatenated below
    parts: list[tuple[int, Any]] = []  # (first index in the concatenation, codes | _ROWS | None)
    row_bytes = np.zeros(n, dtype=np.int64)
    size = 0
    grids: dict[tuple[Any, str], tuple[int, Any]] = {}  # (grid, suffix) -> (first index, byte lengths)

    def add(texts: Any, codes: Any) -> int:
        nonlocal size
        parts.append((size, codes))
        pieces.append(texts)
        size += len(texts)
        return parts[-1][0]

    for item in merged:
        if item[0] == "const":
            add(pa.array([item[1]], pa.string()), None)
            row_bytes += len(item[1].encode())
        elif item[0] == "vocab":
            add(item[1], item[2])
            row_bytes += pc.binary_length(item[1]).to_numpy().astype(np.int64)[item[2]]
        elif item[0] == "grid":
            key, codes = item[1], item[2]
            if key not in grids:
                texts = _grid_texts(key[0], fmt, "", key[1])
                grids[key] = (add(texts, codes), pc.binary_length(texts).to_numpy().astype(np.int64))
            else:
                parts.append((grids[key][0], codes))
            row_bytes += grids[key][1][codes]
        else:
            add(item[1], _ROWS)
            row_bytes += pc.binary_length(item[1]).to_numpy()
    large = sum(int(pc.sum(pc.binary_length(t)).as_py() or 0) for t in pieces) >= 2**31 - 1
    string = pa.large_string() if large else pa.string()
    values = pa.concat_arrays([t.cast(string) for t in pieces])
    index_type, index_dtype = (pa.int32(), np.int32) if size < 2**31 else (pa.int64(), np.int64)
    ends = np.cumsum(row_bytes)
    start = 0
    while start < n:
        base = int(ends[start - 1]) if start else 0
        stop = max(start + 1, int(np.searchsorted(ends, base + TEXT_CHUNK_BYTES, side="right")))
        index = np.empty((stop - start, len(parts)), dtype=index_dtype)
        for p, (first, codes) in enumerate(parts):
            if codes is None:
                index[:, p] = first
            elif codes is _ROWS:
                index[:, p] = np.arange(first + start, first + stop)
            else:
                np.add(codes[start:stop], first, out=index[:, p], casting="unsafe")
        text = values.take(pa.Array.from_buffers(index_type, index.size, [None, pa.py_buffer(index)]))
        offsets = np.frombuffer(text.buffers()[1], dtype=np.int64 if large else np.int32)
        lo, hi = int(offsets[text.offset]), int(offsets[text.offset + len(text)])
        yield text.buffers()[2].slice(lo, hi - lo)
        start = stop


_ROWS = object()  # a part of _text_chunks whose piece holds one text per row, in row order


def _csv_chunks(table: Any, segments: list[Any] | None = None) -> Iterable[Any]:
    """CSV: a header row, then one line per row ("\\n" line ends), fields as _csv_text."""
    head = io.StringIO()
    csv.writer(head, lineterminator="\n").writerow(table.column_names)
    yield head.getvalue().encode("utf-8")
    segs = _segments(table) if segments is None else segments
    yield from _text_chunks(table.num_rows, segs, [""] + [","] * (table.num_columns - 1), "\n", _csv_text,
                            _csv_cells)


def _jsonl_chunks(table: Any, segments: list[Any] | None = None) -> Iterable[Any]:
    """JSON Lines: one object per row, keys in column order, exactly as
    json.dumps(row, ensure_ascii=False, allow_nan=False) writes it (", " and ": " separators)."""
    keys = [json.dumps(name, ensure_ascii=False) for name in table.column_names]
    prefixes = [("{" if i == 0 else ", ") + k + ": " for i, k in enumerate(keys)]
    segs = _segments(table) if segments is None else segments
    yield from _text_chunks(table.num_rows, segs, prefixes, "}\n", _json_text, _json_cells)


def _csv_bytes(table: Any) -> bytes:
    return b"".join(bytes(b) for b in _csv_chunks(table))


def _jsonl_bytes(table: Any) -> bytes:
    return b"".join(bytes(b) for b in _jsonl_chunks(table))


def _parquet_bytes(table: Any) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **PARQUET_OPTIONS)
    return bytes(sink.getvalue().to_pybytes())
