"""Soft labels from a measurement model whose parameters are fixed (PURE: numpy only).

annotation.agreement.ratermodel fits the whole model (rater effects, cut-points, image spreads)
to a project's ratings; the agreement worker stores its parameters after each snapshot
(annotation.services.rater_model, ``payload["rater_model"]["parameters"]``). Given those
parameters the images are independent, so each image's posterior needs only its own ratings: the
same Laplace (normal) posterior of the image latents a_ie (presence) and b_ie (intensity) that the
fitter keeps, taken to its mode by Newton steps, and the same Gauss-Hermite moments that
``_Fitter.finish`` reports (p_present, expected_intensity, sd). Any subset of images can be done
at once, so a release computes them chunk by chunk with identical results.

Raters the parameters do not know (they joined after the fit), and raters the fit held at the
panel (few ratings: stored as null), count as the panel: effects 0, discrimination 1. The former
are counted in ``warnings``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from annotation.agreement.ratermodel import _BIG, _GH_W, _GH_X, _mean_rating, _sigmoid

FloatArray = npt.NDArray[np.float64]

PARAMETERS_VERSION = 1


@dataclass(frozen=True)
class ModelParameters:
    """The fitted parameters that soft labels need. Arrays over raters x emotions are (R, E)."""

    rater_ids: npt.NDArray[np.int64]  # (R,)
    presence_shift: FloatArray  # (R, E) logits; NaN (held at the panel) is read as 0
    intensity_latent: FloatArray  # (R, E) latent logit scale; NaN read as 0
    discrimination: FloatArray  # (R,) lambda_r
    presence_mean: FloatArray  # (E,) mu_e
    presence_sd: FloatArray  # (E,) sa_e
    intensity_sd: FloatArray  # (E,) sb_e
    cutpoints: FloatArray  # (E, K-1)
    scale_max: int
    fingerprint: str | None = None
    # (E,) the fitter's per-emotion presence carry (see presence_offsets); zeros: the plain mode
    presence_offset: FloatArray | None = None

    def __post_init__(self) -> None:
        R = self.rater_ids.shape[0]
        E = self.presence_mean.shape[0]
        shapes = {"presence_shift": (self.presence_shift.shape, (R, E)),
                  "intensity_latent": (self.intensity_latent.shape, (R, E)),
                  "discrimination": (self.discrimination.shape, (R,)),
                  "presence_sd": (self.presence_sd.shape, (E,)), "intensity_sd": (self.intensity_sd.shape, (E,)),
                  "cutpoints": (self.cutpoints.shape, (E, max(self.scale_max - 1, 0)))}
        for name, (got, want) in shapes.items():
            if got != want:
                raise ValueError(f"rater model parameters: {name} has shape {got}, expected {want}")
        if self.presence_offset is not None and self.presence_offset.shape != (E,):
            raise ValueError(f"rater model parameters: presence_offset has shape {self.presence_offset.shape}, "
                             f"expected {(E,)}")
        if self.scale_max < 1:
            raise ValueError(f"rater model parameters: scale_max must be at least 1, got {self.scale_max}")
        for name in ("presence_mean", "presence_sd", "intensity_sd", "cutpoints", "presence_offset"):
            if getattr(self, name) is not None and not np.isfinite(getattr(self, name)).all():
                raise ValueError(f"rater model parameters: {name} has values that are not finite")
        if not (np.isfinite(self.discrimination).all() and (self.discrimination > 0).all()):
            raise ValueError("rater model parameters: discrimination must be finite and positive")
        if (self.presence_sd <= 0).any() or (self.intensity_sd <= 0).any():
            raise ValueError("rater model parameters: presence_sd and intensity_sd must be positive")

    @property
    def n_emotions(self) -> int:
        return int(self.presence_mean.shape[0])

    @classmethod
    def from_fit(cls, fit: Any, fingerprint: str | None = None) -> ModelParameters:
        """The parameters of a RaterModelFit (annotation.agreement.ratermodel)."""
        return cls(rater_ids=np.asarray(fit.rater_ids, dtype=np.int64),
                   presence_shift=np.asarray(fit.presence_shift, dtype=np.float64),
                   intensity_latent=np.asarray(fit.intensity_latent, dtype=np.float64),
                   discrimination=np.asarray(fit.discrimination, dtype=np.float64),
                   presence_mean=np.asarray(fit.presence_mean, dtype=np.float64),
                   presence_sd=np.asarray(fit.presence_sd, dtype=np.float64),
                   intensity_sd=np.asarray(fit.intensity_sd, dtype=np.float64),
                   cutpoints=np.asarray(fit.cutpoints, dtype=np.float64).reshape(len(fit.presence_mean), -1),
                   scale_max=int(fit.scale_max), fingerprint=fingerprint)

    def as_json(self) -> dict[str, Any]:
        """A JSON-able dict (lists of floats; NaN -> null), read back by :meth:`from_json`."""
        def floats(a: npt.NDArray[Any]) -> Any:
            return clean(np.asarray(a, dtype=np.float64).tolist())

        def clean(x: Any) -> Any:
            if isinstance(x, list):
                return [clean(v) for v in x]
            return float(x) if math.isfinite(x) else None

        return {
            "version": PARAMETERS_VERSION,
            "rater_ids": [int(r) for r in self.rater_ids.tolist()],
            "presence_shift": floats(self.presence_shift),
            "intensity_latent": floats(self.intensity_latent),
            "discrimination": floats(self.discrimination),
            "presence_mean": floats(self.presence_mean),
            "presence_sd": floats(self.presence_sd),
            "intensity_sd": floats(self.intensity_sd),
            "cutpoints": floats(self.cutpoints),
            "presence_offset": None if self.presence_offset is None else floats(self.presence_offset),
            "scale_max": int(self.scale_max),
            "fingerprint": self.fingerprint,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ModelParameters:
        """Read :meth:`as_json`'s dict; ValueError naming a missing or malformed entry."""
        def arr(name: str, ndim: int) -> FloatArray:
            if name not in data:
                raise ValueError(f"rater model parameters: {name!r} is missing")
            try:
                out = np.array([[np.nan if v is None else v for v in row] for row in data[name]] if ndim == 2
                               else [np.nan if v is None else v for v in data[name]], dtype=np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"rater model parameters: {name!r} is not a list of numbers") from None
            if ndim == 2 and out.ndim == 1:  # no raters, or no cut-points (scale 0..1)
                out = out.reshape(out.shape[0], 0) if out.size == 0 and name == "cutpoints" else out.reshape(0, -1)
            if out.ndim != ndim:
                raise ValueError(f"rater model parameters: {name!r} must be {ndim}-dimensional")
            return out

        if "scale_max" not in data or "rater_ids" not in data:
            raise ValueError("rater model parameters: 'scale_max' or 'rater_ids' is missing")
        E = len(data.get("presence_mean") or [])
        cut = arr("cutpoints", 2)
        if cut.size == 0:
            cut = np.zeros((E, max(int(data["scale_max"]) - 1, 0)))
        shift = arr("presence_shift", 2)
        latent = arr("intensity_latent", 2)
        if shift.size == 0:
            shift = shift.reshape(0, E)
        if latent.size == 0:
            latent = latent.reshape(0, E)
        return cls(rater_ids=np.asarray(data["rater_ids"], dtype=np.int64).reshape(-1),
                   presence_shift=shift, intensity_latent=latent, discrimination=arr("discrimination", 1),
                   presence_mean=arr("presence_mean", 1), presence_sd=arr("presence_sd", 1),
                   intensity_sd=arr("intensity_sd", 1), cutpoints=cut, scale_max=int(data["scale_max"]),
                   fingerprint=data.get("fingerprint"),
                   presence_offset=None if data.get("presence_offset") is None else arr("presence_offset", 1))


@dataclass
class Posterior:
    """Soft labels of ``unit_ids`` (ascending); arrays over emotions x images (E, N), as the fit's."""

    unit_ids: npt.NDArray[Any]
    p_present: FloatArray
    expected_intensity: FloatArray
    sd: FloatArray
    unknown_raters: int = 0  # distinct raters of these ratings the parameters do not know
    warnings: list[str] = field(default_factory=list)


# Newton steps on the image latents stop when no latent moves by more than this (logits).
TOL = 1e-6  # quadratic convergence: the error left after a step this small is about its square
MAX_STEPS = 60


def posterior_soft_labels(params: ModelParameters, units: npt.ArrayLike, raters: npt.ArrayLike,
                          values2d: npt.ArrayLike, *, presence_only: bool = False) -> Posterior:
    """Each image's posterior under fixed parameters: one row per rating (image, rater, values over
    the emotions; NaN = not rated, as for ``fit_rater_model``). Images are independent, so the
    result for an image depends only on its own rows (any chunking of the images gives the same
    figures). ValueError for mismatched shapes, values off the scale or the wrong number of emotions."""
    u = np.asarray(units)
    r = np.asarray(raters).astype(np.int64, copy=False)
    x = np.asarray(values2d)
    if x.ndim == 1:
        x = x[:, None]
    if u.ndim != 1 or r.ndim != 1 or x.ndim != 2 or not (u.size == r.size == x.shape[0]):
        raise ValueError("units and raters must be 1-D with one entry per row of values2d")
    E, K = params.n_emotions, params.scale_max
    if x.shape[1] != E:
        raise ValueError(f"values2d has {x.shape[1]} emotions, the parameters {E}")
    y = _as_int8(x, K)
    uniq, ui = np.unique(u, return_inverse=True)
    ui = ui.reshape(-1).astype(np.intp)
    N = uniq.size
    # Rater index into the parameters; unknown raters (and those held at the panel) use row R: zeros.
    R = params.rater_ids.size
    order = np.argsort(params.rater_ids, kind="stable")
    sorted_ids = params.rater_ids[order]
    pos = np.searchsorted(sorted_ids, r)
    known = (pos < R) & (sorted_ids[np.minimum(pos, max(R - 1, 0))] == r) if R else np.zeros(r.size, dtype=bool)
    ri = np.where(known, order[np.minimum(pos, max(R - 1, 0))] if R else 0, R).astype(np.intp)
    unknown = int(np.unique(r[~known]).size)
    S = np.vstack([np.nan_to_num(params.presence_shift, nan=0.0), np.zeros((1, E))]).T.copy()  # (E, R+1)
    D = np.vstack([np.nan_to_num(params.intensity_latent, nan=0.0), np.zeros((1, E))]).T.copy()
    lam_r = np.r_[params.discrimination, 1.0]
    warnings: list[str] = []
    if unknown:
        warnings.append(f"{unknown} rater(s) unknown to the measurement model's parameters are counted as the "
                        "panel (effects 0)")
    p_present = np.empty((E, N))
    exp_int = np.empty((E, N))
    sd = np.empty((E, N))
    if N == 0:
        return Posterior(unit_ids=uniq, p_present=p_present, expected_intensity=exp_int, sd=sd,
                         unknown_raters=unknown, warnings=warnings)
    yt = np.ascontiguousarray(y.T)  # (E, n)
    # Emotions in groups of about 2^21 ratings: vectorised, with bounded scratch memory. Every step
    # below is elementwise per (image, emotion) (the Newton steps stop per element), so an image's
    # figures do not depend on which other images are computed with it, to the last bit.
    per = max(1, min(E, (1 << 21) // max(yt.shape[1], 1)))
    for e0 in range(0, E, per):
        e1 = min(E, e0 + per)
        # the patterns once: of values where they fit (then each pattern's figures), else of presence
        pats = _patterns(yt[e0:e1], ui, ri, N, None if presence_only else K)
        if pats is not None and pats[6]:  # #21: each value pattern's figures once, then copied
            figures = _pattern_figures(params, _pattern_modes(params, yt[e0:e1], e0, ri, S, D, lam_r, pats), e0)
            for out, fig in zip((p_present, exp_int, sd), figures, strict=True):
                out[e0:e1] = fig[pats[5]].reshape(e1 - e0, N)
            del pats, figures
            continue
        A, VA, B, VB, has = _element_modes(params, yt[e0:e1], e0, ui, ri, N, S, D, lam_r, presence_only, pats)
        for k, e in enumerate(range(e0, e1)):
            m1, m2 = _gh_moments(A[k], np.sqrt(VA[k]), None)
            p_present[e] = m1
            if presence_only:
                continue
            i1, i2 = np.ones(N), np.ones(N)
            if K >= 2:
                # Images without a present rating of this emotion share one posterior (the prior):
                # computed once, from a fixed one-element array.
                idx = np.flatnonzero(has[k])
                i1[idx], i2[idx] = _gh_moments(B[k][idx], np.sqrt(VB[k][idx]), params.cutpoints[e])
                rest = ~has[k]
                if rest.any():
                    c1, c2 = _gh_moments(np.zeros(1), np.full(1, params.intensity_sd[e]), params.cutpoints[e])
                    i1[rest], i2[rest] = c1[0], c2[0]
            exp_int[e] = i1
            sd[e] = np.sqrt(np.maximum(m2 * i2 - (m1 * i1) ** 2, 0.0))
    return Posterior(unit_ids=uniq, p_present=p_present, expected_intensity=exp_int, sd=sd,
                     unknown_raters=unknown, warnings=warnings)


def _pattern_figures(params: ModelParameters, modes: _PatternModes, e0: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(p_present, expected_intensity, sd) of each value pattern: posterior_soft_labels' steps for
    an element, on the patterns (elementwise, so the same figures to the bit)."""
    K = params.scale_max
    P = modes.e.size
    m1, m2 = _gh_moments(modes.A, np.sqrt(modes.VA), None)
    i1, i2 = np.ones(P), np.ones(P)
    if K >= 2:
        idx = np.flatnonzero(modes.has)
        # the cut-points of each pattern's emotion, one row per cut-point (as _mean_rating takes them)
        cut = np.ascontiguousarray(params.cutpoints[e0 + modes.e[idx]].T)
        i1[idx], i2[idx] = _gh_moments(modes.B[idx], np.sqrt(modes.VB[idx]), cut)
        del idx, cut
        # Patterns without a present rating share their emotion's prior posterior: computed once per
        # emotion from a fixed one-element array, as for an element.
        for k in np.unique(modes.e[~modes.has]).tolist():
            e = e0 + int(k)
            c1, c2 = _gh_moments(np.zeros(1), np.full(1, params.intensity_sd[e]), params.cutpoints[e])
            rest = (modes.e == k) & ~modes.has
            i1[rest], i2[rest] = c1[0], c2[0]
    sd = np.sqrt(np.maximum(m2 * i2 - (m1 * i1) ** 2, 0.0))
    return m1, i1, sd


def presence_offsets(params: ModelParameters, units: npt.ArrayLike, raters: npt.ArrayLike,
                     values2d: npt.ArrayLike, fit_unit_ids: npt.ArrayLike, fit_p_present: FloatArray, *,
                     max_images: int = 4000, seed: int = 12345, sweeps: int = 6) -> FloatArray:
    """The fitter's per-emotion presence carry delta_e, from a fit's own p_present: the offset for
    which these parameters reproduce the fit's mean p_present on a fixed subsample of its images
    (secant steps, all emotions at once).

    Why it exists: each sweep of ``ratermodel._Fitter`` moves the image latents one Newton step,
    then the rater step's common move (its expectation over the image posteriors differs from the
    mode) is centred away from the raters into the images; at convergence that common move is a
    constant delta_e per emotion, and the image latents rest where g(a) + delta_e h(a) = 0 rather
    than at the mode. A per-emotion scalar, so a few thousand images fix it.
    """
    u = np.asarray(units)
    ids = np.asarray(fit_unit_ids)
    rng = np.random.default_rng(seed)
    take = np.sort(rng.choice(ids.size, min(max_images, ids.size), replace=False))
    chosen = ids[take]
    rows = np.isin(u, chosen)
    target = np.asarray(fit_p_present)[:, take].mean(axis=1)
    sub_u, sub_r, sub_x = u[rows], np.asarray(raters)[rows], np.asarray(values2d)[rows]
    E = params.n_emotions

    def mean_p(delta: FloatArray) -> FloatArray:
        p = dataclasses.replace(params, presence_offset=delta)
        out: FloatArray = posterior_soft_labels(p, sub_u, sub_r, sub_x, presence_only=True).p_present.mean(axis=1)
        return out

    d0 = np.zeros(E)
    f0 = mean_p(d0) - target
    d1 = np.full(E, 0.05)
    for _ in range(sweeps):
        f1 = mean_p(d1) - target
        slope = np.where(np.abs(d1 - d0) > 1e-12, (f1 - f0) / np.where(np.abs(d1 - d0) > 1e-12, d1 - d0, 1.0), 0.0)
        ok = np.abs(slope) > 1e-9
        d2 = np.where(ok, d1 - f1 / np.where(ok, slope, 1.0), d1)
        d2 = np.clip(d2, d1 - 0.5, d1 + 0.5)
        d0, f0, d1 = d1, f1, d2
        if float(np.abs(f1).max(initial=0.0)) < 1e-7:
            break
    return d1


def _gh_moments(mean: FloatArray, sd: FloatArray, cut: FloatArray | None) -> tuple[FloatArray, FloatArray]:
    """E[f] and E[f^2] for the latent ~ N(mean, sd^2) by 9-point Gauss-Hermite (ratermodel's nodes),
    f = sigmoid (cut None: presence) or the mean rating given presence at cut-points ``cut``;
    node by node, elementwise."""
    m1 = np.zeros_like(mean)
    m2 = np.zeros_like(mean)
    for x_k, w_k in zip(_GH_X.tolist(), _GH_W.tolist(), strict=True):
        lat = mean + sd * x_k
        f = _sigmoid(lat) if cut is None else _mean_rating(cut, lat)
        m1 += w_k * f
        m2 += w_k * (f * f)
    return m1, m2


def _as_int8(x: npt.NDArray[Any], K: int) -> npt.NDArray[np.int8]:
    """Ratings as int8 with -1 for missing; ValueError naming the first value off the scale."""
    if np.issubdtype(x.dtype, np.integer):
        bad = (x < 0) | (x > K)
        finite = np.ones(x.shape, dtype=bool)
    else:
        finite = ~np.isnan(x)
        bad = finite & ((x < 0) | (x > K) | (x != np.round(x)))
    if bad.any():
        i, j = (int(v[0]) for v in np.nonzero(bad))
        raise ValueError(f"values2d[{i}, {j}] = {x[i, j]!r}: ratings must be whole numbers in 0..{K} "
                         "(or NaN for missing)")
    out = np.full(x.shape, -1, dtype=np.int8)
    out[finite] = x[finite].astype(np.int8)
    return out


def _modes(params: ModelParameters, Yc: npt.NDArray[np.int8], e0: int, ui: npt.NDArray[np.intp],
           ri: npt.NDArray[np.intp], N: int, S: FloatArray, D: FloatArray,
           lam_r: FloatArray, presence_only: bool = False
           ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, npt.NDArray[np.bool_]]:
    """Posterior modes and variances (curvature at the mode) of a_ie and b_ie for emotions
    e0..e0+Ec-1, flattened as the fitter does (image index (e - e0) * N + i)."""
    pats = _patterns(Yc, ui, ri, N, None if presence_only else params.scale_max)
    if pats is not None and pats[6]:  # value patterns: computed once per pattern
        modes = _pattern_modes(params, Yc, e0, ri, S, D, lam_r, pats)
        elem = pats[5]
        return (modes.A[elem].reshape(Yc.shape[0], N), modes.VA[elem].reshape(Yc.shape[0], N),
                modes.B[elem].reshape(Yc.shape[0], N), modes.VB[elem].reshape(Yc.shape[0], N),
                modes.has[elem].reshape(Yc.shape[0], N))
    return _element_modes(params, Yc, e0, ui, ri, N, S, D, lam_r, presence_only, pats)


@dataclass
class _PatternModes:
    """The latents' modes and variances of each value pattern (see _patterns) of one group of
    emotions: ``e`` its emotion (0 = the group's first), ``elem`` the pattern of each element."""

    e: npt.NDArray[np.intp]
    elem: npt.NDArray[np.intp]
    A: FloatArray
    VA: FloatArray
    B: FloatArray
    VB: FloatArray
    has: npt.NDArray[np.bool_]


def _pattern_modes(params: ModelParameters, Yc: npt.NDArray[np.int8], e0: int, ri: npt.NDArray[np.intp],
                   S: FloatArray, D: FloatArray, lam_r: FloatArray, pats: Any) -> _PatternModes:
    """#21: elements (image, emotion) whose raters (in row order) gave the same values have the
    same posterior: each such value pattern is computed once, from the ratings of one of its
    elements in row order (every element of the pattern has the same ratings, so the same sums in
    the same order as its own), and every figure after the latents is elementwise, so a pattern's
    figures are its elements' to the bit."""
    p_ii, p_e_of_rating, p_r, p_z, p_e, elem, _by_value, p_y = pats
    Ec = Yc.shape[0]
    R1 = S.shape[1]
    sl = slice(e0, e0 + Ec)
    mu = params.presence_mean[sl]
    prec_e = 1.0 / params.presence_sd[sl] ** 2
    offset = params.presence_offset[sl] if params.presence_offset is not None else None
    P = int(p_e.size)
    A, VA = _presence_newton(p_ii, np.take(S[sl].reshape(-1), p_e_of_rating * R1 + p_r), p_z, mu[p_e], prec_e[p_e],
                             None if offset is None else offset[p_e], P)
    prec_b = (1.0 / params.intensity_sd[sl] ** 2)[p_e]
    if params.scale_max >= 2:
        pos = p_y > 0
        B, VB, has = _intensity_newton(params, Ec, p_ii[pos], p_e_of_rating[pos], p_r[pos],
                                       p_y[pos].astype(np.intp), D, lam_r, e0, prec_b, P)
    else:
        B, VB, has = np.zeros(P), 1.0 / prec_b, np.zeros(P, dtype=bool)
    return _PatternModes(e=p_e, elem=elem, A=A, VA=VA, B=B, VB=VB, has=has)


def _element_modes(params: ModelParameters, Yc: npt.NDArray[np.int8], e0: int, ui: npt.NDArray[np.intp],
                   ri: npt.NDArray[np.intp], N: int, S: FloatArray, D: FloatArray,
                   lam_r: FloatArray, presence_only: bool, pats: Any
                   ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, npt.NDArray[np.bool_]]:
    """``_modes`` element by element (presence per presence pattern where ``pats`` has them)."""
    Ec = Yc.shape[0]
    K = params.scale_max
    R1 = S.shape[1]
    sl = slice(e0, e0 + Ec)
    mu = params.presence_mean[sl]
    prec_e = 1.0 / params.presence_sd[sl] ** 2
    offset = params.presence_offset[sl] if params.presence_offset is not None else None
    size = Ec * N
    S_flat = S[sl].reshape(-1)
    if pats is None:
        el, j = np.nonzero(Yc >= 0)
        ii = el * N + ui[j]
        A, VA = _presence_newton(ii, np.take(S_flat, el * R1 + ri[j]), (Yc[el, j] > 0).astype(np.float64),
                                 np.repeat(mu, N), np.repeat(prec_e, N),
                                 None if offset is None else np.repeat(offset, N), size)
        del el, j, ii
    else:
        # Elements (image, emotion) with the same raters in the same order and the same presence
        # marks have the same posterior: each such pattern is computed once, exactly as the element
        # itself would be (its ratings summed in the same order), then copied to every element.
        p_ii, p_e_of_rating, p_r, p_z, p_e, elem = pats[:6]
        A_p, VA_p = _presence_newton(p_ii, np.take(S_flat, p_e_of_rating * R1 + p_r), p_z, mu[p_e], prec_e[p_e],
                                     None if offset is None else offset[p_e], int(p_e.size))
        A, VA = A_p[elem], VA_p[elem]
    prec_b = np.repeat(1.0 / params.intensity_sd[sl] ** 2, N)
    if K >= 2 and not presence_only:
        elp, jp = np.nonzero(Yc > 0)
        B, VB, has = _intensity_newton(params, Ec, elp * N + ui[jp], elp, ri[jp], Yc[elp, jp].astype(np.intp),
                                       D, lam_r, e0, prec_b, size)
    else:
        B, VB, has = np.zeros(size), 1.0 / prec_b, np.zeros(size, dtype=bool)
    return A.reshape(Ec, N), VA.reshape(Ec, N), B.reshape(Ec, N), VB.reshape(Ec, N), has.reshape(Ec, N)


def _intensity_newton(params: ModelParameters, Ec: int, ip: npt.NDArray[np.intp], elp: npt.NDArray[np.intp],
                      rp: npt.NDArray[np.intp], yp: npt.NDArray[np.intp], D: FloatArray, lam_r: FloatArray, e0: int,
                      prec_b: FloatArray, size: int) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_]]:
    """The intensity latents' modes, variances and whether any rating marked them present, of
    ``size`` elements from their present ratings (element ``ip``, emotion ``elp`` from e0, rater
    ``rp``, value ``yp``; an element's ratings in its row order)."""
    K = params.scale_max
    R1 = D.shape[1]
    sl = slice(e0, e0 + Ec)
    B = np.zeros(size)
    lam = np.take(lam_r, rp)
    off_d = np.take(D[sl].reshape(-1), elp * R1 + rp)
    cext = np.concatenate([np.full((Ec, 1), -_BIG), params.cutpoints[sl], np.full((Ec, 1), _BIG)],
                          axis=1).reshape(-1)
    c_up = np.take(cext, elp * (K + 1) + yp)
    c_lo = np.take(cext, elp * (K + 1) + yp - 1)
    has = np.bincount(ip, minlength=size) > 0
    # Newton steps on the elements still moving only (#21): an element's figures are those of
    # stepping every element each time (its ratings summed in the same order, its bracket
    # updated in the same steps), but the ratings of the elements that stopped drop out.
    act = np.flatnonzero(has)
    loc = np.cumsum(has) - 1  # element -> its position in act
    a_ip, a_lam, a_up, a_lo, a_off = loc[ip], lam, c_up, c_lo, off_d
    a_prec = prec_b[act]
    lo, hi = np.full(act.size, -np.inf), np.full(act.size, np.inf)
    for _ in range(MAX_STEPS):
        m = act.size
        b_act = B[act]
        score, w = _ordinal_terms(a_lam, a_up, a_lo, np.take(b_act, a_ip) + a_off)
        g = np.bincount(a_ip, score, m) - b_act * a_prec
        hb = np.bincount(a_ip, w, m) + a_prec
        step = _safeguarded(b_act, g, hb, lo, hi)
        B[act] = b_act + step
        moving = np.abs(step) >= TOL
        if not moving.any():
            break
        if not moving.all():
            keep = moving[a_ip]
            new_loc = np.cumsum(moving) - 1
            a_ip, a_lam, a_up, a_lo, a_off = (new_loc[a_ip[keep]], a_lam[keep], a_up[keep], a_lo[keep],
                                              a_off[keep])
            act, a_prec, lo, hi = act[moving], a_prec[moving], lo[moving], hi[moving]
    del a_ip, a_lam, a_up, a_lo, a_off, act, loc
    _score, w = _ordinal_terms(lam, c_up, c_lo, np.take(B, ip) + off_d)
    VB = 1.0 / (np.bincount(ip, w, size) + prec_b)
    return B, VB, has


def _presence_newton(ii: npt.NDArray[np.intp], off_s: FloatArray, z: FloatArray, mean_a: FloatArray,
                     prec_a: FloatArray, delta: FloatArray | None, size: int) -> tuple[FloatArray, FloatArray]:
    """The presence latents' resting points and posterior variances, element by element
    (``ii``: element of each rating; Newton steps, each element stopping after its first step
    below TOL, so its result does not depend on the other elements)."""
    A = mean_a.copy()
    # The fitter's image step is A += g / h followed, through the centring of the rater effects, by
    # A += delta_e (its presence carry): its fixed point solves g(A) + delta_e h(A) = 0 (delta 0: the mode).
    active = np.ones(size, dtype=bool)
    lo, hi = np.full(size, -np.inf), np.full(size, np.inf)
    for _ in range(MAX_STEPS):
        p = _sigmoid(np.take(A, ii) + off_s)
        g = np.bincount(ii, z - p, size) - (A - mean_a) * prec_a
        t = p * (1.0 - p)
        h = np.bincount(ii, t, size) + prec_a
        if delta is None:
            step = _safeguarded(A, g, h, lo, hi)
        else:
            dh = np.bincount(ii, t * (1.0 - 2.0 * p), size)
            step = _safeguarded(A, g + delta * h, np.maximum(h - delta * dh, 0.5 * h), lo, hi)
        step[~active] = 0.0
        A += step
        active &= np.abs(step) >= TOL  # an element stops after its first step below TOL
        if not active.any():
            break
    p = _sigmoid(np.take(A, ii) + off_s)
    p *= 1.0 - p
    VA = 1.0 / (np.bincount(ii, p, size) + prec_a)
    return A, VA


def _safeguarded(x: FloatArray, f: FloatArray, slope: FloatArray, lo: FloatArray, hi: FloatArray) -> FloatArray:
    """A Newton step x + f / slope (clipped to 3) towards the root of a decreasing f, kept inside
    the bracket [lo, hi] the signs of f seen so far give (updated here): a step that would leave
    it bisects it instead, so an element cannot cycle between two points (a steep ordinal
    likelihood can make plain Newton do that). Elementwise."""
    up = f > 0
    np.copyto(lo, x, where=up)
    np.copyto(hi, x, where=~up)
    new = x + np.clip(f / slope, -3.0, 3.0)
    out = ((new <= lo) | (new >= hi)) & np.isfinite(lo) & np.isfinite(hi)
    new = np.where(out, 0.5 * (lo + hi), new)
    step: FloatArray = new - x
    return step


MAX_PATTERN_RATINGS = 20


def _patterns(Yc: npt.NDArray[np.int8], ui: npt.NDArray[np.intp], ri: npt.NDArray[np.intp], N: int,
              scale_max: int | None = None) -> Any:
    """The distinct patterns of the elements (emotion, image): the image's raters in row order and
    which of them marked the emotion present, or (``scale_max`` given, #21, where the codes fit in
    an int64) the values they gave. Returns (pattern of each rating, emotion of each rating, rater
    of each rating, z of each rating, emotion of each pattern, pattern of each element e * N + i,
    whether the patterns are of values, value of each rating), the ratings of a pattern in the
    image's row order; None where it does not apply (a missing value, rows not grouped by image,
    an image with over MAX_PATTERN_RATINGS rows)."""
    n = ui.size
    if n == 0 or bool((Yc < 0).any()) or (n > 1 and not bool(np.all(ui[1:] >= ui[:-1]))):
        return None
    starts = np.r_[0, np.flatnonzero(np.diff(ui)) + 1]
    counts = np.diff(np.r_[starts, n])
    if starts.size != N or int(counts.max()) > MAX_PATTERN_RATINGS:
        return None
    Ec = Yc.shape[0]
    n_sigs = {}
    R1 = int(ri.max()) + 1
    for c in np.unique(counts).tolist():
        rows = starts[counts == c][:, None] + np.arange(c)
        if float(R1) ** c <= _DENSE_KEYS:  # the raters in row order as one number (#21: no sort)
            sig_key = np.zeros(rows.shape[0], dtype=np.int64)
            for k in range(c):
                sig_key = sig_key * R1 + ri[rows[:, k]]
            n_sigs[c] = _dense_unique(sig_key, R1 ** c)[::2]
        else:
            n_sigs[c] = np.unique(ri[rows], axis=0, return_inverse=True)
    base = 2 if scale_max is None else int(scale_max) + 1
    by_value = scale_max is not None and all(
        Ec * (int(inv.max()) + 1) * float(base) ** c < 2.0 ** 62 for c, (_u, inv) in n_sigs.items())
    if not by_value:
        base = 2
    elem = np.empty(Ec * N, dtype=np.intp)
    parts: list[tuple[Any, ...]] = []
    next_id = 0
    emo = np.arange(Ec, dtype=np.int64)
    for c, (_u, sig) in n_sigs.items():
        imgs = np.flatnonzero(counts == c)
        m = imgs.size
        rows = starts[imgs][:, None] + np.arange(c)  # (m, c), in row order
        sig = sig.reshape(-1).astype(np.int64)
        n_sig = int(sig.max()) + 1
        bits = np.zeros((Ec, m), dtype=np.int64)
        for k in range(c):
            if by_value:
                bits += Yc[:, rows[:, k]].astype(np.int64) * base ** k
            else:
                bits |= (Yc[:, rows[:, k]] > 0).astype(np.int64) << k
        key = (emo[:, None] * n_sig + sig[None, :]) * base ** c + bits
        del bits
        if Ec * n_sig * float(base) ** c <= max(_DENSE_KEYS, 4 * key.size):
            _k, first, inv = _dense_unique(key.reshape(-1), Ec * n_sig * base ** c)
        else:
            _k, first, inv = np.unique(key.reshape(-1), return_index=True, return_inverse=True)
        del key, _k
        P = first.size
        e_p = (first // m).astype(np.intp)
        prow = starts[imgs[first % m]][:, None] + np.arange(c)  # (P, c)
        y = Yc[e_p[:, None], prow].reshape(-1)
        parts.append((next_id + np.repeat(np.arange(P, dtype=np.intp), c), np.repeat(e_p, c), ri[prow].reshape(-1),
                      (y > 0).astype(np.float64), e_p, y))
        elem[(emo[:, None] * N + imgs[None, :]).reshape(-1)] = next_id + inv.reshape(-1)
        next_id += P
    cat = [np.concatenate([p[k] for p in parts]) for k in range(6)]
    return (*cat[:5], elem, by_value, cat[5])


_DENSE_KEYS = 1 << 22  # keys below this many are told apart by a table of them, not by sorting


def _dense_unique(key: npt.NDArray[np.int64], size: int) -> tuple[Any, Any, Any]:
    """(distinct keys ascending, an index of each one in ``key``, the position of each key among
    them), as np.unique's (values, index, inverse) but in linear time for keys in 0..size-1 (the
    index: of some occurrence, not always the first)."""
    seen = np.zeros(size, dtype=bool)
    seen[key] = True
    present = np.flatnonzero(seen)
    del seen
    remap = np.zeros(size, dtype=np.intp)
    remap[present] = np.arange(present.size)
    inv = remap[key]
    remap[inv] = np.arange(key.size)  # (reused) an occurrence of each distinct key
    return present, remap[:present.size].copy(), inv


def _ordinal_terms(lam: FloatArray, c_up: FloatArray, c_lo: FloatArray,
                   eta: FloatArray) -> tuple[FloatArray, FloatArray]:
    """d log P(y) / d eta and minus its derivative, for the cumulative logit (as ratermodel's
    ``_Fitter._terms`` and ``_eta_terms``)."""
    U = lam * (c_up - eta)
    L = lam * (c_lo - eta)
    FU, GL = _sigmoid(U), _sigmoid(-L)
    FL = 1.0 - GL
    p = np.maximum(FU * GL * -np.expm1(L - U), 1e-15)
    fU, fL = FU * (1 - FU), FL * GL
    dU, dL = fU * (1 - 2 * FU), fL * (1 - 2 * FL)
    a = (fU - fL) / p
    return -lam * a, lam * lam * (a * a - (dU - dL) / p)


class SoftRows:
    """Soft labels of any of the images of a long table of ratings, computed on demand (#21: a
    release writes them slice by slice instead of holding three (images x emotions) float arrays).
    ``units`` ascending (rows grouped by image, as RatingRows are); each image's figures depend on
    its own rows only, so any selection gives the same figures as one call on all images."""

    def __init__(self, params: ModelParameters, units: npt.ArrayLike, raters: npt.ArrayLike,
                 values2d: npt.ArrayLike, *, chunk_images: int = 20_000) -> None:
        self.params = params
        self.units = np.asarray(units, dtype=np.int64)
        self.raters = np.asarray(raters)
        self.values = np.asarray(values2d)
        if self.units.size > 1 and not bool(np.all(self.units[1:] >= self.units[:-1])):
            raise ValueError("ratings must come sorted by image for the soft labels")
        n = self.units.size
        self.starts = np.r_[0, np.flatnonzero(np.diff(self.units)) + 1] if n else np.zeros(0, dtype=np.int64)
        self.counts = np.diff(np.r_[self.starts, n])
        self.image_ids = self.units[self.starts]
        self.chunk = max(int(chunk_images), 1)

    def of(self, image_ids: npt.ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
        """(p_present, expected_intensity, sd), each (m, E), rows in the order of ``image_ids``;
        ValueError naming an image without ratings."""
        return self._of(self._rows_of(image_ids), emotion_major=False)

    def of_emotion_major(self, image_ids: npt.ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
        """``of`` transposed: each (E, m), C-contiguous (#21: the tables' columns are emotions, so a
        release slice needs no transposed copy); the same figures."""
        return self._of(self._rows_of(image_ids), emotion_major=True)

    def _rows_of(self, image_ids: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Each image's position among the rated images; ValueError naming one without ratings."""
        want = np.asarray(image_ids, dtype=np.int64)
        g = np.searchsorted(self.image_ids, want)
        ok = (g < self.image_ids.size) & (self.image_ids[np.minimum(g, max(self.image_ids.size - 1, 0))] == want) \
            if self.image_ids.size else np.zeros(want.size, dtype=bool)
        if not ok.all():
            raise ValueError(f"image {int(want[~ok][0])} has no ratings for its soft labels")
        return g

    def _of(self, g: npt.NDArray[np.int64], *, emotion_major: bool) -> tuple[FloatArray, FloatArray, FloatArray]:
        order = np.argsort(g, kind="stable")
        m, E = g.size, self.params.n_emotions
        out = tuple(np.empty((E, m) if emotion_major else (m, E)) for _ in range(3))
        for lo in range(0, m, self.chunk):
            pick = order[lo:lo + self.chunk]
            sel = g[pick]
            cnt = self.counts[sel]
            rows = np.repeat(self.starts[sel] - np.r_[0, np.cumsum(cnt)[:-1]], cnt) + np.arange(int(cnt.sum()))
            post = posterior_soft_labels(self.params, self.units[rows], self.raters[rows], self.values[rows])
            for arr, name in zip(out, ("p_present", "expected_intensity", "sd"), strict=True):
                if emotion_major:
                    arr[:, pick] = getattr(post, name)
                else:
                    arr[pick] = getattr(post, name).T
            del post
        return out  # type: ignore[return-value]

    def unknown_raters(self) -> int:
        """Distinct raters of these ratings that the parameters do not know."""
        return int(np.setdiff1d(np.unique(self.raters), self.params.rater_ids).size)
