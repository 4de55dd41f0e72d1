"""Tests for the procedurally drawn demo faces and the simulated ratings (pure, no Django)."""

from __future__ import annotations

import io
import random
import statistics

import pytest
from PIL import Image, ImageChops, ImageStat

from annotation.demo_faces import (
    EMOTIONS,
    EXPRESSION_KEYS,
    GENDERS,
    SKIN_TONES,
    FaceSpec,
    draw_face,
    face_jpeg_bytes,
    mouth_box,
    random_spec,
    simulated_intensities,
)


def _spec(seed: int = 7, **expression: float) -> FaceSpec:
    return FaceSpec(seed=seed, skin_tone=4, age=35, gender="woman", expression=dict(expression))


def test_emotion_names_are_the_40_taxonomy_names() -> None:
    assert len(EMOTIONS) == 40
    assert len(set(EMOTIONS)) == 40
    assert "Impatience and Irritability" in EMOTIONS
    assert "Intoxication/Altered States of Consciousness" in EMOTIONS
    assert EMOTIONS[-1] == "Jealousy & Envy"


def test_same_spec_gives_identical_bytes() -> None:
    spec = random_spec(random.Random(3))
    assert face_jpeg_bytes(spec) == face_jpeg_bytes(spec)
    assert draw_face(spec).tobytes() == draw_face(spec).tobytes()


def test_random_spec_is_deterministic_for_a_seeded_rng() -> None:
    assert random_spec(random.Random(11)) == random_spec(random.Random(11))


def test_different_specs_give_different_images() -> None:
    rng = random.Random(5)
    specs = [random_spec(rng) for _ in range(6)]
    blobs = {face_jpeg_bytes(s, size=128) for s in specs}
    assert len(blobs) == len(specs)
    # Only the seed differs: incidental details (hair, eyes, clothes, background) still change.
    a = draw_face(_spec(seed=1), 128)
    b = draw_face(_spec(seed=2), 128)
    assert ImageChops.difference(a, b).getbbox() is not None


@pytest.mark.parametrize("size", [96, 256, 384])
def test_jpeg_decodes_to_requested_size_and_mode(size: int) -> None:
    data = face_jpeg_bytes(random_spec(random.Random(size)), size=size, quality=80)
    assert data[:2] == b"\xff\xd8"
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "JPEG"
        assert img.size == (size, size)
        assert img.mode == "RGB"


def test_draw_face_returns_square_rgb() -> None:
    img = draw_face(_spec(), 200)
    assert img.mode == "RGB"
    assert img.size == (200, 200)


def test_expression_changes_the_mouth_region() -> None:
    size = 384
    smile = draw_face(_spec(smile=1.0), size)
    frown = draw_face(_spec(frown=1.0), size)
    box = mouth_box(size)
    diff = ImageChops.difference(smile.crop(box), frown.crop(box)).convert("L")
    changed = diff.point(lambda v: 255 if v > 40 else 0).histogram()[255]
    assert changed > 0.03 * (box[2] - box[0]) * (box[3] - box[1])
    # The top of the image (hair, background) is not affected by the mouth.
    top = (0, 0, size, int(size * 0.15))
    assert ImageChops.difference(smile.crop(top), frown.crop(top)).getbbox() is None


@pytest.mark.parametrize("key", ["brow_raise", "brow_furrow", "tears", "blush", "mouth_open"])
def test_each_expression_parameter_is_visible(key: str) -> None:
    base = draw_face(_spec(), 192)
    changed = draw_face(FaceSpec(seed=7, skin_tone=4, age=35, gender="woman", expression={key: 1.0}), 192)
    diff = ImageStat.Stat(ImageChops.difference(base, changed).convert("L"))
    assert diff.mean[0] > 0.05


def test_closed_eyes_differ_from_open_eyes() -> None:
    open_ = draw_face(_spec(eyes_open=1.0), 192)
    closed = draw_face(_spec(eyes_open=0.0), 192)
    assert ImageChops.difference(open_, closed).getbbox() is not None


def test_all_genders_tones_and_ages_draw() -> None:
    for i, gender in enumerate(GENDERS):
        for tone in (0, len(SKIN_TONES) // 2, len(SKIN_TONES) - 1):
            for age in (20, 50, 80):
                img = draw_face(
                    FaceSpec(seed=i * 100 + tone + age, skin_tone=tone, age=age, gender=gender), 64
                )
                assert img.size == (64, 64)


def test_skin_tone_darkens_the_cheeks() -> None:
    light = draw_face(FaceSpec(seed=9, skin_tone=0, age=30, gender="man"), 192)
    dark = draw_face(FaceSpec(seed=9, skin_tone=len(SKIN_TONES) - 1, age=30, gender="man"), 192)
    cheek = (60, 105, 80, 125)  # left cheek, clear of hair, eyes and mouth
    assert (
        ImageStat.Stat(light.crop(cheek).convert("L")).mean[0]
        > ImageStat.Stat(dark.crop(cheek).convert("L")).mean[0] + 60
    )


def test_invalid_specs_are_rejected() -> None:
    with pytest.raises(ValueError):
        FaceSpec(seed=1, skin_tone=len(SKIN_TONES), age=30, gender="man")
    with pytest.raises(ValueError):
        FaceSpec(seed=1, skin_tone=0, age=10, gender="man")
    with pytest.raises(ValueError):
        FaceSpec(seed=1, skin_tone=0, age=30, gender="robot")
    with pytest.raises(ValueError):
        FaceSpec(seed=1, skin_tone=0, age=30, gender="man", expression={"grin": 0.5})
    with pytest.raises(ValueError):
        FaceSpec(seed=1, skin_tone=0, age=30, gender="man", expression={"smile": 1.5})


def test_random_specs_are_varied_and_valid() -> None:
    rng = random.Random(0)
    specs = [random_spec(rng) for _ in range(300)]
    assert {s.gender for s in specs} == set(GENDERS)
    assert len({s.skin_tone for s in specs}) == len(SKIN_TONES)
    assert min(s.age for s in specs) < 30 and max(s.age for s in specs) > 60
    for s in specs:
        assert set(s.expression) == set(EXPRESSION_KEYS)
        assert all(0.0 <= v <= 1.0 for v in s.expression.values())
    assert sum(s.expression["smile"] > 0.5 for s in specs) > 30
    assert sum(s.expression["brow_furrow"] > 0.5 for s in specs) > 20


@pytest.mark.parametrize("scale_max", [7, 2])
def test_simulated_intensities_cover_all_names_in_range(scale_max: int) -> None:
    rng = random.Random(1)
    for _ in range(200):
        out = simulated_intensities(random_spec(rng), rng, scale_max=scale_max)
        assert list(out) == list(EMOTIONS)
        assert all(isinstance(v, int) and 0 <= v <= scale_max for v in out.values())


@pytest.mark.parametrize("scale_max", [7, 2])
def test_simulated_intensities_are_zero_inflated(scale_max: int) -> None:
    rng = random.Random(2)
    counts = [
        sum(1 for v in simulated_intensities(random_spec(rng), rng, scale_max).values() if v > 0)
        for _ in range(1000)
    ]
    assert 4 <= statistics.mean(counts) <= 12


def test_simulated_intensities_use_the_whole_scale() -> None:
    rng = random.Random(3)
    seen: set[int] = set()
    for _ in range(500):
        seen.update(simulated_intensities(random_spec(rng), rng).values())
    assert seen == set(range(8))


def test_simulated_intensities_correlate_with_the_face() -> None:
    rng = random.Random(4)

    def mean(expression: dict[str, float], name: str) -> float:
        return statistics.mean(
            simulated_intensities(_spec(seed=i, **expression), rng)[name] for i in range(300)
        )

    assert mean({"smile": 1.0}, "Amusement") > mean({"frown": 1.0}, "Amusement") + 2
    assert mean({"frown": 1.0, "brow_furrow": 1.0}, "Anger") > mean({"smile": 1.0}, "Anger") + 2
    assert mean({"frown": 1.0, "brow_furrow": 1.0}, "Impatience and Irritability") > 2
    assert (
        mean({"brow_raise": 1.0, "mouth_open": 1.0}, "Astonishment/Surprise")
        > mean({}, "Astonishment/Surprise") + 2
    )
    assert mean({"tears": 1.0}, "Sadness") > mean({"smile": 1.0}, "Sadness") + 2
    assert mean({"tears": 1.0}, "Distress") > mean({}, "Distress") + 1


def test_simulated_raters_disagree_but_not_wildly() -> None:
    spec = _spec(smile=0.9, mouth_open=0.5)
    ratings = [simulated_intensities(spec, random.Random(r)) for r in range(20)]
    assert len({tuple(r.values()) for r in ratings}) > 10  # raters differ
    assert sum(r["Amusement"] > 0 for r in ratings) >= 18  # but they see the same smile
    assert simulated_intensities(spec, random.Random(5)) == simulated_intensities(spec, random.Random(5))


def test_drawing_is_fast_enough() -> None:
    import time

    rng = random.Random(6)
    specs = [random_spec(rng) for _ in range(20)]
    start = time.perf_counter()
    for s in specs:
        face_jpeg_bytes(s)
    # 200 faces must take well under ~10 s; allow generous slack for slow CI machines.
    assert (time.perf_counter() - start) / len(specs) < 0.2
