"""Chooses the counter store named by STORE."""

from __future__ import annotations

import logging

from .config import Settings
from .counter import Counter

log = logging.getLogger(__name__)


def open_counter(settings: Settings) -> Counter:
    if settings.store == "memory":
        from .memory_counter import MemoryCounter

        log.warning(
            "STORE=memory: numbers live in this process only. They restart at 1 and repeat "
            "across workers, replicas and restarts. Use it for development, never in production."
        )
        return MemoryCounter()
    from .etcd_counter import EtcdCounter, EtcdTLS

    tls = EtcdTLS(settings.etcd_ca_file, settings.etcd_cert_file, settings.etcd_key_file)
    return EtcdCounter(settings.etcd_endpoints, settings.counter_key, settings.request_timeout, tls)
