"""Start-up stays light (#21): loading the URLconf (what every request process and every management
command with system checks does) imports neither scipy nor torch; they load where they are used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("scipy", "torch", "transformers")


def test_the_urlconf_imports_no_scipy_or_torch():
    code = ("import json, sys, django; django.setup(); import config.urls; "
            f"print(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.local", "DATABASE_URL": "", "REDIS_URL": ""}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded == {m: False for m in HEAVY}, loaded


def test_the_statistics_still_load_scipy_when_they_run():
    """The agreement report runs without scipy (#21: its quantiles and sparse sums need none); a
    statistic that does need it (Spearman's rho against a model) imports it where it runs."""
    code = ("import sys, numpy as np; from annotation import agreement as ag; "
            "assert 'scipy' not in sys.modules; "
            "rng = np.random.default_rng(0); units = np.repeat(np.arange(30), 3); "
            "x = rng.integers(0, 8, (90, 40)).astype(float); "
            "report = ag.agreement_report(units, np.tile(np.arange(3), 30), x, n_boot=20); "
            "assert len(report) == 40; before = 'scipy' in sys.modules; "
            "rho = ag.spearman_vs_median(units, x, np.arange(30), x[::3] + rng.normal(0, 1, (30, 40))); "
            "assert len(rho) == 40 and all(r.rho is not None for r in rho); "
            "print(before, 'scipy.stats' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False True"


def test_the_agreement_command_offers_the_engine_s_levels():
    from annotation.agreement.constants import LEVELS as ENGINE
    from annotation.management.commands.agreement import LEVELS
    from annotation.services.agreement_snapshot import LEVELS as SERVICE

    assert tuple(LEVELS) == tuple(ENGINE) == tuple(SERVICE)
