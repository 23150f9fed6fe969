from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server


class ServedApp:
    """A WSGI app served on a real loopback socket in a thread, for tests of HTTP clients."""

    def __init__(self, app: Flask) -> None:
        self.server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def serve() -> Iterator[type[ServedApp]]:
    served: list[ServedApp] = []

    def start(app: Flask) -> ServedApp:
        instance = ServedApp(app)
        served.append(instance)
        return instance

    yield start  # type: ignore[misc]
    for instance in served:
        instance.close()
