"""persistence: GET / hands out the next number, never the same one twice."""

from __future__ import annotations

import sys

from flask import Flask, Response, jsonify

from . import metrics
from .allocator import BlockAllocator
from .config import Settings
from .counter import Counter, StoreUnavailable
from .stores import open_counter
from .web import ServiceError, create_service_app


def create_app(settings: Settings | None = None, counter: Counter | None = None) -> Flask:
    settings = settings or Settings.from_env()
    counter = counter or open_counter(settings)
    allocator = BlockAllocator(counter, settings.block_size)

    app = create_service_app("persistence", counter.check, settings)

    @app.get("/")
    def next_number() -> Response:
        try:
            number = allocator.next_number()
        except StoreUnavailable as error:
            raise ServiceError(f"counter store unavailable: {error}") from None
        metrics.NUMBERS_ISSUED.inc()
        return jsonify(data=number)

    return app


if __name__ == "__main__":
    from .launcher import main

    main("persistence", sys.argv[1:])
