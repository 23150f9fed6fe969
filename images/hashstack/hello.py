"""hello: the smallest service, always ready."""

from __future__ import annotations

import sys

from flask import Flask, Response

from .config import Settings
from .web import create_service_app


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = create_service_app("hello", readiness=lambda: None, settings=settings)

    @app.get("/")
    def hello() -> Response:
        return Response("Hello, World!", content_type="text/plain; charset=utf-8")

    return app


if __name__ == "__main__":
    from .launcher import main

    main("hello", sys.argv[1:])
