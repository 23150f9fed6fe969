from __future__ import annotations

import pytest

from hashstack.config import ConfigError, Settings, host_port


def test_defaults_without_environment() -> None:
    settings = Settings.from_env({})
    assert settings.port == 8080
    assert settings.store == "etcd"
    assert settings.block_size == 100
    assert settings.request_timeout == 2.0
    assert settings.etcd_endpoints == ("http://127.0.0.1:2379",)


def test_reads_every_documented_variable() -> None:
    settings = Settings.from_env(
        {
            "PORT": "9000",
            "PERSISTENCE_URL": "http://persistence:81/",
            "ETCD_ENDPOINTS": "http://a:2379, http://b:2379 ,http://c:2379",
            "COUNTER_KEY": "/x/y",
            "BLOCK_SIZE": "1",
            "STORE": "MEMORY",
            "REQUEST_TIMEOUT": "0.5",
            "LOG_LEVEL": "debug",
            "WEB_CONCURRENCY": "3",
            "THREADS": "7",
            "GUNICORN_RELOAD": "true",
            "PERSISTENCE_MAX_CALLS_PER_CONNECTION": "50",
            "PERSISTENCE_MAX_CONNECTION_AGE": "1.5",
        }
    )
    assert settings.port == 9000
    assert settings.persistence_url == "http://persistence:81"
    assert settings.etcd_endpoints == ("http://a:2379", "http://b:2379", "http://c:2379")
    assert (settings.counter_key, settings.block_size, settings.store) == ("/x/y", 1, "memory")
    assert (settings.request_timeout, settings.log_level) == (0.5, "debug")
    assert (settings.web_concurrency, settings.threads, settings.reload) == (3, 7, True)
    assert settings.persistence_max_calls_per_connection == 50
    assert settings.persistence_max_connection_age == 1.5


def test_seed_style_address_without_scheme_means_http() -> None:
    assert Settings.from_env({"PERSISTENCE_URL": "localhost:8081"}).persistence_url == (
        "http://localhost:8081"
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "eighty"),
        ("PORT", "0"),
        ("PORT", "70000"),
        ("BLOCK_SIZE", "0"),
        ("BLOCK_SIZE", "-5"),
        ("STORE", "redis"),
        ("REQUEST_TIMEOUT", "soon"),
        ("REQUEST_TIMEOUT", "0"),
        ("LOG_LEVEL", "loud"),
        ("WEB_CONCURRENCY", "many"),
        ("GUNICORN_RELOAD", "perhaps"),
        ("PERSISTENCE_URL", "ftp://x:1"),
        ("PERSISTENCE_URL", "http://host:port"),
        ("ETCD_ENDPOINTS", " , "),
        ("PERSISTENCE_MAX_CALLS_PER_CONNECTION", "0"),
        ("PERSISTENCE_MAX_CONNECTION_AGE", "0"),
        ("OTEL_TRACES_EXPORTER", "jaeger"),
        ("OTEL_SDK_DISABLED", "maybe"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "grpc://collector:4317"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_host_port_uses_default_port_when_url_has_none() -> None:
    assert host_port("http://etcd", 2379) == ("etcd", 2379)
    assert host_port("http://etcd:1234", 2379) == ("etcd", 1234)


def test_tracing_is_off_unless_the_exporter_is_otlp() -> None:
    assert Settings.from_env({}).traces_exporter == "none"
    on = Settings.from_env({"OTEL_TRACES_EXPORTER": "otlp"})
    assert (on.traces_exporter, on.otlp_traces_endpoint) == (
        "otlp",
        "http://localhost:4318/v1/traces",
    )
    disabled = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}
    assert Settings.from_env(disabled).traces_exporter == "none"


def test_otlp_endpoint_as_the_specification_builds_it() -> None:
    base = Settings.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"})
    assert base.otlp_traces_endpoint == "http://collector:4318/v1/traces"
    given = Settings.from_env(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://traces.example:443/otlp/v1/traces",
        }
    )
    assert given.otlp_traces_endpoint == "https://traces.example:443/otlp/v1/traces"
    assert Settings.from_env({"OTEL_SERVICE_NAME": "hash-eu"}).otel_service_name == "hash-eu"
