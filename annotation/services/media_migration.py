"""Copy every stored file from one storage to the other (`manage.py media_migrate --to s3|local`).

Idempotent: a file already at the destination with the same sha256 is skipped; every copy is read
back and its sha256 compared with the source's before it counts as copied. A file that cannot be
copied is reported and never stops the others. Nothing is deleted at the source.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.core.files import File
from django.core.files.storage import Storage

from annotation.services.stored_files import file_sha256, iter_stored


@dataclass
class MigrationReport:
    copied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def text(self) -> str:
        return f"copied {len(self.copied)}, skipped {len(self.skipped)} (already there), could not copy {len(self.failed)}"


def media_copy(source: Storage, target: Storage, *, progress: Callable[[int, int], None] | None = None,
               ) -> MigrationReport:
    names = list(iter_stored(storage=source))
    report = MigrationReport()
    for i, name in enumerate(names, start=1):
        try:
            sha, size = file_sha256(name, source)
            if target.exists(name) and file_sha256(name, target) == (sha, size):
                report.skipped.append(name)
            else:
                if target.exists(name):
                    target.delete(name)
                with source.open(name, "rb") as fh:
                    saved = target.save(name, File(fh))
                if saved != name:
                    raise RuntimeError(f"stored as {saved!r} instead")
                if file_sha256(name, target) != (sha, size):
                    target.delete(name)
                    raise RuntimeError("the copy's sha256 differs from the source's")
                report.copied.append(name)
        except Exception as exc:  # one bad file never stops the others
            report.failed.append((name, str(exc) or type(exc).__name__))
        if progress is not None:
            progress(i, len(names))
    return report


@dataclass
class ServedReport:
    made: list[str] = field(default_factory=list)
    present: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return (f"made {len(self.made)}, already there {self.present}, could not make {len(self.failed)}, "
                f"outdated copies deleted {len(self.pruned)}")


def served_copies_refresh(*, prune: bool = False, progress: Callable[[int, int], None] | None = None,
                          ) -> ServedReport:
    """Make the served copy (current stripping rules) of every stored image that lacks one, so no
    rater request has to; with prune, delete the copies older rules made. Idempotent."""
    from annotation.imagefiles import ImageRejected
    from annotation.models import Image
    from annotation.services import stored_files

    storage = stored_files.media_storage()
    names = list(Image.objects.exclude(file="").order_by("pk").values_list("file", flat=True))
    report = ServedReport()
    for i, name in enumerate(names, start=1):
        try:
            if storage.exists(stored_files.served_name(name)):
                report.present += 1
            else:
                stored_files.served_copy_store(name)
                report.made.append(name)
        except (OSError, ImageRejected) as exc:
            report.failed.append((name, str(exc) or type(exc).__name__))
        if progress is not None:
            progress(i, len(names))
    if prune:
        for name in stored_files.served_copies_outdated():
            storage.delete(name)
            report.pruned.append(name)
    return report
