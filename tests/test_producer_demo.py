"""The compose stack's demo producer: argument parsing and a bounded wait for a missing broker."""

from __future__ import annotations

import signal
import time

import structlog

from stream_monitor import demo_stream
from tests.integration.servers import free_ports


def test_gives_up_on_a_missing_broker_within_the_bound():
    (port,) = free_ports(1)
    saved = structlog.get_config()
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    started = time.monotonic()
    try:
        code = demo_stream.main(["--bootstrap-servers", f"127.0.0.1:{port}", "--connect-timeout", "1", "--log-format", "console"])
    finally:
        structlog.configure(**saved)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    assert code == 1
    assert time.monotonic() - started < 30


def test_parser_defaults():
    args = demo_stream.build_parser().parse_args(["--bootstrap-servers", "kafka:9092"])
    assert args.topic == "inference-events" and not args.loop and args.rate > 0


def test_demo_monitor_gets_a_random_state_secret_of_its_own():
    """`stream-monitor demo` configures its monitor with a fresh random secret of at least 32 bytes."""
    from stream_monitor.commands.demo import demo_config

    configs = [demo_config("127.0.0.1:9092", "abc123", "in", "alerts") for _ in range(2)]
    keys = [cfg.state.signing_keys().current for cfg in configs]  # raises unless a real secret (>= 32 bytes)
    assert keys[0] != keys[1]
    assert b"abc123" not in keys[0], "the secret must not be derived from the run id"


def test_demo_waits_for_the_rows_held_for_event_time_order_before_it_stops():
    """The demo stops SETTLE_S after every event is read; the rows the monitor still holds for
    event-time order (the last max_lateness_seconds of the stream) are judged only once the input
    partitions count as idle, so the wait must outlast the idle timeout (else the end's alerts,
    fraud-v3's resolves among them, are never printed)."""
    from stream_monitor.commands.demo import SETTLE_S, demo_config

    cfg = demo_config("127.0.0.1:9092", "abc123", "in", "alerts")
    assert SETTLE_S > cfg.kafka.idle_timeout_ms / 1000 + 1.0
