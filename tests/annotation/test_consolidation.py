"""Consolidation against hand-computed examples (pure functions: no database)."""

from __future__ import annotations

import numpy as np
import pytest

from annotation.consolidation import (
    BinaryVotes,
    ConsolidationRule,
    consolidate_binary,
    consolidate_intensity,
)


def rows(*per_image: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Image i (id 10 + i) gets the given ratings; each rating is a short emotion vector."""
    ids, vals = [], []
    for i, ratings in enumerate(per_image):
        for r in ratings:
            ids.append(10 + i)
            vals.append(r)
    return np.array(ids, dtype=np.int64), np.array(vals, dtype=np.int16)


def test_median_of_three_and_even_counts():
    ids, vals = rows(
        [[0, 7], [3, 7], [4, 6]],  # median(0,3,4) = 3 ; median(7,7,6) = 7
        [[2, 0], [5, 0]],  # even: (2+5)/2 = 3.5 ; 0
        [[1, 0], [4, 0], [6, 1], [7, 0]],  # (4+6)/2 = 5 ; (0+0)/2 = 0
    )
    out = consolidate_intensity(ids, vals)
    assert out.image_ids.tolist() == [10, 11, 12]
    assert out.consensus.tolist() == [[3.0, 7.0], [3.5, 0.0], [5.0, 0.0]]
    assert out.spread.tolist() == [[4, 1], [3, 0], [6, 1]]
    assert out.n_ratings.tolist() == [3, 2, 4]


def test_mean_and_trimmed_mean():
    ids, vals = rows([[0], [3], [4]], [[0], [1], [2], [3], [7]])
    mean = consolidate_intensity(ids, vals, rule=ConsolidationRule(method="mean"))
    assert mean.consensus[:, 0].tolist() == pytest.approx([7 / 3, 13 / 5])
    trimmed = consolidate_intensity(ids, vals, rule=ConsolidationRule(method="trimmed_mean", trim=0.2))
    # n=3: floor(0.6) = 0 values cut -> the mean; n=5: floor(1.0) = 1 cut from each end -> mean(1,2,3) = 2
    assert trimmed.consensus[:, 0].tolist() == pytest.approx([7 / 3, 2.0])
    scipy_stats = pytest.importorskip("scipy.stats")
    assert trimmed.consensus[1, 0] == pytest.approx(scipy_stats.trim_mean([0, 1, 2, 3, 7], 0.2))


def test_matches_numpy_on_random_data_with_unsorted_rows_and_mixed_counts():
    rng = np.random.default_rng(1)
    counts = rng.integers(2, 7, size=300)
    ids = np.repeat(np.arange(300), counts)
    vals = rng.integers(0, 8, size=(ids.size, 40)).astype(np.int16)
    perm = rng.permutation(ids.size)
    out = consolidate_intensity(ids[perm], vals[perm])
    for i in range(300):
        block = vals[ids == i]
        assert out.consensus[i].tolist() == np.median(block, axis=0).tolist()
        assert out.spread[i].tolist() == (block.max(0) - block.min(0)).tolist()
    assert out.n_ratings.tolist() == counts.tolist()


def test_disputed_rule_spread_and_presence_split():
    ids, vals = rows(
        [[0, 1], [3, 1], [1, 2]],  # spread 3 on emotion 0 -> disputed by spread >= 3
        [[0, 1], [2, 0], [1, 0]],  # spreads 2, 1 -> not disputed by spread
    )
    out = consolidate_intensity(ids, vals, rule=ConsolidationRule(disputed_spread=3, disputed_noise_p=None))
    assert out.disputed_emotions.tolist() == [[True, False], [False, False]]
    assert out.disputed.tolist() == [True, False]
    presence = consolidate_intensity(ids, vals, rule=ConsolidationRule(presence_split_min=1, disputed_noise_p=None))
    # image 10: emotion 0 has a 0 and two non-zeros; image 11: both emotions split zero / non-zero
    assert presence.disputed_emotions.tolist() == [[True, False], [True, True]]
    two = consolidate_intensity(ids, vals, rule=ConsolidationRule(presence_split_min=2, disputed_noise_p=None))
    assert two.disputed_emotions.tolist() == [[False, False], [False, False]]
    need_two = consolidate_intensity(ids, vals, rule=ConsolidationRule(presence_split_min=1, disputed_noise_p=None,
                                                                         disputed_min_emotions=2))
    assert need_two.disputed.tolist() == [False, True]


def test_left_out_counts_below_min_flagged_and_disputed():
    ids, vals = rows(
        [[1], [1], [1]],  # 10 kept
        [[5]],  # 11 one rating: below min_ratings=2
        [[2], [2]],  # 12 flagged
        [[0], [7]],  # 13 disputed (spread 7)
    )
    out = consolidate_intensity(ids, vals, flagged_image_ids={12, 99})
    assert out.image_ids.tolist() == [10, 13]
    assert out.left_out == {"flagged": 1, "no_ratings": 0, "below_min_ratings": 1, "disputed": 0}
    assert out.left_out_ids["below_min_ratings"].tolist() == [11]
    spread_rule = ConsolidationRule(drop_disputed=True, disputed_spread=3, disputed_noise_p=None)
    dropped = consolidate_intensity(ids, vals, flagged_image_ids={12}, rule=spread_rule,
                                    all_image_ids=[10, 11, 12, 13, 14, 15])
    assert dropped.image_ids.tolist() == [10]
    assert dropped.left_out == {"flagged": 1, "no_ratings": 2, "below_min_ratings": 1, "disputed": 1}
    assert dropped.left_out_ids["no_ratings"].tolist() == [14, 15]
    assert dropped.left_out_ids["disputed"].tolist() == [13]
    strict = consolidate_intensity(ids, vals, rule=ConsolidationRule(min_ratings=3))
    assert strict.image_ids.tolist() == [10] and strict.left_out["below_min_ratings"] == 3


def test_bad_input_is_refused_with_a_clear_message():
    ids, vals = rows([[8], [1]])
    with pytest.raises(ValueError, match=r"value 8 is off the scale \(allowed: 0..7\)"):
        consolidate_intensity(ids, vals)
    with pytest.raises(ValueError, match="values must have shape"):
        consolidate_intensity(np.array([1, 2]), np.zeros((3, 40), dtype=np.int16))
    with pytest.raises(ValueError, match="method must be one of"):
        ConsolidationRule(method="mode")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="outside all_image_ids"):
        consolidate_intensity(*rows([[1], [1]]), all_image_ids=[11])


def test_binary_scale_and_empty_input():
    out = consolidate_intensity(*rows([[0, 1], [1, 1]]), scale_max=1)
    assert out.consensus.tolist() == [[0.5, 1.0]]
    empty = consolidate_intensity(np.zeros(0, dtype=np.int64), np.zeros((0, 40), dtype=np.int16))
    assert empty.consensus.shape == (0, 40) and empty.left_out["below_min_ratings"] == 0


def votes(*items: tuple[int, int, list[int]]) -> BinaryVotes:
    ids, emo, v, raters = [], [], [], []
    for image, emotion, answers in items:
        for r, a in enumerate(answers):
            ids.append(image)
            emo.append(emotion)
            v.append(a)
            raters.append(r)
    return BinaryVotes(image_ids=np.array(ids), rater_ids=np.array(raters), emotions=np.array(emo),
                       votes=np.array(v))


def test_binary_k_of_k():
    out = consolidate_binary(votes(
        (1, 0, [1, 1, 1]),  # 3 of 3 yes -> positive
        (1, 5, [1, 1, 0]),  # 2 yes + 1 no -> negative
        (2, 0, [1, 1]),  # only 2 votes, both yes -> undecided
        (2, 3, [0]),  # a single no -> negative (contrastive item)
        (3, 7, [1, 1]),  # only undecided items -> image left out
        (4, 1, [1, 1, 1]),  # flagged
    ), k=3, n_emotions=8, flagged_image_ids=[4])
    assert out.image_ids.tolist() == [1, 2]
    assert out.label[0].tolist() == [1, -1, -1, -1, -1, 0, -1, -1]
    assert out.label[1].tolist() == [-1, -1, -1, 0, -1, -1, -1, -1]
    assert out.n_yes[0, 5] == 2 and out.n_no[0, 5] == 1 and out.n_yes[1, 0] == 2 and out.n_no[1, 0] == 0
    assert out.left_out == {"flagged": 1, "no_decided_item": 1}
    assert out.undecided_items == 1
    assert consolidate_binary(votes((1, 0, [1, 1])), k=2, n_emotions=8).label[0, 0] == 1
    with pytest.raises(ValueError, match="votes must be 0"):
        consolidate_binary(votes((1, 0, [2])), n_emotions=8)


def _emonet_like(rng: np.random.Generator, n: int, amb_share: float, per: int = 4, n_em: int = 40):
    """About 8 of 40 emotions present per rating; a share of images is truly ambiguous (the experts'
    noise on them is twice as large); raters differ a little in severity."""
    amb = rng.random(n) < amb_share
    z = rng.normal(-1.5, 2.0, (n, n_em))
    sd = np.where(amb, 2.5, 1.2)
    x = z[:, None, :] + sd[:, None, None] * rng.standard_normal((n, per, n_em)) + rng.normal(0, 0.3, (1, per, 1))
    v = np.where(x < 0.5, 0, np.clip(np.rint(x), 1, 7)).astype(np.int16)
    return np.repeat(np.arange(n), per), v.reshape(n * per, n_em), amb


def test_the_default_disputed_rule_flags_a_minority_and_mostly_the_ambiguous_images():
    rng = np.random.default_rng(11)
    ids, vals, amb = _emonet_like(rng, 1500, 0.2)
    assert 6 <= (vals > 0).sum(axis=1).mean() <= 10  # EmoNet-like: about 8 of 40 present
    out = consolidate_intensity(ids, vals)
    assert out.disputed.mean() < 0.3  # a minority
    assert out.disputed[amb].mean() > 0.5 > 0.05 > out.disputed[~amb].mean()  # the ambiguous ones
    old = consolidate_intensity(ids, vals, rule=ConsolidationRule(disputed_spread=3, disputed_noise_p=None))
    assert old.disputed.mean() > 0.9  # the old default: nearly every image
    # with no ambiguous image at all it flags about its nominal share
    ids, vals, _ = _emonet_like(rng, 1500, 0.0)
    assert consolidate_intensity(ids, vals).disputed.mean() < 0.05


def test_old_release_configs_keep_their_rule():
    old = ConsolidationRule.from_config({"method": "median", "trim": 0.2, "min_ratings": 2, "disputed_spread": 3,
                                         "presence_split_min": None, "disputed_min_emotions": 1,
                                         "drop_disputed": False})
    assert old.disputed_noise_p is None and old.disputed_spread == 3
    new = ConsolidationRule()
    assert ConsolidationRule.from_config(new.as_dict()) == new


def test_chi2_quantile_without_scipy_stats_is_scipys_to_the_bit():
    import numpy as np
    from scipy import stats

    from annotation.consolidation import _chi2_ppf

    df = np.concatenate([np.arange(1.0, 400.0), np.random.default_rng(1).uniform(0.5, 2000.0, 500)])
    for q in (0.99, 0.95, 0.999, 0.5, 1 - 1e-6):
        assert np.array_equal(_chi2_ppf(q, df), stats.chi2.ppf(q, df))


def test_compact_labels_hold_the_same_values():
    from annotation.consolidation import ConsolidationRule, consolidate_intensity

    rng = np.random.default_rng(3)
    counts = rng.integers(1, 7, 2000)
    ids = np.repeat(np.arange(2000), counts)
    vals = (rng.integers(0, 8, (ids.size, 40)) * (rng.random((ids.size, 40)) < 0.3)).astype(np.int16)
    for rule in (ConsolidationRule(), ConsolidationRule(method="mean"), ConsolidationRule(method="trimmed_mean")):
        full = consolidate_intensity(ids, vals, rule=rule)
        small = consolidate_intensity(ids, vals, rule=rule, compact=True)
        assert small.spread.dtype == np.int8
        assert small.consensus.dtype == (np.int8 if rule.method == "median" else np.float64)
        assert small.consensus_halves == (rule.method == "median")
        assert np.array_equal(small.consensus_values(), full.consensus)
        assert np.array_equal(small.consensus_values(np.arange(5, 50)), full.consensus[5:50])
        assert np.array_equal(small.consensus > 0, full.consensus > 0)  # what the splits read
        assert np.array_equal(small.spread, full.spread) and np.array_equal(small.disputed, full.disputed)
        assert (full.consensus % 0.5 != 0).any() == (rule.method != "median")
        if rule.method == "median":  # the codes hold half numbers (images with an even number of ratings)
            assert (full.consensus % 1 == 0.5).any() and (small.consensus % 2 == 1).any()
    # beyond a scale of 63 twice a median may not fit int8: float32 then, the same values
    big = consolidate_intensity(ids, vals * 20, rule=ConsolidationRule(), scale_max=140, compact=True)
    assert big.consensus.dtype == np.float32 and not big.consensus_halves
    assert np.array_equal(big.consensus_values(), consolidate_intensity(ids, vals * 20, rule=ConsolidationRule(),
                                                                        scale_max=140).consensus)
