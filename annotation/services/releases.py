"""Versioned benchmark releases: create (freeze config and inputs), build, publish, diff.

A release's configuration and inputs are frozen when it is created: later ratings (by id) and
later revisions (by time) never reach it, so building it twice gives byte-identical files. The
pure parts live in annotation.consolidation, annotation.splits and annotation.exporters.

Lifecycle: draft -> building -> built -> published; a build that fails is marked failed, and a
build whose worker dies stays "building" until the task is redelivered (acks_late) or retried:
each build starts from scratch, so nothing half-written is ever published.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import io
import json
import secrets
import shutil
import threading
from collections.abc import Callable
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.http import FileResponse, Http404
from django.utils import timezone

from accounts.models import PROFILE_FIELDS, PROFILE_MIN_GROUP, PROFILE_OTHER, RaterProfile, profile_groups
from annotation import agreement as ag
from annotation import exporters, jobs, selectors, selectors_release, taxonomy
from annotation.agreement.forked import Forked
from annotation.consolidation import (
    BinaryVotes,
    ConsolidationRule,
    SoftLabels,
    consolidate_binary,
    consolidate_intensity,
)
from annotation.exporters.helpers import whole_array
from annotation.exporters.release import write_release_columns
from annotation.models import Image, ModelScore, Project, Rating, Release, ReleaseImage, ReleaseStatus
from annotation.models.release import SEMVER, semver_key
from annotation.payloads import (
    ExcludedRater,
    ReleaseConfig,
    ReleaseInputs,
    ReleaseSummary,
    release_config,
    release_inputs,
)
from annotation.scoring import priority as prio
from annotation.services import stored_files
from annotation.services.audit import audit_record
from annotation.services.locks import job_lock
from annotation.services.raters import raters_excluded
from annotation.services.webhooks import webhooks_emit
from annotation.splits import (
    MISSING,
    TEST_SPLIT,
    UNKNOWN,
    SplitConfig,
    SplitFrame,
    assign_splits_frame,
    balance_table_frame,
    check_balance,
    frame_ages,
    frame_values,
)

Progress = Callable[[int, str], None]


class ReleaseError(ValueError):
    """A refused release operation; the message names the problem."""


def code_version() -> str:
    try:
        return f"emorate {metadata.version('emorate')}"
    except metadata.PackageNotFoundError:  # running from a plain checkout
        return "emorate (unpackaged)"


def release_dir(release: Release) -> Path:
    """The release folder on local disk: the filesystem backend only (tests, `release --out`).
    Everything else reads and writes release files through annotation.services.stored_files."""
    return Path(stored_files.media_storage().path(release.files_dir))


@transaction.atomic
def release_create(*, project: Project, version: str, created_by: Any = None, consolidation: dict[str, Any] | None = None,
                   split: dict[str, Any] | None = None, include_images: bool = False, n_boot: int = 1000,
                   description: str = "", batches: list[str] | None = None) -> Release:
    """Create a draft release with a frozen configuration and frozen inputs.

    Raises ReleaseError for a malformed or already used version, a version not above the project's
    latest one, or an invalid consolidation/split setting (the message names it).
    """
    if not SEMVER.match(version):
        raise ReleaseError(f"version {version!r} is not a semantic version like 1.2.0")
    Project.objects.select_for_update().filter(pk=project.pk).first()  # serialise version choice
    existing = list(Release.objects.filter(project=project).values_list("version", flat=True))
    if version in existing:
        raise ReleaseError(f"release {version} of {project.slug} already exists; releases are never rebuilt "
                           "under the same version once published, cut a new version")
    if existing and semver_key(version) <= max(semver_key(v) for v in existing):
        latest = max(existing, key=semver_key)
        raise ReleaseError(f"version {version} is not above the latest release {latest}")
    max_id_now = Rating.objects.filter(project=project).aggregate(m=Max("id"))["m"] or 0
    try:
        rule = ConsolidationRule(**(consolidation or {}))
        split_kwargs, test_note = _split_defaults(project, split or {}, max_id_now)
        split_config = SplitConfig(**_split_kwargs(split_kwargs))
    except (TypeError, ValueError) as exc:
        raise ReleaseError(f"invalid release setting: {exc}") from None
    if not 0 <= n_boot <= 100_000:
        raise ReleaseError(f"bootstrap resamples {n_boot} out of range (allowed: 0..100000)")
    previous = Release.objects.filter(project=project).exclude(pseudonym_key="").order_by("-created_at").first()
    pseudonym_key = previous.pseudonym_key if previous else secrets.token_hex(32)
    frozen_at = timezone.now()
    # Raters a lead excluded (annotation.services.raters): their ids are frozen into the inputs (used
    # by the build, never written out); the files name them by their release pseudonym, with the reason.
    excluded = raters_excluded(project)
    inputs: ReleaseInputs = {
        "max_rating_id": max_id_now,
        "as_of": frozen_at.isoformat(),
        "ratings": Rating.objects.filter(project=project).count(),
        "excluded_rater_ids": [x.rater_id for x in excluded],
        # Images a lead flagged (confirmed flags, #16): the set left out is frozen with the inputs,
        # so a flag decided after this moment never changes the release or a rebuild of it.
        "flagged_image_ids": sorted(Image.objects.filter(project=project, flagged=True).values_list("pk", flat=True)),
    }
    if batches:
        # A release cut from rounds (#22): their images, frozen now (an image added to a round later
        # never reaches this release); the rounds' names go into the config and the card.
        inputs["batch_image_ids"] = _batch_images(project, batches)
    max_id = inputs["max_rating_id"]
    rater_ids = set(Rating.objects.filter(project=project, pk__lte=max_id).values_list("rater_id", flat=True))
    inputs["rater_pool"] = rater_pool(sorted(rater_ids - set(inputs["excluded_rater_ids"])))
    config: ReleaseConfig = {
        "project": project.slug, "mode": project.mode, "scale_max": project.scale_max,
        "k": project.target_ratings if project.is_binary else None,
        "consolidation": rule.as_dict(), "split": split_config.as_dict(), "test_split_note": test_note,
        "agreement": {"level": "nominal" if project.is_binary else "interval", "n_boot": n_boot,
                      "seed": split_config.seed, "confidence": 0.95},
        "include_images": include_images, "taxonomy_version": project.taxonomy_version,
        "code_version": code_version(), "description": description,
        "excluded_raters": [{"rater": exporters.pseudonym(x.rater_id, bytes.fromhex(pseudonym_key)), "reason": x.reason}
                            for x in excluded],
    }
    if batches:
        config["batches"] = sorted(set(batches))
    if not project.is_binary and (rule.soft_labels or rule.method == "model"):
        frozen_model = _usable_rater_model(project)
        if frozen_model is not None:
            # #18: the soft labels come from the parameters fitted after the latest snapshot, frozen
            # here (a rebuild is byte-identical even after a newer snapshot); without them the build
            # fits the model to the release's own ratings.
            inputs["rater_model"] = frozen_model
    release = Release.objects.create(project=project, version=version, config=config, inputs=inputs,
                                     created_by=created_by, pseudonym_key=pseudonym_key)
    audit_record(actor=created_by, action="release.created", project=project, obj=release, version=version)
    return release


def _usable_rater_model(project: Project) -> dict[str, Any] | None:
    """``{"snapshot_id", "parameters"}`` of the project's latest snapshot whose measurement model
    converged and carries its parameters (annotation.services.rater_model.model_parameters) on
    this project's scale and taxonomy; None when there is none."""
    from annotation.agreement import ratermodel_posterior as rp
    from annotation.models import AgreementSnapshot, SnapshotStatus

    latest = (AgreementSnapshot.objects.filter(project=project, status=SnapshotStatus.DONE,
                                               payload__rater_model__converged=True,
                                               payload__rater_model__parameters__isnull=False)
              .order_by("-created_at", "-id").values_list("pk", "payload__rater_model__parameters").first())
    if latest is None:
        return None
    snapshot_id, parameters = latest
    try:
        params = rp.ModelParameters.from_json(parameters)
    except (TypeError, ValueError):
        return None
    if params.scale_max != project.scale_max or params.n_emotions != len(taxonomy.EMOTIONS):
        return None
    return {"snapshot_id": int(snapshot_id), "parameters": parameters}


def _batch_images(project: Project, names: list[str]) -> list[int]:
    """The images of the project's rounds of these names, each once, sorted; ReleaseError naming an
    unknown round or rounds without images."""
    from annotation.services.batches import BatchError, batch_get, batch_image_ids

    try:
        chosen = [batch_get(project, name) for name in sorted(set(names))]
    except BatchError as exc:
        raise ReleaseError(str(exc)) from None
    ids = batch_image_ids(chosen)
    if not ids:
        raise ReleaseError(f"the round(s) {', '.join(b.name for b in chosen)} have no images")
    return ids


def _concat_rows(parts: list[Any]) -> Any:
    """One RatingRows from chunks of it (in order)."""
    if len(parts) == 1:
        return parts[0]
    return dataclasses.replace(parts[0], **{f.name: np.concatenate([getattr(p, f.name) for p in parts])
                                           for f in dataclasses.fields(parts[0])})


def _compact_ratings(rows: Any, scale_max: int) -> Any:
    """RatingRows with their values as int8 when every one fits (#21: a scale of 0..scale_max, at
    most 127; half the memory of int16, 120 MB at 3,000,000 ratings x 40 emotions): every step
    after reads them as integers, the same values. Values that do not fit stay as they are (the
    consolidation then names the one off the scale)."""
    values = rows.values
    if values.dtype == np.int8 or scale_max > 127 or not values.size:
        return rows
    if int(values.min()) < 0 or int(values.max()) > 127:
        return rows
    return dataclasses.replace(rows, values=values.astype(np.int8))


def _only_images(rows: Any, keep: np.ndarray | None) -> Any:
    """`rows` (RatingRows or BinaryVotes: arrays of one length) restricted to the images in `keep`."""
    if keep is None:
        return rows
    mask = np.isin(rows.image_ids, keep)
    return dataclasses.replace(rows, **{f.name: getattr(rows, f.name)[mask] for f in dataclasses.fields(rows)})


# The test split is drawn from the model-independent sample by default only when the sample's eligible
# images (whole groups inside it) number at least this many times the test split's size, so that the
# test split can still be stratified within it.
MODEL_INDEPENDENT_MARGIN = 1.5


def _split_defaults(project: Project, split: dict[str, Any], max_rating_id: int) -> tuple[dict[str, Any], str]:
    """The release's split settings with #17's defaults filled in, and the card's sentence on how
    the test split was drawn (docs/agreement.md, "Release splits"):

    - group_key "prompt" when any rated image has a prompt (near-duplicate faces of one prompt
      never straddle train and test); give group_key None (the command: --group-key none) to turn it off;
    - presence (stratify by the emotions the label marks present) on;
    - test_from_model_independent on when the project has model scores and the model-independent
      sample (priority_weights.model_independent_share, frozen here) holds at least
      MODEL_INDEPENDENT_MARGIN x the test split's images in whole groups; given explicitly, it is
      kept (True with no sample is refused).
    """
    out = dict(split)
    rated = (Image.objects.filter(project=project, ratings__id__lte=max_rating_id, flagged=False)
             .values_list("pk", "prompt").distinct())
    rows = list(rated)
    if "group_key" not in out:
        out["group_key"] = "prompt" if any(p.strip() for _, p in rows) else None
    out.setdefault("presence", True)
    share = prio.resolve_weights(project.priority_weights or {}).model_independent_share
    fractions = dict(_split_kwargs(out).get("fractions", SplitConfig().fractions))
    test_share = float(fractions.get(TEST_SPLIT, 0.0))
    in_sample = dict(zip([pk for pk, _ in rows], prio.model_independent(
        [pk for pk, _ in rows], share, [p for _, p in rows]).tolist(), strict=True)) if rows and share > 0 else {}
    groups: dict[str, list[bool]] = {}
    for pk, prompt in rows:
        key = prompt.strip() if out.get("group_key") == "prompt" and prompt.strip() else f"#{pk}"
        groups.setdefault(key, []).append(bool(in_sample.get(pk, False)))
    eligible = sum(len(g) for g in groups.values() if all(g))
    needed = test_share * len(rows)
    has_scores = ModelScore.objects.filter(project=project).exists()
    if "test_from_model_independent" not in out:
        out["test_from_model_independent"] = bool(
            has_scores and test_share > 0 and share > 0 and needed > 0 and eligible >= MODEL_INDEPENDENT_MARGIN * needed)
    elif out["test_from_model_independent"] and share <= 0:
        raise ValueError("test_from_model_independent needs a model-independent sample "
                         "(priority_weights.model_independent_share is 0)")
    out["model_independent_share"] = share if out["test_from_model_independent"] else None
    if out["test_from_model_independent"]:
        note = (f"The test split is drawn only from the model-independent evaluation sample (a fixed "
                f"{share:.0%} of the images, chosen by a hash of the prompt, or of the image id where there is none, where the queue never used a "
                "model's scores to decide who rates what), so models can be evaluated on it without the "
                "queue having favoured them.")
    elif not has_scores:
        note = "No model scored this project's images, so no rating was allocated by a model's scores."
    elif "test_from_model_independent" in split:
        note = ("The test split was not restricted to the model-independent evaluation sample (a release "
                "option): its ratings may have been allocated partly by a model's scores; evaluate models on "
                "the model-independent sample instead.")
    else:
        note = (f"The test split is not restricted to the model-independent evaluation sample: it holds "
                f"{eligible} eligible images, fewer than {MODEL_INDEPENDENT_MARGIN:g} x the {needed:.0f} the "
                "test split needs; its ratings may have been allocated partly by a model's scores.")
    return out, note


def _split_kwargs(raw: dict[str, Any]) -> dict[str, Any]:
    out = dict(raw)
    if "fractions" in out:
        out["fractions"] = tuple((str(n), float(s)) for n, s in out["fractions"])
    if "strata" in out:
        out["strata"] = tuple(out["strata"])
    return out


def _previous_splits(release: Release) -> tuple[np.ndarray, np.ndarray]:
    """(sha256s, splits) of every image in an earlier published release (the latest wins), as arrays."""
    earlier = sorted((r for r in Release.objects.filter(project=release.project, status=ReleaseStatus.PUBLISHED)
                      if semver_key(r.version) < semver_key(release.version)), key=lambda r: semver_key(r.version))
    return selectors_release.release_splits_arrays([r.pk for r in earlier])


def _previous_published(release: Release) -> Release | None:
    earlier = [r for r in Release.objects.filter(project=release.project, status=ReleaseStatus.PUBLISHED)
               if semver_key(r.version) < semver_key(release.version)]
    return max(earlier, key=lambda r: semver_key(r.version)) if earlier else None


def _agreement_summary(units: np.ndarray, raters: np.ndarray, values: np.ndarray, *, level: str, scale_max: int,
                       n_boot: int, seed: int) -> dict[str, Any]:
    names = taxonomy.EMOTIONS
    summary: dict[str, Any] = {"level": level, "confidence": 0.95, "n_boot": n_boot, "emotions": {}}
    if len(units) == 0:
        summary["mean_alpha"] = None
        return summary
    report, mean, k = ag.agreement_report_with_mean(units, raters, values, level=level,  # type: ignore[arg-type]
                                                    domain=ag.scale_domain(scale_max), n_boot=max(n_boot, 1),
                                                    seed=seed)
    # #17: the mean's interval for experts like these, and the consolidated label's reliability
    lo, hi = mean.two_way.low, mean.two_way.high
    summary["mean_alpha_ci_raters"] = [round(lo, 6), round(hi, 6)] if n_boot and lo is not None and hi is not None \
        else None
    rel = ag.spearman_brown(mean.estimate, k) if k is not None else None
    summary["label_reliability"] = None if rel is None or k is None else {
        "ratings_per_image": round(k, 3), "reliability": round(rel, 6)}
    alphas = []
    for e in report:
        a = e.alpha.alpha
        if a is not None:
            alphas.append(a)
        summary["emotions"][names[e.emotion]] = {
            "alpha": None if a is None else round(a, 6),
            "ci_low": None if (a is None or not n_boot or e.ci_low is None) else round(e.ci_low, 6),
            "ci_high": None if (a is None or not n_boot or e.ci_high is None) else round(e.ci_high, 6),
            "n_units": e.alpha.n_units, "reason": e.alpha.reason,
        }
    summary["mean_alpha"] = round(sum(alphas) / len(alphas), 6) if alphas else None
    return summary


def _binary_votes(project: Project, max_rating_id: int, exclude_raters: list[int]) -> BinaryVotes:
    rows = list(Rating.objects.filter(project=project, emotion__isnull=False, pk__lte=max_rating_id)
                .exclude(rater_id__in=exclude_raters).order_by("image_id", "rater_id", "emotion").values_list("image_id", "rater_id", "emotion", "values"))
    return BinaryVotes(image_ids=np.array([r[0] for r in rows], dtype=np.int64),
                       rater_ids=np.array([r[1] for r in rows], dtype=np.int64),
                       emotions=np.array([r[2] for r in rows], dtype=np.int64),
                       votes=np.array([r[3][0] for r in rows], dtype=np.int64))


SOURCE_SNAPSHOT = "parameters of the measurement model fitted after snapshot {snapshot_id}"
SOURCE_RELEASE = "fitted to this release's ratings"


def release_chunk_images() -> int:
    """Images per chunk for the per-image steps of a build (setting EMORATE_RELEASE_CHUNK_IMAGES,
    default 20,000): bounds their scratch memory; the files do not depend on it (to the byte)."""
    return int(getattr(settings, "EMORATE_RELEASE_CHUNK_IMAGES", DEFAULT_CHUNK_IMAGES))


DEFAULT_CHUNK_IMAGES = 20_000
# Images per slice of the soft labels computed while the tables are written (#21): the posterior's
# scratch beside the row group being built stays small; the figures are per image, so the files do
# not depend on it. The posterior computes each distinct value pattern once (ratermodel_posterior),
# so bigger slices share more of them: 20,000 images take 3.3x less time than before the patterns,
# and 4x fewer calls than slices of 5,000.
SOFT_CHUNK_IMAGES = 20_000


def _soft_labels_frozen(rows: Any, frozen: dict[str, Any], *,
                        chunk_images: int = DEFAULT_CHUNK_IMAGES) -> tuple[SoftLabels, dict[str, Any]]:
    """Soft labels from the parameters frozen into the release's inputs (#18): each image's
    posterior under them (annotation.agreement.ratermodel_posterior), no refit, computed
    ``chunk_images`` images at a time."""
    from annotation.agreement import ratermodel_posterior as rp

    params = rp.ModelParameters.from_json(frozen["parameters"])
    ids = np.asarray(rows.image_ids, dtype=np.int64)
    if ids.size > 1 and not bool(np.all(ids[1:] >= ids[:-1])):
        raise ReleaseError("ratings must come sorted by image for the soft labels")  # rating_rows sorts them
    # Chunks of whole images (every figure is per image, to the bit: ratermodel_posterior), so the
    # posterior's scratch arrays stay bounded whatever the release's size.
    starts = np.r_[0, np.flatnonzero(np.diff(ids)) + 1] if ids.size else np.zeros(0, dtype=np.int64)
    n, E = starts.size, params.n_emotions
    out = {name: np.empty((n, E)) for name in ("p_present", "expected_intensity", "sd")}
    unit_ids = ids[starts]
    unknown: set[int] = set()
    known = set(params.rater_ids.tolist())
    step = max(int(chunk_images), 1)
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        r0, r1 = int(starts[lo]), int(starts[hi]) if hi < n else ids.size
        post = rp.posterior_soft_labels(params, ids[r0:r1], rows.rater_ids[r0:r1], rows.values[r0:r1])
        for name, arr in out.items():
            arr[lo:hi] = getattr(post, name).T
        if post.unknown_raters:
            unknown |= set(np.unique(rows.rater_ids[r0:r1]).tolist()) - known
    warnings = [f"{len(unknown)} rater(s) unknown to the measurement model's parameters are counted as the "
                "panel (effects 0)"] if unknown else []
    summary = {"converged": True, "source": SOURCE_SNAPSHOT.format(snapshot_id=frozen["snapshot_id"]),
               "snapshot_id": int(frozen["snapshot_id"]), "fingerprint": params.fingerprint,
               "warnings": warnings, "definitions": "docs/agreement.md#measurement-model"}
    return SoftLabels(image_ids=unit_ids, p_present=out["p_present"], expected_intensity=out["expected_intensity"],
                      sd=out["sd"]), summary


def _soft_rows_frozen(rows: Any, frozen: dict[str, Any], *, chunk_images: int = DEFAULT_CHUNK_IMAGES) -> tuple[Any, dict[str, Any]]:
    """``_soft_labels_frozen`` on demand (#21): an ``ratermodel_posterior.SoftRows`` whose ``of(image_ids)``
    gives the same soft labels for any images, and the same summary."""
    from annotation.agreement import ratermodel_posterior as rp

    params = rp.ModelParameters.from_json(frozen["parameters"])
    try:
        soft = rp.SoftRows(params, rows.image_ids, rows.rater_ids, rows.values, chunk_images=chunk_images)
    except ValueError as exc:
        raise ReleaseError(str(exc)) from None
    unknown = soft.unknown_raters()
    warnings = [f"{unknown} rater(s) unknown to the measurement model's parameters are counted as the "
                "panel (effects 0)"] if unknown else []
    summary = {"converged": True, "source": SOURCE_SNAPSHOT.format(snapshot_id=frozen["snapshot_id"]),
               "snapshot_id": int(frozen["snapshot_id"]), "fingerprint": params.fingerprint,
               "warnings": warnings, "definitions": "docs/agreement.md#measurement-model"}
    return soft, summary


def _soft_labels(rows: Any, scale_max: int, *, required: bool) -> tuple[SoftLabels | None, dict[str, Any]]:
    """The measurement model fitted to the release's own ratings (#18), when no snapshot's
    parameters were frozen with the release. A fit that did not converge is never released: with
    method "model" (``required``) the build fails; otherwise the release has no soft-label columns
    and release.json and the card say why."""
    from annotation.agreement import ratermodel as rm

    fit = rm.fit_rater_model(rows.image_ids, rows.rater_ids, rows.values.astype(np.float64), scale_max=scale_max)
    summary = {"converged": bool(fit.converged), "source": SOURCE_RELEASE, "iterations": fit.iterations,
               "warnings": list(fit.warnings), "definitions": "docs/agreement.md#measurement-model"}
    if not fit.converged:
        if required:
            raise ReleaseError(f"the measurement model did not converge on these ratings ({fit.iterations} sweeps), "
                               "so method 'model' cannot be used: cut a new version with another method")
        return None, summary
    return SoftLabels(image_ids=fit.unit_ids.astype(np.int64), p_present=fit.p_present.T,
                      expected_intensity=fit.expected_intensity.T, sd=fit.sd.T), summary


class _ReleaseImagesCopy:
    """Record the split of every released image: on PostgreSQL a COPY on a background thread over
    this thread's connection (#21: PostgreSQL inserts the rows, with their index entries, in its own
    process while the caller writes the release's files; psycopg2 lets go of the GIL while it sends
    and waits), streamed 100,000 rows at a time, in the caller's transaction. The caller must not
    use the database until ``join``; ``abort`` ends the copy with an error (the transaction then
    rolls back). Elsewhere (tests on another database) the rows are inserted at once."""

    STEP = 100_000

    def __init__(self, release: Release, image_ids: np.ndarray, sha256: Any, split: np.ndarray,
                 split_names: tuple[str, ...]) -> None:
        ReleaseImage.objects.filter(release=release).delete()
        self.error: BaseException | None = None
        self.stop = False
        self.thread: threading.Thread | None = None
        if connection.vendor != "postgresql":
            shas = sha256.to_pylist()
            ReleaseImage.objects.bulk_create(
                [ReleaseImage(release=release, image_id=int(i), sha256=s, split=split_names[c])
                 for i, s, c in zip(image_ids.tolist(), shas, split.tolist(), strict=True)], batch_size=5000)
            return
        self.release_id, self.image_ids, self.sha256, self.split = release.pk, image_ids, sha256, split
        self.names = pa.array(list(split_names), pa.string())
        connection.ensure_connection()
        self.raw = connection.connection  # the DB-API connection, in the transaction the caller opened
        self.thread = threading.Thread(target=self._run, name="release-images-copy", daemon=True)
        self.thread.start()

    def _chunks(self) -> Any:
        """The rows as tab-separated text, formatted by Arrow a chunk at a time."""
        n = int(self.image_ids.size)
        for lo in range(0, n, self.STEP):
            if self.stop:
                raise ReleaseError("the build failed while its images were being recorded")
            hi = min(n, lo + self.STEP)
            part = pa.table({"r": pa.array(np.full(hi - lo, self.release_id, dtype=np.int64)),
                             "i": pa.array(self.image_ids[lo:hi]), "s": self.sha256.slice(lo, hi - lo),
                             "p": self.names.take(pa.array(self.split[lo:hi].astype(np.int64)))})
            sink = io.BytesIO()
            pacsv.write_csv(part, sink, pacsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none"))
            yield sink.getvalue()

    def _run(self) -> None:
        chunks = self._chunks()

        class Reader(io.RawIOBase):
            buf = b""

            def readable(self) -> bool:
                return True

            def readinto(self, out: Any) -> int:
                while not self.buf:
                    nxt = next(chunks, None)
                    if nxt is None:
                        return 0
                    self.buf = nxt
                k = min(len(out), len(self.buf))
                out[:k] = self.buf[:k]
                self.buf = self.buf[k:]
                return k

        try:
            with self.raw.cursor() as cur:
                # the foreign keys checked as the rows go in, here, not by the commit (deferred,
                # they would cost the build seconds of waiting at the end)
                cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cur.copy_expert("COPY annotation_releaseimage (release_id, image_id, sha256, split) FROM STDIN",
                                io.BufferedReader(Reader(), 1 << 20), size=1 << 20)
                cur.execute("SET CONSTRAINTS ALL DEFERRED")
        except BaseException as exc:  # noqa: BLE001 - handed to the caller at join
            self.error = exc

    def abort(self) -> None:
        """End the copy with an error (the caller is failing) and wait for the thread."""
        self.stop = True
        if self.thread is not None:
            self.thread.join()

    def join(self) -> None:
        """Wait for the copy; its error, if any, is raised here."""
        if self.thread is not None:
            self.thread.join()
        if self.error is not None:
            raise self.error


def release_build(release: Release, *, progress: Progress | None = None) -> Release:
    """Build a draft, failed or built (unpublished) release from its frozen inputs.

    Idempotent and restartable: every build starts from scratch and writes its folder atomically;
    a published release is refused. On error the release is marked failed with the message.
    """
    report = progress or (lambda pct, stage: None)
    with job_lock(f"release-build:{release.pk}") as mine:
        if not mine:
            raise ReleaseBusy(f"release {release.version} is being built by another worker")
        return _build_locked(release, report)


class ReleaseBusy(ReleaseError):
    """Another worker is building this release right now."""


def _build_locked(release: Release, report: Progress) -> Release:
    def step(pct: int, stage: str) -> None:
        Release.objects.filter(pk=release.pk).update(progress=pct, stage=stage)
        report(pct, stage)

    with transaction.atomic():
        locked = Release.objects.select_for_update().get(pk=release.pk)
        if locked.status == ReleaseStatus.PUBLISHED:
            raise ReleaseError(f"release {locked.version} is published and can never be rebuilt")
        Release.objects.filter(pk=release.pk).update(status=ReleaseStatus.BUILDING, progress=0, error="",
                                                     stage="starting")
    try:
        _build(release, step)
    except Exception as exc:
        Release.objects.filter(pk=release.pk).update(status=ReleaseStatus.FAILED, error=str(exc)[:2000],
                                                     stage="failed")
        raise
    release.refresh_from_db()
    return release


def _build(release: Release, step: Progress) -> None:
    _allocator_for_big_arrays()
    forked: list[Forked[Any]] = []  # a child process still running when the build ends (failed) is stopped
    try:
        _build_steps(release, step, forked)
    finally:
        for child in forked:
            child.close()


def _build_steps(release: Release, step: Progress, forked: list[Any]) -> None:
    project, config = release.project, release_config(release.config)
    inputs = release_inputs(release.inputs)
    max_id = int(inputs["max_rating_id"])
    as_of = datetime.fromisoformat(inputs["as_of"])
    excluded_ids = [int(r) for r in inputs.get("excluded_rater_ids", [])]
    step(5, "reading ratings")
    # frozen at creation (releases created before #16 have no such input: the flags as they are now)
    frozen_flagged = inputs.get("flagged_image_ids")
    flagged = (set(frozen_flagged) if frozen_flagged is not None
               else set(Image.objects.filter(project=project, flagged=True).values_list("pk", flat=True)))
    rule = ConsolidationRule.from_config(config["consolidation"])
    split_config = SplitConfig(**_split_kwargs(config["split"]))
    agreement_cfg = config["agreement"]
    chosen = inputs.get("batch_image_ids")  # a release cut from rounds (#22): only their images
    keep = np.asarray(chosen, dtype=np.int64) if chosen is not None else None
    soft_rows: Any = None  # intensity: the soft labels on demand (#21)
    if project.is_binary:
        raw: Any = _only_images(_binary_votes(project, max_id, excluded_ids), keep)
        step(20, "consolidating (k of k)")
        labels: Any = consolidate_binary(raw, k=int(config["k"] or 3), flagged_image_ids=flagged)
        units, raters, values = raw.image_ids, raw.rater_ids, None
    else:
        # Only ratings revised after the release was created need their history.
        revised = Rating.objects.filter(project=project, pk__lte=max_id, updated_at__gt=as_of).exists()
        # Read chunk by chunk of images (#21: one chunk's COPY stream at a time).
        rows = _concat_rows([_compact_ratings(_only_images(part, keep), project.scale_max) for part in selectors.rating_rows_chunks(
            project, chunk_images=release_chunk_images(), max_rating_id=max_id, as_of=as_of if revised else None,
            exclude_raters=excluded_ids, flagged_image_ids=flagged)])
        raw = rows
        soft = None
        model_summary: dict[str, Any] = {}
        if (rule.soft_labels or rule.method == "model") and len(rows.image_ids):
            if inputs.get("rater_model") and rule.method != "model":
                # #21: computed slice by slice while the tables are written (the consensus does not
                # need them), never held whole; the same figures to the bit
                soft_rows, model_summary = _soft_rows_frozen(
                    rows, inputs["rater_model"], chunk_images=min(release_chunk_images(), SOFT_CHUNK_IMAGES))
            elif inputs.get("rater_model"):
                step(12, "soft labels from the measurement model's parameters")
                soft, model_summary = _soft_labels_frozen(rows, inputs["rater_model"],
                                                          chunk_images=release_chunk_images())
            else:
                step(12, "fitting the measurement model")
                soft, model_summary = _soft_labels(rows, project.scale_max, required=rule.method == "model")
        step(20, "consolidating")
        labels = consolidate_intensity(rows.image_ids, rows.values, rule=rule, scale_max=project.scale_max,
                                       flagged_image_ids=flagged, soft=soft, compact=True)
        if soft_rows is not None:  # the soft-label columns are there; their figures come per slice
            lazy = np.broadcast_to(np.zeros((1, 1)), labels.consensus.shape)
            labels = dataclasses.replace(labels, p_present=lazy, expected_intensity=lazy, soft_sd=lazy)
        units, raters, values = rows.image_ids, rows.rater_ids, rows.values

    # #21: the images' columns by one COPY into Arrow, the splits on arrays (no Python object per image)
    info = selectors_release.image_info_table(project, labels.image_ids, with_file=bool(config.get("include_images")))
    no_file = pc.equal(info.column("sha256"), "")
    n_missing = int(pc.sum(no_file).as_py() or 0)
    if n_missing:
        first_name = info.column("name").filter(no_file)[0].as_py()
        raise ReleaseError(f"{n_missing} rated image(s) have no file yet (e.g. {first_name}); "
                           "import them with import_images first")
    step(35, "assigning splits")
    frame = _split_frame(info, labels, split_config)
    split_names = split_config.split_names
    split_codes = assign_splits_frame(frame, split_config, previous=_previous_splits(release))
    balance = balance_table_frame(frame, split_codes, split_names, split_config.strata,
                                  presence=split_config.presence)
    del frame
    violations = check_balance(balance, fractions=split_config.fractions, min_stratum=split_config.min_stratum)
    missing = [v[len(MISSING):] for v in violations if v.startswith(MISSING)]
    if missing:
        raise ReleaseError(f"the splits leave out {len(missing)} stratum value(s) of {split_config.min_stratum} or more "
                           f"images: {'; '.join(missing[:5])}. Cut a new version with another seed, fractions or "
                           "min_stratum, or without grouping")

    # After the splits (#21): their scratch is freed before the child starts, so the two never
    # add up (the child, sharing the parent's pages, runs beside the writing, which outlasts it).
    step(60, "computing agreement (in a child process, beside the writing)")
    if project.is_binary:
        agreement: Any = {"level": "nominal", "confidence": 0.95, "n_boot": 0, "emotions": {},
                          "mean_alpha": None, "note": "binary releases report k-of-k labels and raw votes"}
    else:
        assert values is not None  # intensity: every rater's values
        # #17: alpha is computed after the release's selection (excluded raters, dropped disputed
        # images); the same figure on every rating of the frozen inputs goes beside it (read here:
        # the computation below touches no database).
        every = _compact_ratings(_only_images(selectors.rating_rows(
            project, max_rating_id=max_id, as_of=as_of if revised else None, flagged_image_ids=flagged), keep),
            project.scale_max) \
            if excluded_ids or labels.left_out.get("disputed") else None
        # #21: pure numpy, needed only by the card and release.json (written last): computed in a
        # forked child process while this one writes the tables, so the two
        # cores share the work
        agreement = Forked(functools.partial(
            _release_agreement, units, raters, values, labels.image_ids, every, agreement_cfg, project.scale_max,
            model_summary), parallel=getattr(settings, "EMORATE_RELEASE_FORK", True),
            name="release's agreement computation", before_fork=_free_unused_memory)
        forked.append(agreement)
        del every

    step(65, "writing files")
    # Built in a local scratch folder, then stored (S3 or the media folder) as a whole; the row
    # turning "built" below is the commit point, so an interrupted build is simply built again.
    scratch = stored_files.scratch_folder(f"emorate-release-{release.pk}-")  # linked, not copied, when local
    staging = scratch / "files"  # written once by exporters.write_release
    try:
        card = exporters.CardInfo(
            pretty_name=f"{project.name} {release.version}", version=release.version,
            released=release.created_at.date().isoformat(),
            description=_card_description(config.get("description") or project.guidelines[:500],
                                          config.get("excluded_raters", []), config.get("batches"), len(chosen or [])),
            rater_pool=inputs.get("rater_pool"),
        )
        allocation = selectors_release.allocation_reasons_array(
            project, raw.image_ids, raw.rater_ids, raw.emotions if project.is_binary else None, max_rating_id=max_id)
        # One transaction from here to "built" (#21): the ReleaseImage rows are copied in by a
        # background thread on this connection while the tables are written (PostgreSQL inserts
        # them in its own process; nothing here touches the database until the copy is joined), so
        # a failure anywhere rolls them back with everything else.
        with transaction.atomic():
            copy = _ReleaseImagesCopy(release, info.column("id").to_numpy(), info.column("sha256"), split_codes,
                                      split_names)
            try:
                write_release_columns(
                    staging, info=info, split=split_codes, split_names=split_names, labels=labels, raw=raw,
                    balance=balance, agreement=agreement.result if isinstance(agreement, Forked) else agreement,
                    card=card, config=config, pseudonym_key=bytes.fromhex(release.pseudonym_key),
                    scale_max=project.scale_max, soft=None if soft_rows is None else soft_rows.of_emotion_major,
                    allocation=allocation, between_slices=_free_unused_memory)
            except BaseException:
                copy.abort()
                raise
            copy.join()
            del allocation
            if isinstance(agreement, Forked):
                agreement = agreement.result()
            if config.get("include_images"):
                step(80, "copying images")
                shas, files = info.column("sha256").to_pylist(), info.column("file").to_pylist()
                _add_images(staging, {f"images/{sha}{Path(f).suffix}": (f, sha)
                                      for sha, f in zip(shas, files, strict=True)})
            step(88, "comparing with the previous release")
            diff = _diff_with_previous(release, staging)
            if diff is not None:
                _add_files(staging, {"diff.json": json.dumps(diff, sort_keys=True, indent=1).encode()})
                diff = _cap_details(diff)
            step(95, "recording splits")
            manifest = json.loads((staging / "manifest.json").read_text())
            manifest_sha = hashlib.sha256((staging / "manifest.json").read_bytes()).hexdigest()
            per_split = np.bincount(split_codes.astype(np.int64), minlength=len(split_names))
            split_counts = {split_names[j]: int(c) for j, c in enumerate(per_split.tolist()) if c}
            step(97, "storing files")
            stored_files.folder_store(staging, release.files_dir)
            summary: ReleaseSummary = {
                "images": int(info.num_rows), "splits": split_counts, "left_out": labels.left_out,
                "raw_ratings": int(len(units)), "n_raters": int(len(np.unique(raters))) if len(raters) else 0,
                "balance_violations": violations, "diff": diff, "excluded_raters": config.get("excluded_raters", []),
                "mean_alpha": agreement.get("mean_alpha")}
            Release.objects.filter(pk=release.pk).update(
                status=ReleaseStatus.BUILT, progress=100, stage="built", manifest=manifest, manifest_sha256=manifest_sha,
                built_at=timezone.now(), summary=summary)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if scratch.parent.name == ".staging":
            with contextlib.suppress(OSError):
                scratch.parent.rmdir()  # the media folder's staging area, unless another job is using it


def _release_agreement(units: np.ndarray, raters: np.ndarray, values: np.ndarray, released: np.ndarray,
                       every: Any, cfg: Any, scale_max: int, model_summary: dict[str, Any]) -> dict[str, Any]:
    """The release's agreement section (pure: no database): alpha and its intervals on the
    released images' ratings, alpha on every rating of the frozen inputs (``every``, or these
    ratings when none were left out) beside it, and the measurement model's summary."""
    kept = np.isin(units, released)
    sel = (units, raters, values) if kept.all() else (units[kept], raters[kept], values[kept])  # no copies
    del kept
    agreement = _agreement_summary(*sel, level=cfg["level"], scale_max=scale_max, n_boot=int(cfg["n_boot"]),
                                   seed=int(cfg["seed"]))
    del sel
    per_all = ag.alpha_all(
        every.image_ids if every is not None else units, None, every.values if every is not None else values,
        level=cfg["level"], domain=ag.scale_domain(scale_max))
    all_alphas = [a.alpha for a in per_all if a.alpha is not None]
    for e, a in enumerate(per_all):  # per emotion too, for the card's side-by-side table
        row = agreement["emotions"].get(taxonomy.EMOTIONS[e])
        if row is not None:
            row["alpha_all_ratings"] = None if a.alpha is None else round(a.alpha, 6)
    agreement["mean_alpha_all_ratings"] = round(sum(all_alphas) / len(all_alphas), 6) if all_alphas else None
    if model_summary:
        agreement["measurement_model"] = model_summary
    return agreement


def _allocator_for_big_arrays() -> None:
    """glibc (#21): blocks of 8 MiB and more always mapped on their own (given back to the system
    when freed, never left as holes in the heap that are then written again: glibc otherwise raises
    that threshold as big arrays are freed, up to 32 MiB, and the build's slices of a few MiB reuse
    the holes, pages the agreement's forked child still shares, so each is copied), and at most two
    heaps for the threads (the file writer's and the copy's). Measured at 1,000,000 images, three
    builds each, machine quiet: peak of summed PSS with the child 1,600-1,634 MiB against
    1,705-1,782 MiB without, the build 1,107-1,123 MiB against 1,157-1,180, 113.5-120.7 s against
    112.6-119.0 s (CPU 116-130 s against 118-120); at 200,000: 807 against 898-903 MiB. A threshold
    of 1 MiB saved no more and cost more time (every big array then costs fresh page faults: about
    13% at 200,000). On by default; EMORATE_RELEASE_MALLOPT = False leaves glibc as it is.
    Process-wide (a worker that builds releases keeps it); elsewhere nothing."""
    if not getattr(settings, "EMORATE_RELEASE_MALLOPT", True):
        return
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 8 << 20)  # M_MMAP_THRESHOLD
        libc.mallopt(-8, 2)  # M_ARENA_MAX


def _free_unused_memory() -> None:
    """Hand the allocators' free memory back to the system (glibc's heap: malloc_trim; Arrow's
    pool): before a fork, so the child shares no free pages the parent would copy on reuse."""
    pa.default_memory_pool().release_unused()
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _split_frame(info: Any, labels: Any, config: SplitConfig) -> SplitFrame:
    """The splitter's view of the released images as arrays (#21): demographics and prompt as codes
    (from the Arrow columns, dictionary-encoded), the emotions the consolidated label marks present
    (intensity: consensus > 0; binary: label 1), and membership of the model-independent sample at
    the share frozen in the config."""
    n = info.num_rows

    def codes(name: str) -> tuple[list[str], np.ndarray]:
        enc = pc.dictionary_encode(whole_array(info.column(name)))
        values, remap = frame_values(np.asarray(enc.dictionary.to_pylist(), dtype=object))
        return values, (remap[enc.indices.to_numpy()] if len(enc.dictionary) else np.zeros(n, dtype=np.int64))

    attrs: dict[str, tuple[Any, np.ndarray]] = {}
    for key in dict.fromkeys([*config.strata, *([config.group_key] if config.group_key else [])]):
        if key == "age":
            attrs[key] = frame_ages(whole_array(info.column("age")).fill_null(-1).to_numpy(),
                                    config.age_bucket_width)
        elif key in ("ethnicity", "gender", "prompt"):
            attrs[key] = codes(key)
        else:  # an attribute images do not have: unknown for all (SplitItem.value)
            attrs[key] = ([UNKNOWN], np.zeros(n, dtype=np.int64))
    present = None
    if config.presence:
        present = labels.consensus > 0 if hasattr(labels, "consensus") else labels.label == 1
    share = config.model_independent_share or 0.0
    sample = prio.model_independent(labels.image_ids, share, info.column("prompt").to_numpy(zero_copy_only=False)) \
        if config.test_from_model_independent and n else np.zeros(n, dtype=bool)
    return SplitFrame(sha256=_sha_array(info.column("sha256")), attrs=attrs, present=present,
                      emotions=tuple(taxonomy.EMOTIONS), model_independent=sample)


def _sha_array(col: Any) -> np.ndarray:
    """The sha256 column as a fixed-width bytes array (64 bytes an image, no Python objects)."""
    arr = whole_array(col)
    n = len(arr)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32, count=n + 1, offset=arr.offset * 4) if n \
        else np.zeros(1, dtype=np.int32)
    if n and arr.null_count == 0 and bool(np.all(np.diff(offsets) == 64)):
        data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]]
        # a read-only view of the column's own bytes (#21: no 64 MB copy at a million images; the
        # info table outlives the splits)
        return data.view("S64")
    return np.array(arr.to_pylist(), dtype=str)


def rater_pool(rater_ids: list[int]) -> dict[str, Any]:
    """The raters' consented backgrounds in aggregate, for the release card: per profile field, the
    number of raters per answer (accounts.models.profile_groups: small groups and no answer count
    as "other or not given"), largest first, "other" last. A list, not a mapping: PostgreSQL's jsonb
    does not keep key order, and a rebuilt card must be byte-identical to the first."""
    labels = {"discipline": "Discipline", "years_experience": "Years of experience",
              "native_language": "Native language", "training_country": "Country of training"}
    fields: list[list[Any]] = []
    for field in PROFILE_FIELDS:
        counts: dict[str, int] = {}
        for group in profile_groups(rater_ids, field).values():
            counts[group] = counts.get(group, 0) + 1
        rows = sorted(((v, n) for v, n in counts.items() if v != PROFILE_OTHER), key=lambda vn: (-vn[1], vn[0]))
        if PROFILE_OTHER in counts:
            rows.append((PROFILE_OTHER, counts[PROFILE_OTHER]))
        fields.append([labels[field], [[v, n] for v, n in rows]])
    described = RaterProfile.objects.filter(user_id__in=rater_ids, consented=True).count()
    return {"n_raters": len(rater_ids), "n_described": described, "min_group": PROFILE_MIN_GROUP, "fields": fields}


def _card_description(description: str, excluded: list[ExcludedRater], batches: list[str] | None = None,
                      n_batch_images: int = 0) -> str:
    """The card's free text, plus the rounds it was cut from (#22) and which raters' ratings were
    left out and why (from the frozen config)."""
    if batches:
        rounds = (f"Cut from the round{'s' if len(batches) > 1 else ''} {', '.join(batches)}: only their "
                  f"{n_batch_images:,} images (as they were when the release was created) are in it.")
        description = f"{description}\n\n{rounds}" if description else rounds
    if not excluded:
        return description
    lines = [f"- `{x['rater']}`: {x['reason']}" for x in excluded]
    note = ("Raters excluded from this release (their ratings are left out of the labels, the agreement "
            "figures and raw/ratings.parquet):\n\n" + "\n".join(lines))
    return f"{description}\n\n{note}" if description else note


def _add_files(folder: Path, files: dict[str, bytes]) -> None:
    """Add files to a staged release folder and to its manifest."""
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for rel, data in sorted(files.items()):
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        manifest["files"].append({"path": rel, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)})
    manifest["files"].sort(key=lambda f: f["path"])
    manifest_path.write_text(json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False) + "\n")


def _add_images(folder: Path, images: dict[str, tuple[str, str]]) -> None:
    """Add image files to a staged release folder: the served copy of each (metadata stripped by
    the allow-list, as raters saw it), never the uploaded original. The manifest records both
    hashes: `sha256` of the shipped file and `original_sha256`, the image's identity in the tables."""
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for rel, (stored, original_sha) in sorted(images.items()):
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        with stored_files.served_copy_open(stored) as src, target.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        data = target.read_bytes()
        manifest["files"].append({"path": rel, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
                                  "original_sha256": original_sha})
    manifest["files"].sort(key=lambda f: f["path"])
    manifest_path.write_text(json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False) + "\n")


def _parquet_subset(source: Any, select: Callable[[list[str]], list[str]] | None) -> tuple[Any, list[str]]:
    """(the table with only the columns ``select`` picks from its names, or all; every column's
    name) of one Parquet file."""
    names = pq.read_schema(source).names
    if hasattr(source, "seek"):
        source.seek(0)
    return pq.read_table(source, columns=None if select is None else select(names)), names


def _read_tables(folder: Path, select: Callable[[list[str]], list[str]] | None = None) -> tuple[Any, list[str]]:
    parts = [_parquet_subset(p, select) for p in sorted((folder / "data").glob("*.parquet"))]
    return (pa.concat_tables([t for t, _ in parts]) if parts else None), (parts[0][1] if parts else [])


def release_tables(release: Release) -> Any:
    """The released rows (data/*.parquet) of a stored release, as one pyarrow table (None if none)."""
    return _release_tables(release)[0]


def _release_tables(release: Release, select: Callable[[list[str]], list[str]] | None = None) -> tuple[Any, list[str]]:
    prefix = f"{release.files_dir}/data"
    parts = []
    for rel in stored_files.folder_files(prefix):
        if rel.endswith(".parquet"):
            with stored_files.file_open(f"{prefix}/{rel}") as fh:
                parts.append(_parquet_subset(pa.BufferReader(fh.read()), select))
    return (pa.concat_tables([t for t, _ in parts]) if parts else None), (parts[0][1] if parts else [])


def _diff_with_previous(release: Release, folder: Path) -> dict[str, Any] | None:
    """The diff with the previous published release, from only the columns it compares (#21:
    column by column, exporters.diff_tables)."""
    previous = _previous_published(release)
    if previous is None:
        return None
    old, old_names = _release_tables(previous, exporters.diff_columns)
    new, new_names = _read_tables(folder, exporters.diff_columns)
    if old is None or new is None:
        return None
    diff = exporters.diff_tables(old, new, old_names=old_names, new_names=new_names)
    diff["previous_version"] = previous.version
    return diff


def _cap_details(diff: dict[str, Any], limit: int = 200) -> dict[str, Any]:
    """Keep the summary whole but at most `limit` detail entries per list (the files hold the rest)."""
    out: dict[str, Any] = {}
    for key, value in diff.items():
        out[key] = value[:limit] if isinstance(value, list) else value
    return out


def release_publish(release: Release, *, actor: Any = None) -> Release:
    """Publish a built release after checking its files against the manifest. Irreversible."""
    with transaction.atomic():
        locked = Release.objects.select_for_update().get(pk=release.pk)
        if locked.status == ReleaseStatus.PUBLISHED:
            return locked
        if locked.status != ReleaseStatus.BUILT:
            raise ReleaseError(f"release {locked.version} is {locked.status}; only a built release can be published")
        problems = stored_files.folder_verify(locked.files_dir)
        if problems:
            raise ReleaseError("the release files do not match the manifest: " + "; ".join(problems[:5]))
        Release.objects.filter(pk=locked.pk).update(status=ReleaseStatus.PUBLISHED, published_at=timezone.now())
        audit_record(actor=actor, action="release.published", project=locked.project, obj=locked,
                     version=locked.version, manifest_sha256=locked.manifest_sha256)
        webhooks_emit(locked.project, "release.published", {
            "version": locked.version, "manifest_sha256": locked.manifest_sha256,
            "images": (locked.summary or {}).get("images"), "splits": (locked.summary or {}).get("splits")})
    release.refresh_from_db()
    return release


def release_enqueue_build(release: Release, *, publish: bool = False) -> None:
    """Queue the build on the releases queue once the surrounding transaction commits."""
    jobs.enqueue(jobs.RELEASE_BUILD, release.pk, publish=publish)


def release_advance(release: Release, *, publish: bool = False, progress: Progress | None = None,
                    rebuild: bool = False, busy_ok: bool = False) -> Release | str:
    """The release lifecycle, for the worker and the `release` command alike: build a release that
    is not built yet, then publish it if asked; returns the release as it ends up. A published
    release is left alone. `rebuild` (the worker): a built release that is not to be published now
    is built again from scratch (a redelivered task after a worker died rebuilds). With `busy_ok`,
    another run building it right now (a duplicate delivery: that run finishes the job) returns
    "busy" instead of raising ReleaseBusy.
    """
    if release.status == ReleaseStatus.PUBLISHED:
        return release
    if release.status != ReleaseStatus.BUILT or (rebuild and not publish):
        try:
            release = release_build(release, progress=progress)
        except ReleaseBusy:
            if busy_ok:
                return "busy"
            raise
    if publish:
        release = release_publish(release)
    return release


def release_file_response(release: Release, path: str) -> FileResponse:
    """A download of one file listed in the release's manifest; Http404 for anything else.

    Only manifest paths are served, so a crafted path can never reach outside the release folder.
    """
    listed = {f["path"]: f for f in (release.manifest or {}).get("files", [])}
    if path != "manifest.json" and path not in listed:
        raise Http404(f"release {release.version} has no file {path!r}")
    name = f"{release.files_dir}/{path}"
    if not stored_files.file_exists(name):
        raise Http404(f"file {path!r} of release {release.version} is missing from storage")
    return FileResponse(stored_files.file_open(name), as_attachment=True, filename=f"{release.project.slug}-{release.version}-"
                        f"{path.replace('/', '_')}")


def release_config_conflicts(release: Release, requested: dict[str, Any]) -> list[str]:
    """The requested options (command-line names; None = not given) that differ from the frozen
    configuration of an existing release, each as "--option X (1.0.0 has Y)"."""
    config = release.config
    frozen = {
        "method": config["consolidation"]["method"], "min_ratings": config["consolidation"]["min_ratings"],
        "seed": config["split"]["seed"], "group_key": config["split"].get("group_key") or "none",
        "test_from_model_independent": bool(config["split"].get("test_from_model_independent")),
        "include_images": bool(config.get("include_images")), "bootstrap": config["agreement"]["n_boot"],
        "batches": sorted(config.get("batches", [])) or None,
    }
    return [f"--{name.replace('_', '-')} {value} ({release.version} has {frozen[name]})"
            for name, value in requested.items() if value is not None and name in frozen and value != frozen[name]]
