import json

from django.core.management.base import BaseCommand, CommandError

from ._base import get_project


def _fmt(x: float | None) -> str:
    return "  -  " if x is None else f"{x:+.2f}"


class Command(BaseCommand):
    help = ("Fit the measurement model (rater presence thresholds and intensity shifts with 95% intervals; "
            "Dawid-Skene in binary mode) to a project's ratings. For leads: it names raters by email. "
            "Definitions: docs/agreement.md, 'Measurement model'.")
    requires_system_checks: list[str] = []

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--project", required=True)
        parser.add_argument("--json", action="store_true", help="Print one JSON object")

    def handle(self, *args, **opts):  # type: ignore[no-untyped-def]
        # Imported here: `rater_model --help` starts without the statistics stack.
        from annotation.services.rater_model import RaterModelError, rater_model_compute

        project = get_project(opts["project"])
        try:
            result = rater_model_compute(project)
        except RaterModelError as exc:
            raise CommandError(str(exc)) from None
        if opts["json"]:
            self.stdout.write(json.dumps(result, sort_keys=True))
            return
        state = "converged" if result["converged"] else "DID NOT CONVERGE: do not use these figures"
        self.stdout.write(f"{project.slug}: {result['mode']} model of {result['ratings']} ratings of "
                          f"{result['images']} images, {state} ({result['iterations']} sweeps, "
                          f"{result['seconds']:.1f} s)")
        for w in result["warnings"]:
            self.stdout.write(f"  note: {w}")
        for r in result["raters"]:
            if result["mode"] == "binary":
                self.stdout.write(f"{r['rater']}: sensitivity {r['sensitivity']} {r['sensitivity_ci']}, "
                                  f"specificity {r['specificity']} {r['specificity_ci']} ({r['n_ratings']} votes)")
                continue
            self.stdout.write(f"{r['rater']} ({r['n_ratings']} ratings, discrimination {r['discrimination']})")
            for g in r["groups"]:
                self.stdout.write(f"  {g['group']:<34} presence {_fmt(g['presence_shift'])} logits, "
                                  f"intensity {_fmt(g['intensity_shift'])} steps: {g['words']}")
