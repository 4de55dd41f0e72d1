import json

from django.core.management.base import BaseCommand, CommandError

from ._base import get_project


class Command(BaseCommand):
    help = ("Plan ratings per image and images: the consolidated label's reliability (Spearman-Brown) and "
            "the width of alpha's 95% interval, from the latest agreement snapshot. "
            "Definitions: docs/agreement.md, 'Planner'.")
    requires_system_checks: list[str] = []

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--project", required=True)
        parser.add_argument("--target-reliability", type=float, default=0.8)
        parser.add_argument("--images", type=int, default=None, help="Images to plan for (default: as now)")
        parser.add_argument("--json", action="store_true", help="Print the rows as one JSON list")

    def handle(self, *args, **opts):  # type: ignore[no-untyped-def]
        from annotation.services.rater_model import RaterModelError, plan_compute

        project = get_project(opts["project"])
        try:
            result = plan_compute(project, target_reliability=opts["target_reliability"], images=opts["images"])
        except RaterModelError as exc:
            raise CommandError(str(exc)) from None
        if opts["json"]:
            self.stdout.write(json.dumps(result["rows"], sort_keys=True))
            return
        need = result["ratings_needed"]
        self.stdout.write(f"{project.slug}: mean alpha {result['mean_alpha']}, {result['images_now']} images, "
                          f"{result['ratings_per_image_now']} ratings per image now; median 95% interval width "
                          f"{result['ci_width_now']}")
        self.stdout.write(f"label reliability {result['target_reliability']} needs "
                          + (f"{need} ratings per image" if need else "more agreement (alpha <= 0)"))
        self.stdout.write(f"{'ratings/image':>13} {'images':>8} {'reliability':>11} {'CI width':>9}")
        for r in result["rows"]:
            width = "-" if r["alpha_ci_width"] is None else f"{r['alpha_ci_width']:.3f}"
            mark = "  <- target" if r["meets_target"] and r["ratings_per_image"] == need else ""
            self.stdout.write(f"{r['ratings_per_image']:>13} {r['images']:>8} {r['label_reliability']:>11.3f} "
                              f"{width:>9}{mark}")
