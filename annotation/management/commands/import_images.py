from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation.management.progress import ProgressBar
from annotation.manifests import ManifestError
from annotation.services import batches
from annotation.services.image_import import default_workers, images_import

from ._base import get_project


class Command(BaseCommand):
    help = "Import images from a folder or a manifest (.csv/.jsonl) into a project."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("path", type=Path)
        parser.add_argument("--project", required=True)
        parser.add_argument("--metadata", type=Path, default=None, help="Metadata per image (.csv or .jsonl)")
        parser.add_argument("--progress", action="store_true", help="Show a progress bar even when not on a terminal")
        parser.add_argument("--batch", default=None, metavar="NAME",
                            help="add the imported images to this round (batch), made as a draft if the project "
                                 "has none of that name")
        parser.add_argument("--workers", type=int, default=default_workers(),
                            help="processes that read, hash, check and strip images side by side, while this one "
                                 "stores them and writes their rows in batches (default: the number of cores, at "
                                 "least 2; 1 = one image at a time, each in its own transaction)")

    def handle(self, *args, **opts):  # type: ignore[no-untyped-def]
        project = get_project(opts["project"])
        batch, made = None, False
        if opts["batch"] is not None:
            try:  # before importing: a refused name stores nothing
                batch, made = batches.batch_for_import(project=project, name=opts["batch"])
            except batches.BatchError as exc:
                raise CommandError(str(exc)) from None
        bar = ProgressBar("importing", enabled=True if opts["progress"] else None)
        try:
            summary = images_import(project=project, path=opts["path"], metadata=opts["metadata"], progress=bar,
                                    workers=max(1, opts["workers"]))
        except ManifestError as exc:
            raise CommandError(str(exc)) from None
        for name, reason in summary.rejected:
            self.stderr.write(f"rejected {name}: {reason}")
        for name, reason in summary.duplicates:
            self.stdout.write(f"duplicate {name}: {reason}")
        self.stdout.write(summary.counts)
        if batch is not None and summary.image_ids:
            added = batches.batch_add_images(batch=batch, image_ids=summary.image_ids)
            self.stdout.write(f"added {added} image(s) to batch {batch.name!r} ({batch.state})")
        elif batch is not None and made:
            batches.batch_discard_if_empty(batch)
        if not summary.imported:
            raise CommandError("nothing was imported")
