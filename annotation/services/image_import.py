"""Importing image files into a project: validate, dedupe by sha256, store, attach metadata."""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, connection, transaction

from annotation.imagefiles import ImageRejected, check_image, read_capped, strip_metadata
from annotation.manifests import ImageMeta, ManifestError, read_metadata
from annotation.models import Image, Project
from annotation.models.image import image_upload_to
from annotation.scoring.services import scoring_enqueue_for_images
from annotation.services import stored_files
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
    limit = settings.EMORATE_IMAGE_MAX_BYTES
    try:
        size = path.stat().st_size
        if size > limit:
            raise ImageRejected(f"file is {size:,} bytes; the limit is {limit:,} bytes")
        with path.open("rb") as fh:
            return read_capped(iter(lambda: fh.read(1 << 20), b""), max_bytes=limit)
    except OSError as exc:
        raise ImageRejected(f"cannot read file: {exc.strerror or exc}") from None


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
    checked = check_image(data, max_bytes=settings.EMORATE_IMAGE_MAX_BYTES,
                          max_pixels=settings.EMORATE_IMAGE_MAX_PIXELS, sha256=sha256)
    # The copy raters are served (and releases ship) is made once, here, never per request.
    stripped = strip_metadata(data)
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
        image.sha256 = checked.sha256
        image.format = checked.format
        if meta is not None:
            for attr in ("ethnicity", "age", "gender", "prompt", "source"):
                setattr(image, attr, getattr(meta, attr))
            image.extra = {**image.extra, **meta.extra}
        stored = image_upload_to(image, f"upload.{checked.extension}")
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


def _discard(stored: str) -> None:
    stored_files.media_storage().delete(stored)
    stored_files.served_copy_delete(stored)


def images_import(*, project: Project, path: Path, metadata: Path | None = None,
                  progress: Callable[[int, int], None] | None = None, workers: int = 1) -> ImportSummary:
    """Import a folder or a manifest. One bad file never stops the good ones.

    With workers > 1, that many threads read, decode and store images side by side (each with its
    own database connection, closed when it is done): uploads to object storage wait on the network,
    not the CPU. Each image is still imported atomically; the summary lists names in source order.
    Precondition for workers > 1: the project row is committed (other connections must see it).
    """
    sources = _sources(path, metadata)
    if connection.in_atomic_block:  # other connections cannot see this transaction's rows: one at a time
        workers = 1
    outcomes: list[tuple[str, str, int | None]] = [("", "", None)] * len(sources)  # (kind, reason, image id)
    # Files already in the project are known by their hash alone: no decoding, one query per chunk
    # (re-running an import on a folder costs a read and a hash per file).
    for i, reason in _known_contents(project, sources).items():
        outcomes[i] = ("duplicate", reason, None)

    def one(i: int) -> None:
        src = sources[i]
        if outcomes[i][0] == "duplicate":
            return
        try:
            data, sha256 = file_read(src.path)
            outcomes[i] = ("imported", "", image_import_one(project=project, name=src.name, data=data,
                                                              meta=src.meta, sha256=sha256).pk)
        except ImageRejected as exc:
            outcomes[i] = ("rejected", str(exc), None)
        except DuplicateImage as exc:
            outcomes[i] = ("duplicate", str(exc), None)

    if workers <= 1 or len(sources) < 2:
        for i in range(len(sources)):
            one(i)
            if progress is not None:
                progress(i + 1, len(sources))
    else:
        _in_threads(one, len(sources), min(workers, len(sources)), progress)
    summary = ImportSummary()
    new_ids: list[int] = []
    for src, (kind, reason, image_id) in zip(sources, outcomes, strict=True):
        if kind == "imported" and image_id is not None:
            summary.imported.append(src.name)
            new_ids.append(image_id)
            summary.image_ids.append(image_id)
        elif kind == "duplicate":
            summary.duplicates.append((src.name, reason))
        else:
            summary.rejected.append((src.name, reason or "not imported"))
    # Pre-score the new images on the GPU worker (nothing happens when no model is configured).
    scoring_enqueue_for_images(project, new_ids)
    return summary


KNOWN_CHUNK = 1000


def _known_contents(project: Project, sources: list[Source]) -> dict[int, str]:
    """{source index: "same content as NAME"} for the files whose content the project already
    holds. Unreadable or oversized files are left to the import itself to report."""
    hashes: list[tuple[int, str]] = []
    limit = settings.EMORATE_IMAGE_MAX_BYTES
    for i, src in enumerate(sources):
        try:
            if src.path.stat().st_size > limit:
                continue
            with src.path.open("rb") as fh:
                digest = hashlib.file_digest(fh, "sha256")
        except OSError:
            continue
        hashes.append((i, digest.hexdigest()))
    known: dict[int, str] = {}
    for start in range(0, len(hashes), KNOWN_CHUNK):
        chunk = hashes[start:start + KNOWN_CHUNK]
        found = dict(Image.objects.filter(project=project, sha256__in=[sha for _, sha in chunk]).exclude(file="")
                     .values_list("sha256", "name"))
        known.update({i: f"same content as {found[sha]}" for i, sha in chunk if sha in found})
    return known


def _in_threads(work: Callable[[int], None], n: int, workers: int,
                progress: Callable[[int, int], None] | None) -> None:
    """Run work(0..n-1) on `workers` threads; progress is reported from the calling thread."""
    todo: queue.Queue[int] = queue.Queue()
    for i in range(n):
        todo.put(i)
    done: queue.Queue[BaseException | None] = queue.Queue()

    def run() -> None:
        try:
            while True:
                try:
                    i = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    work(i)
                    done.put(None)
                except BaseException as exc:  # reported to the caller below, never lost in a thread
                    done.put(exc)
        finally:
            connection.close()  # this thread's own database connection

    threads = [threading.Thread(target=run, name=f"import-{k}", daemon=True) for k in range(workers)]
    for t in threads:
        t.start()
    failure: BaseException | None = None
    for finished in range(1, n + 1):
        exc = done.get()
        failure = failure or exc
        if progress is not None:
            progress(finished, n)
    for t in threads:
        t.join()
    if failure is not None:
        raise failure
