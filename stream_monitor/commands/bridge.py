"""``stream-monitor bridge alertmanager|pagerduty|retraining``: forward alert events to on-call tooling, retraining events to a webhook."""

from __future__ import annotations

import argparse
import threading

import structlog

from stream_monitor.bridges.options import options_from_args
from stream_monitor.bridges.runner import BridgeRunner
from stream_monitor.bridges.sinks import build_sink
from stream_monitor.commands.common import config_dir, configure_logs, load_app_config
from stream_monitor.commands.run import install_stop_handlers
from stream_monitor.ops.health import BrokerProbe, HealthServer
from stream_monitor.ops.metrics import BridgeMetrics

log = structlog.get_logger("stream_monitor.bridge")


def cmd_bridge(args: argparse.Namespace) -> int:
    """Run the bridge until SIGTERM/SIGINT (exit 0); a bad option exits 2 naming it."""
    stop = threading.Event()
    install_stop_handlers(stop.set)
    # --group-id names the bridge's group, not the monitor's: keep kafka.group_id as configured
    cfg = load_app_config(args, {"kafka.group_id": None})
    configure_logs(cfg)
    opts = options_from_args(args, cfg, config_dir(args))  # BridgeUsageError: exit 2
    metrics = BridgeMetrics(opts.target)
    sink = build_sink(opts, metrics, stop)
    topic = cfg.retraining.topic if opts.target == "retraining" else None  # None: the alert topic
    runner = BridgeRunner(cfg.kafka, opts, sink, metrics, stop, client_id=f"stream-monitor-bridge-{opts.target}-{cfg.instance}", topic=topic)
    server = None
    if opts.metrics_port is not None:
        checks = [BrokerProbe(cfg.kafka.bootstrap_servers)] if cfg.metrics.readiness_checks_broker else []
        server = HealthServer(metrics, cfg.metrics.host, opts.metrics_port, runner.readiness, checks).start()
        log.info("http_listening", host=cfg.metrics.host, port=server.port)
    try:
        return runner.run()
    finally:
        if server is not None:
            server.stop()
