"""pgcopy.RowStream (the snapshot's COPY parsed while it arrives, #21) reads what the whole-stream
parser reads, however the stream is cut into writes and chunks, and refuses what it refuses."""

import numpy as np
import pytest

from annotation import pgcopy

EXTRA = [("id", ">i8"), ("at", ">f8"), ("label_a", ">i4")]


def _stream(n: int, k: int = 5, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    rows = np.zeros(n, dtype=pgcopy._row_dtype(k, EXTRA))
    rows["nfields"], rows["len_image"], rows["len_rater"] = 3 + len(EXTRA), 4, 4
    rows["image"], rows["rater"] = rng.integers(1, 10**6, n), rng.integers(1, 50, n)
    rows["len_array"], rows["ndim"], rows["oid"], rows["dim"], rows["lbound"] = 20 + 6 * k, 1, 21, k, 1
    rows["cells"]["len"] = 2
    rows["cells"]["value"] = rng.integers(0, 8, (n, k))
    rows["len_id"], rows["id"] = 8, rng.integers(1, 10**9, n)
    rows["len_at"], rows["at"] = 8, rng.random(n) * 1e9
    rows["len_label_a"], rows["label_a"] = 4, rng.integers(-1, 3, n)
    header = pgcopy.SIGNATURE + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x04abcd"  # flags, 4 extension bytes
    return header + rows.tobytes() + b"\xff\xff"


@pytest.mark.parametrize("n", [0, 1, 257])
@pytest.mark.parametrize("chunk_bytes", [1, 300, 1 << 24])
def test_row_stream_reads_what_the_whole_stream_parser_reads(n, chunk_bytes):
    data = _stream(n)
    want_rows, want_cols = pgcopy.parse_rating_rows_with(data, 5, EXTRA)
    cuts = np.sort(np.random.default_rng(n).integers(0, len(data), 9))
    stream = pgcopy.RowStream(5, EXTRA, chunk_bytes=chunk_bytes)
    sink = stream.sink()  # as the snapshot hands it to copy_expert
    for a, b in zip([0, *cuts.tolist()], [*cuts.tolist(), len(data)], strict=True):
        sink.write(data[a:b])
    sink.flush()
    rows, cols = stream.result()
    for got, want in ((rows.image_ids, want_rows.image_ids), (rows.rater_ids, want_rows.rater_ids),
                      (rows.values, want_rows.values), *((cols[k], want_cols[k]) for k in want_cols)):
        assert got.dtype == want.dtype and got.shape == want.shape
        assert np.array_equal(got, want)


def test_row_stream_refuses_foreign_and_cut_streams():
    with pytest.raises(pgcopy.CopyFormatError, match="not a PostgreSQL binary COPY stream"):
        s = pgcopy.RowStream(5, EXTRA)
        s.write(b"image,rater\n1,2\n" * 3)
    data = _stream(20)
    cut = pgcopy.RowStream(5, EXTRA)
    cut.write(data[:-7] + b"\xff\xff")
    with pytest.raises(pgcopy.CopyFormatError, match="rows are not all"):
        cut.result()
    bad = bytearray(data)
    bad[len(bad) - 2] = 0
    s = pgcopy.RowStream(5, EXTRA)
    s.write(bytes(bad))
    with pytest.raises(pgcopy.CopyFormatError, match="missing COPY trailer"):
        s.result()


@pytest.mark.parametrize("chunk_bytes", [1, 150, 1000])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_row_stream_parses_whole_rows_from_the_writes_themselves(chunk_bytes, seed):
    """Writes straight to the stream (as the buffered writer's chunks come), cut anywhere, the
    trailer's two bytes and a row's last byte in writes of their own included: rows are parsed from
    the writes and only a cut row waits (#21), with the same arrays as the whole-stream parser."""
    data = _stream(97, seed=seed)
    want_rows, want_cols = pgcopy.parse_rating_rows_with(data, 5, EXTRA)
    rng = np.random.default_rng(seed)
    cuts = sorted({*rng.integers(0, len(data), 40).tolist(), len(data) - 1, len(data) - 2, len(data) - 3})
    stream = pgcopy.RowStream(5, EXTRA, chunk_bytes=chunk_bytes)
    for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True):
        assert stream.write(memoryview(data)[a:b]) == b - a
    rows, cols = stream.result()
    for got, want in ((rows.image_ids, want_rows.image_ids), (rows.rater_ids, want_rows.rater_ids),
                      (rows.values, want_rows.values), *((cols[k], want_cols[k]) for k in want_cols)):
        assert got.dtype == want.dtype and got.shape == want.shape
        assert np.array_equal(got, want)
