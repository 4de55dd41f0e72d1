"""Release files: CSV and JSON Lines, built column-wise (part of annotation.exporters; contracts in its docstring). PURE."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]
import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]

from annotation.csvsafe import FORMULA_START_RE, PLAIN_NUMBER_RE, csv_text_safe

from .records import PARQUET_OPTIONS

#
# CSV and JSONL are built column-wise with numpy and Arrow kernels, never as Python objects per row
# or cell. A column with few distinct values (numbers, booleans, categories) becomes codes into its
# distinct values, each formatted once by Python; runs of such columns are merged into one code
# per row whose text is the whole run (at most TOKEN_VOCAB distinct runs each). Columns with many
# distinct values (sha256, file names) are formatted by Arrow kernels. Rows are joined in chunks of
# at most TEXT_CHUNK_BYTES whose bytes go straight to the file.

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
        if len(self.columns) == 1:
            return _value_texts(self.values[0], fmt, prefixes[self.columns[0]])
        parts = [pc.take(_value_texts(vals, fmt, prefixes[c]), np.ascontiguousarray(self.comp[:, j]))
                 for j, (c, vals) in enumerate(zip(self.columns, self.values, strict=True))]
        return pc.binary_join_element_wise(*parts, "")


_DECIMALS = 6  # floats with at most this many decimals are formatted by array kernels
_DECIMAL_LIMIT = 1e9  # ... below this magnitude, where a 6-decimal step is many ulps wide


def _float_texts(values: Any, fmt: Any) -> Any:
    """fmt(v) of each float64 value (a pyarrow string array), where fmt writes finite floats as
    Python's repr. A finite value below 1e9 in magnitude with at most 6 decimals (every float the
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
        ok = (np.abs(a) < _DECIMAL_LIMIT) & (m / scale == a)
    digits = np.abs(np.where(ok, m, 0.0)).astype(np.int64)
    whole, frac = np.divmod(digits, 10**_DECIMALS)
    frac_text = pc.utf8_rtrim(pc.utf8_lpad(pc.cast(pa.array(frac), pa.string()), _DECIMALS, "0"), "0")
    frac_text = pc.if_else(pa.array(frac == 0), pa.scalar("0"), frac_text)
    sign = pc.if_else(pa.array(np.signbit(a)), pa.scalar("-"), pa.scalar(""))
    text = pc.binary_join_element_wise(sign, pc.cast(pa.array(whole), pa.string()), ".", frac_text, "")
    if not ok.all():
        odd = [fmt(v) for v in a[~ok].tolist()]
        text = pc.replace_with_mask(text, pa.array(~ok), pa.array(odd, pa.string()))
    return text


def _value_texts(values: Any, fmt: Any, prefix: str) -> Any:
    """prefix + fmt(v) of each distinct value of a coded column (a list, or float64 numpy values)."""
    if isinstance(values, np.ndarray):
        text = _float_texts(values, fmt)
        return pc.binary_join_element_wise(prefix, text, "") if prefix else text
    return pa.array([prefix + fmt(v) for v in values], pa.string())


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


def _codes(col: Any) -> tuple[Any, Any] | None:
    """(distinct values, code per row) of a column with few distinct values, else None; the values
    are a list, or a float64 numpy array for a float column without nulls."""
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
        col = table.column(c).combine_chunks()
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
    of at most TEXT_CHUNK_BYTES (or one row), each assembled on its own so memory is reused."""
    if n == 0:
        return
    parts: list[tuple[Any, Any]] = []  # (pyarrow vocabulary, codes) | (cells, None) | (scalar, None)
    row_bytes = np.full(n, len(suffix.encode()), dtype=np.int64)
    for seg in segments:
        if isinstance(seg, _Run):
            vocab = seg.vocab(prefixes, fmt)
            row_bytes += pc.binary_length(vocab).to_numpy().astype(np.int64)[seg.codes]
            parts.append((vocab, seg.codes))
        else:
            c, col = seg
            if prefixes[c]:
                parts.append((pa.scalar(prefixes[c], pa.string()), None))
                row_bytes += len(prefixes[c].encode())
            cells = strings(col)
            row_bytes += pc.binary_length(cells).to_numpy()
            parts.append((cells, None))
    parts.append((pa.scalar(suffix, pa.string()), None))
    ends = np.cumsum(row_bytes)
    start = 0
    while start < n:
        base = int(ends[start - 1]) if start else 0
        stop = max(start + 1, int(np.searchsorted(ends, base + TEXT_CHUNK_BYTES, side="right")))
        args = [pc.take(a, codes[start:stop]) if codes is not None
                else a if isinstance(a, pa.Scalar) else a.slice(start, stop - start) for a, codes in parts]
        joined = pc.binary_join_element_wise(*args, "")
        offsets = np.frombuffer(joined.buffers()[1], dtype=np.int32)
        lo, hi = int(offsets[joined.offset]), int(offsets[joined.offset + len(joined)])
        yield joined.buffers()[2].slice(lo, hi - lo)
        start = stop


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
