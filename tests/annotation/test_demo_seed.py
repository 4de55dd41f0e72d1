"""The demo's faces are drawn on every core for a large demo, with the same bytes as one by one."""

from __future__ import annotations

import random

from annotation import demo_faces
from annotation.services import demo


def test_faces_drawn_in_parallel_are_the_faces_drawn_in_order():
    rng = random.Random(11)
    specs = [demo_faces.random_spec(rng) for _ in range(demo.PARALLEL_FROM)]
    parallel = list(demo._draw_all(specs))
    assert parallel == [demo_faces.face_jpeg_bytes(spec, size=384) for spec in specs]
