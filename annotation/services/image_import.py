"""Importing image files into a project: validate, dedupe by sha256, store, attach metadata."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction

from annotation.imagefiles import ImageRejected, check_image
from annotation.manifests import ImageMeta, ManifestError, read_metadata
from annotation.models import Image, Project
from annotation.scoring.services import scoring_enqueue_for_images
from annotation.services import stored_files


class DuplicateImage(ValueError):
    """The image is already in the project (same content or same name)."""


@dataclass
class ImportSummary:
    imported: list[str] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)

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


def image_import_one(*, project: Project, name: str, data: bytes, meta: ImageMeta | None) -> Image:
    """Validate and store one image. Raises ImageRejected (bad file) or DuplicateImage.

    Atomic: the row and the stored file exist together or not at all. A placeholder created by
    import_ratings with the same name gets the file and metadata.
    """
    checked = check_image(data, max_bytes=settings.EMORATE_IMAGE_MAX_BYTES,
                          max_pixels=settings.EMORATE_IMAGE_MAX_PIXELS)
    existing = Image.objects.filter(project=project, sha256=checked.sha256).exclude(file="").first()
    if existing is not None:
        raise DuplicateImage(f"same content as {existing.name}")
    with transaction.atomic():
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
        image.file.save(f"upload.{checked.extension}", ContentFile(data), save=False)
        stored = image.file.name
        try:
            # The copy raters are served (metadata stripped) is made once, here, not per request.
            stored_files.served_copy_store(stored, data)
            with transaction.atomic():
                image.save()
        except IntegrityError:
            image.file.storage.delete(stored)
            stored_files.served_copy_delete(stored)
            raise DuplicateImage(f"same content as another image in {project.slug}") from None
        except Exception:
            image.file.storage.delete(stored)
            stored_files.served_copy_delete(stored)
            raise
    return image


def images_import(*, project: Project, path: Path, metadata: Path | None = None,
                  progress: Callable[[int, int], None] | None = None) -> ImportSummary:
    """Import a folder or a manifest. One bad file never stops the good ones."""
    sources = _sources(path, metadata)
    summary = ImportSummary()
    new_ids: list[int] = []
    for i, src in enumerate(sources, start=1):
        try:
            try:
                data = src.path.read_bytes()
            except OSError as exc:
                raise ImageRejected(f"cannot read file: {exc.strerror or exc}") from None
            new_ids.append(image_import_one(project=project, name=src.name, data=data, meta=src.meta).pk)
            summary.imported.append(src.name)
        except ImageRejected as exc:
            summary.rejected.append((src.name, str(exc)))
        except DuplicateImage as exc:
            summary.duplicates.append((src.name, str(exc)))
        if progress is not None:
            progress(i, len(sources))
    # Pre-score the new images on the GPU worker (nothing happens when no model is configured).
    scoring_enqueue_for_images(project, new_ids)
    return summary
