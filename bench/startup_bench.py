"""Start-up of management commands (issue #21, goal 1).

Ours: `python manage.py agreement --help` as a whole process. Reference, same run: the floor, a
process that only sets Django up (`django.setup()`), and `python manage.py check`.
Goal: `agreement --help` under 1.0 s. Median of 5 runs each, on the demo settings (no database).
Run: make bench-startup_bench   (or .venv/bin/python bench/startup_bench.py)
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.local", "DATABASE_URL": "", "REDIS_URL": ""}
RUNS = 5


def timed(commands: dict[str, list[str]]) -> dict[str, float]:
    """Median seconds per command, the commands taking turns (one warm-up round first), so that
    neither the file cache nor the machine's load favours one of them."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for round_ in range(RUNS + 1):
        for name, args in commands.items():
            t0 = time.perf_counter()
            subprocess.run(args, cwd=ROOT, env=ENV, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if round_:
                times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    py = sys.executable
    t = timed({"floor": [py, "-c", "import django; django.setup()"], "check": [py, "manage.py", "check"],
               "ours": [py, "manage.py", "agreement", "--help"]})
    floor, check, ours = t["floor"], t["check"], t["ours"]
    print(f"start-up, median of {RUNS} whole processes each (taking turns, after a warm-up round), "
          f"{os.cpu_count()} cores:")
    print(f"  django.setup() alone (floor)        {floor:6.2f} s")
    print(f"  manage.py check                      {check:6.2f} s")
    print(f"  manage.py agreement --help (ours)    {ours:6.2f} s")
    print(f"ours {ours:.2f} s vs floor {floor:.2f} s: ratio {ours / floor:.2f}; "
          f"goal < 1.0 s: {'met' if ours < 1.0 else 'not met'}")


if __name__ == "__main__":
    main()
