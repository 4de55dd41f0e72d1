from django.conf import settings
from django.core.files.storage import storages
from django.core.management.base import BaseCommand, CommandError

from annotation.management.progress import ProgressBar
from annotation.services.media_migration import media_copy


class Command(BaseCommand):
    help = ("Copy every stored file (images, served copies, releases) between the local media folder and the "
            "S3 bucket, verifying each sha256. Idempotent; nothing is deleted at the source.")

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--to", required=True, choices=["s3", "local"], help="where the files go")

    def handle(self, *args, **opts):  # type: ignore[no-untyped-def]
        if "s3" not in settings.STORAGES:
            raise CommandError("no bucket configured: set AWS_STORAGE_BUCKET_NAME (and AWS_S3_ENDPOINT_URL, keys) "
                               "to migrate to or from S3")
        source, target = ("local", "s3") if opts["to"] == "s3" else ("s3", "local")
        report = media_copy(storages[source], storages[target], progress=ProgressBar(f"{source} -> {target}"))
        for name, reason in report.failed:
            self.stderr.write(f"could not copy {name}: {reason}")
        self.stdout.write(f"media_migrate {source} -> {target}: {report.text}")
        if report.failed:
            raise CommandError(f"{len(report.failed)} file(s) could not be copied (listed above)")
        if opts["to"] != settings.EMORATE_STORAGE:
            self.stdout.write(f"now set EMORATE_STORAGE={opts['to']} and restart the web and worker processes")
