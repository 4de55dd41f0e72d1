"""Fitting the measurement model to a project's ratings (the model lives in
annotation.agreement.ratermodel; docs/agreement.md, "Measurement model", defines every figure).

Ratings are read with the agreement snapshot's fast path (selectors.rating_rows: a binary COPY on
PostgreSQL); flagged images are left out, as for agreement.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import numpy as np
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from annotation import jobs, selectors, taxonomy
from annotation.agreement import planner
from annotation.agreement import ratermodel as rm
from annotation.agreement import ratermodel_posterior as rp
from annotation.agreement.ratermodel import information_gain_for as information_gain_for  # re-exported
from annotation.agreement.ratermodel import stored_rater_model as stored_rater_model  # re-exported
from annotation.models import AgreementSnapshot, Image, Project, Rating, SnapshotStatus
from annotation.selectors_dashboard import rater_model_running_key
from annotation.services.agreement_snapshot import ratings_fingerprint

DEFINITIONS = "docs/agreement.md#measurement-model"
TOP_GAIN = 5000
TOP_AMBIGUOUS = 200


class RaterModelError(ValueError):
    """A refused request (no ratings, bad target); the message names the problem."""


def _num(x: float | None, digits: int = 4) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return round(float(x), digits)


def _pair(lo: float, hi: float) -> list[float | None] | None:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    return [_num(lo), _num(hi)]


def _emails(ids: np.ndarray) -> dict[int, str]:
    return dict(User.objects.filter(pk__in=[int(i) for i in ids]).values_list("pk", "email"))


def fit_project(project: Project, *, config: rm.RaterModelConfig | None = None,
                rows: Any = None) -> rm.RaterModelFit:
    """The fitted intensity model of a project's current ratings (or of ``rows``, read by
    selectors.rating_rows). RaterModelError without ratings."""
    if project.is_binary:
        raise RaterModelError(f"project {project.slug!r} is in binary mode: its model is Dawid-Skene "
                              "(rater_model_compute gives it)")
    rows = selectors.rating_rows(project) if rows is None else rows
    if len(rows.image_ids) == 0:
        raise RaterModelError(f"project {project.slug!r} has no ratings to fit")
    return rm.fit_rater_model(rows.image_ids, rows.rater_ids, rows.values.astype(np.float64),
                              scale_max=project.scale_max, config=config)


def rater_model_compute(project: Project, *, config: rm.RaterModelConfig | None = None) -> dict[str, Any]:
    """The model's figures as a JSON-ready dict: ``{"mode", "converged", "iterations", "seconds",
    "images", "ratings", "warnings", "raters": [...], "emotions": [...]}``; in intensity mode each
    rater has ``emotions`` (per emotion: presence_shift in logits, intensity_shift in scale steps,
    95% intervals) and ``groups`` (per taxonomy group, with the effect in words). Raises
    RaterModelError for a project without ratings."""
    t0 = time.perf_counter()
    if project.is_binary:
        return _binary(project, t0)
    rows = selectors.rating_rows(project)
    fit = fit_project(project, config=config, rows=rows)
    return fit_payload(fit, seconds=time.perf_counter() - t0, rows=rows)


def model_parameters(fit: rm.RaterModelFit, rows: Any) -> dict[str, Any] | None:
    """The compact parameters block of a converged fit (annotation.agreement.ratermodel_posterior:
    what a release needs to compute soft labels without refitting, #18), JSON-able; None for a fit
    that did not converge. ``rows``: the ratings it was fitted to (for the presence carry)."""
    if not fit.converged:
        return None
    params = rp.ModelParameters.from_fit(fit)
    offset = rp.presence_offsets(params, rows.image_ids, rows.rater_ids, rows.values, fit.unit_ids, fit.p_present)
    return dataclasses.replace(params, presence_offset=offset).as_json()


def fit_payload(fit: rm.RaterModelFit, *, seconds: float, rows: Any = None) -> dict[str, Any]:
    """The fit's figures for the pages; with ``rows`` (the ratings fitted) also its ``parameters``
    block (model_parameters) when it converged."""
    names = taxonomy.EMOTIONS[:fit.presence_shift.shape[1]]
    groups = [(g.name, [names.index(n) for n in g.emotions if n in names]) for g in taxonomy.load().groups]
    emails = _emails(fit.rater_ids)
    raters: list[dict[str, Any]] = []
    for r, rid in enumerate(fit.rater_ids.tolist()):
        emotions = []
        for e, name in enumerate(names):
            p_ci = fit.presence_ci[r, e]
            emotions.append({
                "emotion": name,
                "presence_shift": _num(fit.presence_shift[r, e]),
                "presence_ci": _pair(float(p_ci[0]), float(p_ci[1])),
                "intensity_shift": _num(fit.intensity_shift[r, e]),
                "intensity_ci": _pair(float(fit.intensity_ci[r, e, 0]), float(fit.intensity_ci[r, e, 1])),
                "n_ratings": int(fit.n_ratings[r, e]),
                "n_present": int(fit.n_present[r, e]),
            })
        grouped = []
        for gname, idx in groups:
            g = rm.group_effects(fit, r, idx)
            grouped.append({
                "group": gname,
                "presence_shift": _num(g["presence_shift"]),
                "presence_ci": None if g["presence_ci"] is None else _pair(*g["presence_ci"]),
                "intensity_shift": _num(g["intensity_shift"]),
                "intensity_ci": None if g["intensity_ci"] is None else _pair(*g["intensity_ci"]),
                "words": g["words"],
            })
        overall = rm.group_effects(fit, r, list(range(len(names))))
        raters.append({
            "rater": emails.get(int(rid), str(rid)),
            "overall": {"presence_shift": _num(overall["presence_shift"]),
                        "presence_ci": None if overall["presence_ci"] is None else _pair(*overall["presence_ci"]),
                        "intensity_shift": _num(overall["intensity_shift"]),
                        "intensity_ci": None if overall["intensity_ci"] is None else _pair(*overall["intensity_ci"]),
                        "words": overall["words"]},
            "rater_id": int(rid),
            "n_ratings": int(fit.n_ratings[r].max()),
            "few_ratings": bool(fit.few_ratings[r]),
            "discrimination": _num(fit.discrimination[r]),
            "emotions": emotions,
            "groups": grouped,
        })
    per_emotion = []
    for e, name in enumerate(names):
        per_emotion.append({
            "emotion": name,
            "presence_rate": _num(1.0 / (1.0 + math.exp(-float(fit.presence_mean[e])))),
            "image_presence_sd": _num(fit.presence_sd[e]),
            "image_intensity_sd": _num(fit.intensity_sd[e]),
            "mean_p_present": _num(float(fit.p_present[e].mean())),
            "mean_label_sd": _num(float(fit.sd[e].mean())),
        })
    # The queue's optional information-gain term and the disputed page read these (#18): the
    # images where one more rating helps most (normalised to the largest), and the most ambiguous.
    ids = fit.unit_ids
    top_gain = np.argsort(-fit.information_gain, kind="stable")[:TOP_GAIN]
    peak = float(fit.information_gain.max()) if fit.information_gain.size else 0.0
    top_amb = np.argsort(-fit.ambiguity, kind="stable")[:TOP_AMBIGUOUS]
    worst_emotion = fit.sd.argmax(axis=0) if fit.sd.size else np.zeros(0, dtype=np.intp)
    # Names stored with the list, so the disputed page shows it without a query of its own.
    parameters = model_parameters(fit, rows) if rows is not None else None
    image_names = dict(Image.objects.filter(pk__in=[int(ids[i]) for i in top_amb.tolist()])
                       .values_list("pk", "name"))
    return {
        "information_gain": [[int(ids[i]), _num(float(fit.information_gain[i]) / peak if peak > 0 else 0.0)]
                             for i in top_gain.tolist()],
        "ambiguity": {
            "quantiles": {q: _num(float(np.quantile(fit.ambiguity, float(q)))) for q in ("0.5", "0.9", "0.99")}
            if fit.ambiguity.size else {},
            "top": [{"image": int(ids[i]), "name": image_names.get(int(ids[i]), ""),
                     "sd": _num(float(fit.ambiguity[i])), "emotion": names[int(worst_emotion[i])]}
                    for i in top_amb.tolist()],
        },
        "mode": "intensity",
        "definitions": DEFINITIONS,
        "converged": bool(fit.converged),
        "iterations": fit.iterations,
        "seconds": round(seconds, 3),
        "images": int(fit.unit_ids.size),
        "ratings": int(fit.n_ratings[:, 0].sum()) if fit.n_ratings.size else 0,
        "scale_max": fit.scale_max,
        "warnings": list(fit.warnings),
        "raters": raters,
        "emotions": per_emotion,
        **({"parameters": parameters} if parameters is not None else {}),
    }


def _binary(project: Project, t0: float) -> dict[str, Any]:
    votes = list(Rating.objects.filter(project=project, emotion__isnull=False, image__flagged=False)
                 .values_list("image_id", "rater_id", "emotion", "values"))
    if not votes:
        raise RaterModelError(f"project {project.slug!r} has no votes to fit")
    images = np.array([v[0] for v in votes], dtype=np.int64)
    raters = np.array([v[1] for v in votes], dtype=np.int64)
    emotions = np.array([v[2] for v in votes], dtype=np.int64)
    yes = np.array([v[3][0] for v in votes], dtype=np.int64)
    fit = rm.dawid_skene(images * 1000 + emotions, raters, yes, groups=emotions)
    emails = _emails(fit.rater_ids)
    return {
        "mode": "binary",
        "definitions": DEFINITIONS,
        "converged": bool(fit.converged),
        "iterations": fit.iterations,
        "seconds": round(time.perf_counter() - t0, 3),
        "images": int(np.unique(images).size),
        "ratings": len(votes),
        "warnings": [fit.note],
        "raters": [{
            "rater": emails.get(int(rid), str(rid)),
            "rater_id": int(rid),
            "n_ratings": int(fit.n_votes[r]),
            "sensitivity": _num(fit.sensitivity[r]),
            "sensitivity_ci": _pair(*map(float, fit.sensitivity_ci[r])),
            "specificity": _num(fit.specificity[r]),
            "specificity_ci": _pair(*map(float, fit.specificity_ci[r])),
            "emotions": [],
        } for r, rid in enumerate(fit.rater_ids.tolist())],
        "emotions": [],
    }


def plan_compute(project: Project, *, target_reliability: float = 0.8, images: int | None = None) -> dict[str, Any]:
    """The planner's rows from the latest agreement snapshot (mean alpha, the median interval
    width over emotions, images and ratings per image). RaterModelError when there is no snapshot
    with intervals or the request is out of range."""
    if not 0.0 < target_reliability < 1.0:
        raise RaterModelError(f"target reliability {target_reliability} is out of range (between 0 and 1)")
    if images is not None and images < 2:
        raise RaterModelError(f"images {images} is out of range (at least 2)")
    snapshot = selectors.agreement_latest(project)
    if snapshot is None:
        raise RaterModelError(f"project {project.slug!r} has no agreement snapshot yet "
                              f"(run `manage.py agreement --project {project.slug} --save`)")
    return {"snapshot_id": snapshot.pk, **plan_from_payload(snapshot.payload, target_reliability=target_reliability,
                                                            images=images)}


def plan_from_payload(payload: dict[str, Any], *, target_reliability: float = 0.8,
                      images: int | None = None) -> dict[str, Any]:
    """The planner's rows from a snapshot's payload (no query: the agreement page's panel uses it).
    RaterModelError when the payload has nothing to plan from."""
    mean_alpha = payload.get("mean_alpha")
    reliability = payload.get("label_reliability") or {}
    k0 = reliability.get("ratings_per_image")
    if mean_alpha is None or k0 is None:
        raise RaterModelError("the latest snapshot has no mean alpha or ratings per image to plan from")
    widths = [e["ci"][1] - e["ci"][0] for e in payload.get("emotions", [])
              if e.get("ci") and e["ci"][0] is not None and e["ci"][1] is not None]
    width = float(np.median(widths)) if widths else None
    try:
        rows = planner.plan(mean_alpha=float(mean_alpha), ci_width=width, images=int(payload["n_images"]),
                            ratings_per_image=float(k0), target_reliability=target_reliability,
                            plan_images=images)
    except ValueError as exc:
        raise RaterModelError(str(exc)) from None
    return {
        "mean_alpha": _num(mean_alpha),
        "images_now": int(payload["n_images"]),
        "ratings_per_image_now": _num(float(k0), 2),
        "ci_width_now": _num(width),
        "target_reliability": target_reliability,
        "ratings_needed": planner.ratings_needed(float(mean_alpha), target_reliability),
        "rows": [{"ratings_per_image": r.ratings_per_image, "images": r.images,
                  "label_reliability": _num(r.label_reliability),
                  "alpha_ci_width": _num(r.alpha_ci_width), "meets_target": r.meets_target} for r in rows],
    }


# --- after each agreement snapshot (annotation.tasks.rater_model_task) ---------------------------

RUNNING_TTL = 15 * 60


def rater_model_schedule(snapshot: AgreementSnapshot) -> None:
    """Enqueue the model fit for a finished intensity snapshot (its own job on the agreement queue)."""
    if snapshot.status != SnapshotStatus.DONE or snapshot.project.is_binary:
        return
    jobs.enqueue(jobs.RATER_MODEL, snapshot.pk)


def rater_model_attach(snapshot_id: int) -> bool:
    """Fit the model to the project's ratings and store its figures in the snapshot's payload
    (``payload["rater_model"]``), so the raters page reads them with the snapshot (no query of
    its own). Idempotent: a snapshot that already carries a fit of the same ratings is left as it
    is. A fit that did not converge is stored as such (``converged: false``); pages then show no
    figures. An error is stored as ``{"error": ...}``. Returns whether it stored something."""
    snapshot = AgreementSnapshot.objects.select_related("project").filter(pk=snapshot_id).first()
    if snapshot is None or snapshot.status != SnapshotStatus.DONE or snapshot.project.is_binary:
        return False
    project = snapshot.project
    fingerprint = ratings_fingerprint(project)
    stored = (snapshot.payload or {}).get("rater_model") or {}
    if stored.get("fingerprint") == fingerprint:
        return False
    key = rater_model_running_key(project.pk)
    cache.set(key, {"started": time.time()}, RUNNING_TTL)
    try:
        try:
            result: dict[str, Any] = rater_model_compute(project)
        except ValueError as exc:  # RaterModelError, or data the model refuses (named in the message)
            result = {"error": str(exc)}
        result["fingerprint"] = fingerprint
        if isinstance(result.get("parameters"), dict):
            result["parameters"]["fingerprint"] = fingerprint
        result["computed_at"] = timezone.now().isoformat()
        # Stored figures name raters by id only (the pages use the snapshot's labels); e-mail
        # addresses are for the lead's command, never kept in a payload the API serves.
        for r in result.get("raters", []):
            r.pop("rater", None)
        with transaction.atomic():
            row = AgreementSnapshot.objects.select_for_update().get(pk=snapshot.pk)
            payload = dict(row.payload or {})
            payload["rater_model"] = result
            AgreementSnapshot.objects.filter(pk=row.pk).update(payload=payload)
    finally:
        cache.delete(key)
    return True


def rater_model_running(project: Project) -> bool:
    return cache.get(rater_model_running_key(project.pk)) is not None
