from django.core.management.base import BaseCommand, CommandError

from annotation.services.projects import ProjectError, project_create


class Command(BaseCommand):
    help = "Create a project for scripted setups."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("slug")
        parser.add_argument("--mode", required=True, choices=["intensity", "binary"])
        parser.add_argument("--name", default="")
        parser.add_argument("--scale-max", type=int, default=None, help="Top of the intensity scale (default 7)")
        parser.add_argument("--target", type=int, default=4, help="Ratings wanted per image (default 4)")
        parser.add_argument("--guidelines", default="", help="Guidelines text shown to raters")

    def handle(self, *args, **opts):  # type: ignore[no-untyped-def]
        try:
            project = project_create(slug=opts["slug"], mode=opts["mode"], name=opts["name"],
                                     scale_max=opts["scale_max"], target=opts["target"], guidelines=opts["guidelines"])
        except ProjectError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"created project {project.slug} ({project.mode}, scale 0..{project.scale_max}, "
                          f"target {project.target_ratings} ratings per image)")
