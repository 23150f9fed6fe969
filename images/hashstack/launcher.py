"""The seed's command lines, now starting gunicorn (`python -m hashstack.hash 8080 host:8081`)."""

from __future__ import annotations

import os
import sys

from .config import ConfigError, Settings

USAGE = {
    "hello": "python -m hashstack.hello [PORT]",
    "persistence": "python -m hashstack.persistence [PORT]",
    "hash": "python -m hashstack.hash [PORT [PERSISTENCE_HOST:PORT]]",
}


def gunicorn_command(service: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        "python:hashstack.gunicorn_conf",
        f"hashstack.{service}:create_app()",
    ]


def environment_for(service: str, argv: list[str], env: dict[str, str]) -> dict[str, str]:
    """The environment gunicorn gets: the seed's positional arguments override variables."""
    max_args = 2 if service == "hash" else 1
    if len(argv) > max_args or any(arg in ("-h", "--help") for arg in argv):
        raise ConfigError(f"usage: {USAGE[service]}")
    env = dict(env)
    if argv:
        env["PORT"] = argv[0]
    if len(argv) == 2:
        env["PERSISTENCE_URL"] = argv[1]
    Settings.from_env(env)  # fail here, with a clear message, before gunicorn starts
    return env


def main(service: str, argv: list[str]) -> None:
    try:
        env = environment_for(service, argv, dict(os.environ))
    except ConfigError as error:
        print(f"{service}: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    command = gunicorn_command(service)
    os.execve(command[0], command, env)  # noqa: S606 (replaces this process, no shell)
