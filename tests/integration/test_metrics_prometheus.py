"""``stream-monitor run`` scraped by a real Prometheus server, on the real broker.

The monitor runs as a subprocess (the CLI, as deployed) over a drifting stream; a Prometheus
started by the test scrapes it every second, and PromQL through Prometheus' HTTP API must return
the series an operator relies on. ``/healthz`` and ``/readyz`` are checked on the same port, and SIGTERM
must end the process with exit code 0 within a bound.
"""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from kafka import KafkaProducer

from stream_monitor.synthetic import demo_streams, generate_events
from tests.integration.harness import STATE_SECRET
from tests.integration.servers import free_ports, http, prometheus_server, promql, start_monitor_cli, stop_process, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]

N = 8_000  # events per model: fraud-v3 drifts at 30 %, churn-v1 stays stationary
BAD = [b"{not json", b'{"model": 5}', b'{"model": "fraud-v3", "ts": "yesterday"}']
SIGTERM_BOUND_S = 30.0


def _produce(bootstrap: str, topic: str) -> int:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks="all", max_block_ms=20_000)
    fraud, churn = demo_streams(N, 42)
    n = 0
    for a, b in zip(generate_events(fraud), generate_events(churn), strict=True):
        for event in (a, b):
            producer.send(topic, key=event["model"].encode(), value=orjson.dumps(event))
            n += 1
    for raw in BAD:
        producer.send(topic, key=b"raw", value=raw)
        n += 1
    producer.flush(timeout=60)
    producer.close()
    return n


def _value(result: list[dict]) -> float:
    return sum(float(r["value"][1]) for r in result)


def test_prometheus_scrapes_monitor_metrics(kafka_bootstrap, topic_factory, unique_name, tmp_path: Path):
    topic = topic_factory(partitions=2)
    alerts, group = unique_name("alerts"), unique_name("group")
    total = _produce(kafka_bootstrap, topic)
    metrics_port, prom_port = free_ports(2)
    prometheus = prometheus_server(tmp_path / "prometheus", {"stream-monitor": f"127.0.0.1:{metrics_port}"}, prom_port)

    log_path = tmp_path / "monitor.log"
    proc, alive = start_monitor_cli(kafka_bootstrap, topic, alerts, group, metrics_port, log_path, STATE_SECRET)

    base = f"http://127.0.0.1:{metrics_port}"
    try:
        # the first answer of /readyz comes before the group assigned partitions: 503
        first_ready = wait_for("the monitor's HTTP server", lambda: http("GET", base + "/readyz", timeout=1), 60, 0.02, alive)
        assert first_ready[0] == 503, first_ready
        assert http("GET", base + "/healthz")[0] == 200
        status, body = wait_for("/readyz 200", lambda: (r := http("GET", base + "/readyz"))[0] == 200 and r, 90, 0.2, alive)
        assert b"assigned" in body and b"reachable" in body, body

        prometheus.start()
        up = wait_for("up{job=stream-monitor} == 1", lambda: _value(promql(prometheus, 'up{job="stream-monitor"}')) == 1, 60, 0.5, alive)
        assert up

        consumed = 'sum(stream_monitor_records_consumed_total{job="stream-monitor"})'
        # >=: a rolled-back checkpoint re-processes (and re-counts) records
        wait_for(f"{consumed} >= {total}", lambda: _value(promql(prometheus, consumed)) >= total, 180, 1.0, alive)

        # alerts fired for the drifting model, by model/kind/severity/status
        firing = wait_for(
            "firing alerts series",
            lambda: promql(prometheus, 'stream_monitor_alerts_total{status="firing",model="fraud-v3"}'),
            60,
            1.0,
            alive,
        )
        kinds = {r["metric"]["kind"] for r in firing}
        assert "data_drift" in kinds, firing
        assert all(r["metric"]["severity"] in ("info", "warning", "critical") for r in firing)
        assert not promql(prometheus, 'stream_monitor_alerts_total{model="churn-v1"}'), "stationary model alerted"

        # per-topic/partition counters, dead letters by reason, lag, timings, gauges
        per_partition = promql(prometheus, f'stream_monitor_records_consumed_total{{topic="{topic}"}}')
        assert {r["metric"]["partition"] for r in per_partition} <= {"0", "1"} and per_partition
        invalid = promql(prometheus, "stream_monitor_invalid_records_total")
        assert _value(invalid) >= len(BAD), invalid
        assert {"invalid_json", "schema_violation"} <= {r["metric"]["reason"] for r in invalid}
        assert promql(prometheus, f'stream_monitor_consumer_lag{{topic="{topic}"}}')
        assert _value(promql(prometheus, "stream_monitor_batch_processing_seconds_count")) > 0
        assert _value(promql(prometheus, 'stream_monitor_checkpoints_total{outcome="committed"}')) > 0
        assert _value(promql(prometheus, "stream_monitor_checkpoint_seconds_count")) > 0
        # the 2 input partitions and the 2 of the internal by-model topic (sized like the input)
        wait_for("assigned partitions == 4", lambda: _value(promql(prometheus, "stream_monitor_assigned_partitions")) == 4, 30, 1.0)
        stats = promql(prometheus, 'stream_monitor_drift_statistic{model="fraud-v3"}')
        assert stats and {"channel", "detector"} <= set(stats[0]["metric"]), stats
        assert promql(prometheus, "stream_monitor_alerts_firing") is not None
        # rate() over a counter works as it would in a dashboard
        assert promql(prometheus, 'rate(stream_monitor_records_consumed_total[10s])') is not None
    finally:
        started = time.monotonic()
        code = stop_process(proc, SIGTERM_BOUND_S)
        elapsed = time.monotonic() - started
        prometheus.stop()
    assert code == 0, f"exit {code} after SIGTERM:\n{log_path.read_text()[-3000:]}"
    assert elapsed < SIGTERM_BOUND_S
    assert b'"monitor_stopped"' in log_path.read_bytes()
