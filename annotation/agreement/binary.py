"""Binary mode (part of annotation.agreement; contracts in its docstring)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import numpy.typing as npt

from .coefficient import alpha
from .constants import CONDITIONAL_DESIGN_WARNING
from .prepare import _as_1d, _factorize
from .results import BinaryAgreement


def binary_agreement(
    units: npt.ArrayLike,
    raters: npt.ArrayLike,
    emotions: npt.ArrayLike,
    votes: npt.ArrayLike,
    *,
    n_emotions: int,
    conditional_design: bool = False,
) -> list[BinaryAgreement]:
    """Nominal alpha on yes(1)/no(0) votes and the vote-pattern table, per emotion.

    One row per vote: image ``units[i]``, rater ``raters[i]``, emotion index ``emotions[i]``
    (0..n_emotions-1), vote ``votes[i]`` in {0, 1}. Set ``conditional_design`` when raters were
    added only while all earlier raters said yes: the result then carries a warning that alpha
    is biased by the design itself.
    """
    u = _as_1d("units", units)
    r = _as_1d("raters", raters)
    em = _as_1d("emotions", emotions)
    vt = np.asarray(_as_1d("votes", votes), dtype=np.float64)
    if not (r.size == u.size == em.size == vt.size):
        raise ValueError("units, raters, emotions and votes must have the same length")
    if not np.all((vt == 0) | (vt == 1)):
        bad = int(np.flatnonzero(~((vt == 0) | (vt == 1)))[0])
        raise ValueError(f"votes[{bad}] = {vt[bad]!r}: votes must be 0 (no) or 1 (yes)")
    em_i = np.asarray(em, dtype=np.intp)
    if em_i.size and (int(em_i.min()) < 0 or int(em_i.max()) >= n_emotions):
        raise ValueError(f"emotions must be in 0..{n_emotions - 1}")
    out: list[BinaryAgreement] = []
    for e in range(n_emotions):
        keep = em_i == e
        ue, re_, ve = u[keep], r[keep], vt[keep]
        res = alpha(ue, ve, level="nominal", domain=(0, 1), raters=re_)
        idx, _ = _factorize(ue) if ue.size else (np.zeros(0, np.intp), ue)
        total = np.bincount(idx).astype(np.intp) if ue.size else np.zeros(0, np.intp)
        yes = np.bincount(idx, weights=ve).astype(np.intp) if ue.size else np.zeros(0, np.intp)
        multi = total >= 2
        pats: dict[tuple[int, int], int] = defaultdict(int)
        for t, y in zip(total[multi].tolist(), yes[multi].tolist(), strict=True):
            pats[(t, y)] += 1
        ordered = sorted(pats.items(), key=lambda kv: (-kv[0][0], -kv[0][1]))
        table = {f"{y}:{t - y}": c for (t, y), c in ordered}
        warning = CONDITIONAL_DESIGN_WARNING if conditional_design else None
        out.append(BinaryAgreement(e, res, int(multi.sum()), table, warning))
    return out
