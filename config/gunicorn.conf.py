"""gunicorn settings for the web service (docker-compose.yml) and bench/rate_bench.py.

Threaded workers (gthread): the keep-alive connections of raters looking at an image wait in the
worker's poller, not in a thread, and a submit is a few milliseconds of CPU. One worker per core
with two threads each measured best on the rate bench (2 cores: about 340 submissions/s against
about 310/s with 3 workers x 4 threads, where the extra threads only add contention). Raise
GUNICORN_THREADS if slow requests (large downloads served by Django) must not queue the raters'.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
worker_class = "gthread"
workers = int(os.environ.get("GUNICORN_WORKERS") or multiprocessing.cpu_count())
threads = int(os.environ.get("GUNICORN_THREADS") or 2)
keepalive = 30
timeout = 60
