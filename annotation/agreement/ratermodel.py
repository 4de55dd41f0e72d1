"""A measurement model for expert ratings: rater effects and soft labels (PURE: numpy only).

docs/agreement.md, "Measurement model", defines every figure. In short, per emotion e, image i,
rater r and rating y in 0..K (K = the scale's maximum):

* presence (the hurdle): ``P(y > 0) = sigmoid(a_ie + s_re)``; ``a_ie ~ N(mu_e, sa_e^2)`` is the
  image's latent presence, ``s_re`` the rater's presence shift (> 0: marks presence more readily
  than the panel);
* intensity given presence, cumulative logit:
  ``P(y <= k | y > 0) = sigmoid(lambda_r * (c_ek - b_ie - d_re))`` for k = 1..K-1, with ``b_ie ~
  N(0, sb_e^2)`` the image's latent intensity, ``d_re`` the rater's intensity shift and
  ``lambda_r = exp(l_r)`` the rater's discrimination (larger: less noise), shared by the emotions;
* rater effects are shrunk (ridge / random effects): ``s_re ~ N(theta_r, tau_s^2)``, ``theta_r ~
  N(0, omega_s^2)`` pools a rater's effects across emotions (the same for ``d`` with ``phi_r``);
  ``l_r ~ N(0, 0.5^2)``. The variances are estimated (empirical Bayes). Rater effects are centred
  to a rating-weighted mean of 0 per emotion (sum-to-zero): "the panel" is the average rating.

Fitting is a vectorised Laplace-EM: alternating blocks (image latents, rater effects, cut-points,
discriminations, variances), each a Newton step over all images or raters at once with
``np.bincount``; an image's posterior is approximated by a normal at its mode, and the rater
presence and discrimination steps use each rating's marginal likelihood: the image's value
without that rating (its cavity) and that value's uncertainty folded into the noise by the probit
approximation, which removes most of the small-cluster bias of a joint mode. Loops run over
emotions only. Simulated coverage of the rater effects' 95% intervals: bench/ratermodel_coverage.py.

Binary mode: :func:`dawid_skene` (per rater sensitivity and specificity; EM, vectorised).
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

Z95 = 1.959963984540054
_BIG = 40.0  # stands in for the infinite outer cut-points (sigmoid(40) == 1 in float64)
_GH_X, _GH_W = np.polynomial.hermite.hermgauss(9)
_GH_W = _GH_W / math.sqrt(math.pi)
_GH_X = _GH_X * math.sqrt(2.0)  # nodes for E[f(m + sqrt(v) z)], z ~ N(0, 1)


@dataclass(frozen=True)
class RaterModelConfig:
    """Fitting controls. ``tol``: largest change (logits) of any rater effect, cut-point or
    discrimination, and of any standard deviation, between two sweeps for convergence."""

    max_iter: int = 200
    tol: float = 2e-3
    threads: int = 2  # emotion chunks fitted side by side (numpy releases the GIL in its loops)
    min_ratings: int = 20
    discrimination_sd: float = 0.5
    variance_floor: float = 0.01
    image_steps: int = 1


@dataclass
class RaterModelFit:
    """A fitted model. Arrays over raters x emotions are (R, E); over emotions x images (E, N).

    ``converged`` False means the figures must not be used (callers refuse them)."""

    converged: bool
    iterations: int
    max_change: float
    seconds: float
    scale_max: int
    unit_ids: npt.NDArray[Any]
    rater_ids: npt.NDArray[Any]
    n_ratings: IntArray  # (R, E) ratings of each emotion by each rater
    n_present: IntArray  # (R, E) of them non-zero
    few_ratings: npt.NDArray[np.bool_]  # (R,) fewer than min_ratings ratings: held at the panel
    presence_shift: FloatArray  # (R, E) logits
    presence_se: FloatArray
    intensity_latent: FloatArray  # (R, E) d_re on the latent logit scale
    intensity_latent_se: FloatArray
    intensity_shift: FloatArray  # (R, E) in scale steps, for an average present image
    intensity_ci: FloatArray  # (R, E, 2) in scale steps
    discrimination: FloatArray  # (R,) lambda_r
    presence_mean: FloatArray  # (E,) mu_e
    presence_sd: FloatArray  # (E,) sa_e
    intensity_sd: FloatArray  # (E,) sb_e
    cutpoints: FloatArray  # (E, K-1)
    p_present: FloatArray  # (E, N)
    expected_intensity: FloatArray  # (E, N)
    sd: FloatArray  # (E, N) posterior sd of the expected rating p_present * expected_intensity
    # (N,) expected reduction of the labels' posterior variance (squared steps, summed over the
    # emotions) from one more rating by a typical expert: where another rating helps most.
    information_gain: FloatArray
    ambiguity: FloatArray  # (N,) the image's largest label sd over the emotions (scale steps)
    warnings: list[str] = field(default_factory=list)
    # The pooling's standard deviations (empirical Bayes): per-emotion deviation of a rater's
    # effect from the rater's own mean (tau) and spread of the raters' means (omega), presence
    # in logits, intensity on the latent scale: keys tau_s, omega_s, tau_d, omega_d.
    effect_sd: dict[str, float] = field(default_factory=dict)

    @property
    def presence_ci(self) -> FloatArray:
        lo = self.presence_shift - Z95 * self.presence_se
        hi = self.presence_shift + Z95 * self.presence_se
        return np.stack([lo, hi], axis=-1)

    @property
    def expected_rating(self) -> FloatArray:
        """(E, N): the expected rating of a typical expert, p_present x expected_intensity."""
        return self.p_present * self.expected_intensity


def _sigmoid(x: FloatArray) -> FloatArray:
    """1 / (1 + exp(-x)) as 0.5 + 0.5 tanh(x / 2): no overflow, and 4x faster than scipy's expit."""
    out: FloatArray = np.multiply(x, 0.5)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def _factorize(ids: npt.NDArray[Any]) -> tuple[IntArray, npt.NDArray[Any]]:
    uniq, inv = np.unique(ids, return_inverse=True)
    return inv.astype(np.intp).reshape(-1), uniq


def _mean_rating(cut: FloatArray, x: FloatArray) -> FloatArray:
    """E[y | y > 0, latent x] for a rater with no shift and discrimination 1: 1 + sum_k P(y > k)."""
    out = np.ones_like(x)
    for c in cut:
        out += _sigmoid(x - c)
    return out


def _validate(values: FloatArray, scale_max: int) -> npt.NDArray[np.int8]:
    finite = ~np.isnan(values)
    v = values[finite]
    bad = (v < 0) | (v > scale_max) | (v != np.round(v))
    if bad.any():
        rows, cols = np.nonzero(finite)
        k = int(np.flatnonzero(bad)[0])
        raise ValueError(f"values2d[{rows[k]}, {cols[k]}] = {float(v[k])!r}: ratings must be whole numbers "
                         f"in 0..{scale_max} (or NaN for missing)")
    out = np.full(values.shape, -1, dtype=np.int8)
    out[finite] = v.astype(np.int8)
    return out


def fit_rater_model(units: npt.ArrayLike, raters: npt.ArrayLike, values2d: npt.ArrayLike, *,
                    scale_max: int, config: RaterModelConfig | None = None) -> RaterModelFit:
    """Fit the hurdle model to a long table (one row per image x rater; NaN = not rated).

    Raises ValueError for a value outside 0..scale_max, a non-integer, mismatched lengths, a
    duplicate (image, rater) pair or a table with no ratings. A fit that did not converge in
    ``config.max_iter`` sweeps is returned with ``converged=False``.
    """
    cfg = config or RaterModelConfig()
    t0 = time.perf_counter()
    u = np.asarray(units)
    r = np.asarray(raters)
    x = np.asarray(values2d, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if u.ndim != 1 or r.ndim != 1 or x.ndim != 2 or not (u.size == r.size == x.shape[0]):
        raise ValueError("units and raters must be 1-D with one entry per row of values2d")
    if u.size == 0:
        raise ValueError("no ratings to fit")
    if scale_max < 1:
        raise ValueError(f"scale_max must be at least 1, got {scale_max}")
    y_all = _validate(x, scale_max)
    ui, unit_ids = _factorize(u)
    ri, rater_ids = _factorize(r)
    n_units, n_raters, n_emo = unit_ids.size, rater_ids.size, x.shape[1]
    key = ui.astype(np.int64) * n_raters + ri
    if np.unique(key).size != key.size:
        srt = np.sort(key)
        dup = int(srt[np.flatnonzero(np.diff(srt) == 0)[0]])
        raise ValueError(f"duplicate rating: image {unit_ids[dup // n_raters].item()!r} rated twice by "
                         f"rater {rater_ids[dup % n_raters].item()!r}")
    warnings: list[str] = []
    yt = np.ascontiguousarray(y_all.T)
    chunks = _chunks(yt, ui, ri, n_units, n_raters, scale_max, cfg.threads)
    del yt, y_all
    n_r_total = np.bincount(ri, minlength=n_raters)
    few = n_r_total < cfg.min_ratings
    if few.any():
        warnings.append(f"{int(few.sum())} rater(s) with fewer than {cfg.min_ratings} ratings are held at "
                        "the panel (effects 0, no interval)")
    n_comp = _components(ui, ri, n_units, n_raters)
    if n_comp > 1:
        warnings.append(f"the raters fall into {n_comp} groups that share no image: their effects are "
                        "comparable only within a group")
    K = scale_max
    fit = _Fitter(chunks, n_emo, n_units, n_raters, K, cfg, few)
    converged, iters, change = fit.run()
    if not converged:
        warnings.append(f"did not converge in {iters} sweeps (largest change {change:.2g}); "
                        "do not use these figures")
    out = fit.finish()
    finite = all(bool(np.isfinite(out[k]).all()) for k in ("p_present", "expected_intensity", "sd", "cutpoints"))
    if converged and not finite:
        converged = False
        warnings.append("numerical failure: some figures are not finite; do not use these figures")
    capped = [e for e in range(n_emo) if fit.s2b[e] >= _S2B_MAX * 0.999]
    if capped and K >= 2:
        warnings.append(f"{len(capped)} emotion(s) (indices {capped[:10]}) have too few images with two or more "
                        "present ratings to separate image spread from rater noise in intensity: their "
                        "intensity figures lean on the model's limits")
    n_ratings = np.concatenate([ch.n_r for ch in chunks], axis=0).T.copy()
    n_present = np.concatenate([ch.n_p for ch in chunks], axis=0).T.copy()
    return RaterModelFit(
        converged=converged, iterations=iters, max_change=change,
        seconds=time.perf_counter() - t0, scale_max=K, unit_ids=unit_ids, rater_ids=rater_ids,
        n_ratings=n_ratings, n_present=n_present, few_ratings=few, warnings=warnings, **out)


def _components(ui: IntArray, ri: IntArray, n_units: int, n_raters: int) -> int:
    """Number of groups of raters linked (directly or through others) by shared images."""
    import scipy.sparse as sp  # type: ignore[import-untyped,unused-ignore]
    from scipy.sparse.csgraph import connected_components  # type: ignore[import-untyped,unused-ignore]

    g = sp.coo_matrix((np.ones(ui.size), (ui, n_units + ri)), shape=(n_units + n_raters,) * 2)
    _n, labels = connected_components(g, directed=False)
    return int(np.unique(labels[n_units:]).size)


class _Chunk:
    """The observed ratings of emotions e0..e1-1, flattened: an image index is (e - e0) * N + i and
    a rater index (e - e0) * R + r, so one bincount serves every emotion of the chunk."""

    def __init__(self, yt: npt.NDArray[np.int8], e0: int, e1: int, ui: IntArray, ri: IntArray,
                 n_units: int, n_raters: int, K: int):
        self.e0, self.e1, self.Ec = e0, e1, e1 - e0
        Yc = yt[e0:e1]
        el, j = np.nonzero(Yc >= 0)
        y = Yc[el, j]
        self.ii = el * n_units + ui[j]
        self.rr = el * n_raters + ri[j]
        self.z = (y > 0).astype(np.float64)
        pres = y > 0
        self.ip = self.ii[pres]
        self.rp = self.rr[pres]
        self.rg = ri[j][pres]
        self.el = el[pres]
        self.y = y[pres].astype(np.intp)
        self.yidx = self.el * (K + 1) + self.y
        self.ybin_up = self.el * K + self.y - 1
        self.ybin_lo = self.el * K + np.maximum(self.y - 2, 0)
        self.lo_ok = (self.y > 1).astype(np.float64)
        self.off_ok = ((self.y > 1) & (self.y < K)).astype(np.float64)
        self.n_r = np.bincount(self.rr, minlength=self.Ec * n_raters).reshape(self.Ec, n_raters)
        self.n_p = np.bincount(self.rp, minlength=self.Ec * n_raters).reshape(self.Ec, n_raters)
        self.has_p = (np.bincount(self.ip, minlength=self.Ec * n_units) > 0).reshape(self.Ec, n_units)
        # A fixed subsample of images (the same for every emotion) on which the presence prior's
        # mean and spread are fitted by quadrature (marginal likelihood), ratings grouped by image.
        take = _subsample(n_units)
        sub = np.flatnonzero(take[ui[j]])
        key = self.ii[sub]
        order = np.argsort(key, kind="stable")
        sub, key = sub[order], key[order]
        self.q_obs = sub
        self.q_starts = np.r_[0, np.flatnonzero(np.diff(key)) + 1].astype(np.intp)
        self.q_emo = (key[self.q_starts] // n_units).astype(np.intp)
        self.q_sign = 2.0 * self.z[sub] - 1.0
        self.prior_done = False
        self.g_ell: FloatArray = np.zeros(n_raters)
        self.h_ell: FloatArray = np.zeros(n_raters)


_S2B_MAX = 9.0
# A logistic convolved with N(0, v) taken as a logistic of slope 1 / sqrt(1 + pi v / 8) (the probit
# approximation, as for presence). Matching the variances instead (3 / pi^2) left too little of the
# image's uncertainty in the discrimination step: the latent scale, sb and the intensity shifts came
# out about 5% small and tau_d about 15% small, and intensity intervals covered 0.91 instead of 0.95.
_CONV = math.pi / 8.0
_SA_MAX = 5.0
_SUBSAMPLE = 1000
_GHQ_X, _GHQ_W = np.polynomial.hermite.hermgauss(12)
_GHQ_X = _GHQ_X * math.sqrt(2.0)
_GHQ_LOGW = np.log(_GHQ_W / math.sqrt(math.pi))


def _subsample(n_units: int) -> npt.NDArray[np.bool_]:
    take = np.zeros(n_units, dtype=bool)
    if n_units <= _SUBSAMPLE:
        take[:] = True
    else:
        take[np.random.default_rng(12345).choice(n_units, _SUBSAMPLE, replace=False)] = True
    return take


def _chunks(yt: npt.NDArray[np.int8], ui: IntArray, ri: IntArray, n_units: int, n_raters: int,
            K: int, threads: int = 1) -> list[_Chunk]:
    """Emotions grouped so that a chunk holds about 2^19 ratings: small projects are fitted in
    a few vectorised passes over many emotions, large ones emotion by emotion (cache-sized
    arrays); at least one chunk per thread."""
    E, n = yt.shape
    per = max(1, min(E, (1 << 19) // max(n, 1), -(-E // max(threads, 1))))
    return [_Chunk(yt, e0, min(E, e0 + per), ui, ri, n_units, n_raters, K) for e0 in range(0, E, per)]


class _Fitter:
    def __init__(self, chunks: list[_Chunk], n_emo: int, n_units: int, n_raters: int, K: int,
                 cfg: RaterModelConfig, few: npt.NDArray[np.bool_]):
        self.chunks, self.N, self.R, self.K, self.cfg, self.few = chunks, n_units, n_raters, K, cfg, few
        E = self.E = n_emo
        self.A = np.zeros((E, n_units))
        self.VA = np.ones((E, n_units))
        self.mu = np.zeros(E)
        self.s2a = np.ones(E)
        self.S = np.zeros((E, n_raters))
        self.hS = np.ones((E, n_raters))
        self.theta = np.zeros(n_raters)
        self.tau2_s, self.om2_s = 0.25, 0.25
        self.B = np.zeros((E, n_units))
        self.VB = np.ones((E, n_units))
        self.s2b = np.ones(E)
        self.D = np.zeros((E, n_raters))
        self.hD = np.ones((E, n_raters))
        self.phi = np.zeros(n_raters)
        self.tau2_d, self.om2_d = 0.25, 0.25
        self.ell = np.zeros(n_raters)
        self.C = np.zeros((E, max(K - 1, 0)))
        for ch in chunks:
            zsum = np.bincount(ch.ii // n_units, ch.z, ch.Ec)
            zn = np.bincount(ch.ii // n_units, minlength=ch.Ec)
            zbar = np.clip(zsum / np.maximum(zn, 1), 1e-3, 1 - 1e-3)
            self.mu[ch.e0:ch.e1] = np.log(zbar / (1 - zbar))
            if K > 1:
                cnt = np.bincount(ch.el * K + ch.y - 1, minlength=ch.Ec * K).reshape(ch.Ec, K) + 0.5
                cum = np.cumsum(cnt, axis=1)[:, :-1] / cnt.sum(axis=1, keepdims=True)
                self.C[ch.e0:ch.e1] = np.log(cum / (1 - cum))
        self.A[:] = self.mu[:, None]
        self.C0 = self.C.copy()
        self.g_ell = np.zeros(n_raters)
        self.h_ell = np.zeros(n_raters)

    # -- presence ---------------------------------------------------------------------------
    def _presence(self, ch: _Chunk) -> None:
        N, R, Ec = self.N, self.R, ch.Ec
        sl = slice(ch.e0, ch.e1)
        if ch.z.size == 0:
            return
        Am = self.A[sl]
        A = Am.reshape(-1)
        S = self.S[sl].reshape(-1)
        self._presence_prior(ch, S)
        prec_i = np.repeat(1.0 / self.s2a[sl], N)
        mean_i = np.repeat(self.mu[sl], N)
        h = prec_i
        for _ in range(self.cfg.image_steps):
            p = _sigmoid(np.take(A, ch.ii) + np.take(S, ch.rr))
            g = np.bincount(ch.ii, ch.z - p, Ec * N) - (A - mean_i) * prec_i
            p *= 1.0 - p
            h = np.bincount(ch.ii, p, Ec * N) + prec_i
            A += np.clip(g / h, -3.0, 3.0)
        VA = 1.0 / h
        self.VA[sl] = VA.reshape(Ec, N)
        # Rater step: each rating's marginal likelihood, the image latent integrated over its
        # posterior without this rating (the cavity: the rating's own pull removed by one Newton
        # step back), P(y > 0) = E[sigmoid(a + s)] by the probit approximation. Integrating over
        # the full posterior instead counts the rating twice and inflated the shifts by about 7%
        # with 3 ratings per image.
        a_i = np.take(A, ch.ii)
        p = _sigmoid(a_i + np.take(S, ch.rr))
        hc = np.maximum(np.take(1.0 / VA, ch.ii) - p * (1.0 - p), 1e-6)
        kap = 1.0 / np.sqrt(1.0 + (math.pi / 8.0) / hc)
        pt = _sigmoid(kap * (a_i - (ch.z - p) / hc + np.take(S, ch.rr)))
        prec = 1.0 / self.tau2_s
        g = np.bincount(ch.rr, kap * (ch.z - pt), Ec * R) - (S - np.tile(self.theta, Ec)) * prec
        hr = np.bincount(ch.rr, kap * kap * pt * (1 - pt), Ec * R) + prec
        S += np.clip(g / hr, -2.0, 2.0)
        Sm = self.S[sl]
        Sm[:, self.few] = 0.0
        w = ch.n_r.astype(np.float64)
        delta = (w * Sm).sum(axis=1) / np.maximum(w.sum(axis=1), 1.0)
        Sm -= delta[:, None]
        Am += delta[:, None]
        self.hS[sl] = hr.reshape(Ec, R)

    def _presence_prior(self, ch: _Chunk, S: FloatArray) -> None:
        """One Newton (BHHH) step on each emotion's (mu, log sa) for the marginal likelihood of the
        subsample's presence ratings, the image latent integrated out by 12-point Gauss-Hermite,
        halved until the likelihood does not fall. (A Laplace/EM update of sa crawls, or drifts,
        with 3-4 binary ratings per image.)"""
        if ch.q_obs.size == 0 or ch.prior_done:
            return
        sl = slice(ch.e0, ch.e1)
        mu, sd = self.mu[sl].copy(), np.sqrt(self.s2a[sl])
        emo_obs = np.repeat(ch.q_emo, np.diff(np.r_[ch.q_starts, ch.q_obs.size]))
        r_obs = np.take(S, np.take(ch.rr, ch.q_obs))
        loglik, G, M = self._prior_terms(ch, emo_obs, r_obs, mu, sd)
        step = np.linalg.solve(M, G[:, :, None])[:, :, 0]
        step = np.nan_to_num(step)
        step[:, 0] = np.clip(step[:, 0], -1.0, 1.0)
        step[:, 1] = np.clip(step[:, 1], -0.3, 0.3)
        lo, hi = math.log(math.sqrt(self.cfg.variance_floor)), math.log(_SA_MAX)
        new_mu, new_sd = mu.copy(), sd.copy()
        pending = np.ones(ch.Ec, dtype=bool)
        for _ in range(4):
            try_mu = np.where(pending, mu + step[:, 0], new_mu)
            try_sd = np.where(pending, np.exp(np.clip(np.log(sd) + step[:, 1], lo, hi)), new_sd)
            ll_new = self._prior_terms(ch, emo_obs, r_obs, try_mu, try_sd, grad=False)[0]
            ok = pending & (ll_new >= loglik - 1e-9)
            new_mu[ok], new_sd[ok] = try_mu[ok], try_sd[ok]
            pending &= ~ok
            if not pending.any():
                break
            step[pending] *= 0.5
        moved = np.maximum(np.abs(new_mu - mu), np.abs(new_sd - sd))
        # Settled: the quadrature is the costliest part of a sweep, so it stops here.
        ch.prior_done = bool(moved.max() < 0.1 * self.cfg.tol)
        # Move the image latents with the prior (same standardised position), so that the next
        # mode step starts close.
        Am = self.A[sl]
        Am[:] = new_mu[:, None] + (Am - mu[:, None]) * (new_sd / sd)[:, None]
        self.mu[sl] = new_mu
        self.s2a[sl] = new_sd ** 2

    def _prior_terms(self, ch: _Chunk, emo_obs: IntArray, r_obs: FloatArray, mu: FloatArray, sd: FloatArray,
                     grad: bool = True) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Per emotion of the chunk: the subsample's marginal log-likelihood and (grad) its
        gradient and BHHH curvature in (mu, log sd)."""
        eta = (np.take(mu, emo_obs) + r_obs)[:, None] + np.take(sd, emo_obs)[:, None] * _GHQ_X[None, :]
        p = _sigmoid(eta)
        ll = np.log(np.maximum(np.where(ch.q_sign[:, None] > 0, p, 1.0 - p), 1e-300))
        limg = np.add.reduceat(ll, ch.q_starts, axis=0) + _GHQ_LOGW[None, :]
        top = limg.max(axis=1, keepdims=True)
        post = np.exp(limg - top)
        tot = post.sum(axis=1, keepdims=True)
        Ec = ch.Ec
        loglik: FloatArray = np.bincount(ch.q_emo, (np.log(tot) + top)[:, 0], Ec).astype(np.float64)
        if not grad:
            return loglik, np.zeros((Ec, 2)), np.zeros((Ec, 2, 2))
        post /= tot
        rimg = np.add.reduceat(ch.z[ch.q_obs][:, None] - p, ch.q_starts, axis=0)
        g_mu = (post * rimg).sum(axis=1)
        g_ls = (post * rimg * _GHQ_X[None, :]).sum(axis=1) * np.take(sd, ch.q_emo)
        G: FloatArray = np.stack([np.bincount(ch.q_emo, g_mu, Ec), np.bincount(ch.q_emo, g_ls, Ec)],
                                 axis=1).astype(np.float64)
        M: FloatArray = np.empty((Ec, 2, 2))
        M[:, 0, 0] = np.bincount(ch.q_emo, g_mu * g_mu, Ec) + 1e-6
        M[:, 1, 1] = np.bincount(ch.q_emo, g_ls * g_ls, Ec) + 1e-6
        M[:, 0, 1] = M[:, 1, 0] = np.bincount(ch.q_emo, g_mu * g_ls, Ec)
        return loglik, G, M

    # -- intensity given presence ----------------------------------------------------------
    def _terms(self, ch: _Chunk) -> tuple[FloatArray, ...]:
        sl = slice(ch.e0, ch.e1)
        lam = np.take(np.exp(self.ell), ch.rg)
        eta = np.take(self.B[sl].reshape(-1), ch.ip) + np.take(self.D[sl].reshape(-1), ch.rp)
        cext = np.concatenate([np.full((ch.Ec, 1), -_BIG), self.C[sl], np.full((ch.Ec, 1), _BIG)], axis=1).reshape(-1)
        U = lam * (np.take(cext, ch.yidx) - eta)
        L = lam * (np.take(cext, ch.yidx - 1) - eta)
        FU, GL = _sigmoid(U), _sigmoid(-L)
        FL = 1.0 - GL
        # sigmoid(U) - sigmoid(L) without cancellation when both are near 1.
        p = np.maximum(FU * GL * -np.expm1(L - U), 1e-15)
        fU, fL = FU * (1 - FU), FL * GL
        dU, dL = fU * (1 - 2 * FU), fL * (1 - 2 * FL)
        return lam, U, L, p, fU, fL, dU, dL

    def _ell_score(self, ch: _Chunk, lam: FloatArray, b: FloatArray) -> FloatArray:
        """d log p / d log(lambda) at image values b (per rating) and discriminations lam."""
        sl = slice(ch.e0, ch.e1)
        eta = b + np.take(self.D[sl].reshape(-1), ch.rp)
        cext = np.concatenate([np.full((ch.Ec, 1), -_BIG), self.C[sl], np.full((ch.Ec, 1), _BIG)], axis=1).reshape(-1)
        U = lam * (np.take(cext, ch.yidx) - eta)
        L = lam * (np.take(cext, ch.yidx - 1) - eta)
        FU, GL = _sigmoid(U), _sigmoid(-L)
        p = np.maximum(FU * GL * -np.expm1(L - U), 1e-15)
        out: FloatArray = (FU * (1 - FU) * U - (1.0 - GL) * GL * L) / p
        return out

    @staticmethod
    def _eta_terms(lam: FloatArray, p: FloatArray, fU: FloatArray, fL: FloatArray, dU: FloatArray,
                   dL: FloatArray) -> tuple[FloatArray, FloatArray]:
        """d log p / d eta and minus its derivative (>= 0: the cumulative logit is log-concave)."""
        a = (fU - fL) / p
        return -lam * a, lam * lam * (a * a - (dU - dL) / p)

    def _intensity(self, ch: _Chunk) -> None:
        N, R, K, Ec = self.N, self.R, self.K, ch.Ec
        if K < 2 or ch.y.size == 0:
            return
        sl = slice(ch.e0, ch.e1)
        Bm = self.B[sl]
        B = Bm.reshape(-1)
        prec_i = np.repeat(1.0 / self.s2b[sl], N)
        lam, U, L, p, fU, fL, dU, dL = self._terms(ch)
        score, w = self._eta_terms(lam, p, fU, fL, dU, dL)
        g = np.bincount(ch.ip, score, Ec * N) - B * prec_i
        h = np.bincount(ch.ip, w, Ec * N) + prec_i
        B += np.clip(g / h, -3.0, 3.0)
        VB = 1.0 / h
        self.VB[sl] = VB.reshape(Ec, N)
        lam, U, L, p, fU, fL, dU, dL = self._terms(ch)
        score, w = self._eta_terms(lam, p, fU, fL, dU, dL)
        D = self.D[sl].reshape(-1)
        prec = 1.0 / self.tau2_d
        gr = np.bincount(ch.rp, score, Ec * R) - (D - np.tile(self.phi, Ec)) * prec
        hr = np.bincount(ch.rp, w, Ec * R) + prec
        step_d = np.clip(gr / hr, -2.0, 2.0).reshape(Ec, R)
        step_d[:, self.few] = 0.0
        # The shifts are centred, so their step must not move the common level as well: the
        # cut-points' step moves it (doing both overshoots and oscillates).
        wts = ch.n_p.astype(np.float64)
        step_d -= ((wts * step_d).sum(axis=1) / np.maximum(wts.sum(axis=1), 1.0))[:, None]
        # For the variance of the shifts (tau_d): the information once the images are integrated
        # out (each rating's weight less the share of its image's precision it supplies itself).
        # The conditional precision would understate each shift's uncertainty, and so tau_d.
        self.hD[sl] = (np.bincount(ch.rp, w * np.maximum(1 - w * np.take(VB, ch.ip), 0.0), Ec * R)
                       + prec).reshape(Ec, R)
        # Cut-points: a full Newton step on each emotion's K-1 of them (tridiagonal Hessian).
        km1 = K - 1
        pu, pl = fU / p, fL / p
        l2 = lam * lam
        size = Ec * K
        gc = (np.bincount(ch.ybin_up, lam * pu, size)
              - np.bincount(ch.ybin_lo, lam * pl * ch.lo_ok, size)).astype(np.float64)
        hd = (np.bincount(ch.ybin_up, l2 * (dU / p - pu * pu), size)
              + np.bincount(ch.ybin_lo, l2 * (-dL / p - pl * pl) * ch.lo_ok, size))
        off = np.bincount(ch.ybin_lo, l2 * pu * pl * ch.off_ok, size)
        gc = gc.reshape(Ec, K)[:, :km1]
        hd = hd.reshape(Ec, K)[:, :km1]
        off = off.reshape(Ec, K)[:, :km1]
        # A weak prior (sd 3 logits) around the starting cut-points keeps a category nobody used
        # (no 7s for a rare emotion) from drifting off to infinity.
        c_prec = 1.0 / 9.0
        gc = gc - (self.C[sl] - self.C0[sl]) * c_prec
        H = np.zeros((Ec, km1, km1))
        idx = np.arange(km1)
        H[:, idx, idx] = hd - c_prec
        if km1 > 1:
            # (c_k, c_k+1) are coupled by the ratings between them (y = k+2, counting c from 0).
            H[:, idx[:-1], idx[1:]] = off[:, :-1]
            H[:, idx[1:], idx[:-1]] = off[:, :-1]
        try:
            step_c = -np.linalg.solve(H, gc[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            step_c = np.zeros((Ec, km1))
        step_c = np.clip(np.nan_to_num(step_c), -0.5, 0.5)
        Cm = self.C[sl]
        for _ in range(30):
            bad = np.zeros(Ec, dtype=bool) if km1 < 2 else ~np.all(np.diff(Cm + step_c, axis=1) > 1e-3, axis=1)
            if not bad.any():
                break
            step_c[bad] *= 0.5
        else:
            step_c[:] = 0.0
        Cm += step_c
        self.D[sl] += step_d
        # The discrimination's score, summed over emotions (BHHH curvature). It is taken with each
        # image's value as the other ratings alone put it (the cavity: this rating's pull removed)
        # and that value's uncertainty folded into the noise (probit approximation, _CONV); with the
        # joint mode instead, the image follows the most discriminating rater, who then looks even
        # more discriminating (runaway).
        hc = np.maximum(1.0 / np.take(VB, ch.ip) - w, 1e-6)
        b_cav = np.take(B, ch.ip) - score / hc
        lam_eff = 1.0 / np.sqrt(1.0 / (lam * lam) + _CONV / hc)
        s_l = self._ell_score(ch, lam_eff, b_cav) * (lam_eff / lam) ** 2
        ch.g_ell = np.bincount(ch.rg, s_l, R).astype(np.float64)
        ch.h_ell = np.bincount(ch.rg, s_l * s_l, R).astype(np.float64)
        # Centre the shifts (weighted by present ratings); the cut-points absorb the mean.
        Dm = self.D[sl]
        delta = (wts * Dm).sum(axis=1) / np.maximum(wts.sum(axis=1), 1.0)
        Dm -= delta[:, None]
        Cm -= delta[:, None]
        has = ch.has_p
        # A weak inverse-gamma(1, 0.5) prior on sb^2: negligible with data, bounded without.
        # Capped at sd 3 logits: with few images holding two or more present ratings the data cannot
        # tell image spread from noise and the spread would run off (reported as a warning).
        self.s2b[sl] = np.minimum(_mackay((Bm ** 2 * has).sum(axis=1) + 1.0, self.VB[sl], self.s2b[sl], has,
                                          self.cfg.variance_floor, extra=4.0), _S2B_MAX)

    # -- pooled parameters -------------------------------------------------------------------
    def _pool(self) -> None:
        floor = self.cfg.variance_floor
        act = ~self.few
        for name in ("s", "d"):
            X, Hh = (self.S, self.hS) if name == "s" else (self.D, self.hD)
            tau2 = self.tau2_s if name == "s" else self.tau2_d
            om2 = self.om2_s if name == "s" else self.om2_d
            # theta_r: posterior mean of the rater's common effect given its per-emotion effects.
            pooled = X.sum(axis=0) / (self.E + tau2 / om2)
            pooled[~act] = 0.0
            if act.sum() >= 2:
                # EM: many ratings per rater and emotion make it converge fast here (MacKay's update
                # is unstable near the floor, where the effects are nearly all prior).
                # The effects are centred per emotion, so each emotion's R effects carry R - 1
                # degrees of freedom (dividing by R put tau^2 low by a factor (R - 1) / R).
                n_act = int(act.sum())
                tau2 = max(float(((X[:, act] - pooled[act]) ** 2 + 1.0 / Hh[:, act]).sum())
                           / (self.E * (n_act - 1)), floor)
                om2 = max(float((pooled[act] ** 2).mean()), floor)
            if name == "s":
                self.theta, self.tau2_s, self.om2_s = pooled, tau2, om2
            else:
                self.phi, self.tau2_d, self.om2_d = pooled, tau2, om2
        if self.K >= 2:
            prec = 1.0 / self.cfg.discrimination_sd ** 2
            step = np.clip((self.g_ell - self.ell * prec) / (self.h_ell + prec), -0.3, 0.3)
            step[self.few] = 0.0
            self.ell += step
            m = float(self.ell[act].mean()) if act.any() else 0.0
            self.ell -= m
            # Keep the latent scale: lambda * (c - b - d) is unchanged when lambda shrinks by e^m.
            # The common scale is identified only through the priors (cut-points, sb's bound): with
            # near-deterministic ratings it would grow every sweep, so the carry is capped at the
            # bound on sb and at 5% a sweep (what is left is taken up by the next sweep's steps).
            room = math.sqrt(_S2B_MAX / max(float(self.s2b.max()), 1e-12))
            f = min(math.exp(min(max(m, -0.05), 0.05)), max(room, 1.0)) if m > 0 else math.exp(max(m, -0.05))
            self.C *= f
            self.B *= f
            self.D *= f
            self.VB *= f * f
            self.s2b *= f * f
            self.phi *= f
            self.tau2_d *= f * f
            self.om2_d *= f * f
        self.g_ell[:] = 0.0
        self.h_ell[:] = 0.0

    def _variances(self) -> FloatArray:
        out: FloatArray = np.log(np.concatenate([self.s2a, self.s2b,
                                                 [self.tau2_s, self.om2_s, self.tau2_d, self.om2_d]]))
        return out

    def _set_variances(self, x: FloatArray) -> None:
        E = self.E
        v = np.exp(x)
        self.s2a[:], self.s2b[:] = v[:E], v[E:2 * E]
        self.tau2_s, self.om2_s, self.tau2_d, self.om2_d = (float(t) for t in v[2 * E:])

    def _state(self) -> FloatArray:
        return np.concatenate([self.S.ravel(), self.D.ravel(), self.C.ravel(), self.ell,
                               np.sqrt(np.exp(self._variances()))])

    def _sweep_chunk(self, ch: _Chunk) -> None:
        self._presence(ch)
        self._intensity(ch)

    def run(self) -> tuple[bool, int, float]:
        prev = self._state()
        change = float("inf")
        workers = min(self.cfg.threads, len(self.chunks))
        pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None
        hist: list[FloatArray] = []
        try:
            for it in range(1, self.cfg.max_iter + 1):
                # Chunks write disjoint rows of the state; the discrimination's score is summed after.
                if pool is not None:
                    list(pool.map(self._sweep_chunk, self.chunks))
                else:
                    for ch in self.chunks:
                        self._sweep_chunk(ch)
                for ch in self.chunks:
                    self.g_ell += ch.g_ell
                    self.h_ell += ch.h_ell
                    ch.g_ell = np.zeros(self.R)
                    ch.h_ell = np.zeros(self.R)
                self._pool()
                cur = self._state()
                n_var = 2 * self.E + 4
                settled = float(np.abs(cur[:-n_var] - prev[:-n_var]).max()) < self.cfg.tol
                if self._accelerate_s2b(hist, settled):
                    cur = self._state()
                change = float(np.abs(cur - prev).max())
                prev = cur
                if change < self.cfg.tol and it >= 3:
                    return True, it, change
        finally:
            if pool is not None:
                pool.shutdown()
        return False, self.cfg.max_iter, change

    def _accelerate_s2b(self, hist: list[FloatArray], settled: bool) -> bool:
        """Aitken's extrapolation of log sb^2 over three sweeps in which everything else had
        settled. Where an emotion's intensity has little image signal its update crawls
        geometrically towards the floor (each step a few percent); along a steady geometric path
        this jumps to the limit (at most a factor e). Returns whether it moved anything."""
        if not settled:
            hist.clear()
            return False
        hist.append(np.log(self.s2b))
        if len(hist) < 3:
            return False
        d0, d1 = hist[1] - hist[0], hist[2] - hist[1]
        hist.clear()
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(np.abs(d0) > 1e-9, d1 / d0, 0.0)
        steady = (ratio > 0.5) & (ratio < 1.0) & (np.abs(d1) > 1e-4)
        if not steady.any():
            return False
        jump = np.where(steady, d1 * ratio / (1.0 - np.where(steady, ratio, 0.0)), 0.0)
        new = np.exp(np.log(self.s2b) + np.clip(jump, -1.0, 1.0))
        new = np.clip(new, self.cfg.variance_floor, _S2B_MAX)
        # The image latents keep their standardised position under the new spread.
        f = np.sqrt(new / self.s2b)
        self.B *= f[:, None]
        self.VB *= (f * f)[:, None]
        self.s2b = new
        return True

    # -- results ----------------------------------------------------------------------------
    def finish(self) -> dict[str, Any]:
        E, R, N, K = self.E, self.R, self.N, self.K
        info_s = np.zeros((E, R))
        info_d = np.zeros((E, R))
        int_se = np.full((E, R), np.nan)
        for ch in self.chunks:
            sl = slice(ch.e0, ch.e1)
            Ec = ch.Ec
            # Information about s_re once the images are integrated out: the Fisher information of
            # each rating's marginal likelihood as the rater step uses it (the image's cavity value
            # and uncertainty, probit approximation).
            if ch.z.size:
                A, S, VA = self.A[sl].reshape(-1), self.S[sl].reshape(-1), self.VA[sl].reshape(-1)
                a_i, s_i = np.take(A, ch.ii), np.take(S, ch.rr)
                p = _sigmoid(a_i + s_i)
                hc = np.maximum(1.0 / np.take(VA, ch.ii) - p * (1.0 - p), 1e-6)
                kap = 1.0 / np.sqrt(1.0 + (math.pi / 8.0) / hc)
                pt = _sigmoid(kap * (a_i - (ch.z - p) / hc + s_i))
                info = np.bincount(ch.rr, kap * kap * pt * (1 - pt), Ec * R)
                info_s[sl] = info.reshape(Ec, R)
            if K >= 2 and ch.y.size:
                lam, U, L, p2, fU, fL, dU, dL = self._terms(ch)
                _score, w = self._eta_terms(lam, p2, fU, fL, dU, dL)
                vb = self.VB[sl].reshape(-1)[ch.ip]
                info = np.bincount(ch.rp, w * np.maximum(1 - w * vb, 0.0), Ec * R)
                info_d[sl] = info.reshape(Ec, R)
        n_r = np.concatenate([ch.n_r for ch in self.chunks], axis=0)
        n_p = np.concatenate([ch.n_p for ch in self.chunks], axis=0)
        pres_se = _centred_se(_hier_var(info_s, self.tau2_s, self.om2_s), n_r)
        if K >= 2:
            int_se = _centred_se(_hier_var(info_d, self.tau2_d, self.om2_d), n_p)
        shift_steps = np.full((E, R), np.nan)
        shift_ci = np.full((E, R, 2), np.nan)
        p_present = np.empty((E, N))
        exp_int = np.empty((E, N))
        sd = np.empty((E, N))
        gain = np.zeros(N)
        w_bar = np.zeros(E)
        for ch in self.chunks:
            if K >= 2 and ch.y.size:
                lam, U, L, p2, fU, fL, dU, dL = self._terms(ch)
                w_obs = self._eta_terms(np.ones_like(lam), p2, fU, fL, dU, dL)[1]
                w_bar[ch.e0:ch.e1] = (np.bincount(ch.el, w_obs, ch.Ec)
                                      / np.maximum(np.bincount(ch.el, minlength=ch.Ec), 1))
        for e in range(E):
            if K >= 2:
                base = self._steps(e, np.zeros(1))[0]
                d, s = self.D[e], int_se[e]
                shift_steps[e] = self._steps(e, d) - base
                shift_ci[e, :, 0] = self._steps(e, d - Z95 * np.nan_to_num(s)) - base
                shift_ci[e, :, 1] = self._steps(e, d + Z95 * np.nan_to_num(s)) - base
                shift_ci[e][np.isnan(s)] = np.nan
            # Soft labels (Gauss-Hermite over each image's normal posterior).
            sp = _sigmoid(self.A[e][:, None] + np.sqrt(self.VA[e])[:, None] * _GH_X[None, :])
            m1 = sp @ _GH_W
            m2 = (sp * sp) @ _GH_W
            p_present[e] = m1
            if K >= 2:
                mb = _mean_rating(self.C[e], self.B[e][:, None] + np.sqrt(self.VB[e])[:, None] * _GH_X[None, :])
                i1 = mb @ _GH_W
                i2 = (mb * mb) @ _GH_W
            else:
                i1 = i2 = np.ones(N)
            exp_int[e] = i1
            sd[e] = np.sqrt(np.maximum(m2 * i2 - (m1 * i1) ** 2, 0.0))
            # One more rating by a typical expert (preposterior analysis). Presence: the expected
            # fall in the variance of sigmoid(a) is Var_y(E[sigmoid(a) | y]) = p (1 - p) (E[s | y=1] -
            # E[s | y=0])^2, with E[s | y=1] = E[s^2] / p and E[s | y=0] = (p - E[s^2]) / (1 - p),
            # scaled by E[m^2]. Intensity (when present, probability p): the average ordinal
            # information w_bar on b lowers its variance by v^2 h / (1 + v h), carried to the
            # expected rating by the delta method (b's posterior is narrow enough for it).
            pm = np.clip(m1, 1e-9, 1 - 1e-9)
            gain += pm * (1 - pm) * (m2 / pm - (pm - m2) / (1 - pm)) ** 2 * i2
            if K >= 2:
                vb = self.VB[e]
                slope = sum(_sigmoid(self.B[e] - c) * (1 - _sigmoid(self.B[e] - c)) for c in self.C[e])
                hb = m1 * w_bar[e]
                gain += (m1 * slope) ** 2 * vb * vb * hb / (1 + vb * hb)
        few = self.few
        S_out, D_out = self.S.T.copy(), self.D.T.copy()
        pres_se, int_se, shift_steps = pres_se.T.copy(), int_se.T.copy(), shift_steps.T.copy()
        shift_ci = shift_ci.transpose(1, 0, 2).copy()
        for arr in (pres_se, int_se, shift_steps, S_out, D_out):
            arr[few] = np.nan
        shift_ci[few] = np.nan
        return dict(
            presence_shift=S_out, presence_se=pres_se, intensity_latent=D_out, intensity_latent_se=int_se,
            intensity_shift=shift_steps, intensity_ci=shift_ci, discrimination=np.exp(self.ell),
            presence_mean=self.mu.copy(), presence_sd=np.sqrt(self.s2a), intensity_sd=np.sqrt(self.s2b),
            cutpoints=self.C.copy(), p_present=p_present, expected_intensity=exp_int, sd=sd,
            information_gain=gain, ambiguity=sd.max(axis=0) if E else np.zeros(N),
            effect_sd={"tau_s": math.sqrt(self.tau2_s), "omega_s": math.sqrt(self.om2_s),
                       "tau_d": math.sqrt(self.tau2_d), "omega_d": math.sqrt(self.om2_d)})

    def _steps(self, e: int, d: FloatArray) -> FloatArray:
        """Mean rating given presence of a rater with latent shift d (each), over the images' spread."""
        x = d[:, None] + math.sqrt(self.s2b[e]) * _GH_X[None, :]
        out: FloatArray = _mean_rating(self.C[e], x) @ _GH_W
        return out

def _mackay(ss: FloatArray, post_var: FloatArray, s2: FloatArray, mask: npt.NDArray[np.bool_],
            floor: float, extra: float = 0.0) -> FloatArray:
    """Variance update s2 = sum (mode - mean)^2 / sum gamma, gamma = 1 - posterior var / s2 (the
    effective number of parameters; MacKay's evidence fixed point). With little information per
    image EM's update crawls; this one converges in a few sweeps. Rows are emotions."""
    gamma = ((1.0 - post_var / s2[:, None]) * mask).sum(axis=1) + extra
    out: FloatArray = np.maximum(ss / np.maximum(gamma, 1.0), floor)
    return out


def _hier_var(info: FloatArray, tau2: float, om2: float) -> FloatArray:
    """Posterior variance of each rater x emotion effect (E, R) under effect ~ N(theta_r, tau2),
    theta_r ~ N(0, om2), from the data's information: the effect's own variance plus the
    uncertainty of the pooled theta_r it is shrunk towards."""
    v = 1.0 / (info + 1.0 / tau2)
    v_theta = 1.0 / ((1.0 / (tau2 + 1.0 / np.maximum(info, 1e-12))).sum(axis=0) + 1.0 / om2)
    out: FloatArray = v + (v / tau2) ** 2 * v_theta[None, :]
    return out


def _centred_se(var: FloatArray, n: IntArray) -> FloatArray:
    """Standard errors of effects centred to a weighted mean of 0 (weights n, per row), from variances."""
    w = n.astype(np.float64)
    w = w / np.maximum(w.sum(axis=-1, keepdims=True), 1.0)
    centred = var * (1 - 2 * w) + (w * w * var).sum(axis=-1, keepdims=True)
    se: FloatArray = np.sqrt(np.maximum(centred, 0.0))
    return se


# ---------------------------------------------------------------------------------------------
# Binary mode: Dawid-Skene
# ---------------------------------------------------------------------------------------------


@dataclass
class DawidSkeneFit:
    """Per rater sensitivity P(yes | present) and specificity P(no | absent) with 95% intervals,
    per group (emotion) prevalence, and per item P(present | votes)."""

    converged: bool
    iterations: int
    rater_ids: npt.NDArray[Any]
    item_ids: npt.NDArray[Any]
    sensitivity: FloatArray
    sensitivity_ci: FloatArray  # (R, 2)
    specificity: FloatArray
    specificity_ci: FloatArray
    prevalence: FloatArray  # (G,)
    p_present: FloatArray  # (n_items,)
    n_votes: IntArray  # (R,)
    note: str


DS_DESIGN_NOTE = (
    "valid under the conditional (escalation) design: which items get another vote depends only on "
    "votes already observed, so the design is ignorable for this likelihood; specificity is learnt "
    "mainly from the contrastive negatives and from 'no' votes, so it is uncertain without them"
)


def dawid_skene(items: npt.ArrayLike, raters: npt.ArrayLike, votes: npt.ArrayLike, *,
                groups: npt.ArrayLike | None = None, max_iter: int = 500,
                tol: float = 1e-6) -> DawidSkeneFit:
    """Two-class Dawid-Skene by EM. One row per vote: item (e.g. image x emotion), rater, vote 0/1;
    ``groups`` (per row, constant within an item) gives each group its own prevalence.

    A Beta(2, 2) prior on sensitivity and specificity and Beta(1, 1) on prevalence keep the EM away
    from 0/1 (a maximum a posteriori fit). Raises ValueError on votes other than 0/1 or mismatched
    lengths."""
    it_ = np.asarray(items)
    rt = np.asarray(raters)
    vt = np.asarray(votes, dtype=np.float64)
    if not (it_.ndim == rt.ndim == vt.ndim == 1 and it_.size == rt.size == vt.size):
        raise ValueError("items, raters and votes must be 1-D arrays of the same length")
    if vt.size == 0:
        raise ValueError("no votes to fit")
    if not np.all((vt == 0) | (vt == 1)):
        k = int(np.flatnonzero(~((vt == 0) | (vt == 1)))[0])
        raise ValueError(f"votes[{k}] = {float(vt[k])!r}: votes must be 0 (no) or 1 (yes)")
    ii, item_ids = _factorize(it_)
    ri, rater_ids = _factorize(rt)
    n_items, n_r = item_ids.size, rater_ids.size
    if groups is None:
        gi = np.zeros(n_items, dtype=np.intp)
        n_g = 1
    else:
        gr = np.asarray(groups)
        if gr.shape != vt.shape:
            raise ValueError("groups must have one entry per vote")
        g_row, _g_ids = _factorize(gr)
        n_g = _g_ids.size
        gi = np.zeros(n_items, dtype=np.intp)
        gi[ii] = g_row
    # Start from the majority vote.
    q = np.bincount(ii, vt, n_items) / np.maximum(np.bincount(ii, minlength=n_items), 1)
    q = np.clip(q, 0.05, 0.95)
    se: FloatArray = np.full(n_r, 0.8)
    sp: FloatArray = np.full(n_r, 0.8)
    prev: FloatArray = np.full(n_g, 0.5)
    converged = False
    it = 0
    for step in range(1, max_iter + 1):
        it = step
        qv = q[ii]
        se = (np.bincount(ri, qv * vt, n_r) + 1) / (np.bincount(ri, qv, n_r) + 2)
        sp = (np.bincount(ri, (1 - qv) * (1 - vt), n_r) + 1) / (np.bincount(ri, 1 - qv, n_r) + 2)
        prev = (np.bincount(gi, q, n_g) + 1) / (np.bincount(gi, minlength=n_g) + 2)
        llr = vt * np.log(se[ri] / (1 - sp[ri])) + (1 - vt) * np.log((1 - se[ri]) / sp[ri])
        logit: FloatArray = np.log(prev / (1 - prev))[gi] + np.bincount(ii, llr, n_items)
        q_new = _sigmoid(logit)
        diff = float(np.abs(q_new - q).max())
        q = q_new
        if diff < tol:
            converged = True
            break
    qv = q[ii]
    n_pos: FloatArray = np.bincount(ri, qv, n_r).astype(np.float64)
    n_neg: FloatArray = np.bincount(ri, 1 - qv, n_r).astype(np.float64)
    se_ci, sp_ci = _wilson(se, n_pos), _wilson(sp, n_neg)
    louis = _ds_intervals(ii, ri, vt, gi, q, se, sp, prev)
    if louis is not None:
        ok = np.isfinite(louis[0]).all(axis=1) & np.isfinite(louis[1]).all(axis=1)
        se_ci[ok], sp_ci[ok] = louis[0][ok], louis[1][ok]
    return DawidSkeneFit(
        converged=converged, iterations=it, rater_ids=rater_ids, item_ids=item_ids,
        sensitivity=se, sensitivity_ci=se_ci, specificity=sp,
        specificity_ci=sp_ci, prevalence=prev, p_present=q,
        n_votes=np.bincount(ri, minlength=n_r), note=DS_DESIGN_NOTE)


def _ds_intervals(ii: IntArray, ri: IntArray, vt: FloatArray, gi: IntArray, q: FloatArray, se: FloatArray,
                  sp: FloatArray, prev: FloatArray) -> tuple[FloatArray, FloatArray] | None:
    """95% intervals for sensitivity and specificity from the observed information of the
    marginal likelihood (Louis' identity: the complete-data information less the information the
    unknown classes take away, sum_i q_i (1 - q_i) D_i D_i^T with D_i the difference of item i's
    complete-data scores between its two classes), in logits over every rater's two parameters
    and the prevalences jointly, with the Beta(2, 2) priors. The expected-count Wilson interval
    ignores the classes' uncertainty: in simulation of the escalation design it covered 0.75 of
    the truths. None when the information is not positive definite (too few votes)."""
    import scipy.sparse as sp_  # type: ignore[import-untyped,unused-ignore]

    n_items, R, G = q.size, se.size, prev.size
    P = 2 * R + G
    qv = q[ii]
    info = np.zeros(P)
    info[:R] = np.bincount(ri, qv, R) * se * (1 - se) + 2 * se * (1 - se)
    info[R:2 * R] = np.bincount(ri, 1 - qv, R) * sp * (1 - sp) + 2 * sp * (1 - sp)
    info[2 * R:] = np.bincount(gi, minlength=G) * prev * (1 - prev)
    wt = np.sqrt(q * (1 - q))
    rows = np.concatenate([ii, ii, np.arange(n_items)])
    cols = np.concatenate([ri, R + ri, 2 * R + gi])
    vals = np.concatenate([(vt - se[ri]) * wt[ii], -((1 - vt) - sp[ri]) * wt[ii], wt])
    M = sp_.csr_matrix((vals, (rows, cols)), shape=(n_items, P))
    obs = np.diag(info) - (M.T @ M).toarray()
    try:
        cov = np.linalg.inv(obs)
        if not np.all(np.linalg.eigvalsh(obs) > 0):
            return None
    except np.linalg.LinAlgError:
        return None
    sd = np.sqrt(np.diag(cov))

    def ends(p: FloatArray, s: FloatArray) -> FloatArray:
        lo = np.log(p / (1 - p))
        return np.stack([_sigmoid(lo - Z95 * s), _sigmoid(lo + Z95 * s)], axis=-1)

    return ends(se, sd[:R]), ends(sp, sd[R:2 * R])


def _wilson(p: FloatArray, n: FloatArray) -> FloatArray:
    """Wilson 95% interval for a proportion p from n (expected) trials (the fallback when the
    observed information is not positive definite); ignores the items'
    posterior uncertainty, so it is much too narrow (0.79 coverage in simulation)."""
    n = np.maximum(n, 1e-9)
    z2 = Z95 * Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return np.stack([np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)], axis=-1)


# ---------------------------------------------------------------------------------------------
# Simulation from the model (tests, benchmark, planner)
# ---------------------------------------------------------------------------------------------


@dataclass
class Simulated:
    """A long table drawn from the model and the truth behind it."""

    units: IntArray
    raters: IntArray
    values: FloatArray  # (n, E)
    presence_shift: FloatArray  # (R, E), centred as the fit centres them
    intensity_latent: FloatArray  # (R, E)
    discrimination: FloatArray  # (R,)
    expected_rating: FloatArray  # (E, N): sigmoid(a) x E[y | present] for a typical rater
    expected_intensity: FloatArray  # (E, N)


def simulate_ratings(rng: np.random.Generator, *, n_images: int, ratings_per_image: int, n_raters: int,
                     n_emotions: int = 40, scale_max: int = 7, presence_mean: float = -2.15,
                     presence_sd: float = 1.7, intensity_sd: float = 1.2, rater_presence_sd: float = 0.6,
                     rater_intensity_sd: float = 0.6, rater_emotion_sd: float = 0.25,
                     discrimination_sd: float = 0.25, cutpoints: FloatArray | None = None,
                     raters_differ: bool = True) -> Simulated:
    """EmoNet-like ratings: each image rated by ``ratings_per_image`` distinct raters drawn at random.

    The defaults give about 20% non-zero ratings and an interval alpha near 0.2 on 0..7."""
    E, R, N, k = n_emotions, n_raters, n_images, ratings_per_image
    if k > R:
        raise ValueError("ratings_per_image cannot exceed n_raters")
    mu = presence_mean + 0.4 * rng.standard_normal(E)
    A = mu[:, None] + presence_sd * rng.standard_normal((E, N))
    B = intensity_sd * rng.standard_normal((E, N))
    C = np.array(cutpoints if cutpoints is not None else np.linspace(-1.6, 2.6, scale_max - 1), dtype=np.float64)
    if raters_differ:
        S = (rater_presence_sd * rng.standard_normal(R))[:, None] + rater_emotion_sd * rng.standard_normal((R, E))
        D = (rater_intensity_sd * rng.standard_normal(R))[:, None] + rater_emotion_sd * rng.standard_normal((R, E))
        ell = discrimination_sd * rng.standard_normal(R)
    else:
        S = np.zeros((R, E))
        D = np.zeros((R, E))
        ell = np.zeros(R)
    ell -= ell.mean()
    # Each image gets k distinct raters (random keys, argpartition per row).
    keys = rng.random((N, R))
    chosen = np.argpartition(keys, k - 1, axis=1)[:, :k] if k < R else np.tile(np.arange(R), (N, 1))
    units = np.repeat(np.arange(N), k)
    raters = chosen.reshape(-1).astype(np.intp)
    lam = np.exp(ell)[raters]
    values = np.zeros((units.size, E))
    for e in range(E):
        pres = rng.random(units.size) < _sigmoid(A[e, units] + S[raters, e])
        eta = B[e, units] + D[raters, e]
        u = rng.random(units.size)
        # y = 1 + number of cut-points the latent exceeds: P(y <= j) = sigmoid(lam (c_j - eta)).
        y = np.ones(units.size)
        for c in C:
            y += u > _sigmoid(lam * (c - eta))
        values[:, e] = np.where(pres, y, 0.0)
    # Centre the truth as the fit does (weights: ratings for presence, present ratings for intensity);
    # the typical rater is the centre of the panel, so the truth moves with it.
    n_r = np.bincount(raters, minlength=R).astype(np.float64)
    d_s = (n_r @ S) / n_r.sum()
    n_p = np.stack([np.bincount(raters, weights=(values[:, e] > 0), minlength=R) for e in range(E)], axis=1)
    d_d = (n_p * D).sum(axis=0) / np.maximum(n_p.sum(axis=0), 1.0)
    S = S - d_s
    D = D - d_d
    exp_int = np.stack([_mean_rating(C, B[e] + d_d[e]) for e in range(E)])
    return Simulated(units=units, raters=raters, values=values, presence_shift=S, intensity_latent=D,
                     discrimination=np.exp(ell), expected_rating=_sigmoid(A + d_s[:, None]) * exp_int,
                     expected_intensity=exp_int)


# ---------------------------------------------------------------------------------------------
# Summaries for people
# ---------------------------------------------------------------------------------------------


def describe_effects(presence_ci: tuple[float, float] | None, intensity_shift: float | None,
                     intensity_ci: tuple[float, float] | None) -> str:
    """A rater's effects in words, judged by their 95% intervals: a difference is named only
    when the whole interval lies on one side of 0 (no difference found is not equivalence)."""
    parts: list[str] = []
    if presence_ci is None or any(math.isnan(x) for x in presence_ci):
        parts.append("too few ratings to judge presence")
    elif presence_ci[0] > 0:
        parts.append("marks presence more readily than the panel")
    elif presence_ci[1] < 0:
        parts.append("marks presence less readily than the panel")
    else:
        parts.append("marks presence like the panel")
    if intensity_shift is None or intensity_ci is None or any(math.isnan(x) for x in intensity_ci):
        parts.append("too few present ratings to judge intensity")
    elif intensity_ci[0] > 0:
        parts.append(f"when present, rates about {abs(intensity_shift):.1f} steps higher")
    elif intensity_ci[1] < 0:
        parts.append(f"when present, rates about {abs(intensity_shift):.1f} steps lower")
    else:
        parts.append("when present, rates intensity like the panel")
    return "; ".join(parts)


def group_effects(fit: RaterModelFit, rater: int, emotions: list[int]) -> dict[str, Any]:
    """A rater's effects averaged over a group of emotions (indices). The interval is the average
    of the emotions' half-widths, as if the emotions' errors were perfectly correlated (they are
    partly, through the pooling), so it errs on the wide side."""
    idx = [e for e in emotions if not math.isnan(fit.presence_shift[rater, e])]
    if not idx:
        return {"presence_shift": None, "presence_ci": None, "intensity_shift": None, "intensity_ci": None,
                "words": describe_effects(None, None, None)}
    ps = float(np.mean(fit.presence_shift[rater, idx]))
    half = Z95 * float(np.mean(fit.presence_se[rater, idx]))
    p_ci = (ps - half, ps + half)
    ok = [e for e in idx if not math.isnan(fit.intensity_shift[rater, e])]
    if ok:
        ish = float(np.mean(fit.intensity_shift[rater, ok]))
        i_ci: tuple[float, float] | None = (float(np.mean(fit.intensity_ci[rater, ok, 0])),
                                            float(np.mean(fit.intensity_ci[rater, ok, 1])))
    else:
        ish, i_ci = float("nan"), None
    return {"presence_shift": ps, "presence_ci": p_ci, "intensity_shift": None if not ok else ish,
            "intensity_ci": i_ci, "words": describe_effects(p_ci, None if not ok else ish, i_ci)}


# ---------------------------------------------------------------------------------------------
# Reading a stored fit (the payload the platform keeps with an agreement snapshot)
# ---------------------------------------------------------------------------------------------


def stored_rater_model(payload: dict[str, Any] | None) -> dict[str, Any] | None:
    """The usable model figures stored with a snapshot: None when absent, failed or not converged."""
    model = (payload or {}).get("rater_model")
    if not model or model.get("error") or not model.get("converged"):
        return None
    return dict(model)


def information_gain_for(payload: dict[str, Any] | None, image_ids: np.ndarray) -> np.ndarray | None:
    """The stored model's information gain (0..1, the largest = 1) aligned with ``image_ids``;
    0 for images outside its top list, None without a usable model."""
    model = stored_rater_model(payload)
    if model is None or not model.get("information_gain"):
        return None
    pairs = np.asarray(model["information_gain"], dtype=np.float64).reshape(-1, 2)
    out = np.zeros(len(image_ids))
    order = np.argsort(pairs[:, 0])
    keys, vals = pairs[order, 0].astype(np.int64), pairs[order, 1]
    pos = np.searchsorted(keys, image_ids)
    hit = (pos < keys.size) & (keys[np.minimum(pos, max(keys.size - 1, 0))] == image_ids)
    out[hit] = vals[pos[hit]]
    return out
