"""Write side of scoring: score images with the configured model, accept pushed scores, recompute
queue priorities. Contracts in each docstring; the formula in annotation/scoring/priority.py.

torch is only imported when `images_score` loads a model (annotation.scoring.backends).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q

from annotation import jobs, selectors, taxonomy
from annotation.models import Image, ModelScore, Project
from annotation.payloads import snapshot_payload

from . import priority as prio
from .contracts import (
    DEFAULT_MODEL_NAME,
    MAX_NAME_LENGTH,
    MAX_VERSION_LENGTH,
    MODEL_SCALE_MAX,
    ImageSource,
    Scorer,
    ScoreValidationError,
    ScoringNotConfigured,
    score_vector_problems,
)
from .selectors import latest_model, model_dir_setting, model_score_matrix, progress_key

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 64
# Image ids sent with a scoring task; a larger import sends none and the task scores every
# image still missing a score (the same result, a smaller message).
MAX_IDS_IN_TASK = 20_000
PRIORITY_CHUNK = 5_000
STRATA_KEYS = ("ethnicity", "gender", "age")


# --------------------------------------------------------------------------------------------
# Scoring with the model
# --------------------------------------------------------------------------------------------


def scoring_enqueue_for_images(project: Project, image_ids: Sequence[int]) -> bool:
    """Queue pre-scoring of newly imported images on the "gpu" queue, once the caller's transaction
    commits (transaction.on_commit; runs at once outside a transaction). Does nothing and returns
    False when no model is configured (settings.EMORATE_SCORING_MODEL_DIR unset) or no ids given.
    Safe to call twice: the task skips images already scored by the same model version.
    """
    if not model_dir_setting() or not image_ids:
        return False
    ids = sorted({int(i) for i in image_ids})
    payload: list[int] | None = ids if len(ids) <= MAX_IDS_IN_TASK else None
    jobs.enqueue(jobs.SCORE_IMAGES, project.pk, payload)
    return True


def images_to_score(project: Project, model_name: str, model_version: str,
                    image_ids: Sequence[int] | None = None) -> list[tuple[int, str]]:
    """(id, stored file name) of the images with a file, not flagged, without a score of this model
    version; by id. One query (no model instances: ImageField would re-read dimensions per row)."""
    done = ModelScore.objects.filter(image=OuterRef("pk"), model_name=model_name, model_version=model_version)
    qs = Image.objects.filter(project=project, flagged=False).exclude(file="").exclude(Exists(done))
    if image_ids is not None:
        qs = qs.filter(pk__in=list(image_ids))
    return list(qs.order_by("id").values_list("id", "file"))


@dataclass
class ScoreRunSummary:
    model_name: str
    model_version: str
    device: str
    pending: int = 0
    stored: int = 0
    failed: dict[int, str] = field(default_factory=dict)
    seconds: float = 0.0
    decode_seconds: float = 0.0
    infer_seconds: float = 0.0

    @property
    def text(self) -> str:
        rate = self.stored / self.seconds if self.seconds else 0.0
        return (f"scored {self.stored} of {self.pending} images with {self.model_name} ({self.model_version[:12]}) "
                f"on {self.device} in {self.seconds:.1f} s ({rate:.1f} images/s), {len(self.failed)} unreadable")


def _reader(name: str) -> Callable[[], bytes]:
    storage = Image.file.field.storage

    def read() -> bytes:
        with storage.open(name, "rb") as fh:
            return bytes(fh.read())

    return read


_INSERT_SQL = (
    "INSERT INTO annotation_modelscore (project_id, image_id, model_name, model_version, scores, taxonomy_version, "
    "seconds, created_at) VALUES %s ON CONFLICT (image_id, model_name, model_version) DO NOTHING RETURNING id")
_INSERT_ROW = "(%s, %s, %s, %s, %s::real[], %s, %s, now())"


def scores_insert(project: Project, model_name: str, model_version: str, ids: Sequence[int],
                  scores: Sequence[Sequence[float]], seconds_per_image: float | None = None) -> int:
    """Insert score rows, leaving alone any (image, model, version) already stored (ON CONFLICT DO
    NOTHING on the unique constraint); returns how many rows were new. Validated vectors only."""
    rows = [(project.pk, int(i), model_name, model_version, [float(v) for v in vec], taxonomy.TAXONOMY_VERSION,
             seconds_per_image) for i, vec in zip(ids, scores, strict=True)]
    if not rows:
        return 0
    if connection.vendor == "postgresql":
        from psycopg2.extras import execute_values

        with connection.cursor() as cur:
            returned = execute_values(cur.cursor, _INSERT_SQL, rows, template=_INSERT_ROW, page_size=1000, fetch=True)
        return len(returned)
    existing = ModelScore.objects.filter(image_id__in=list(ids), model_name=model_name, model_version=model_version)
    before = existing.count()
    ModelScore.objects.bulk_create([ModelScore(project_id=r[0], image_id=r[1], model_name=r[2], model_version=r[3],
                                               scores=r[4], taxonomy_version=r[5], seconds=r[6]) for r in rows],
                                   ignore_conflicts=True)
    return existing.count() - before


def _store_batch(project: Project, scorer: Scorer, ids: list[int], scores: list[list[float]],
                 seconds_per_image: float | None) -> int:
    """Insert one batch in its own transaction; rows already present are left alone, so a retried
    batch never duplicates. An invalid vector (a model bug) raises before anything is stored."""
    for image_id, vec in zip(ids, scores, strict=True):
        problem = score_vector_problems(vec)
        if problem is not None:
            raise ValueError(f"model {scorer.name} gave an invalid score for image {image_id}: {problem}")
    with transaction.atomic():
        return scores_insert(project, scorer.name, scorer.version, ids, scores, seconds_per_image)


def images_score(project: Project, *, scorer: Scorer | None = None, model_dir: str | None = None,
                 image_ids: Sequence[int] | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
                 progress: Callable[[int, int], None] | None = None, recompute_priority: bool = True,
                 device: str | None = None) -> ScoreRunSummary:
    """Score the project's images that have no score of this model version yet.

    The model: `scorer` if given, else loaded (once per worker process) from `model_dir` or
    settings.EMORATE_SCORING_MODEL_DIR; raises ScoringNotConfigured when there is neither, and
    ModelDirError naming the file when the folder is incomplete. `image_ids` limits the run;
    `device` ("cuda", "cpu", ...) overrides the automatic choice (CUDA when available).

    Restartable: each batch commits on its own, and the pending set is recomputed on every run,
    so a run killed half-way loses at most the batch in flight and a rerun scores exactly the rest
    (never a duplicate: unique image+model+version, ON CONFLICT DO NOTHING). Unreadable images are
    reported in `failed` and stay pending. Afterwards the queue priorities are recomputed (on
    commit, on the default queue) when anything was stored.
    """
    started = time.perf_counter()
    if scorer is None:
        folder = model_dir or model_dir_setting()
        if not folder:
            raise ScoringNotConfigured("no scoring model configured: set EMORATE_SCORING_MODEL_DIR or pass --model "
                                       "(docs/scoring.md)")
        from .backends import cached_scorer
        from .modeldir import inspect_model_dir

        layout = inspect_model_dir(folder)
        pending = images_to_score(project, DEFAULT_MODEL_NAME, layout.version, image_ids)
        summary = ScoreRunSummary(DEFAULT_MODEL_NAME, layout.version, "-", pending=len(pending))
        if not pending:  # nothing to do: do not load the weights at all
            summary.seconds = time.perf_counter() - started
            return summary
        scorer = cached_scorer(folder, layout=layout, device=device)
    else:
        pending = images_to_score(project, scorer.name, scorer.version, image_ids)
    summary = ScoreRunSummary(scorer.name, scorer.version, scorer.device, pending=len(pending))
    done = 0
    sources = (ImageSource(image_id, _reader(name)) for image_id, name in pending)
    for batch in scorer.score_stream(sources, batch_size=batch_size):
        per_image = batch.infer_seconds / len(batch.image_ids) if batch.image_ids else None
        if batch.image_ids:
            summary.stored += _store_batch(project, scorer, batch.image_ids, batch.scores, per_image)
        summary.failed.update(batch.failed)
        summary.decode_seconds += batch.decode_seconds
        summary.infer_seconds += batch.infer_seconds
        done += len(batch.image_ids) + len(batch.failed)
        if progress is not None:
            progress(done, len(pending))
    for image_id, reason in summary.failed.items():
        log.warning("scoring: image %s of %s unreadable: %s", image_id, project.slug, reason)
    if summary.stored and recompute_priority:
        priority_schedule(project)
    summary.seconds = time.perf_counter() - started
    return summary


def scoring_progress_set(project: Project, done: int, total: int) -> None:
    """Publish a running scoring job's progress for the lead's jobs strip (cache only, best effort;
    it expires by itself if the worker dies)."""
    cache.set(progress_key(project), {"done": done, "total": total}, timeout=600)


def scoring_progress_clear(project: Project) -> None:
    cache.delete(progress_key(project))


def images_score_job(project: Project, *, image_ids: Sequence[int] | None = None, model_dir: str | None = None
                     ) -> dict[str, Any]:
    """The scoring job (score_images_task): `images_score` with its progress published for the lead's
    jobs strip, as a JSON-able summary; {"skipped": why} without a configured model. Idempotent."""
    try:
        summary = images_score(project, model_dir=model_dir, image_ids=image_ids,
                               progress=lambda done, total: scoring_progress_set(project, done, total))
    except ScoringNotConfigured as exc:
        return {"skipped": str(exc)}
    finally:
        scoring_progress_clear(project)
    return {"stored": summary.stored, "pending": summary.pending, "failed": len(summary.failed),
            "model": summary.model_name, "model_version": summary.model_version, "device": summary.device,
            "seconds": round(summary.seconds, 3)}


# --------------------------------------------------------------------------------------------
# Scores pushed by an external scorer
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PushSummary:
    stored: int
    already_present: int


@transaction.atomic
def model_scores_push(project: Project, model_name: str, model_version: str,
                      items: Sequence[tuple[str, Sequence[float]]]) -> PushSummary:
    """Store scores computed elsewhere: `items` = (image name or sha256, 40 floats in taxonomy order).

    All or nothing: any bad item raises ScoreValidationError listing every problem by item index
    (unknown image, duplicate image, not 40 finite numbers in SCORE_MIN..SCORE_MAX, bad model name
    or version) and nothing is stored. Idempotent: an image that already has a score of this model
    version keeps it (counted in `already_present`). Schedules a priority recompute on commit.
    """
    errors: list[str] = []
    if not isinstance(model_name, str) or not model_name.strip() or len(model_name) > MAX_NAME_LENGTH:
        errors.append(f"model_name must be 1..{MAX_NAME_LENGTH} characters")
    if not isinstance(model_version, str) or len(model_version) > MAX_VERSION_LENGTH:
        errors.append(f"model_version must be at most {MAX_VERSION_LENGTH} characters")
    keys = [str(item[0]) if isinstance(item, Sequence) and len(item) == 2 else "" for item in items]
    by_name: dict[str, int] = {}
    by_sha: dict[str, int] = {}
    for pk, name, sha in Image.objects.filter(project=project).filter(
            Q(name__in=keys) | Q(sha256__in=[k.lower() for k in keys])).values_list("pk", "name", "sha256"):
        by_name[name] = pk
        if sha:
            by_sha[sha] = pk
    seen: dict[int, int] = {}
    ids: list[int] = []
    vectors: list[Sequence[float]] = []
    for i, item in enumerate(items):
        if not isinstance(item, Sequence) or isinstance(item, str) or len(item) != 2:
            errors.append(f"item {i}: expected [image name or sha256, [40 scores]]")
            continue
        key, values = str(item[0]), item[1]
        image_id = by_name.get(key, by_sha.get(key.lower()))
        if image_id is None:
            errors.append(f"item {i}: no image {key!r} in project {project.slug}")
            continue
        if image_id in seen:
            errors.append(f"item {i}: image {key!r} appears twice (first at item {seen[image_id]})")
            continue
        seen[image_id] = i
        problem = score_vector_problems(values)
        if problem is not None:
            errors.append(f"item {i} ({key}): {problem}")
            continue
        ids.append(image_id)
        vectors.append(values)
    if errors:
        raise ScoreValidationError(errors)
    stored = scores_insert(project, model_name.strip(), model_version, ids, vectors)
    if stored:
        priority_schedule(project)
    return PushSummary(stored=stored, already_present=len(ids) - stored)


# --------------------------------------------------------------------------------------------
# Queue priority
# --------------------------------------------------------------------------------------------


def priority_schedule(project: Project) -> None:
    """Queue `priority_recompute_task` for the project when the current transaction commits."""
    jobs.enqueue(jobs.PRIORITY_RECOMPUTE, project.pk)


def _reliability(project: Project) -> np.ndarray | None:
    snapshot = selectors.agreement_latest(project)
    payload = snapshot_payload(snapshot.payload) if snapshot is not None else None
    emotions = payload.get("emotions") if payload is not None else None
    if not emotions:
        return None
    alpha = np.full(taxonomy.N_EMOTIONS, np.nan)
    for row in emotions:
        idx, value = row.get("index"), row.get("alpha")
        if isinstance(idx, int) and 0 <= idx < alpha.size and isinstance(value, int | float) and math.isfinite(value):
            alpha[idx] = float(value)
    return alpha


def _information_gain(project: Project, ids: np.ndarray) -> np.ndarray | None:
    """The measurement model's information gain per image (#18), stored with the latest snapshot."""
    from annotation.agreement.ratermodel import information_gain_for

    snapshot = selectors.agreement_latest(project)
    return information_gain_for(snapshot.payload if snapshot is not None else None, ids)


@dataclass(frozen=True)
class PriorityRecomputeSummary:
    n_images: int
    n_changed: int
    seconds: float
    model: tuple[str, str] | None
    terms: prio.PriorityTerms | None = None
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step


def _write_priorities(ids: np.ndarray, values: np.ndarray, reasons: np.ndarray) -> None:
    """UPDATE ... FROM unnest(ids, values, reasons) in chunks of PRIORITY_CHUNK rows, each its own
    short transaction: the rating queue's claim locks image rows FOR UPDATE SKIP LOCKED, so holding
    thousands of row locks for long would make claims skip (or wait for) those images."""
    order = np.argsort(ids)  # one lock order for every writer: no deadlocks
    ids, values, reasons = ids[order], values[order], reasons[order]
    sql = ("UPDATE annotation_image AS i SET priority = v.p, priority_reason = v.r "
           "FROM unnest(%s::bigint[], %s::float8[], %s::varchar[]) AS v(id, p, r) "
           "WHERE i.id = v.id AND (i.priority IS DISTINCT FROM v.p OR i.priority_reason IS DISTINCT FROM v.r)")
    for start in range(0, ids.size, PRIORITY_CHUNK):
        chunk_ids = ids[start:start + PRIORITY_CHUNK].tolist()
        chunk_vals = values[start:start + PRIORITY_CHUNK].tolist()
        chunk_why = reasons[start:start + PRIORITY_CHUNK].tolist()
        with transaction.atomic(), connection.cursor() as cur:
            if connection.vendor == "postgresql":
                cur.execute(sql, [chunk_ids, chunk_vals, chunk_why])
            else:  # the SQLite demo
                cur.executemany("UPDATE annotation_image SET priority = %s, priority_reason = %s WHERE id = %s",
                                list(zip(chunk_vals, chunk_why, chunk_ids, strict=True)))


def priority_recompute(project: Project, *, model: tuple[str, str] | None = None) -> PriorityRecomputeSummary:
    """Recompute Image.priority for every non-flagged image of the project (formula and weights:
    annotation/scoring/priority.py, Project.priority_weights; bad weights raise ValueError naming
    the key before anything is written).

    Reads: the experts' ratings (selectors.rating_rows), the latest agreement snapshot's alpha per
    emotion, the scores of `model` (name, version; default: the project's most recently stored
    model version), the demographic strata. Writes only priorities that changed, in short chunks
    (see _write_priorities). Idempotent: a rerun on unchanged data writes nothing.
    """
    started = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name: str) -> None:
        timings[name] = round(time.perf_counter() - started - sum(timings.values()), 4)

    weights = prio.resolve_weights(project.priority_weights or {})
    rows = list(Image.objects.filter(project=project, flagged=False).order_by("id")
                .values_list("id", "priority", "priority_reason", *STRATA_KEYS, "prompt"))
    if not rows:
        return PriorityRecomputeSummary(0, 0, time.perf_counter() - started, None)
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    old = np.fromiter((r[1] for r in rows), dtype=np.float64, count=len(rows))
    old_reason = np.array([r[2] for r in rows])
    prompts = np.array([r[3 + len(STRATA_KEYS)] or "" for r in rows])
    strata = {key: np.array(["" if r[3 + k] in (None, "") else str(r[3 + k]) for r in rows])
              for k, key in enumerate(STRATA_KEYS)}
    lap("images")
    ratings = selectors.rating_rows(project) if not project.is_binary else None
    lap("ratings")
    model = model or latest_model(project)
    matrix = model_score_matrix(project, *model) if model else None
    lap("model_scores")
    inputs = prio.PriorityInputs(
        image_ids=ids,
        rating_image_ids=ratings.image_ids if ratings is not None else np.zeros(0, np.int64),
        rating_values=ratings.values if ratings is not None else np.zeros((0, taxonomy.N_EMOTIONS), np.int16),
        scale_max=project.scale_max, target=project.target_ratings, n_emotions=taxonomy.N_EMOTIONS,
        reliability=_reliability(project),
        model_image_ids=matrix.image_ids if matrix is not None else None,
        model_scores=matrix.scores if matrix is not None else None,
        model_scale_max=MODEL_SCALE_MAX, strata=strata, groups=prompts,
        information_gain=_information_gain(project, ids) if weights.information_gain else None)
    terms = prio.compute_priorities(inputs, weights)
    lap("compute")
    reasons = prio.dominant_reasons(terms, weights)
    changed = (np.abs(terms.priority - old) > 1e-12) | (reasons != old_reason)
    _write_priorities(ids[changed], terms.priority[changed], reasons[changed])
    lap("write")
    log.info("priority recompute %s: %d images, %d changed, %s", project.slug, len(rows), int(changed.sum()), timings)
    return PriorityRecomputeSummary(len(rows), int(changed.sum()), time.perf_counter() - started, model, terms,
                                    timings)


def priority_summary_dict(summary: PriorityRecomputeSummary) -> dict[str, Any]:
    """JSON-ready task result."""
    return {"n_images": summary.n_images, "n_changed": summary.n_changed, "seconds": round(summary.seconds, 3),
            "model": list(summary.model) if summary.model else None, "timings": summary.timings}
