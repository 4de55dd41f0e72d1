"""Load test with faults: raters and a lead against gunicorn + PostgreSQL + Redis + a Celery worker.

Run from the repository root:   .venv/bin/python bench/load_bench.py [--minutes 3] [--raters 16]

Without a PostgreSQL DATABASE_URL it starts its own throwaway PostgreSQL (`.ci/services.sh`). It
always starts its own redis-server (appendonly, as in production) so that it can stop and start
it, gunicorn (gthread) and one `celery -A config worker` on all four queues, all on loopback.

For --minutes, --raters threads each claim + submit over HTTP as the rate page does (htmx POST
of the 40 values, the next assignment read from the swapped-in fragment), as fast as the server
answers unless --think-ms is set. A submit that fails on the network or with a 5xx is sent again
for the same assignment with the same client_token, as the browser does (the submit is
idempotent), until it is answered 2xx; only then it counts as sent. One lead thread polls the
overview, agreement and jobs dashboards every second and POSTs "Recompute agreement" every 15 s
(CSRF token from the page's hx-headers, cookie from Set-Cookie).

Faults: at 1/3 of the run the worker is SIGKILLed (preferably while an agreement snapshot is
running) and a new one starts 10 s later; at 2/3 Redis (broker, cache, session copies) is
stopped with SIGTERM for --redis-down seconds (the lead asks for a recompute meanwhile) and
started again on the same port and data.

Printed: requests served, errors with status codes, p50/p95 latency (per kind of request), ratings
sent versus stored (must be equal; the exit status is 1 otherwise), duplicated ratings, and
whether an agreement snapshot covering every rating completes after the faults.
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

from _setup import free_port, reexec_with_services
from rate_bench import ASSIGNMENT_RE, make_raters, pct, seed_project

ROOT = Path(__file__).resolve().parent.parent
SLUG = "load-bench"
CSRF_RE = re.compile(rb'hx-headers=\'\{"X-CSRFToken": "([^"]+)"\}\'')
NETWORK_ERRORS = (OSError, http.client.HTTPException)
RECOMPUTE_EVERY = 15.0
SUBMIT_GIVE_UP = 120.0  # seconds a rater keeps retrying one submit before it is reported as abandoned


def _wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


# --- the processes the bench controls -----------------------------------------------------------


class Redis:
    """A redis-server on its own port and folder; appendonly so a restart keeps queued messages."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.dir = workdir / "redis"
        self.dir.mkdir()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "yes",
             "--dir", str(self.dir), "--logfile", str(self.dir / "redis.log")], stdout=subprocess.DEVNULL)
        _wait_port(self.port)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)
            self.proc = None


def start_gunicorn(port: int, workers: int, threads: int, log: Path) -> subprocess.Popen[bytes]:
    """gunicorn as in production (gthread), its output (and the app's warnings) in `log`."""
    env = {**os.environ, "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost"}
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("gunicorn")), "config.wsgi:application", "-w", str(workers), "-k",
             "gthread", "--threads", str(threads), "--keep-alive", "30", "-b", f"127.0.0.1:{port}", "--log-level",
             "warning"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    _wait_port(port, timeout=30)
    for _ in range(2 * workers):  # warm-up: every worker process imports and renders once
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/accounts/login/", headers={"Host": "127.0.0.1"})
        conn.getresponse().read()
        conn.close()
    return proc


class CeleryWorker:
    """`celery -A config worker` on every queue, one task at a time, log appended to a file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo",
                 "--queues", "default,agreement,releases,gpu", "--without-gossip", "--without-mingle",
                 "--without-heartbeat", "--loglevel", "INFO"], cwd=ROOT, env=self.env, stdout=out,
                stderr=subprocess.STDOUT)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            self.proc = None


# --- measurements -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    kind: str
    phase: str
    outcome: str  # "ok", an HTTP status code, or an exception's class name
    seconds: float


@dataclass
class Recorder:
    """Every request's outcome and latency; `phase` names the fault in force when it was sent."""

    phase: str = "steady"
    samples: list[Sample] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, outcome: str, seconds: float, phase: str) -> None:
        with self.lock:
            self.samples.append(Sample(kind, phase, outcome, seconds))


class Client:
    """One keep-alive connection with its own cookies, as one browser tab."""

    def __init__(self, port: int, recorder: Recorder, cookies: dict[str, str]) -> None:
        self.port, self.recorder, self.cookies = port, recorder, cookies
        self.conn: http.client.HTTPConnection | None = None

    def request(self, kind: str, method: str, url: str, body: str | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes] | None:
        """(status, body), or None after a network error (recorded, connection dropped)."""
        phase = self.recorder.phase
        hdrs = {"Host": "127.0.0.1", "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()),
                **(headers or {})}
        if body is not None:
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        t0 = time.perf_counter()
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            self.conn.request(method, url, body=body, headers=hdrs)
            resp = self.conn.getresponse()
            data = resp.read()
        except NETWORK_ERRORS as exc:
            self.recorder.add(kind, type(exc).__name__, time.perf_counter() - t0, phase)
            self.close()
            return None
        for header in resp.headers.get_all("Set-Cookie") or []:
            self.cookies.update({k: m.value for k, m in SimpleCookie(header).items()})
        self.recorder.add(kind, "ok" if 200 <= resp.status < 300 else str(resp.status), time.perf_counter() - t0,
                          phase)
        return resp.status, data

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Rater(threading.Thread):
    def __init__(self, port: int, session: str, recorder: Recorder, stop: threading.Event, seed: int,
                 names: tuple[str, ...], prefix: str, think: float) -> None:
        super().__init__(daemon=True)
        self.client = Client(port, recorder, {"sessionid": session})
        self.stop, self.rng, self.names, self.prefix, self.think = stop, random.Random(seed), names, prefix, think
        self.sent: list[int] = []  # assignments whose submit was answered 2xx
        self.abandoned: list[int] = []  # submits still unanswered after SUBMIT_GIVE_UP seconds
        self.refused: list[str] = []  # 4xx answers to a submit (the assignment is dropped)
        self.csrf = ""

    def _claim(self) -> int | None:
        """Open the rate page (claims an assignment); retried like a reload until it answers."""
        while not self.stop.is_set():
            got = self.client.request("rate page", "GET", f"/projects/{SLUG}/rate/")
            if got is not None and got[0] == 200:
                token = CSRF_RE.search(got[1])
                self.csrf = token.group(1).decode() if token else self.csrf
                m = ASSIGNMENT_RE.search(got[1])
                return int(m.group(1)) if m else None
            time.sleep(0.5)
        return None

    def _submit(self, aid: int) -> bytes | None:
        """POST the 40 values until answered 2xx (retrying network errors and 5xx); the next fragment."""
        values = {f"{self.prefix}{n}": (0 if self.rng.random() < 0.8 else self.rng.randint(1, 7)) for n in self.names}
        form = urlencode({**values, "client_token": f"load-{aid}", "active_seconds": "31.5"})
        headers = {"HX-Request": "true", "X-CSRFToken": self.csrf}
        started, backoff = time.monotonic(), 0.2
        while time.monotonic() - started < SUBMIT_GIVE_UP:
            got = self.client.request("submit", "POST", f"/projects/{SLUG}/rate/{aid}/submit/", form, headers)
            if got is not None and 200 <= got[0] < 300:
                self.sent.append(aid)
                return got[1]
            if got is not None and got[0] < 500:
                self.refused.append(f"{got[0]}: {got[1][:160]!r}")
                return None
            time.sleep(backoff)
            backoff = min(2.0, backoff * 2)
        self.abandoned.append(aid)
        return None

    def run(self) -> None:
        aid = self._claim()
        while aid is not None and not self.stop.is_set():
            if self.think:
                time.sleep(self.rng.uniform(0.5, 1.5) * self.think)
            fragment = self._submit(aid)
            m = ASSIGNMENT_RE.search(fragment) if fragment is not None else None
            aid = int(m.group(1)) if m else (self._claim() if fragment is None else None)
        self.client.close()


class Lead(threading.Thread):
    """Polls the dashboards every second; asks for an agreement recompute now and then."""

    def __init__(self, port: int, session: str, recorder: Recorder, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.client = Client(port, recorder, {"sessionid": session})
        self.stop = stop
        self.csrf = ""
        self.recomputes: list[tuple[str, str]] = []  # (phase, outcome)

    def recompute(self, client: Client | None = None) -> int | None:
        """POST "Recompute agreement" (on the lead's connection, or on `client`); the status or None."""
        client = client or self.client
        phase = client.recorder.phase
        got = client.request("recompute", "POST", f"/projects/{SLUG}/dashboard/agreement/recompute/", "",
                             {"HX-Request": "true", "X-CSRFToken": self.csrf})
        self.recomputes.append((phase, "network error" if got is None else str(got[0])))
        return None if got is None else got[0]

    def second_tab(self) -> Client:
        """Another connection with the lead's cookies (a second browser tab)."""
        return Client(self.client.port, self.client.recorder, dict(self.client.cookies))

    def run(self) -> None:
        last_recompute = time.monotonic()
        base = f"/projects/{SLUG}/dashboard"
        while not self.stop.is_set():
            t0 = time.monotonic()
            got = self.client.request("dashboard", "GET", f"{base}/")
            if got is not None and got[0] == 200 and (m := CSRF_RE.search(got[1])):
                self.csrf = m.group(1).decode()
            self.client.request("agreement", "GET", f"{base}/agreement/")
            self.client.request("jobs", "GET", f"{base}/jobs/", headers={"HX-Request": "true"})
            if self.csrf and time.monotonic() - last_recompute > RECOMPUTE_EVERY:
                self.recompute()
                last_recompute = time.monotonic()
            self.stop.wait(max(0.0, 1.0 - (time.monotonic() - t0)))
        self.client.close()


# --- set-up and the run -------------------------------------------------------------------------


def setup_django(redis_url: str, visibility_timeout: int) -> None:
    os.environ["REDIS_URL"] = redis_url  # ours, for gunicorn, the worker and this process alike
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.base"
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")
    os.environ["DJANGO_DEBUG"] = "0"
    os.environ.setdefault("DATABASE_CONN_MAX_AGE", "600")
    os.environ["EMORATE_TASK_VISIBILITY_TIMEOUT"] = str(visibility_timeout)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", "--noinput", verbosity=0)


@dataclass
class Timeline:
    t0: float = field(default_factory=time.monotonic)
    events: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        line = f"t={time.monotonic() - self.t0:6.1f} s  {text}"
        self.events.append(line)
        print(f"  {line}", flush=True)


def running_snapshot(project_id: int) -> int | None:
    from annotation.models import AgreementSnapshot, SnapshotStatus

    return (AgreementSnapshot.objects.filter(project_id=project_id, status=SnapshotStatus.RUNNING)
            .order_by("-created_at").values_list("pk", flat=True).first())


def inject_faults(args: argparse.Namespace, project_id: int, worker: CeleryWorker, redis: Redis, lead: Lead,
                  recorder: Recorder, timeline: Timeline, stop: threading.Event) -> dict[str, object]:
    """Kill the worker at 1/3 (and restart it 10 s later), stop Redis at 2/3. Returns what was hit."""
    hit: dict[str, object] = {}
    duration = args.minutes * 60
    if stop.wait(duration / 3):
        return hit
    # Prefer killing the worker in the middle of a snapshot; give up waiting after 20 s.
    deadline = time.monotonic() + 20
    while (snap := running_snapshot(project_id)) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    recorder.phase = "worker down"
    worker.kill()
    hit["killed_snapshot"] = snap
    timeline.note(f"worker SIGKILLed ({f'agreement snapshot #{snap} running' if snap else 'no snapshot running'})")
    stop.wait(10)
    worker.start()
    recorder.phase = "after worker restart"
    timeline.note("new worker started")
    if stop.wait(max(0.0, 2 * duration / 3 - (time.monotonic() - timeline.t0))):
        return hit
    recorder.phase = "redis down"
    redis.stop()
    timeline.note("Redis stopped (SIGTERM)")
    stop.wait(2)
    tab = lead.second_tab()  # a lead asks for a snapshot while the broker is gone
    t0 = time.monotonic()
    status = lead.recompute(tab)
    tab.close()
    timeline.note(f"lead asked for a recompute while Redis was down: answered {status} "
                  f"in {time.monotonic() - t0:.1f} s")
    stop.wait(max(0.0, args.redis_down - (time.monotonic() - t0) - 2))
    redis.start()
    recorder.phase = "after redis restart"
    hit["redis_back"] = time.time()
    timeline.note("Redis started again (same port, appendonly data)")
    return hit


def summarize(samples: list[Sample], elapsed: float) -> None:
    by_kind: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        by_kind[s.kind].append(s)
    print(f"\n  {'request':<10} {'served':>8} {'per s':>7} {'errors':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for kind in ("submit", "rate page", "dashboard", "agreement", "jobs", "recompute"):
        rows = by_kind.get(kind, [])
        served = [s for s in rows if s.outcome == "ok" or s.outcome.isdigit()]
        errors = [s for s in rows if s.outcome != "ok"]
        ok = [1000 * s.seconds for s in rows if s.outcome == "ok"]
        print(f"  {kind:<10} {len(served):>8,} {len(served) / elapsed:>7.1f} {len(errors):>7} {pct(ok, 50):>8.1f} "
              f"{pct(ok, 95):>8.1f} {pct(ok, 99):>8.1f}")
    errors = Counter((s.kind, s.phase, s.outcome) for s in samples if s.outcome != "ok")
    print("  errors (kind, phase when sent, status or exception):" + ("" if errors else " none"))
    for (kind, phase, outcome), n in sorted(errors.items()):
        print(f"    {kind:<10} {phase:<22} {outcome:<24} x{n}")
    phases = list(dict.fromkeys(s.phase for s in samples))
    print("  p95 ms by phase (requests sent in it):")
    print(f"    {'request':<10}" + "".join(f" {ph:>21}" for ph in phases))
    for kind in by_kind:
        cells = []
        for ph in phases:
            ok = [1000 * s.seconds for s in by_kind[kind] if s.phase == ph and s.outcome == "ok"]
            cells.append(f"{pct(ok, 95):.0f} ({len(ok)})" if ok else "-")
        print(f"    {kind:<10}" + "".join(f" {c:>21}" for c in cells))


def snapshot_after_faults(project_id: int, lead: Lead, settle: float) -> tuple[bool, float, str]:
    """Ask once more, then wait for a done snapshot of the final ratings: (done, seconds, note)."""
    from django.db.models import Count, Max

    from annotation.models import AgreementSnapshot, Rating, SnapshotStatus

    # The fingerprint starts with the count and latest change of the ratings (ratings_fingerprint);
    # matched on that prefix, not recomputed here, so that this process and the worker agree.
    agg = Rating.objects.filter(project_id=project_id).aggregate(n=Count("id"), last=Max("updated_at"))
    prefix = f"{agg['n']}|{agg['last'].isoformat() if agg['last'] else '-'}|"
    lead.recompute()
    t0 = time.monotonic()
    while time.monotonic() - t0 < settle:
        done = AgreementSnapshot.objects.filter(project_id=project_id, status=SnapshotStatus.DONE,
                                                fingerprint__startswith=prefix).first()
        if done is not None:
            mean = done.payload.get("mean_alpha") if isinstance(done.payload, dict) else None
            return True, time.monotonic() - t0, f"snapshot #{done.pk}, {done.seconds or 0:.1f} s to compute" + (
                f", mean alpha {mean:.3f}" if isinstance(mean, float) else "")
        time.sleep(0.5)
    return False, settle, "no snapshot of the final ratings in time"


def run(args: argparse.Namespace, workdir: Path) -> int:
    redis = Redis(workdir)
    redis.start()
    setup_django(redis.url, args.visibility_timeout)
    from django.db.models import Count

    from accounts.models import Role, User
    from annotation import taxonomy
    from annotation.models import AgreementSnapshot, Assignment, Rating, SnapshotStatus
    from annotation.views.rate import EMOTION_FIELD_PREFIX

    print(f"load_bench on {platform.platform()}, {os.cpu_count()} CPUs; {args.raters} raters + 1 lead, "
          f"{args.minutes:g} min, gunicorn {args.workers} workers x {args.threads} threads, 1 Celery worker "
          f"(solo), visibility timeout {args.visibility_timeout} s; logs in {workdir}", flush=True)
    project_id = seed_project(SLUG, args.images, 3)
    raters = make_raters(project_id, args.raters, "load")
    (lead_id, lead_session), = make_raters(project_id, 1, "lead")
    User.objects.filter(pk=lead_id).update(role=Role.LEAD)

    port = free_port()
    server = start_gunicorn(port, args.workers, args.threads, workdir / "gunicorn.log")
    worker = CeleryWorker({**os.environ}, workdir / "worker.log")
    worker.start()
    recorder, stop, timeline = Recorder(), threading.Event(), Timeline()
    threads = [Rater(port, sess, recorder, stop, i, taxonomy.EMOTIONS, EMOTION_FIELD_PREFIX, args.think_ms / 1000)
               for i, (_, sess) in enumerate(raters)]
    lead = Lead(port, lead_session, recorder, stop)
    hit: dict[str, object] = {}
    try:
        timeline.note("load starts")
        for t in [*threads, lead]:
            t.start()
        faults = threading.Thread(target=lambda: hit.update(
            inject_faults(args, project_id, worker, redis, lead, recorder, timeline, stop)), daemon=True)
        faults.start()
        stop.wait(args.minutes * 60)
        stop.set()
        timeline.note("load stops; raters finish the submit in flight")
        faults.join()
        for t in threads:
            t.join(SUBMIT_GIVE_UP + 40)
        lead.join(40)
        elapsed = time.monotonic() - timeline.t0
        snap_done, snap_wait, snap_note = snapshot_after_faults(project_id, lead, args.settle)
        jobs = lead.client.request("jobs", "GET", f"/projects/{SLUG}/dashboard/jobs/", headers={"HX-Request": "true"})
    finally:
        stop.set()
        server.terminate()
        server.wait(20)
        worker.stop()
        redis.stop()

    summarize(recorder.samples, elapsed)
    sent = [a for t in threads for a in t.sent]
    abandoned = [a for t in threads for a in t.abandoned]
    refused = [r for t in threads for r in t.refused]
    ratings = Rating.objects.filter(project_id=project_id)
    stored = ratings.count()
    pairs = ratings.values("rater_id", "image_id").distinct().count()
    linked = dict(Assignment.objects.filter(pk__in=sent).values_list("pk", "rating_id"))
    lost = sum(1 for a in sent if linked.get(a) is None)
    over = ratings.values("image_id").annotate(n=Count("id")).filter(n__gt=3).count()
    killed = hit.get("killed_snapshot")
    killed_status = (AgreementSnapshot.objects.filter(pk=killed).values_list("status", flat=True).first()
                     if isinstance(killed, int) else None)
    stale = AgreementSnapshot.objects.filter(project_id=project_id, status=SnapshotStatus.RUNNING).count()
    redis_back = hit.get("redis_back")
    done_after = (AgreementSnapshot.objects.filter(project_id=project_id, status=SnapshotStatus.DONE,
                                                   finished_at__gt=datetime.fromtimestamp(redis_back, tz=UTC)).count()
                  if isinstance(redis_back, float) else 0)
    equal = len(sent) == stored and len(set(sent)) == len(sent) and not abandoned and lost == 0
    print(f"\n  ratings sent (answered 2xx): {len(sent):,}; stored: {stored:,} -> "
          f"{'EQUAL' if equal else 'NOT EQUAL'}; lost: {lost}; duplicated: {stored - pairs} "
          f"(and {len(sent) - len(set(sent))} assignments acknowledged twice); images beyond target: {over}; "
          f"submits abandoned: {len(abandoned)}; refused (4xx): {len(refused)}")
    for r in refused[:5]:
        print(f"    refused: {r}")
    print(f"  ratings/s sustained: {len(sent) / elapsed:,.1f} over {elapsed:.0f} s")
    print(f"  recompute requests (phase, answer): {Counter(lead.recomputes).most_common()}")
    print(f"  snapshot running when the worker was killed: {f'#{killed} -> now {killed_status}' if killed else 'none'}; "
          f"snapshots done after Redis came back: {done_after}; rows still 'running' at the end: {stale}")
    print(f"  jobs fragment at the end: {jobs[0] if jobs else 'no answer'} "
          f"({'polling stops, no job shown running' if jobs and jobs[0] == 286 else 'still shows a running job'})")
    print(f"  agreement snapshot of the final ratings after the faults: "
          f"{'completed' if snap_done else 'NOT completed'} ({snap_note}; {snap_wait:.1f} s after asking)")
    print("\n  timeline:\n" + "\n".join(f"    {e}" for e in timeline.events))
    return 0 if equal and snap_done else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=3)
    parser.add_argument("--raters", type=int, default=16)
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--think-ms", type=float, default=0, help="mean pause of a rater before each submit")
    parser.add_argument("--workers", type=int, default=(os.cpu_count() or 2) + 1, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (gthread)")
    parser.add_argument("--redis-down", type=float, default=8, help="seconds Redis stays down")
    parser.add_argument("--visibility-timeout", type=int, default=30,
                        help="seconds before a killed worker's unacknowledged task is delivered again")
    parser.add_argument("--settle", type=float, default=180, help="seconds to wait for the final snapshot")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres") and not os.environ.get("EMORATE_BENCH_INNER"):
        return reexec_with_services(__file__)
    return run(args, Path(tempfile.mkdtemp(prefix="emorate-load-")))  # kept afterwards: the logs


if __name__ == "__main__":
    raise SystemExit(main())
