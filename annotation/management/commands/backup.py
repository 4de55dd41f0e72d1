from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation.management.progress import ProgressBar
from annotation.services.backups import BackupError, backup_create


class Command(BaseCommand):
    help = ("Back up the database (pg_dump, custom format) and list every stored file with its sha256 in "
            "backup.json; --with-media copies the files too. Restore with `manage.py restore DIR`.")

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--out", type=Path, required=True, help="an empty or new folder")
        parser.add_argument("--with-media", action="store_true", help="copy the stored files into the backup")

    def handle(self, *args, **opts):  # type: ignore[no-untyped-def]
        try:
            summary = backup_create(opts["out"], with_media=opts["with_media"], progress=ProgressBar("files"))
        except BackupError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(summary.text)
