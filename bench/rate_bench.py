"""Benchmark of the rating hot path: many raters doing claim + submit over HTTP against gunicorn.

Run from the repository root:   .venv/bin/python bench/rate_bench.py [--raters 8] [--seconds 15]

Without a PostgreSQL DATABASE_URL it starts its own throwaway PostgreSQL + Redis
(`source .ci/services.sh; start_services`) and stops them afterwards.

Part 1 (HTTP): a project of --images images (target 3 ratings each), --raters simulated raters,
each a thread with its own keep-alive connection and session. Each opens the rate page once, then
loops: POST the 40 values of its assignment to the submit URL as the page's htmx does (one JSON
object; the peer's page posts a form), read the next assignment from the swapped-in fragment. 2% of submits are sent twice (a double click / retry).
Prints submissions/s, p50/p95/p99 latency, and checks the database afterwards: every accepted
submit has exactly one rating (lost = 0), no (rater, image) twice and no image beyond its target
(duplicated = 0). gunicorn runs with config/gunicorn.conf.py (what docker-compose deploys). Then the
same load against the peer, bench/rate_peer.py (the same submit + claim written the textbook Django
ORM way), on its own fresh project in the same run; the ratio is printed.

Part 2 (claim at scale): --big images (default 1,000,000) inserted with generate_series, then the
latency of `assignment_claim` (the service, in-process, one new rater per claim) and of the rate
page GET over HTTP (which claims). Then rounds (#22): the same images split into --batches open
rounds (default 50, each with its own priority; a fifth of them for chosen raters the claimers are
not among), and the claim's latency again, beside the single-queue figure of the same run.

Goals on 2 cores: >= 300 submissions/s, p95 < 50 ms, zero lost/duplicated, claim p95 < 5 ms at
1M images. The numbers printed are what this machine reached.
"""

from __future__ import annotations

import argparse
import http.client
import importlib
import os
import random
import re
import resource
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from _setup import free_port, reexec_with_services

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CSRF = "b" * 32
SLUG = "rate-bench"
BIG_SLUG = "rate-bench-big"
ASSIGNMENT_RE = re.compile(rb'data-assignment="(\d+)"')
CONTENT_LENGTH_RE = re.compile(rb"\r\ncontent-length: *(\d+)")


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


def setup_django() -> None:
    # Deployment-like settings for this process and gunicorn (it inherits the environment): the test
    # settings that .ci/with-services.sh exports set CONN_MAX_AGE = 0, a new PostgreSQL connection (and
    # its prepared statements, planned anew) for every request, which deployments never do (#21 goal 6:
    # 67 submissions/s with them against 274/s with these, measured one after the other).
    if os.environ.get("DJANGO_SETTINGS_MODULE", "config.settings.test") == "config.settings.test":
        os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.base"
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")
    os.environ["DJANGO_DEBUG"] = "0"
    os.environ.setdefault("DATABASE_CONN_MAX_AGE", "600")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", "--noinput", verbosity=0)


def seed_project(slug: str, n_images: int, target: int) -> int:
    from django.db import connection

    from annotation.models import Project

    project = Project.objects.create(name=slug, slug=slug, scale_max=7, target_ratings=target, lease_minutes=30)
    t0 = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute("SELECT setseed(0.42)")
        cur.execute(
            "INSERT INTO annotation_image (project_id, name, file, sha256, width, height, format, ethnicity, age, "
            "gender, prompt, source, extra, priority, flagged, adjudication, created_at) "
            "SELECT %s, 'img' || g || '.jpg', 'images/bench/' || g || '.jpg', md5(%s || '-' || g), 384, 384, 'JPEG', "
            "'', NULL, '', '', 'bench', '{}', random(), false, '', now() FROM generate_series(1, %s) g",
            [project.pk, slug, n_images])
        cur.execute("ANALYZE annotation_image")
    print(f"  seeded {n_images:,} images into {slug!r} in {time.perf_counter() - t0:.1f} s", flush=True)
    return project.pk


def make_raters(project_id: int, n: int, prefix: str) -> list[tuple[int, str]]:
    """n raters who are members, each with a logged-in session: [(user id, session key)]."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    from accounts.models import User
    from annotation.models import Membership

    SessionStore = importlib.import_module(settings.SESSION_ENGINE).SessionStore  # noqa: N806
    users = User.objects.bulk_create([User(email=f"{prefix}{i}@bench.invalid", role="rater") for i in range(n)])
    Membership.objects.bulk_create([Membership(project_id=project_id, user=u) for u in users])
    out = []
    for u in users:
        u.set_unusable_password()
        u.save(update_fields=["password"])
        s = SessionStore()
        s[SESSION_KEY] = str(u.pk)
        s[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
        s[HASH_SESSION_KEY] = u.get_session_auth_hash()
        s.create()
        out.append((u.pk, s.session_key or ""))
    return out


class Connection:
    """A minimal HTTP/1.1 keep-alive client. The load generator shares the two cores with the server
    and the database, so it spends as little CPU per request as it can (http.client took about
    0.2 ms a request). Answers must carry Content-Length (Django's CommonMiddleware sets it)."""

    def __init__(self, port: int):
        self.port = port
        self.sock: socket.socket | None = None
        self.buf = b""

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock, self.buf = None, b""

    def _recv(self) -> None:
        assert self.sock is not None
        chunk = self.sock.recv(262144)
        if not chunk:
            raise ConnectionResetError("server closed the connection")
        self.buf += chunk

    def request(self, raw: bytes) -> tuple[int, bytes]:
        for attempt in range(3):
            try:
                if self.sock is None:
                    self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
                    self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.sock.sendall(raw)
                while (end := self.buf.find(b"\r\n\r\n")) < 0:
                    self._recv()
                head, self.buf = self.buf[:end].lower(), self.buf[end + 4:]
                found = CONTENT_LENGTH_RE.search(head)
                if found is None:
                    raise AssertionError(f"answer without Content-Length: {head[:200]!r}")
                length = int(found.group(1))
                while len(self.buf) < length:
                    self._recv()
                body, self.buf = self.buf[:length], self.buf[length:]
                if b"\r\nconnection: close" in head:
                    self.close()
                return int(head[9:12]), body
            except (ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


class Rater(threading.Thread):
    def __init__(self, port: int, session: str, deadline: float, rng: random.Random, names: tuple[str, ...],
                 slug: str, submit_prefix: str, interval: float = 0.0, as_json: bool = False):
        super().__init__(daemon=True)
        self.port, self.deadline, self.rng = port, deadline, rng
        # The body as the page sends it: our htmx posts one JSON object, the peer's page a form.
        self.as_json = as_json
        self.slug, self.submit_prefix = slug, submit_prefix
        # Open loop (interval > 0): submits are due at a fixed pace, and latency counts from when a
        # submit was due, so time spent waiting behind a slow answer is counted too.
        self.interval = interval
        self.headers = (f"Host: 127.0.0.1\r\nCookie: sessionid={session}; csrftoken={CSRF}\r\nX-CSRFToken: {CSRF}\r\n"
                        "HX-Request: true\r\n")
        # the form's field names, encoded once: "emo%3AAmusement=" ... or '"emo:Amusement": ' ...
        self.fields = [f'"emo:{n}": ' if as_json else urlencode({f"emo:{n}": ""}) for n in names]
        self.latencies: list[float] = []
        self.accepted: list[int] = []
        self.errors: list[str] = []
        self.replays = 0

    def raw(self, method: str, url: str, body: str = "") -> bytes:
        if not body:
            return f"{method} {url} HTTP/1.1\r\n{self.headers}\r\n".encode()
        kind = "application/json" if self.as_json else "application/x-www-form-urlencoded"
        return (f"{method} {url} HTTP/1.1\r\n{self.headers}Content-Type: {kind}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n{body}").encode()

    def body(self, values: list[int], aid: int) -> str:
        if self.as_json:
            pairs = [f'{f}"{v}"' for f, v in zip(self.fields, values, strict=True)]
            return "{" + ", ".join([*pairs, f'"client_token": "t{aid}"', '"active_seconds": "31.5"']) + "}"
        return "&".join([*(f + str(v) for f, v in zip(self.fields, values, strict=True)),
                         f"client_token=t{aid}", "active_seconds=31.5"])

    def run(self) -> None:
        conn = Connection(self.port)
        rnd = self.rng.random
        try:
            status, body = conn.request(self.raw("GET", f"/projects/{self.slug}/rate/"))
            m = ASSIGNMENT_RE.search(body)
            due = time.perf_counter() + rnd() * self.interval
            while m and time.perf_counter() < self.deadline:
                aid = int(m.group(1))
                values = [0 if rnd() < 0.8 else self.rng.randint(1, 7) for _ in self.fields]
                request = self.raw("POST", f"/{self.submit_prefix}/{self.slug}/rate/{aid}/submit/",
                                   self.body(values, aid))
                if self.interval:
                    time.sleep(max(0.0, due - time.perf_counter()))
                    t0, due = due, due + self.interval
                else:
                    t0 = time.perf_counter()
                status, body = conn.request(request)
                self.latencies.append(time.perf_counter() - t0)
                if status != 200:
                    self.errors.append(f"{status}: {body[:200]!r}")
                    return
                self.accepted.append(aid)
                if rnd() < 0.02:  # a double click / retry of the same submit
                    self.replays += 1
                    st2, _ = conn.request(request)
                    if st2 != 200:
                        self.errors.append(f"replay answered {st2}")
                m = ASSIGNMENT_RE.search(body)
        except Exception as exc:  # noqa: BLE001 - reported below
            self.errors.append(repr(exc))
        finally:
            conn.close()


def machine_cpu_seconds() -> float:
    """Busy CPU seconds of the whole machine so far (all cores; /proc/stat), or NaN elsewhere."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return float("nan")
    ticks = [int(x) for x in fields]
    busy = sum(ticks) - ticks[3] - (ticks[4] if len(ticks) > 4 else 0)  # minus idle and iowait
    return busy / os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(roots: set[int]) -> dict[int, float]:
    """CPU seconds so far of the processes `roots` and their children (/proc), by pid."""
    out: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            raw = stat.read_text()
        except OSError:
            continue
        pid, fields = int(stat.parent.name), raw[raw.rindex(")") + 2:].split()
        if pid in roots or int(fields[1]) in roots:
            out[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def postmaster_pid() -> int:
    """The pid of our PostgreSQL server (the parent of this connection's backend)."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        backend = cur.fetchone()[0]
    raw = Path(f"/proc/{backend}/stat").read_text()
    return int(raw[raw.rindex(")") + 2:].split()[1])


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def own_cpu_seconds() -> float:
    """CPU seconds used by this process (the load generator's threads) so far."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def start_gunicorn(port: int, workers: int, threads: int, app: str = "config.wsgi:application"
                   ) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost"}
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("gunicorn")), app, "--pythonpath", "bench", "--config", "config/gunicorn.conf.py",
         "-w", str(workers), "--threads", str(threads), "-b", f"127.0.0.1:{port}", "--log-level", "warning"],
        cwd=ROOT, env=env)
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.terminate()
    raise SystemExit("gunicorn did not start")


def serve_raters(args: argparse.Namespace, label: str, slug: str, app: str, submit_prefix: str,
                 as_json: bool) -> dict[str, float]:
    """One project of --images images, --raters raters claiming and submitting for --seconds against
    gunicorn running `app`; prints and returns the figures."""
    from annotation import taxonomy
    from annotation.models import Assignment, Rating

    pid = seed_project(slug, args.images, 3)
    raters = make_raters(pid, args.raters, f"{slug}-")
    port = free_port()
    server = start_gunicorn(port, args.workers, args.threads, app)
    try:
        # warm-up: one request per worker process
        for _ in range(args.workers * 2):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            c.request("GET", "/accounts/login/")
            c.getresponse().read()
            c.close()
        deadline = time.perf_counter() + args.seconds
        interval = args.raters / args.rate if args.rate else 0.0
        threads = [Rater(port, sess, deadline, random.Random(i), taxonomy.EMOTIONS, slug, submit_prefix, interval,
                         as_json) for i, (_, sess) in enumerate(raters)]
        t0, cpu0, machine0 = time.perf_counter(), own_cpu_seconds(), machine_cpu_seconds()
        roots = {"gunicorn": {server.pid}, "postgres": {postmaster_pid()}}
        procs0 = {name: process_cpu_seconds(pids) for name, pids in roots.items()}
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t0
        client_cpu, machine_cpu = own_cpu_seconds() - cpu0, machine_cpu_seconds() - machine0
        server_cpu = {name: cpu_delta(procs0[name], process_cpu_seconds(pids)) for name, pids in roots.items()}
    finally:
        server.terminate()
        server.wait(10)
    lat = [x for t in threads for x in t.latencies]
    accepted = [a for t in threads for a in t.accepted]
    errors = [e for t in threads for e in t.errors]
    replays = sum(t.replays for t in threads)
    by_assignment = dict(Assignment.objects.filter(pk__in=accepted).values_list("pk", "rating_id"))
    lost = sum(1 for a in accepted if by_assignment.get(a) is None)
    ratings = Rating.objects.filter(project_id=pid)
    n_ratings = ratings.count()
    pairs = set(ratings.values_list("rater_id", "image_id"))
    from django.db.models import Count

    over = ratings.values("image_id").annotate(n=Count("id")).filter(n__gt=3).count()
    dup = (n_ratings - len(pairs)) + max(0, n_ratings - len(set(accepted)))
    rate = len(accepted) / elapsed
    print(f"  {label}: {len(accepted):,} submissions in {elapsed:.1f} s = {rate:,.0f} submissions/s "
          f"(+{replays} replayed double submits)")
    print(f"    latency (submit + next claim + fragment): p50 {1000 * pct(lat, 50):.1f} ms, "
          f"p95 {1000 * pct(lat, 95):.1f} ms, p99 {1000 * pct(lat, 99):.1f} ms")
    print(f"    ratings stored: {n_ratings:,}; lost: {lost}; duplicated: {dup}; images beyond target: {over}; "
          f"client errors: {len(errors)}")
    n = max(1, len(accepted) + replays)
    per_request = ", ".join(f"{name} {1000 * cpu / n:.2f}" for name, cpu in
                            [("load generator", client_cpu), *server_cpu.items()])
    print(f"    CPU per submit, ms: {per_request} (machine busy {machine_cpu / elapsed:.2f} of {os.cpu_count()} "
          f"cores, other work on the machine included)")
    for e in errors[:5]:
        print(f"    error: {e}")
    return {"rate": rate, "p95": pct(lat, 95), "p50": pct(lat, 50)}


def http_part(args: argparse.Namespace) -> None:
    load = (f"open loop, {args.rate:g} submits/s offered" if args.rate
            else "closed loop, each rater submits again as soon as answered")
    print(f"\n== HTTP claim + submit: {args.raters} raters ({load}), {args.images:,} images x target 3, "
          f"gunicorn {args.workers} workers (gthread x{args.threads}), {args.seconds} s each ==", flush=True)
    ours = serve_raters(args, "emorate", SLUG, "config.wsgi:application", "projects", as_json=True)
    if args.skip_peer:
        return
    peer = serve_raters(args, "peer (textbook Django ORM view, bench/rate_peer.py)", SLUG + "-peer",
                        "rate_peer:application", "peer", as_json=False)
    print(f"  ratio ours/peer: throughput {ours['rate'] / peer['rate']:.2f}x, "
          f"p95 latency {ours['p95'] / peer['p95']:.2f}x (lower is better)")


def big_part(args: argparse.Namespace) -> None:
    from django.db import connection

    from annotation.models import Project
    from annotation.rating import assignment_claim, rating_submit

    print(f"\n== claim latency at {args.big:,} images ==", flush=True)
    pid = seed_project(BIG_SLUG, args.big, 3)
    project = Project.objects.get(pk=pid)
    raters = make_raters(pid, 2 * args.claims + 50, "big")
    from accounts.models import User

    users = list(User.objects.filter(pk__in=[u for u, _ in raters]).order_by("pk"))
    # some history first: 50 raters rate 20 images each, so the top of the queue is partly full
    for u in users[:50]:
        for _ in range(20):
            a = assignment_claim(project=project, rater=u)
            assert a is not None
            rating_submit(assignment=a, rater=u, values=[0] * 40)
    with connection.cursor() as cur:
        cur.execute("ANALYZE annotation_assignment")
        cur.execute("ANALYZE annotation_rating")
    def timed_claims(claimers: list[Any]) -> list[float]:
        out = []
        for u in claimers:
            t0 = time.perf_counter()
            a = assignment_claim(project=project, rater=u)
            out.append(time.perf_counter() - t0)
            assert a is not None
        return out

    times = timed_claims(users[50:50 + args.claims])
    print(f"  assignment_claim, burst (in-process service, {len(times)} new raters right after ANALYZE, while the "
          f"open leases grow from 0 to {len(times)}): p50 {1000 * pct(times, 50):.2f} ms, "
          f"p95 {1000 * pct(times, 95):.2f} ms, max {1000 * max(times):.2f} ms")
    # Steady state: as many raters hold a lease as just claimed, and the statistics know it (what
    # autovacuum's ANALYZE gives a running project). In the burst above the planner's statistics
    # still said "no open leases" and the plan could count leases through the wrong index.
    with connection.cursor() as cur:
        cur.execute("ANALYZE annotation_assignment")
    steady = timed_claims(users[50 + args.claims:])
    print(f"  assignment_claim, steady state ({len(steady)} more new raters, {len(times)} leases held, statistics "
          f"current): p50 {1000 * pct(steady, 50):.2f} ms, p95 {1000 * pct(steady, 95):.2f} ms, "
          f"max {1000 * max(steady):.2f} ms")
    # Peer, same data and run: the textbook claim that counts each candidate's ratings and open
    # leases on the fly (no counter column, no partial index), locked with SKIP LOCKED, rolled back.
    from django.db import transaction
    peer_sql = """
        SELECT i.id FROM annotation_image i
        WHERE i.project_id = %s AND NOT i.flagged AND i.file <> ''
          AND NOT EXISTS (SELECT 1 FROM annotation_rating r WHERE r.image_id = i.id AND r.rater_id = %s)
          AND (SELECT count(*) FROM annotation_rating r WHERE r.image_id = i.id AND r.emotion IS NULL)
            + (SELECT count(*) FROM annotation_assignment a WHERE a.image_id = i.id AND a.status = 'open'
               AND a.expires_at > now()) < 3
        ORDER BY i.priority DESC, i.id LIMIT 1 FOR UPDATE OF i SKIP LOCKED"""
    peer_times = []
    for u in users[50 + args.claims:]:
        with transaction.atomic(), connection.cursor() as cur:
            t0 = time.perf_counter()
            cur.execute(peer_sql, [pid, u.pk])
            assert cur.fetchone() is not None
            peer_times.append(time.perf_counter() - t0)
            transaction.set_rollback(True)
    print(f"  peer (count ratings and leases per candidate, SKIP LOCKED): p50 {1000 * pct(peer_times, 50):.2f} ms, "
          f"p95 {1000 * pct(peer_times, 95):.2f} ms; ratio of p95 peer/ours (steady state) "
          f"{pct(peer_times, 95) / pct(steady, 95):.1f}x")
    # the same over HTTP: the rate page GET (session, claim, render) for raters who hold no lease yet
    lat = rate_page_latencies(args, pid, "bighttp")
    print(f"  rate page GET over HTTP (claims a lease, full page): p50 {1000 * pct(lat, 50):.1f} ms, "
          f"p95 {1000 * pct(lat, 95):.1f} ms")
    if args.batches > 0:
        rounds_part(args, project, steady, timed_claims)


def rate_page_latencies(args: argparse.Namespace, project_id: int, prefix: str, marker: bytes = b"") -> list[float]:
    """Seconds per rate page GET (session, claim, render) for 100 new raters who hold no lease yet,
    against a fresh gunicorn; each page must show an assignment (and `marker`, when given)."""
    more = make_raters(project_id, 100, prefix)
    port = free_port()
    server = start_gunicorn(port, args.workers, args.threads)
    lat = []
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _, sess in more:
            t0 = time.perf_counter()
            conn.request("GET", f"/projects/{BIG_SLUG}/rate/", headers={"Cookie": f"sessionid={sess}", "Host": "127.0.0.1"})
            resp = conn.getresponse()
            body = resp.read()
            lat.append(time.perf_counter() - t0)
            assert resp.status == 200 and ASSIGNMENT_RE.search(body) and marker in body, resp.status
        conn.close()
    finally:
        server.terminate()
        server.wait(10)
    return lat


def rounds_part(args: argparse.Namespace, project: Any, reference: list[float], timed_claims: Any) -> None:
    """The claim with the project in rounds: --batches open rounds over the same images."""
    from django.db import connection
    from django.utils import timezone

    from accounts.models import User
    from annotation.models import Batch, BatchState

    n = args.batches
    print(f"\n== claim latency at {args.big:,} images in {n} open rounds ==", flush=True)
    t0 = time.perf_counter()
    rng = random.Random(22)
    now = timezone.now()
    batches = Batch.objects.bulk_create([
        Batch(project=project, name=f"round {k}", state=BatchState.OPEN, target_ratings=3 + k % 2,
              priority=rng.randrange(1000), opened_at=now, all_raters=k % 5 != 0) for k in range(n)])
    chosen = make_raters(project.pk, 5, "roundchosen")
    for b in batches:
        if not b.all_raters:
            b.raters.set([u for u, _ in chosen])
    ids = [b.pk for b in batches]
    with connection.cursor() as cur:
        # image i goes to round i mod n; its room as the trigger keeps it
        cur.execute(
            "INSERT INTO annotation_batchimage (batch_id, image_id, priority, open, added_at) "
            "SELECT (%s::bigint[])[1 + i.id %% %s], i.id, i.priority, "
            "NOT i.flagged AND i.file <> '' AND i.n_ratings < 3 + i.extra_target, now() "
            "FROM annotation_image i WHERE i.project_id = %s", [ids, n, project.pk])
        cur.execute("UPDATE annotation_batch b SET n_images = (SELECT count(*) FROM annotation_batchimage bi "
                    "WHERE bi.batch_id = b.id) WHERE b.project_id = %s", [project.pk])
        cur.execute("ANALYZE annotation_batchimage")
        cur.execute("ANALYZE annotation_batch")
        cur.execute("ANALYZE annotation_assignment")
    print(f"  {n} rounds of {args.big // n:,} images made in {time.perf_counter() - t0:.1f} s "
          f"({sum(1 for b in batches if not b.all_raters)} for 5 chosen raters only)", flush=True)
    raters = make_raters(project.pk, 2 * args.claims, "round")
    users = list(User.objects.filter(pk__in=[u for u, _ in raters]).order_by("pk"))
    burst = timed_claims(users[:args.claims])
    print(f"  assignment_claim in rounds, burst ({len(burst)} new raters): p50 {1000 * pct(burst, 50):.2f} ms, "
          f"p95 {1000 * pct(burst, 95):.2f} ms, max {1000 * max(burst):.2f} ms")
    with connection.cursor() as cur:
        cur.execute("ANALYZE annotation_assignment")
    steady = timed_claims(users[args.claims:])
    served = Batch.objects.filter(pk__in=ids).order_by("-priority", "id").values_list("pk", flat=True)
    print(f"  assignment_claim in rounds, steady state ({len(steady)} more new raters): "
          f"p50 {1000 * pct(steady, 50):.2f} ms, p95 {1000 * pct(steady, 95):.2f} ms, max {1000 * max(steady):.2f} ms; "
          f"ratio of p95 rounds/one queue (steady state, same run) {pct(steady, 95) / pct(reference, 95):.2f}")
    from annotation.models import Assignment

    top = next(pk for pk in served if Batch.objects.get(pk=pk).all_raters)
    assert not Assignment.objects.filter(rater__in=users).exclude(batch_id=top).exists(), \
        "claims came from another round than the best open one"
    # the rate page over HTTP in rounds: the claim, and the rater's line for the round ("Round 2: 3 of 200")
    lat = rate_page_latencies(args, project.pk, "roundhttp", marker=b'id="rate-round"')
    print(f"  rate page GET over HTTP in rounds (claims a lease, shows the round): p50 {1000 * pct(lat, 50):.1f} ms, "
          f"p95 {1000 * pct(lat, 95):.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raters", type=int, default=8, help="concurrent raters (closed loop: each waits for its answer)")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--rate", type=float, default=0,
                        help="offer this many submits/s in all (open loop; latency counted from when each was due); "
                             "0 = closed loop")
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2,
                        help="gunicorn workers (default as config/gunicorn.conf.py: one per core)")
    parser.add_argument("--threads", type=int, default=2, help="gunicorn threads per worker (config/gunicorn.conf.py)")
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--claims", type=int, default=300)
    parser.add_argument("--batches", type=int, default=50,
                        help="rounds the big project is then split into for the claim in rounds (0 = skip)")
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--skip-peer", action="store_true", help="HTTP part: skip the textbook peer server")
    parser.add_argument("--skip-big", action="store_true")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres") and not os.environ.get("EMORATE_BENCH_INNER"):
        return reexec_with_services(__file__)
    setup_django()
    import platform

    print(f"rate_bench on {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    if not args.skip_http:
        http_part(args)
    if not args.skip_big and args.big > 0:  # --big 0: no claim-at-scale part (nothing to claim from)
        big_part(args)
    print("\ngoals: >= 300 submissions/s, p95 < 50 ms, 0 lost/duplicated, claim p95 < 5 ms at 1M images "
          "(also in 50 open rounds)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
