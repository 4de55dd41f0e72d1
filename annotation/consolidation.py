"""Consolidation: the N expert ratings of an image -> one label per emotion. PURE: numpy only.

Intensity mode (``consolidate_intensity``)
    Input is the long table the database hands out (``annotation.pgcopy.RatingRows``): one row per
    rating, ``values[i, e]`` = the intensity rater ``i`` gave emotion ``EMOTIONS[e]`` (0..scale_max;
    emotions the rater left untouched are 0, so every rating covers all emotions and the number of
    ratings per emotion equals the number of ratings of the image). Per image and emotion:

    * ``consensus``: the median of the experts (default, as the EmoNet-Face authors did; an even
      number of ratings gives the mean of the two middle values, e.g. median(2, 5) = 3.5), or the
      mean, or the trimmed mean (``trim`` = share cut from *each* end, ``floor(trim * n)`` values,
      the definition of ``scipy.stats.trim_mean``; with 3 ratings and trim 0.2 nothing is cut).
    * ``spread``: the range ``max - min`` in scale points (the primary spread measure: it is an
      integer, needs no distributional assumption and reads directly as "the experts were up to
      so many points apart").
    * ``disputed`` per emotion, from ``ConsolidationRule`` (see its docstring), and per image:
      at least ``disputed_min_emotions`` disputed emotions.

Binary mode (``consolidate_binary``)
    The EmoNet-Face k-of-k rule: an (image, emotion) item is positive when at least k votes were
    cast and every vote said yes; it is negative as soon as one vote said no (the authors stop
    asking at the first "no"); with fewer than k votes, all yes, it is still undecided. The raw
    yes/no counts are kept next to the label.

Left out (both modes): images the caller names as flagged (raters reported them unusable), images
below the minimum number of ratings, and -- only if the rule says so -- disputed images. Each
left-out image is counted once, under the first reason in ``LEFT_OUT_REASONS`` order; counts come
back in ``left_out`` (every reason present, zeros included) and the ids in ``left_out_ids``.

Performance: images are grouped by their number of ratings c and each group is consolidated as
one (c, m, E) array, sorted along the raters' axis by a small sorting network; 100,000 images x
3 ratings x 40 emotions take about 0.1-0.2 s (``python -m annotation.consolidation`` times it).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "LEFT_OUT_REASONS",
    "BINARY_LEFT_OUT_REASONS",
    "BinaryConsolidated",
    "BinaryVotes",
    "Consolidated",
    "ConsolidationRule",
    "consolidate_binary",
    "consolidate_intensity",
]

Method = Literal["median", "mean", "trimmed_mean", "model"]
METHODS: tuple[Method, ...] = ("median", "mean", "trimmed_mean", "model")

LEFT_OUT_REASONS: tuple[str, ...] = ("flagged", "no_ratings", "below_min_ratings", "disputed")
BINARY_LEFT_OUT_REASONS: tuple[str, ...] = ("flagged", "no_decided_item")

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class ConsolidationRule:
    """How intensity ratings become one label per image and emotion (frozen into each release).

    method: "median" (default), "mean", "trimmed_mean" or "model" (the expected rating of a
        typical expert under the measurement model, annotation.agreement.ratermodel: P(present) x
        expected intensity given present; needs ``soft`` labels from a converged fit).
    trim: for "trimmed_mean", the share of ratings cut from each end (0 <= trim < 0.5).
    min_ratings: images with fewer ratings are left out (reason "below_min_ratings"). Default 2:
        one rating is an opinion, not a consensus.
    disputed_noise_p: the default rule, calibrated against the ratings' own noise. Per emotion,
        the typical disagreement is the pooled within-image variance s2_e of the ratings over the
        images where somebody marked that emotion present. An image's disagreement is
        T = sum_e SS_e / s2_e over its emotions marked present (SS_e: sum of squared deviations
        from the image's mean); with exchangeable noise T is about chi-square with
        (ratings - 1) x (those emotions) degrees of freedom, and the image is disputed when T is
        above that distribution's 1 - disputed_noise_p quantile (default 0.01), i.e. when its
        experts disagree clearly more than the same experts usually do on that emotion. An
        emotion of the image is marked disputed when its own SS_e / s2_e is above the chi-square
        (ratings - 1) quantile. None switches this criterion off. Frozen release configs from
        before it have it off (see ``from_config``).
    disputed_spread: an emotion is disputed when its spread (max - min) is at least this many
        scale points (e.g. 3: on 0..7 one expert says "weak" and another "strong"). None
        (default) switches it off: on EmoNet-like data a spread of 3 on one of 40 emotions occurs
        on nearly every image.
    presence_split_min: an emotion is also disputed when at least this many experts said 0 *and*
        at least this many said > 0 (presence itself is contested). None (default) switches it
        off; 1 flags every zero/non-zero disagreement, which in zero-inflated data is most images.
    disputed_min_emotions: an image is disputed when at least this many of its emotions are
        (default 1: any).
    drop_disputed: leave disputed images out of the release (reason "disputed") instead of
        keeping them with their flag (default: keep; the flag is a column of the release).
    soft_labels: release the measurement model's soft labels beside the consensus (per emotion
        ``__p_present``, ``__expected_intensity``, ``__sd``; default on). Frozen release configs
        from before it have it off (see ``from_config``).
    """

    method: Method = "median"
    trim: float = 0.2
    min_ratings: int = 2
    disputed_spread: int | None = None
    presence_split_min: int | None = None
    disputed_noise_p: float | None = 0.01
    disputed_min_emotions: int = 1
    drop_disputed: bool = False
    soft_labels: bool = True

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, not {self.method!r}")
        if self.method == "model" and not self.soft_labels:
            raise ValueError("method 'model' releases the model's soft labels: soft_labels cannot be off")
        if not 0.0 <= self.trim < 0.5:
            raise ValueError(f"trim must be in [0, 0.5), not {self.trim}")
        if self.min_ratings < 1:
            raise ValueError(f"min_ratings must be at least 1, not {self.min_ratings}")
        if self.disputed_spread is not None and self.disputed_spread < 1:
            raise ValueError(f"disputed_spread must be at least 1 (or None), not {self.disputed_spread}")
        if self.presence_split_min is not None and self.presence_split_min < 1:
            raise ValueError(f"presence_split_min must be at least 1 (or None), not {self.presence_split_min}")
        if self.disputed_min_emotions < 1:
            raise ValueError(f"disputed_min_emotions must be at least 1, not {self.disputed_min_emotions}")
        if self.disputed_noise_p is not None and not 0.0 < self.disputed_noise_p < 1.0:
            raise ValueError(f"disputed_noise_p must be between 0 and 1 (or None), not {self.disputed_noise_p}")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ConsolidationRule:
        """The rule frozen in a release config; configs written before ``disputed_noise_p`` existed
        had only the spread / presence-split criteria, so it is off for them."""
        return cls(**{"disputed_noise_p": None, "soft_labels": False, **config})

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method, "trim": self.trim, "min_ratings": self.min_ratings,
            "disputed_spread": self.disputed_spread, "presence_split_min": self.presence_split_min,
            "disputed_min_emotions": self.disputed_min_emotions, "drop_disputed": self.drop_disputed,
            "disputed_noise_p": self.disputed_noise_p, "soft_labels": self.soft_labels,
        }

    def describe(self) -> str:
        """One paragraph for the dataset card."""
        method = {
            "median": "the median of the experts' ratings (even counts: the mean of the two middle values)",
            "mean": "the mean of the experts' ratings",
            "trimmed_mean": f"the trimmed mean of the experts' ratings (floor({self.trim:g} x n) "
                            "ratings cut from each end)",
            "model": "the expected rating of a typical expert under the measurement model (P(present) x "
                     "expected intensity given present; rater thresholds, shifts and noise accounted for)",
        }[self.method]
        crit = []
        if self.disputed_spread is not None:
            crit.append(f"its spread (max - min) is at least {self.disputed_spread} scale points")
        if self.presence_split_min is not None:
            crit.append(f"at least {self.presence_split_min} expert(s) rated it 0 and at least "
                        f"{self.presence_split_min} rated it above 0")
        parts = []
        if self.disputed_noise_p is not None:
            parts.append(
                "An image is disputed when its experts disagree clearly more than the same experts usually do: "
                "its squared deviations from the image mean, each scaled by that emotion's typical within-image "
                "variance and summed over the emotions somebody marked present, exceed the chi-square "
                f"quantile at p = {self.disputed_noise_p:g}.")
        if crit:
            parts.append(f"An emotion is disputed when {' or when '.join(crit)}; an image is also disputed when at "
                         f"least {self.disputed_min_emotions} of its emotions are.")
        disputed = (" ".join(parts) + " " + ("Disputed images are left out." if self.drop_disputed
                                             else "Disputed images are kept and flagged.")
                    if parts else "No disputed rule is applied.")
        return (f"Consensus per image and emotion: {method}. Spread: max - min of the ratings, in scale "
                f"points. Images with fewer than {self.min_ratings} ratings, and images reported as "
                f"unusable, are left out. {disputed}"
                + (" The measurement model's soft labels are released beside the consensus (see \"Soft labels\")."
                   if self.soft_labels else ""))


@dataclass(frozen=True)
class Consolidated:
    """Intensity labels of the kept images, ascending by image id (row r of every array = image_ids[r])."""

    image_ids: IntArray  # (n,) int64
    consensus: FloatArray  # (n, E) float64
    spread: npt.NDArray[np.int16]  # (n, E) max - min
    n_ratings: npt.NDArray[np.int32]  # (n,)
    disputed_emotions: BoolArray  # (n, E)
    disputed: BoolArray  # (n,)
    left_out: dict[str, int]  # reason -> images, every reason of LEFT_OUT_REASONS
    left_out_ids: dict[str, IntArray]  # reason -> ascending image ids
    rule: ConsolidationRule
    scale_max: int
    # The measurement model's soft labels of the kept images (rows as image_ids), when released.
    p_present: FloatArray | None = None
    expected_intensity: FloatArray | None = None
    soft_sd: FloatArray | None = None
    # compact (#21): ``consensus`` holds twice each median as int8 (whole numbers): read it
    # through consensus_values
    consensus_halves: bool = False

    def consensus_values(self, rows: Any = slice(None)) -> FloatArray:
        """The consensus of these rows (all by default) as float64 values, whatever its storage."""
        out: FloatArray = np.asarray(self.consensus[rows], dtype=np.float64)
        if self.consensus_halves:
            out = out * 0.5
        return out


@dataclass(frozen=True)
class SoftLabels:
    """Soft labels from a converged measurement-model fit: rows for ``image_ids`` (ascending),
    columns for emotions (annotation.agreement.ratermodel.RaterModelFit, transposed)."""

    image_ids: IntArray
    p_present: FloatArray  # (n, E)
    expected_intensity: FloatArray  # (n, E)
    sd: FloatArray  # (n, E): posterior sd of p_present x expected_intensity

    def rows_for(self, ids: IntArray) -> IntArray:
        """Row of each image id; ValueError naming the first image the fit did not see."""
        pos = np.searchsorted(self.image_ids, ids)
        ok = (pos < self.image_ids.size) & (self.image_ids[np.minimum(pos, max(self.image_ids.size - 1, 0))] == ids)
        if not ok.all():
            raise ValueError(f"image {int(ids[~ok][0])} has no soft label (the model was fitted to other ratings)")
        out: IntArray = pos.astype(np.int64)
        return out


@dataclass(frozen=True)
class BinaryVotes:
    """Long table of binary votes: one row per (rater, image, emotion); vote 1 = yes, 0 = no."""

    image_ids: IntArray
    rater_ids: IntArray
    emotions: IntArray  # taxonomy index
    votes: npt.NDArray[np.integer[Any]]


@dataclass(frozen=True)
class BinaryConsolidated:
    """k-of-k labels of the kept images, ascending by image id; one column per taxonomy emotion.

    label: 1 positive, 0 negative, -1 no label (not asked, or still undecided: fewer than k votes,
    all yes). n_yes/n_no: the raw votes (0/0 for emotions never asked about the image).
    """

    image_ids: IntArray
    label: npt.NDArray[np.int8]  # (n, E)
    n_yes: npt.NDArray[np.int16]  # (n, E)
    n_no: npt.NDArray[np.int16]  # (n, E)
    k: int
    left_out: dict[str, int]  # reason -> images, every reason of BINARY_LEFT_OUT_REASONS
    left_out_ids: dict[str, IntArray]
    undecided_items: int  # (image, emotion) items of kept images with fewer than k votes, all yes

    def describe(self) -> str:
        return (f"k-of-k rule with k = {self.k}: an (image, emotion) item is positive when at least {self.k} "
                f"experts voted and all said yes, negative as soon as one said no, and unlabelled "
                f"(null) while fewer than {self.k} votes, all yes, are in. Raw yes/no counts are kept. "
                "Images reported as unusable, and images without any decided item, are left out.")


def _ids(name: str, arr: npt.ArrayLike) -> IntArray:
    out = np.asarray(arr)
    if out.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {out.shape}")
    if out.size and not np.issubdtype(out.dtype, np.integer):
        raise ValueError(f"{name} must hold integers, got {out.dtype}")
    return out.astype(np.int64, copy=False)


def _group_bounds(sorted_ids: IntArray) -> tuple[IntArray, IntArray, IntArray]:
    """(unique ids, start row, count) of runs in an ascending id array."""
    n = sorted_ids.shape[0]
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    change = np.flatnonzero(sorted_ids[1:] != sorted_ids[:-1]) + 1
    starts = np.concatenate(([0], change)).astype(np.int64)
    counts = np.diff(np.concatenate((starts, [n]))).astype(np.int64)
    return sorted_ids[starts], starts, counts


def _sort_by_image(image_ids: IntArray, *cols: npt.NDArray[Any]) -> tuple[IntArray, list[npt.NDArray[Any]]]:
    """Stable sort by image id, skipped when the input is already ascending (the usual case)."""
    if image_ids.size < 2 or bool(np.all(image_ids[1:] >= image_ids[:-1])):
        return image_ids, list(cols)
    order = np.argsort(image_ids, kind="stable")
    return image_ids[order], [c[order] for c in cols]


def _left_out(reasons: tuple[str, ...], ids: Mapping[str, IntArray]) -> tuple[dict[str, int], dict[str, IntArray]]:
    full = {r: np.sort(np.asarray(ids.get(r, np.zeros(0, np.int64)), dtype=np.int64)) for r in reasons}
    return {r: int(a.size) for r, a in full.items()}, full


def _sorted_block(block: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    """Sort a (c, m, E) block along axis 0.

    For the usual handful of ratings an odd-even transposition network of elementwise
    minimum/maximum over contiguous (m, E) slabs is several times faster than np.sort on a short
    axis; many ratings per image fall back to np.sort.
    """
    c = block.shape[0]
    if c > 16:
        return np.sort(block, axis=0)
    for p in range(c):
        for i in range(p % 2, c - 1, 2):
            lo = np.minimum(block[i], block[i + 1])
            np.maximum(block[i], block[i + 1], out=block[i + 1])
            block[i] = lo
    return block


BLOCK_IMAGES = 32_768


def consolidate_intensity(
    image_ids: npt.ArrayLike,
    values: npt.ArrayLike,
    *,
    rule: ConsolidationRule = ConsolidationRule(),  # noqa: B008 - frozen, so a safe default
    scale_max: int = 7,
    flagged_image_ids: Collection[int] = (),
    all_image_ids: npt.ArrayLike | None = None,
    soft: SoftLabels | None = None,
    compact: bool = False,
) -> Consolidated:
    """Consolidate intensity ratings (see the module docstring for every definition).

    image_ids: (n,) image of each rating row; values: (n, E) integers in 0..scale_max. Rows should
    come sorted by image (as ``RatingRows`` are); other orders are sorted here (stable).
    flagged_image_ids: images reported unusable; their ratings are ignored (reason "flagged").
    all_image_ids: optionally every image considered for the release; those without any rating
    are counted under "no_ratings" (without it that reason stays 0). Ratings of images outside
    it are an error.
    soft: the measurement model's soft labels; required by method "model" (the consensus is then
    p_present x expected_intensity) and released beside the consensus when ``rule.soft_labels``.
    compact (#21, a release of a million images): the median consensus as int8 codes, twice each
    median (a whole number: ``consensus_halves``; read the values with ``consensus_values``), on a
    scale up to 63, else as float32 (whole and half numbers: the same values), and the spread as
    int8: an eighth (float32: half) and a quarter of the memory.
    Raises ValueError naming the problem for bad shapes or values off the scale.
    """
    if soft is None and rule.method == "model":
        raise ValueError("method 'model' needs the measurement model's soft labels")
    ids = _ids("image_ids", image_ids)
    vals = np.asarray(values)
    if vals.ndim != 2 or vals.shape[0] != ids.shape[0]:
        raise ValueError(f"values must have shape (n_ratings, n_emotions) = ({ids.shape[0]}, E), got {vals.shape}")
    if scale_max < 1:
        raise ValueError(f"scale_max must be at least 1, not {scale_max}")
    if vals.size:
        if not np.issubdtype(vals.dtype, np.integer):
            raise ValueError(f"values must be integers, got {vals.dtype}")
        lo, hi = int(vals.min()), int(vals.max())
        if lo < 0 or hi > scale_max:
            bad = lo if lo < 0 else hi
            raise ValueError(f"value {bad} is off the scale (allowed: 0..{scale_max})")
    if vals.dtype != np.int8:  # int8 (a release's compact ratings, #21) is kept: no copy
        vals = vals.astype(np.int16, copy=False)
    n_emotions = vals.shape[1]
    ids, (vals,) = _sort_by_image(ids, vals)
    uniq, starts, counts = _group_bounds(ids)

    reasons: dict[str, IntArray] = {}
    keep = np.ones(uniq.shape[0], dtype=bool)
    if all_image_ids is not None:
        universe = np.unique(_ids("all_image_ids", all_image_ids))
        outside = uniq[~np.isin(uniq, universe)]
        if outside.size:
            raise ValueError(f"ratings for images outside all_image_ids, e.g. image {int(outside[0])}")
        flagged_all = np.isin(universe, np.fromiter(flagged_image_ids, dtype=np.int64))
        unrated = ~np.isin(universe, uniq) & ~flagged_all
        reasons["no_ratings"] = universe[unrated]
        reasons["flagged"] = universe[flagged_all]
        keep &= ~np.isin(uniq, universe[flagged_all])
    else:
        flagged = np.isin(uniq, np.fromiter(flagged_image_ids, dtype=np.int64))
        reasons["flagged"] = uniq[flagged]
        keep &= ~flagged
    few = keep & (counts < rule.min_ratings)
    reasons["below_min_ratings"] = uniq[few]
    keep &= ~few

    kept_ids, kept_starts, kept_counts = uniq[keep], starts[keep], counts[keep]
    n = kept_ids.shape[0]
    # compact (#21): a median of integers is a whole or half number: twice it fits int8 (a scale up to
    # 63), and it is exact in float32; a spread fits int8
    halves = compact and rule.method == "median" and scale_max <= 63
    consensus = np.zeros((n, n_emotions), dtype=np.int8 if halves else np.float32 if compact and rule.method == "median"
                         else np.float64)
    spread = np.zeros((n, n_emotions), dtype=np.int8 if compact and scale_max <= 127 else np.int16)
    disputed_e = np.zeros((n, n_emotions), dtype=bool)
    noise = rule.disputed_noise_p is not None
    ss = np.zeros((n, n_emotions), dtype=np.float64) if noise else None
    present = np.zeros((n, n_emotions), dtype=bool) if noise else None
    # Images with c ratings as (c, m, E) blocks of at most BLOCK_IMAGES images (#21: the float
    # copies for the noise rule stay bounded; every figure is per image, so the blocking changes nothing).
    pieces = []
    for c in np.unique(kept_counts).tolist():
        same = np.flatnonzero(kept_counts == c)
        pieces += [(c, same[i:i + BLOCK_IMAGES]) for i in range(0, same.size, BLOCK_IMAGES)]
    for c, sel in pieces:
        rows = np.arange(c, dtype=np.int64)[:, None] + kept_starts[sel][None, :]
        block = _sorted_block(vals[rows])  # (c, m, E), ascending along the raters' axis 0
        lo_v, hi_v = block[0], block[-1]
        if halves:  # twice the median
            if c % 2:
                cons = block[c // 2].astype(np.int16) * 2
            else:
                cons = block[c // 2 - 1].astype(np.int16) + block[c // 2]
        elif rule.method == "median":
            if c % 2:
                cons = block[c // 2].astype(np.float64)
            else:
                cons = (block[c // 2 - 1].astype(np.float64) + block[c // 2]) / 2.0
        else:
            cut = int(np.floor(rule.trim * c)) if rule.method == "trimmed_mean" else 0
            cons = block[cut:c - cut].sum(axis=0, dtype=np.float64) / (c - 2 * cut)
        consensus[sel] = cons
        spread_block = (hi_v - lo_v).astype(np.int16)
        spread[sel] = spread_block
        dis = np.zeros(spread_block.shape, dtype=bool)
        if rule.disputed_spread is not None:
            dis |= spread_block >= rule.disputed_spread
        if rule.presence_split_min is not None:
            zeros = (block == 0).sum(axis=0)
            dis |= (zeros >= rule.presence_split_min) & (c - zeros >= rule.presence_split_min)
        disputed_e[sel] = dis
        if ss is not None and present is not None:
            f = block.astype(np.float64)
            ss[sel] = ((f - f.mean(axis=0)) ** 2).sum(axis=0)
            present[sel] = hi_v > 0
    soft_rows = soft.rows_for(kept_ids) if soft is not None else None
    if soft is not None and soft_rows is not None and rule.method == "model":
        consensus = soft.p_present[soft_rows] * soft.expected_intensity[soft_rows]
    disputed = disputed_e.sum(axis=1) >= rule.disputed_min_emotions
    if ss is not None and present is not None and rule.disputed_noise_p is not None and n:
        noisy_e, noisy = _noise_disputed(ss, present, kept_counts, rule.disputed_noise_p)
        disputed_e |= noisy_e
        disputed |= noisy
    n_ratings = kept_counts.astype(np.int32)

    if rule.drop_disputed:
        reasons["disputed"] = kept_ids[disputed]
        k = ~disputed
        kept_ids, consensus, spread, n_ratings, disputed_e, disputed = (
            kept_ids[k], consensus[k], spread[k], n_ratings[k], disputed_e[k], disputed[k])
        soft_rows = soft_rows[k] if soft_rows is not None else None
    counts_out, ids_out = _left_out(LEFT_OUT_REASONS, reasons)
    with_soft = soft is not None and soft_rows is not None and rule.soft_labels

    def soft_of(arr: FloatArray) -> FloatArray | None:
        if not with_soft or soft_rows is None:
            return None
        # every image of the soft labels kept, in their order: the arrays themselves, no copy (#21)
        if soft_rows.size == arr.shape[0] and bool(np.all(soft_rows == np.arange(soft_rows.size))):
            return arr
        out: FloatArray = arr[soft_rows]
        return out

    return Consolidated(
        image_ids=kept_ids, consensus=consensus, spread=spread, n_ratings=n_ratings,
        disputed_emotions=disputed_e, disputed=disputed, left_out=counts_out, left_out_ids=ids_out,
        rule=rule, scale_max=scale_max, consensus_halves=halves,
        p_present=None if soft is None else soft_of(soft.p_present),
        expected_intensity=None if soft is None else soft_of(soft.expected_intensity),
        soft_sd=None if soft is None else soft_of(soft.sd),
    )


def _chi2_ppf(q: float, df: FloatArray) -> FloatArray:
    """scipy.stats.chi2.ppf(q, df) for 0 < q < 1 and df > 0, to the bit (it is 2 * gammaincinv(df / 2, q)),
    without importing scipy.stats (about a second of a release build's start-up)."""
    from scipy import special  # type: ignore[import-untyped,unused-ignore]

    out: FloatArray = 2 * special.gammaincinv(df / 2, q)
    return out


def _noise_disputed(ss: FloatArray, present: BoolArray, counts: npt.NDArray[np.integer],
                    p: float) -> tuple[BoolArray, BoolArray]:
    """(per emotion, per image) disputed by the noise-calibrated rule (``ConsolidationRule``).

    #21: in blocks of BLOCK_IMAGES images, so no (images x emotions) float temporaries stack up; the
    pooled variances are summed row after row as a single ``sum(axis=0)`` does (each block's rows
    added to the running total in order), so the figures are those of the whole array to the bit."""
    n, n_e = ss.shape
    dof_all = counts.astype(np.float64) - 1.0
    num, den = np.zeros(n_e), np.zeros(n_e)
    for lo in range(0, n, BLOCK_IMAGES):
        hi = min(n, lo + BLOCK_IMAGES)
        pr = present[lo:hi]
        num = np.concatenate([num[None, :], ss[lo:hi] * pr]).sum(axis=0)
        den = np.concatenate([den[None, :], dof_all[lo:hi, None] * pr]).sum(axis=0)
    pooled = num / np.maximum(den, 1.0)
    scale = np.where(pooled > 0, pooled, 1.0)[None, :]
    cell = np.zeros((n, n_e), dtype=bool)
    image = np.zeros(n, dtype=bool)
    cut_cell: dict[float, float] = {}
    for lo in range(0, n, BLOCK_IMAGES):
        hi = min(n, lo + BLOCK_IMAGES)
        dof = dof_all[lo:hi, None]
        used = present[lo:hi] & (pooled > 0)[None, :] & (dof > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(used, ss[lo:hi] / scale, 0.0)
        df_img = (dof[:, 0] * used.sum(axis=1))
        t = z.sum(axis=1)
        image[lo:hi] = (df_img > 0) & (t > _chi2_ppf(1.0 - p, np.maximum(df_img, 1.0)))
        # one quantile per number of ratings (the same value chi2.ppf gives element by element)
        d = np.maximum(dof[:, 0], 1.0)
        for v in np.unique(d).tolist():
            if v not in cut_cell:
                cut_cell[v] = float(_chi2_ppf(1.0 - p, np.full(1, v))[0])
        thr = np.array([cut_cell[v] for v in np.unique(d).tolist()])[np.searchsorted(np.unique(d), d)]
        cell[lo:hi] = used & (z > thr[:, None])
    return cell, image


def consolidate_binary(
    votes: BinaryVotes,
    *,
    k: int = 3,
    n_emotions: int = 40,
    flagged_image_ids: Collection[int] = (),
) -> BinaryConsolidated:
    """Apply the k-of-k rule to every (image, emotion) item (see the module docstring).

    Images whose items are all undecided (or that have no votes) are left out under
    "no_decided_item"; flagged images under "flagged". Votes must be 0 or 1 and emotions indexes
    in 0..n_emotions-1 (ValueError otherwise).
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    ids = _ids("image_ids", votes.image_ids)
    emo = _ids("emotions", votes.emotions)
    v = _ids("votes", votes.votes)
    if not (emo.shape == v.shape == ids.shape):
        raise ValueError("image_ids, emotions and votes must have the same length")
    if v.size and (int(v.min()) < 0 or int(v.max()) > 1):
        raise ValueError("votes must be 0 (no) or 1 (yes)")
    if emo.size and (int(emo.min()) < 0 or int(emo.max()) >= n_emotions):
        raise ValueError(f"emotion index off the taxonomy (allowed: 0..{n_emotions - 1})")
    uniq, inverse = np.unique(ids, return_inverse=True)
    n_yes = np.zeros((uniq.shape[0], n_emotions), dtype=np.int16)
    n_no = np.zeros((uniq.shape[0], n_emotions), dtype=np.int16)
    np.add.at(n_yes, (inverse, emo), (v == 1).astype(np.int16))
    np.add.at(n_no, (inverse, emo), (v == 0).astype(np.int16))
    label = np.full(n_yes.shape, -1, dtype=np.int8)
    label[(n_no == 0) & (n_yes >= k)] = 1
    label[n_no > 0] = 0

    reasons: dict[str, IntArray] = {}
    flagged = np.isin(uniq, np.fromiter(flagged_image_ids, dtype=np.int64))
    reasons["flagged"] = uniq[flagged]
    decided = (label >= 0).any(axis=1)
    none_decided = ~flagged & ~decided
    reasons["no_decided_item"] = uniq[none_decided]
    keep = ~flagged & decided
    undecided = int(((label[keep] < 0) & (n_yes[keep] > 0)).sum())
    counts_out, ids_out = _left_out(BINARY_LEFT_OUT_REASONS, reasons)
    return BinaryConsolidated(
        image_ids=uniq[keep], label=label[keep], n_yes=n_yes[keep], n_no=n_no[keep], k=k,
        left_out=counts_out, left_out_ids=ids_out, undecided_items=undecided,
    )


def _benchmark() -> None:  # pragma: no cover - run by hand: python -m annotation.consolidation
    import time

    rng = np.random.default_rng(0)
    n_img, per, n_e = 100_000, 3, 40
    ids = np.repeat(np.arange(n_img, dtype=np.int64), per)
    # zero-inflated like the real data: about 8 of 40 emotions non-zero
    vals = np.where(rng.random((n_img * per, n_e)) < 0.2, rng.integers(1, 8, (n_img * per, n_e)), 0).astype(np.int16)
    for method in METHODS:
        t0 = time.perf_counter()
        out = consolidate_intensity(ids, vals, rule=ConsolidationRule(method=method))
        dt = time.perf_counter() - t0
        print(f"{method:13s} {n_img:,} images x {per} ratings x {n_e} emotions: {dt:.3f} s "
              f"({int(out.disputed.sum()):,} disputed)")


if __name__ == "__main__":  # pragma: no cover
    _benchmark()
