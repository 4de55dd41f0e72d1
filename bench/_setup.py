"""Shared set-up for benchmarks that need the database: Django on the throwaway PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.processes import free_port  # noqa: E402,F401  (re-exported for the benchmarks)


def reexec_with_services(script: str) -> int:
    """Run `script` (this benchmark's file) again, with the same arguments, inside a shell that
    started a throwaway PostgreSQL and Redis (`.ci/services.sh`), with EMORATE_BENCH_INNER=1 set;
    the servers stop when it ends. Returns its exit status."""
    args = " ".join(f"'{a}'" for a in sys.argv[1:])
    shell = (f"cd '{ROOT}' && source .ci/services.sh && trap stop_services EXIT && start_services && "
             f"EMORATE_BENCH_INNER=1 '{sys.executable}' '{Path(script).resolve()}' {args}")
    return subprocess.call(["bash", "-c", shell])


def django_on_postgres() -> None:
    """Configure Django on the benchmark's own database (created fresh, migrated)."""
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("run benchmarks through `make bench-NAME` (it starts PostgreSQL and Redis)")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", "--noinput", verbosity=0)


def seed_ratings(n_images: int, per_image: int, n_raters: int = 20, seed: int = 1) -> int:
    """Bulk-create a project with n_images x per_image intensity ratings, inside PostgreSQL.

    Values are zero-inflated (about 80% zeros) like real EmoNet-Face ratings. Returns the project id.
    """
    from django.db import connection

    from accounts.models import User
    from annotation.models import Project

    project = Project.objects.create(name="bench", slug=f"bench-{n_images}-{per_image}-{seed}", scale_max=7)
    raters = [User.objects.create_user(email=f"bench{seed}-{i}@example.org", password=None) for i in range(n_raters)]
    lo = raters[0].pk
    t0 = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute("SELECT setseed(%s)", [seed / 1000])
        cur.execute(
            "INSERT INTO annotation_image (project_id, name, file, sha256, ethnicity, gender, prompt, source, extra, "
            "priority, flagged, created_at, format, age) "
            "SELECT %s, 'img' || g, '', md5(g::text) || md5((g + 1)::text), (ARRAY['A','B','C','D'])[1 + g %% 4], "
            "(ARRAY['man','woman','non-binary person'])[1 + g %% 3], '', '', '{}', random(), false, now(), '', "
            "20 + 10 * (g %% 7) FROM generate_series(1, %s) g",
            [project.pk, n_images],
        )
        # per_image distinct raters per image: consecutive rater offsets from a random start.
        cur.execute(
            'INSERT INTO annotation_rating (project_id, image_id, rater_id, "values", scale_max, taxonomy_version, '
            "source, created_at, updated_at) "
            "SELECT %s, i.id, %s + ((s.start + k) %% %s), "
            "  ARRAY(SELECT CASE WHEN random() < 0.8 THEN 0 ELSE 1 + floor(random() * 7)::int END "
            "        FROM generate_series(1, 40) e WHERE e > 0 * i.id)::smallint[], "
            "  7, 'emonet-face-1', 'import', now(), now() "
            "FROM annotation_image i "
            "CROSS JOIN LATERAL (SELECT floor(random() * %s)::int AS start WHERE i.id > 0) s "
            "CROSS JOIN generate_series(0, %s - 1) k WHERE i.project_id = %s",
            [project.pk, lo, n_raters, n_raters, per_image, project.pk],
        )
        cur.execute("ANALYZE annotation_rating")
    print(f"seeded {n_images:,} images x {per_image} ratings in {time.perf_counter() - t0:.1f} s")
    return project.pk
