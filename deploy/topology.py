"""The production topology of docker-compose.yml as local processes on loopback.

PostgreSQL and Redis (throwaway, on free ports), the build step (deploy/collectstatic.sh), the
migrate job, then gunicorn with config.settings.production (deploy/web.sh), a Celery worker
(deploy/worker.sh), beat (deploy/beat.sh) and Caddy terminating TLS with deploy/Caddyfile, using a
certificate made here for `localhost`. The same scripts and Caddyfile as the compose file: what
the topology test runs is what a deployment runs.

Used by tests/deploy/test_topology.py and by `make prod-local` (`python -m deploy.topology`), which
starts it for a person to try production mode in a browser.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVICE_SCRIPTS = {"web": "deploy/web.sh", "worker": "deploy/worker.sh", "beat": "deploy/beat.sh"}
CADDY_COMMAND = ["caddy", "run", "--config", "deploy/Caddyfile", "--adapter", "caddyfile"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root: run it as Debian's `postgres` user then.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class Topology:
    """Start with start(), stop with stop() (also on failure: stop() is safe at any point)."""

    def __init__(self, *, https_port: int | None = None, workers: int = 2, worker_concurrency: int = 1,
                 metrics_token: str | None = None, extra_env: dict[str, str] | None = None, web_nodes: int = 1,
                 ) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="emorate-topology-"))
        self.dir.chmod(0o755)  # the postgres user must reach its data folder inside
        self.pg_port, self.redis_port, self.web_port = free_port(), free_port(), free_port()
        self.https_port = https_port or free_port()
        self.url = f"https://localhost:{self.https_port}"
        self.metrics_token = metrics_token or secrets.token_urlsafe(24)
        self.pgbin = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: float(p.parent.name))[-1] \
            if Path("/usr/lib/postgresql").exists() else Path(shutil.which("pg_ctl") or "pg_ctl").parent
        self.pgdata = self.dir / "pgdata"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        bin_dir = str(Path(sys.executable).parent)
        keep = {k: v for k, v in os.environ.items()
                if k not in {"DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL", "EMORATE_CACHE_PREFIX", "MEDIA_ROOT",
                             "DJANGO_ALLOW_ASYNC_UNSAFE", "DJANGO_DEBUG", "DJANGO_SECRET_KEY", "PROMETHEUS_MULTIPROC_DIR"}}
        self.env = {
            **keep,
            "PATH": f"{bin_dir}:{keep.get('PATH', '/usr/bin:/bin')}",
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "localhost",
            "DATABASE_URL": f"postgres://app:app@127.0.0.1:{self.pg_port}/app",
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "MEDIA_ROOT": str(self.dir / "media"),
            "STATIC_ROOT": str(self.dir / "static"),
            "EMORATE_METRICS_TOKEN": self.metrics_token,
            "GUNICORN_BIND": f"127.0.0.1:{self.web_port}",
            "GUNICORN_WORKERS": str(workers),
            "EMORATE_WORKER_CONCURRENCY": str(worker_concurrency),
            "EMORATE_BEAT_SCHEDULE_FILE": str(self.dir / "celerybeat-schedule"),
            "EMORATE_TRUSTED_PROXIES": "127.0.0.1",  # Caddy, as the compose file trusts its Caddy
            # Caddy: deploy/Caddyfile with this run's ports and certificate, state in this folder.
            "EMORATE_DOMAIN": "localhost",
            "EMORATE_UPSTREAM": f"127.0.0.1:{self.web_port}",
            "CADDY_HTTPS_PORT": str(self.https_port),
            "CADDY_HTTP_PORT": str(free_port()),
            "CADDY_ADMIN": f"127.0.0.1:{free_port()}",
            "CADDY_TLS": f"tls {self.dir / 'cert.pem'} {self.dir / 'key.pem'}",
            "XDG_DATA_HOME": str(self.dir / "caddy-data"),
            "XDG_CONFIG_HOME": str(self.dir / "caddy-config"),
            "HOME": str(self.dir),
            **(extra_env or {}),
        }
        self.cert = self.dir / "cert.pem"
        # More web nodes (each behind its own Caddy, with its own empty media folder): what several
        # machines sharing only PostgreSQL, Redis and the bucket look like (EMORATE_STORAGE=s3).
        self.node_urls = [self.url]
        self.node_env: dict[str, dict[str, str]] = {}
        for i in range(1, web_nodes):
            https, web = free_port(), free_port()
            self.node_urls.append(f"https://localhost:{https}")
            own = {"GUNICORN_BIND": f"127.0.0.1:{web}", "EMORATE_UPSTREAM": f"127.0.0.1:{web}",
                   "CADDY_HTTPS_PORT": str(https), "CADDY_HTTP_PORT": str(free_port()),
                   "CADDY_ADMIN": f"127.0.0.1:{free_port()}", "MEDIA_ROOT": str(self.dir / f"media-{i}"),
                   "XDG_DATA_HOME": str(self.dir / f"caddy-data-{i}"), "XDG_CONFIG_HOME": str(self.dir / f"caddy-config-{i}")}
            self.node_env[f"web-{i}"] = self.node_env[f"caddy-{i}"] = own
        if web_nodes > 1:  # the worker on a machine of its own too
            self.node_env["worker"] = {"MEDIA_ROOT": str(self.dir / "media-worker")}

    # -- certificate -------------------------------------------------------------------------
    def make_certificate(self) -> None:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", str(self.dir / "key.pem"), "-out", str(self.cert), "-days", "2",
                        "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                       check=True, capture_output=True)

    def spki_sha256(self) -> str:
        """base64 SHA-256 of the certificate's public key: what Chromium's
        --ignore-certificate-errors-spki-list pins (this certificate is trusted, no other)."""
        pub = subprocess.run(["openssl", "x509", "-in", str(self.cert), "-pubkey", "-noout"],
                             check=True, capture_output=True).stdout
        der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub,
                             check=True, capture_output=True).stdout
        return base64.b64encode(hashlib.sha256(der).digest()).decode()

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))

    # -- data services -----------------------------------------------------------------------
    def start_postgres(self) -> None:
        if not self.pgdata.exists():
            if os.geteuid() == 0:
                subprocess.run(["install", "-d", "-o", "postgres", "-g", "postgres", "-m", "700", str(self.pgdata)],
                               check=True)
            else:
                self.pgdata.mkdir(mode=0o700)
            subprocess.run(_as_postgres([str(self.pgbin / "initdb"), "-D", str(self.pgdata), "-U", "postgres",
                                         "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"]),
                           check=True, capture_output=True)
            fresh = True
        else:
            fresh = False
        subprocess.run(_as_postgres([
            str(self.pgbin / "pg_ctl"), "-D", str(self.pgdata), "-l", str(self.pgdata / "server.log"), "-w", "-t", "60",
            "-o", f"-c listen_addresses=127.0.0.1 -p {self.pg_port} -k {self.pgdata} -c fsync=off "
                  "-c synchronous_commit=off -c full_page_writes=off", "start"]), check=True, capture_output=True)
        if fresh:
            subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "postgres", "-v", "ON_ERROR_STOP=1",
                            "-q", "-c", "CREATE ROLE app LOGIN PASSWORD 'app'", "-c", "CREATE DATABASE app OWNER app"],
                           check=True, capture_output=True)

    def stop_postgres(self) -> None:
        if (self.pgdata / "postmaster.pid").exists():
            subprocess.run(_as_postgres([str(self.pgbin / "pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w",
                                         "stop"]), capture_output=True)

    def start_redis(self) -> None:
        self.procs["redis"] = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.redis_port), "--save", "", "--appendonly", "no",
             "--dir", str(self.dir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.wait(lambda: self._port_open(self.redis_port), 20, "redis")

    # -- the app -------------------------------------------------------------------------------
    def manage(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, input=stdin,
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def run_script(self, script: str) -> None:
        done = subprocess.run(["sh", script], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=180)
        if done.returncode != 0:
            raise RuntimeError(f"{script} failed:\n{done.stdout}\n{done.stderr}")

    def spawn(self, name: str, command: list[str]) -> None:
        log = open(self.dir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        env = {**self.env, **self.node_env.get(name, {})}
        self.procs[name] = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def media_roots(self) -> list[Path]:
        """Every process's own media folder (one machine's disk each, in a multi-node run)."""
        return [Path(self.env["MEDIA_ROOT"])] + sorted({Path(e["MEDIA_ROOT"]) for e in self.node_env.values()})

    def log(self, name: str) -> str:
        path = self.dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self) -> Topology:
        self.make_certificate()
        self.start_postgres()
        self.start_redis()
        self.run_script("deploy/collectstatic.sh")  # what the image build does
        self.run_script("deploy/migrate.sh")        # the compose `migrate` job
        for name, script in SERVICE_SCRIPTS.items():
            self.spawn(name, ["sh", script])
        self.spawn("caddy", CADDY_COMMAND)
        for i in range(1, len(self.node_urls)):
            self.spawn(f"web-{i}", ["sh", SERVICE_SCRIPTS["web"]])
            self.spawn(f"caddy-{i}", CADDY_COMMAND)
        for url in self.node_urls:
            self.wait(lambda url=url: self.get("/readyz", base=url)[0] == 200, 90, f"web behind caddy at {url} (/readyz)")
        return self

    def get(self, path: str, headers: dict[str, str] | None = None, base: str | None = None,
            ) -> tuple[int, dict[str, str], bytes]:
        """A GET through Caddy over HTTPS, verifying the certificate against this run's own."""
        request = urllib.request.Request((base or self.url) + path, headers=headers or {})
        try:
            with urllib.request.urlopen(request, context=self.ssl_context(), timeout=10) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return 0, {}, b""

    def wait(self, predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode} while waiting for {what}:\n{self.log(name)}")
            time.sleep(0.2)
        logs = "\n".join(f"--- {n}\n{self.log(n)[-3000:]}" for n in ("web", "worker", "caddy"))
        raise RuntimeError(f"timed out waiting for {what}\n{logs}")

    @staticmethod
    def _port_open(port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        extra = [n for n in self.procs if n.startswith(("caddy-", "web-"))]
        for name in ("caddy", *extra, "beat", "worker", "web", "redis"):
            proc = self.procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            try:
                os.killpg(proc.pid, signal.SIGTERM) if name != "redis" else proc.terminate()
                proc.wait(timeout=15)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                try:
                    os.killpg(proc.pid, signal.SIGKILL) if name != "redis" else proc.kill()
                except ProcessLookupError:
                    pass
                proc.wait(timeout=5)
        self.stop_postgres()
        shutil.rmtree(self.dir, ignore_errors=True)


def main() -> int:
    """`make prod-local`: start the topology, create an admin, print how to reach it; Ctrl-C stops."""
    port = int(os.environ.get("PORT", "8443"))
    topology = Topology(https_port=port)
    try:
        print("starting PostgreSQL, Redis, gunicorn (production settings), a worker, beat and Caddy ...", flush=True)
        topology.start()
        password = secrets.token_urlsafe(12)
        topology.manage("create_user", "admin@example.org", "--role", "admin", "--password-stdin", stdin=password + "\n")
        print(f"\nemorate in production mode: {topology.url}/   (log in as admin@example.org / {password})")
        print(f"The certificate is self-made for localhost: {topology.cert} (trust it, or accept the browser's warning).")
        print(f"Health: {topology.url}/healthz, {topology.url}/readyz; metrics: curl -H 'Authorization: Bearer "
              f"{topology.metrics_token}' {topology.url}/metrics")
        print(f"Logs (JSON lines): {topology.dir}/{{web,worker,beat,caddy}}.log. Ctrl-C stops everything.", flush=True)
        while all(p.poll() is None for p in topology.procs.values()):
            time.sleep(1)
        print("a process exited; stopping", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        topology.stop()


if __name__ == "__main__":
    sys.exit(main())
