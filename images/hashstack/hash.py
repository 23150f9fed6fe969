"""hash: asks persistence for a number and answers it with its SHA-256."""

from __future__ import annotations

import hashlib
import sys

from flask import Flask, Response, jsonify

from .config import Settings
from .persistence_client import PersistenceClient, PersistenceError
from .web import ServiceError, create_service_app, current_request_id


def sha256_of(number: int) -> str:
    return hashlib.sha256(str(number).encode()).hexdigest()


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    persistence = PersistenceClient(
        settings.persistence_url,
        settings.request_timeout,
        pool_size=settings.threads,
        max_uses=settings.persistence_max_calls_per_connection,
        max_age=settings.persistence_max_connection_age,
    )

    app = create_service_app("hash", lambda: persistence.check(current_request_id()), settings)

    @app.get("/")
    def hashed_number() -> Response:
        try:
            number = persistence.next_number(current_request_id())
        except PersistenceError as error:
            raise ServiceError(str(error), status=error.status) from None
        return jsonify(data={"number": number, "hash": sha256_of(number)})

    return app


if __name__ == "__main__":
    from .launcher import main

    main("hash", sys.argv[1:])
