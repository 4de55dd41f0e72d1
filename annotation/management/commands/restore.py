from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation.services.backups import BackupError, backup_restore


class Command(BaseCommand):
    help = ("Restore a backup made by `manage.py backup` into an empty database (a non-empty one only with "
            "--force). Every part is checked against backup.json first; nothing is half-restored.")
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("folder", type=Path)
        parser.add_argument("--force", action="store_true", help="replace the contents of a non-empty database")

    def handle(self, *args, **opts):  # type: ignore[no-untyped-def]
        try:
            self.stdout.write(backup_restore(opts["folder"], force=opts["force"]))
        except BackupError as exc:
            raise CommandError(str(exc)) from None
