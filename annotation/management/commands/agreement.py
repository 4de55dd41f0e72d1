import json

from django.core.management.base import BaseCommand, CommandError

from ._base import get_project

LEVELS = ("nominal", "ordinal", "interval", "ratio")  # annotation.agreement.constants.LEVELS (a test holds them equal)


def _fmt(x: float | None, digits: int = 3) -> str:
    return "   -  " if x is None else f"{x:6.{digits}f}"


class Command(BaseCommand):
    help = "Print the inter-rater agreement report of a project (definitions: docs/agreement.md)."
    # A read-only report: Django's system checks (which import every URLconf and view) would be
    # most of its run time on a small project (#21). `manage.py check` and deployments still run them.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--project", required=True)
        parser.add_argument("--level", default="interval", choices=LEVELS)
        parser.add_argument("--bootstrap", type=int, default=1000, help="Resamples for the intervals (0 = none)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--json", action="store_true", help="Print one JSON object")
        parser.add_argument("--save", action="store_true", help="Also store it as the project's latest snapshot")

    def handle(self, *args, **opts):  # type: ignore[no-untyped-def]
        # Imported here, not at the top: `agreement --help` starts without the statistics stack (#21).
        from annotation.services.agreement_snapshot import (
            AgreementError,
            agreement_compute,
            agreement_snapshot_create,
        )

        project = get_project(opts["project"])
        try:
            if opts["save"]:
                report = agreement_snapshot_create(project, level=opts["level"], n_boot=opts["bootstrap"],
                                                   seed=opts["seed"]).payload
            else:
                report = agreement_compute(project, level=opts["level"], n_boot=opts["bootstrap"], seed=opts["seed"])
        except AgreementError as exc:
            raise CommandError(str(exc)) from None
        if opts["json"]:
            self.stdout.write(json.dumps(report, sort_keys=True))
            return
        self.stdout.write(f"{report['project']}: Krippendorff's alpha ({report['level']}), {report['n_ratings']} "
                          f"ratings of {report['n_images']} images by {report['n_raters']} raters; "
                          f"{int(report['confidence'] * 100)}% bootstrap intervals ({report['n_boot']} resamples, "
                          f"seed {report['seed']})")
        self.stdout.write(f"{'emotion':<46} {'alpha':>6}  {'95% CI':^15}  {'images':>6} {'nonzero':>7}")
        for e in sorted(report["emotions"], key=lambda e: (e["alpha"] is None, -(e["alpha"] or 0))):
            ci = e["ci"] or [None, None]
            note = e["reason"] or "; ".join(e["warnings"])
            share = "-" if e["nonzero_share"] is None else f"{e['nonzero_share']:.0%}"
            self.stdout.write(f"{e['emotion']:<46} {_fmt(e['alpha'])}  [{_fmt(ci[0])},{_fmt(ci[1])}]  "
                              f"{e['n_images']:>6} {share:>7}  {note}")
        self.stdout.write(f"mean alpha over defined emotions: {_fmt(report['mean_alpha'])}")
        mean_ci = report.get("mean_alpha_ci") or {}
        if mean_ci.get("ci_raters"):
            lo, hi = mean_ci["ci_raters"]
            self.stdout.write(f"  95% interval for experts like these (images and raters resampled): [{_fmt(lo)},{_fmt(hi)}]")
        label = report.get("label_reliability") or {}
        if label.get("reliability") is not None:
            self.stdout.write(f"reliability of the consolidated label ({label['ratings_per_image']:.2f} ratings per "
                              f"image, Spearman-Brown): {_fmt(label['reliability'])}")
