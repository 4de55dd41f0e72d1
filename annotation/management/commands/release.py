import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation.management.progress import ProgressBar
from annotation.models import Release
from annotation.services import stored_files
from annotation.services.releases import (
    ReleaseError,
    release_advance,
    release_config_conflicts,
    release_create,
)

from ._base import get_project


class Command(BaseCommand):
    help = "Create and build a versioned release of a project (optionally publish it and copy its files out)."

    def create_parser(self, prog_name, subcommand, **kwargs):  # type: ignore[no-untyped-def]
        # --version names the release here, replacing Django's "show the Django version" option.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--project", required=True)
        parser.add_argument("--version", required=True, dest="release_version", help="Semantic version, e.g. 1.0.0")
        parser.add_argument("--publish", action="store_true", help="Publish after building (irreversible)")
        parser.add_argument("--out", type=Path, default=None, help="Copy the release files into this folder")
        # Options default to None: for an existing version, only the options given are compared with
        # its frozen configuration (a differing one is refused, never silently ignored).
        parser.add_argument("--method", choices=["median", "mean", "trimmed_mean", "model"], default=None,
                            help="Consolidation (default median; model: the measurement model's expected rating)")
        parser.add_argument("--min-ratings", type=int, default=None, help="Ratings an image needs (default 2)")
        parser.add_argument("--seed", type=int, default=None, help="Split seed (default 0)")
        parser.add_argument("--group-key", default=None,
                            help="Keep images sharing this attribute in one split (default: prompt where images "
                                 "have one; 'none' splits image by image)")
        parser.add_argument("--test-from-model-independent", choices=["yes", "no"], default=None,
                            help="Draw the test split from the model-independent evaluation sample (default: yes "
                                 "when the project has model scores and the sample is big enough)")
        parser.add_argument("--include-images", action="store_true", default=None,
                            help="Put the (metadata-stripped) image files into the release")
        parser.add_argument("--bootstrap", type=int, default=None, help="Resamples for the agreement intervals (default 1000)")
        parser.add_argument("--batch", action="append", default=None, dest="batches", metavar="NAME",
                            help="cut the release from this round's images only (repeatable; default: every image)")

    def handle(self, *args, **opts):  # type: ignore[no-untyped-def]
        project = get_project(opts["project"])
        version = opts["release_version"]
        release = Release.objects.filter(project=project, version=version).first()
        requested = {name: opts[name] for name in ("method", "min_ratings", "seed", "group_key", "include_images",
                                                   "bootstrap")}
        requested["batches"] = sorted(set(opts["batches"])) if opts["batches"] else None
        tfmi = opts["test_from_model_independent"]
        requested["test_from_model_independent"] = None if tfmi is None else tfmi == "yes"
        try:
            if release is None:
                split: dict[str, object] = {"seed": 0 if opts["seed"] is None else opts["seed"]}
                if opts["group_key"] is not None:
                    split["group_key"] = None if opts["group_key"] == "none" else opts["group_key"]
                if tfmi is not None:
                    split["test_from_model_independent"] = tfmi == "yes"
                release = release_create(
                    project=project, version=version, include_images=bool(opts["include_images"]),
                    n_boot=1000 if opts["bootstrap"] is None else opts["bootstrap"],
                    consolidation={"method": opts["method"] or "median",
                                   "min_ratings": 2 if opts["min_ratings"] is None else opts["min_ratings"]},
                    split=split, batches=opts["batches"],
                )
                self.stdout.write(f"created release {version} of {project.slug} (configuration frozen)")
            else:
                conflicts = release_config_conflicts(release, requested)
                if conflicts:
                    raise CommandError(
                        f"release {version} of {project.slug} already exists with another configuration: "
                        f"{'; '.join(conflicts)}. A version's configuration is frozen: cut a new version "
                        "for these options, or leave them out to build or publish this one.")
            bar = ProgressBar(f"building {version}", enabled=None, min_total=0)
            done = release_advance(release, publish=opts["publish"], progress=lambda pct, stage: bar(pct, 100))
            assert not isinstance(done, str)  # "busy" only with busy_ok
            release = done
        except ReleaseError as exc:
            raise CommandError(str(exc)) from None
        summary = release.summary
        self.stdout.write(f"release {release.version}: {release.status}; {summary.get('images', 0)} images "
                          f"{json.dumps(summary.get('splits', {}), sort_keys=True)}, left out "
                          f"{json.dumps(summary.get('left_out', {}), sort_keys=True)}; manifest sha256 "
                          f"{release.manifest_sha256}")
        for problem in summary.get("balance_violations", []):
            self.stderr.write(f"balance: {problem}")
        self.stdout.write(f"files: {release.files_dir} in the media storage")
        if opts["out"] is not None:
            out: Path = opts["out"]
            if out.exists() and any(out.iterdir()):
                raise CommandError(f"--out {out} exists and is not empty")
            copied = stored_files.folder_fetch(release.files_dir, out)
            self.stdout.write(f"copied {len(copied)} files to {out}")
