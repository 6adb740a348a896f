"""kafka-python client construction from :class:`~stream_monitor.config.KafkaSettings`.

One place decides security options, timeouts and serialisation for every client we create, so
the consumer, the transactional producer, the admin client, the restore consumer and the
bridges all connect the same way. Secrets are read here and never logged.
"""

from __future__ import annotations

from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.coordinator.assignors.range import RangePartitionAssignor

from stream_monitor.config import KafkaSettings


def security_options(settings: KafkaSettings) -> dict[str, Any]:
    """Connection and security options shared by all clients."""
    opts: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "security_protocol": settings.security_protocol,
    }
    if settings.security_protocol.startswith("SASL"):
        opts["sasl_mechanism"] = settings.sasl_mechanism or "PLAIN"
        opts["sasl_plain_username"] = settings.sasl_username
        opts["sasl_plain_password"] = settings.password()
    if settings.security_protocol.endswith("SSL"):
        if settings.ssl_cafile:
            opts["ssl_cafile"] = str(settings.ssl_cafile)
        if settings.ssl_certfile:
            opts["ssl_certfile"] = str(settings.ssl_certfile)
        if settings.ssl_keyfile:
            opts["ssl_keyfile"] = str(settings.ssl_keyfile)
        opts["ssl_check_hostname"] = settings.ssl_check_hostname
    return opts


def _client_options(settings: KafkaSettings, kind: str) -> dict[str, Any]:
    extra = settings.client_options
    return {**extra.get("common", {}), **extra.get(kind, {})}


def group_consumer(settings: KafkaSettings, client_id: str) -> KafkaConsumer:
    """The group member that reads input topics: manual commits, read_committed, range assignment.

    Range assignment gives one member the same partition number of every subscribed topic, so
    co-partitioned inference and label topics meet in one partition task.
    """
    return KafkaConsumer(
        **security_options(settings),
        client_id=client_id,
        group_id=settings.group_id,
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset=settings.auto_offset_reset,
        max_poll_records=settings.max_poll_records,
        session_timeout_ms=settings.session_timeout_ms,
        heartbeat_interval_ms=max(1000, settings.session_timeout_ms // 4),
        partition_assignment_strategy=[RangePartitionAssignor],
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        **_client_options(settings, "consumer"),
    )


def plain_consumer(settings: KafkaSettings, client_id: str, read_committed: bool = True) -> KafkaConsumer:
    """A group-less consumer for manual assignment (state restore, replay, tests)."""
    return KafkaConsumer(
        **security_options(settings),
        client_id=client_id,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed" if read_committed else "read_uncommitted",
        auto_offset_reset="earliest",
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=16 * 1024 * 1024,
        **_client_options(settings, "consumer"),
    )


def producer(settings: KafkaSettings, client_id: str, transactional_id: str | None) -> KafkaProducer:
    """Idempotent producer (``acks=all``); transactional when ``transactional_id`` is given."""
    opts: dict[str, Any] = {
        **security_options(settings),
        "client_id": client_id,
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 5,
        "max_request_size": 16 * 1024 * 1024,
        "retries": 2**31 - 1,
        "delivery_timeout_ms": 120_000,
    }
    if transactional_id is not None:
        opts["transactional_id"] = transactional_id
        opts["transaction_timeout_ms"] = settings.transaction_timeout_ms
    opts.update(_client_options(settings, "producer"))
    return KafkaProducer(**opts)


def admin(settings: KafkaSettings, client_id: str) -> KafkaAdminClient:
    return KafkaAdminClient(**security_options(settings), client_id=client_id, **_client_options(settings, "admin"))
