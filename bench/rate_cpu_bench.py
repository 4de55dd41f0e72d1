"""What one submit costs in CPU: ours beside another checkout's, taking turns (#21 goal 6).

Run from the repository root:
    .venv/bin/python bench/rate_cpu_bench.py [--before-ref a83a6b1 | --before /path/to/checkout]
                                             [--submits 400] [--rounds 4]
By default the reference is the code before #21 (commit a83a6b1, the start of that round), checked
out into a temporary git worktree that is removed afterwards.

rate_bench's closed loop (8 raters on 2 cores shared by server, database and load generator) moves
by 10-20% in throughput and p95 from one run to the next, more while other work shares the machine;
what a submit costs moves much less. This bench makes the submits rate_bench's raters make (the
rate page's JSON POST of 40 values, answered by the next assignment's fragment), through Django's
whole middleware stack in-process (django.test.Client: sessions in Redis, the user, the project,
the rating, the next claim, the template), one after another over 8 raters, and reads the CPU the
Python process and its PostgreSQL backend spent per submit.

Each checkout runs in processes of its own against a database of its own, migrated by its own code
(so with its own triggers), and a Redis database of its own; the two take turns for --rounds rounds,
each on a fresh project of 4,000 images (target 3) after 200 submits of warm-up. Every submit must
answer 200 with a next assignment, and the ratings stored are counted against the submits made.
Prints the per-round figures and the medians, and ours over theirs. The Client's own work (building
the request, reading the answer) is inside the Python figure for both alike.

Without a PostgreSQL DATABASE_URL it starts its own throwaway PostgreSQL + Redis.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from _setup import reexec_with_services

ROOT = Path(__file__).resolve().parent.parent
N_IMAGES, TARGET, N_RATERS, WARMUP = 4000, 3, 8, 200
BEFORE_REF = "a83a6b1"


def _with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def _backend_cpu() -> float:
    """CPU seconds of this connection's PostgreSQL backend (user + system, from /proc)."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        backend = cur.fetchone()[0]
    fields = Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child(checkout: Path, submits: int, seed: int) -> dict[str, float]:
    """One round in this process, on `checkout`'s code: the per-submit CPU figures."""
    # rate_bench puts this repository first on the path when imported; the checkout's code must win.
    import rate_bench as rb

    sys.path[:] = [str(checkout)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT]
    os.chdir(checkout)
    rb.setup_django()
    from django.conf import settings
    from django.test import Client

    from annotation import taxonomy
    from annotation.models import Rating

    assert Path(sys.modules["annotation"].__file__ or "").resolve().is_relative_to(checkout.resolve()), \
        "the checkout's own code must be the one loaded"
    slug = f"rate-cpu-{seed}-{random.randrange(10**9)}"
    project_id = rb.seed_project(slug, N_IMAGES, TARGET)
    rng = random.Random(seed)
    raters: list[list[Any]] = []
    for _, session_key in rb.make_raters(project_id, N_RATERS, f"{slug}-r"):
        client = Client(HTTP_HOST="127.0.0.1")
        client.cookies[settings.SESSION_COOKIE_NAME] = session_key
        page = client.get(f"/projects/{slug}/rate/", HTTP_HX_REQUEST="true")
        found = rb.ASSIGNMENT_RE.search(page.content)
        if page.status_code != 200 or found is None:
            raise AssertionError(f"the rate page answered {page.status_code} without an assignment")
        raters.append([client, int(found.group(1))])
    names = taxonomy.EMOTIONS

    def submit(n: int) -> None:
        for k in range(n):
            rater = raters[k % len(raters)]
            client, aid = rater
            body = {f"emo:{name}": str(0 if rng.random() < 0.8 else rng.randint(1, 7)) for name in names}
            body |= {"client_token": f"t{aid}", "active_seconds": "31.5"}
            answer = client.post(f"/projects/{slug}/rate/{aid}/submit/", json.dumps(body),
                                 content_type="application/json", HTTP_HX_REQUEST="true")
            found = rb.ASSIGNMENT_RE.search(answer.content)
            if answer.status_code != 200 or found is None:
                raise AssertionError(f"submit {aid} answered {answer.status_code}: {answer.content[:300]!r}")
            rater[1] = int(found.group(1))

    submit(WARMUP)
    py0, pg0, wall0 = time.process_time(), _backend_cpu(), time.perf_counter()
    submit(submits)
    py, pg, wall = time.process_time() - py0, _backend_cpu() - pg0, time.perf_counter() - wall0
    stored = Rating.objects.filter(project_id=project_id).count()
    if stored != WARMUP + submits:
        raise AssertionError(f"{stored} ratings stored for {WARMUP + submits} submits")
    return {"python_ms": py / submits * 1e3, "postgres_ms": pg / submits * 1e3, "wall_ms": wall / submits * 1e3}


def _databases(base_url: str, names: list[str]) -> None:
    import psycopg2

    conn = psycopg2.connect(base_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        for name in names:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
            cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, help="the other checkout (a folder), instead of --before-ref")
    parser.add_argument("--before-ref", default=BEFORE_REF,
                        help=f"the git commit to compare with, checked out into a temporary worktree (default {BEFORE_REF}:"
                             " the code before #21)")
    parser.add_argument("--submits", type=int, default=400, help="measured submits per round and checkout")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print("RESULT " + json.dumps(child(args.child, args.submits, args.seed)), flush=True)
        return 0
    if not os.environ.get("DATABASE_URL", "").startswith("postgres") and not os.environ.get("EMORATE_BENCH_INNER"):
        return reexec_with_services(__file__)
    if args.before is not None:
        return compare(args, args.before.resolve())
    with tempfile.TemporaryDirectory(prefix="emorate-rate-cpu-") as scratch:
        worktree = Path(scratch) / "before"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(worktree), args.before_ref],
                       check=True)
        try:
            return compare(args, worktree)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(worktree)], check=False)


def compare(args: argparse.Namespace, before: Path) -> int:
    if not (before / "annotation").is_dir():
        raise SystemExit(f"--before {before}: not a checkout of this project (no annotation/ folder)")
    database, redis = os.environ["DATABASE_URL"], os.environ.get("REDIS_URL", "")
    if not redis:
        raise SystemExit("REDIS_URL is not set: the rate loop's sessions live in Redis")
    checkouts = {"ours": (ROOT, "rate_cpu_ours", "/1"), "before": (before, "rate_cpu_before", "/2")}
    _databases(database, [db for _, db, _ in checkouts.values()])
    print(f"rate_cpu_bench: {args.submits} submits per round, {args.rounds} rounds, ours {ROOT} vs before {before}"
          + (f" ({args.before_ref})" if args.before is None else ""))
    figures: dict[str, list[dict[str, float]]] = {name: [] for name in checkouts}
    for round_no in range(args.rounds):
        order = list(checkouts) if round_no % 2 == 0 else list(reversed(checkouts))
        for name in order:
            path, db, redis_db = checkouts[name]
            env = dict(os.environ, DATABASE_URL=_with_path(database, "/" + db), REDIS_URL=_with_path(redis, redis_db))
            env.pop("DJANGO_SETTINGS_MODULE", None)
            done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", str(path),
                                   "--submits", str(args.submits), "--seed", str(round_no + 1)],
                                  env=env, capture_output=True, text=True, cwd=path)
            lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
            if done.returncode != 0 or not lines:
                sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
                raise SystemExit(f"{name}: the round failed (exit {done.returncode})")
            got = json.loads(lines[-1][len("RESULT "):])
            figures[name].append(got)
            load = os.getloadavg()[0]
            print(f"  round {round_no + 1} {name:6s}: Python {got['python_ms']:.3f} ms, PostgreSQL "
                  f"{got['postgres_ms']:.3f} ms, wall {got['wall_ms']:.3f} ms per submit (load {load:.1f})", flush=True)
    med = {name: {key: statistics.median(r[key] for r in rows) for key in ("python_ms", "postgres_ms")}
           for name, rows in figures.items()}
    for name in checkouts:
        total = med[name]["python_ms"] + med[name]["postgres_ms"]
        print(f"{name:6s} median: Python {med[name]['python_ms']:.3f} ms + PostgreSQL {med[name]['postgres_ms']:.3f} ms"
              f" = {total:.3f} ms CPU per submit")
    ours = med["ours"]["python_ms"] + med["ours"]["postgres_ms"]
    theirs = med["before"]["python_ms"] + med["before"]["postgres_ms"]
    print(f"ours / before: {ours / theirs:.3f} CPU per submit (Python {med['ours']['python_ms'] / med['before']['python_ms']:.3f}, "
          f"PostgreSQL {med['ours']['postgres_ms'] / med['before']['postgres_ms']:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
