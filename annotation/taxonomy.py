"""The EmoNet-Face taxonomy: 40 emotions, their descriptor words, 7 groups, scales and aliases.

PURE: no Django imports. The data ships inside the project (annotation/data/guide.json, taken
from the EmoNet-Face authors' repository; data CC BY 4.0, see annotation/data/README.md).

The order of EMOTIONS is the order of the authors' guide and is the column order of every stored
intensity vector (Rating.values[i] is the intensity of EMOTIONS[i]). It must never change for a
given TAXONOMY_VERSION; a changed taxonomy gets a new version.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final

DATA_FILE: Final = Path(__file__).resolve().parent / "data" / "guide.json"
TAXONOMY_VERSION: Final = "emonet-face-1"


@dataclass(frozen=True)
class Emotion:
    index: int
    name: str
    descriptors: tuple[str, ...]
    group: str

    @property
    def slug(self) -> str:
        return emotion_slug(self.name)


@dataclass(frozen=True)
class Group:
    name: str
    emotions: tuple[str, ...]


@dataclass(frozen=True)
class Taxonomy:
    version: str
    emotions: tuple[Emotion, ...]
    groups: tuple[Group, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.emotions)

    def index_of(self, name: str) -> int:
        """Index of an emotion given its exact name or a known alias; KeyError names the problem."""
        idx = _index_map(self).get(canonical_key(name))
        if idx is None:
            raise KeyError(f"unknown emotion {name!r}")
        return idx

    def resolve(self, name: str) -> Emotion:
        return self.emotions[self.index_of(name)]


# Spellings seen in the authors' files (and common variants) -> the exact taxonomy name.
ALIASES: Final[dict[str, str]] = {
    "Hopelessness": "Helplessness",
    "Jealousy / Envy": "Jealousy & Envy",
    "Jealousy/Envy": "Jealousy & Envy",
    "Jealousy and Envy": "Jealousy & Envy",
    "Impatience & Irritability": "Impatience and Irritability",
    "Impatience/Irritability": "Impatience and Irritability",
    "Intoxication / Altered States of Consciousness": "Intoxication/Altered States of Consciousness",
    "Malevolence / Malice": "Malevolence/Malice",
    "Astonishment / Surprise": "Astonishment/Surprise",
    "Fatigue / Exhaustion": "Fatigue/Exhaustion",
    "Pleasure / Ecstasy": "Pleasure/Ecstasy",
    "Thankfulness / Gratitude": "Thankfulness/Gratitude",
    "Hope / Enthusiasm / Optimism": "Hope/Enthusiasm/Optimism",
}


def canonical_key(name: str) -> str:
    """Case- and whitespace-insensitive key used to match names and aliases."""
    return re.sub(r"\s+", " ", name.strip()).casefold()


def emotion_slug(name: str) -> str:
    """Lower-cased name with spaces and slashes as underscores (the EmpathicInsight head file stem)."""
    return name.lower().replace("/", "_").replace(" ", "_")


@cache
def _index_map(tax: Taxonomy) -> dict[str, int]:
    out = {canonical_key(e.name): e.index for e in tax.emotions}
    for alias, target in ALIASES.items():
        out.setdefault(canonical_key(alias), out[canonical_key(target)])
    return out


@cache
def load() -> Taxonomy:
    """The shipped taxonomy. Raises ValueError if the data file is inconsistent."""
    raw = json.loads(DATA_FILE.read_text(encoding="utf-8"))["options"]
    labels: dict[str, list[str]] = raw["labels"]
    buttons: dict[str, list[str]] = raw["buttons"]
    group_of: dict[str, str] = {}
    for group, members in buttons.items():
        for m in members:
            if m in group_of:
                raise ValueError(f"emotion {m!r} is in two groups")
            if m not in labels:
                raise ValueError(f"group {group!r} names unknown emotion {m!r}")
            group_of[m] = group
    missing = [n for n in labels if n not in group_of]
    if missing:
        raise ValueError(f"emotions without a group: {missing}")
    emotions = tuple(
        # The guide repeats some descriptor words; show each once, in the guide's order.
        Emotion(index=i, name=n, descriptors=tuple(dict.fromkeys(labels[n])), group=group_of[n])
        for i, n in enumerate(labels)
    )
    groups = tuple(Group(name=g, emotions=tuple(members)) for g, members in buttons.items())
    return Taxonomy(version=TAXONOMY_VERSION, emotions=emotions, groups=groups)


EMOTIONS: Final[tuple[str, ...]] = load().names
N_EMOTIONS: Final = len(EMOTIONS)


@dataclass(frozen=True)
class Scale:
    """An intensity scale 0..max with anchor labels for some points."""

    max: int
    anchors: tuple[tuple[int, str], ...]

    @property
    def values(self) -> range:
        return range(0, self.max + 1)

    def check(self, value: int) -> None:
        if not 0 <= value <= self.max:
            raise ValueError(f"value {value} is off the scale 0..{self.max}")


def default_anchors(scale_max: int) -> dict[int, str]:
    """The EmoNet-Face anchors: 0 not present, 1 weakly present, max very strong."""
    if scale_max < 1:
        raise ValueError("a scale needs at least two points (max >= 1)")
    anchors = {0: "not present", scale_max: "very strong"}
    if scale_max >= 2:
        anchors[1] = "weakly present"
    return dict(sorted(anchors.items()))


def parse_value(raw: str, scale_max: int) -> int:
    """Parse one rating value from text; ValueError names what is wrong and the allowed range.

    Accepts integers (also "3.0"); for a 0..1 scale also true/false/yes/no.
    """
    text = raw.strip()
    if scale_max == 1 and text.lower() in {"true", "yes", "y", "false", "no", "n"}:
        return 1 if text.lower() in {"true", "yes", "y"} else 0
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"value {raw!r} is not a number (allowed: integers 0..{scale_max})") from None
    if not number.is_integer():
        raise ValueError(f"value {raw!r} is not a whole number (allowed: integers 0..{scale_max})")
    value = int(number)
    if not 0 <= value <= scale_max:
        raise ValueError(f"value {value} is off the scale (allowed: 0..{scale_max})")
    return value
