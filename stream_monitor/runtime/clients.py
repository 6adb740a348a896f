"""kafka-python client construction from :class:`~stream_monitor.config.KafkaSettings`.

One place decides security options, timeouts and serialisation for every client we create, so
the consumer, the transactional producer, the admin client, the restore consumer and the
bridges all connect the same way. Secrets are read here and never logged.
"""

from __future__ import annotations

import logging
import selectors
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.coordinator.assignors.range import RangePartitionAssignor

from stream_monitor.config import KafkaSettings
from stream_monitor.runtime import receive
from stream_monitor.runtime.kafka_compat import install_fast_records, keep_transactional_requests, quick_transactional_retries


class RedactedStr(str):
    """A secret passed to kafka-python: the value for authentication, a mask in any ``repr``.

    kafka-python logs its whole configuration dict at DEBUG (``KafkaAdminClient``: "Starting
    KafkaAdminClient with configuration: {...}"); a dict renders its values with ``repr``, so
    the password shows as a mask there while SASL/TLS still get the real string.

    >>> s = RedactedStr("hunter2")
    >>> s == "hunter2", s.encode(), repr(s), str({"sasl_plain_password": s})
    (True, b'hunter2', "'**********'", "{'sasl_plain_password': '**********'}")
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "'**********'"


def _redacted(value: str | None) -> str | None:
    return None if value is None else RedactedStr(value)


_SASL_AUTHENTICATE_API_KEY = (36).to_bytes(2, "big")
# kafka-python modules whose DEBUG records dump requests and raw wire bytes
_WIRE_LOGGERS = ("kafka.protocol.parser", "kafka.net.connection", "kafka.conn")


def _frames_hold_sasl_authenticate(data: bytes | bytearray | memoryview) -> bool:
    """Does a buffer of size-prefixed Kafka request frames contain a SaslAuthenticate request?

    >>> frame = lambda key: (8).to_bytes(4, "big") + key.to_bytes(2, "big") + bytes(6)
    >>> _frames_hold_sasl_authenticate(frame(3) + frame(36)), _frames_hold_sasl_authenticate(frame(3))
    (True, False)
    """
    buf = bytes(data)
    i = 0
    while i + 6 <= len(buf):
        if buf[i + 4 : i + 6] == _SASL_AUTHENTICATE_API_KEY:
            return True
        i += 4 + int.from_bytes(buf[i : i + 4], "big")
    return False


class SaslLogRedactor(logging.Filter):
    """Masks SASL credentials in kafka-python's DEBUG wire logs (stateless).

    With DEBUG enabled for kafka-python, its protocol layer logs every request object and the raw
    bytes it sends; for SASL/PLAIN the SaslAuthenticate request carries the password in clear
    (inside TLS). This filter rewrites those records; everything else passes untouched.
    stream-monitor never enables kafka-python DEBUG logging itself — this guards embedders and
    operators who do.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite SASL authentication arguments of ``record``; always lets it through."""
        args = record.args
        if not args or not isinstance(args, tuple):
            return True
        cleaned: list[object] = []
        changed = False
        for arg in args:
            if type(arg).__name__.startswith("SaslAuthenticate") and type(arg).__name__.endswith("Request"):
                cleaned.append(f"{type(arg).__name__}(auth_bytes=<redacted>)")
                changed = True
            elif isinstance(arg, (bytes, bytearray, memoryview)) and _frames_hold_sasl_authenticate(arg):
                cleaned.append(f"<{len(arg)} bytes, SASL authentication redacted>")
                changed = True
            else:
                cleaned.append(arg)
        if changed:
            record.args = tuple(cleaned)
        return True


def install_sasl_log_redaction() -> None:
    """Attach one :class:`SaslLogRedactor` to each kafka-python wire logger (idempotent)."""
    for name in _WIRE_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, SaslLogRedactor) for f in logger.filters):
            logger.addFilter(SaslLogRedactor())


class QuietMissSelector(selectors.DefaultSelector):  # type: ignore[misc, valid-type]
    """The platform's default selector, whose ``get_key`` of an unregistered socket does not format the socket.

    kafka-python's ``NetworkSelector.register_event`` asks ``get_key`` first and registers on
    ``KeyError``, which is the usual case: each socket wait registers anew. The standard library
    formats ``repr(socket)`` into that ``KeyError`` twice (two system calls each, for the addresses),
    which was ~5 % of the CPU of the client threads of ``run`` (a py-spy profile of bench row (e)).
    Same answers and errors otherwise; kafka-python takes the class through its public ``selector``
    option. Its clients' connections are read by :mod:`stream_monitor.runtime.receive` (its ``MARK``).
    """

    stream_monitor_receive = True  # receive.MARK

    def get_key(self, fileobj: Any) -> selectors.SelectorKey:
        """The key of a registered ``fileobj``; ``KeyError(fileobj)`` when it is not registered (nothing formatted)."""
        if self._map is None:  # as the base class: closed
            raise RuntimeError("Selector is closed")
        try:
            return self._fd_to_key[self._fileobj_lookup(fileobj)]
        except KeyError:
            raise KeyError(fileobj) from None


def security_options(settings: KafkaSettings) -> dict[str, Any]:
    """Connection and security options shared by all clients (and :class:`QuietMissSelector`, read by :mod:`.receive`)."""
    receive.install()
    opts: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "security_protocol": settings.security_protocol,
        "selector": QuietMissSelector,
    }
    if settings.security_protocol.startswith("SASL"):
        # kafka-python takes the PLAIN and SCRAM credentials from the same two options
        install_sasl_log_redaction()
        opts["sasl_mechanism"] = settings.sasl_mechanism or "PLAIN"
        opts["sasl_plain_username"] = settings.sasl_username
        opts["sasl_plain_password"] = _redacted(settings.password())
    if settings.security_protocol.endswith("SSL"):
        if settings.ssl_cafile:
            opts["ssl_cafile"] = str(settings.ssl_cafile)
        if settings.ssl_certfile:
            opts["ssl_certfile"] = str(settings.ssl_certfile)
        if settings.ssl_keyfile:
            opts["ssl_keyfile"] = str(settings.ssl_keyfile)
        key_password = settings.ssl_key_password()
        if key_password is not None:
            opts["ssl_password"] = RedactedStr(key_password)
        opts["ssl_check_hostname"] = settings.ssl_check_hostname
    return opts


def describe_security(settings: KafkaSettings) -> dict[str, Any]:
    """What :func:`security_options` configures, safe to log: secrets are never included.

    >>> from pydantic import SecretStr
    >>> s = KafkaSettings(security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-256",
    ...                   sasl_username="svc", sasl_password=SecretStr("hunter2"))
    >>> describe_security(s)
    {'security_protocol': 'SASL_SSL', 'sasl_mechanism': 'SCRAM-SHA-256', 'sasl_username': 'svc', 'sasl_password_from': 'setting', 'ssl_cafile': None, 'ssl_client_cert': False, 'ssl_check_hostname': True}
    """
    out: dict[str, Any] = {"security_protocol": settings.security_protocol}
    if settings.security_protocol.startswith("SASL"):
        out["sasl_mechanism"] = settings.sasl_mechanism or "PLAIN"
        out["sasl_username"] = settings.sasl_username
        out["sasl_password_from"] = "file" if settings.sasl_password_file is not None else "setting"
    if settings.security_protocol.endswith("SSL"):
        out["ssl_cafile"] = str(settings.ssl_cafile) if settings.ssl_cafile else None
        out["ssl_client_cert"] = settings.ssl_certfile is not None
        out["ssl_check_hostname"] = settings.ssl_check_hostname
    return out


def _client_options(settings: KafkaSettings, kind: str) -> dict[str, Any]:
    extra = settings.client_options
    return {**extra.get("common", {}), **extra.get(kind, {})}


def group_consumer(settings: KafkaSettings, client_id: str) -> KafkaConsumer:
    """The group member that reads input topics: manual commits, read_committed, range assignment.

    Range assignment gives one member the same partition number of every subscribed topic, so
    co-partitioned inference and label topics meet in one partition task.

    Fetches wait for up to ``fetch_max_wait_ms`` (40 ms) until ``fetch_min_bytes`` (256 KiB) are
    there: a monitor that is keeping up then processes batches of tens to hundreds of records
    instead of one per handful of records, whose per-batch cost (per channel and per partition)
    would dominate; a page waits for two such fetches (the input's, the by-model topic's). 40 ms
    rather than 100: on the latency bench's stream at 1,500 events/s, p50 / p99 event->alert 0.87–0.92
    / 1.02–1.11 s against 1.00–1.09 / 1.12–1.90 s (two runs each, alternating, busy machine); a
    backlog fills ``fetch_min_bytes`` at once either way. ``kafka.fetch_max_wait_ms`` sets the wait (10 ms: p50 / p99
    0.77–0.81 / 0.91–0.95 s against 0.85–0.97 / 1.08–1.16 s at 6,564 events/s with 0.5 s lateness, two runs
    each alternating, quiet machine; the monitor's CPU at 500 events/s 0.28–0.31 of a core against 0.23).
    ``client_options.consumer`` overrides any of these.

    Fetched batches are decoded a batch at a time (:func:`~stream_monitor.runtime.kafka_compat.install_fast_records`),
    as for :func:`plain_consumer`.
    """
    opts: dict[str, Any] = {
        **security_options(settings),
        "client_id": client_id,
        "group_id": settings.group_id,
        "enable_auto_commit": False,
        "isolation_level": "read_committed",
        "auto_offset_reset": settings.auto_offset_reset,
        "max_poll_records": settings.max_poll_records,
        "session_timeout_ms": settings.session_timeout_ms,
        "heartbeat_interval_ms": max(1000, settings.session_timeout_ms // 4),
        "partition_assignment_strategy": [RangePartitionAssignor],
        "fetch_max_bytes": 64 * 1024 * 1024,
        "max_partition_fetch_bytes": 8 * 1024 * 1024,
        "fetch_min_bytes": 256 * 1024,
        "fetch_max_wait_ms": settings.fetch_max_wait_ms,
    }
    opts.update(_client_options(settings, "consumer"))
    consumer = KafkaConsumer(**opts)
    install_fast_records(consumer)
    return consumer


def plain_consumer(settings: KafkaSettings, client_id: str, read_committed: bool = True) -> KafkaConsumer:
    """A group-less consumer for manual assignment (state restore, replay, tests).

    ``client_options.consumer`` overrides the fetch sizes here too (and anything else but the
    group-less essentials below).
    """
    opts: dict[str, Any] = {
        **security_options(settings),
        "auto_offset_reset": "earliest",
        "fetch_max_bytes": 64 * 1024 * 1024,
        "max_partition_fetch_bytes": 16 * 1024 * 1024,
    }
    opts.update(_client_options(settings, "consumer"))
    for essential in ("client_id", "group_id", "enable_auto_commit", "isolation_level"):
        opts.pop(essential, None)
    consumer = KafkaConsumer(
        **opts,
        client_id=client_id,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed" if read_committed else "read_uncommitted",
    )
    install_fast_records(consumer)
    return consumer


DEFAULT_MAX_REQUEST_SIZE = 16 * 1024 * 1024
# kafka-python's producer sends at most one batch per partition in a request, five requests in flight
# per broker: with its default 16 KiB batches the 2.25 MB of a full checkpoint at the latency bench's
# 7,614 events/s (two changelog partitions) took ~14 round trips, ~150 ms between the commit's begin
# and the broker's answer, blocking the loop. Batches are not allocated ahead (they grow as records
# are added), so a larger bound costs nothing for small sends. 256 KiB: latency row p50/p99 732/850 and
# 708/915 ms (1 MiB: 692/792, 698/837; 16 KiB: 811/1,086, 733/1,059); 1 MiB cost bench row (e) ~1 s more
# wall time beyond its processing (four runs each, alternating: 6.9-7.6 s against 5.5-7.7 s with 16 KiB,
# 5.9-6.1 s with 256 KiB), not understood.
PRODUCER_BATCH_BYTES = 256 * 1024
# bytes of a produce request besides one record's key and value (headers, batch and record framing)
RECORD_OVERHEAD_BYTES = 1024


def max_request_size(settings: KafkaSettings) -> int:
    """The producer's ``max_request_size``: the default, or ``client_options`` (producer or common).

    >>> max_request_size(KafkaSettings()), max_request_size(KafkaSettings(client_options={"producer": {"max_request_size": 2048}}))
    (16777216, 2048)
    """
    opts = _client_options(settings, "producer")
    return int(opts.get("max_request_size", DEFAULT_MAX_REQUEST_SIZE))


def max_record_bytes(settings: KafkaSettings) -> int:
    """The largest key plus value the monitor sends: a record of this size always fits a request."""
    return max_request_size(settings) - RECORD_OVERHEAD_BYTES


def producer(settings: KafkaSettings, client_id: str, transactional_id: str | None) -> KafkaProducer:
    """Idempotent producer (``acks=all``); transactional when ``transactional_id`` is given.

    A transactional one keeps its transactional requests through a broker restart
    (:func:`~stream_monitor.runtime.kafka_compat.keep_transactional_requests`) and retries them after
    20 ms rather than 100 unless ``retry_backoff_ms`` is configured (:func:`~stream_monitor.runtime.kafka_compat.quick_transactional_retries`).
    """
    opts: dict[str, Any] = {
        **security_options(settings),
        "client_id": client_id,
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 5,
        "batch_size": PRODUCER_BATCH_BYTES,
        "max_request_size": DEFAULT_MAX_REQUEST_SIZE,
        "retries": 2**31 - 1,
        "delivery_timeout_ms": 120_000,
        "compression_type": None if settings.compression_type == "none" else settings.compression_type,
    }
    if transactional_id is not None:
        opts["transactional_id"] = transactional_id
        opts["transaction_timeout_ms"] = settings.transaction_timeout_ms
    opts.update(_client_options(settings, "producer"))
    made = KafkaProducer(**opts)
    if transactional_id is not None:
        keep_transactional_requests(made)
        if "retry_backoff_ms" not in opts:
            quick_transactional_retries(made)
    return made


def admin(settings: KafkaSettings, client_id: str) -> KafkaAdminClient:
    """An admin client (topic checks and creation)."""
    return KafkaAdminClient(**security_options(settings), client_id=client_id, **_client_options(settings, "admin"))
