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
