"""Read side of scoring: is a model configured, a model's scores as arrays, model-vs-expert agreement.

Nothing here imports torch. Model scores are for leads and workers only: no rater page or rater
API route reads them (docs/scoring.md, "Who sees scores").
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db import connection

from annotation import pgcopy, selectors, taxonomy
from annotation.models import AllocationReason, Assignment, Image, ModelScore, Project

from . import priority as prio
from .contracts import DEFAULT_MODEL_NAME, MODEL_SCALE_MAX
from .model_agreement import model_evaluation, model_vs_humans

_FLOAT4_OID = 700


def progress_key(project: Project) -> str:
    """The cache key of a running scoring job's progress (set by services.scoring_progress_set)."""
    return f"scoring-progress:{project.pk}"


def scoring_progress(project: Project) -> dict[str, int] | None:
    """{"done", "total"} of the scoring job running for the project, or None."""
    value = cache.get(progress_key(project))
    return value if isinstance(value, dict) else None


def model_dir_setting() -> str:
    """settings.EMORATE_SCORING_MODEL_DIR ("" when unset)."""
    return str(getattr(settings, "EMORATE_SCORING_MODEL_DIR", "") or "").strip()


@dataclass(frozen=True)
class ScoringStatus:
    """What a lead page shows where model scores would appear."""

    configured: bool
    model_dir: str
    message: str
    n_images: int | None = None
    n_scored: int | None = None
    model_name: str | None = None
    model_version: str | None = None


def scoring_status(project: Project | None = None) -> ScoringStatus:
    """Whether pre-scoring is set up, with a message for the lead pages (no model is loaded; cheap).

    With `project`: also how many of its images have scores of its most recent model version.
    """
    model_dir = model_dir_setting()
    if not model_dir:
        msg = ("Model pre-scoring is off: no model is configured (EMORATE_SCORING_MODEL_DIR is unset). "
               "Images are served by expert disagreement and coverage only; see docs/scoring.md to set it up.")
        configured = False
    elif not Path(model_dir).is_dir():
        msg = (f"Model pre-scoring is off: EMORATE_SCORING_MODEL_DIR={model_dir} does not exist on this server. "
               "See docs/scoring.md.")
        configured = False
    else:
        msg = f"Model pre-scoring is on (model folder {model_dir}); new images are scored after each import."
        configured = True
    if project is None:
        return ScoringStatus(configured, model_dir, msg)
    latest = latest_model(project)
    n_images = Image.objects.filter(project=project, flagged=False).exclude(file="").count()
    if latest is None:
        return ScoringStatus(configured, model_dir, msg + " No image of this project has model scores yet.",
                             n_images=n_images, n_scored=0)
    name, version = latest
    n_scored = ModelScore.objects.filter(project=project, model_name=name, model_version=version).count()
    return ScoringStatus(configured, model_dir, msg + f" {n_scored} of {n_images} images scored by {name}"
                         + (f" ({version[:12]})." if version else "."),
                         n_images=n_images, n_scored=n_scored, model_name=name, model_version=version)


def latest_model(project: Project, model_name: str | None = None) -> tuple[str, str] | None:
    """(model_name, model_version) of the project's most recently stored score, optionally of one model."""
    qs = ModelScore.objects.filter(project=project)
    if model_name is not None:
        qs = qs.filter(model_name=model_name)
    row = qs.order_by("-created_at", "-id").values_list("model_name", "model_version").first()
    return (row[0], row[1]) if row else None


@dataclass(frozen=True)
class ScoreMatrix:
    model_name: str
    model_version: str
    image_ids: np.ndarray  # int64 (n,), ascending
    scores: np.ndarray  # float64 (n, 40)


def _parse_score_copy(buf: memoryview, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Binary COPY of (int4 image_id, real[k] scores) rows -> arrays (layout as annotation.pgcopy)."""
    if len(buf) < 21 or bytes(buf[:11]) != b"PGCOPY\n\xff\r\n\x00":
        raise ValueError("not a PostgreSQL binary COPY stream")
    start = 19 + int.from_bytes(buf[15:19], "big")
    body = buf[start:len(buf) - 2]
    dtype = np.dtype([("nfields", ">i2"), ("len_id", ">i4"), ("id", ">i4"), ("len_array", ">i4"), ("ndim", ">i4"),
                      ("hasnull", ">i4"), ("oid", ">i4"), ("dim", ">i4"), ("lbound", ">i4"),
                      ("cells", [("len", ">i4"), ("value", ">f4")], (k,))])
    if len(body) % dtype.itemsize:
        raise ValueError(f"score rows are not all {k} values long")
    rows = np.frombuffer(body, dtype=dtype)
    if len(rows) and not ((rows["oid"] == _FLOAT4_OID).all() and (rows["dim"] == k).all()
                          and (rows["hasnull"] == 0).all()):
        raise ValueError("unexpected layout of score rows")
    return rows["id"].astype(np.int64), rows["cells"]["value"].astype(np.float64).reshape(len(rows), k)


def model_score_matrix(project: Project, model_name: str, model_version: str) -> ScoreMatrix:
    """All scores of one model version in a project as arrays (binary COPY on PostgreSQL: 100,000
    images in well under a second), ordered by image id. Flagged images included."""
    k = taxonomy.N_EMOTIONS
    qs = ModelScore.objects.filter(project=project, model_name=model_name, model_version=model_version)
    if connection.vendor == "postgresql":
        sql = ("SELECT image_id::int4, scores FROM annotation_modelscore WHERE project_id = %s AND model_name = %s "
               "AND model_version = %s AND cardinality(scores) = %s ORDER BY image_id")
        buf = io.BytesIO()
        with connection.cursor() as cur:
            query = cur.mogrify(sql, [project.pk, model_name, model_version, k]).decode()
            cur.copy_expert(f"COPY ({query}) TO STDOUT WITH (FORMAT binary)", buf)
        ids, scores = _parse_score_copy(buf.getbuffer(), k)
    else:
        rows = list(qs.order_by("image_id").values_list("image_id", "scores"))
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        scores = np.array([r[1] for r in rows], dtype=np.float64).reshape(len(rows), k)
    return ScoreMatrix(model_name, model_version, ids, scores)


def model_agreement(project: Project, model_name: str = DEFAULT_MODEL_NAME, model_version: str | None = None,
                    rows: pgcopy.RatingRows | None = None) -> list[dict[str, Any]]:
    """Per emotion, how the model agrees with the experts: mean weighted kappa model-expert and
    expert-expert and Spearman rho vs the expert median (the verdict is the alt-test of
    `model_summary`; the Mann-Whitney "could be an annotator" test is no longer reported)
    (annotation.scoring.model_agreement). Uses the model's most recent version unless given.

    Computes from all ratings (a second or so for large projects): call it from a worker (the
    agreement snapshot, which passes the `rows` it already read) and let pages read the stored
    result. Empty list: no scores of that model.
    """
    if model_version is None:
        latest = latest_model(project, model_name)
        if latest is None:
            return []
        model_version = latest[1]
    matrix = model_score_matrix(project, model_name, model_version)
    if matrix.image_ids.size == 0:
        return []
    rows = rows if rows is not None else selectors.rating_rows(project)
    result = model_vs_humans(rows.image_ids, rows.rater_ids, rows.values, matrix.image_ids, matrix.scores,
                             scale_max=project.scale_max, model_scale_max=MODEL_SCALE_MAX)
    names = taxonomy.EMOTIONS
    return [{"emotion": names[a.emotion], "index": a.emotion, "model": model_name, "model_version": model_version,
             "n_images": a.n_images, "model_kappa": _round(a.model_kappa), "human_kappa": _round(a.human_kappa),
             "spearman": {"rho": _round(a.spearman_rho), "p_value": _round(a.spearman_p),
                          "reason": a.spearman_reason}}
            for a in result]


def _round(x: float | None, digits: int = 6) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), digits)


def _alt_test_entry(res: Any, names: tuple[str, ...], *, experts: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "winning_rate": _round(res.winning_rate), "advantage_probability": _round(res.advantage_probability),
        "epsilon": res.epsilon, "q": res.q, "passed": res.passed, "n_experts": res.n_experts, "reason": res.reason}
    if res.emotion is not None:
        out = {"emotion": names[res.emotion], "index": res.emotion, **out}
    if experts:
        out["experts"] = [{"rater": x.rater, "n_images": x.n_images, "rho_model": _round(x.rho_candidate),
                           "rho_expert": _round(x.rho_expert), "p_value": _round(x.p_value), "won": x.rejected}
                          for x in res.experts]
    return out


def _model_independent_images(project: Project, image_ids: np.ndarray, share: float) -> np.ndarray:
    """The scored images of the model-independent sample (annotation.scoring.priority.
    model_independent, by prompt) that no lease ever reached for the model gap
    (Assignment.allocation_reason, #17): an image the rule placed in the sample after the model had
    steered ratings to it is left out, so the evaluation rests on unsteered ratings only."""
    prompts = dict(Image.objects.filter(project=project, pk__in=image_ids.tolist()).values_list("pk", "prompt"))
    inside = prio.model_independent(image_ids, share, [prompts.get(int(i), "") or "" for i in image_ids.tolist()])
    steered = set(Assignment.objects.filter(project=project, allocation_reason=AllocationReason.MODEL_GAP)
                  .values_list("image_id", flat=True).distinct())
    if steered:
        inside &= ~np.isin(image_ids, np.fromiter(steered, dtype=np.int64, count=len(steered)))
    out: np.ndarray = image_ids[inside]
    return out


def model_summary(project: Project, model_name: str, model_version: str,
                  rows: pgcopy.RatingRows | None = None, *, n_boot: int = 1000, seed: int = 0) -> dict[str, Any] | None:
    """The model against the experts as a whole (annotation.scoring.model_agreement.model_evaluation):
    the alt-test pooled and per emotion, mean Spearman rho with its noise ceiling and the split-half
    agreement of two expert panels, the alignment difference with its interval for experts like
    these (``n_boot`` image resamples, seeded), and on how many images. None without scores of
    that version."""
    matrix = model_score_matrix(project, model_name, model_version)
    if matrix.image_ids.size == 0:
        return None
    rows = rows if rows is not None else selectors.rating_rows(project)
    share = prio.resolve_weights(project.priority_weights or {}).model_independent_share
    held_out = _model_independent_images(project, matrix.image_ids, share) if share > 0 else None
    ev = model_evaluation(rows.image_ids, rows.rater_ids, rows.values, matrix.image_ids, matrix.scores,
                          scale_max=project.scale_max, model_scale_max=MODEL_SCALE_MAX, images=held_out,
                          n_boot=n_boot, seed=seed)
    sample = ({"kind": "model-independent", "share": share,
               "note": "images whose queue priority never used the model's scores (a fixed share chosen by "
                       "prompt, or by image id where there is none, and never leased for the model gap), so "
                       "the model cannot have steered which of them the experts rated"}
              if held_out is not None else
              {"kind": "all", "share": 0.0,
               "note": "all rated images: the queue's model terms may have sent extra ratings where the model "
                       "disagreed with the experts, which can flatter the model (set "
                       "priority_weights.model_independent_share)"})
    names = taxonomy.EMOTIONS
    alt = _alt_test_entry(ev.alt_test, names, experts=True)
    alt["per_emotion"] = [_alt_test_entry(a, names, experts=False) for a in ev.alt_test_per_emotion]
    return {"alt_test": alt, "spearman_mean": _round(ev.spearman_mean),
            "spearman_ceiling": _round(ev.spearman_ceiling), "spearman_emotions": ev.spearman_emotions,
            "evaluated_images": ev.evaluated_images, "ratings_per_image": _round(ev.ratings_per_image, 3),
            "evaluation_sample": sample, "alignment": _alignment_entry(ev.alignment),
            "split_half": None if ev.split_half is None else {
                "rho": _round(ev.split_half.rho), "ratings_per_half": _round(ev.split_half.ratings_per_half, 3),
                "n_images": ev.split_half.n_images, "emotions": ev.split_half.emotions}}


def _alignment_entry(a: Any) -> dict[str, Any] | None:
    """annotation.scoring.model_agreement.AlignmentDifference as JSON (docs/agreement.md, "Models")."""
    if a is None:
        return None
    pair = [_round(a.low), _round(a.high)] if a.low is not None and a.high is not None else None
    images = [_round(a.image_low), _round(a.image_high)] if a.image_low is not None and a.image_high is not None \
        else None
    return {"estimate": _round(a.estimate), "ci_raters": pair, "ci": images, "n_pairs": a.n_pairs,
            "n_experts": a.n_experts, "n_boot": a.n_boot, "n_boot_undefined": a.n_undefined, "reason": a.reason}
