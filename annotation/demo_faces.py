"""Procedurally drawn demo faces and simulated expert ratings.

The demo (``manage.py seed_demo``) needs a few hundred face images without downloading anything.
This module draws them itself with Pillow: a stylised portrait whose appearance (skin tone, age,
gender presentation, hair, eye colour, clothing, background) and expression (smile, frown, raised
or furrowed brows, open/closed eyes and mouth, tears, blush) come from a :class:`FaceSpec`.

It also simulates how expert raters would score such a picture on the 40 EmoNet emotions
(:func:`simulated_intensities`), so that the demo's ratings correlate with what is drawn.

The module is pure: standard library and Pillow only, no Django. Everything is deterministic for a
given spec (all incidental details come from ``spec.seed``), so seeding is reproducible.
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from PIL import Image, ImageChops, ImageDraw, ImageFilter

__all__ = [
    "EMOTIONS",
    "EXPRESSION_DEFAULTS",
    "EXPRESSION_KEYS",
    "GENDERS",
    "MAX_AGE",
    "MIN_AGE",
    "SKIN_TONES",
    "FaceSpec",
    "draw_face",
    "face_jpeg_bytes",
    "mouth_box",
    "random_spec",
    "simulated_intensities",
]

Point = tuple[float, float]
RGB = tuple[int, int, int]

#: The 40 EmoNet emotion names, in taxonomy order (exact spellings).
EMOTIONS: tuple[str, ...] = (
    "Amusement",
    "Elation",
    "Pleasure/Ecstasy",
    "Contentment",
    "Thankfulness/Gratitude",
    "Affection",
    "Infatuation",
    "Hope/Enthusiasm/Optimism",
    "Triumph",
    "Pride",
    "Interest",
    "Awe",
    "Astonishment/Surprise",
    "Concentration",
    "Contemplation",
    "Relief",
    "Longing",
    "Teasing",
    "Impatience and Irritability",
    "Sexual Lust",
    "Doubt",
    "Fear",
    "Distress",
    "Confusion",
    "Embarrassment",
    "Shame",
    "Disappointment",
    "Sadness",
    "Bitterness",
    "Contempt",
    "Disgust",
    "Anger",
    "Malevolence/Malice",
    "Sourness",
    "Pain",
    "Helplessness",
    "Fatigue/Exhaustion",
    "Emotional Numbness",
    "Intoxication/Altered States of Consciousness",
    "Jealousy & Envy",
)

#: Expression parameters understood by :func:`draw_face`, each in 0..1.
EXPRESSION_KEYS: tuple[str, ...] = (
    "smile",
    "frown",
    "brow_raise",
    "brow_furrow",
    "eyes_open",
    "mouth_open",
    "tears",
    "blush",
)
#: Value used for a parameter missing from ``FaceSpec.expression``.
EXPRESSION_DEFAULTS: Mapping[str, float] = {
    key: (0.8 if key == "eyes_open" else 0.0) for key in EXPRESSION_KEYS
}

GENDERS: tuple[str, ...] = ("man", "woman", "non-binary person")
MIN_AGE = 20
MAX_AGE = 80

#: Skin palette from very light to very dark; wide enough for every ethnicity label of the prompts.
SKIN_TONES: tuple[RGB, ...] = (
    (252, 223, 205),
    (243, 204, 178),
    (236, 192, 156),
    (224, 174, 130),
    (208, 154, 112),
    (189, 134, 94),
    (164, 111, 76),
    (138, 90, 60),
    (111, 71, 48),
    (84, 55, 39),
)

_HAIR_COLOURS: tuple[RGB, ...] = (
    (24, 20, 20),  # black
    (45, 32, 26),  # very dark brown
    (74, 50, 34),  # dark brown
    (110, 76, 48),  # brown
    (150, 98, 56),  # light brown
    (140, 62, 34),  # auburn
    (196, 152, 92),  # dark blonde
    (226, 196, 136),  # blonde
)
_GREY_HAIR: RGB = (200, 200, 204)
_IRIS_COLOURS: tuple[RGB, ...] = (
    (72, 46, 30),
    (96, 62, 36),
    (58, 38, 26),
    (120, 88, 48),
    (74, 110, 138),
    (92, 132, 104),
    (110, 124, 136),
    (64, 92, 150),
)
_SHIRT_COLOURS: tuple[RGB, ...] = (
    (52, 78, 120),
    (150, 52, 60),
    (60, 110, 90),
    (230, 230, 226),
    (44, 44, 50),
    (190, 150, 80),
    (110, 80, 140),
    (70, 130, 170),
    (200, 110, 80),
    (120, 120, 124),
)
_BACKGROUNDS: tuple[tuple[RGB, RGB], ...] = (
    ((196, 214, 232), (120, 146, 180)),
    ((226, 222, 210), (160, 150, 132)),
    ((214, 230, 214), (120, 156, 128)),
    ((232, 214, 220), (168, 128, 146)),
    ((220, 220, 224), (132, 134, 146)),
    ((236, 224, 196), (184, 150, 102)),
    ((200, 224, 226), (98, 140, 150)),
    ((84, 92, 112), (36, 40, 52)),
)

_MALE_STYLES = ("short", "short", "short", "buzz", "curly", "side_part")
_FEMALE_STYLES = ("long", "long", "bob", "bun", "curly_long", "side_part_long")
_NB_STYLES = ("bob", "short", "curly", "long", "side_part", "buzz", "curly_long")


@dataclass(frozen=True)
class FaceSpec:
    """What a demo face looks like. Everything not listed here derives from ``seed``."""

    seed: int
    skin_tone: int
    age: int
    gender: str
    expression: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 <= self.skin_tone < len(SKIN_TONES):
            raise ValueError(f"skin_tone must be in 0..{len(SKIN_TONES) - 1}, got {self.skin_tone}")
        if not MIN_AGE <= self.age <= MAX_AGE:
            raise ValueError(f"age must be in {MIN_AGE}..{MAX_AGE}, got {self.age}")
        if self.gender not in GENDERS:
            raise ValueError(f"gender must be one of {GENDERS}, got {self.gender!r}")
        for key, value in self.expression.items():
            if key not in EXPRESSION_DEFAULTS:
                raise ValueError(f"unknown expression parameter {key!r}; known: {EXPRESSION_KEYS}")
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"expression parameter {key!r} must be in 0..1, got {value}")

    def expr(self, key: str) -> float:
        """The value of one expression parameter, with its default when absent."""
        return float(self.expression.get(key, EXPRESSION_DEFAULTS[key]))


# --------------------------------------------------------------------------------------------------
# Random specs
# --------------------------------------------------------------------------------------------------

# Expression archetypes: (weight, centre values); random_spec jitters around one of them.
_ARCHETYPES: tuple[tuple[float, dict[str, float]], ...] = (
    (1.0, {}),  # neutral
    (1.6, {"smile": 0.85, "eyes_open": 0.6, "mouth_open": 0.45}),  # laughing / joy
    (1.2, {"smile": 0.55, "eyes_open": 0.75}),  # gentle smile
    (1.0, {"frown": 0.65, "brow_raise": 0.45, "eyes_open": 0.6, "tears": 0.6}),  # sadness
    (1.0, {"frown": 0.75, "brow_furrow": 0.85, "eyes_open": 0.75, "mouth_open": 0.15}),  # anger
    (0.9, {"brow_raise": 0.9, "mouth_open": 0.8, "eyes_open": 1.0}),  # surprise
    (
        0.8,
        {"brow_raise": 0.75, "brow_furrow": 0.55, "mouth_open": 0.5, "eyes_open": 1.0, "frown": 0.3},
    ),  # fear
    (0.6, {"frown": 0.55, "brow_furrow": 0.6, "eyes_open": 0.45}),  # disgust
    (0.6, {"eyes_open": 0.2, "frown": 0.2}),  # tired
    (0.6, {"blush": 0.8, "smile": 0.35, "eyes_open": 0.55}),  # embarrassed
    (0.6, {"brow_furrow": 0.5, "eyes_open": 0.65}),  # concentration / doubt
)


def random_spec(rng: random.Random) -> FaceSpec:
    """A random, plausible spec: varied people, expressions drawn around common archetypes."""
    seed = rng.randrange(2**31)
    skin_tone = rng.randrange(len(SKIN_TONES))
    age = int(round(min(MAX_AGE, max(MIN_AGE, rng.triangular(MIN_AGE, MAX_AGE, 32)))))
    gender = rng.choices(GENDERS, weights=(0.45, 0.45, 0.10))[0]
    weights = [w for w, _ in _ARCHETYPES]
    centre = rng.choices([c for _, c in _ARCHETYPES], weights=weights)[0]
    expression: dict[str, float] = {}
    for key in EXPRESSION_KEYS:
        base = centre.get(key, EXPRESSION_DEFAULTS[key])
        jitter = 0.12 if key in centre else 0.05
        value = base + rng.gauss(0.0, jitter)
        if key not in centre and key != "eyes_open":
            value = abs(value) * 0.6  # mostly absent, occasionally a trace
        expression[key] = round(min(1.0, max(0.0, value)), 3)
    return FaceSpec(seed=seed, skin_tone=skin_tone, age=age, gender=gender, expression=expression)


# --------------------------------------------------------------------------------------------------
# Geometry and colour helpers
# --------------------------------------------------------------------------------------------------


def _clamp01(x: float) -> float:
    return 0.0 if x < 0.0 else 1.0 if x > 1.0 else x


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    t = _clamp01(t)
    return (
        int(round(a[0] + (b[0] - a[0]) * t)),
        int(round(a[1] + (b[1] - a[1]) * t)),
        int(round(a[2] + (b[2] - a[2]) * t)),
    )


def _scale(c: RGB, f: float) -> RGB:
    return (min(255, int(c[0] * f)), min(255, int(c[1] * f)), min(255, int(c[2] * f)))


def _quad(p0: Point, p1: Point, p2: Point, n: int = 24) -> list[Point]:
    pts: list[Point] = []
    for i in range(n + 1):
        t = i / n
        u = 1.0 - t
        pts.append(
            (
                u * u * p0[0] + 2 * u * t * p1[0] + t * t * p2[0],
                u * u * p0[1] + 2 * u * t * p1[1] + t * t * p2[1],
            )
        )
    return pts


def _cubic(p0: Point, p1: Point, p2: Point, p3: Point, n: int = 28) -> list[Point]:
    pts: list[Point] = []
    for i in range(n + 1):
        t = i / n
        u = 1.0 - t
        a, b, c, d = u * u * u, 3 * u * u * t, 3 * u * t * t, t * t * t
        pts.append(
            (
                a * p0[0] + b * p1[0] + c * p2[0] + d * p3[0],
                a * p0[1] + b * p1[1] + c * p2[1] + d * p3[1],
            )
        )
    return pts


def _stroke(pts: Sequence[Point], w_start: float, w_mid: float, w_end: float) -> list[Point]:
    """Polygon outlining a stroke along ``pts`` whose width tapers start -> middle -> end."""
    n = len(pts)
    left: list[Point] = []
    right: list[Point] = []
    for i, (x, y) in enumerate(pts):
        x0, y0 = pts[max(0, i - 1)]
        x1, y1 = pts[min(n - 1, i + 1)]
        dx, dy = x1 - x0, y1 - y0
        norm = math.hypot(dx, dy) or 1.0
        nx, ny = -dy / norm, dx / norm
        t = i / (n - 1) if n > 1 else 0.0
        w = (
            w_start + (w_mid - w_start) * (t / 0.5)
            if t < 0.5
            else w_mid + (w_end - w_mid) * ((t - 0.5) / 0.5)
        )
        left.append((x + nx * w / 2, y + ny * w / 2))
        right.append((x - nx * w / 2, y - ny * w / 2))
    return left + right[::-1]


def _ellipse_pts(
    cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int = 40
) -> list[Point]:
    """Points on an ellipse from angle a0 to a1 (radians, y down)."""
    return [
        (cx + rx * math.cos(a0 + (a1 - a0) * i / n), cy + ry * math.sin(a0 + (a1 - a0) * i / n))
        for i in range(n + 1)
    ]


def _soft_mask(
    size: int, paint: Callable[[ImageDraw.ImageDraw, float], None], blur: float, factor: int = 4
) -> Image.Image:
    """An 'L' mask painted at 1/factor resolution, blurred and scaled up: cheap soft shapes."""
    small = Image.new("L", (size // factor, size // factor), 0)
    paint(ImageDraw.Draw(small), 1.0 / factor)
    small = small.filter(ImageFilter.GaussianBlur(blur / factor))
    return small.resize((size, size), Image.Resampling.BILINEAR)


# --------------------------------------------------------------------------------------------------
# Drawing
# --------------------------------------------------------------------------------------------------


@dataclass
class _Layout:
    """Face geometry in canvas pixels (the canvas is drawn at twice the output size)."""

    size: int
    cx: float
    cy: float
    rx: float
    ry_top: float
    ry_bottom: float
    jaw: float
    eye_y: float
    eye_dx: float
    eye_w: float
    brow_y: float
    nose_y: float
    mouth_y: float
    mouth_w: float
    hairline: float

    def head_outline(self, n: int = 96) -> list[Point]:
        pts: list[Point] = []
        for i in range(n):
            t = 2 * math.pi * i / n
            c, s = math.cos(t), math.sin(t)
            if s <= 0:  # cranium: a plain ellipse
                pts.append((self.cx + self.rx * c, self.cy + self.ry_top * s))
            else:  # jaw: narrows towards a rounded chin
                taper = 1.0 - self.jaw * s**2.2
                pts.append((self.cx + self.rx * c * taper, self.cy + self.ry_bottom * s))
        return pts


def _layout(size: int, rng: random.Random) -> _Layout:
    u = float(size)
    cx = u * (0.5 + rng.uniform(-0.012, 0.012))
    cy = u * 0.455
    rx = u * rng.uniform(0.205, 0.235)
    ry_top = u * rng.uniform(0.28, 0.30)
    ry_bottom = u * rng.uniform(0.305, 0.33)
    return _Layout(
        size=size,
        cx=cx,
        cy=cy,
        rx=rx,
        ry_top=ry_top,
        ry_bottom=ry_bottom,
        jaw=rng.uniform(0.28, 0.45),
        eye_y=cy + u * 0.005,
        eye_dx=rx * rng.uniform(0.40, 0.46),
        eye_w=rx * rng.uniform(0.21, 0.25),
        brow_y=cy - u * rng.uniform(0.045, 0.055),
        nose_y=cy + ry_bottom * rng.uniform(0.40, 0.45),
        mouth_y=cy + ry_bottom * rng.uniform(0.64, 0.68),
        mouth_w=rx * rng.uniform(0.34, 0.40),
        hairline=cy - ry_top * rng.uniform(0.55, 0.7),
    )


def _background(size: int, rng: random.Random) -> Image.Image:
    top, bottom = rng.choice(_BACKGROUNDS)
    jitter = rng.randint(-12, 12)
    top = _mix(top, (255, 255, 255) if jitter > 0 else (0, 0, 0), abs(jitter) / 60)
    grad = Image.linear_gradient("L").resize((size, size), Image.Resampling.BILINEAR)
    img = Image.composite(Image.new("RGB", (size, size), bottom), Image.new("RGB", (size, size), top), grad)

    # Soft light behind the head.
    def paint(d: ImageDraw.ImageDraw, k: float) -> None:
        d.ellipse((size * 0.18 * k, size * 0.05 * k, size * 0.82 * k, size * 0.75 * k), fill=110)

    glow = _soft_mask(size, paint, blur=size * 0.12)
    return Image.composite(Image.new("RGB", (size, size), _mix(top, (255, 255, 255), 0.35)), img, glow)


def _draw_body(img: Image.Image, lay: _Layout, skin: RGB, rng: random.Random) -> None:
    d = ImageDraw.Draw(img)
    u = float(lay.size)
    shirt = rng.choice(_SHIRT_COLOURS)
    shoulder_w = u * rng.uniform(0.40, 0.46)
    top = lay.cy + lay.ry_bottom * 0.92
    # Shoulders / torso: a wide rounded shape leaving the frame at the bottom.
    body = _cubic(
        (lay.cx - shoulder_w, u * 1.02),
        (lay.cx - shoulder_w, top + u * 0.05),
        (lay.cx - shoulder_w * 0.55, top),
        (lay.cx, top - u * 0.005),
    )
    body += [(2 * lay.cx - x, y) for x, y in reversed(body)]
    d.polygon(body, fill=shirt)
    # Neck (reaching a little into the torso) with a shadow under the jaw.
    neck_w = lay.rx * rng.uniform(0.42, 0.5)
    neck_top = lay.cy + lay.ry_bottom * 0.55
    collar_y = top + u * 0.03
    neck = [(lay.cx - neck_w, neck_top), (lay.cx + neck_w, neck_top)]
    neck += _quad(
        (lay.cx + neck_w * 1.1, collar_y),
        (lay.cx, collar_y + u * 0.06),
        (lay.cx - neck_w * 1.1, collar_y),
        16,
    )
    d.polygon(neck, fill=skin)
    shadow_y = lay.cy + lay.ry_bottom + u * 0.03
    d.polygon(
        [(lay.cx - neck_w, neck_top), (lay.cx + neck_w, neck_top)]
        + _quad(
            (lay.cx + neck_w, shadow_y - u * 0.03),
            (lay.cx, shadow_y + u * 0.02),
            (lay.cx - neck_w, shadow_y - u * 0.03),
            12,
        ),
        fill=_scale(skin, 0.8),
    )
    # Collar: a V neck or a crew neck band.
    line_w = max(3, int(u * 0.012))
    if rng.random() < 0.5:
        v = [
            (lay.cx - neck_w * 1.25, collar_y - u * 0.015),
            (lay.cx, collar_y + u * 0.09),
            (lay.cx + neck_w * 1.25, collar_y - u * 0.015),
        ]
        d.polygon(v, fill=_scale(skin, 0.94))
        d.line(v, fill=_scale(shirt, 0.72), width=line_w, joint="curve")
    else:
        arc = _quad(
            (lay.cx - neck_w * 1.3, collar_y - u * 0.02),
            (lay.cx, collar_y + u * 0.07),
            (lay.cx + neck_w * 1.3, collar_y - u * 0.02),
            20,
        )
        d.line(arc, fill=_scale(shirt, 0.72), width=line_w, joint="curve")
    # Fold shadows near the armpits.
    for side in (-1, 1):
        fold = _quad(
            (lay.cx + side * shoulder_w * 0.62, u * 1.0),
            (lay.cx + side * shoulder_w * 0.66, u * 0.93),
            (lay.cx + side * shoulder_w * 0.72, u * 0.9),
        )
        d.line(fold, fill=_scale(shirt, 0.8), width=max(2, int(u * 0.006)))


def _hair_colour(spec: FaceSpec, rng: random.Random) -> RGB:
    dark_bias = spec.skin_tone / (len(SKIN_TONES) - 1)
    weights = [
        1.0 + 2.5 * dark_bias,
        1.0 + 1.5 * dark_bias,
        1.2,
        1.0,
        0.8 - 0.6 * dark_bias,
        0.4 - 0.35 * dark_bias,
        0.7 - 0.65 * dark_bias,
        0.6 - 0.58 * dark_bias,
    ]
    base = rng.choices(_HAIR_COLOURS, weights=weights)[0]
    grey = _clamp01((spec.age - 38) / 34.0) * rng.uniform(0.6, 1.0)
    return _mix(base, _GREY_HAIR, grey)


def _hair_style(spec: FaceSpec, rng: random.Random) -> str:
    styles = {"man": _MALE_STYLES, "woman": _FEMALE_STYLES}.get(spec.gender, _NB_STYLES)
    style = rng.choice(styles)
    if spec.gender == "man" and spec.age > 45 and rng.random() < (spec.age - 45) / 50:
        style = "balding"
    return style


def _draw_hair_back(d: ImageDraw.ImageDraw, lay: _Layout, style: str, hair: RGB, rng: random.Random) -> None:
    u = float(lay.size)
    if style in ("long", "curly_long", "side_part_long"):
        length = lay.cy + lay.ry_bottom * rng.uniform(1.15, 1.45)
        w = lay.rx * (1.3 if style == "curly_long" else 1.16)
        top = lay.cy - lay.ry_top * 1.08
        left = _cubic(
            (lay.cx, top), (lay.cx - w * 1.05, top), (lay.cx - w * 1.1, lay.cy), (lay.cx - w * 1.02, length)
        )
        # Locks fall in front of the shoulders; between them the hair is hidden behind the neck.
        inner_x = lay.cx - lay.rx * 0.62
        shoulder_y = lay.cy + lay.ry_bottom * 0.95
        tips = _quad(
            (lay.cx - w * 1.02, length),
            (lay.cx - w * 0.8, length + u * 0.03),
            (inner_x, length - u * 0.03),
            10,
        )[1:]
        inner_edge = _quad(
            tips[-1], (inner_x + u * 0.01, shoulder_y + u * 0.05), (inner_x + u * 0.01, shoulder_y), 10
        )[1:]
        half = left + tips + inner_edge
        mirrored = [(2 * lay.cx - x, y) for x, y in reversed(half)]
        d.polygon(half + mirrored, fill=hair)
        if style == "curly_long":
            for x, y in left[6::2] + [(2 * lay.cx - x, y) for x, y in left[6::2]]:
                r = u * rng.uniform(0.03, 0.045)
                d.ellipse((x - r, y - r, x + r, y + r), fill=hair)
        # Strand texture.
        dark = _scale(hair, 0.72)
        for side in (-1, 1):
            for _ in range(4):
                x0 = lay.cx + side * w * rng.uniform(0.85, 1.0)
                d.line(
                    _quad(
                        (x0, lay.cy - lay.ry_top * 0.2),
                        (x0 + side * u * 0.02, lay.cy + lay.ry_bottom * 0.5),
                        (x0 - side * u * 0.01, length - u * 0.02),
                        12,
                    ),
                    fill=dark,
                    width=max(2, int(u * 0.004)),
                )
    elif style == "bob":
        w = lay.rx * 1.2
        bottom = lay.cy + lay.ry_bottom * rng.uniform(0.55, 0.8)
        top = lay.cy - lay.ry_top * 1.1
        left = _cubic(
            (lay.cx, top), (lay.cx - w * 1.1, top), (lay.cx - w * 1.05, lay.cy), (lay.cx - w * 0.98, bottom)
        )
        shape = left + [(2 * lay.cx - x, y) for x, y in reversed(left)]
        d.polygon(shape, fill=hair)
    elif style == "bun":
        r = lay.rx * 0.42
        bx, by = lay.cx + lay.rx * rng.uniform(-0.15, 0.15), lay.cy - lay.ry_top * 1.12
        d.ellipse((bx - r, by - r * 0.9, bx + r, by + r * 0.9), fill=hair)
        d.arc(
            (bx - r * 0.6, by - r * 0.5, bx + r * 0.6, by + r * 0.5),
            200,
            340,
            fill=_scale(hair, 0.7),
            width=max(2, int(u * 0.005)),
        )


def _draw_hair_front(
    img: Image.Image, lay: _Layout, style: str, hair: RGB, skin: RGB, rng: random.Random
) -> None:
    d = ImageDraw.Draw(img)
    u = float(lay.size)
    if style == "balding":
        # Hair only around the sides and back, a shiny crown.
        for side in (-1, 1):
            a0, a1 = (math.pi * 0.98, math.pi * 1.3) if side < 0 else (math.pi * 1.7, math.pi * 2.02)
            outer = _ellipse_pts(lay.cx, lay.cy, lay.rx * 1.04, lay.ry_top * 1.02, a0, a1, 16)
            inner = _ellipse_pts(lay.cx, lay.cy, lay.rx * 0.93, lay.ry_top * 0.9, a1, a0, 16)
            d.polygon(outer + inner, fill=hair)
        d.ellipse(
            (
                lay.cx - lay.rx * 0.35,
                lay.cy - lay.ry_top * 0.92,
                lay.cx + lay.rx * 0.05,
                lay.cy - lay.ry_top * 0.75,
            ),
            fill=_mix(skin, (255, 255, 255), 0.25),
        )
        return
    if style == "bun":
        style = "pulled_back"
    thick = {"buzz": 1.015, "short": 1.07, "side_part": 1.08, "curly": 1.16, "pulled_back": 1.03}.get(
        style, 1.09
    )
    outer = _ellipse_pts(
        lay.cx,
        lay.cy + lay.ry_top * 0.02,
        lay.rx * thick,
        lay.ry_top * (thick + 0.02),
        math.pi * 0.97,
        math.pi * 2.03,
        48,
    )
    temple_y = lay.eye_y - (lay.eye_y - lay.brow_y) * (
        1.3 if style in ("long", "bob", "side_part_long", "curly_long") else 2.0
    )
    hairline = lay.hairline
    if style in ("bob",) or (style in ("long", "curly_long") and rng.random() < 0.4):
        hairline = lay.brow_y - (lay.brow_y - lay.hairline) * 0.35  # fringe / bangs
    part = rng.uniform(-0.45, 0.45) * lay.rx
    right_temple = (lay.cx + lay.rx * 0.97, temple_y)
    left_temple = (lay.cx - lay.rx * 0.97, temple_y)
    if style in ("side_part", "side_part_long"):
        inner = _cubic(
            right_temple,
            (lay.cx + lay.rx * 0.85, hairline),
            (lay.cx + part, hairline - u * 0.04),
            (lay.cx + part * 0.8, hairline - u * 0.03),
            20,
        )
        inner += _cubic(
            (lay.cx + part * 0.8, hairline - u * 0.03),
            (lay.cx - lay.rx * 0.3, hairline + u * 0.02),
            (lay.cx - lay.rx * 0.95, hairline),
            left_temple,
            20,
        )
    else:
        dip = u * (0.012 if style != "buzz" else 0.0)
        inner = _cubic(
            right_temple,
            (lay.cx + lay.rx * 0.9, hairline - dip),
            (lay.cx - lay.rx * 0.9, hairline - dip),
            left_temple,
            32,
        )
        if style in ("short", "curly", "buzz"):
            # Small widow's peak in the middle.
            inner = [
                (x, y + dip * 0.8 * math.exp(-(((x - lay.cx) / (lay.rx * 0.25)) ** 2))) for x, y in inner
            ]
    sideburn = lay.eye_y + (lay.nose_y - lay.eye_y) * 0.1
    right_side = [(lay.cx + lay.rx * 1.0, sideburn), (lay.cx + lay.rx * 0.93, sideburn)]
    left_side = [(lay.cx - lay.rx * 0.93, sideburn), (lay.cx - lay.rx * 1.0, sideburn)]
    shape = outer + right_side + inner + left_side
    colour = hair if style != "buzz" else _mix(hair, skin, 0.35)
    d.polygon(shape, fill=colour)
    if style in ("curly", "curly_long"):
        for x, y in outer[::2]:
            r = u * rng.uniform(0.028, 0.04)
            d.ellipse((x - r, y - r, x + r, y + r), fill=hair)
        for x, y in inner[3:-3:3]:
            r = u * rng.uniform(0.018, 0.026)
            d.ellipse((x - r, y - r * 1.2, x + r, y + r * 0.8), fill=hair)
    # Texture: a few darker strands following the shape, and a highlight.
    dark = _scale(hair, 0.7)
    light = _mix(hair, (255, 255, 255), 0.18)
    if style not in ("buzz",):
        for _ in range(7):
            a = math.pi * rng.uniform(1.2, 1.8)
            x0 = lay.cx + lay.rx * 0.92 * math.cos(a)
            y0 = lay.cy + lay.ry_top * 0.95 * math.sin(a)
            x2, y2 = min(inner, key=lambda p: abs(p[0] - (x0 + (x0 - lay.cx) * 0.3)))
            d.line(
                _quad((x0, y0), ((x0 + x2) / 2 + u * 0.01, (y0 + y2) / 2), (x2, y2 - u * 0.01), 14),
                fill=dark,
                width=max(2, int(u * 0.004)),
            )
        hl = _ellipse_pts(
            lay.cx - lay.rx * 0.1, lay.cy, lay.rx * 0.8, lay.ry_top * 0.93, math.pi * 1.2, math.pi * 1.45, 12
        )
        d.line(hl, fill=light, width=max(3, int(u * 0.01)), joint="curve")


def _draw_ears(d: ImageDraw.ImageDraw, lay: _Layout, skin: RGB) -> None:
    ear_top = lay.brow_y + (lay.eye_y - lay.brow_y) * 0.3
    ear_bottom = lay.nose_y + (lay.mouth_y - lay.nose_y) * 0.1
    w = lay.rx * 0.2
    for side in (-1, 1):
        x = lay.cx + side * lay.rx * 0.94
        box = (min(x, x + side * w), ear_top, max(x, x + side * w), ear_bottom)
        d.ellipse(box, fill=skin)
        inner = (
            box[0] + w * 0.28,
            ear_top + (ear_bottom - ear_top) * 0.18,
            box[2] - w * 0.28,
            ear_bottom - (ear_bottom - ear_top) * 0.25,
        )
        d.arc(
            inner,
            90 if side > 0 else -90,
            270 if side > 0 else 90,
            fill=_scale(skin, 0.78),
            width=max(2, int(lay.size * 0.005)),
        )


def _shade_head(
    img: Image.Image, lay: _Layout, head_mask: Image.Image, skin: RGB, light_dx: float
) -> Image.Image:
    size = lay.size

    def paint(d: ImageDraw.ImageDraw, k: float) -> None:
        d.rectangle((0, 0, size * k, size * k), fill=170)
        # Lit area: the face centre, slightly towards the light.
        d.ellipse(
            (
                (lay.cx - lay.rx * 0.78 + light_dx) * k,
                (lay.cy - lay.ry_top * 0.82) * k,
                (lay.cx + lay.rx * 0.78 + light_dx) * k,
                (lay.cy + lay.ry_bottom * 0.88) * k,
            ),
            fill=0,
        )

    shade = _soft_mask(size, paint, blur=lay.rx * 0.3)
    mask = ImageChops.multiply(shade, head_mask)
    return Image.composite(Image.new("RGB", img.size, _scale(skin, 0.8)), img, mask)


def _eye_shape(
    x: float, y: float, w: float, up: float, low: float, tilt: float, n: int = 16
) -> tuple[list[Point], list[Point]]:
    """Upper and lower lid curves of an almond eye centred at (x, y); inner corner at the start."""
    upper: list[Point] = []
    lower: list[Point] = []
    for i in range(n + 1):
        t = -1.0 + 2.0 * i / n
        bump = max(0.0, 1 - t * t)
        # Upper lid peaks slightly towards the inner side.
        peak = bump**0.7 * (1 + 0.12 * t)
        upper.append((x + t * w, y + t * tilt - up * peak))
        lower.append((x + t * w, y + t * tilt + low * bump**0.9))
    return upper, lower


def _draw_eyes(img: Image.Image, lay: _Layout, spec: FaceSpec, skin: RGB, rng: random.Random) -> None:
    u = float(lay.size)
    eyes_open = spec.expr("eyes_open")
    smile = spec.expr("smile")
    raise_ = spec.expr("brow_raise")
    furrow = spec.expr("brow_furrow")
    tears = spec.expr("tears")
    iris_colour = rng.choice(_IRIS_COLOURS)
    gaze_x = rng.uniform(-0.25, 0.25)
    gaze_y = rng.uniform(-0.1, 0.15)
    lash = _mix((30, 22, 20), skin, 0.15)
    w = lay.eye_w
    openness = _clamp01(eyes_open * (1.0 + 0.35 * raise_) - 0.25 * smile - 0.15 * furrow)
    up = w * (0.04 + 0.56 * openness)
    low = w * (0.05 + 0.28 * min(1.0, openness * 1.5)) * (1.0 - 0.45 * smile)
    sclera = _mix((250, 248, 244), (235, 160, 150), 0.35 * tears)
    d = ImageDraw.Draw(img)
    for side in (-1, 1):
        ex = lay.cx + side * lay.eye_dx
        ey = lay.eye_y
        tilt = -w * 0.06  # outer corners slightly higher
        upper, lower = _eye_shape(ex, ey, w, up, low, tilt)
        if side < 0:  # mirror so the inner corner comes first for both eyes
            upper = [(2 * ex - x, y) for x, y in upper]
            lower = [(2 * ex - x, y) for x, y in lower]
        # Socket shadow above the eye.
        sock = _ellipse_pts(ex, ey - up * 0.3, w * 1.2, w * 0.55, math.pi * 1.05, math.pi * 1.95, 18)
        d.line(sock, fill=_scale(skin, 0.9), width=max(2, int(u * 0.008)), joint="curve")
        if openness > 0.08:
            box = (int(ex - w * 1.3), int(ey - w * 1.3), int(ex + w * 1.3) + 1, int(ey + w * 1.3) + 1)
            bw, bh = box[2] - box[0], box[3] - box[1]
            layer = Image.new("RGB", (bw, bh), sclera)
            ld = ImageDraw.Draw(layer)
            r = w * 0.5
            ix = ex - box[0] + side * -gaze_x * w * 0.3 + w * 0.0
            iy = ey - box[1] + gaze_y * w * 0.2 - up * 0.08
            ld.ellipse((ix - r, iy - r, ix + r, iy + r), fill=_scale(iris_colour, 0.7))
            ld.ellipse((ix - r * 0.85, iy - r * 0.85, ix + r * 0.85, iy + r * 0.85), fill=iris_colour)
            pr = r * (0.42 + 0.12 * raise_)
            ld.ellipse((ix - pr, iy - pr, ix + pr, iy + pr), fill=(14, 12, 12))
            hr = r * 0.18
            ld.ellipse(
                (ix + r * 0.25 - hr, iy - r * 0.35 - hr, ix + r * 0.25 + hr, iy - r * 0.35 + hr),
                fill=(255, 255, 255),
            )
            # Shadow of the upper lid on the eyeball.
            ld.line(
                [(x - box[0], y - box[1] + w * 0.06) for x, y in upper],
                fill=_mix(sclera, (120, 100, 100), 0.35),
                width=max(2, int(w * 0.14)),
            )
            mask = Image.new("L", (bw, bh), 0)
            ImageDraw.Draw(mask).polygon([(x - box[0], y - box[1]) for x, y in upper + lower[::-1]], fill=255)
            img.paste(layer, box[:2], mask)
        # Upper lid crease and lash line, lower lid.
        crease = [(x, y - w * (0.16 + 0.1 * openness)) for x, y in upper[2:-3]]
        d.line(crease, fill=_scale(skin, 0.72), width=max(2, int(u * 0.004)), joint="curve")
        d.line(
            upper, fill=lash, width=max(3, int(u * (0.008 + 0.003 * (spec.gender != "man")))), joint="curve"
        )
        # A few lashes at the outer corner.
        for k in range(3):
            x, y = upper[-2 - k * 2]
            d.line([(x, y), (x + side * w * 0.12, y - w * 0.12)], fill=lash, width=max(2, int(u * 0.004)))
        d.line(lower, fill=_scale(skin, 0.7), width=max(2, int(u * 0.003)), joint="curve")
        # Under-eye bags with age or fatigue.
        bag = _clamp01((spec.age - 35) / 40.0) + 0.5 * (1.0 - eyes_open)
        if bag > 0.15:
            curve = [(x, y + w * 0.25) for x, y in lower[3:-3]]
            d.line(
                curve,
                fill=_mix(skin, _scale(skin, 0.7), min(1.0, bag)),
                width=max(2, int(u * 0.003)),
                joint="curve",
            )


def _draw_brows(d: ImageDraw.ImageDraw, lay: _Layout, spec: FaceSpec, hair: RGB, rng: random.Random) -> None:
    u = float(lay.size)
    raise_ = spec.expr("brow_raise")
    furrow = spec.expr("brow_furrow")
    sad = _clamp01(spec.expr("frown") * 0.6 + spec.expr("tears") * 0.6) * (1.0 - furrow)
    thickness = u * (0.017 if spec.gender == "man" else 0.013) * rng.uniform(0.85, 1.15)
    colour = _mix(hair, (40, 30, 25), 0.35) if spec.age < 60 else hair
    w = lay.eye_w * 1.45
    for side in (-1, 1):
        base_x = lay.cx + side * lay.eye_dx
        lift = u * 0.05 * raise_
        inner = (
            base_x - side * w * (0.72 - 0.12 * furrow),
            lay.brow_y - lift - u * 0.028 * sad + u * 0.03 * furrow,
        )
        outer = (
            base_x + side * w * 0.9,
            lay.brow_y - lift * 0.7 + u * 0.004 - u * 0.008 * furrow + u * 0.01 * sad,
        )
        arch = u * (0.02 + 0.012 * raise_ - 0.01 * furrow)
        ctrl = (base_x + side * w * 0.25, min(inner[1], outer[1]) - arch)
        pts = _quad(inner, ctrl, outer, 20)
        d.polygon(_stroke(pts, thickness * 1.05, thickness, thickness * 0.35), fill=colour)


def _draw_nose(d: ImageDraw.ImageDraw, lay: _Layout, skin: RGB, rng: random.Random) -> None:
    u = float(lay.size)
    shadow = _scale(skin, 0.74)
    nw = lay.rx * rng.uniform(0.2, 0.26)
    y = lay.nose_y
    # Bridge shadow on one side.
    bridge = _cubic(
        (lay.cx - lay.eye_w * 0.55, lay.eye_y - lay.eye_w * 0.1),
        (lay.cx - nw * 0.45, lay.eye_y + (y - lay.eye_y) * 0.4),
        (lay.cx - nw * 0.55, y - u * 0.03),
        (lay.cx - nw * 0.7, y - u * 0.012),
        16,
    )
    d.line(bridge, fill=_mix(skin, shadow, 0.55), width=max(2, int(u * 0.004)), joint="curve")
    # Tip highlight and nostril wings.
    hl = u * 0.012
    d.ellipse(
        (lay.cx - hl, y - u * 0.03 - hl, lay.cx + hl, y - u * 0.03 + hl),
        fill=_mix(skin, (255, 255, 255), 0.18),
    )
    for side in (-1, 1):
        wing = _quad(
            (lay.cx + side * nw * 0.55, y - u * 0.028),
            (lay.cx + side * nw * 1.05, y - u * 0.01),
            (lay.cx + side * nw * 0.45, y + u * 0.004),
            12,
        )
        d.line(wing, fill=shadow, width=max(2, int(u * 0.0045)), joint="curve")
        nx = lay.cx + side * nw * 0.35
        d.ellipse((nx - u * 0.011, y - u * 0.006, nx + u * 0.011, y + u * 0.004), fill=_scale(skin, 0.55))
    d.line(
        _quad(
            (lay.cx - nw * 0.45, y + u * 0.004),
            (lay.cx, y + u * 0.012),
            (lay.cx + nw * 0.45, y + u * 0.004),
            10,
        ),
        fill=shadow,
        width=max(2, int(u * 0.003)),
    )


def _mouth_geometry(
    lay: _Layout, spec: FaceSpec
) -> tuple[list[Point], list[Point], list[Point], list[Point]]:
    """(outer upper lip, inner upper edge, inner lower edge, outer lower lip), each left -> right."""
    u = float(lay.size)
    smile = spec.expr("smile")
    frown = spec.expr("frown")
    opening = spec.expr("mouth_open")
    furrow = spec.expr("brow_furrow")
    w = lay.mouth_w * (1.0 + 0.32 * smile - 0.1 * frown - 0.12 * opening * (1 - smile))
    curve = u * (0.045 * smile - 0.035 * frown)  # corners up (+) or down (-) relative to the middle
    y = lay.mouth_y + u * 0.01 * frown - u * 0.006 * smile
    corner_y = y - curve
    gap = u * 0.075 * opening * (1.0 - 0.3 * furrow)
    lip_up = u * (0.016 - 0.006 * smile)
    lip_low = u * (0.022 - 0.006 * smile)
    lc, rc = (lay.cx - w, corner_y), (lay.cx + w, corner_y)
    # The lips' meeting line bends with the smile (a U) or frown (an arch).
    mid_ctrl_y = y + curve * 0.9
    inner_up = _quad(lc, (lay.cx, mid_ctrl_y - gap * 0.55), rc, 28)
    inner_low = _quad(lc, (lay.cx, mid_ctrl_y + gap * 1.45 + gap * 0.6 * smile), rc, 28)
    # Outer upper lip with a cupid's bow.
    outer_up: list[Point] = []
    for x, yy in inner_up:
        t = (x - lay.cx) / w
        bow = math.exp(-(((abs(t) - 0.22) / 0.2) ** 2)) - 0.55 * math.exp(-((t / 0.09) ** 2))
        taper = max(0.0, 1 - t * t) ** 0.6
        outer_up.append((x, yy - lip_up * taper * (0.75 + 0.45 * bow)))
    outer_low = [(x, yy + lip_low * max(0.0, 1 - ((x - lay.cx) / w) ** 2) ** 0.7) for x, yy in inner_low]
    return outer_up, inner_up, inner_low, outer_low


def mouth_box(size: int = 384) -> tuple[int, int, int, int]:
    """Pixel box (left, top, right, bottom) that contains the mouth in an output image of ``size``."""
    return (int(size * 0.33), int(size * 0.58), int(size * 0.67), int(size * 0.74))


def _draw_mouth(img: Image.Image, lay: _Layout, spec: FaceSpec, skin: RGB, rng: random.Random) -> None:
    u = float(lay.size)
    d = ImageDraw.Draw(img)
    opening = spec.expr("mouth_open")
    smile = spec.expr("smile")
    lip_base = rng.choice(((176, 82, 84), (168, 92, 88), (150, 70, 72), (190, 96, 100)))
    lip = _mix(skin, lip_base, 0.45 if spec.gender == "man" else 0.62)
    lip_dark = _scale(lip, 0.82)
    outer_up, inner_up, inner_low, outer_low = _mouth_geometry(lay, spec)
    if opening > 0.04:
        pts = inner_up + inner_low[::-1]
        xs = [p[0] for p in pts]
        ys = [p[1] for p in pts]
        box = (int(min(xs)) - 2, int(min(ys)) - 2, int(max(xs)) + 3, int(max(ys)) + 3)
        bw, bh = box[2] - box[0], box[3] - box[1]
        layer = Image.new("RGB", (bw, bh), (70, 22, 28))
        ld = ImageDraw.Draw(layer)
        mid_up = min(p[1] for p in inner_up) - box[1]
        teeth_h = u * 0.022
        # Upper teeth follow the upper lip; visible more when smiling.
        ld.polygon(
            [(x - box[0], y - box[1] - 3) for x, y in inner_up]
            + [(x - box[0], y - box[1] + teeth_h * (0.6 + 0.6 * smile)) for x, y in inner_up[::-1]],
            fill=(246, 242, 232),
        )
        for k in range(-3, 4):  # faint tooth separations
            tx = lay.cx + k * lay.mouth_w * 0.17 - box[0]
            ld.line(
                [(tx, mid_up), (tx, mid_up + teeth_h * 0.8)],
                fill=(214, 208, 198),
                width=max(1, int(u * 0.002)),
            )
        # Tongue at the bottom.
        ld.ellipse((bw * 0.22, bh * 0.62, bw * 0.78, bh * 1.3), fill=(178, 78, 86))
        mask = Image.new("L", (bw, bh), 0)
        ImageDraw.Draw(mask).polygon([(x - box[0], y - box[1]) for x, y in pts], fill=255)
        img.paste(layer, box[:2], mask)
    d.polygon(outer_up + inner_up[::-1], fill=lip_dark)
    d.polygon(inner_low + outer_low[::-1], fill=lip)
    # Lower lip highlight.
    mid = len(outer_low) // 2
    hx, hy = outer_low[mid]
    iy = inner_low[mid][1]
    r = (hy - iy) * 0.3
    if r > 1:
        d.ellipse(
            (hx - lay.mouth_w * 0.3, (hy + iy) / 2 - r, hx + lay.mouth_w * 0.3, (hy + iy) / 2 + r * 0.6),
            fill=_mix(lip, (255, 255, 255), 0.14),
        )
    d.line(inner_up, fill=_scale(lip, 0.55), width=max(2, int(u * 0.004)), joint="curve")
    if opening <= 0.04:
        d.line(inner_low, fill=_scale(lip, 0.55), width=max(2, int(u * 0.003)), joint="curve")
    # Dimples at the corners when smiling, shadow under the lower lip.
    for pts, side in ((inner_up, -1), (inner_up, 1)):
        cx, cy = pts[0] if side < 0 else pts[-1]
        if smile > 0.3:
            d.line(
                _quad(
                    (cx + side * u * 0.004, cy - u * 0.012),
                    (cx + side * u * 0.016, cy),
                    (cx + side * u * 0.006, cy + u * 0.014),
                    8,
                ),
                fill=_scale(skin, 0.78),
                width=max(2, int(u * 0.004)),
            )
    chin_y = max(p[1] for p in outer_low) + u * 0.025
    d.line(
        _quad(
            (lay.cx - lay.mouth_w * 0.4, chin_y),
            (lay.cx, chin_y + u * 0.008),
            (lay.cx + lay.mouth_w * 0.4, chin_y),
            10,
        ),
        fill=_mix(skin, _scale(skin, 0.78), 0.6),
        width=max(2, int(u * 0.004)),
    )


def _draw_facial_hair(
    img: Image.Image,
    lay: _Layout,
    spec: FaceSpec,
    hair: RGB,
    skin: RGB,
    rng: random.Random,
    moustache: list[RGB],
) -> None:
    """Stubble or a beard (drawn under the mouth); appends the colour to ``moustache`` if one is wanted."""
    if spec.gender != "man" or rng.random() > 0.38:
        return
    kind = rng.choice(("stubble", "beard", "moustache"))
    u = float(lay.size)
    outline = lay.head_outline(120)
    jaw = [p for p in outline if p[1] > lay.nose_y + u * 0.02]
    jaw.sort(key=lambda p: math.atan2(p[1] - lay.cy, p[0] - lay.cx))
    if kind in ("stubble", "beard"):
        inner = _cubic(
            (lay.cx - lay.rx * 0.86, lay.nose_y + u * 0.02),
            (lay.cx - lay.rx * 0.5, lay.mouth_y + u * 0.05),
            (lay.cx + lay.rx * 0.5, lay.mouth_y + u * 0.05),
            (lay.cx + lay.rx * 0.86, lay.nose_y + u * 0.02),
            20,
        )
        shape = jaw + inner
        if kind == "stubble":
            mask = Image.new("L", img.size, 0)
            ImageDraw.Draw(mask).polygon(shape, fill=90)
            mask = mask.filter(ImageFilter.BoxBlur(int(u * 0.01)))
            img.paste(Image.new("RGB", img.size, _mix(skin, hair, 0.7)), (0, 0), mask)
            return
        ImageDraw.Draw(img).polygon(shape, fill=hair)
    if kind in ("beard", "moustache"):
        moustache.append(hair)


def _draw_moustache(img: Image.Image, lay: _Layout, spec: FaceSpec, colour: RGB) -> None:
    u = float(lay.size)
    outer_up = _mouth_geometry(lay, spec)[0]
    d = ImageDraw.Draw(img)
    y0 = lay.nose_y + u * 0.006
    # Lower edge just over the upper lip, following its curve and drooping a little past the corners.
    left, right = outer_up[0], outer_up[-1]
    ld = (left[0] - u * 0.014, left[1] + u * 0.018)
    rd = (right[0] + u * 0.014, right[1] + u * 0.018)
    bottom = [rd, *[(x, y + u * 0.005) for x, y in reversed(outer_up[2:-2])], ld]
    top = _cubic(
        ld, (left[0] + u * 0.01, y0 + u * 0.006), (lay.cx - u * 0.03, y0 - u * 0.004), (lay.cx, y0), 14
    )
    top += _cubic(
        (lay.cx, y0), (lay.cx + u * 0.03, y0 - u * 0.004), (right[0] - u * 0.01, y0 + u * 0.006), rd, 14
    )[1:]
    d.polygon(bottom + top[1:-1], fill=colour)
    y1 = outer_up[len(outer_up) // 2][1]
    d.line(
        _quad((lay.cx, y0 + u * 0.004), (lay.cx + u * 0.002, (y0 + y1) / 2), (lay.cx, y1), 6),
        fill=_scale(colour, 0.75),
        width=max(2, int(u * 0.003)),
    )


def _overlay_details(
    img: Image.Image, lay: _Layout, spec: FaceSpec, skin: RGB, rng: random.Random
) -> Image.Image:
    """Semi-transparent details: wrinkles, smile lines, blush and tears."""
    size = lay.size
    u = float(size)
    over = Image.new("RGBA", img.size, (0, 0, 0, 0))
    d = ImageDraw.Draw(over)
    age = _clamp01((spec.age - 32) / 45.0)
    smile = spec.expr("smile")
    furrow = spec.expr("brow_furrow")
    raise_ = spec.expr("brow_raise")
    line = _scale(skin, 0.55)
    width = max(2, int(u * 0.0035))
    # Forehead lines: age and raised brows.
    fa = int(200 * _clamp01(age * 0.9 + raise_ * 0.45))
    if fa > 20:
        for k in range(3):
            y = lay.brow_y - u * (0.04 + 0.024 * k) - u * 0.03 * raise_
            pts = _quad(
                (lay.cx - lay.rx * 0.45, y + u * 0.004),
                (lay.cx, y - u * 0.01),
                (lay.cx + lay.rx * 0.45, y + u * 0.004),
                16,
            )
            d.line(pts, fill=(*line, max(0, fa - 50 * k)), width=width, joint="curve")
    # Frown lines between the brows.
    if furrow > 0.3:
        for side in (-1, 1):
            x = lay.cx + side * u * 0.013
            top = lay.brow_y + u * 0.018
            d.line(
                _quad((x, top), (x + side * u * 0.005, top + u * 0.02), (x, top + u * 0.045), 8),
                fill=(*line, int(220 * furrow)),
                width=width,
            )
    # Nasolabial folds: age and smiling.
    na = int(230 * _clamp01(age * 0.7 + smile * 0.6))
    if na > 20:
        mw = lay.mouth_w * (1.0 + 0.3 * smile)
        for side in (-1, 1):
            pts = _quad(
                (lay.cx + side * lay.rx * 0.3, lay.nose_y - u * 0.02),
                (lay.cx + side * (mw + u * 0.03), lay.nose_y + u * 0.02),
                (lay.cx + side * (mw + u * 0.02), lay.mouth_y + u * 0.03),
                16,
            )
            d.line(pts, fill=(*line, na), width=width + 1, joint="curve")
    # Crow's feet.
    ca = int(200 * _clamp01(age * 1.1 + smile * 0.3 - 0.25))
    if ca > 20:
        for side in (-1, 1):
            x = lay.cx + side * (lay.eye_dx + lay.eye_w * 1.25)
            for k in (-1, 0, 1):
                d.line(
                    [(x, lay.eye_y + k * u * 0.01), (x + side * u * 0.028, lay.eye_y + k * u * 0.02)],
                    fill=(*line, ca),
                    width=width,
                )
    # Jowl / neck line for older faces.
    if age > 0.55:
        for side in (-1, 1):
            x = lay.cx + side * lay.rx * 0.55
            d.line(
                _quad(
                    (x, lay.mouth_y + u * 0.02),
                    (x + side * u * 0.01, lay.mouth_y + u * 0.06),
                    (x - side * u * 0.01, lay.mouth_y + u * 0.09),
                    10,
                ),
                fill=(*line, int(150 * age)),
                width=width,
            )
    img = Image.alpha_composite(img.convert("RGBA"), over).convert("RGB")
    # Blush: soft red cheeks (also a little on the nose).
    blush = spec.expr("blush")
    base_blush = 0.12 if spec.gender != "man" else 0.04
    amount = _clamp01(blush + base_blush)
    if amount > 0.02:

        def paint(dd: ImageDraw.ImageDraw, k: float) -> None:
            for side in (-1, 1):
                bx = lay.cx + side * lay.eye_dx * 1.05
                by = lay.eye_y + (lay.nose_y - lay.eye_y) * 0.75
                r = lay.rx * 0.28
                dd.ellipse(
                    ((bx - r) * k, (by - r * 0.7) * k, (bx + r) * k, (by + r * 0.7) * k),
                    fill=int(190 * amount),
                )
            rn = lay.rx * 0.1
            dd.ellipse(
                ((lay.cx - rn) * k, (lay.nose_y - rn * 1.6) * k, (lay.cx + rn) * k, (lay.nose_y) * k),
                fill=int(90 * amount),
            )

        mask = _soft_mask(size, paint, blur=lay.rx * 0.2)
        red = _mix(skin, (225, 70, 80), 0.55 if spec.skin_tone < 6 else 0.4)
        img = Image.composite(Image.new("RGB", img.size, red), img, mask)
    # Tears: glistening streaks down the cheeks.
    tears = spec.expr("tears")
    if tears > 0.15:
        over = Image.new("RGBA", img.size, (0, 0, 0, 0))
        d = ImageDraw.Draw(over)
        alpha = int(80 + 150 * tears)
        for side in (-1, 1) if tears > 0.4 else (rng.choice((-1, 1)),):
            x0 = lay.cx + side * (lay.eye_dx - lay.eye_w * 0.2)
            y0 = lay.eye_y + lay.eye_w * 0.35
            length = u * (0.06 + 0.1 * tears)
            path = _quad(
                (x0, y0), (x0 + side * u * 0.02, y0 + length * 0.5), (x0 + side * u * 0.01, y0 + length), 14
            )
            d.polygon(_stroke(path, u * 0.006, u * 0.01, u * 0.008), fill=(200, 225, 245, alpha))
            ex, ey = path[-1]
            r = u * 0.011
            d.polygon(
                [
                    (ex - r, ey),
                    (ex, ey - r * 2.2),
                    (ex + r, ey),
                    *_ellipse_pts(ex, ey, r, r, 0, math.pi, 10)[1:-1],
                ],
                fill=(190, 220, 245, alpha),
            )
            d.ellipse(
                (ex - r * 0.45, ey - r * 0.3, ex - r * 0.05, ey + r * 0.2),
                fill=(255, 255, 255, min(255, alpha + 30)),
            )
            d.line(path[:-2], fill=(255, 255, 255, alpha // 2), width=max(1, int(u * 0.002)))
        img = Image.alpha_composite(img.convert("RGBA"), over).convert("RGB")
    return img


def draw_face(spec: FaceSpec, size: int = 384) -> Image.Image:
    """Draw ``spec`` as a square RGB portrait of ``size`` pixels; deterministic for a given spec."""
    if size < 32:
        raise ValueError(f"size must be at least 32, got {size}")
    canvas = size * 2  # supersampled, downsampled with LANCZOS at the end
    rng = random.Random(f"emorate-demo-face:{spec.seed}")
    skin = SKIN_TONES[spec.skin_tone]
    # Small per-face variation of the tone so two faces of one tone differ a little.
    skin = _mix(skin, rng.choice(((255, 200, 170), (200, 170, 120), (180, 120, 100))), rng.uniform(0.0, 0.08))
    lay = _layout(canvas, rng)
    hair = _hair_colour(spec, rng)
    style = _hair_style(spec, rng)

    img = _background(canvas, rng)
    d = ImageDraw.Draw(img)
    if style in ("long", "curly_long", "side_part_long"):
        _draw_body(img, lay, skin, rng)
        _draw_hair_back(d, lay, style, hair, rng)
    else:
        _draw_hair_back(d, lay, style, hair, rng)
        _draw_body(img, lay, skin, rng)
    if style not in ("long", "curly_long", "side_part_long", "bob") or rng.random() < 0.35:
        _draw_ears(d, lay, skin)
    head = lay.head_outline()
    d.polygon(head, fill=skin)
    head_mask = Image.new("L", img.size, 0)
    ImageDraw.Draw(head_mask).polygon(head, fill=255)
    img = _shade_head(img, lay, head_mask, skin, light_dx=rng.uniform(-0.12, 0.12) * lay.rx)
    moustache: list[RGB] = []
    _draw_facial_hair(img, lay, spec, hair, skin, rng, moustache)
    img = _overlay_details(img, lay, spec, skin, rng)
    d = ImageDraw.Draw(img)
    _draw_nose(d, lay, skin, rng)
    _draw_eyes(img, lay, spec, skin, rng)
    _draw_brows(ImageDraw.Draw(img), lay, spec, hair, rng)
    _draw_mouth(img, lay, spec, skin, rng)
    if moustache:
        _draw_moustache(img, lay, spec, moustache[0])
    _draw_hair_front(img, lay, style, hair, skin, rng)
    return img.resize((size, size), Image.Resampling.LANCZOS)


def face_jpeg_bytes(spec: FaceSpec, size: int = 384, quality: int = 88) -> bytes:
    """The face of ``spec`` encoded as a baseline JPEG (deterministic bytes for a given spec)."""
    buf = io.BytesIO()
    draw_face(spec, size).save(buf, format="JPEG", quality=quality, optimize=False, progressive=False)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------------
# Simulated ratings
# --------------------------------------------------------------------------------------------------


def _features(spec: FaceSpec) -> dict[str, float]:
    s = spec.expr("smile")
    f = spec.expr("frown")
    br = spec.expr("brow_raise")
    bf = spec.expr("brow_furrow")
    mo = spec.expr("mouth_open")
    t = spec.expr("tears")
    b = spec.expr("blush")
    ec = _clamp01((0.7 - spec.expr("eyes_open")) / 0.7)  # eye closure beyond a relaxed gaze
    neutral = _clamp01(1.0 - 1.5 * max(s, f, br, bf, mo, t, b, ec))
    return {"s": s, "f": f, "br": br, "bf": bf, "mo": mo, "t": t, "b": b, "ec": ec, "n": neutral}


# How strongly each emotion is suggested by the face (0..1 before clamping).
_LATENT: dict[str, Callable[[dict[str, float]], float]] = {
    "Amusement": lambda x: 0.75 * x["s"] + 0.35 * x["s"] * x["mo"],
    "Elation": lambda x: 0.55 * x["s"] + 0.45 * x["s"] * x["mo"],
    "Pleasure/Ecstasy": lambda x: 0.35 * x["s"] + 0.5 * x["s"] * x["ec"],
    "Contentment": lambda x: 0.65 * x["s"] * (1 - x["mo"]) + 0.2 * x["n"],
    "Thankfulness/Gratitude": lambda x: 0.35 * x["s"] + 0.3 * x["s"] * x["t"],
    "Affection": lambda x: 0.4 * x["s"] * (1 - x["mo"]) + 0.25 * x["b"],
    "Infatuation": lambda x: 0.3 * x["b"] + 0.3 * x["s"] * x["b"],
    "Hope/Enthusiasm/Optimism": lambda x: 0.5 * x["s"] * (1 - x["ec"]) + 0.2 * x["s"] * x["br"],
    "Triumph": lambda x: 0.45 * x["s"] * x["mo"] * (1 - x["b"]),
    "Pride": lambda x: 0.4 * x["s"] * (1 - x["b"]) * (1 - x["mo"]),
    "Interest": lambda x: 0.35 * x["br"] * (1 - x["mo"]) + 0.2 * (1 - x["ec"]) * (1 - x["f"]) + 0.1 * x["n"],
    "Awe": lambda x: 0.5 * x["br"] * x["mo"] * (1 - x["bf"]),
    "Astonishment/Surprise": lambda x: 0.55 * x["br"] + 0.45 * x["br"] * x["mo"] - 0.2 * x["f"],
    "Concentration": lambda x: 0.5 * x["bf"] * (1 - x["f"]) + 0.15 * x["n"],
    "Contemplation": lambda x: 0.4 * x["n"] + 0.25 * x["bf"] * (1 - x["mo"]) * (1 - x["f"]),
    "Relief": lambda x: 0.3 * x["s"] * x["ec"] + 0.2 * x["s"] * x["mo"],
    "Longing": lambda x: 0.3 * x["br"] * x["f"] + 0.25 * x["t"],
    "Teasing": lambda x: 0.35 * x["s"] * (1 - x["mo"]) * (1 - x["b"]),
    "Impatience and Irritability": lambda x: 0.55 * x["bf"] * x["f"] + 0.3 * x["bf"],
    "Sexual Lust": lambda x: 0.25 * x["b"] * x["ec"] + 0.1 * x["b"] * x["s"],
    "Doubt": lambda x: 0.3 * x["bf"] * (1 - x["mo"]) * (1 - x["s"]) + 0.2 * x["f"] * (1 - x["t"]),
    "Fear": lambda x: 0.6 * x["br"] * x["bf"] + 0.35 * x["br"] * x["mo"] * (1 - x["s"]),
    "Distress": lambda x: 0.5 * x["t"] + 0.35 * x["br"] * x["bf"] + 0.2 * x["f"] * x["bf"],
    "Confusion": lambda x: 0.4 * x["bf"] * x["br"] + 0.2 * x["bf"] * (1 - x["f"]),
    "Embarrassment": lambda x: 0.6 * x["b"] * (1 - x["f"]) + 0.2 * x["b"] * x["s"],
    "Shame": lambda x: 0.4 * x["b"] * x["f"] + 0.25 * x["ec"] * x["f"] + 0.15 * x["b"],
    "Disappointment": lambda x: 0.5 * x["f"] * (1 - x["bf"]) + 0.15 * x["f"],
    "Sadness": lambda x: 0.65 * x["t"] + 0.45 * x["f"] * (1 - x["bf"]),
    "Bitterness": lambda x: 0.35 * x["f"] * x["bf"],
    "Contempt": lambda x: 0.3 * x["f"] * x["bf"] * (1 - x["t"]) * (1 - x["mo"]),
    "Disgust": lambda x: 0.4 * x["f"] * x["bf"] + 0.25 * x["ec"] * x["f"],
    "Anger": lambda x: 0.75 * x["bf"] * x["f"] + 0.3 * x["bf"] * x["mo"],
    "Malevolence/Malice": lambda x: 0.35 * x["bf"] * x["s"] + 0.2 * x["bf"] * x["f"],
    "Sourness": lambda x: 0.35 * x["f"] * (1 - x["t"]),
    "Pain": lambda x: 0.45 * x["bf"] * x["ec"] + 0.3 * x["t"] * x["bf"],
    "Helplessness": lambda x: 0.45 * x["t"] * x["br"] + 0.3 * x["f"] * x["br"],
    "Fatigue/Exhaustion": lambda x: 0.7 * x["ec"] * (1 - x["s"]),
    "Emotional Numbness": lambda x: 0.45 * x["n"],
    "Intoxication/Altered States of Consciousness": lambda x: (
        0.35 * x["ec"] * x["s"] + 0.2 * x["ec"] * x["b"]
    ),
    "Jealousy & Envy": lambda x: 0.3 * x["f"] * x["bf"] * (1 - x["t"]),
}
assert tuple(_LATENT) == EMOTIONS


def simulated_intensities(spec: FaceSpec, rng: random.Random, scale_max: int = 7) -> dict[str, int]:
    """One simulated expert's intensities (0..scale_max) for all 40 emotions of a face.

    The face's expression suggests each emotion to some degree; the simulated rater perceives
    that with personal noise and leniency, ignores what stays below their threshold (so most
    emotions are 0, as in real annotations) and occasionally notices something unexpected.
    Different ``rng`` states give raters who disagree realistically.
    """
    if scale_max < 1:
        raise ValueError(f"scale_max must be at least 1, got {scale_max}")
    x = _features(spec)
    leniency = rng.gauss(0.0, 0.08)  # some raters see more in a face than others
    threshold = 0.16 + rng.uniform(-0.04, 0.04)
    gain = rng.uniform(0.85, 1.2)
    out: dict[str, int] = {}
    for name in EMOTIONS:
        latent = _clamp01(_LATENT[name](x))
        value = latent * gain + leniency * (0.25 + latent) + rng.gauss(0.0, 0.04 + 0.1 * latent)
        if rng.random() < 0.05:  # an idiosyncratic, mild reading
            value = max(value, threshold + rng.uniform(0.0, 0.2))
        if value < threshold:
            out[name] = 0
            continue
        strength = (value - threshold) / (1.0 - threshold)
        out[name] = max(1, min(scale_max, 1 + int(strength * scale_max)))
    return out
