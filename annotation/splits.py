"""Deterministic, sticky, demographically stratified train/validation/test splits. PURE: stdlib only.

Algorithm (``assign_splits``), for items = images with their sha256 and demographics:

1. Strata. Each item's stratum is the tuple of its values for ``SplitConfig.strata`` (default
   ethnicity x gender x age bucket; ages fall in buckets of ``age_bucket_width`` years, "20-29";
   a missing value is the stratum value "unknown").
2. Units. Without a group key every item is its own unit. With ``group_key`` (e.g. "prompt")
   all items sharing a non-empty group value form one unit and are always assigned together.
3. Sticky first. An item found in ``previous`` (sha256 -> split of an earlier release) keeps that
   split, whatever the seed, fractions or other items are now: **stickiness beats the seed**.
   The new items of a unit that already holds sticky items join the split holding most of them
   (ties: the earlier split in ``fractions`` order), so stickiness also beats fresh balancing.
4. Targets. A stratum of n_s items, p_sj of them already fixed in split j, has the real-valued
   quota max(0, f_j * n_s - p_sj) of free items for split j; if sticky items overfill a split in
   some strata, the quotas are raked (iterative proportional fitting, ``_rake``) so that each
   split still gets f_j * N - p_j free items overall and each stratum all its free items. Strata are laid end to end in
   serpentine order (sorted by the first stratum key, within it by the second in alternating
   direction, ...; the seed picks where this cyclic stream starts), and the quotas are rounded
   to integer targets along the stream with a running carry (``_stream_targets``). Each target is
   within about one item of its quota; the rounding remainder carries over from one stratum to
   the next, so small strata do not all round towards train, neighbouring strata share their
   leading values (so each single key's values, not only the joint strata, come out balanced:
   implicit stratification, as in systematic sampling), and the split totals land within one
   item of f_j * N (when no split is overfilled by sticky items).
5. Fill. The free units are visited largest first (a prompt with twelve faces before a single
   face), ties in the order of a keyed hash, sha256(f"{seed}:{unit key}") (the unit key is the
   group value, or the image's sha256), and each goes to the split j that reduces its remaining
   deficits best, in the chi-square sense: the split minimising sum_t w_t sum_c ((d_cj - m_c)^2 -
   d_cj^2) / f_j, where m_c counts the unit's items in cell c of table t and d_cj that cell's
   remaining deficit in split j (ties to the earlier split). The tables t are
   - the joint strata, with the integer targets of step 4 (weight 1);
   - with ``balance_groups`` (group-aware balancing; on whenever a unit holds more than one
     image, or the test split comes from the model-independent sample): each stratum key's values on their own and the split totals, each with the real
     targets f_j * n - items fixed in j (weight 1 each). A whole group rarely fits a small
     split's few places in its joint stratum; without these the groups drift to the largest
     split and the fractions go off target;
   - with ``presence`` (emotion presence, a multilabel stratification in the spirit of Sechidis,
     Tsoumakas and Vlahavas's iterative stratification): one cell per emotion, counting the images
     whose consolidated label marks it present, targets f_j * n_e - fixed; weight 1 / (mean number
     of present emotions per image), so that presence weighs as much as one stratum key.
   Largest first, the big groups land while every deficit is still large and the single images
   at the end fill what is left; for single images without presence this reproduces the integer
   targets of step 4 exactly. If sticky items already exceed a split's share in a stratum, that
   stratum's new items go to the other splits in proportion to their fractions.
6. Test from the model-independent sample (``test_from_model_independent``): only units whose
   images all belong to the sample (``SplitItem.model_independent``) may go to "test". They are
   filled first, against targets where "test" keeps its full share of each cell (up to the
   eligible items there) and the other splits share the rest; then the other units fill the
   other splits against what is left. In each phase the chi-square weighs a split by its share of
   that phase's targets, not by its overall fraction. The test split's allocation thus never used the model; if
   the sample is too small the test split comes out short and ``check_balance`` says so.

Same items + same config + same previous -> same assignment; another seed changes which items
go where. Balance is reported by ``balance_table`` (with ``presence_key`` also per emotion present)
and checked by ``check_balance`` (tolerance and the missing-stratum rule stated there).
"""

from __future__ import annotations

import hashlib
import math
import re
from array import array
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BALANCE_KEYS",
    "DEFAULT_FRACTIONS",
    "MIN_STRATUM",
    "MISSING",
    "PRESENCE_KEY",
    "UNKNOWN",
    "SplitConfig",
    "SplitItem",
    "assign_splits",
    "balance_table",
    "balance_tolerance",
    "check_balance",
]

DEFAULT_FRACTIONS: tuple[tuple[str, float], ...] = (("train", 0.8), ("validation", 0.1), ("test", 0.1))
BALANCE_KEYS: tuple[str, ...] = ("ethnicity", "gender", "age")
UNKNOWN = "unknown"
PRESENCE_KEY = "emotion present"  # balance_table's key for the per-emotion presence rows
TEST_SPLIT = "test"
MISSING = "missing: "  # check_balance's prefix for a stratum missing from a split (fails a release)
# A stratum value (or an emotion present) with at least this many images must appear in every split
# expected to hold 5 or more of them (check_balance); releases freeze it in SplitConfig.min_stratum.
MIN_STRATUM = 20
# Hugging Face split names: word characters (they become file names data/<split>-00000-of-00001.parquet).
_SPLIT_NAME = re.compile(r"^\w+$", re.ASCII)


@dataclass(frozen=True)
class SplitItem:
    """One image as the splitter sees it. ``extra`` holds further attributes usable as strata/group."""

    sha256: str
    ethnicity: str = ""
    gender: str = ""
    age: int | None = None
    prompt: str = ""
    extra: tuple[tuple[str, str], ...] = ()
    present: tuple[str, ...] = ()  # emotions the consolidated label marks present
    model_independent: bool = False  # in the model-independent evaluation sample (scoring.priority)

    def value(self, key: str, age_bucket_width: int = 10) -> str:
        """The item's value for a stratum or group key; "" becomes UNKNOWN, ages become buckets."""
        if key == "age":
            if self.age is None:
                return UNKNOWN
            lo = (self.age // age_bucket_width) * age_bucket_width
            return f"{lo}-{lo + age_bucket_width - 1}" if age_bucket_width > 1 else str(self.age)
        if key in ("ethnicity", "gender", "prompt"):
            raw: str = getattr(self, key)
        else:
            raw = dict(self.extra).get(key, "")
        raw = raw.strip()
        return raw if raw else UNKNOWN


@dataclass(frozen=True)
class SplitConfig:
    """How a release splits its images (frozen into the release config; see the module docstring).

    seed: keys the hash order; change it to draw another split of the *new* images.
    fractions: (split name, share) pairs, shares > 0 summing to 1; the order is the tie-break order.
    strata: attributes whose joint values form the strata (see ``SplitItem.value``).
    group_key: attribute whose equal non-empty values keep items in one split (e.g. "prompt").
    age_bucket_width: years per age bucket in strata and balance tables.
    presence: also stratify by the emotions each image's label marks present (step 5).
    balance_groups: group-aware balancing (step 5); None = on whenever a unit holds several images.
    test_from_model_independent: draw the "test" split from the model-independent sample (step 6).
    min_stratum: N of the missing-stratum rule of ``check_balance``.
    model_independent_share: the sample's share when the release was created (the service computes
        ``SplitItem.model_independent`` from it; kept here so the frozen config says which sample).
    """

    seed: int = 0
    fractions: tuple[tuple[str, float], ...] = DEFAULT_FRACTIONS
    strata: tuple[str, ...] = BALANCE_KEYS
    group_key: str | None = None
    age_bucket_width: int = 10
    presence: bool = False
    balance_groups: bool | None = None
    test_from_model_independent: bool = False
    min_stratum: int = MIN_STRATUM
    model_independent_share: float | None = None  # frozen record of the sample's share (not used here)

    def __post_init__(self) -> None:
        names = [n for n, _ in self.fractions]
        if not names:
            raise ValueError("fractions must name at least one split")
        if len(set(names)) != len(names):
            raise ValueError(f"fractions name a split twice: {names}")
        for name, share in self.fractions:
            if not _SPLIT_NAME.match(name):
                raise ValueError(f"split name {name!r} must consist of letters, digits and underscores")
            if not share > 0:
                raise ValueError(f"fraction of split {name!r} must be > 0, not {share}")
        total = sum(s for _, s in self.fractions)
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"fractions must sum to 1, they sum to {total:g}")
        if self.age_bucket_width < 1:
            raise ValueError(f"age_bucket_width must be at least 1, not {self.age_bucket_width}")
        if self.min_stratum < 1:
            raise ValueError(f"min_stratum must be at least 1, not {self.min_stratum}")
        if self.test_from_model_independent and TEST_SPLIT not in names:
            raise ValueError(f"test_from_model_independent needs a split named {TEST_SPLIT!r} (splits: "
                             f"{', '.join(names)})")

    @property
    def split_names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.fractions)

    def as_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "fractions": [[n, s] for n, s in self.fractions], "strata": list(self.strata),
                "group_key": self.group_key, "age_bucket_width": self.age_bucket_width, "presence": self.presence,
                "balance_groups": self.balance_groups,
                "test_from_model_independent": self.test_from_model_independent, "min_stratum": self.min_stratum,
                "model_independent_share": self.model_independent_share}


def _keyed(seed: int, text: str) -> str:
    return hashlib.sha256(f"{seed}:{text}".encode()).hexdigest()


def _stream_targets(quotas: Sequence[Sequence[float]], sizes: Sequence[int]) -> list[list[int]]:
    """Integer targets per stratum (rows) and split (columns) from real-valued quotas.

    Strata are laid end to end; item by item, every split's carry grows by its quota share
    (q_sj / sum_j q_sj) and the item goes to the split with the largest carry (ties to the lowest
    j), which then loses 1. Row s sums to sizes[s]; each target is within about one item of its
    quota, and because the carry runs on across strata the totals are within one item of the
    summed quotas. A split whose quota is 0 in a stratum gets nothing there unless it carries a
    positive remainder from earlier strata, which it can then only have below 1.
    """
    k = len(quotas[0]) if quotas else 0
    carry = [0.0] * k
    out: list[list[int]] = []
    for q, size in zip(quotas, sizes, strict=True):
        got = [0] * k
        total = sum(q)
        if size and total > 0 and k == 3:
            # the loop below for three splits, unrolled (the same operations in the same order)
            s0, s1, s2 = (x / total for x in q)
            c0, c1, c2 = carry
            g0 = g1 = g2 = 0
            for _ in range(size):
                c0 += s0
                best, best_carry = 0, c0
                c1 += s1
                if c1 > best_carry + 1e-12:
                    best, best_carry = 1, c1
                c2 += s2
                if c2 > best_carry + 1e-12:
                    best = 2
                if best == 0:
                    c0 -= 1.0
                    g0 += 1
                elif best == 1:
                    c1 -= 1.0
                    g1 += 1
                else:
                    c2 -= 1.0
                    g2 += 1
            carry = [c0, c1, c2]
            got = [g0, g1, g2]
        elif size and total > 0:
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


def _rake(quotas: list[list[float]], row_totals: Sequence[int], col_totals: Sequence[float]) -> None:
    """Scale the quota matrix in place (iterative proportional fitting, zeros stay zero) so that
    row s sums to row_totals[s] (the free items of the stratum) and column j sums, as closely as
    possible, to col_totals[j] rescaled to the same grand total (the free items each split still
    needs overall). Without sticky items the quotas already fit and nothing changes; with them,
    a split that sticky items overfill in some strata makes up for it in the others, so the
    totals stay at the target fractions."""
    grand = float(sum(row_totals))
    col_sum = sum(col_totals)
    if not quotas or grand <= 0 or col_sum <= 0:
        return
    cols = [c * grand / col_sum for c in col_totals]
    k = len(cols)
    for _ in range(200):
        for j in range(k):
            have = sum(q[j] for q in quotas)
            factor = cols[j] / have if have > 0 else 0.0
            for q in quotas:
                q[j] *= factor
        worst = 0.0
        for q, total in zip(quotas, row_totals, strict=True):
            have = sum(q)
            if have > 0:
                worst = max(worst, abs(have - total))
                for j in range(k):
                    q[j] *= total / have
        if worst < 1e-9:
            break


def _shared_int_list(col: Any) -> list[int]:
    """``col.tolist()`` (non-negative integers) whose equal entries are one Python int object (#21:
    8 bytes an entry, not 8 plus a 28-byte int each; a million items' cells are a few thousand values)."""
    import numpy as np
    col = np.asarray(col, dtype=np.int64)
    if col.size == 0:
        return []
    pool = np.empty(int(col.max()) + 1, dtype=object)
    pool[:] = range(int(col.max()) + 1)
    out: list[int] = pool[col].tolist()
    return out


def _serpentine(strata: Iterable[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Strata in serpentine order: sorted by the first key, within it by the second key in
    alternating direction, and so on, so that neighbours in the stream share as many leading
    values as possible and every key's values are spread evenly along it."""
    def order(group: list[tuple[str, ...]], depth: int, reverse: bool) -> list[tuple[str, ...]]:
        if not group or depth >= len(group[0]):
            return sorted(group)
        values = sorted({st[depth] for st in group}, reverse=reverse)
        out: list[tuple[str, ...]] = []
        for i, v in enumerate(values):
            out += order([st for st in group if st[depth] == v], depth + 1, i % 2 == 1)
        return out
    return order(list(strata), 0, False)


def assign_splits(
    items: Sequence[SplitItem],
    config: SplitConfig = SplitConfig(),  # noqa: B008 - frozen, so a safe default
    previous: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """sha256 -> split name for every item (keys in ascending sha256 order).

    previous: sha256 -> split of earlier releases; entries for images no longer present are
    ignored, a split name the config does not know is a ValueError (rename splits explicitly).
    Raises ValueError for duplicate sha256s.
    """
    previous = previous or {}
    names = config.split_names
    index = {n: j for j, n in enumerate(names)}
    fracs = [s for _, s in config.fractions]
    by_sha: dict[str, SplitItem] = {}
    for it in items:
        if it.sha256 in by_sha:
            raise ValueError(f"image {it.sha256} appears twice")
        by_sha[it.sha256] = it
    for sha, split in previous.items():
        if sha in by_sha and split not in index:
            raise ValueError(f"image {sha} was released in split {split!r}, which the config does not have "
                             f"(splits: {', '.join(names)})")

    width = config.age_bucket_width
    stratum = {sha: tuple(it.value(k, width) for k in config.strata) for sha, it in by_sha.items()}
    units: dict[str, list[str]] = defaultdict(list)
    for sha in sorted(by_sha):
        group = by_sha[sha].value(config.group_key, width) if config.group_key else UNKNOWN
        units[f"g:{group}" if group != UNKNOWN else f"i:{sha}"].append(sha)

    out: dict[str, str] = {}
    free: list[tuple[str, list[str]]] = []
    for key, members in units.items():
        sticky = [previous[s] for s in members if s in previous]
        if sticky:
            votes = Counter(sticky)
            common = max(votes.values())
            home = min((s for s, c in votes.items() if c == common), key=index.__getitem__)
            for s in members:
                out[s] = previous.get(s, home)
        else:
            unit_key = key[2:]
            free.append((_keyed(config.seed, unit_key), members))

    # Quotas of the still free items per stratum: f_j * stratum size - items fixed in j, clipped at 0.
    strata_sizes = Counter(stratum.values())
    fixed: dict[tuple[str, ...], list[int]] = {st: [0] * len(names) for st in strata_sizes}
    for sha, split in out.items():
        fixed[stratum[sha]][index[split]] += 1
    order = _serpentine(strata_sizes)
    if order:  # the seed picks where the stream starts (a systematic sample's random start)
        start = int(_keyed(config.seed, "stream start"), 16) % len(order)
        order = order[start:] + order[:start]
    quotas = [[max(0.0, f * strata_sizes[st] - fixed[st][j]) for j, f in enumerate(fracs)] for st in order]
    free_sizes = [strata_sizes[st] - sum(fixed[st]) for st in order]
    fixed_totals = [sum(fixed[st][j] for st in order) for j in range(len(names))]
    overall = [max(0.0, f * len(by_sha) - fixed_totals[j]) for j, f in enumerate(fracs)]
    _rake(quotas, free_sizes, overall)
    targets = _stream_targets(quotas, free_sizes)

    # The tables whose cells' deficits the fill reduces (module docstring, step 5): table -> cell ->
    # remaining deficit per split, and each item's cells.
    k = len(names)
    free.sort(key=lambda unit: (-len(unit[1]), unit[0]))
    # The marginal and total tables also let the test split drawn from the sample make up, in other
    # strata, for joint strata where the sample holds none of the images its targets ask for.
    grouped = config.balance_groups if config.balance_groups is not None else (
        any(len(m) > 1 for _, m in free) or config.test_from_model_independent)
    tables: list[tuple[float, dict[Any, list[float]]]] = [
        (1.0, {st: [float(t) for t in row] for st, row in zip(order, targets, strict=True)})]
    cells: dict[str, list[tuple[int, Any]]] = {sha: [(0, stratum[sha])] for sha in by_sha}

    def add_table(weight: float, cell_of: Mapping[str, Sequence[Any]]) -> None:
        sizes: Counter[Any] = Counter()
        fixed_in: dict[Any, list[int]] = defaultdict(lambda: [0] * k)
        for sha, cs in cell_of.items():
            for c in cs:
                sizes[c] += 1
                if sha in out:
                    fixed_in[c][index[out[sha]]] += 1
        t = len(tables)
        tables.append((weight, {c: [f * n - fixed_in[c][j] for j, f in enumerate(fracs)] for c, n in sizes.items()}))
        for sha, cs in cell_of.items():
            cells[sha] += [(t, c) for c in cs]

    if grouped:
        for key in config.strata:
            add_table(1.0, {sha: (by_sha[sha].value(key, width),) for sha in by_sha})
        add_table(1.0, {sha: ("all",) for sha in by_sha})
    if config.presence:
        n_present = sum(len(set(it.present)) for it in by_sha.values())
        if n_present:
            add_table(len(by_sha) / n_present, {sha: tuple(sorted(set(it.present))) for sha, it in by_sha.items()})

    allowed = [True] * k
    if config.test_from_model_independent:
        test = index[TEST_SPLIT]
        eligible = [u for u in free if all(by_sha[s].model_independent for s in u[1])]
        others = [u for u in free if not all(by_sha[s].model_independent for s in u[1])]
        phase1 = _eligible_targets(tables, cells, eligible, test, fracs)
        assigned = _fill(eligible, cells, [(w, t1) for (w, _), t1 in zip(tables, phase1, strict=True)],
                         _shares(phase1[0], k), allowed, out, names)
        for sha, j in assigned:  # what phase 1 placed no longer counts as a deficit
            for t, c in cells[sha]:
                tables[t][1][c][j] -= 1
        allowed[test] = False
        _fill(others, cells, tables, _shares(tables[0][1], k), allowed, out, names)
    else:
        _fill(free, cells, tables, fracs, allowed, out, names)
    return dict(sorted(out.items()))


def _shares(cellmap: Mapping[Any, Sequence[float]], k: int) -> list[float]:
    """Each split's share of the positive deficits left in a table: the fractions a phase of the
    fill works towards (the chi-square weighs a split's deviations by its expected share)."""
    totals = [sum(max(0.0, d[j]) for d in cellmap.values()) for j in range(k)]
    grand = sum(totals)
    return [max(t / grand, 1e-6) if grand > 0 else 1.0 / k for t in totals]


def _eligible_targets(tables: Sequence[tuple[float, Mapping[Any, Sequence[float]]]],
                      cells: Mapping[str, Sequence[tuple[int, Any]]], eligible: Sequence[tuple[str, list[str]]],
                      test: int, fracs: Sequence[float]) -> list[dict[Any, list[float]]]:
    """Targets for the units eligible for the test split (module docstring, step 6): per cell, the
    test split gets its whole deficit, up to the eligible items in the cell; the other splits share
    the eligible items left over in proportion to their own deficits."""
    count: list[Counter[Any]] = [Counter() for _ in tables]
    for _, members in eligible:
        for sha in members:
            for t, c in cells[sha]:
                count[t][c] += 1
    out: list[dict[Any, list[float]]] = []
    for t, (_, cellmap) in enumerate(tables):
        part: dict[Any, list[float]] = {}
        for c, d in cellmap.items():
            e = float(count[t][c])
            to_test = max(0.0, min(d[test], e))
            rest = [max(0.0, x) if j != test else 0.0 for j, x in enumerate(d)]
            if sum(rest) <= 0:
                rest = [f if j != test else 0.0 for j, f in enumerate(fracs)]
            total = sum(rest)
            part[c] = [to_test if j == test else (e - to_test) * rest[j] / total if total else 0.0
                       for j in range(len(d))]
        out.append(part)
    return out


def _fill(units: Sequence[tuple[str, list[str]]], cells: Mapping[str, Sequence[tuple[int, Any]]],
          tables: Sequence[tuple[float, dict[Any, list[float]]]], fracs: Sequence[float], allowed: Sequence[bool],
          out: dict[str, str], names: Sequence[str]) -> list[tuple[str, int]]:
    """Assign each unit, in the given order, to the allowed split that reduces the weighted
    chi-square of the remaining deficits most (module docstring, step 5); updates the deficits and
    ``out``; returns (sha256, split index) of every item assigned."""
    done: list[tuple[str, int]] = []
    splits = [j for j in range(len(names)) if allowed[j]]
    for _, members in units:
        counts = Counter(tc for s in members for tc in cells[s]) if len(members) > 1 else \
            dict.fromkeys(cells[members[0]], 1)
        # (weight, the cell's deficits per split, the unit's items in the cell)
        refs = [(tables[t][0], tables[t][1][c], m) for (t, c), m in counts.items()]
        base = sum(w * m * m for w, _, m in refs)
        best, best_cost = splits[0], math.inf
        for j in splits:
            cost = (base - 2.0 * sum([w * m * d[j] for w, d, m in refs])) / fracs[j]
            if cost < best_cost - 1e-9:
                best, best_cost = j, cost
        for _, d, m in refs:
            d[best] -= m
        for s in members:
            out[s] = names[best]
            done.append((s, best))
    return done


def _ordered_splits(assignment: Mapping[str, str], splits: Sequence[str] | None) -> list[str]:
    if splits is not None:
        return list(splits)
    known = [n for n, _ in DEFAULT_FRACTIONS]
    present = set(assignment.values())
    return [n for n in known if n in present] + sorted(present - set(known))


def balance_table(
    items: Iterable[SplitItem],
    assignment: Mapping[str, str],
    keys: Sequence[str] = BALANCE_KEYS,
    *,
    splits: Sequence[str] | None = None,
    age_bucket_width: int = 10,
    presence: bool = False,
) -> dict[str, Any]:
    """Counts and shares per stratum value per split, for the items that have a split.

    With ``presence``, also the key ``PRESENCE_KEY``: one row per emotion some item marks present,
    its count and share the images (of all, of the split) whose label marks it present.

    Returns (shares rounded to 6 decimals, values sorted, splits in ``splits`` order or
    train/validation/test then alphabetical)::

        {"total": N, "splits": {"train": {"n": 4000, "share": 0.8}, ...},
         "keys": {"gender": [{"value": "woman", "all": {"n": .., "share": ..},
                              "by_split": {"train": {"n": .., "share": ..}, ...}}, ...], ...}}

    A value's share in a split is its count over the split's size (0 for an empty split).
    """
    names = _ordered_splits(assignment, splits)
    chosen = [it for it in items if it.sha256 in assignment]
    total = len(chosen)
    split_n = Counter(assignment[it.sha256] for it in chosen)

    def cell(n: int, of: int) -> dict[str, Any]:
        return {"n": n, "share": round(n / of, 6) if of else 0.0}

    tables: dict[str, list[dict[str, Any]]] = {}
    for key in keys:
        overall: Counter[str] = Counter()
        per: dict[str, Counter[str]] = {n: Counter() for n in names}
        for it in chosen:
            v = it.value(key, age_bucket_width)
            overall[v] += 1
            per.setdefault(assignment[it.sha256], Counter())[v] += 1
        tables[key] = [
            {"value": v, "all": cell(overall[v], total),
             "by_split": {n: cell(per[n][v], split_n[n]) for n in names}}
            for v in sorted(overall)
        ]
    if presence:
        seen: Counter[str] = Counter()
        in_split: dict[str, Counter[str]] = {n: Counter() for n in names}
        for it in chosen:
            if it.present:
                marks = set(it.present)
                seen.update(marks)
                in_split.setdefault(assignment[it.sha256], Counter()).update(marks)
        tables[PRESENCE_KEY] = [{"value": e, "all": cell(seen[e], total),
                                 "by_split": {n: cell(in_split[n][e], split_n[n]) for n in names}}
                                for e in sorted(seen)]
    return {"total": total, "splits": {n: cell(split_n[n], total) for n in names}, "keys": tables}


def balance_tolerance(n_split: int, *, floor: float = 0.05, z: float = 2.0) -> float:
    """Allowed |share in split - overall share| for a split of n_split items: max(floor, z / sqrt(n)).

    Why: a share p estimated from n items has a standard error sqrt(p(1-p)/n) <= 0.5/sqrt(n), so
    2/sqrt(n) is at least four standard errors -- even a purely random split passes almost surely,
    and a stratified one stays far inside. The floor of 0.05 (five percentage points) keeps large
    splits from failing on differences too small to matter for a benchmark.
    """
    return max(floor, z / math.sqrt(n_split)) if n_split > 0 else math.inf


def check_balance(
    table: Mapping[str, Any],
    *,
    floor: float = 0.05,
    z: float = 2.0,
    fractions: Sequence[tuple[str, float]] | None = None,
    min_stratum: int = MIN_STRATUM,
    min_expected: float = 5.0,
) -> list[str]:
    """Violations (empty list = balanced) of a ``balance_table``.

    Rule: for every key, value and non-empty split of n items, |share of the value in the split -
    its overall share| <= max(floor, z / sqrt(n)) (``balance_tolerance``). A value with at least
    ``min_stratum`` items (N, default ``MIN_STRATUM`` = 20; an emotion present counts as a value of
    the ``PRESENCE_KEY`` rows) that is missing from a split entirely is a violation whenever the split
    should hold at least ``min_expected`` of them (its overall share x n): the share tolerance alone
    let a group of 2% of the images be absent from validation and test. Messages about a missing
    value start with ``MISSING``. With ``fractions``, also
    each split's share of all items must be within max(0.01, 1 / sqrt(N)) of its fraction.
    """
    problems: list[str] = []
    splits: Mapping[str, Mapping[str, Any]] = table["splits"]
    for key, rows in table["keys"].items():
        for row in rows:
            for split, c in row["by_split"].items():
                n_split = int(splits[split]["n"])
                if n_split == 0:
                    continue
                tol = balance_tolerance(n_split, floor=floor, z=z)
                expected = float(row["all"]["share"]) * n_split
                if int(c["n"]) == 0 and int(row["all"]["n"]) >= min_stratum and expected >= min_expected:
                    problems.append(f"{MISSING}{key}={row['value']}: none of its {row['all']['n']} images in {split} "
                                    f"(about {expected:.0f} expected)")
                diff = float(c["share"]) - float(row["all"]["share"])
                if abs(diff) > tol:
                    problems.append(f"{key}={row['value']}: share {c['share']:.3f} in {split} vs "
                                    f"{row['all']['share']:.3f} overall (off by {abs(diff):.3f} > {tol:.3f})")
    if fractions is not None:
        total = int(table["total"])
        tol_f = max(0.01, 1 / math.sqrt(total)) if total else math.inf
        for split, share in fractions:
            got = float(splits[split]["share"]) if split in splits else 0.0
            if abs(got - share) > tol_f:
                problems.append(f"split {split}: {got:.3f} of all images vs target {share:.3f} "
                                f"(off by more than {tol_f:.3f})")
    return problems


# --------------------------------------------------------------------------------------------------
# The same algorithm on arrays (#21): a million images without a Python object per image. The
# per-item functions above stay the readable reference for small inputs; ``assign_splits_frame``
# and ``balance_table_frame`` give exactly their results (tests/annotation/test_splits_frame.py
# compares them on random inputs with groups, sticky items, presence and the model-independent test).


@dataclass(frozen=True)
class SplitFrame:
    """The splitter's view of n images as arrays (item i = row i of every array).

    sha256: (n,) str array. attrs: key -> (values, codes): the item's value for a stratum or group
    key is ``values[codes[i]]``, already as ``SplitItem.value`` gives it (stripped, "" -> UNKNOWN,
    ages as buckets). present: (n, E) bool, the emotions the label marks present (columns named
    by ``emotions``), or None. model_independent: (n,) bool.
    """

    sha256: Any
    attrs: Mapping[str, tuple[Sequence[str], Any]]
    present: Any = None
    emotions: tuple[str, ...] = ()
    model_independent: Any = None

    @property
    def n(self) -> int:
        return int(len(self.sha256))


def frame_values(raw: Any) -> tuple[list[str], Any]:
    """(values, codes) of a string column as ``SplitItem.value`` maps it (stripped, "" -> UNKNOWN)."""
    import numpy as np

    uniq, inverse = np.unique(np.asarray(raw, dtype=object).astype(str), return_inverse=True)
    mapped = [u.strip() or UNKNOWN for u in uniq.tolist()]
    values = sorted(set(mapped))
    pos = {v: i for i, v in enumerate(values)}
    remap = np.array([pos[m] for m in mapped], dtype=np.int64)
    return values, remap[inverse.reshape(-1)] if uniq.size else np.zeros(0, dtype=np.int64)


def frame_ages(ages: Any, age_bucket_width: int = 10) -> tuple[list[str], Any]:
    """(values, codes) of an age column (int array, negative = unknown) as ``SplitItem.value`` maps it."""
    import numpy as np

    a = np.asarray(ages, dtype=np.int64)
    uniq, inverse = np.unique(a, return_inverse=True)
    mapped = [SplitItem(sha256="", age=None if int(u) < 0 else int(u)).value("age", age_bucket_width)
              for u in uniq.tolist()]
    values = sorted(set(mapped))
    pos = {v: i for i, v in enumerate(values)}
    remap = np.array([pos[m] for m in mapped], dtype=np.int64)
    return values, remap[inverse.reshape(-1)] if uniq.size else np.zeros(0, dtype=np.int64)


def split_frame(items: Sequence[SplitItem], config: SplitConfig, emotions: Sequence[str] = ()) -> SplitFrame:
    """The frame of SplitItems (for tests and small inputs; the release builds its frame from columns)."""
    import numpy as np

    keys = list(dict.fromkeys([*config.strata, *([config.group_key] if config.group_key else [])]))
    attrs: dict[str, tuple[Sequence[str], Any]] = {}
    for key in keys:
        vals = [it.value(key, config.age_bucket_width) for it in items]
        values = sorted(set(vals))
        pos = {v: i for i, v in enumerate(values)}
        attrs[key] = (values, np.array([pos[v] for v in vals], dtype=np.int64))
    names = tuple(emotions) or tuple(sorted({e for it in items for e in it.present}))
    col = {e: j for j, e in enumerate(names)}
    present = np.zeros((len(items), len(names)), dtype=bool)
    for i, it in enumerate(items):
        for e in it.present:
            present[i, col[e]] = True
    return SplitFrame(sha256=np.array([it.sha256 for it in items], dtype=str), attrs=attrs, present=present,
                      emotions=names, model_independent=np.array([it.model_independent for it in items], dtype=bool))


def assign_splits_frame(frame: SplitFrame, config: SplitConfig = SplitConfig(),  # noqa: B008 - frozen
                        previous: Mapping[str, str] | tuple[Any, Any] | None = None) -> Any:
    """``assign_splits`` on a SplitFrame: the split of every item as an int8 array (index into
    ``config.split_names``, item order). ``previous`` as a mapping or as two arrays (sha256s, each
    once, and their splits). Same errors as ``assign_splits``."""
    import numpy as np

    names = config.split_names
    k = len(names)
    index = {n: j for j, n in enumerate(names)}
    fracs = [s for _, s in config.fractions]
    n = frame.n
    sha = np.asarray(frame.sha256)  # bytes ("S64": 64 bytes an image) or str
    if sha.dtype.kind not in "SU":
        sha = sha.astype(str)

    def text(x: Any) -> str:
        return x.decode() if isinstance(x, bytes) else str(x)

    by_sha = np.argsort(sha, kind="stable")  # item of each position in ascending sha256 order
    sorted_sha = sha[by_sha]
    if n > 1:
        same = sorted_sha[1:] == sorted_sha[:-1]
        if same.any():
            raise ValueError(f"image {text(sha[int(by_sha[1:][same].min())])} appears twice")
    prev = np.full(n, -1, dtype=np.int64)
    if isinstance(previous, tuple):  # (sha256s, their splits) as arrays, each sha256 once
        prev_sha, prev_names = np.asarray(previous[0]), np.asarray(previous[1], dtype=str)
    else:
        prev_sha = np.array(list((previous or {}).keys()), dtype=str)
        prev_names = np.array(list((previous or {}).values()), dtype=str)
    if prev_sha.size and n:
        if prev_sha.dtype.kind != sha.dtype.kind:
            prev_sha = prev_sha.astype(sha.dtype.kind)
        uniq_names, name_code = np.unique(prev_names, return_inverse=True)
        prev_split = np.array([index.get(v, -1) for v in uniq_names.tolist()], dtype=np.int64)[name_code.reshape(-1)]
        p = np.minimum(np.searchsorted(sorted_sha, prev_sha), n - 1)
        hit = sorted_sha[p] == prev_sha
        bad = np.flatnonzero(hit & (prev_split < 0))
        if bad.size:
            raise ValueError(f"image {text(prev_sha[bad[0]])} was released in split {str(prev_names[bad[0]])!r}, "
                             f"which the config does not have (splits: {', '.join(names)})")
        prev[by_sha[p[hit]]] = prev_split[hit]
    del sorted_sha
    has_previous = bool((prev >= 0).any())

    # strata: one code per item (first appearance in item order, as the Counter of the reference)
    key_codes = [np.asarray(frame.attrs[key][1], dtype=np.int64) for key in config.strata]
    combo = np.zeros(n, dtype=np.int64)
    for key, codes in zip(config.strata, key_codes, strict=True):
        combo = combo * max(len(frame.attrs[key][0]), 1) + codes
    _, first, st_inv = np.unique(combo, return_index=True, return_inverse=True)
    st_inv = st_inv.reshape(-1)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)
    st_code = rank[st_inv]  # stratum of each item, in first-appearance order
    del combo, st_inv  # (#21: the million-image scratch goes as soon as it is read)
    first_items = np.sort(first)
    strata_tuples = [tuple(frame.attrs[key][0][int(codes[i])] for key, codes in zip(config.strata, key_codes,
                                                                                     strict=True))
                     for i in first_items.tolist()]

    # units: in ascending sha256 order of their first member; members in sha256 order
    if config.group_key:
        gvalues, gcodes = frame.attrs[config.group_key]
        unknown = [j for j, v in enumerate(gvalues) if v == UNKNOWN]
        g = np.asarray(gcodes, dtype=np.int64)[by_sha]
        if unknown:
            g = np.where(g == unknown[0], -1, g)
    else:
        gvalues, g = [], np.full(n, -1, dtype=np.int64)
    label = np.where(g >= 0, g, len(gvalues) + np.arange(n, dtype=np.int64))
    _, ufirst, uinv = np.unique(label, return_index=True, return_inverse=True)
    uinv = uinv.reshape(-1)
    urank = np.empty(ufirst.size, dtype=np.int64)
    urank[np.argsort(ufirst, kind="stable")] = np.arange(ufirst.size)
    unit_of_pos = urank[uinv]
    n_units = int(ufirst.size)
    member_pos = np.argsort(unit_of_pos, kind="stable")  # positions grouped by unit, sha order within
    members = by_sha[member_pos]  # items grouped by unit
    sizes = np.bincount(unit_of_pos, minlength=n_units)
    ustart = np.concatenate(([0], np.cumsum(sizes)))
    del label, uinv, unit_of_pos, by_sha
    out = np.full(n, -1, dtype=np.int64)

    # sticky units: every member keeps its earlier split, new members join the most common one
    if has_previous:
        pos_prev = prev[members]
        unit_of_member = np.repeat(np.arange(n_units), sizes)
        has = pos_prev >= 0
        votes = np.zeros((n_units, k), dtype=np.int64)
        np.add.at(votes, (unit_of_member[has], pos_prev[has]), 1)
        sticky_unit = votes.sum(axis=1) > 0
        home = np.argmax(votes, axis=1)
        st_m = sticky_unit[unit_of_member]
        out[members[st_m]] = np.where(has[st_m], pos_prev[st_m], home[unit_of_member[st_m]])
    else:
        sticky_unit = np.zeros(n_units, dtype=bool)
    free_units = np.flatnonzero(~sticky_unit)
    # the keyed hash order of the free units (largest first)
    first_member = members[ustart[:-1][free_units]]
    if config.group_key:
        ukeys: Any = (gvalues[int(c)].encode() if c >= 0 else text(sha[it]).encode() for c, it in
                      zip(g[member_pos[ustart[:-1][free_units]]].tolist(), first_member.tolist(), strict=True))
    else:
        ukeys = (bytes(x) for x in sha[first_member]) if sha.dtype.kind == "S" else \
            (x.encode() for x in sha[first_member].tolist())
    prefix = f"{config.seed}:".encode()
    # one 32-byte digest per unit, straight into the array (no list of a million bytes objects)
    digests = np.fromiter((hashlib.sha256(prefix + key).digest() for key in ukeys), dtype="S32",
                          count=int(free_units.size))
    if free_units.size:
        o = np.argsort(digests, kind="stable")
        o = o[np.argsort(-sizes[free_units][o], kind="stable")]
        free_units = free_units[o]
    del digests, member_pos

    # quotas and integer targets per stratum (as the reference)
    n_st = len(strata_tuples)
    strata_sizes = np.bincount(st_code, minlength=n_st)
    fixed_arr = np.zeros((n_st, k), dtype=np.int64)
    done_items = out >= 0
    np.add.at(fixed_arr, (st_code[done_items], out[done_items]), 1)
    st_index = {st: i for i, st in enumerate(strata_tuples)}
    order = _serpentine(strata_tuples)
    if order:
        start = int(_keyed(config.seed, "stream start"), 16) % len(order)
        order = order[start:] + order[:start]
    order_idx = [st_index[st] for st in order]
    ssz = strata_sizes.tolist()
    fx = fixed_arr.tolist()
    quotas = [[max(0.0, f * ssz[s] - fx[s][j]) for j, f in enumerate(fracs)] for s in order_idx]
    free_sizes = [ssz[s] - sum(fx[s]) for s in order_idx]
    fixed_totals = [sum(fx[s][j] for s in order_idx) for j in range(k)]
    overall = [max(0.0, f * n - fixed_totals[j]) for j, f in enumerate(fracs)]
    _rake(quotas, free_sizes, overall)
    targets = _stream_targets(quotas, free_sizes)

    grouped = config.balance_groups if config.balance_groups is not None else (
        bool((sizes[free_units] > 1).any()) or config.test_from_model_independent)
    # global cells: table 0 (strata in stream order), then the marginal tables and presence
    deficits: list[list[float]] = [[float(t) for t in row] for row in targets]
    weights: list[float] = [1.0] * len(order_idx)
    table_bounds: list[tuple[int, int]] = [(0, len(order_idx))]
    cell_of_stratum = np.empty(n_st, dtype=np.int64)
    cell_of_stratum[np.asarray(order_idx, dtype=np.int64)] = np.arange(len(order_idx))
    item_cols: list[Any] = [cell_of_stratum[st_code]]  # (n,) global cell per table, in table order

    def add_table(weight: float, codes: Any) -> Any:
        """A one-cell-per-item table; returns the items' global cells."""
        _, cfirst, cinv = np.unique(codes, return_index=True, return_inverse=True)
        cinv = cinv.reshape(-1)
        crank = np.empty(cfirst.size, dtype=np.int64)
        crank[np.argsort(cfirst, kind="stable")] = np.arange(cfirst.size)
        local = crank[cinv]
        m = int(cfirst.size)
        csize = np.bincount(local, minlength=m).tolist()
        fixed_in = np.zeros((m, k), dtype=np.int64)
        np.add.at(fixed_in, (local[done_items], out[done_items]), 1)
        fi = fixed_in.tolist()
        base = len(deficits)
        deficits.extend([f * csize[c] - fi[c][j] for j, f in enumerate(fracs)] for c in range(m))
        weights.extend([weight] * m)
        table_bounds.append((base, base + m))
        return base + local

    if grouped:
        for codes in key_codes:
            item_cols.append(add_table(1.0, codes))
        item_cols.append(add_table(1.0, np.zeros(n, dtype=np.int64)))
    cols = np.stack(item_cols, axis=1) if n else np.zeros((0, len(item_cols)), dtype=np.int64)
    del item_cols  # (#21: stacked in cols, then the lists below: never three copies at once)
    # compact integer sequences (array.array: 4 or 8 bytes an entry, not a Python int object each)
    pres_ptr: Any = array("q", bytes(8 * (n + 1)))
    pres_cells: Any = array("i")
    if config.presence and frame.present is not None and frame.n:
        present = np.asarray(frame.present, dtype=bool)
        n_present = int(present.sum())
        if n_present:
            # cells in first-appearance order (item order, then emotion name order), from the
            # columns' first rows; the items' cells (name order) a block of rows at a time
            n_e = len(frame.emotions)
            by_name = sorted(range(n_e), key=lambda e: frame.emotions[e])
            name_pos = {e: q for q, e in enumerate(by_name)}
            seen = np.asarray(present.any(axis=0), dtype=bool).tolist()
            first_row = present.argmax(axis=0)
            used = sorted((e for e in range(n_e) if seen[e]), key=lambda e: (int(first_row[e]), name_pos[e]))
            m = len(used)
            erank = np.full(n_e, -1, dtype=np.int64)
            erank[np.asarray(used, dtype=np.int64)] = np.arange(m)
            csize = present.sum(axis=0)[used].tolist()
            fixed_in = np.zeros((m, k), dtype=np.int64)
            if done_items.any():
                for j in range(k):
                    fixed_in[:, j] = present[done_items & (out == j)].sum(axis=0)[used]
            fi = fixed_in.tolist()
            base = len(deficits)
            weight = n / n_present
            deficits.extend([f * csize[c] - fi[c][j] for j, f in enumerate(fracs)] for c in range(m))
            weights.extend([weight] * m)
            table_bounds.append((base, base + m))
            cell_by_name = (base + erank[by_name]).astype(np.int32)  # global cell of each name-ordered column
            for b0 in range(0, n, 65536):
                _r, col = np.nonzero(present[b0:b0 + 65536][:, by_name])  # row-major: emotions in name order
                pres_cells.frombytes(cell_by_name[col].tobytes())
            pres_ptr = array("q", np.concatenate(([0], np.cumsum(present.sum(axis=1, dtype=np.int64))))
                             .astype(np.int64).tobytes())

    col_lists = [_shared_int_list(cols[:, t]) for t in range(cols.shape[1])]  # flat lists: no list per item
    n_cols = cols.shape[1]
    del cols
    col0, col_rest = col_lists[0], col_lists[1:]
    members_l = array("q", members.astype(np.int64).tobytes())
    ustart_l = array("q", ustart.astype(np.int64).tobytes())

    def cells_of(i: int) -> list[int]:
        cells: list[int] = [col[i] for col in col_lists] + pres_cells[pres_ptr[i]:pres_ptr[i + 1]].tolist()
        return cells

    out_l: list[int] = out.tolist()
    # Single images (the usual unit), in the reference's arithmetic to the bit: their cells are the
    # weight-1 cells (stratum, keys, all) then the presence cells (weight ``wp``); m = 1, so
    # w * m * d[j] is d[j] (weight 1) or wp * d[j], summed left to right as sum() does, and
    # base = sum(w * m * m) depends only on the number of presence cells (``base_of``).
    wp = weights[pres_cells[0]] if pres_cells else 0.0
    base_of: list[float] = []
    acc: float = 0
    for _ in range(n_cols):
        acc = acc + 1.0 * 1 * 1
    for _ in range(len(frame.emotions) + 1):
        base_of.append(acc)
        acc = acc + wp * 1 * 1

    def fill(units: Any, defs: list[list[float]], fr: Sequence[float], allowed: Sequence[bool]) -> list[int]:
        splits = [j for j in range(k) if allowed[j]]
        placed: list[int] = []
        inf = math.inf
        fast = len(splits) in (2, 3)
        ja, jb, jc = (splits + [splits[-1]])[:3] if fast else (0, 0, 0)
        three = len(splits) == 3
        fa, fb, fc = fr[ja], fr[jb], fr[jc]
        for u in array("q", np.asarray(units, dtype=np.int64).tobytes()):
            lo, hi = ustart_l[u], ustart_l[u + 1]
            if hi - lo == 1 and fast:
                i = members_l[lo]
                d = defs[col0[i]]
                a, b, c = d[ja], d[jb], d[jc]
                ds = [d]
                for col in col_rest:
                    d = defs[col[i]]
                    a += d[ja]
                    b += d[jb]
                    c += d[jc]
                    ds.append(d)
                p0, p1 = pres_ptr[i], pres_ptr[i + 1]
                for x in pres_cells[p0:p1]:
                    d = defs[x]
                    a += wp * d[ja]
                    b += wp * d[jb]
                    c += wp * d[jc]
                    ds.append(d)
                base = base_of[p1 - p0]
                best, best_cost = ja, inf
                cost = (base - 2.0 * a) / fa
                if cost < best_cost - 1e-9:
                    best, best_cost = ja, cost
                cost = (base - 2.0 * b) / fb
                if cost < best_cost - 1e-9:
                    best, best_cost = jb, cost
                if three:
                    cost = (base - 2.0 * c) / fc
                    if cost < best_cost - 1e-9:
                        best = jc
                for d in ds:
                    d[best] -= 1
                out_l[i] = best
                placed.append(i)
                continue
            if hi - lo > 1:
                counts: dict[int, int] = {}
                for i in members_l[lo:hi]:
                    for x in cells_of(i):
                        counts[x] = counts.get(x, 0) + 1
            else:
                counts = dict.fromkeys(cells_of(members_l[lo]), 1)
            refs = [(weights[x], defs[x], m) for x, m in counts.items()]
            base = sum(w * m * m for w, _, m in refs)
            best, best_cost = splits[0], inf
            for j in splits:
                cost = (base - 2.0 * sum([w * m * d[j] for w, d, m in refs])) / fr[j]
                if cost < best_cost - 1e-9:
                    best, best_cost = j, cost
            for _, d, m in refs:
                d[best] -= m
            for i in members_l[lo:hi]:
                out_l[i] = best
                placed.append(i)
        return placed

    def shares(lo: int, hi: int, defs: list[list[float]]) -> list[float]:
        totals = [sum(max(0.0, d[j]) for d in defs[lo:hi]) for j in range(k)]
        grand = sum(totals)
        return [max(t / grand, 1e-6) if grand > 0 else 1.0 / k for t in totals]

    allowed = [True] * k
    if config.test_from_model_independent:
        test = index[TEST_SPLIT]
        mi = np.asarray(frame.model_independent, dtype=bool)
        unit_all_mi = np.ones(n_units, dtype=bool)
        np.logical_and.at(unit_all_mi, np.repeat(np.arange(n_units), sizes), mi[members])
        elig = unit_all_mi[free_units]
        eligible, others = free_units[elig], free_units[~elig]
        # per cell, the eligible items (the reference's _eligible_targets)
        count = [0] * len(deficits)
        for u in eligible.tolist():
            for i in members_l[ustart_l[u]:ustart_l[u + 1]]:
                for c in cells_of(i):
                    count[c] += 1
        phase1: list[list[float]] = []
        for c, d in enumerate(deficits):
            e = float(count[c])
            to_test = max(0.0, min(d[test], e))
            rest = [max(0.0, x) if j != test else 0.0 for j, x in enumerate(d)]
            if sum(rest) <= 0:
                rest = [f if j != test else 0.0 for j, f in enumerate(fracs)]
            total = sum(rest)
            phase1.append([to_test if j == test else (e - to_test) * rest[j] / total if total else 0.0
                           for j in range(len(d))])
        placed = fill(eligible, phase1, shares(*table_bounds[0], phase1), allowed)
        for i in placed:
            j = out_l[i]
            for c in cells_of(i):
                deficits[c][j] -= 1
        allowed[test] = False
        fill(others, deficits, shares(*table_bounds[0], deficits), allowed)
    else:
        fill(free_units, deficits, fracs, allowed)
    return np.array(out_l, dtype=np.int8)


def balance_table_frame(frame: SplitFrame, split: Any, names: Sequence[str],
                        keys: Sequence[str] = BALANCE_KEYS, *, presence: bool = False) -> dict[str, Any]:
    """``balance_table`` on a SplitFrame: ``split`` (n,) index into ``names`` per item (negative:
    no split). Same table, to the last digit."""
    import numpy as np

    sp = np.asarray(split, dtype=np.int64)
    chosen = sp >= 0
    used = {names[int(j)] for j in np.unique(sp[chosen]).tolist()}
    order = _ordered_splits({s: s for s in sorted(used)}, None)
    col = {nm: j for j, nm in enumerate(names)}
    total = int(chosen.sum())
    per_split = np.bincount(sp[chosen], minlength=len(names))
    split_n = {nm: int(per_split[col[nm]]) for nm in order}

    def cell(n: int, of: int) -> dict[str, Any]:
        return {"n": n, "share": round(n / of, 6) if of else 0.0}

    tables: dict[str, list[dict[str, Any]]] = {}
    for key in keys:
        values, codes = frame.attrs[key]
        c = np.asarray(codes, dtype=np.int64)[chosen]
        counts = np.zeros((len(values), len(names)), dtype=np.int64)
        np.add.at(counts, (c, sp[chosen]), 1)
        overall = counts.sum(axis=1)
        rows = []
        for v in sorted(range(len(values)), key=lambda v: values[v]):
            if overall[v] == 0:
                continue
            rows.append({"value": values[v], "all": cell(int(overall[v]), total),
                         "by_split": {nm: cell(int(counts[v, col[nm]]), split_n[nm]) for nm in order}})
        tables[key] = rows
    if presence:
        p = np.asarray(frame.present, dtype=bool)[chosen] if frame.present is not None else np.zeros((total, 0), bool)
        seen = p.sum(axis=0)
        in_split = np.zeros((p.shape[1], len(names)), dtype=np.int64)
        for j in range(len(names)):
            in_split[:, j] = p[sp[chosen] == j].sum(axis=0)
        tables[PRESENCE_KEY] = [{"value": frame.emotions[e], "all": cell(int(seen[e]), total),
                                 "by_split": {nm: cell(int(in_split[e, col[nm]]), split_n[nm]) for nm in order}}
                                for e in sorted(range(p.shape[1]), key=lambda e: frame.emotions[e]) if seen[e] > 0]
    return {"total": total, "splits": {nm: cell(split_n[nm], total) for nm in order}, "keys": tables}
