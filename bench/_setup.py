"""Shared set-up for benchmarks that need the database: Django on the throwaway PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


POOL = 65536  # distinct rating vectors in a seeded project


def seed_ratings(n_images: int, per_image: int, n_raters: int = 20, seed: int = 1, *, build_after: bool = True) -> int:
    """Bulk-create a project with n_images x per_image intensity ratings, inside PostgreSQL.

    Values are zero-inflated (about 80% zeros) like real EmoNet-Face ratings: a pool of POOL vectors
    drawn once, each rating taking one by a hash of (image, k, a random start). The counters the
    triggers keep (Image.n_ratings, queue_full, RaterTally, the coverage tallies) are written in bulk
    instead of per statement by the triggers, which would double the time (#21: a million images
    seed in under two minutes); `seed_check` holds the two ways to the same state. The tables'
    secondary indexes and keys are made after the rows (`_keys_and_indexes_built_after`), unless
    ``build_after`` is false (bench/seed_bench.py's reference). Returns the project id.
    """
    from django.db import connection, transaction

    from accounts.models import User
    from annotation.models import Project

    project = Project.objects.create(name="bench", slug=f"bench-{n_images}-{per_image}-{seed}", scale_max=7)
    raters = [User.objects.create_user(email=f"bench{seed}-{i}@example.org", password=None) for i in range(n_raters)]
    lo = raters[0].pk
    t0 = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT setseed(%s)", [seed / 1000])
        # ALTER TABLE waits for no deferred checks (inside a test's transaction there are some)
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
        with _keys_and_indexes_built_after(cur, ("annotation_image", "annotation_rating") if build_after else ()):
            # every image gets exactly per_image ratings: its counters are known before they exist
            cur.execute(
                "INSERT INTO annotation_image (project_id, name, file, sha256, ethnicity, gender, prompt, source, "
                "extra, priority, flagged, created_at, format, age, n_ratings, queue_full) "
                "SELECT %s, 'img' || g, '', md5(g::text) || md5((g + 1)::text), (ARRAY['A','B','C','D'])[1 + g %% 4], "
                "(ARRAY['man','woman','non-binary person'])[1 + g %% 3], '', '', '{}', random(), false, now(), '', "
                "20 + 10 * (g %% 7), %s, %s >= %s FROM generate_series(1, %s) g",
                [project.pk, per_image, per_image, project.target_ratings, n_images],
            )
            cur.execute(
                "CREATE TEMP TABLE seed_pool AS SELECT slot, "
                "  ARRAY(SELECT CASE WHEN random() < 0.8 THEN 0 ELSE 1 + floor(random() * 7)::int END "
                "        FROM generate_series(1, 40) e WHERE e > 0 * slot)::smallint[] AS v "
                "FROM generate_series(0, %s - 1) slot", [POOL])
            cur.execute("CREATE UNIQUE INDEX ON seed_pool (slot)")
            # statistics of the rows this transaction inserted (autovacuum cannot see them yet): with
            # none, the planner took the images for empty and looked up the pool by a scan per rating
            # (with the indexes in place, 15 minutes at a million images)
            cur.execute("ANALYZE annotation_image")
            cur.execute("ANALYZE seed_pool")
            for trigger in _COUNTING_TRIGGERS:
                cur.execute(f"ALTER TABLE annotation_rating DISABLE TRIGGER {trigger}")
            # per_image distinct raters per image: consecutive rater offsets from a random start.
            cur.execute(
                'INSERT INTO annotation_rating (project_id, image_id, rater_id, "values", scale_max, taxonomy_version, '
                "source, created_at, updated_at) "
                "SELECT %s, i.id, %s + ((s.start + g.k) %% %s), p.v, 7, 'emonet-face-1', 'import', now(), now() "
                "FROM annotation_image i "
                "CROSS JOIN LATERAL (SELECT floor(random() * %s)::int AS start WHERE i.id > 0) s "
                "CROSS JOIN generate_series(0, %s - 1) AS g(k) "
                "JOIN seed_pool p ON p.slot = ((i.id * 2654435761 + g.k * 40503 + s.start) %% %s) "
                "WHERE i.project_id = %s",
                [project.pk, lo, n_raters, n_raters, per_image, POOL, project.pk],
            )
            for trigger in _COUNTING_TRIGGERS:
                cur.execute(f"ALTER TABLE annotation_rating ENABLE TRIGGER {trigger}")
        cur.execute(
            "INSERT INTO annotation_ratertally (project_id, rater_id, n_rated) "
            "SELECT project_id, rater_id, count(*) FROM annotation_rating WHERE project_id = %s "
            "GROUP BY project_id, rater_id", [project.pk])
        cur.execute("DROP TABLE seed_pool")
    with connection.cursor() as cur:
        if connection.in_atomic_block:  # (a test's transaction: VACUUM cannot run there)
            cur.execute("ANALYZE annotation_rating")
        else:
            # the state autovacuum leaves a project in: without it the first read of the new rows
            # sets their hint bits (writes every page) and a benchmark's first figure pays for it
            # (1M: a snapshot took 42.8 s on fresh rows, 29.5-31.3 s after VACUUM)
            cur.execute("VACUUM ANALYZE annotation_image, annotation_rating")
    print(f"seeded {n_images:,} images x {per_image} ratings in {time.perf_counter() - t0:.1f} s")
    return project.pk


# The triggers on annotation_rating that keep counters; seed_ratings writes those counters itself.
_COUNTING_TRIGGERS = ("rating_counts_image", "rating_tallies_rater")


@contextmanager
def _keys_and_indexes_built_after(cur: Any, tables: tuple[str, ...]) -> Iterator[None]:
    """The tables' secondary indexes, unique constraints and foreign keys dropped for the block and
    made again (by their own definitions) after it, as a restore does: an index built over all rows
    at once is a sort, where one kept in place takes each row on its own, at random places once it
    outgrows the buffer cache, and a foreign key added back checks every row in one join instead of
    one query per row. At a million images the seeding took 145 s with everything in place, 88 s
    with the foreign keys alone made after. Primary keys stay. Call inside a transaction: a failure,
    a re-check's included, leaves nothing changed."""
    indexes: list[tuple[str, str]] = []
    constraints: list[tuple[str, str, str, str]] = []
    for table in tables:
        cur.execute("SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
                    "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %s::regclass "
                    "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid "
                    "AND k.conrelid = i.indrelid) ORDER BY c.relname", [table])
        indexes += list(cur.fetchall())
        cur.execute("SELECT contype, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE conrelid = %s::regclass AND contype IN ('f', 'u') ORDER BY contype DESC, conname", [table])
        constraints += [(kind, table, name, definition) for kind, name, definition in cur.fetchall()]
    for _, table, name, _ in constraints:
        cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        cur.execute(f'DROP INDEX "{name}"')
    yield
    for _, definition in indexes:
        cur.execute(definition)
    # unique constraints before the foreign keys that may lean on them
    for _, table, name, definition in sorted(constraints, key=lambda c: c[0] != "u"):
        cur.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')


def seed_check(project_id: int) -> list[str]:
    """What differs between a seeded project's counters and what the triggers would have kept
    (empty: nothing). Counts the ratings per image and per rater."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM annotation_image i LEFT JOIN (SELECT image_id, count(*) AS n FROM annotation_rating "
            "WHERE project_id = %s AND emotion IS NULL GROUP BY image_id) c ON c.image_id = i.id "
            "JOIN annotation_project p ON p.id = i.project_id "
            "WHERE i.project_id = %s AND (i.n_ratings <> COALESCE(c.n, 0) "
            "OR i.queue_full <> (COALESCE(c.n, 0) >= p.target_ratings + i.extra_target))", [project_id, project_id])
        bad_images = cur.fetchone()[0]
        cur.execute(
            "SELECT count(*) FROM (SELECT rater_id, count(*) AS n FROM annotation_rating WHERE project_id = %s "
            "GROUP BY rater_id) c FULL JOIN (SELECT rater_id, n_rated FROM annotation_ratertally WHERE project_id = %s) t "
            "USING (rater_id) WHERE c.n IS DISTINCT FROM t.n_rated", [project_id, project_id])
        bad_raters = cur.fetchone()[0]
    return ([f"{bad_images} images with wrong counters"] if bad_images else []) + (
        [f"{bad_raters} raters with a wrong tally"] if bad_raters else [])


def process_tree(pid: int) -> list[int]:
    """The process and its descendants (from /proc/PID/task/*/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
    return out


def tree_memory_mib(pid: int) -> tuple[float, float]:
    """(sum of Pss, sum of Rss) in MiB over the process and its descendants, now."""
    pss = rss = 0
    for p in process_tree(pid):
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss += int(line.split()[1])
        except OSError:
            pass
    return pss / 1024, rss / 1024


class MemorySampler:
    """A process's memory with its child processes counted (#21: the release's agreement and the
    snapshot's sections run in forked children): the peak of the summed PSS (shared pages split between the processes sharing
    them, so nothing counted twice) and of the summed RSS (shared pages counted in each), sampled
    every 100 ms; os.wait4's ru_maxrss sees one process only."""

    def __init__(self, pid: int) -> None:
        import threading

        self.pid, self.pss, self.rss, self.done = pid, 0.0, 0.0, False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.done:
            pss, rss = tree_memory_mib(self.pid)
            self.pss, self.rss = max(self.pss, pss), max(self.rss, rss)
            time.sleep(0.1)

    def stop(self) -> tuple[float, float]:
        self.done = True
        self.thread.join()
        return self.pss, self.rss
