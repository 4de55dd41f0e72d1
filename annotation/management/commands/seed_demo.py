from django.core.management.base import BaseCommand

from annotation.management.progress import ProgressBar
from annotation.services.demo import demo_seed


class Command(BaseCommand):
    help = "Create the demo: ~200 drawn faces, a lead, three raters, clearly labelled simulated ratings."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--images", type=int, default=200)
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args, **opts):  # type: ignore[no-untyped-def]
        result = demo_seed(n_images=opts["images"], seed=opts["seed"], progress=ProgressBar("drawing faces"))
        if result.created:
            self.stdout.write(f"demo created: {result.images} drawn face images, "
                              f"{result.simulated_ratings} SIMULATED ratings (labelled 'simulated', not expert data)")
        else:
            self.stdout.write(f"demo already present ({result.images} images); demo passwords were reset")
        self.stdout.write("demo logins (passwords are new on every run):")
        for login in result.logins:
            self.stdout.write(f"  {login.role:<6} {login.email:<28} {login.password}")
