"""Every setting of every service, read from the environment in this one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

STORES = ("etcd", "memory")
TRACES_EXPORTERS = ("none", "otlp")
# OTLP/HTTP's standard default (OpenTelemetry's exporter specification).
OTLP_DEFAULT_ENDPOINT = "http://localhost:4318"
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class ConfigError(ValueError):
    """A setting has a value the services cannot use; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    host: str = "0.0.0.0"
    port: int = 8080
    # 0: /metrics on `port` with the API; else only on this port (a scraper-only port).
    metrics_port: int = 0
    persistence_url: str = "http://127.0.0.1:8081"
    etcd_endpoints: tuple[str, ...] = ("http://127.0.0.1:2379",)
    counter_key: str = "/hashstack/counter"
    block_size: int = 100
    store: str = "etcd"
    request_timeout: float = 2.0
    # hash closes a pooled connection to persistence after this many calls or seconds, so its
    # calls spread over every persistence pod and worker (docs/scaling.md has the measurements).
    # The age stays below gunicorn's 5 s keep-alive: never reuse a connection the server closes.
    persistence_max_calls_per_connection: int = 20
    persistence_max_connection_age: float = 3.0
    log_level: str = "info"
    web_concurrency: int = 2
    threads: int = 4
    reload: bool = False
    # Under /tmp: the only writable path with a read-only root filesystem.
    metrics_dir: str = "/tmp/hashstack-metrics"  # noqa: S108
    etcd_ca_file: str | None = None
    etcd_cert_file: str | None = None
    etcd_key_file: str | None = None
    # Tracing (hashstack.tracing): on with OTEL_TRACES_EXPORTER=otlp, unless OTEL_SDK_DISABLED.
    traces_exporter: str = "none"
    otlp_traces_endpoint: str = f"{OTLP_DEFAULT_ENDPOINT}/v1/traces"
    otel_service_name: str | None = None  # None: the service's own name

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        reader = _Reader(env)
        return cls(
            host=reader.text("HOST", cls.host),
            port=reader.integer("PORT", cls.port, low=1, high=65535),
            metrics_port=reader.integer("METRICS_PORT", cls.metrics_port, low=0, high=65535),
            persistence_url=reader.url("PERSISTENCE_URL", cls.persistence_url),
            etcd_endpoints=reader.url_list("ETCD_ENDPOINTS", cls.etcd_endpoints),
            counter_key=reader.text("COUNTER_KEY", cls.counter_key),
            block_size=reader.integer("BLOCK_SIZE", cls.block_size, low=1, high=1_000_000),
            store=reader.choice("STORE", cls.store, STORES),
            request_timeout=reader.number("REQUEST_TIMEOUT", cls.request_timeout, low=0.01),
            persistence_max_calls_per_connection=reader.integer(
                "PERSISTENCE_MAX_CALLS_PER_CONNECTION",
                cls.persistence_max_calls_per_connection,
                low=1,
                high=1_000_000,
            ),
            persistence_max_connection_age=reader.number(
                "PERSISTENCE_MAX_CONNECTION_AGE", cls.persistence_max_connection_age, low=0.1
            ),
            log_level=reader.choice("LOG_LEVEL", cls.log_level, LOG_LEVELS),
            web_concurrency=reader.integer("WEB_CONCURRENCY", cls.web_concurrency, low=1, high=64),
            threads=reader.integer("THREADS", cls.threads, low=1, high=256),
            reload=reader.boolean("GUNICORN_RELOAD", cls.reload),
            metrics_dir=reader.text("PROMETHEUS_MULTIPROC_DIR", cls.metrics_dir),
            etcd_ca_file=reader.optional("ETCD_CA_FILE"),
            etcd_cert_file=reader.optional("ETCD_CERT_FILE"),
            etcd_key_file=reader.optional("ETCD_KEY_FILE"),
            traces_exporter=(
                "none"
                if reader.boolean("OTEL_SDK_DISABLED", False)
                else reader.choice("OTEL_TRACES_EXPORTER", cls.traces_exporter, TRACES_EXPORTERS)
            ),
            otlp_traces_endpoint=_otlp_traces_endpoint(reader),
            otel_service_name=reader.optional("OTEL_SERVICE_NAME"),
        )


@dataclass(frozen=True)
class _Reader:
    env: Mapping[str, str]

    def _raw(self, name: str) -> str | None:
        value = self.env.get(name, "").strip()
        return value or None

    def text(self, name: str, default: str) -> str:
        return self._raw(name) or default

    def optional(self, name: str) -> str | None:
        return self._raw(name)

    def integer(self, name: str, default: int, *, low: int, high: int) -> int:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r}: expected a whole number") from None
        if not low <= value <= high:
            raise ConfigError(f"{name}={value}: expected {low}..{high}")
        return value

    def number(self, name: str, default: float, *, low: float) -> float:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r}: expected a number of seconds") from None
        if not value >= low:
            raise ConfigError(f"{name}={value}: expected at least {low}")
        return value

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = (self._raw(name) or default).lower()
        if value not in choices:
            raise ConfigError(f"{name}={value!r}: expected one of {', '.join(choices)}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self._raw(name)
        if raw is None:
            return default
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name}={raw!r}: expected true or false")

    def url(self, name: str, default: str) -> str:
        return _check_url(name, self._raw(name) or default)

    def url_list(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        raw = self._raw(name)
        if raw is None:
            return default
        urls = tuple(_check_url(name, part.strip()) for part in raw.split(",") if part.strip())
        if not urls:
            raise ConfigError(f"{name}={raw!r}: expected at least one http://host:port")
        return urls


def _otlp_traces_endpoint(reader: _Reader) -> str:
    """OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as given, else OTEL_EXPORTER_OTLP_ENDPOINT's
    /v1/traces (the specification's rule for OTLP/HTTP)."""
    if reader.optional("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return reader.url("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
    base = reader.url("OTEL_EXPORTER_OTLP_ENDPOINT", OTLP_DEFAULT_ENDPOINT)
    return f"{base}/v1/traces"


def _check_url(name: str, value: str) -> str:
    # The seed passed "localhost:8081" without a scheme; accept it and mean http.
    if "://" not in value:
        value = f"http://{value}"
    parts = urlsplit(value)
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"{name}={value!r}: the port is not a number") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or port == 0:
        raise ConfigError(f"{name}={value!r}: expected http://host:port")
    return value.rstrip("/")


def host_port(url: str, default_port: int) -> tuple[str, int]:
    """The host and port of a URL that _check_url accepted."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    return parts.hostname, parts.port or default_port
