"""MonitorMetrics and HealthServer without a broker: firing gauge bookkeeping, health semantics."""

from __future__ import annotations

import http.client
import socket
import time
import urllib.error
import urllib.request

import orjson
import pytest

from stream_monitor.bridges.mapping import example_alert
from stream_monitor.core.alert import AlertEvent
from stream_monitor.core.events import SourcePosition
from stream_monitor.core.monitor import InputRecord, PartitionMonitor
from stream_monitor.core.spec import MonitorSpec
from stream_monitor.ops.health import BrokerProbe, HealthServer
from stream_monitor.ops.metrics import MonitorMetrics, open_episodes
from stream_monitor.synthetic import Drift, StreamSpec, generate_events


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _fields(fp: str, status: str, severity: str = "warning", partition: int = 0, model: str = "m", labels: dict | None = None) -> AlertEvent:
    return example_alert(
        fingerprint=fp, status=status, severity=severity, kind="data_drift", model=model, feature="x", detector="psi",
        statistic=0.3, source={"topic": "t", "partition": partition, "offset": 1}, labels=labels or {},
    )  # fmt: skip


def _gauge(m: MonitorMetrics, severity: str = "warning", model: str = "m") -> float:
    return m.registry.get_sample_value("stream_monitor_alerts_firing", {"model": model, "kind": "data_drift", "severity": severity}) or 0.0


def test_firing_gauge_follows_fire_escalate_resolve():
    m = MonitorMetrics()
    m.observe_alert(_fields("a", "firing"))
    m.observe_alert(_fields("b", "firing", partition=1))
    assert _gauge(m) == 2
    m.observe_alert(_fields("a", "firing", severity="critical"))  # escalation: moves, not adds
    assert _gauge(m) == 1 and _gauge(m, "critical") == 1
    m.observe_alert(_fields("a", "resolved", severity="critical"))
    assert _gauge(m, "critical") == 0 and m.firing_count == 1
    assert m.registry.get_sample_value("stream_monitor_alerts_total", {"model": "m", "kind": "data_drift", "severity": "warning", "status": "firing"}) == 2


def test_firing_alerts_belong_to_the_task_partition_given():
    m = MonitorMetrics()
    fields = _fields("a", "firing", partition=5)  # re-keyed: the task partition is 2
    assert "partition" not in fields.labels
    m.observe_alert(fields, partition=2)
    m.forget_partitions([5])
    assert m.firing_count == 1
    m.forget_partitions([2])
    assert m.firing_count == 0


def test_forget_partitions_drops_their_firing_alerts():
    m = MonitorMetrics()
    m.observe_alert(_fields("a", "firing", partition=0))
    m.observe_alert(_fields("b", "firing", partition=1))
    m.forget_partitions([1])
    assert _gauge(m) == 1 and m.firing_count == 1


def test_restore_partition_counts_open_episodes_of_restored_state():
    spec = MonitorSpec()
    events = generate_events(StreamSpec(model="m", n_events=6000, seed=3, n_numeric=2, n_categorical=0, drifts=(Drift("mean_shift", "x0", 2000, None, amount=3.0),)))
    task = PartitionMonitor(spec, 0)
    result = task.process([InputRecord(orjson.dumps(e), SourcePosition("t", 0, i, None)) for i, e in enumerate(events)])
    fired = {a.fingerprint for a in result.alerts if a.event.status == "firing"} - {a.fingerprint for a in result.alerts if a.event.status == "resolved"}
    assert fired, "the stream should leave alerts firing"
    restored = PartitionMonitor.from_state_items(spec, 0, task.state_items(only_dirty=False))
    episodes = open_episodes(restored)
    assert {fp for fp, _ in episodes} == fired
    m = MonitorMetrics()
    m.restore_partition(0, restored)
    assert m.firing_count == len(fired)
    m.forget_partitions([0])
    assert m.firing_count == 0


def test_health_server_readiness_needs_app_and_assignment_and_broker():
    m = MonitorMetrics()
    state = {"ready": False}
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    probe = BrokerProbe([f"127.0.0.1:{listener.getsockname()[1]}"], ttl_s=0)
    server = HealthServer(m, "127.0.0.1", 0, lambda: (state["ready"], "app"), [probe]).start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        assert _get(base + "/healthz") == (200, "alive\n")
        assert _get(base + "/readyz")[0] == 503
        state["ready"] = True
        code, body = _get(base + "/readyz")
        assert code == 503 and "waiting for a partition assignment" in body
        m.assigned_partitions.set(0)  # an empty assignment: an idle group member is ready
        code, body = _get(base + "/readyz")
        assert code == 200 and "reachable" in body, body
        listener.close()  # the broker goes away
        code, body = _get(base + "/readyz")
        assert code == 503 and "no bootstrap broker reachable" in body
        status, text = _get(base + "/metrics")
        assert status == 200 and "stream_monitor_assigned_partitions 0.0" in text
        assert _get(base + "/nope")[0] == 404
    finally:
        server.stop()
        listener.close()


def test_liveness_fails_when_the_loop_stalls():
    m = MonitorMetrics(liveness_timeout_s=0.05)
    assert m.liveness()[0]  # no heartbeat yet: alive
    m.heartbeat()
    assert m.liveness()[0]
    time.sleep(0.1)
    ok, why = m.liveness()
    assert not ok and "stalled" in why


@pytest.mark.parametrize("server", ["127.0.0.1:1", "[::1]:1"])
def test_broker_probe_reports_unreachable(server: str):
    ok, why = BrokerProbe([server], timeout_s=0.5)()
    assert not ok and "no bootstrap broker reachable" in why


def test_statistic_gauge_is_capped_and_follows_the_latest_value():
    m = MonitorMetrics(max_channel_series=2)
    m.observe_statistics([("m", "x", "psi", 0.1), ("m", "y", "psi", 0.2), ("m", "z", "psi", 0.3), ("m", "x", "psi", 0.4)])
    get = lambda ch: m.registry.get_sample_value("stream_monitor_drift_statistic", {"model": "m", "channel": ch, "detector": "psi"})  # noqa: E731
    assert get("x") == 0.4 and get("y") == 0.2 and get("z") is None
    assert m.channel_series_dropped._value.get() == 1


def test_model_labels_past_the_cap_become_other_so_metrics_stays_small_with_20k_models():
    cap = 50

    def render_with(models: int) -> tuple[MonitorMetrics, bytes]:
        m = MonitorMetrics(max_channel_series=cap, max_model_series=cap)
        for i in range(models):
            m.observe_alert(_fields(f"fp-{i}", "firing", model=f"model-{i}"))
        return m, m.render()

    at_cap, small = render_with(cap + 1)
    m, big = render_with(20_000)
    assert len(big) <= len(small) + 1000  # 20k models cost what cap + 1 models cost
    assert _gauge(m, model="__other__") == 20_000 - cap and _gauge(m, model="model-0") == 1
    m.observe_alert(_fields("fp-19999", "resolved", model="model-19999"))
    assert _gauge(m, model="__other__") == 20_000 - cap - 1  # resolving moves the same series back


def _raw_connection(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(60)  # generous: the server must close long before
    return s


def test_an_idle_connection_is_closed_instead_of_holding_a_thread():
    server = HealthServer(MonitorMetrics(), "127.0.0.1", 0, lambda: (True, "app"), request_timeout_s=0.5).start()
    try:
        idle = [_raw_connection(server.port) for _ in range(5)]
        for s in idle:
            assert s.recv(1) == b""  # closed by the server (a timeout here means it waited forever)
            s.close()
        assert _get(f"http://127.0.0.1:{server.port}/healthz") == (200, "alive\n")
    finally:
        server.stop()


def _healthy(port: int) -> bool:
    try:
        return _get(f"http://127.0.0.1:{port}/healthz")[0] == 200
    except (OSError, http.client.HTTPException):  # a slot not yet released: the connection is closed
        return False


def test_connections_past_the_limit_are_closed_and_the_server_recovers():
    server = HealthServer(MonitorMetrics(), "127.0.0.1", 0, lambda: (True, "app"), request_timeout_s=5.0, max_connections=2).start()
    try:
        holders = [_raw_connection(server.port) for _ in range(2)]
        extra = _raw_connection(server.port)
        assert extra.recv(1) == b""  # no free slot: closed at once, no thread started
        extra.close()
        for s in holders:
            assert s.recv(1) == b""  # they time out and free their slots
            s.close()
        deadline = time.monotonic() + 30
        while not _healthy(server.port):
            assert time.monotonic() < deadline, "the server did not recover its slots"
            time.sleep(0.1)
    finally:
        server.stop()


def test_limit_hits_are_counted_per_limit_when_a_batch_is_emitted():
    """A monitor that refuses new feature names beyond its cap says so in stream_monitor_limit_hits_total."""
    from stream_monitor.core.spec import LimitsSpec

    spec = MonitorSpec(limits=LimitsSpec(channels_per_model=4))
    task = PartitionMonitor(spec, 0)
    records = [InputRecord(orjson.dumps({"model": "m", "ts": i, "features": {f"f{i}": 1.0}}), SourcePosition("t", 0, i, None)) for i in range(20)]
    result = task.process(records)
    assert result.limits_exceeded["channels_per_model"] > 0
    m = MonitorMetrics()
    m.observe_limit_hits(result.limits_exceeded)  # as MonitorApp does for every processed batch
    assert m.registry.get_sample_value("stream_monitor_limit_hits_total", {"limit": "channels_per_model"}) == result.limits_exceeded["channels_per_model"]


def test_a_page_whose_lead_changes_kind_on_escalation_is_counted_once():
    """A channel's page may escalate with a data-quality lead: the firing gauge moves, it does not add,
    and the page's events may come from records of different partitions."""
    m = MonitorMetrics()
    gauge = lambda kind, severity: m.registry.get_sample_value("stream_monitor_alerts_firing", {"model": "m", "kind": kind, "severity": severity}) or 0.0  # noqa: E731
    page = dict(fingerprint="page", model="m", feature="c0", labels={})
    m.observe_alert(example_alert(**page, status="firing", kind="data_drift", detector="chi2", severity="warning", source={"topic": "t", "partition": 0, "offset": 1}))
    m.observe_alert(example_alert(**page, status="firing", escalated=True, kind="data_quality", detector="unseen_category_rate", severity="critical", source={"topic": "t", "partition": 2, "offset": 9}))
    assert (gauge("data_drift", "warning"), gauge("data_quality", "critical"), m.firing_count) == (0, 1, 1)
    m.observe_alert(example_alert(**page, status="resolved", kind="data_quality", detector="unseen_category_rate", severity="critical", ends_at="2026-01-01T00:09:00.000Z", source={"topic": "t", "partition": 1, "offset": 20}))
    assert (gauge("data_quality", "critical"), m.firing_count) == (0, 0)
