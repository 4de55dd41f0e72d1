from django.core.management.base import BaseCommand, CommandError

from annotation.management.progress import ProgressBar
from annotation.services.media_migration import served_copies_refresh


class Command(BaseCommand):
    help = ("Make the served (metadata-stripped) copy of every image that lacks one under the current "
            "stripping rules; --prune also deletes copies made by older rules. Idempotent.")

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--prune", action="store_true", help="delete served copies made by older rules")

    def handle(self, *args, **opts):  # type: ignore[no-untyped-def]
        report = served_copies_refresh(prune=opts["prune"], progress=ProgressBar("served copies"))
        for name, reason in report.failed:
            self.stderr.write(f"could not make the served copy of {name}: {reason}")
        self.stdout.write(f"media_served: {report.text}")
        if report.failed:
            raise CommandError(f"{len(report.failed)} image(s) have no served copy (listed above); "
                               "they answer 404 until re-imported")
