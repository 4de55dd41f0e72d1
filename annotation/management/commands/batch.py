"""Rounds (batches, #22) from the command line: create, open, pause, close, list.

    manage.py batch create NAME --project SLUG (--filter KEY=VALUE ... | --sample N [--seed S]
        [--strata ethnicity,gender,age] [--filter ...] | --disputed N | --disputed-images ID,ID | --images FILE)
        [--target N] [--priority N] [--due YYYY-MM-DD] [--raters EMAIL,EMAIL] [--open]
    manage.py batch open|pause|close NAME --project SLUG
    manage.py batch list --project SLUG
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from annotation import selectors_batches
from annotation.models import BatchState
from annotation.services import batches

from ._base import get_project

STATES = {"open": BatchState.OPEN, "pause": BatchState.PAUSED, "close": BatchState.CLOSED}


def _filter(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if key in ("unrated", "disputed", "usable_after_flag"):
            if value.strip().lower() not in ("", "true", "1", "yes", "false", "0", "no"):
                raise CommandError(f"--filter {pair!r}: {key} is true or false")
            if value.strip().lower() in ("", "true", "1", "yes"):
                out[key] = True
        elif not sep:
            raise CommandError(f"--filter {pair!r}: give KEY=VALUE (keys: {', '.join(batches.FILTER_KEYS)})")
        else:
            out[key] = value.strip()
    return out


class Command(BaseCommand):
    help = "Make, open, pause, close and list a project's rounds (batches)."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="make a draft round")
        create.add_argument("name")
        create.add_argument("--project", required=True)
        create.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                            help=f"filter the images (repeatable; keys: {', '.join(batches.FILTER_KEYS)})")
        create.add_argument("--sample", type=int, metavar="N", help="a stratified random sample of N filtered images")
        create.add_argument("--seed", type=int, default=0, help="the sample's seed (default 0)")
        create.add_argument("--strata", default=",".join(batches.STRATA),
                            help="strata of the sample, comma-separated (default ethnicity,gender,age; '' = none)")
        create.add_argument("--disputed", type=int, metavar="N", help="the disputed gallery's first N images")
        create.add_argument("--disputed-images", metavar="ID,ID", help="these images of the disputed gallery")
        create.add_argument("--images", type=Path, metavar="FILE", help="a file of image names, one a line")
        create.add_argument("--target", type=int, help="ratings wanted per image (default: the project's)")
        create.add_argument("--priority", type=int, default=0, help="higher = served before other rounds")
        create.add_argument("--due", help="due date, YYYY-MM-DD")
        create.add_argument("--raters", help="who may rate it, emails comma-separated (default: every rater)")
        create.add_argument("--open", action="store_true", help="open it at once")
        for action in STATES:
            p = sub.add_parser(action, help=f"{action} a round")
            p.add_argument("name")
            p.add_argument("--project", required=True)
        lst = sub.add_parser("list", help="the project's rounds with their progress")
        lst.add_argument("--project", required=True)

    def handle(self, *args, **opts):  # type: ignore[no-untyped-def]
        project = get_project(opts["project"])
        action = opts["action"]
        try:
            if action == "list":
                self._list(project)
            elif action == "create":
                self._create(project, opts)
            else:
                batch = batches.batch_set_state(batch=batches.batch_get(project, opts["name"]), state=STATES[action])
                self.stdout.write(f"batch {batch.name!r} is {batch.state}")
        except batches.BatchError as exc:
            raise CommandError(str(exc)) from None

    def _create(self, project: Any, opts: dict[str, Any]) -> None:
        given = [k for k in ("sample", "disputed", "disputed_images", "images") if opts[k] is not None]
        if len(given) > 1:
            raise CommandError(f"give one source of images, not {' and '.join('--' + g.replace('_', '-') for g in given)}")
        flt = _filter(opts["filter"])
        spec: dict[str, Any]
        if opts["sample"] is not None:
            strata = [s.strip() for s in opts["strata"].split(",") if s.strip()]
            spec = {"sample": {"size": opts["sample"], "seed": opts["seed"], "strata": strata, "filter": flt}}
        elif opts["disputed"] is not None:
            spec = {"disputed": {"limit": opts["disputed"]}}
        elif opts["disputed_images"] is not None:
            spec = {"disputed": {"image_ids": [s.strip() for s in opts["disputed_images"].split(",") if s.strip()]}}
        elif opts["images"] is not None:
            try:
                names = [line.strip() for line in opts["images"].read_text().splitlines() if line.strip()]
            except OSError as exc:
                raise CommandError(f"--images {opts['images']}: {exc.strerror}") from None
            spec = {"images": names}
        else:
            spec = {"filter": flt}
        raters = [r.strip() for r in opts["raters"].split(",") if r.strip()] if opts["raters"] else None
        batch = batches.batch_create_from_spec(project=project, name=opts["name"], spec=spec,
                                               target_ratings=opts["target"], priority=opts["priority"],
                                               due_on=opts["due"], raters=raters)
        if opts["open"]:
            batch = batches.batch_set_state(batch=batch, state=BatchState.OPEN)
        self.stdout.write(f"batch {batch.name!r}: {batch.n_images} images, target {batch.target_ratings}, "
                          f"{batch.state}")

    def _list(self, project: Any) -> None:
        rows = selectors_batches.batch_list(project)
        if not rows:
            self.stdout.write("no batches")
            return
        for p in rows:
            b = p.batch
            projected = ("done" if p.complete else p.projection.projected_on.isoformat()
                         if p.projection.projected_on else "no pace yet")
            due = f", due {b.due_on.isoformat()}" + (" (behind)" if p.projection.behind and not p.complete else "") \
                if b.due_on else ""
            self.stdout.write(f"{b.name}\t{b.state}\tpriority {b.priority}\t{p.n_images} images\ttarget "
                              f"{b.target_ratings}\tcoverage {p.coverage_percent}% ({p.taken}/{p.needed})\t"
                              f"{p.projection.pace_per_day:.1f}/day\tprojected {projected}{due}")
