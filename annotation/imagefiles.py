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
