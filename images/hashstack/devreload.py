"""The dev-mode reload (GUNICORN_RELOAD=true, `skaffold dev`): a new worker with the new code
serves before the old one stops, so a synced edit is answered within a fraction of a second
and no request or probe meets a closed port.

gunicorn's own reload (`reload = True`) lets each worker watch the files and exit when one
changes; the master then forks a fresh worker, which imports everything again. With one worker
nothing accepts for the whole import (3 s on a small node), and with per-worker SO_REUSEPORT
sockets nothing even listens: probes were refused. Instead, in dev mode:

- the workers share the master's listening socket (gunicorn_conf turns reuse_port off), which
  stays open whatever the workers do: a connection waits in its backlog, never refused;
- the master imports the service's third-party dependencies once (`preimport`, found by
  reading the package's import statements), so a forked worker only imports hashstack itself;
  post_fork drops the master's hashstack modules, so every module is read fresh from disk;
- a thread in the master (`Watcher`) polls the package's .py files every 0.1 s; on a change it
  compiles them (a syntax error is logged and the running worker keeps serving), then asks
  gunicorn for one more worker (SIGTTIN). That worker, once its app is loaded, asks for one
  fewer (SIGTTOU): gunicorn stops the oldest worker gracefully, in-flight requests finish.
"""

from __future__ import annotations

import ast
import importlib
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

PACKAGE = "hashstack"
PACKAGE_DIR = Path(__file__).resolve().parent
POLL_SECONDS = 0.1


def sources(package_dir: Path = PACKAGE_DIR) -> dict[Path, tuple[int, int]]:
    """Every .py file of the package with its modification time (ns) and size: a file still
    being written changes size even within one timestamp tick."""
    found = {}
    for path in package_dir.rglob("*.py"):
        try:
            stat = path.stat()
        except FileNotFoundError:  # replaced while we looked (tar writes a new file)
            continue
        found[path] = (stat.st_mtime_ns, stat.st_size)
    return found


def imported_modules(package_dir: Path = PACKAGE_DIR) -> list[str]:
    """The modules the package's files import that are not the package itself, sorted."""
    names: set[str] = set()
    for path in package_dir.rglob("*.py"):
        try:
            tree = ast.parse(path.read_bytes(), str(path))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module)
    return sorted(n for n in names if n.split(".")[0] != PACKAGE)


def preimport(log: Any, package_dir: Path = PACKAGE_DIR) -> list[str]:
    """Import the package's dependencies into this (master) process; the names imported."""
    done = []
    for name in imported_modules(package_dir):
        try:
            importlib.import_module(name)
        except Exception as error:  # an optional import of a service: the worker will see
            log.debug("dev reload: not preloading %s: %s", name, error)
            continue
        done.append(name)
    return done


def forget_package() -> None:
    """In a new worker: drop the master's copies of the package's modules, so the app and
    everything it imports from the package is read from the files as they are now."""
    for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
        del sys.modules[name]


def compile_errors(paths: list[Path]) -> list[str]:
    """Syntax errors of these files, compiled in memory (the root filesystem is read-only)."""
    errors = []
    for path in paths:
        try:
            compile(path.read_bytes(), str(path), "exec", dont_inherit=True)
        except SyntaxError as error:
            errors.append(f"{path}:{error.lineno}: {error.msg}")
        except FileNotFoundError:
            continue
    return errors


class Watcher(threading.Thread):
    """Polls the package's sources; on a change that compiles, replaces the workers one at a
    time (SIGTTIN: one more; the new one sends SIGTTOU once loaded). Runs in the gunicorn
    master (gunicorn_conf's when_ready), `server` being gunicorn's arbiter."""

    SWAP_TIMEOUT = 60.0

    def __init__(self, server: Any, package_dir: Path = PACKAGE_DIR) -> None:
        super().__init__(name="dev-reload", daemon=True)
        self.server = server
        self.log = server.log
        self.package_dir = package_dir
        self.master = os.getpid()

    def run(self) -> None:
        seen = sources(self.package_dir)
        while True:
            time.sleep(POLL_SECONDS)
            now = sources(self.package_dir)
            changed = sorted(p for p in now.keys() | seen.keys() if now.get(p) != seen.get(p))
            seen = now
            if not changed:
                continue
            errors = compile_errors([p for p in changed if p in now])
            if errors:
                self.log.error("dev reload: not reloading, the new code does not compile:")
                for error in errors:
                    self.log.error("%s", error)
                continue
            names = ", ".join(str(p.relative_to(self.package_dir)) for p in changed)
            self.log.info("dev reload: %s changed: starting workers with the new code", names)
            for _ in range(int(self.server.cfg.workers)):
                self.swap_one()

    def swap_one(self) -> None:
        """One more worker, then wait until it has retired the oldest (num_workers back)."""
        configured = int(self.server.cfg.workers)
        os.kill(self.master, signal.SIGTTIN)
        deadline = time.monotonic() + self.SWAP_TIMEOUT
        started = False
        while time.monotonic() < deadline:
            time.sleep(0.01)
            count = int(self.server.num_workers)
            started = started or count > configured
            if started and count <= configured:
                return
        self.log.warning("dev reload: no new worker within %.0f s", self.SWAP_TIMEOUT)


def is_surplus(server: Any) -> bool:
    """In post_fork: this worker was forked for a reload (one more than configured)."""
    return int(server.num_workers) > int(server.cfg.workers)


def retire_oldest(log: Any) -> None:
    """In post_worker_init of a surplus worker: the app is loaded, the old worker may go."""
    log.info("dev reload: new worker %s serves; stopping the oldest", os.getpid())
    os.kill(os.getppid(), signal.SIGTTOU)
