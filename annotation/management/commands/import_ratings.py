from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation.ratingfiles import FORMATS, RatingFileError
from annotation.services.rating_import import ratings_import

from ._base import get_project


class Command(BaseCommand):
    help = "Import existing ratings (all or nothing): long CSV, or the EmoNet-Face authors' binary.csv / hq.csv."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("file", type=Path)
        parser.add_argument("--project", required=True)
        parser.add_argument("--format", required=True, choices=FORMATS)

    def handle(self, *args, **opts):  # type: ignore[no-untyped-def]
        project = get_project(opts["project"])
        try:
            text = opts["file"].read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot read {opts['file']}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise CommandError(f"{opts['file']} is not UTF-8 text") from None
        try:
            summary = ratings_import(project=project, text=text, fmt=opts["format"])
        except RatingFileError as exc:
            raise CommandError(f"{opts['file'].name}: {exc}") from None
        self.stdout.write(
            f"imported {summary.ratings} ratings and {summary.model_scores} model predictions into {project.slug} "
            f"({summary.images_created} placeholder images, {summary.raters_created} new rater accounts)"
        )
