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


def timed(args: list[str]) -> float:
    times = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        subprocess.run(args, cwd=ROOT, env=ENV, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    py = sys.executable
    floor = timed([py, "-c", "import django; django.setup()"])
    check = timed([py, "manage.py", "check"])
    ours = timed([py, "manage.py", "agreement", "--help"])
    print(f"start-up, median of {RUNS} whole processes, {os.cpu_count()} cores:")
    print(f"  django.setup() alone (floor)        {floor:6.2f} s")
    print(f"  manage.py check                      {check:6.2f} s")
    print(f"  manage.py agreement --help (ours)    {ours:6.2f} s")
    print(f"ours {ours:.2f} s vs floor {floor:.2f} s: ratio {ours / floor:.2f}; "
          f"goal < 1.0 s: {'met' if ours < 1.0 else 'not met'}")


if __name__ == "__main__":
    main()
