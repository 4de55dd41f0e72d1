"""check_image's reduced JPEG decode (1/8 scale, luma only) is exactly as strict as a full decode:
every truncated or corrupted file gets the same verdict from both."""

import io
import random

import numpy as np
import pytest
from PIL import Image as PILImage

from annotation.imagefiles import ImageRejected, check_image

LIMITS = {"max_bytes": 10_000_000, "max_pixels": 10_000_000}


def textured_jpeg(seed: int, size: tuple[int, int] = (256, 192), mode: str = "RGB") -> bytes:
    """A noisy image (a real entropy-coded scan of some length), progressive or baseline."""
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "L": 1, "CMYK": 4}[mode]
    pixels = rng.integers(0, 256, size=(size[1], size[0], channels), dtype=np.uint8)
    image = PILImage.fromarray(pixels[..., 0] if channels == 1 else pixels, mode=mode)
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=85, progressive=bool(seed % 2))
    return buf.getvalue()


def full_decode_accepts(data: bytes) -> bool:
    try:
        with PILImage.open(io.BytesIO(data)) as img:
            img.load()
    except Exception:  # anything Pillow raises: refused
        return False
    return True


def check_accepts(data: bytes) -> bool:
    try:
        check_image(data, **LIMITS)
    except ImageRejected:
        return False
    return True


@pytest.mark.parametrize("mode", ["RGB", "L", "CMYK"])
def test_reduced_decode_gives_the_full_decodes_verdict_on_damaged_files(mode):
    rng = random.Random(7)
    cases = []
    for seed in range(6):
        data = textured_jpeg(seed, mode=mode)
        cases.append(data)
        for _ in range(12):
            cases.append(data[:rng.randrange(2, len(data))])  # truncated anywhere
            damaged = bytearray(data)
            for _ in range(rng.choice([1, 4, 40])):  # bytes overwritten in the headers or the scan
                damaged[rng.randrange(2, len(damaged))] = rng.randrange(256)
            cases.append(bytes(damaged))
    verdicts = [(full_decode_accepts(c), check_accepts(c)) for c in cases]
    assert [full for full, _ in verdicts] == [ours for _, ours in verdicts]
    # The cases do cover both verdicts (a damaged scan is not always detectable, by either decode).
    assert sum(full for full, _ in verdicts) > 6 and sum(not full for full, _ in verdicts) > 40


def test_a_truncated_scan_is_rejected_and_an_intact_one_keeps_its_size():
    data = textured_jpeg(2, size=(300, 200))
    checked = check_image(data, **LIMITS)
    assert (checked.format, checked.width, checked.height) == ("JPEG", 300, 200)
    for cut in (len(data) // 3, len(data) // 2, len(data) - 200):
        with pytest.raises(ImageRejected, match="corrupt or truncated image"):
            check_image(data[:cut], **LIMITS)
