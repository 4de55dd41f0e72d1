"""The array splitter (assign_splits_frame, balance_table_frame: #21, a million images without a
Python object per image) gives exactly what the per-item reference (assign_splits, balance_table)
gives, on seeded random inputs covering every branch: groups of varied size, sticky items (also
overfilling a split), emotion presence, the model-independent test split, unknown values."""

from __future__ import annotations

import dataclasses
import hashlib
import random

import numpy as np
import pytest

from annotation.splits import (
    SplitConfig,
    SplitItem,
    assign_splits,
    assign_splits_frame,
    balance_table,
    balance_table_frame,
    frame_ages,
    frame_values,
    split_frame,
)

EMOTIONS = ("Anger", "Joy", "Awe", "Fear", "Sadness", "Pride")


def _items(rng: random.Random, n: int, *, prompts: bool) -> list[SplitItem]:
    out = []
    for i in range(n):
        out.append(SplitItem(
            sha256=hashlib.sha256(f"{rng.random()}:{i}".encode()).hexdigest(),
            ethnicity=rng.choice(["A", "B", "C", " C ", ""]),
            gender=rng.choice(["man", "woman", "non-binary person", ""]),
            age=rng.choice([None, 19, 25, 33, 47, 61, 72]),
            prompt=(f"p{rng.randrange(n // 4 + 1)}" if prompts and rng.random() < 0.7 else rng.choice(["", " "])),
            present=tuple(e for e in EMOTIONS if rng.random() < 0.25),
            model_independent=rng.random() < 0.4,
        ))
    return out


CASES = [
    (SplitConfig(seed=3), False, 0.0),
    (SplitConfig(seed=5, presence=True), False, 0.0),
    (SplitConfig(seed=7, group_key="prompt", presence=True), True, 0.0),
    (SplitConfig(seed=11, group_key="prompt", presence=True), True, 0.3),
    (SplitConfig(seed=13, presence=True, test_from_model_independent=True), False, 0.0),
    (SplitConfig(seed=17, group_key="prompt", presence=True, test_from_model_independent=True), True, 0.2),
    (SplitConfig(seed=19, fractions=(("train", 0.6), ("test", 0.4)), strata=("gender",), age_bucket_width=5,
                 balance_groups=True), False, 0.5),
]


@pytest.mark.parametrize(("config", "prompts", "sticky_share"), CASES)
def test_the_array_splitter_gives_the_reference_assignment_and_balance(config, prompts, sticky_share):
    rng = random.Random(config.seed)
    items = _items(rng, 900, prompts=prompts)
    names = config.split_names
    # sticky items, skewed towards the last split so that it is overfilled in some strata
    previous = {it.sha256: (names[-1] if rng.random() < 0.7 else rng.choice(names))
                for it in items if rng.random() < sticky_share}
    previous["not-in-this-release"] = names[0]
    expected = assign_splits(items, config, previous=previous)
    frame = split_frame(items, config, EMOTIONS)
    codes = assign_splits_frame(frame, config, previous=previous)
    got = {it.sha256: names[int(c)] for it, c in zip(items, codes.tolist(), strict=True)}
    assert got == expected
    # the same with the frame's sha256s as bytes and the earlier splits as arrays (the release build's way)
    as_bytes = dataclasses.replace(frame, sha256=np.asarray(frame.sha256).astype("S64"))
    arrays = (np.array(list(previous), dtype="S64"), np.array(list(previous.values())))
    assert np.array_equal(assign_splits_frame(as_bytes, config, previous=arrays), codes)
    assert len(set(got.values())) == len(names)
    keys = ("ethnicity", "gender", "age")
    frame_b = split_frame(items, SplitConfig(strata=keys, age_bucket_width=config.age_bucket_width), EMOTIONS)
    assert balance_table_frame(frame_b, codes, names, keys, presence=True) == balance_table(
        items, expected, keys, age_bucket_width=config.age_bucket_width, presence=True)


def test_frame_columns_map_values_as_split_items_do():
    raw = np.array(["A", " A", "", "  ", "B "], dtype=object)
    values, codes = frame_values(raw)
    assert [values[c] for c in codes.tolist()] == [SplitItem("x", ethnicity=str(r)).value("ethnicity") for r in raw]
    ages = np.array([-1, 19, 20, 29, 70])
    values, codes = frame_ages(ages, 10)
    assert [values[c] for c in codes.tolist()] == ["unknown", "10-19", "20-29", "20-29", "70-79"]


def test_the_array_splitter_refuses_what_the_reference_refuses():
    items = _items(random.Random(1), 20, prompts=False)
    config = SplitConfig()
    with pytest.raises(ValueError, match="appears twice"):
        assign_splits_frame(split_frame([*items, items[3]], config), config)
    with pytest.raises(ValueError, match="which the config does not have"):
        assign_splits_frame(split_frame(items, config), config, previous={items[2].sha256: "holdout"})


def _stream_targets_plain(quotas, sizes):
    """_stream_targets as first written (any number of splits), the reference for its unrolled loop."""
    import math

    k = len(quotas[0]) if quotas else 0
    carry = [0.0] * k
    out = []
    for q, size in zip(quotas, sizes, strict=True):
        got = [0] * k
        total = sum(q)
        if size and total > 0:
            share = [x / total for x in q]
            for _ in range(size):
                best, best_carry = 0, -math.inf
                for j in range(k):
                    carry[j] += share[j]
                    if carry[j] > best_carry + 1e-12:
                        best, best_carry = j, carry[j]
                carry[best] -= 1.0
                got[best] += 1
        out.append(got)
    return out


def test_stream_targets_for_three_splits_is_the_plain_loop():
    from annotation.splits import _stream_targets

    rng = random.Random(4)
    for _ in range(30):
        m = rng.randrange(1, 40)
        quotas = [[rng.choice([0.0, rng.random() * 50, 0.1 * rng.randrange(200)]) for _ in range(3)] for _ in range(m)]
        sizes = [rng.randrange(0, 60) for _ in range(m)]
        assert _stream_targets(quotas, sizes) == _stream_targets_plain(quotas, sizes)
