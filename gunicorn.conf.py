"""gunicorn settings for production: ``gunicorn -c gunicorn.conf.py --paste production.ini``.

Every value can be overridden from the environment, so the same file
serves the process cluster (make cluster) and the containers.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import shutil
import tempfile
from typing import Any

bind = os.environ.get("BIND", "127.0.0.1:6543")
# Processes, not threads: the app is CPU-bound Python between queries. One
# per CPU, plus one to run while the others wait for Postgres: more only
# trade CPU caches (the uncached list served ~20% fewer requests with six
# workers than with three on two CPUs: docs/database.md, "Workers per core").
# Replicas on one host share its CPUs: set WEB_CONCURRENCY for each.
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() + 1))
threads = int(os.environ.get("WEB_THREADS", 1))
# Import the app once in the master and fork: faster starts, shared memory.
# The SQLAlchemy engine's pool is dropped in each child after the fork
# (myapp.db registers os.register_at_fork), so no socket is shared.
preload_app = True
# Recycle workers now and then (leaks, fragmentation), never all at once. Not
# too often: a restart leaves the worker's slot empty for ~0.3 s and starts it
# with cold per-process caches; at 2,000 a worker serving 100 req/s restarted
# every 20 s (the p99 of the benchmarks showed it).
max_requests = int(os.environ.get("MAX_REQUESTS", 20000))
max_requests_jitter = int(os.environ.get("MAX_REQUESTS_JITTER", 2000))
timeout = int(os.environ.get("WEB_TIMEOUT", 30))
# Each worker signals it is alive by touching a file after every request; in
# memory, not on the container's disk (overlay), where that write can stall.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# On SIGTERM, stop accepting and give in-flight requests this long.
graceful_timeout = int(os.environ.get("GRACEFUL_TIMEOUT", 20))
keepalive = int(os.environ.get("KEEPALIVE", 5))
# Trust X-Forwarded-* only from the proxy in front (Nginx), never from clients.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
proxy_allow_ips = forwarded_allow_ips
accesslog = "-"
access_log_format = '%(h)s %({x-request-id}o)s "%(r)s" %(s)s %(b)s %(M)sms replica=%({x-replica}o)s'
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")

# prometheus_client's multiprocess mode: every worker writes its samples to
# this folder, /metrics aggregates them (myapp.metrics). It must exist and
# be empty when the master starts.
_metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(
    prefix="conduit-metrics-"
)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir


def on_starting(server: Any) -> None:
    shutil.rmtree(_metrics_dir, ignore_errors=True)
    os.makedirs(_metrics_dir, exist_ok=True)


def when_ready(server: Any) -> None:
    # The master has loaded the app (preload_app): move everything it holds
    # into the garbage collector's permanent generation before forking, so
    # the workers' full collections skip the ~hundreds of thousands of
    # objects every process shares (modules, routes, mappers, compiled
    # statements): shorter GC pauses in the tail latency, and fewer pages
    # copied on write (the collector writes to every object it visits).
    gc.collect()
    gc.freeze()


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
