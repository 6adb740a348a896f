"""``stream-monitor run``: the monitor as a consumer-group member (the sidecar), with its HTTP endpoints."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from typing import Any, Callable

import structlog

from stream_monitor.commands.common import EXIT_RUNTIME, config_dir, configure_logs, load_app_config
from stream_monitor.ops.health import BrokerProbe, HealthServer
from stream_monitor.ops.metrics import MonitorMetrics
from stream_monitor.ops.collector import tune_collector
from stream_monitor.runtime.app import MonitorApp

SHUTDOWN_BOUND_S = 30.0


def install_stop_handlers(stop: Callable[[], Any]) -> None:
    """Call ``stop`` on SIGTERM and SIGINT."""

    def handler(signum: int, _frame: Any) -> None:
        stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _shutdown_watchdog(stop_requested: threading.Event, bound_s: float) -> None:
    """After a stop request the monitor gets ``bound_s`` to commit and close; then we exit 1."""
    stop_requested.wait()
    time.sleep(bound_s)
    sys.stderr.write(f"stream-monitor: did not stop within {bound_s:g} s of SIGTERM; exiting without a final commit\n")
    os._exit(EXIT_RUNTIME)


def cmd_run(args: argparse.Namespace) -> int:
    """Run the monitor until SIGTERM/SIGINT; the exit code of :meth:`MonitorApp.run`."""
    stop_requested = threading.Event()  # SIGTERM during start-up must still mean "stop cleanly"
    install_stop_handlers(stop_requested.set)
    threading.Thread(target=_shutdown_watchdog, args=(stop_requested, SHUTDOWN_BOUND_S), daemon=True).start()
    cfg = load_app_config(args)
    configure_logs(cfg)
    metrics = MonitorMetrics(cfg.metrics.max_channel_series, cfg.metrics.liveness_timeout_seconds, cfg.metrics.max_model_series)
    base_dir = config_dir(args)
    app = MonitorApp(cfg, metrics, stop_event=stop_requested, base_dir=str(base_dir) if base_dir else None)
    server = None
    if cfg.metrics.enabled:
        checks = [BrokerProbe(cfg.kafka.bootstrap_servers)] if cfg.metrics.readiness_checks_broker else []
        server = HealthServer(metrics, cfg.metrics.host, cfg.metrics.port, app.readiness, checks).start()
        structlog.get_logger("stream_monitor.commands").info("http_listening", host=cfg.metrics.host, port=server.port)
    tune_collector()
    try:
        return app.run()
    finally:
        if server is not None:
            server.stop()
