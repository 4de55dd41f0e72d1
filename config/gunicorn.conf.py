"""gunicorn settings for the web service (docker-compose.yml) and bench/rate_bench.py.

Threaded workers (gthread): the keep-alive connections of raters looking at an image wait in the
worker's poller, not in a thread, and a submit is a few milliseconds of CPU. One worker per core
with two threads each measured best on the rate bench (2 cores, 8 raters: 341-347 submissions/s at
p95 31-34 ms, against 306-325/s with 4 workers x 2 threads and 319-325/s with 4 x 1, where the
extra processes only add contention). Raise
GUNICORN_THREADS if slow requests (large downloads served by Django) must not queue the raters'.

reuse_port: every worker listens on a socket of its own (SO_REUSEPORT) and the kernel spreads new
connections over them evenly. On the one shared socket, whichever worker woke first accepted, and
a rater's keep-alive connection stays with the worker that accepted it: measured on the rate bench
(32 raters, 300 submits/s arriving), one worker held 22 of 32 connections, saturated its core and
p95 went to 0.5-2 s in most runs, with the machine a quarter idle; with reuse_port, 28-61 ms.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
worker_class = "gthread"
workers = int(os.environ.get("GUNICORN_WORKERS") or multiprocessing.cpu_count())
threads = int(os.environ.get("GUNICORN_THREADS") or 2)
keepalive = 30
timeout = 60
reuse_port = True

# Only the TLS proxy reaches gunicorn (docker-compose.yml publishes no port for it), so the
# forwarded headers it sets are trusted whatever its address on the internal network.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "*")
# No gunicorn access log: the app writes one line per request with its request id (core/observability.py).
accesslog = None

# Request metrics from every worker process add up on /metrics (prometheus_client's multiprocess
# mode): each worker writes its own files under this folder, emptied when the server starts.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    import tempfile

    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="emorate-prometheus-")


def on_starting(server):  # type: ignore[no-untyped-def]
    import glob

    for stale in glob.glob(os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], "*.db")):
        os.remove(stale)


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


# gunicorn's own lines (start, worker boot and exit) in the app's format: JSON in production.
if (os.environ.get("EMORATE_LOG_FORMAT") or ("json" if os.environ.get("DJANGO_SETTINGS_MODULE", "").endswith(
        ".production") else "text")) == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "core.observability.EmorateJsonFormatter"}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "loggers": {"gunicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False}},
    }
