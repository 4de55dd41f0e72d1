from django.core.management.base import BaseCommand, CommandError

from annotation.models import Release
from annotation.services.calibration import CalibrationError, calibration_items_from_release

from ._base import get_project


class Command(BaseCommand):
    help = "Make N images of a published release the project's calibration set (consensus as reference)."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--project", required=True)
        parser.add_argument("--release", required=True, help="Published release version, e.g. 1.0.0")
        parser.add_argument("--n", type=int, default=10, help="Number of calibration images (default 10)")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, **opts):  # type: ignore[no-untyped-def]
        project = get_project(opts["project"])
        release = Release.objects.filter(project=project, version=opts["release"]).first()
        if release is None:
            raise CommandError(f"project {project.slug} has no release {opts['release']}")
        try:
            items = calibration_items_from_release(project=project, release=release, n=opts["n"], actor=None,
                                                   seed=opts["seed"])
        except CalibrationError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{len(items)} calibration items from release {release.version} of {project.slug}")
