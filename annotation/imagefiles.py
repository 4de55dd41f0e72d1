"""Image file checks. PURE: Pillow only, no Django.

A file is accepted only if Pillow decodes it completely as JPEG, PNG or WebP, within a byte and a
pixel limit. The pixel limit is checked from the header *before* decoding, so a decompression
bomb is refused without allocating its pixels. The extension is never trusted.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

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


def check_image(data: bytes, *, max_bytes: int, max_pixels: int) -> CheckedImage:
    """Validate encoded image bytes. Raises ImageRejected naming the problem."""
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
                img.load()  # full decode: catches truncated and corrupt files
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
        sha256=hashlib.sha256(data).hexdigest(),
        format=fmt,
        extension=ALLOWED_FORMATS[fmt],
        width=width,
        height=height,
        size_bytes=len(data),
    )


# --- metadata stripping (served copies) -------------------------------------------------------

# JPEG markers dropped: APP1 (EXIF, XMP), APP12/APP13 (Ducky, Photoshop IPTC), COM (comments).
# Kept: APP0 (JFIF), APP2 (ICC colour profile), APP14 (Adobe colour transform): they change pixels.
_JPEG_DROP = {0xE1, 0xEC, 0xED, 0xFE}
_PNG_DROP = {b"eXIf", b"tEXt", b"zTXt", b"iTXt", b"tIME"}
_WEBP_DROP = {b"EXIF", b"XMP "}


def strip_metadata(data: bytes) -> bytes:
    """The same image without EXIF, XMP, comments or text chunks; pixels untouched (no re-encoding).

    Works on the container level for JPEG, PNG and WebP; anything else is returned unchanged.
    Precondition: `data` passed check_image (a well-formed file).
    """
    if data[:2] == b"\xff\xd8":
        return _strip_jpeg(data)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return _strip_png(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _strip_webp(data)
    return data


def _strip_jpeg(data: bytes) -> bytes:
    out = bytearray(data[:2])
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            break  # not a marker where one belongs: keep the rest as it is
        marker = data[i + 1]
        if marker == 0xDA or marker == 0xD9:  # start of scan / end of image: the rest is image data
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            out += data[i:i + 2]
            i += 2
            continue
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if marker not in _JPEG_DROP:
            out += data[i:i + 2 + length]
        i += 2 + length
    out += data[i:]
    return bytes(out)


def _strip_png(data: bytes) -> bytes:
    out = bytearray(data[:8])
    i = 8
    while i + 12 <= len(data):
        length = int.from_bytes(data[i:i + 4], "big")
        kind = data[i + 4:i + 8]
        end = i + 12 + length
        if kind not in _PNG_DROP:
            out += data[i:end]
        i = end
        if kind == b"IEND":
            break
    return bytes(out)


def _strip_webp(data: bytes) -> bytes:
    chunks = bytearray()
    i = 12
    while i + 8 <= len(data):
        kind = data[i:i + 4]
        size = int.from_bytes(data[i + 4:i + 8], "little")
        end = i + 8 + size + (size & 1)  # chunks are padded to even sizes
        chunk = bytearray(data[i:end])
        if kind == b"VP8X" and len(chunk) >= 9:
            chunk[8] &= ~(0x08 | 0x04) & 0xFF  # clear the "has EXIF" and "has XMP" flags
        if kind not in _WEBP_DROP:
            chunks += chunk
        i = end
    return b"RIFF" + (4 + len(chunks)).to_bytes(4, "little") + b"WEBP" + bytes(chunks)
