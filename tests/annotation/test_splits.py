"""Splits: deterministic, seeded, sticky, grouped, stratified (pure functions: no database)."""

from __future__ import annotations

import hashlib
import random
from collections import Counter, defaultdict

import pytest

from annotation.splits import (
    DEFAULT_FRACTIONS,
    MISSING,
    PRESENCE_KEY,
    SplitConfig,
    SplitItem,
    assign_splits,
    balance_table,
    balance_tolerance,
    check_balance,
)

# Skewed like generated face sets: a few majority labels, several rare ones.
ETHNICITIES = ["White"] * 40 + ["East Asian"] * 20 + ["Black"] * 15 + ["South Asian"] * 10 + ["Latino"] * 8 + \
    ["Middle Eastern"] * 4 + ["Pacific Islander"] * 2 + ["Native American"] * 1
GENDERS = ["woman"] * 6 + ["man"] * 3 + ["non-binary person"]
AGES = [20] * 4 + [30] * 3 + [40] * 2 + [50, 60, 70, 80]


def synthetic(n: int, *, start: int = 0, seed: int = 7, per_prompt: int = 4) -> list[SplitItem]:
    rng = random.Random(seed + start)
    items = []
    for i in range(start, start + n):
        prompt = i // per_prompt  # images of one prompt share their demographics, as generated faces do
        prng = random.Random(prompt * 7919 + seed)
        items.append(SplitItem(
            sha256=hashlib.sha256(f"img{i}".encode()).hexdigest(),
            ethnicity=prng.choice(ETHNICITIES), gender=prng.choice(GENDERS), age=prng.choice(AGES),
            prompt=f"a photo of person {prompt}",
        ))
    rng.shuffle(items)
    return items


ITEMS = synthetic(5000)


def test_same_seed_same_assignment_other_seed_other_assignment():
    a = assign_splits(ITEMS, SplitConfig(seed=1))
    b = assign_splits(list(reversed(ITEMS)), SplitConfig(seed=1))  # input order does not matter
    c = assign_splits(ITEMS, SplitConfig(seed=2))
    assert a == b
    assert set(a) == {it.sha256 for it in ITEMS}
    changed = sum(a[s] != c[s] for s in a)
    assert changed > 500  # a different draw, not a relabelling of a few items
    assert Counter(a.values()) == Counter(c.values())  # per-stratum quotas do not depend on the seed


def test_fractions_close_to_targets_and_configurable():
    a = assign_splits(ITEMS, SplitConfig(seed=1))
    n = Counter(a.values())
    assert n == {"train": 4000, "validation": 500, "test": 500}
    other = assign_splits(ITEMS, SplitConfig(fractions=(("train", 0.7), ("test", 0.3))))
    assert Counter(other.values()) == {"train": 3500, "test": 1500}


def test_balance_holds_within_the_stated_tolerance_on_skewed_strata():
    a = assign_splits(ITEMS, SplitConfig(seed=3))
    table = balance_table(ITEMS, a)
    assert check_balance(table, fractions=DEFAULT_FRACTIONS) == []
    # the stratified split is far better than the tolerance: within 2 points on every value
    for rows in table["keys"].values():
        for row in rows:
            for cell in row["by_split"].values():
                assert abs(cell["share"] - row["all"]["share"]) < 0.02
    assert balance_tolerance(500) == pytest.approx(2 / 500 ** 0.5)
    assert balance_tolerance(4000) == 0.05


def test_check_balance_reports_a_skewed_split():
    # all women in train: the gender shares in validation/test are far off
    a = {it.sha256: ("train" if it.gender == "woman" else ("validation" if i % 2 else "test"))
         for i, it in enumerate(ITEMS)}
    problems = check_balance(balance_table(ITEMS, a), fractions=DEFAULT_FRACTIONS)
    assert any(p.startswith("gender=woman: share 0.000 in validation") for p in problems)
    assert any(p.startswith("split train:") for p in problems)


def test_balance_table_counts_and_shares():
    items = [SplitItem("a", "X", "woman", 23), SplitItem("b", "X", "man", 37), SplitItem("c", "Y", "man", None),
             SplitItem("d", "", "man", 81)]
    table = balance_table(items, {"a": "train", "b": "train", "c": "test", "d": "test"})
    assert table["total"] == 4 and table["splits"]["train"] == {"n": 2, "share": 0.5}
    assert [r["value"] for r in table["keys"]["age"]] == ["20-29", "30-39", "80-89", "unknown"]
    eth = {r["value"]: r for r in table["keys"]["ethnicity"]}
    assert eth["X"]["all"] == {"n": 2, "share": 0.5}
    assert eth["X"]["by_split"] == {"train": {"n": 2, "share": 1.0}, "test": {"n": 0, "share": 0.0}}
    assert eth["unknown"]["by_split"]["test"] == {"n": 1, "share": 0.5}


def test_sticky_beats_new_images_and_a_new_seed():
    first = assign_splits(ITEMS, SplitConfig(seed=1))
    grown = ITEMS + synthetic(500, start=5000)
    second = assign_splits(grown, SplitConfig(seed=99), previous=first)
    assert all(second[s] == split for s, split in first.items())
    previously_test = [s for s, split in first.items() if split == "test"]
    assert previously_test and all(second[s] == "test" for s in previously_test)
    new = [it.sha256 for it in grown[5000:]]
    # the new images fill the remaining quotas, so the whole stays at 0.8/0.1/0.1
    # (within one item: strata the earlier release's rounding overfilled are made up for elsewhere)
    n = Counter(second.values())
    assert abs(n["train"] - 4400) <= 1 and abs(n["validation"] - 550) <= 1 and abs(n["test"] - 550) <= 1
    assert len({second[s] for s in new}) == 3
    assert check_balance(balance_table(grown, second), fractions=DEFAULT_FRACTIONS) == []
    # removed images are simply gone; a split name the config lacks is refused
    assert set(assign_splits(grown[:100], previous=first)) == {it.sha256 for it in grown[:100]}
    with pytest.raises(ValueError, match="split 'val'"):
        assign_splits(ITEMS, previous={ITEMS[0].sha256: "val"})


def test_sticky_items_overfilling_a_split_push_new_items_elsewhere():
    items = [SplitItem(f"{i:064x}", "X", "woman", 30) for i in range(100)]
    previous = {it.sha256: "test" for it in items[:20]}  # 20 already in test, target is 10
    out = assign_splits(items, previous=previous)
    # test is 10 over its target: the 80 new items go to train and validation at 8:1
    assert Counter(out.values()) == {"train": 71, "validation": 9, "test": 20}
    assert all(out[it.sha256] == "test" for it in items[:20])


def test_group_key_keeps_all_images_of_one_prompt_in_one_split():
    config = SplitConfig(seed=5, group_key="prompt")
    a = assign_splits(ITEMS, config)
    by_prompt: dict[str, set[str]] = defaultdict(set)
    for it in ITEMS:
        by_prompt[it.prompt].add(a[it.sha256])
    assert all(len(splits) == 1 for splits in by_prompt.values())
    table = balance_table(ITEMS, a)
    # shares stay within tolerance; with whole prompts (4 faces each) moving together, a small
    # stratum (48 faces = 12 prompts) can miss the 10% validation split, which the check now reports
    # (group-aware balancing keeps every such stratum in every split now)
    assert all(p.startswith(MISSING) for p in check_balance(table, fractions=DEFAULT_FRACTIONS))
    # a new image of a prompt already released joins its prompt's split (stickiness + grouping)
    released = next(it for it in ITEMS if a[it.sha256] == "test")
    newcomer = SplitItem(sha256="f" * 64, ethnicity=released.ethnicity, gender=released.gender,
                         age=released.age, prompt=released.prompt)
    again = assign_splits([*ITEMS, newcomer], SplitConfig(seed=6, group_key="prompt"), previous=a)
    assert again[newcomer.sha256] == "test"


def test_bad_config_and_duplicates_are_refused():
    with pytest.raises(ValueError, match="sum to 1"):
        SplitConfig(fractions=(("train", 0.8), ("test", 0.1)))
    with pytest.raises(ValueError, match="letters, digits"):
        SplitConfig(fractions=(("train set", 1.0),))
    with pytest.raises(ValueError, match="appears twice"):
        assign_splits([SplitItem("a"), SplitItem("a")])


def test_check_balance_fails_a_stratum_missing_from_a_split():
    # #17 (the statistics review's check 10): 100 of 5,000 faces (2%) all in train, none in
    # validation or test. The share tolerance alone passed this; a missing stratum now fails.
    from annotation.splits import DEFAULT_FRACTIONS, balance_table, check_balance

    items = [SplitItem(sha256=f"{i:064x}", ethnicity=("Pacific Islander" if i < 100 else "White"), gender="woman",
                       age=30) for i in range(5000)]
    assignment = {it.sha256: "train" if i < 100 else ("train" if i % 10 < 8 else ("validation" if i % 10 == 8
                                                                                   else "test"))
                  for i, it in enumerate(items)}
    problems = check_balance(balance_table(items, assignment), fractions=DEFAULT_FRACTIONS)
    assert any("Pacific Islander" in p and "validation" in p for p in problems)
    assert any("Pacific Islander" in p and "test" in p for p in problems)
    # a value too rare to be expected in a split is not a violation
    rare = [SplitItem(sha256=f"{i:064x}", ethnicity=("Rare" if i < 20 else "White"), gender="woman", age=30)
            for i in range(5000)]
    rare_assignment = {it.sha256: "train" if i < 20 else assignment[items[i].sha256] for i, it in enumerate(rare)}
    assert not any("Rare" in p for p in check_balance(balance_table(rare, rare_assignment)))


# --- #17: grouped by prompt, stratified by emotion presence, group-aware balancing --------------------

EMOTION_NAMES = [f"emotion {i:02d}" for i in range(40)]
# zero-inflated like EmoNet-Face: a few common emotions, many rare ones (2%..42% of images)
PREVALENCE = [0.02 + 0.4 * (i / 39) ** 2 for i in range(40)]


def grouped(n_groups: int, seed: int, *, sample_share: float = 0.0) -> list[SplitItem]:
    """Prompts of varied size (1..12 faces, mean about 3), each face sharing its prompt's demographics
    and, mostly, its emotions; a share of the prompts inside the model-independent sample."""
    rng = random.Random(seed)
    items, i = [], 0
    for g in range(n_groups):
        size = min(12, 1 + int(rng.expovariate(1 / 2.5)))
        eth, gen, age = rng.choice(ETHNICITIES), rng.choice(GENDERS), rng.choice(AGES)
        base = [e for e, p in zip(EMOTION_NAMES, PREVALENCE, strict=True) if rng.random() < p]
        inside = rng.random() < sample_share
        for _ in range(size):
            present = tuple(e for e in EMOTION_NAMES if (e in base and rng.random() < 0.8) or rng.random() < 0.02)
            items.append(SplitItem(sha256=hashlib.sha256(f"{seed}:{i}".encode()).hexdigest(), ethnicity=eth,
                                   gender=gen, age=age, prompt=f"prompt {g}", present=present,
                                   model_independent=inside))
            i += 1
    return items


def presence_deviation(items: list[SplitItem], a: dict[str, str]) -> float:
    """Mean |share of images with the emotion present in validation/test - overall share| over emotions."""
    n = Counter(a.values())
    devs = []
    for e in EMOTION_NAMES:
        overall = sum(e in it.present for it in items) / len(items)
        for split in ("validation", "test"):
            devs.append(abs(sum(e in it.present for it in items if a[it.sha256] == split) / n[split] - overall))
    return sum(devs) / len(devs)


def straddling(items: list[SplitItem], a: dict[str, str]) -> int:
    by_prompt: dict[str, set[str]] = defaultdict(set)
    for it in items:
        by_prompt[it.prompt].add(a[it.sha256])
    return sum(len(s) > 1 for s in by_prompt.values())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_prompt_groups_of_varied_size_never_straddle_and_fractions_stay_on_target(seed):
    items = grouped(1500, seed)  # about 4,500 faces
    n = len(items)
    balanced = assign_splits(items, SplitConfig(seed=seed, group_key="prompt"))
    assert straddling(items, balanced) == 0
    for split, share in DEFAULT_FRACTIONS:
        assert abs(Counter(balanced.values())[split] / n - share) < 0.003
    assert check_balance(balance_table(items, balanced), fractions=DEFAULT_FRACTIONS) == []
    # what the reverted attempt did (group key, no group-aware balancing): the groups drift to train
    naive = assign_splits(items, SplitConfig(seed=seed, group_key="prompt", balance_groups=False))
    assert straddling(items, naive) == 0
    assert abs(Counter(naive.values())["test"] / n - 0.1) > 2 * abs(Counter(balanced.values())["test"] / n - 0.1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_emotion_presence_is_balanced_across_splits(seed):
    items = grouped(1500, seed)
    config = SplitConfig(seed=seed, group_key="prompt", presence=True)
    a = assign_splits(items, config)
    assert straddling(items, a) == 0
    for split, share in DEFAULT_FRACTIONS:
        assert abs(Counter(a.values())[split] / len(items) - share) < 0.003
    without = assign_splits(items, SplitConfig(seed=seed, group_key="prompt"))
    # measured 0.0055 with presence against 0.020 without, on each seed
    assert presence_deviation(items, a) < 0.008
    assert presence_deviation(items, a) < presence_deviation(items, without) / 2.5
    table = balance_table(items, a, presence=True)
    assert len(table["keys"][PRESENCE_KEY]) == 40
    assert check_balance(table, fractions=DEFAULT_FRACTIONS) == []


def test_an_emotion_present_but_missing_from_a_split_fails_the_check():
    items = [SplitItem(sha256=f"{i:064x}", ethnicity="X", gender="woman", age=30,
                       present=("Awe",) if i < 100 else ()) for i in range(1000)]
    a = {it.sha256: ("train" if i < 100 or i % 10 < 8 else ("validation" if i % 10 == 8 else "test"))
         for i, it in enumerate(items)}
    problems = check_balance(balance_table(items, a, presence=True), fractions=DEFAULT_FRACTIONS)
    assert any(p.startswith(MISSING) and "emotion present=Awe" in p and "test" in p for p in problems)
    # N is configurable: with min_stratum above the emotion's 100 images, its absence is only a share problem
    relaxed = check_balance(balance_table(items, a, presence=True), min_stratum=101)
    assert not any(p.startswith(MISSING) for p in relaxed)
    # and the stratified split puts it everywhere
    good = assign_splits(items, SplitConfig(presence=True))
    assert not any(p.startswith(MISSING) for p in check_balance(balance_table(items, good, presence=True)))


def test_grouped_stratified_splits_are_reproducible():
    items = grouped(600, 5, sample_share=0.3)
    config = SplitConfig(seed=9, group_key="prompt", presence=True, test_from_model_independent=True)
    a = assign_splits(items, config)
    assert a == assign_splits(list(reversed(items)), config)
    assert a == assign_splits(items, SplitConfig(**{**config.as_dict(), "fractions": DEFAULT_FRACTIONS,
                                                    "strata": tuple(config.strata)}))
    other = assign_splits(items, SplitConfig(seed=10, group_key="prompt", presence=True,
                                             test_from_model_independent=True))
    assert sum(a[s] != other[s] for s in a) > 100


@pytest.mark.parametrize("seed", [0, 1])
def test_test_split_drawn_from_the_model_independent_sample(seed):
    items = grouped(1500, seed, sample_share=0.3)
    config = SplitConfig(seed=seed, group_key="prompt", presence=True, test_from_model_independent=True)
    a = assign_splits(items, config)
    in_test = [it for it in items if a[it.sha256] == "test"]
    assert in_test and all(it.model_independent for it in in_test)
    assert straddling(items, a) == 0
    for split, share in DEFAULT_FRACTIONS:
        assert abs(Counter(a.values())[split] / len(items) - share) < 0.005
    assert check_balance(balance_table(items, a, presence=True), fractions=DEFAULT_FRACTIONS) == []
    assert presence_deviation(items, a) < 0.011  # measured 0.008 and 0.007 (0.005 without the restriction)
    # a prompt only partly inside the sample never goes to test (its other faces' ratings may have used the model)
    mixed = [SplitItem(sha256=f"{i:064x}", ethnicity="X", gender="man", age=40, prompt=f"p{i // 2}",
                       model_independent=i % 2 == 0) for i in range(200)]
    out = assign_splits(mixed, SplitConfig(group_key="prompt", test_from_model_independent=True))
    assert "test" not in out.values()
    assert not any(p.startswith(MISSING) for p in check_balance(balance_table(mixed, out)))
    with pytest.raises(ValueError, match="split named 'test'"):
        SplitConfig(fractions=(("train", 0.9), ("eval", 0.1)), test_from_model_independent=True)


def test_sticky_images_keep_their_split_under_the_new_defaults():
    items = grouped(800, 3)
    config = SplitConfig(seed=1, group_key="prompt", presence=True)
    first = assign_splits(items, config)
    more = items + [SplitItem(sha256=hashlib.sha256(f"new{i}".encode()).hexdigest(), ethnicity="White",
                              gender="woman", age=30, prompt=f"new prompt {i // 3}", present=("emotion 39",))
                    for i in range(300)]
    second = assign_splits(more, SplitConfig(seed=2, group_key="prompt", presence=True), previous=first)
    assert all(second[s] == split for s, split in first.items())
    assert straddling(more, second) == 0
    for split, share in DEFAULT_FRACTIONS:
        assert abs(Counter(second.values())[split] / len(more) - share) < 0.01
