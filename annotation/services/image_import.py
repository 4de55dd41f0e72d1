"""Importing image files into a project: validate, dedupe by sha256, store, attach metadata."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import itertools
import multiprocessing
import os
import shutil
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import DatabaseError, IntegrityError, connection, connections, transaction

from annotation.imagefiles import (
    CheckedImage,
    ImageRejected,
    check_image,
    prepare_file,
    read_capped,
    read_file,
    strip_metadata,
)
from annotation.manifests import MAX_NAME, ImageMeta, ManifestError, read_metadata, text_problem
from annotation.models import Image, Project
from annotation.models.image import image_upload_to
from annotation.scoring.services import scoring_enqueue_for_images
from annotation.services import stored_files
from annotation.services.locks import _key as lock_key
from annotation.services.locks import content_lock


class DuplicateImage(ValueError):
    """The image is already in the project (same content or same name)."""


@dataclass
class ImportSummary:
    imported: list[str] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)
    image_ids: list[int] = field(default_factory=list)  # of the imported images, in source order

    @property
    def counts(self) -> str:
        return f"imported {len(self.imported)}, duplicate {len(self.duplicates)}, rejected {len(self.rejected)}"


@dataclass(frozen=True)
class Source:
    name: str  # how rating files refer to the image (path relative to the folder or manifest)
    path: Path
    meta: ImageMeta | None


def _sources(path: Path, metadata: Path | None) -> list[Source]:
    """Files to import: every file of a folder (recursively) or the rows of a manifest file."""
    meta_by_key: dict[str, ImageMeta] = {}
    if metadata is not None:
        for row in read_metadata(metadata):
            meta_by_key[row.key] = row.meta
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        out = []
        for f in files:
            name = f.relative_to(path).as_posix()
            out.append(Source(name=name, path=f, meta=meta_by_key.get(name) or meta_by_key.get(f.name)))
        return out
    if path.is_file() and path.suffix.lower() in {".csv", ".jsonl", ".ndjson"}:
        base = path.parent
        return [Source(name=row.key, path=(base / row.key), meta=meta_by_key.get(row.key, row.meta))
                for row in read_metadata(path)]
    if path.is_file():
        return [Source(name=path.name, path=path, meta=meta_by_key.get(path.name))]
    raise ManifestError(f"{path}: no such folder or manifest")


def upload_read(upload: UploadedFile[bytes]) -> tuple[bytes, str]:
    """An uploaded file's bytes and sha256, refused by its size before it is read into memory, and
    read in chunks, hashed as they come, never past the limit (security review L6)."""
    limit = settings.EMORATE_IMAGE_MAX_BYTES
    if upload.size is not None and upload.size > limit:
        raise ImageRejected(f"file is {upload.size:,} bytes; the limit is {limit:,} bytes")
    return read_capped(upload.chunks(), max_bytes=limit)


def file_read(path: Path) -> tuple[bytes, str]:
    """A local file's bytes and sha256 (import_images), with the same limit, checked first."""
    return read_file(path, max_bytes=settings.EMORATE_IMAGE_MAX_BYTES)


def image_import_one(*, project: Project, name: str, data: bytes, meta: ImageMeta | None,
                     sha256: str | None = None) -> Image:
    """Validate and store one image. Raises ImageRejected (bad file) or DuplicateImage.

    Atomic: the row and the stored files (the original and its served, stripped copy) exist
    together or not at all. A placeholder created by import_ratings with the same name gets the
    file and metadata.

    Stored names come from the content hash, and the whole import of one content into one project
    holds a transaction-scoped lock on that hash: so the two files are written with one request
    each and no existence check, and a failed import may delete them, as no other import can be
    writing or have committed the same names (a committed one makes this a duplicate).
    """
    problem = text_problem("the name", name, MAX_NAME)
    if problem:
        raise ImageRejected(problem)
    checked = check_image(data, max_bytes=settings.EMORATE_IMAGE_MAX_BYTES,
                          max_pixels=settings.EMORATE_IMAGE_MAX_PIXELS, sha256=sha256)
    # The copy raters are served (and releases ship) is made once, here, never per request.
    stripped = strip_metadata(data, orientation=checked.orientation)
    with transaction.atomic():
        content_lock(f"image:{project.pk}:{checked.sha256}")
        existing = Image.objects.filter(project=project, sha256=checked.sha256).exclude(file="").first()
        if existing is not None:
            raise DuplicateImage(f"same content as {existing.name}")
        image = Image.objects.select_for_update().filter(project=project, name=name).first()
        if image is not None and image.file:
            raise DuplicateImage(f"an image named {name} already exists")
        if image is None:
            image = Image(project=project, name=name)
        stored = _fill(image, checked, meta)
        try:
            stored_files.store_exact(stored, data)
            stored_files.served_copy_store(stored, stripped)
            image.file.name = stored  # no dimension read from storage: they are known
            image.width, image.height = checked.width, checked.height
            with transaction.atomic():
                image.save()
        except IntegrityError:  # another image of this project took the name meanwhile
            _discard(stored)
            raise DuplicateImage(f"an image named {name} already exists in {project.slug}") from None
        except Exception:
            _discard(stored)
            raise
    return image


def _fill(image: Image, checked: CheckedImage, meta: ImageMeta | None) -> str:
    """Set a new or placeholder row's content fields and metadata; returns its stored name."""
    image.sha256 = checked.sha256
    image.format = checked.format
    if meta is not None:
        for attr in ("ethnicity", "age", "gender", "prompt", "source"):
            setattr(image, attr, getattr(meta, attr))
        image.extra = {**image.extra, **meta.extra}
    return image_upload_to(image, f"upload.{checked.extension}")


def _discard(stored: str) -> None:
    stored_files.media_storage().delete(stored)
    stored_files.served_copy_delete(stored)


def images_import(*, project: Project, path: Path, metadata: Path | None = None,
                  progress: Callable[[int, int], None] | None = None, workers: int = 1) -> ImportSummary:
    """Import a folder or a manifest. One bad file never stops the good ones.

    workers <= 1: one image at a time in this process, each in its own transaction
    (image_import_one). workers > 1: that many forked processes read, hash, decode-check and strip
    the files side by side (no part of it waits on this process's GIL), and this process writes
    them in batches of BATCH images, in source order: the stored files, then the rows in one INSERT,
    one transaction per batch (docs/decisions/0013-parallel-import.md).
    Either way each file gets the same outcome (imported, duplicate or rejected, with the same reason),
    and the summary lists names in source order.
    """
    sources = _sources(path, metadata)
    outcomes: list[Outcome] = [("", "", None)] * len(sources)  # (kind, reason, image id)
    for i, src in enumerate(sources):  # a name the database cannot hold (e.g. deep folders)
        problem = text_problem("the name", src.name, MAX_NAME)
        if problem:
            outcomes[i] = ("rejected", problem, None)
    # Files already in the project are known by their hash alone: no decoding, one query per chunk
    # (re-running an import on a folder costs a read and a hash per file, and starts no process).
    for i, reason in _known_contents(project, sources, threads=min(workers, HASH_THREADS)).items():
        if not outcomes[i][0]:
            outcomes[i] = ("duplicate", reason, None)
    processes = min(workers, sum(1 for kind, _, _ in outcomes if not kind))
    pool = _process_pool(processes) if processes > 1 else None
    try:
        if pool is None:
            for i, src in enumerate(sources):
                if not outcomes[i][0]:
                    outcomes[i] = _import_file(project, src)
                if progress is not None:
                    progress(i + 1, len(sources))
        else:
            _import_in_batches(project, sources, outcomes, pool, processes, progress)
    finally:
        if pool is not None:  # the workers end (and their CPU time counts in RUSAGE_CHILDREN)
            pool.shutdown(wait=True, cancel_futures=True)
    summary = ImportSummary()
    for src, (kind, reason, image_id) in zip(sources, outcomes, strict=True):
        if kind == "imported" and image_id is not None:
            summary.imported.append(src.name)
            summary.image_ids.append(image_id)
        elif kind == "duplicate":
            summary.duplicates.append((src.name, reason))
        else:
            summary.rejected.append((src.name, reason or "not imported"))
    # Pre-score the new images on the GPU worker (nothing happens when no model is configured).
    scoring_enqueue_for_images(project, summary.image_ids)
    return summary


def default_workers() -> int:
    """import_images' processes: one per core, at least 2 (this process mostly waits meanwhile)."""
    return max(2, os.cpu_count() or 1)


Outcome = tuple[str, str, int | None]  # ("imported" | "duplicate" | "rejected", reason, image id)


def _import_file(project: Project, src: Source) -> Outcome:
    """One source imported on its own (image_import_one), as an outcome."""
    try:
        data, sha256 = file_read(src.path)
        image = image_import_one(project=project, name=src.name, data=data, meta=src.meta, sha256=sha256)
    except ImageRejected as exc:
        return ("rejected", str(exc), None)
    except DuplicateImage as exc:
        return ("duplicate", str(exc), None)
    return ("imported", "", image.pk)


KNOWN_CHUNK = 1000


def _known_contents(project: Project, sources: list[Source], threads: int = 1) -> dict[int, str]:
    """{source index: "same content as NAME"} for the files whose content the project already
    holds, hashed by `threads` threads (reading and hashing release the GIL). Unreadable or
    oversized files are left to the import itself to report. A project without files yet costs one
    query, no hashing."""
    if not Image.objects.filter(project=project).exclude(file="").exists():
        return {}
    limit = settings.EMORATE_IMAGE_MAX_BYTES
    tasks = [[(i, str(src.path), limit) for i, src in enumerate(sources[k:k + HASH_CHUNK], start=k)]
             for k in range(0, len(sources), HASH_CHUNK)]
    if threads > 1 and len(tasks) > 1:
        with ThreadPoolExecutor(threads, thread_name_prefix="import-hash") as hashers:
            hashes = [pair for chunk in hashers.map(_hash_files, tasks) for pair in chunk]
    else:
        hashes = [pair for chunk in map(_hash_files, tasks) for pair in chunk]
    known: dict[int, str] = {}
    for start in range(0, len(hashes), KNOWN_CHUNK):
        chunk = hashes[start:start + KNOWN_CHUNK]
        found = dict(Image.objects.filter(project=project, sha256__in=[sha for _, sha in chunk]).exclude(file="")
                     .values_list("sha256", "name"))
        known.update({i: f"same content as {found[sha]}" for i, sha in chunk if sha in found})
    return known


# --- the parallel import: pure file work in processes, batched writes here ------------------------

BATCH = 64  # images written per transaction (their files, then one INSERT)
AHEAD = 3  # batches being prepared by the processes while this one writes (bounds memory)
HASH_CHUNK = 64  # files hashed per task by _known_contents
HASH_THREADS = 4  # its threads at most
UPLOAD_THREADS = 8  # concurrent uploads per batch to object storage (network-bound, not the CPU)


def _hash_files(tasks: list[tuple[int, str, int]]) -> list[tuple[int, str]]:
    """(index, sha256) of the readable files within the size limit."""
    out = []
    for i, path, limit in tasks:
        try:
            if os.stat(path).st_size > limit:
                continue
            with open(path, "rb") as fh:
                out.append((i, hashlib.file_digest(fh, "sha256").hexdigest()))
        except OSError:
            continue
    return out


@dataclass(frozen=True)
class Prepared:
    """A file read, hashed, checked and stripped by a worker process: its bytes and its served
    copy's, or, on the local media folder, the staged files holding them (`staged` + ".original" and
    + ".served"), so that the bytes need not travel back to this process."""

    checked: CheckedImage
    data: bytes = b""
    stripped: bytes = b""
    staged: str = ""


PrepareTask = tuple[int, str, int, int, str, int | None]  # index, path, limits, staging folder, file mode


def _prepare(task: PrepareTask) -> tuple[int, Prepared | str]:
    """Read, hash, check and strip one file: the prepared image, or why it is rejected. Runs in a
    worker process (no database; files only written into the staging folder)."""
    i, path, max_bytes, max_pixels, staging, file_mode = task
    try:
        prep = prepare_file(Path(path), max_bytes=max_bytes, max_pixels=max_pixels)
    except ImageRejected as exc:
        return i, str(exc)
    if not staging:
        return i, Prepared(prep.checked, data=prep.data, stripped=prep.stripped)
    staged = os.path.join(staging, str(i))
    stored_files.local_write(staged + ".original", prep.data, file_mode)
    stored_files.local_write(staged + ".served", prep.stripped, file_mode)
    return i, Prepared(prep.checked, staged=staged)


def _prepare_many(tasks: list[PrepareTask]) -> list[tuple[int, Prepared | str]]:
    return [_prepare(task) for task in tasks]


def _process_pool(processes: int) -> ProcessPoolExecutor:
    """Forked worker processes for the pure file work. The database connections are closed first
    when no transaction is open (the children never use them; a fresh one opens here on the next
    query); inside a transaction they stay open, untouched by the children, which leave by os._exit
    without closing anything they inherited. A worker that dies (a crash in a decoder) fails the
    import with BrokenProcessPool instead of leaving it waiting."""
    if not any(conn.in_atomic_block for conn in connections.all(initialized_only=True)):
        connections.close_all()
    return ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("fork"))


def _import_in_batches(project: Project, sources: list[Source], outcomes: list[Outcome], pool: ProcessPoolExecutor,
                       processes: int, progress: Callable[[int, int], None] | None) -> None:
    todo = [i for i, outcome in enumerate(outcomes) if not outcome[0]]
    done = len(sources) - len(todo)
    if progress is not None and done:
        progress(done, len(sources))
    max_bytes, max_pixels = settings.EMORATE_IMAGE_MAX_BYTES, settings.EMORATE_IMAGE_MAX_PIXELS
    batches = iter([todo[k:k + BATCH] for k in range(0, len(todo), BATCH)])
    # The local folder: the workers write the files into a staging folder, moved into place from
    # here. Object storage: the bytes come back here, uploaded from several threads.
    local = stored_files.local_staging()
    staging, file_mode = (str(local[0]), local[1]) if local is not None else ("", None)
    held = _hold_staging(local[0]) if local is not None else None
    uploads = None if local is not None else ThreadPoolExecutor(UPLOAD_THREADS, thread_name_prefix="import-upload")

    def submit(batch: list[int]) -> list[Future[list[tuple[int, Prepared | str]]]]:
        tasks = [(i, str(sources[i].path), max_bytes, max_pixels, staging, file_mode) for i in batch]
        size = max(1, len(batch) // (2 * processes))  # two chunks per process and batch
        return [pool.submit(_prepare_many, tasks[k:k + size]) for k in range(0, len(tasks), size)]

    try:
        pending = deque((batch, submit(batch)) for batch in itertools.islice(batches, AHEAD))
        while pending:
            batch, chunks = pending.popleft()
            prepared = [one for chunk in chunks for one in chunk.result()]
            following = next(batches, None)
            if following is not None:
                pending.append((following, submit(following)))
            _write_batch(project, [(i, sources[i], prep) for i, prep in prepared], outcomes, uploads)
            done += len(batch)
            if progress is not None:
                progress(done, len(sources))
    finally:
        if uploads is not None:
            uploads.shutdown()
        if local is not None:
            shutil.rmtree(local[0], ignore_errors=True)  # what was not moved into place
            if held is not None:
                os.close(held)
            with contextlib.suppress(OSError):
                local[0].parent.rmdir()  # the staging root, unless another import is using it


STAGING_LOCK = ".lock"
STALE_UNLOCKED_SECONDS = 3600


def _hold_staging(folder: Path) -> int:
    """Mark a staging folder as in use for as long as this process lives: an exclusive flock on a
    file inside it, which the kernel releases when the process ends, however it ends (SIGKILL too).
    Then remove what imports killed before they could clean up left in the staging root: folders
    whose lock nobody holds (or, without a lock file, untouched for an hour: one still being set up
    by another import has none for a moment)."""
    fd = os.open(folder / STAGING_LOCK, os.O_CREAT | os.O_RDWR, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    for other in folder.parent.glob("import-*"):
        if other == folder or not other.is_dir():
            continue
        try:
            theirs = os.open(other / STAGING_LOCK, os.O_RDWR)
        except FileNotFoundError:
            with contextlib.suppress(OSError):
                if time.time() - other.stat().st_mtime > STALE_UNLOCKED_SECONDS:
                    shutil.rmtree(other, ignore_errors=True)
            continue
        except OSError:
            continue
        try:
            fcntl.flock(theirs, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # a running import holds it
        else:
            shutil.rmtree(other, ignore_errors=True)
        finally:
            os.close(theirs)
    return fd


def _write_batch(project: Project, items: list[tuple[int, Source, Prepared | str]],
                 outcomes: list[Outcome], uploads: ThreadPoolExecutor | None) -> None:
    """Store and insert one batch of prepared images in one transaction, deciding each one as
    image_import_one would one after the other in source order. If anything fails, the files
    stored for the batch are removed and its images are imported one at a time (image_import_one),
    which gives each the outcome it would have had (or raises where that would have raised)."""
    ready: list[tuple[int, Source, Prepared]] = []
    for i, src, prep in items:
        if isinstance(prep, str):
            outcomes[i] = ("rejected", prep, None)
        else:
            ready.append((i, src, prep))
    if not ready:
        return
    stored_now: list[str] = []
    decided: dict[int, tuple[str, str, Image | None]] = {}
    failed = False
    try:
        with transaction.atomic():
            shas = sorted({prep.checked.sha256 for _, _, prep in ready})
            content_locks([f"image:{project.pk}:{sha}" for sha in shas])
            by_content = dict(Image.objects.filter(project=project, sha256__in=shas).exclude(file="")
                              .values_list("sha256", "name"))
            by_name = {im.name: im for im in Image.objects.select_for_update()
                       .filter(project=project, name__in=[src.name for _, src, _ in ready])}
            new_rows: list[Image] = []
            placeholders: list[Image] = []
            writes: list[tuple[str, Prepared]] = []
            for i, src, prep in ready:
                sha = prep.checked.sha256
                if sha in by_content:
                    decided[i] = ("duplicate", f"same content as {by_content[sha]}", None)
                    continue
                image = by_name.get(src.name)
                if image is not None and image.file:
                    decided[i] = ("duplicate", f"an image named {src.name} already exists", None)
                    continue
                if image is None:
                    image = Image(project=project, name=src.name)
                    new_rows.append(image)
                else:
                    placeholders.append(image)
                stored = _fill(image, prep.checked, src.meta)
                image.file.name = stored  # no dimension read from storage: they are known
                image.width, image.height = prep.checked.width, prep.checked.height
                by_content[sha] = src.name
                by_name[src.name] = image
                writes.append((stored, prep))
                decided[i] = ("imported", "", image)
            try:
                stored_now.extend(stored for stored, _ in writes)  # before writing: removed if it fails
                _store_all(writes, uploads)
                with transaction.atomic():
                    Image.objects.bulk_create(new_rows)
                    for image in placeholders:
                        image.save()
            except Exception:
                for stored in stored_now:  # still under the content locks: nobody else wrote these names
                    _discard(stored)
                stored_now.clear()
                failed = True
    except Exception:
        # The commit itself failed: the rows are not there, so neither may their files be (unless a
        # concurrent import of the same content committed them meanwhile).
        _discard_unreferenced(stored_now)
        failed = True
    if failed:  # one at a time, from the source files, exactly as without processes
        for i, src, _ in ready:
            outcomes[i] = _import_file(project, src)
        return
    for i, (kind, reason, image) in decided.items():
        outcomes[i] = (kind, reason, image.pk if image is not None else None)


def _store_all(writes: list[tuple[str, Prepared]], uploads: ThreadPoolExecutor | None) -> None:
    """Each image's original and served copy: staged ones moved into place, others stored (to
    object storage from several threads)."""
    def store(item: tuple[str, Prepared]) -> None:
        stored, prep = item
        if prep.staged:
            stored_files.staged_store(stored, prep.staged + ".original")
            stored_files.staged_store(stored_files.served_name(stored), prep.staged + ".served")
        else:
            stored_files.store_exact(stored, prep.data)
            stored_files.served_copy_store(stored, prep.stripped)

    if uploads is None:
        for item in writes:
            store(item)
        return
    futures = [uploads.submit(store, item) for item in writes]
    wait(futures)  # all ended before a failure is raised: none still uploads while the files are deleted
    for future in futures:
        future.result()


def _discard_unreferenced(stored: list[str]) -> None:
    if not stored:
        return
    try:
        referenced = set(Image.objects.filter(file__in=stored).values_list("file", flat=True))
    except DatabaseError:  # cannot tell: left for a later import of the same content to replace
        return
    for name in stored:
        if name not in referenced:
            _discard(name)


def content_locks(names: list[str]) -> None:
    """content_lock for several names in one statement, taken in a fixed order (two batches
    sharing names cannot deadlock). Call inside transaction.atomic()."""
    if connection.vendor != "postgresql" or not names:
        return
    keys = sorted({lock_key(name) for name in names})
    with connection.cursor() as cur:
        cur.execute("SELECT count(pg_advisory_xact_lock(k)) FROM unnest(%s::bigint[]) AS k", [keys])
