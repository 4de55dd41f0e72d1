"""Parse PostgreSQL's binary COPY output of rating rows into numpy arrays. PURE: numpy only.

Why: the agreement engine needs every rating of a project (100,000 images x 3 ratings x 40
emotions = 12 million values) in about a second. Fetching rows through the driver creates one
Python object per value; the binary COPY stream of fixed-size rows is instead read by numpy in
one pass (see docs/decisions/0001-rating-storage.md).

Expected row layout (what `COPY (SELECT image_id::int4, rater_id::int4, "values") TO STDOUT
(FORMAT binary)` sends when every row holds a one-dimensional smallint[] of length k without
NULLs, which the database's rating_values_valid constraint guarantees):

    int16 field count (3)
    int32 4, int32 image_id
    int32 4, int32 rater_id
    int32 20 + 6k, then the array: int32 ndim (1), int32 has-nulls (0), int32 element type oid
          (21 = int2), int32 dimension (k), int32 lower bound (1), then k x (int32 2, int16 value)

All integers are big-endian (network order).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np

SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
INT2_OID = 21


class CopyFormatError(ValueError):
    """The stream does not have the expected layout."""


@dataclass(frozen=True)
class RatingRows:
    image_ids: np.ndarray  # int64, shape (n,)
    rater_ids: np.ndarray  # int64, shape (n,)
    values: np.ndarray  # int16, shape (n, k)


def _row_dtype(k: int, extra: list[tuple[str, str]] | None = None) -> np.dtype:
    layout: list[tuple[str, str] | tuple[str, list[tuple[str, str]], tuple[int]]] = [
        ("nfields", ">i2"),
        ("len_image", ">i4"), ("image", ">i4"),
        ("len_rater", ">i4"), ("rater", ">i4"),
        ("len_array", ">i4"), ("ndim", ">i4"), ("hasnull", ">i4"), ("oid", ">i4"), ("dim", ">i4"), ("lbound", ">i4"),
        ("cells", [("len", ">i4"), ("value", ">i2")], (k,)),
    ]
    for name, kind in extra or []:
        layout += [(f"len_{name}", ">i4"), (name, kind)]
    return np.dtype(layout)


def parse_rating_rows(buf: bytes | memoryview, k: int) -> RatingRows:
    """Parse a whole binary COPY stream whose rows hold (int4, int4, smallint[k])."""
    return parse_rating_rows_with(buf, k, [])[0]


def parse_rating_rows_with(buf: bytes | memoryview, k: int,
                           extra: list[tuple[str, str]]) -> tuple[RatingRows, dict[str, np.ndarray]]:
    """Parse a binary COPY stream whose rows hold (int4, int4, smallint[k]) followed by fixed-width,
    never-NULL columns ``extra`` (as in ``parse_fixed_rows``, e.g. ``[("at", ">f8")]``). Returns the
    rating rows and one array per extra column, in native byte order."""
    mv = memoryview(buf)
    if len(mv) < 21 or bytes(mv[:11]) != SIGNATURE:
        raise CopyFormatError("not a PostgreSQL binary COPY stream")
    ext_len = int.from_bytes(mv[15:19], "big")
    start = 19 + ext_len
    end = len(mv) - 2
    if bytes(mv[end:]) != b"\xff\xff":
        raise CopyFormatError("missing COPY trailer")
    dtype = _row_dtype(k, extra)
    body = mv[start:end]
    if len(body) % dtype.itemsize:
        raise CopyFormatError(f"rows are not all {dtype.itemsize} bytes: a vector is not of length {k}")
    rows = np.frombuffer(body, dtype=dtype)
    n = len(rows)
    if n:
        ok = (
            (rows["nfields"] == 3 + len(extra)).all() and (rows["len_image"] == 4).all()
            and (rows["len_rater"] == 4).all()
            and (rows["len_array"] == 20 + 6 * k).all() and (rows["ndim"] == 1).all()
            and (rows["hasnull"] == 0).all() and (rows["oid"] == INT2_OID).all() and (rows["dim"] == k).all()
            and (rows["cells"]["len"] == 2).all()
            and all((rows[f"len_{name}"] == np.dtype(kind).itemsize).all() for name, kind in extra)
        )
        if not ok:
            raise CopyFormatError("unexpected row layout in COPY stream")
    return RatingRows(
        image_ids=rows["image"].astype(np.int64),
        rater_ids=rows["rater"].astype(np.int64),
        values=rows["cells"]["value"].astype(np.int16).reshape(n, k),
    ), {name: rows[name].astype(np.dtype(kind).newbyteorder("=")) for name, kind in extra}


def parse_fixed_rows(buf: bytes | memoryview, fields: list[tuple[str, str]]) -> dict[str, np.ndarray]:
    """Parse a whole binary COPY stream whose rows hold only fixed-width, never-NULL columns, e.g.
    ``[("image", ">i4"), ("at", ">f8")]`` for ``COPY (SELECT x::int4, y::float8 ...)``. Returns one
    array per field, in native byte order. CopyFormatError when the stream has another layout."""
    mv = memoryview(buf)
    if len(mv) < 21 or bytes(mv[:11]) != SIGNATURE:
        raise CopyFormatError("not a PostgreSQL binary COPY stream")
    start = 19 + int.from_bytes(mv[15:19], "big")
    end = len(mv) - 2
    if bytes(mv[end:]) != b"\xff\xff":
        raise CopyFormatError("missing COPY trailer")
    layout: list[tuple[str, str]] = [("nfields", ">i2")]
    for name, kind in fields:
        layout += [(f"len_{name}", ">i4"), (name, kind)]
    dtype = np.dtype(layout)
    body = mv[start:end]
    if len(body) % dtype.itemsize:
        raise CopyFormatError(f"rows are not all {dtype.itemsize} bytes (a NULL or another column type?)")
    rows = np.frombuffer(body, dtype=dtype)
    if rows.size and not ((rows["nfields"] == len(fields)).all() and all(
            (rows[f"len_{name}"] == np.dtype(kind).itemsize).all() for name, kind in fields)):
        raise CopyFormatError("unexpected row layout in COPY stream")
    return {name: rows[name].astype(np.dtype(kind).newbyteorder("=")) for name, kind in fields}


class RowStream:
    """A file-like sink for ``cursor.copy_expert`` that parses a binary COPY stream of rows
    (int4, int4, smallint[k], then fixed-width columns ``extra``, as ``parse_rating_rows_with``)
    while it arrives, ``chunk_bytes`` at a time: the whole stream is never held (about 1 GB at
    3,000,000 ratings x 40 emotions, plus its copies, #21). ``result()`` returns what
    ``parse_rating_rows_with`` returns for the whole stream; CopyFormatError as there."""

    def __init__(self, k: int, extra: list[tuple[str, str]], *, chunk_bytes: int = 1 << 24) -> None:
        self.k = k
        self.extra = extra
        self.dtype = _row_dtype(k, extra)
        self.chunk_bytes = max(chunk_bytes, self.dtype.itemsize)
        self._pending = bytearray()
        self._started = False
        self._parts: list[list[np.ndarray | None]] = []

    def sink(self) -> io.BufferedWriter:
        """The file object to hand to ``copy_expert``: PostgreSQL sends one message per row and the
        driver writes each, so a buffered writer (C) collects them and passes ``write`` whole
        chunks (a Python call per row cost seconds at 3,000,000 rows). Flush it before ``result``."""
        return io.BufferedWriter(_Sink(self), buffer_size=self.chunk_bytes)

    def write(self, data: bytes | memoryview) -> int:
        n_in = len(data)
        if not self._started:
            self._pending += data
            if len(self._pending) >= 19:
                if bytes(self._pending[:11]) != SIGNATURE:
                    raise CopyFormatError("not a PostgreSQL binary COPY stream")
                head = 19 + int.from_bytes(self._pending[15:19], "big")
                if len(self._pending) >= head:
                    del self._pending[:head]
                    self._started = True
            if not self._started:
                return n_in
            data = b""
        if len(self._pending) + len(data) < self.chunk_bytes + 2:
            self._pending += data  # collected until a chunk's worth
            return n_in
        # The whole rows are parsed straight from ``data`` (the buffered writer's chunk), not copied
        # into the pending bytes first (two copies of the stream and most of the parsing's time,
        # #21); only a row cut by the chunk's end waits. The last two bytes seen may be the trailer.
        sz = self.dtype.itemsize
        buf = memoryview(data).cast("B")
        if self._pending:
            fill = min(len(buf), -len(self._pending) % sz)  # completes the pending bytes' last row
            self._pending += buf[:fill]
            buf = buf[fill:]
            if len(buf) < 2 or len(self._pending) % sz:
                self._pending += buf
                return n_in
            self._take(len(self._pending))
        n = max(len(buf) - 2, 0) // sz
        if n:
            self._add(np.frombuffer(buf[: n * sz], dtype=self.dtype))
        self._pending += buf[n * sz :]
        return n_in

    def _take(self, upto: int) -> None:
        n = upto // self.dtype.itemsize
        if n:
            rows = np.frombuffer(self._pending, dtype=self.dtype, count=n)  # no copy of the bytes
            self._add(rows)
            del rows  # lets go of the bytes before they are cut
            del self._pending[: n * self.dtype.itemsize]

    def _add(self, rows: np.ndarray) -> None:
        """Check ``rows`` and keep their columns (copies: ``rows`` may be a view of the writer's buffer)."""
        _check_rows(rows, self.k, self.extra)
        self._parts.append([rows["image"].astype(np.int64), rows["rater"].astype(np.int64),
                            rows["cells"]["value"].astype(np.int16).reshape(len(rows), self.k),
                            *(rows[name].astype(np.dtype(kind).newbyteorder("=")) for name, kind in self.extra)])

    def result(self) -> tuple[RatingRows, dict[str, np.ndarray]]:
        if not self._started:
            raise CopyFormatError("not a PostgreSQL binary COPY stream")
        if bytes(self._pending[-2:]) != b"\xff\xff":
            raise CopyFormatError("missing COPY trailer")
        body = len(self._pending) - 2
        if body % self.dtype.itemsize:
            raise CopyFormatError(f"rows are not all {self.dtype.itemsize} bytes: a vector is not of length {self.k}")
        self._take(body)
        parts, self._parts = self._parts, []
        cols: list[np.ndarray] = []
        for i in range(3 + len(self.extra)):
            # one column at a time, its chunks let go as it is joined
            pieces = [p[i] for p in parts]
            cols.append(np.concatenate(pieces) if pieces else self._empty(i))  # type: ignore[arg-type]
            del pieces
            for p in parts:
                p[i] = None
        rows = RatingRows(image_ids=cols[0], rater_ids=cols[1], values=cols[2])
        return rows, {name: cols[3 + j] for j, (name, _) in enumerate(self.extra)}

    def _empty(self, i: int) -> np.ndarray:
        if i < 2:
            return np.zeros(0, dtype=np.int64)
        if i == 2:
            return np.zeros((0, self.k), dtype=np.int16)
        return np.zeros(0, dtype=np.dtype(self.extra[i - 3][1]).newbyteorder("="))


class _Sink(io.RawIOBase):
    """The raw file under ``RowStream.sink()``'s buffer: passes the chunks to the stream."""

    def __init__(self, stream: RowStream) -> None:
        self.stream = stream

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return self.stream.write(data)


def _check_rows(rows: np.ndarray, k: int, extra: list[tuple[str, str]]) -> None:
    if rows.size and not (
        (rows["nfields"] == 3 + len(extra)).all() and (rows["len_image"] == 4).all()
        and (rows["len_rater"] == 4).all()
        and (rows["len_array"] == 20 + 6 * k).all() and (rows["ndim"] == 1).all()
        and (rows["hasnull"] == 0).all() and (rows["oid"] == INT2_OID).all() and (rows["dim"] == k).all()
        and (rows["cells"]["len"] == 2).all()
        and all((rows[f"len_{name}"] == np.dtype(kind).itemsize).all() for name, kind in extra)
    ):
        raise CopyFormatError("unexpected row layout in COPY stream")
