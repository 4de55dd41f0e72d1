"""`manage.py agreement --project SLUG --json` on a small project, as a whole process (issue #21, goal 1).

Ours: the command end to end (start-up, reading the ratings from PostgreSQL, alpha with 1,000-resample
intervals and every figure of the report, JSON out) on 200 images x 3 ratings x 40 emotions. Reference,
same run: `python -c "import django; django.setup()"` with the same settings (the floor every command
pays) and `manage.py check`. Goal: under 1.5 s. Median of 5 whole processes each, taking turns after a
warm-up round.
Run: make bench-agreement_json_bench   [N_IMAGES=200]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

from _setup import ROOT, django_on_postgres, seed_ratings

RUNS = 5


def main() -> None:
    django_on_postgres()
    from annotation.models import Project

    n_images = int(os.environ.get("N_IMAGES", "200"))
    project = Project.objects.get(pk=seed_ratings(n_images, 3))
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.local"}
    py = sys.executable
    commands = {"floor": [py, "-c", "import django; django.setup()"], "check": [py, "manage.py", "check"],
                "ours": [py, "manage.py", "agreement", "--project", project.slug, "--json"]}
    times: dict[str, list[float]] = {name: [] for name in commands}
    out = ""
    for round_ in range(RUNS + 1):
        for name, args in commands.items():
            t0 = time.perf_counter()
            done = subprocess.run(args, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
            if round_:
                times[name].append(time.perf_counter() - t0)
            if name == "ours":
                out = done.stdout
    report = json.loads(out)
    assert report["n_images"] == n_images and len(report["emotions"]) == 40, "the command's report is incomplete"
    med = {name: statistics.median(t) for name, t in times.items()}
    print(f"`agreement --json` on {n_images} images x 3 ratings x 40 emotions (PostgreSQL), median of {RUNS} "
          f"whole processes each, {os.cpu_count()} cores:")
    print(f"  django.setup() alone (floor)   {med['floor']:6.2f} s")
    print(f"  manage.py check                {med['check']:6.2f} s")
    print(f"  agreement --json (ours)        {med['ours']:6.2f} s  (runs: "
          f"{', '.join(f'{t:.2f}' for t in times['ours'])})")
    print(f"ours {med['ours']:.2f} s vs floor {med['floor']:.2f} s: ratio {med['ours'] / med['floor']:.2f}; "
          f"goal < 1.5 s: {'met' if med['ours'] < 1.5 else 'not met'}")


if __name__ == "__main__":
    main()
