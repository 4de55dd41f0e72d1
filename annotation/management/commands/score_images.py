"""Score a project's images with EmpathicInsight-Face, in this process (on demand).

The worker does the same after each import (annotation.scoring.tasks). Images already scored by
the same model version are skipped, so the command can be rerun or interrupted at any time.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from annotation.management.progress import ProgressBar
from annotation.scoring.contracts import ScoringError
from annotation.scoring.services import DEFAULT_BATCH_SIZE, images_score, priority_recompute

from ._base import get_project


class Command(BaseCommand):
    help = ("Score a project's images with the emotion model (skips images already scored by the same weights), "
            "then recompute the queue priorities. See docs/scoring.md.")

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--model", metavar="DIR", default=None,
                            help="model folder (default: settings.EMORATE_SCORING_MODEL_DIR)")
        parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
        parser.add_argument("--device", default=None, help="cuda, cuda:1 or cpu (default: cuda when available)")
        parser.add_argument("--no-priority", action="store_true", help="do not recompute queue priorities")
        parser.add_argument("--progress", action="store_true", help="show the progress bar even when not on a terminal")

    def handle(self, *args, **opts):  # type: ignore[no-untyped-def]
        project = get_project(opts["project"])
        if opts["batch_size"] < 1:
            raise CommandError(f"--batch-size must be at least 1, got {opts['batch_size']}")
        bar = ProgressBar("scoring", enabled=True if opts["progress"] else None, min_total=1)
        try:
            summary = images_score(project, model_dir=opts["model"], batch_size=opts["batch_size"], progress=bar,
                                   recompute_priority=False, device=opts["device"])
        except ScoringError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(summary.text)
        for image_id, reason in sorted(summary.failed.items())[:20]:
            self.stderr.write(f"  image {image_id}: {reason}")
        if not opts["no_priority"]:
            result = priority_recompute(project)
            self.stdout.write(f"queue priorities: {result.n_changed} of {result.n_images} images changed "
                              f"({result.seconds:.2f} s)")
