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
