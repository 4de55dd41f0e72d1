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
