"""Queue a fresh agreement snapshot for every project whose ratings changed since its last one: what
the periodic agreement_refresh_all_task does, on demand (annotation.services.agreement_snapshot)."""

from django.core.management.base import BaseCommand

from annotation.services.agreement_snapshot import agreement_refresh_stale


class Command(BaseCommand):
    help = "Queue an agreement snapshot for every project whose ratings changed since its last snapshot."

    def handle(self, *args, **opts):  # type: ignore[no-untyped-def]
        queued = agreement_refresh_stale()
        self.stdout.write(f"queued {queued} agreement snapshot(s)")
