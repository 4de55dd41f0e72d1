"""Image file checks. PURE: Pillow only, no Django.

A file is accepted only if Pillow decodes all of its image data as JPEG, PNG or WebP, within a byte
and a pixel limit. The pixel limit is checked from the header *before* decoding, so a decompression
bomb is refused without allocating its pixels. The extension is never trusted.
"""

from __future__ import annotations

import hashlib
import io
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

ALLOWED_FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}


class ImageRejected(ValueError):
    """The file is not an acceptable image; the message says why."""


@dataclass(frozen=True)
class CheckedImage:
    sha256: str
    format: str  # JPEG | PNG | WEBP
    extension: str
    width: int
    height: int
    size_bytes: int
    orientation: int = 1  # a JPEG's EXIF orientation (1-8), kept by strip_metadata


def check_image(data: bytes, *, max_bytes: int, max_pixels: int, sha256: str | None = None) -> CheckedImage:
    """Validate encoded image bytes. Raises ImageRejected naming the problem. `sha256`: the bytes'
    hash when the caller computed it while reading them."""
    if len(data) == 0:
        raise ImageRejected("empty file")
    if len(data) > max_bytes:
        raise ImageRejected(f"file is {len(data):,} bytes; the limit is {max_bytes:,} bytes")
    head = data[:512].lstrip().lower()
    if head.startswith((b"<svg", b"<?xml", b"<!doctype html", b"<html")):
        raise ImageRejected("SVG/HTML/XML documents are not accepted (JPEG, PNG or WebP only)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                fmt = img.format or ""
                if fmt not in ALLOWED_FORMATS:
                    raise ImageRejected(f"format {fmt or 'unknown'} is not accepted (JPEG, PNG or WebP only)")
                width, height = img.size
                if width * height > max_pixels:
                    raise ImageRejected(
                        f"{width}x{height} = {width * height:,} pixels exceeds the limit of {max_pixels:,} "
                        "(possible decompression bomb)"
                    )
                orientation = _orientation_of(img) if fmt == "JPEG" else 1
                if fmt == "JPEG":
                    # Every coefficient of every component is still entropy-decoded (so truncated and
                    # corrupt data is caught exactly as by a full decode: tests/annotation/
                    # test_image_checks.py), but the inverse DCT runs at 1/8 size and, for colour
                    # images, on the luma only, with no colour conversion: under half the time of a
                    # full decode, the largest cost of an import.
                    img.draft("L", (max(1, width // 8), max(1, height // 8)))
                img.load()  # decode: catches truncated and corrupt files
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected(f"decompression bomb refused: {exc}") from None
    except UnidentifiedImageError:
        raise ImageRejected("not an image Pillow can read (JPEG, PNG or WebP only)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        # Pillow reports truncated/corrupt data as OSError ("image file is truncated ...").
        raise ImageRejected(f"corrupt or truncated image: {exc}") from None
    return CheckedImage(
        sha256=sha256 or hashlib.sha256(data).hexdigest(),
        format=fmt,
        extension=ALLOWED_FORMATS[fmt],
        width=width,
        height=height,
        size_bytes=len(data),
        orientation=orientation,
    )


# --- metadata stripping (served copies and released images) -------------------------------------
#
# By an allow-list of what is kept, not a list of what is dropped: anything not named below (EXIF,
# XMP, IPTC, comments, MPF with its embedded second image, generator text, vendor segments, data
# after the end of the image) never reaches a rater or a release. Nothing is re-encoded: the pixels
# are the uploaded ones.

# JPEG: frames, tables and scans; APP0 only as a bare JFIF header (its thumbnail dropped), APP2 only
# as an ICC colour profile, APP14 only as Adobe's colour-transform flag: those three change pixels.
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_JPEG_TABLES = {0xC4, 0xCC, 0xDB, 0xDD, 0xDC}  # DHT, DAC, DQT, DRI, DNL
_JPEG_APP_KEEP = {0xE2: b"ICC_PROFILE\x00", 0xEE: b"Adobe"}
_EXIF_ORIENTATION = 0x0112
# The end of a scan's entropy-coded data: the first 0xFF followed by neither a stuffed zero, a restart
# marker (0xD0-0xD7) nor another 0xFF (a fill byte before the marker).
_JPEG_SCAN_END = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
# PNG: the critical chunks and those that change how the pixels look; text, time, EXIF, physical
# size, animation and private chunks are dropped, and nothing after IEND is kept.
_PNG_KEEP = {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT", b"cICP"}
# WebP: the image data, alpha, colour profile and animation; EXIF, XMP and unknown chunks dropped.
_WEBP_KEEP = {b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ICCP", b"ANIM", b"ANMF"}


def read_capped(chunks: Iterable[bytes], *, max_bytes: int) -> tuple[bytes, str]:
    """Read a file chunk by chunk, hashing as it goes, and refuse it as soon as it passes
    `max_bytes` (never more than one chunk over the limit in memory). Returns (bytes, sha256)."""
    digest, parts, total = hashlib.sha256(), [], 0
    for chunk in chunks:
        total += len(chunk)
        if total > max_bytes:
            raise ImageRejected(f"file is larger than the limit of {max_bytes:,} bytes")
        digest.update(chunk)
        parts.append(chunk)
    return b"".join(parts), digest.hexdigest()


def read_file(path: Path, *, max_bytes: int) -> tuple[bytes, str]:
    """A local file's bytes and sha256, refused by its size before it is read, and never read past
    the limit (it may grow meanwhile). Raises ImageRejected naming the problem."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise ImageRejected(f"file is {size:,} bytes; the limit is {max_bytes:,} bytes")
        with path.open("rb") as fh:
            return read_capped(iter(lambda: fh.read(1 << 20), b""), max_bytes=max_bytes)
    except OSError as exc:
        raise ImageRejected(f"cannot read file: {exc.strerror or exc}") from None


@dataclass(frozen=True)
class PreparedImage:
    """An image file read, checked and stripped: everything an import needs that is not the
    database or the storage (made in a worker process by a parallel import)."""

    checked: CheckedImage
    data: bytes  # the file as uploaded
    stripped: bytes  # its served copy (strip_metadata)


def prepare_file(path: Path, *, max_bytes: int, max_pixels: int) -> PreparedImage:
    """Read, hash, check and strip one image file, exactly as an upload of its bytes would be.
    Raises ImageRejected naming the problem."""
    data, sha256 = read_file(path, max_bytes=max_bytes)
    checked = check_image(data, max_bytes=max_bytes, max_pixels=max_pixels, sha256=sha256)
    return PreparedImage(checked=checked, data=data, stripped=strip_metadata(data, orientation=checked.orientation))


def strip_metadata(data: bytes, *, orientation: int | None = None) -> bytes:
    """The same image with only the allow-listed parts kept; pixels untouched (no re-encoding).

    A JPEG's EXIF orientation, the one metadata field that changes how the face is shown, is kept
    in a fresh EXIF block holding nothing else. Raises ImageRejected when the container is not laid
    out as its format says (such a file cannot be stripped safely). Anything other than JPEG, PNG
    or WebP is returned unchanged (check_image refuses it first). `orientation`: the JPEG's, when
    check_image has read it (CheckedImage.orientation), else read here.
    """
    if data[:2] == b"\xff\xd8":
        return _strip_jpeg(data, _jpeg_orientation(data) if orientation is None else orientation)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return _strip_png(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _strip_webp(data)
    return data


def _jpeg_orientation(data: bytes) -> int:
    try:
        with Image.open(io.BytesIO(data)) as img:
            return _orientation_of(img)
    except Exception:  # not even a readable header: no orientation to keep
        return 1


def _orientation_of(img: Image.Image) -> int:
    try:
        value = img.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # unreadable EXIF: no orientation to keep
        return 1
    return value if isinstance(value, int) and 2 <= value <= 8 else 1


def _exif_orientation_segment(orientation: int) -> bytes:
    """APP1 with an EXIF block holding the orientation tag only (big-endian TIFF, one IFD entry)."""
    tiff = (b"MM\x00\x2a" + (8).to_bytes(4, "big") + (1).to_bytes(2, "big")
            + _EXIF_ORIENTATION.to_bytes(2, "big") + (3).to_bytes(2, "big") + (1).to_bytes(4, "big")
            + orientation.to_bytes(2, "big") + b"\x00\x00" + (0).to_bytes(4, "big"))
    payload = b"Exif\x00\x00" + tiff
    return b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload


def _strip_jpeg(data: bytes, orientation: int) -> bytes:
    n = len(data)
    out = bytearray(b"\xff\xd8")
    i = 2
    while True:
        if i >= n:  # no end-of-image marker (decoders tolerate it): end the file properly
            out += b"\xff\xd9"
            break
        if data[i] != 0xFF:
            raise ImageRejected(f"JPEG: unexpected byte at offset {i} where a marker belongs")
        while i < n and data[i] == 0xFF:  # fill bytes may precede any marker
            i += 1
        if i >= n:
            out += b"\xff\xd9"
            break
        marker = data[i]
        i += 1
        if marker == 0xD9:  # end of image: whatever follows is dropped
            out += b"\xff\xd9"
            break
        if 0xD0 <= marker <= 0xD7 or marker in (0x01, 0x00, 0xD8):
            raise ImageRejected(f"JPEG: marker 0x{marker:02X} out of place at offset {i - 1}")
        if i + 2 > n:
            raise ImageRejected("JPEG: truncated segment header")
        length = int.from_bytes(data[i:i + 2], "big")
        if length < 2 or i + length > n:
            raise ImageRejected(f"JPEG: segment 0x{marker:02X} at offset {i - 2} runs past the end of the file")
        segment = data[i:i + length]
        i += length
        if marker == 0xE0:
            if segment[2:7] == b"JFIF\x00" and length >= 16:
                # version, density units and density kept; the thumbnail is dropped
                out += b"\xff\xe0" + (16).to_bytes(2, "big") + segment[2:16 - 2] + b"\x00\x00"
                if orientation != 1:
                    out += _exif_orientation_segment(orientation)
                    orientation = 1
        elif marker in _JPEG_SOF or marker in _JPEG_TABLES or marker == 0xDA or (
                marker in _JPEG_APP_KEEP and segment[2:].startswith(_JPEG_APP_KEEP[marker])):
            if orientation != 1:  # no JFIF header came first: the orientation goes before the frame
                out += _exif_orientation_segment(orientation)
                orientation = 1
            out += b"\xff" + bytes([marker]) + segment
        if marker == 0xDA:  # entropy-coded data runs to the next marker that is not stuffing or a restart
            found = _JPEG_SCAN_END.search(data, i)
            j = found.start() if found is not None else n
            out += data[i:j]
            i = j
    return bytes(out)


def _strip_png(data: bytes) -> bytes:
    out = bytearray(data[:8])
    i = 8
    while True:
        if i + 12 > len(data):
            raise ImageRejected("PNG: ends before its IEND chunk")
        length = int.from_bytes(data[i:i + 4], "big")
        kind = data[i + 4:i + 8]
        end = i + 12 + length
        if end > len(data):
            raise ImageRejected(f"PNG: chunk {kind!r} runs past the end of the file")
        if kind in _PNG_KEEP:
            out += data[i:end]
        i = end
        if kind == b"IEND":  # whatever follows is dropped
            return bytes(out)


def _strip_webp(data: bytes) -> bytes:
    riff_end = min(len(data), 8 + int.from_bytes(data[4:8], "little"))
    chunks = bytearray()
    i = 12
    while i + 8 <= riff_end:
        kind = data[i:i + 4]
        size = int.from_bytes(data[i + 4:i + 8], "little")
        end = i + 8 + size + (size & 1)  # chunks are padded to even sizes
        if end > riff_end + (size & 1):
            raise ImageRejected(f"WebP: chunk {kind!r} runs past the end of the file")
        chunk = bytearray(data[i:end])
        if kind == b"VP8X" and len(chunk) >= 9:
            chunk[8] &= ~(0x08 | 0x04) & 0xFF  # clear the "has EXIF" and "has XMP" flags
        if kind in _WEBP_KEEP:
            chunks += chunk
        i = end
    return b"RIFF" + (4 + len(chunks)).to_bytes(4, "little") + b"WEBP" + bytes(chunks)
