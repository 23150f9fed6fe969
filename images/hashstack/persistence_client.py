"""hash's client for persistence: a keep-alive pool, a deadline, one retry on connection errors."""

from __future__ import annotations

import json

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

from . import metrics

# Errors raised before persistence could have handed out a number: safe to try once more.
_CONNECTION_ERRORS = (NewConnectionError, ConnectTimeoutError, ProtocolError)


class PersistenceError(Exception):
    """persistence failed; `status` is what hash answers (502 bad answer, 503 unavailable)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class PersistenceClient:
    def __init__(self, base_url: str, timeout: float, pool_size: int = 8) -> None:
        self._pool = urllib3.connection_from_url(
            base_url,
            maxsize=pool_size,
            block=False,
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
            retries=False,
        )

    def next_number(self, request_id: str) -> int:
        response = self._get("/", request_id)
        if response.status == 200:
            return _number_from(response.data)
        cause = _error_from(response.data) or f"HTTP {response.status}"
        # persistence said it is unavailable (etcd down): so are we. Anything else is a bad answer.
        status = 503 if response.status == 503 else 502
        metrics.UPSTREAM_ERRORS.labels("persistence", f"http_{response.status}").inc()
        raise PersistenceError(f"persistence answered {response.status}: {cause}", status)

    def check(self, request_id: str) -> None:
        response = self._get("/healthz", request_id)
        if response.status != 200:
            raise PersistenceError(f"persistence /healthz answered {response.status}", 503)

    def _get(self, path: str, request_id: str) -> urllib3.BaseHTTPResponse:
        headers = {"X-Request-ID": request_id, "Accept": "application/json"}
        for attempt in (1, 2):
            try:
                return self._pool.urlopen("GET", path, headers=headers)
            except ReadTimeoutError:
                metrics.UPSTREAM_ERRORS.labels("persistence", "timeout").inc()
                raise PersistenceError("persistence did not answer in time", 503) from None
            except _CONNECTION_ERRORS as error:
                if attempt == 2:
                    metrics.UPSTREAM_ERRORS.labels("persistence", "unreachable").inc()
                    raise PersistenceError(
                        f"persistence unreachable: {_reason(error)}", 503
                    ) from None
            except HTTPError as error:
                metrics.UPSTREAM_ERRORS.labels("persistence", "http_error").inc()
                raise PersistenceError(f"persistence call failed: {_reason(error)}", 503) from None
        raise AssertionError("unreachable")  # pragma: no cover


def _number_from(body: bytes) -> int:
    try:
        number = json.loads(body)["data"]
    except (ValueError, KeyError, TypeError):
        raise PersistenceError(
            "persistence answered something that is not {'data': N}", 502
        ) from None
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        raise PersistenceError(f"persistence answered a bad number: {number!r}", 502)
    return number


def _error_from(body: bytes) -> str | None:
    try:
        message = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return None
    return str(message) if message else None


def _reason(error: Exception) -> str:
    # urllib3 wraps the socket error; its innermost reason reads best ("Connection refused").
    reason: object = getattr(error, "reason", None) or error
    while getattr(reason, "reason", None) is not None:
        reason = getattr(reason, "reason")  # noqa: B009
    text = str(reason)
    return text.split(": ", 1)[-1] if "object at 0x" in text else text
