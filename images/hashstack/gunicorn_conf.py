"""One gunicorn configuration for all three services: `-c python:hashstack.gunicorn_conf`.

Everything comes from the environment through hashstack.config (see docs/configuration.md).
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
from typing import Any

from hashstack import logs
from hashstack.config import ConfigError, Settings

try:
    settings = Settings.from_env()
except ConfigError as error:
    # A clear line instead of gunicorn's traceback; exit code 2 like any bad command line.
    print(f"hashstack: bad configuration: {error}", file=sys.stderr)
    raise SystemExit(2) from None


def _fresh_metrics_dir(path: str) -> str:
    # prometheus_client reads this variable when the workers import it; samples left by an
    # earlier run would be summed into ours, so start empty.
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    return path


_fresh_metrics_dir(settings.metrics_dir)


def _address(port: int) -> str:
    return f"[{settings.host}]:{port}" if ":" in settings.host else f"{settings.host}:{port}"


# The API port, and the metrics port when it is a separate one (the app answers only /metrics
# there, and no /metrics on the API port).
bind = [_address(port) for port in (settings.port, settings.metrics_port) if port]
worker_class = "gthread"
# Each worker binds its own SO_REUSEPORT socket, so the kernel spreads new connections over the
# workers. On one shared socket a gthread worker that wakes first accepts a whole burst of
# keep-alive connections and keeps them: `make bench` saw 32/0 splits and half the throughput.
# Dev mode (GUNICORN_RELOAD=true) shares the master's socket instead: it stays open while the
# workers are swapped for new code (hashstack.devreload), so nothing is refused meanwhile.
reuse_port = not settings.reload
# The memory store is the seed's single-process counter: more workers would repeat numbers.
workers = 1 if settings.store == "memory" else settings.web_concurrency
threads = settings.threads
keepalive = 5
timeout = 30
# SIGTERM: stop accepting, let in-flight requests finish (well inside Kubernetes' 30 s grace).
graceful_timeout = 20
# gunicorn's own reload (each worker exits when a file changes, then a fresh one imports
# everything) leaves seconds with no worker: dev mode uses hashstack.devreload instead.
reload = False
loglevel = settings.log_level
logconfig_dict = logs.gunicorn_logconfig(settings.log_level)
accesslog = None  # the services log each request themselves, with the request id
# A per-user control socket under $HOME would collide between processes and needs a writable home.
control_socket_disable = True
# The worker heartbeat belongs in memory, not on the (possibly read-only) disk.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108
proc_name = "hashstack"


def on_starting(server: Any) -> None:
    if settings.reload:
        from hashstack import devreload

        loaded = devreload.preimport(server.log)
        server.log.info("dev reload: %d dependencies imported once in the master", len(loaded))


def when_ready(server: Any) -> None:
    if settings.reload:
        from hashstack import devreload

        devreload.Watcher(server).start()


def post_fork(server: Any, worker: Any) -> None:
    if settings.reload:
        from hashstack import devreload

        worker.hashstack_surplus = devreload.is_surplus(server)
        devreload.forget_package()
    # gunicorn binds a new worker's SO_REUSEPORT socket right after the fork, seconds before the
    # app is loaded: the kernel would queue its share of new connections where nobody accepts
    # (after a worker was killed, callers timed out for as long as the new one took to boot).
    # Close it here and listen only once the app can answer (post_worker_init).
    if _per_worker_sockets(worker.cfg):
        for listener in worker.sockets:
            listener.close()
        worker.sockets = []


def post_worker_init(worker: Any) -> None:
    if _per_worker_sockets(worker.cfg):
        from gunicorn import sock, util

        worker.sockets = sock.create_sockets(worker.cfg, worker.log)
        for listener in worker.sockets:
            util.close_on_exec(listener)
        worker.wait_fds = [*worker.sockets, worker.PIPE[0]]
    if getattr(worker, "hashstack_surplus", False):
        from hashstack import devreload

        devreload.retire_oldest(worker.log)


def _per_worker_sockets(cfg: Any) -> bool:
    # The setting gunicorn runs with, not this module's: a config that imports this one and
    # turns reuse_port off (benchmarks/baseline_gunicorn.py) shares the master's socket.
    return bool(cfg.reuse_port) and hasattr(socket, "SO_REUSEPORT")


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
