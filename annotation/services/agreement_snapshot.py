"""Computing and storing agreement snapshots (the statistics live in annotation.agreement).

Pages and the API never compute agreement: they read the latest AgreementSnapshot. Workers
compute snapshots on demand and debounced after new ratings (annotation.tasks).
"""

from __future__ import annotations

import io
import itertools
import math
import time
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any, TypedDict

import numpy as np
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Count, Max
from django.utils import timezone

from accounts.models import profile_groups
from annotation import agreement as ag
from annotation import jobs, selectors, taxonomy
from annotation import rater_quality as rq
from annotation.models import (
    AgreementSnapshot,
    Image,
    ModelScore,
    Project,
    Rating,
    RetestRating,
    SnapshotStatus,
)
from annotation.payloads import SnapshotEmotion, SnapshotKappa, SnapshotPayload
from annotation.pgcopy import RatingRows, parse_fixed_rows
from annotation.services.audit import audit_record
from annotation.services.locks import job_lock
from annotation.services.tallies import image_tally_compact
from annotation.services.webhooks import webhooks_snapshot_done

LEVELS = ("nominal", "ordinal", "interval", "ratio")
STRATA_KEYS = ("ethnicity", "gender", "age")
DEBOUNCE_SECONDS = 60
_DEBOUNCE_MEMO: Any = None  # core.cache.ProcessMemo, made on first use: `agreement --json` starts without redis


def _debounce_memo() -> Any:
    global _DEBOUNCE_MEMO
    if _DEBOUNCE_MEMO is None:
        from core.cache import ProcessMemo

        _DEBOUNCE_MEMO = ProcessMemo(seconds=5)
    return _DEBOUNCE_MEMO


class AgreementError(ValueError):
    """A refused request (unknown level, bad bootstrap count); the message names the problem."""


def _num(x: float | None, digits: int = 6) -> float | None:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return None
    return round(float(x), digits)


def ratings_fingerprint(project: Project) -> str:
    """Identifies the rating data: count and latest change of the project's ratings and flags."""
    agg = Rating.objects.filter(project=project).aggregate(n=Count("id"), last=Max("updated_at"))
    flagged = Image.objects.filter(project=project, flagged=True).count()
    last = agg["last"].isoformat() if agg["last"] else "-"
    retests = RetestRating.objects.filter(project=project).count()  # test-retest figures change with them
    return f"{agg['n']}|{last}|{flagged}|{retests}"


def _labels(rater_ids: set[int]) -> dict[int, str]:
    from accounts.models import User

    return {u.pk: (u.display_name or u.email) for u in User.objects.filter(pk__in=rater_ids)}


def _emotion_rows(report: list[ag.EmotionAgreement], names: tuple[str, ...],
                  with_ci: bool) -> list[SnapshotEmotion]:
    out: list[SnapshotEmotion] = []
    for e in report:
        given = e.alpha.alpha is not None and with_ci
        out.append({
            "emotion": names[e.emotion],
            "index": e.emotion,
            "alpha": _num(e.alpha.alpha),
            "ci": [_num(e.ci_low), _num(e.ci_high)] if given and e.ci_low is not None else None,
            "ci_raters": ([_num(e.ci_raters_low), _num(e.ci_raters_high)]
                          if given and e.ci_raters_low is not None else None),
            "ci_raters_reason": e.ci_raters_reason if given else None,
            "n_boot_undefined": e.n_boot_undefined if with_ci else 0,
            "reason": e.alpha.reason,
            "n_images": e.alpha.n_units,
            "n_ratings": e.nonzero.n_ratings,
            "nonzero_share": _num(e.nonzero.nonzero_share),
            "presence_alpha": _num(e.presence_alpha.alpha) if e.presence_alpha else None,
            "intensity_alpha": _num(e.intensity_alpha.alpha) if e.intensity_alpha else None,
            "intensity_images": e.intensity_alpha.n_units if e.intensity_alpha else 0,
            "ac2": _num(e.ac2),
            "warnings": [w for w in e.warnings if with_ci or w != e.ci_reason],
        })
    return out


def _mean_alpha_ci(stats: ag.SnapshotStats, with_ci: bool) -> dict[str, Any] | None:
    """The mean alpha's intervals: "ci" over images (these experts), "ci_raters" with rater sampling."""
    m = stats.mean_alpha
    if m is None or m.estimate is None or not with_ci:
        return None
    return {"estimate": _num(m.estimate), "n_emotions": m.n_emotions,
            "ci": [_num(m.image.low), _num(m.image.high)] if m.image.low is not None else None,
            "ci_raters": [_num(m.two_way.low), _num(m.two_way.high)] if m.two_way.low is not None else None,
            "reason": m.two_way.reason or m.image.reason}


def _label_reliability(stats: ag.SnapshotStats) -> dict[str, Any] | None:
    """Spearman-Brown reliability of the consolidated label from the mean alpha (one rating's
    reliability) and the mean number of ratings per image (docs/agreement.md)."""
    m, k = stats.mean_alpha, stats.ratings_per_image
    if m is None or m.estimate is None or k is None:
        return None
    return {"ratings_per_image": _num(k, 3), "reliability": _num(ag.spearman_brown(m.estimate, k))}


def _strata_labels(project: Project, units: np.ndarray) -> dict[str, np.ndarray]:
    """One label per rating row and stratum key, looked up per image (units are sorted image ids)."""
    image_ids = np.unique(units)
    if connection.vendor == "postgresql":  # one array parameter, not a 100,000-item IN list to compile (#21)
        with connection.cursor() as cur:
            cur.execute(f"SELECT id, {', '.join(STRATA_KEYS)} FROM annotation_image "
                        "WHERE project_id = %s AND id = ANY(%s::bigint[]) ORDER BY id",
                        [project.pk, image_ids.tolist()])
            rows = cur.fetchall()
    else:
        rows = list(Image.objects.filter(project=project, pk__in=image_ids.tolist()).order_by("pk")
                    .values_list("pk", *STRATA_KEYS))
    if [r[0] for r in rows] != image_ids.tolist():
        raise AgreementError("rated images changed while the snapshot was being computed; try again")
    position = np.searchsorted(image_ids, units)
    out = {}
    for k, key in enumerate(STRATA_KEYS, start=1):
        # fixed-width strings, not objects: the engine sorts these labels (np.unique) per rating row,
        # several times faster on a string dtype (#21)
        per_image = np.array(["unknown" if r[k] in (None, "") else str(r[k]) for r in rows], dtype=str)
        out[key] = per_image[position]
    return out


def _row_labels(wide: selectors.SnapshotRows) -> dict[str, ag.CodedLabels]:
    """``_strata_labels`` from the labels read with the ratings (selectors.snapshot_rows), as codes
    into the label names (ag.CodedLabels: the engine reads them as the label arrays, without
    building and sorting a string per rating)."""
    out = {}
    for key in STRATA_KEYS:
        codes = wide.label_codes[key]
        if codes.size and int(codes.min()) < 0:
            raise AgreementError("rated images changed while the snapshot was being computed; try again")
        names = np.array(["unknown" if v in (None, "") else str(v) for v in wide.label_values[key]] or ["unknown"],
                         dtype=str)
        out[key] = ag.CodedLabels(codes, names)
    return out


def _profile_strata(project: Project, units: np.ndarray, raters: np.ndarray, values: np.ndarray, *,
                    level: str, n_boot: int, seed: int) -> dict[str, list[ag.StratumAlpha]]:
    """Agreement within each group of raters by the project's profile field
    (Project.agreement_by_profile; groups: accounts.models.profile_groups): per group, alpha and
    interval on that group's ratings alone, with the demographic strata's reliability rule."""
    field = project.agreement_by_profile
    if not field or len(raters) == 0:
        return {}
    ids = np.unique(raters)
    label = profile_groups([int(r) for r in ids], field)
    per_row = np.array([label[int(r)] for r in ids], dtype=object)[np.searchsorted(ids, raters)]
    results: list[ag.StratumAlpha] = []
    for group in sorted(set(label.values())):
        rows = per_row == group
        results += ag.alpha_by_stratum(units[rows], values[rows], per_row[rows], raters=raters[rows],
                                       level=level, domain=ag.scale_domain(project.scale_max),  # type: ignore[arg-type]
                                       n_boot=max(n_boot, 1), seed=seed)
    return {f"rater_{field}": results}


def _strata_rows(strata: dict[str, list[ag.StratumAlpha]], *, with_ci: bool,
                 names: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, result in strata.items():
        by_stratum: dict[str, dict[str, Any]] = {}
        for s in result:
            entry = by_stratum.setdefault(str(s.stratum), {"stratum": str(s.stratum), "n_images": s.alpha.n_units,
                                                            "reliable": s.reliable, "emotions": []})
            entry["n_images"] = max(entry["n_images"], s.alpha.n_units)
            ci = [_num(s.ci_low), _num(s.ci_high)] if with_ci and s.alpha.alpha is not None else None
            entry["emotions"].append({"emotion": names[s.emotion], "alpha": _num(s.alpha.alpha), "ci": ci,
                                      "reliable": s.reliable, "note": s.note})
        out[key] = sorted(by_stratum.values(), key=lambda d: d["stratum"])
    return out


def _raters(project: Project, raters: np.ndarray, kappas: list[ag.PairKappa], loo: list[ag.RaterAgreement],
            names: tuple[str, ...]) -> tuple[list[dict[str, Any]], SnapshotKappa]:
    rater_ids = sorted({int(r) for r in raters.tolist()})
    labels = _labels(set(rater_ids))
    median_seconds = selectors.median_seconds_per_rater(project)
    counts = dict(zip(*np.unique(raters, return_counts=True), strict=True))
    by_rater: dict[int, list[ag.RaterAgreement]] = {}
    for r in loo:
        by_rater.setdefault(int(r.rater), []).append(r)

    def mean(xs: list[float | None]) -> float | None:
        xs2 = [x for x in xs if x is not None]
        return _num(sum(xs2) / len(xs2)) if xs2 else None

    rows = []
    for rid in rater_ids:
        rows.append({
            "rater": rid, "label": labels.get(rid, str(rid)), "n_ratings": int(counts.get(rid, 0)),
            "median_seconds": _num(median_seconds.get(rid), 1),
            "mean_kappa": mean([r.mean_kappa for r in by_rater.get(rid, [])]),
            "alpha_with": mean([r.alpha_with for r in by_rater.get(rid, [])]),
            "alpha_without": mean([r.alpha_without for r in by_rater.get(rid, [])]),
        })
    # Pairwise kappa averaged over emotions (the heatmap) and per emotion.
    pair_sum: dict[tuple[int, int], list[float]] = {}
    per_emotion: dict[int, list[float]] = {}
    for k in kappas:
        if k.kappa is None:
            continue
        a, b = sorted((int(k.rater_a), int(k.rater_b)))
        pair_sum.setdefault((a, b), []).append(k.kappa)
        per_emotion.setdefault(k.emotion, []).append(k.kappa)
    kappa: SnapshotKappa = {
        "raters": rater_ids,
        "pairs": [{"a": a, "b": b, "kappa": _num(sum(v) / len(v)), "n_emotions": len(v)}
                  for (a, b), v in sorted(pair_sum.items())],
        "per_emotion_mean": {names[e]: _num(sum(v) / len(v)) for e, v in sorted(per_emotion.items())},
    }
    return rows, kappa


def _retest_entry(pairs: list[tuple[list[int], list[int]]], scale_max: int,
                  names: tuple[str, ...]) -> dict[str, Any]:
    result = rq.retest_reliability([p[0] for p in pairs], [p[1] for p in pairs], scale_max=scale_max)
    return {
        "n_pairs": len(pairs),
        "mean_alpha": _num(rq.mean_or_none([e.alpha for e in result])),
        "mean_abs_change": _num(rq.mean_or_none([e.mean_abs_change for e in result])),
        "emotions": [{"emotion": names[e.emotion], "alpha": _num(e.alpha), "reason": e.reason,
                      "mean_abs_change": _num(e.mean_abs_change)} for e in result],
    }


_QualityNumbers = tuple[list[Any], np.ndarray, list[Any], list[Any], dict[int, list[list[int]]]]


def _quality_numbers(data: tuple[np.ndarray, np.ndarray, np.ndarray], scale_max: int) -> _QualityNumbers:
    """The pure part of ``_rater_quality`` (no database): severities and each rating's relative
    deviation, consistency, intensity shifts and scale use. ``agreement_compute`` runs it in a forked
    worker beside the bootstrap (annotation.agreement.forked, #21)."""
    units, raters, values = data
    # severity and the relative deviation (for consistency and drift) from one pass, rater by rater:
    # no float64 copies of the table (#21)
    sev_list, deviation = rq.severity_and_deviation(units, raters, values)
    consistent = rq.consistency(units, raters, values, deviation=deviation)
    shifts = rq.intensity_shift(units, raters, values)  # the int16 table as it is
    return sev_list, deviation, consistent, shifts, rq.scale_use(raters, values, scale_max=scale_max)


def _rater_quality(project: Project, rows: list[dict[str, Any]], names: tuple[str, ...],
                   data: tuple[np.ndarray, np.ndarray, np.ndarray], wide: selectors.SnapshotRows | None = None,
                   numbers: _QualityNumbers | None = None) -> None:
    """Add each rater's quality figures (annotation.rater_quality) to their payload row:

    - row["severity"]: mean of (own value - the other raters' mean) over co-rated images and
      emotions, overall and per emotion (> 0 lenient, < 0 severe); None without co-rated images.
    - row["scale_use"]: per emotion, how often each scale point was given; row["scale_use_overall"]
      the same summed over the emotions.
    - row["retest"]: test-retest figures, None without repeats. Repeats of flagged images are left
      out, like ratings.
    - row["consistency"]: how far the rater is from the others compared with how far they are from
      each other, with a 95% interval (rq.consistency); replaces the Mann-Whitney "annotator_test".
    - row["intensity_shift"]: the rater's intensity shift on present emotions, adjusted for which
      images they rated (rq.intensity_shift, an additive rater + image model).

    ``numbers``: ``_quality_numbers(data, project.scale_max)`` when already computed.
    """
    units, raters, values = data
    sev_list, deviation, consistent_list, shift_list, use = numbers or _quality_numbers(data, project.scale_max)
    severities = {s.rater: s for s in sev_list}
    consistent = {c.rater: c for c in consistent_list}
    shifts = {s.rater: s for s in shift_list}
    for row in rows:
        c = consistent.get(int(row["rater"]))
        row["consistency"] = None if c is None else {
            "estimate": _num(c.estimate, 4), "low": _num(c.low, 4), "high": _num(c.high, 4), "n_images": c.n_images}
        sh = shifts.get(int(row["rater"]))
        row["intensity_shift"] = None if sh is None or sh.shift is None else {
            "estimate": _num(sh.shift, 4), "n_cells": sh.n_cells}
    for row in rows:
        rid = int(row["rater"])
        sev = severities.get(rid)
        row["severity"] = None if sev is None or sev.severity is None else {
            "mean": _num(sev.severity), "n_images": sev.n_images,
            "per_emotion": {names[e]: _num(v) for e, v in enumerate(sev.per_emotion)}}
        counts = use.get(rid, [])
        row["scale_use"] = {names[e]: c for e, c in enumerate(counts)}
        row["scale_use_overall"] = [int(sum(c[p] for c in counts)) for p in range(project.scale_max + 1)]
    drift = _drift(project, units, raters, deviation, wide)
    for row in rows:
        row["drift"] = drift.get(int(row["rater"]))
    pairs: dict[int, list[tuple[list[int], list[int]]]] = {}
    for rater_id, first, second in (RetestRating.objects.filter(project=project, image__flagged=False)
                                    .order_by("rater_id", "image_id")
                                    .values_list("rater_id", "original_values", "values")):
        pairs.setdefault(int(rater_id), []).append((list(first), list(second)))
    for row in rows:
        mine = pairs.get(int(row["rater"]))
        row["retest"] = _retest_entry(mine, project.scale_max, names) if mine else None


DRIFT_WEEKS = 12


_DRIFT_SQL = """
SELECT r.image_id::int8, r.rater_id::int8, EXTRACT(EPOCH FROM r.created_at)::float8,
       COALESCE(r.seconds_spent::float8, 'NaN'::float8)
FROM annotation_rating r JOIN annotation_image i ON i.id = r.image_id
WHERE r.project_id = %s AND r.emotion IS NULL AND NOT i.flagged
ORDER BY r.rater_id, r.created_at, r.id
"""
_DRIFT_FIELDS = [("image", ">i8"), ("rater", ">i8"), ("at", ">f8"), ("seconds", ">f8")]


def _drift_rows(project: Project) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(image, rater, created_at in epoch seconds, seconds_spent or NaN) of every intensity rating
    of non-flagged images, by rater then time: plain numbers from one raw query (the ORM's aware
    datetimes cost seconds at 300,000 ratings)."""
    if connection.vendor == "postgresql":  # a binary COPY read by numpy in one pass (annotation.pgcopy)
        buf = io.BytesIO()
        with connection.cursor() as cur:
            query = cur.mogrify(_DRIFT_SQL, [project.pk]).decode()
            cur.copy_expert(f"COPY ({query}) TO STDOUT WITH (FORMAT binary)", buf)
        got = parse_fixed_rows(buf.getbuffer(), _DRIFT_FIELDS)
        return got["image"], got["rater"], got["at"], got["seconds"]
    rows = list(Rating.objects.filter(project=project, emotion__isnull=True, image__flagged=False)
                .order_by("rater_id", "created_at", "id")
                .values_list("image_id", "rater_id", "created_at", "seconds_spent"))
    return (np.array([r[0] for r in rows], dtype=np.int64), np.array([r[1] for r in rows], dtype=np.int64),
            np.array([r[2].timestamp() for r in rows], dtype=np.float64),
            np.array([np.nan if r[3] is None else r[3] for r in rows], dtype=np.float64))


def _drift(project: Project, units: np.ndarray, raters: np.ndarray, deviation: np.ndarray,
           wide: selectors.SnapshotRows | None = None) -> dict[int, Any]:
    """Per rater: speed and closeness to the others over time (per week, weeks starting on Monday,
    UTC) and early vs late within a sitting (a gap over 30 minutes starts a new one); see
    annotation.rater_quality.fatigue. `deviation` (one per row of units, raters) = the relative deviation
    (rq.relative_deviation): how much further it is from the other raters of the image than they are
    from each other, over the emotions somebody marked present. It compares raters on the same
    images, so the queue serving hard images first does not show up as drift (#17); images with fewer
    than three ratings give none."""
    if wide is not None:
        # the same ratings, read with the rows of `units`: put them in (rater, created_at, id) order
        by_time = np.lexsort((wide.rating_ids, wide.created, raters))
        rater_ids, created, spent = raters[by_time], wide.created[by_time], wide.seconds[by_time]
        dev = np.asarray(deviation, dtype=np.float64)[by_time]
    else:
        image_ids, rater_ids, created, spent = _drift_rows(project)
        # each rating's deviation, matched by (image, rater): one sorted int64 key per rating
        width = np.int64(max(int(raters.max(initial=0)), int(rater_ids.max(initial=0))) + 1)
        known = units.astype(np.int64) * width + raters.astype(np.int64)
        order = np.argsort(known, kind="stable")
        wanted = image_ids * width + rater_ids
        pos = np.minimum(np.searchsorted(known[order], wanted), max(known.size - 1, 0))
        dev = np.full(wanted.size, np.nan)
        if known.size:
            hit = known[order][pos] == wanted
            dev[hit] = deviation[order][pos[hit]]
    days = np.floor(created / 86400.0).astype(np.int64)
    monday = days - (days + 3) % 7  # 1970-01-01 was a Thursday
    out: dict[int, Any] = {}
    bounds: list[int] = (np.flatnonzero(np.r_[True, rater_ids[1:] != rater_ids[:-1], True]).tolist()
                         if rater_ids.size else [])
    for a, b in itertools.pairwise(bounds):
        f = rq.fatigue(created[a:b], spent[a:b], dev[a:b])
        wk, sec, dv = monday[a:b], spent[a:b], dev[a:b]
        weeks = np.unique(wk)[-DRIFT_WEEKS:]
        out[int(rater_ids[a])] = {
            "n_sittings": f.n_sittings, "early_seconds": _num(f.early_seconds, 1), "late_seconds": _num(f.late_seconds, 1),
            "early_deviation": _num(f.early_deviation, 4), "late_deviation": _num(f.late_deviation, 4),
            "usual_seconds": _num(f.usual_seconds, 1), "recent_seconds": _num(f.recent_seconds, 1),
            "weeks": [{"week": (date(1970, 1, 1) + timedelta(days=int(w))).isoformat(), "n": int((wk == w).sum()),
                       "median_seconds": _num(rq.median_or_none(sec[wk == w]), 1),
                       "mean_deviation": _num(rq.mean_of_finite(dv[wk == w]), 4)} for w in weeks],
        }
    return out


def _models(project: Project, rows: RatingRows, *, n_boot: int = 1000, seed: int = 0) -> list[dict[str, Any]]:
    """Per model (its latest version): agreement with the experts per emotion, entered as one more
    rater (weighted kappa, the "could be an annotator" test, Spearman rho vs the expert median)."""
    names = list(ModelScore.objects.filter(project=project).values_list("model_name", flat=True).distinct())
    if not names:
        return []  # without importing the scoring stack (`agreement --json` on a project without models)
    from annotation.scoring.selectors import latest_model, model_agreement, model_summary

    out = []
    for model_name in names:
        latest = latest_model(project, model_name)
        if latest is None:
            continue
        emotions = model_agreement(project, latest[0], latest[1], rows=rows)
        if emotions:
            summary = model_summary(project, latest[0], latest[1], rows=rows, n_boot=n_boot, seed=seed) or {}
            out.append({"model": latest[0], "model_version": latest[1],
                        "n_images": max(e["n_images"] for e in emotions), "emotions": emotions,
                        "spearman": [{"emotion": e["emotion"], "rho": e["spearman"]["rho"], "n": e["n_images"],
                                      "reason": e["spearman"]["reason"]} for e in emotions],
                        **summary})
    return out


class _BinaryBody(TypedDict):
    emotions: list[SnapshotEmotion]
    n_ratings: int
    n_images: int
    n_raters: int


def _binary_payload(project: Project, *, n_boot: int, seed: int, names: tuple[str, ...]) -> _BinaryBody:
    votes = list(Rating.objects.filter(project=project, emotion__isnull=False, image__flagged=False)
                 .values_list("image_id", "rater_id", "emotion", "values"))
    units = np.array([v[0] for v in votes], dtype=np.int64)
    raters = np.array([v[1] for v in votes], dtype=np.int64)
    emotions = np.array([v[2] for v in votes], dtype=np.int64)
    yes = np.array([v[3][0] for v in votes], dtype=np.int64)
    table = ag.binary_agreement(units, raters, emotions, yes, n_emotions=len(names), conditional_design=True)
    rows: list[SnapshotEmotion] = []
    for b in table:
        mask = emotions == b.emotion
        ci: list[float | None] | None = None
        if b.alpha.alpha is not None and n_boot:
            low_high = ag.bootstrap_ci(units[mask], yes[mask].reshape(-1, 1), level="nominal", domain=(0, 1),
                                       n_boot=n_boot, seed=seed)[0]
            ci = [_num(low_high[0]), _num(low_high[1])]
        rows.append({"emotion": names[b.emotion], "index": b.emotion, "alpha": _num(b.alpha.alpha), "ci": ci,
                     "reason": b.alpha.reason, "n_images": b.alpha.n_units, "n_ratings": int(mask.sum()),
                     "nonzero_share": _num(float(yes[mask].mean())) if mask.any() else None,
                     "vote_patterns": b.patterns, "n_images_with_2_or_more_votes": b.n_units_multi,
                     "warnings": [w for w in [b.warning] if w]})
    return {"emotions": rows, "n_ratings": len(votes), "n_images": len(set(units.tolist())),
            "n_raters": len(set(raters.tolist()))}


def agreement_compute(project: Project, *, level: str = "interval", n_boot: int = 1000, seed: int = 0,
                      progress: Callable[[int], None] | None = None) -> SnapshotPayload:
    """The full agreement report of a project as a JSON-ready dict, shaped as
    annotation.payloads.SnapshotPayload (definitions: docs/agreement.md).

    Flagged images are left out. Raises AgreementError for an unknown level or bad bootstrap count.
    """
    if level not in LEVELS:
        raise AgreementError(f"unknown level {level!r} (allowed: {', '.join(LEVELS)})")
    if not 0 <= n_boot <= 100_000:
        raise AgreementError(f"bootstrap resamples {n_boot} out of range (allowed: 0..100000)")
    names = taxonomy.EMOTIONS
    step = progress or (lambda pct: None)
    if project.is_binary:
        body = _binary_payload(project, n_boot=n_boot, seed=seed, names=names)
        step(100)
        # yes/no votes are nominal whatever was asked
        return _payload(project, level="nominal", n_boot=n_boot, seed=seed, **body)

    # PostgreSQL: the ratings with their times and image labels in one read (no second pass for drift)
    wide = selectors.snapshot_rows(project, STRATA_KEYS)
    rows = wide.rows if wide is not None else selectors.rating_rows(project)
    step(10)
    units, raters, values = rows.image_ids, rows.rater_ids, rows.values
    if len(units) == 0:
        none: list[SnapshotEmotion] = [{"emotion": n, "index": i, "alpha": None, "ci": None,
                                        "reason": ag.REASON_NO_PAIRABLE, "n_images": 0, "n_ratings": 0,
                                        "nonzero_share": None, "warnings": []} for i, n in enumerate(names)]
        step(100)
        payload = _payload(project, level=level, n_boot=n_boot, seed=seed, emotions=none, n_ratings=0, n_images=0,
                           n_raters=0)
        payload.update({"mean_alpha_ci": None, "label_reliability": None, "raters": [],
                        "kappa": {"raters": [], "pairs": [], "per_emotion_mean": {}}, "strata": {}, "models": []})
        return payload
    # One pass shares the bootstrap draws between the report and every stratum (docs/agreement.md).
    # n_boot=0 asks for no intervals: compute with one resample and leave the intervals out.
    labels: dict[str, Any] = _strata_labels(project, units) if wide is None else _row_labels(wide)
    # Both cores (#21): the raters' quality numbers in a forked worker while this process runs the
    # statistics (which fork their own worker for the leave-one-out alphas and kappas); pure work on
    # arrays already read, the same numbers as computed here (annotation.agreement.forked).
    data = (units, raters, values)
    with ag.Forked(lambda: _quality_numbers(data, project.scale_max), parallel=len(units) >= ag.PARALLEL_MIN_RATINGS,
                   name="agreement worker (rater quality)") as quality:
        stats = ag.snapshot_stats(units, raters, values, labels,
                                  level=level, domain=ag.scale_domain(project.scale_max),  # type: ignore[arg-type]
                                  n_boot=max(n_boot, 1), seed=seed)
        numbers = quality.result()
    step(80)
    payload = _payload(project, level=level, n_boot=n_boot, seed=seed,
                       emotions=_emotion_rows(stats.report, names, with_ci=n_boot > 0),
                       n_images=int(len(np.unique(units))), n_ratings=int(len(units)),
                       n_raters=int(len(np.unique(raters))))
    payload["mean_alpha_ci"] = _mean_alpha_ci(stats, n_boot > 0)
    payload["label_reliability"] = _label_reliability(stats)
    payload["raters"], payload["kappa"] = _raters(project, raters, stats.kappas, stats.raters, names)
    _rater_quality(project, payload["raters"], names, data, wide, numbers)
    payload["strata"] = _strata_rows(stats.strata, with_ci=n_boot > 0, names=names)
    payload["strata"].update(_strata_rows(_profile_strata(project, units, raters, values, level=level, n_boot=n_boot,
                                                          seed=seed), with_ci=n_boot > 0, names=names))
    step(90)
    payload["models"] = _models(project, rows, n_boot=n_boot, seed=seed)
    step(100)
    return payload


def _payload(project: Project, *, level: str, n_boot: int, seed: int, emotions: list[SnapshotEmotion],
             n_images: int, n_ratings: int, n_raters: int) -> SnapshotPayload:
    """The keys every snapshot payload has (SnapshotPayload's required ones)."""
    return {"project": project.slug, "mode": project.mode, "level": level, "n_boot": n_boot, "seed": seed,
            "confidence": 0.95, "scale": [0, project.scale_max], "taxonomy_version": project.taxonomy_version,
            "flagged_images_excluded": Image.objects.filter(project=project, flagged=True).count(),
            "definitions": "docs/agreement.md", "n_images": n_images, "n_ratings": n_ratings, "n_raters": n_raters,
            "emotions": emotions, "mean_alpha": _mean_alpha(emotions)}


def _mean_alpha(emotions: list[SnapshotEmotion]) -> float | None:
    defined = [e["alpha"] for e in emotions if e["alpha"] is not None]
    return _num(sum(defined) / len(defined)) if defined else None


def agreement_snapshot_create(project: Project, *, level: str = "interval", n_boot: int = 1000,
                              seed: int = 0) -> AgreementSnapshot:
    """Compute and store a snapshot. Idempotent: with unchanged ratings and the same parameters the
    stored snapshot is returned instead of computing again. A failure is recorded on the row."""
    with job_lock(f"agreement:{project.pk}:{level}:{n_boot}:{seed}") as mine:
        fingerprint = ratings_fingerprint(project)
        same = AgreementSnapshot.objects.filter(project=project, level=level, n_boot=n_boot, seed=seed,
                                                fingerprint=fingerprint)
        existing = same.filter(status=SnapshotStatus.DONE).first()
        if existing is not None or not mine:
            # Done already, or another worker is computing this very snapshot right now.
            return existing or same.order_by("-created_at").first() or _latest_or_busy(project)
        # We hold the lock for these parameters, so any "running" row with them belongs to a run
        # whose worker died (whatever ratings it started from): take the newest over, close the rest.
        stale = list(AgreementSnapshot.objects.filter(project=project, level=level, n_boot=n_boot, seed=seed,
                                                      status=SnapshotStatus.RUNNING).order_by("-created_at", "-id"))
        if stale:
            snapshot = stale[0]
            AgreementSnapshot.objects.filter(pk=snapshot.pk).update(fingerprint=fingerprint, progress=0)
            snapshot.fingerprint = fingerprint
            AgreementSnapshot.objects.filter(pk__in=[s.pk for s in stale[1:]]).update(
                status=SnapshotStatus.FAILED, error="interrupted (worker lost); superseded", finished_at=timezone.now())
        else:
            snapshot = AgreementSnapshot.objects.create(project=project, level=level, n_boot=n_boot, seed=seed,
                                                        fingerprint=fingerprint)
        return _compute_into(snapshot, project, level=level, n_boot=n_boot, seed=seed)


def _latest_or_busy(project: Project) -> AgreementSnapshot:
    latest = AgreementSnapshot.objects.filter(project=project).order_by("-created_at").first()
    if latest is None:
        raise AgreementError("another worker is computing this project's first snapshot")
    return latest


def _compute_into(snapshot: AgreementSnapshot, project: Project, *, level: str, n_boot: int,
                  seed: int) -> AgreementSnapshot:
    started = time.perf_counter()

    def progress(pct: int) -> None:
        AgreementSnapshot.objects.filter(pk=snapshot.pk).update(progress=pct)

    try:
        payload = agreement_compute(project, level=level, n_boot=n_boot, seed=seed, progress=progress)
    except Exception as exc:
        AgreementSnapshot.objects.filter(pk=snapshot.pk).update(status=SnapshotStatus.FAILED, error=str(exc)[:2000],
                                                                finished_at=timezone.now())
        raise
    snapshot.payload = payload
    snapshot.status = SnapshotStatus.DONE
    snapshot.progress = 100
    snapshot.finished_at = timezone.now()
    snapshot.seconds = round(time.perf_counter() - started, 3)
    snapshot.save(update_fields=["payload", "status", "progress", "finished_at", "seconds"])
    # Priorities weigh disagreement by each emotion's reliability: refresh them with the new alphas.
    from annotation.scoring.services import priority_schedule

    priority_schedule(project)
    image_tally_compact(project)  # fold the coverage tallies' deltas since the last snapshot (#21)
    webhooks_snapshot_done(project, snapshot.pk, dict(payload))
    # Rounds (#22): agreement on each open or paused round's images, with this snapshot's level,
    # resamples and seed; then the rounds' finished / behind alerts.
    from annotation.services.batches import batch_alerts_raise

    batch_agreements_compute(project, snapshot_id=snapshot.pk, level=level, n_boot=n_boot, seed=seed)
    batch_alerts_raise(project)
    return snapshot


def batch_agreements_compute(project: Project, *, snapshot_id: int, level: str, n_boot: int, seed: int) -> int:
    """Agreement for the images of each open or paused batch, with the snapshot's level, resamples
    and seed (the same intervals as the project's figures; docs/agreement.md "Rounds"); stored on
    the batch. Returns how many batches were computed. Intensity projects only."""
    from annotation.models import Batch, BatchImage, BatchState

    live = list(Batch.objects.filter(project=project, state__in=[BatchState.OPEN, BatchState.PAUSED]))
    if not live or project.is_binary:
        return 0
    rows = selectors.rating_rows(project)
    done = 0
    for batch in live:
        members = np.fromiter(BatchImage.objects.filter(batch=batch).values_list("image_id", flat=True), dtype=np.int64)
        keep = np.isin(rows.image_ids, members)
        units, raters, values = rows.image_ids[keep], rows.rater_ids[keep], rows.values[keep]
        result: dict[str, Any] = {"snapshot": snapshot_id, "level": level, "n_boot": n_boot, "seed": seed,
                                  "n_images": int(len(np.unique(units))), "n_ratings": int(len(units)),
                                  "computed_at": timezone.now().isoformat()}
        if len(units):
            stats = ag.snapshot_stats(units, raters, values, {}, level=level,  # type: ignore[arg-type]
                                      domain=ag.scale_domain(project.scale_max), n_boot=max(n_boot, 1), seed=seed)
            emotions = _emotion_rows(stats.report, taxonomy.EMOTIONS, with_ci=n_boot > 0)
            alphas = [e["alpha"] for e in emotions if e["alpha"] is not None]
            result.update(emotions=emotions, mean_alpha=round(sum(alphas) / len(alphas), 6) if alphas else None,
                          mean_alpha_ci=_mean_alpha_ci(stats, n_boot > 0))
        else:
            result.update(emotions=[], mean_alpha=None, mean_alpha_ci=None)
        Batch.objects.filter(pk=batch.pk).update(agreement=result)
        done += 1
    return done


def agreement_schedule(project: Project) -> bool:
    """Queue a snapshot after new ratings, at most once per DEBOUNCE_SECONDS per project.

    Call inside the transaction that stored the rating: the task is sent on commit. Returns
    whether a task was queued.
    """
    # Asked Redis for this project in the last few seconds: the answer would be "already queued" (the
    # window is DEBOUNCE_SECONDS); saves a Redis round trip on nearly every submit.
    memo = _debounce_memo()
    if memo.get(project.pk):
        return False
    memo.set(project.pk, True)
    if not cache.add(f"agreement-debounce:{project.pk}", 1, timeout=DEBOUNCE_SECONDS):
        return False
    # a broker outage is logged, never turned into an error for the request that stored ratings (the
    # periodic agreement_refresh_all_task catches up).
    jobs.enqueue(jobs.AGREEMENT_SNAPSHOT, project.pk, countdown=DEBOUNCE_SECONDS)
    return True


def agreement_recompute_request(project: Project, *, actor: Any) -> None:
    """A lead asked for a fresh snapshot: mark it "queued" for the jobs strip, audit the request and
    queue the snapshot when the transaction commits. With the broker down the request still
    succeeds: the failure is logged, the mark is withdrawn and the periodic refresh catches up."""
    from annotation.selectors_dashboard import RECOMPUTE_QUEUED_SECONDS, recompute_queued_key

    key = recompute_queued_key(project.pk)
    cache.set(key, 1, timeout=RECOMPUTE_QUEUED_SECONDS)
    with transaction.atomic():
        audit_record(actor=actor, action="agreement.recompute_requested", project=project, obj=project)
        jobs.enqueue(jobs.AGREEMENT_SNAPSHOT, project.pk, on_error=lambda: cache.delete(key))


def agreement_snapshot_started(project: Project) -> None:
    """A worker starts a snapshot: a lead's "queued" mark ends."""
    from annotation.selectors_dashboard import recompute_queued_key

    cache.delete(recompute_queued_key(project.pk))


def agreement_refresh_stale() -> int:
    """Queue a snapshot for every project with ratings whose ratings changed since its last snapshot
    (the periodic agreement_refresh_all_task). Returns how many were queued."""
    queued = 0
    for project in Project.objects.all():
        latest = AgreementSnapshot.objects.filter(project=project, status=SnapshotStatus.DONE).first()
        if latest is None or latest.fingerprint != ratings_fingerprint(project):
            if project.ratings.exists():
                jobs.enqueue(jobs.AGREEMENT_SNAPSHOT, project.pk)
                queued += 1
    return queued
