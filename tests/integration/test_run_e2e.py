"""End to end on the real broker: a drifting model alerts on the right channels after the drift,
resolves after it reverts, a stationary model raises nothing, bad records become dead letters.

Streams: ``stream_monitor.synthetic.demo_streams(n, seed=42)`` — fraud-v3 (x0 +1.5 sd from 30 % to
70 % of the stream, c0 gains category "XX" from 40 %, x3 30 % missing from 55 %) and churn-v1
(stationary, seed 43).
"""

from __future__ import annotations

from datetime import datetime

import orjson
import pytest

from stream_monitor.core.alert import AlertEvent
from stream_monitor.core.model_pages import is_member, page_fingerprint
from stream_monitor.synthetic import demo_streams, generate_events
from tests.integration.harness import InProcessMonitor, MonitorProcess, app_config, produce, read_alerts, read_all, wait_for_lag_zero

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(240)]

N = 24_000
INTERVAL_MS = 10


def _index(alert: dict) -> int:
    """Event index (within its model's stream) of the record the alert points at."""
    t = datetime.fromisoformat(alert["event_time"].replace("Z", "+00:00")).timestamp() * 1000
    return int(round((t - 1_767_225_600_000) / INTERVAL_MS))


def _interleave(n: int) -> list[dict]:
    fraud, churn = demo_streams(n, 42)
    out = []
    for a, b in zip(generate_events(fraud), generate_events(churn), strict=True):
        out += [a, b]
    return out


def test_drifting_model_alerts_and_resolves_stationary_stays_quiet(kafka_bootstrap, topic_factory, unique_name):
    topic = topic_factory(partitions=2)
    alerts_topic = unique_name("alerts")
    group = unique_name("group")
    produce(kafka_bootstrap, topic, _interleave(N))
    bad = [b"{not json", b'{"model": 5}', b'{"model": "fraud-v3", "ts": "yesterday"}', "\u00e9".encode("latin-1")]
    produce(kafka_bootstrap, topic, bad)
    # detector-level pages: the delays below are each detector's
    monitor = InProcessMonitor.start(app_config(kafka_bootstrap, [topic], alerts_topic, group, **{"defaults.alerting.group_by": "detector"}))
    try:
        wait_for_lag_zero(kafka_bootstrap, group, [topic], timeout_s=180, check=monitor.check_alive)
    finally:
        assert monitor.stop() == 0
    alerts = read_alerts(kafka_bootstrap, alerts_topic)
    for a in alerts:
        AlertEvent.model_validate(a)
    assert not [a for a in alerts if a["model"] == "churn-v1"], "stationary model raised alerts"
    fraud = [a for a in alerts if a["model"] == "fraud-v3"]
    drift_start, drift_end = int(0.30 * N), int(0.70 * N)

    def first(feature: str, detector: str, status: str = "firing") -> dict:
        hits = [a for a in fraud if a["feature"] == feature and a["detector"] == detector and a["status"] == status]
        assert hits, f"no {status} alert for {feature}/{detector}; got {[(a['feature'], a['detector'], a['status']) for a in fraud]}"
        return hits[0]

    # mean shift on x0: change-point detectors within 500 events, window tests within 1000
    for det, bound in (("adwin", 500), ("page_hinkley", 500), ("ks", 1000), ("psi", 1000)):
        delay = _index(first("x0", det)) - drift_start
        assert 0 <= delay <= bound, f"x0/{det} detection delay {delay} events"
    # reverted at 70 %: the reference-window tests resolve within 2000 events
    for det in ("ks", "psi"):
        delay = _index(first("x0", det, "resolved")) - drift_end
        assert 0 <= delay <= 2000, f"x0/{det} resolve delay {delay}"
    # new category on c0 and rising missing rate on x3
    assert 0 <= _index(first("c0", "unseen_category_rate")) - int(0.40 * N) <= 1000
    assert 0 <= _index(first("c0", "chi2")) - int(0.40 * N) <= 1000
    assert 0 <= _index(first("x3", "missing_rate")) - int(0.55 * N) <= 1000
    # nothing alerted on channels that did not drift (x0 drives the prediction, so it may move)
    drifted = {"x0", "c0", "x3", "__prediction__"}
    assert not [a for a in fraud if a["feature"] not in drifted]
    # dedup: one firing per fingerprint at a time
    open_: set[str] = set()
    for a in fraud:
        if a["status"] == "firing" and not a.get("escalated"):
            assert a["fingerprint"] not in open_, f"duplicate firing for {a['feature']}/{a['detector']}"
            open_.add(a["fingerprint"])
        elif a["status"] == "resolved":
            open_.discard(a["fingerprint"])
    # owner labels and contract fields
    assert all("partition" not in a["labels"] and a["monitor"]["instance"] == "test" for a in alerts)
    # every bad record is a dead letter with a reason
    dlq = [orjson.loads(v) for _, v in read_all(kafka_bootstrap, f"{alerts_topic}-dlq")]
    reasons = sorted(d["reason"] for d in dlq)
    assert reasons == sorted(["invalid_json", "schema_violation", "invalid_timestamp", "undecodable"]), reasons
    assert all(d["source"]["topic"] == topic for d in dlq)
    # judgement's delay behind the records' timestamps: every 64th of the 48,000 events judged, produced before the start
    m = monitor.app.metrics.registry.get_sample_value
    samples, total = m("stream_monitor_judge_delay_seconds_count"), m("stream_monitor_judge_delay_seconds_sum")
    assert samples == -(-2 * N // 64), samples
    assert 0 < total / samples < 240, total / samples
    # the run's record count is the input's (the by-model topic's records are counted apart), each read once without a rollback
    s = monitor.app.stats
    assert s.internal_records == 0 and s.judged_here > 0  # one instance owning every partition judges where it reads (kafka.judge_locally)
    assert s.aborts > 0 or s.records == 2 * N + len(bad), (s.records, s.internal_records, s.aborts)


def test_cli_run_subprocess_stops_cleanly_on_sigterm(kafka_bootstrap, topic_factory, unique_name, tmp_path):
    topic = topic_factory(partitions=1)
    alerts_topic, group = unique_name("alerts"), unique_name("group")
    produce(kafka_bootstrap, topic, _interleave(3000))
    proc = MonitorProcess(kafka_bootstrap, [topic], alerts_topic, group, tmp_path / "monitor.log")
    try:
        wait_for_lag_zero(kafka_bootstrap, group, [topic], timeout_s=120, check=proc.check_alive)
    finally:
        code = proc.terminate()
    assert code == 0, proc.log_tail()
    log = (tmp_path / "monitor.log").read_text()
    assert '"event": "monitor_stopped"' in log


def test_label_topic_join_feeds_error_channel(kafka_bootstrap, topic_factory, unique_name):
    """Labels on their own topic join predictions by event_id; a rising error rate alerts (performance)."""
    inputs, labels = topic_factory(partitions=2), topic_factory(partitions=2)
    alerts_topic, group = unique_name("alerts"), unique_name("group")
    n = 8000
    events = [
        {"event_id": f"e{i}", "model": "credit-v1", "ts": 1_767_225_600_000 + 10 * i, "prediction": i % 2}
        for i in range(n)
    ]
    produce(kafka_bootstrap, inputs, events, key_field="event_id")
    cfg = app_config(kafka_bootstrap, [inputs], alerts_topic, group, **{"kafka.label_topic": labels})
    monitor = InProcessMonitor.start(cfg)
    try:
        wait_for_lag_zero(kafka_bootstrap, group, [inputs], timeout_s=120, check=monitor.check_alive)
        # the model is right 95 % of the time, then (from 50 %) only 60 % of the time
        out = []
        for i, e in enumerate(events):
            wrong = (i * 7919 % 100) < (5 if i < n // 2 else 40)
            out.append({"event_id": e["event_id"], "model": "credit-v1", "label": (1 - e["prediction"]) if wrong else e["prediction"]})
        # a label whose prediction never comes waits until predictions label_wait_seconds (300 s) later
        # than it have been judged (it could have come before its prediction), then is a dead letter
        out.append({"event_id": "never-predicted", "model": "credit-v1", "label": 1, "ts": events[-1]["ts"]})
        produce(kafka_bootstrap, labels, out, key_field="event_id")
        wait_for_lag_zero(kafka_bootstrap, group, [inputs, labels], timeout_s=120, check=monitor.check_alive)
        later = {"event_id": "later", "model": "credit-v1", "ts": events[-1]["ts"] + 400_000, "prediction": 1}
        produce(kafka_bootstrap, inputs, [later], key_field="event_id")
        wait_for_lag_zero(kafka_bootstrap, group, [inputs, labels], timeout_s=120, check=monitor.check_alive)
    finally:
        assert monitor.stop() == 0
    alerts = read_alerts(kafka_bootstrap, alerts_topic)
    # the model's performance page (one per model): its metrics exist only from labels joined to their predictions
    perf = [a for a in alerts if a["kind"] == "performance" and a["status"] == "firing"]
    assert perf and {a["fingerprint"] for a in perf} == {page_fingerprint(perf[0]["model"])}, [(a["feature"], a["detector"]) for a in alerts]
    assert all(is_member(c["channel"]) for a in perf for c in a["evidence"]["channels"])
    dlq = [orjson.loads(v) for _, v in read_all(kafka_bootstrap, f"{alerts_topic}-dlq")]
    assert [d["reason"] for d in dlq] == ["label_unmatched"]


def test_changelog_with_wrong_partition_count_fails_at_start_with_actionable_error(kafka_bootstrap, topic_factory, unique_name, tmp_path):
    from tests.kafka_fixtures import create_topic

    topic = topic_factory(partitions=3)
    alerts_topic, group = unique_name("alerts"), unique_name("group")
    create_topic(kafka_bootstrap, f"{group}-state-changelog", 2, configs={"cleanup.policy": "compact"})
    proc = MonitorProcess(kafka_bootstrap, [topic], alerts_topic, group, tmp_path / "monitor.log")
    code = proc.proc.wait(60)
    proc.log_file.close()
    log = (tmp_path / "monitor.log").read_text()
    assert code == 1, log
    assert "has 2 partitions but the input topics have 3" in log


def test_state_partitioning_by_model_gives_one_alert_series_per_model(kafka_bootstrap, topic_factory, unique_name):
    """Input keyed by event_id over 3 partitions: with state_partitioning=model the monitor re-keys
    by model (one transaction), so each drift alerts once, not once per input partition."""
    topic = topic_factory(partitions=3)
    alerts_topic, group = unique_name("alerts"), unique_name("group")
    events = _interleave(N)
    produce(kafka_bootstrap, topic, events, key_field="event_id")
    # through the internal topic, as several instances run (one would judge the rows where it reads them)
    cfg = app_config(kafka_bootstrap, [topic], alerts_topic, group, **{"kafka.state_partitioning": "model", "kafka.judge_locally": False})
    monitor = InProcessMonitor.start(cfg)
    try:
        wait_for_lag_zero(kafka_bootstrap, group, [topic, f"{group}-by-model"], timeout_s=180, check=monitor.check_alive)
    finally:
        assert monitor.stop() == 0
    alerts = read_alerts(kafka_bootstrap, alerts_topic)
    assert not [a for a in alerts if a["model"] == "churn-v1"]
    fraud = [a for a in alerts if a["model"] == "fraud-v3"]
    # one page per drifting channel, fired once: one model, one state partition
    firing = [a["feature"] for a in fraud if a["status"] == "firing" and not a["escalated"]]
    assert len(firing) == len(set(firing)), f"each drift should fire once: {firing}"
    assert {"x0", "c0", "x3"} <= set(firing)
    # alerts point at the record the producer wrote, not at the internal repartition topic
    assert {a["source"]["topic"] for a in fraud} == {topic}
    # The whole stream was produced before the monitor started, so stage 1 forwards it in large
    # per-partition chunks: the repartition topic holds a block-shuffled version of event-time
    # order, and detection is later than in live traffic (where the inputs advance together).
    delay = _index(next(a for a in fraud if a["feature"] == "x0")) - int(0.30 * N)
    assert -2000 <= delay <= 3000, delay


def test_run_with_training_baseline_detects_serving_skew_without_warm_up(kafka_bootstrap, topic_factory, unique_name, tmp_path):
    """`stream-monitor baseline` on training rows, referenced by a relative path in the YAML config:
    serving data shifted from the very first event alerts against the baseline."""
    import csv

    from stream_monitor.commands import main
    from stream_monitor.synthetic import Drift, StreamSpec

    train = StreamSpec(model="fraud-v3", n_events=5000, seed=1, n_numeric=3, n_categorical=1)
    with open(tmp_path / "train.csv", "w", newline="") as f:
        rows = [{**e["features"], "score": e["prediction"]} for e in generate_events(train)]
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert main(["baseline", "--input", str(tmp_path / "train.csv"), "--model", "fraud-v3", "--out", str(tmp_path / "baseline.json"), "--prediction-column", "score"]) == 0
    (tmp_path / "monitor.yaml").write_text("models:\n  fraud-v3:\n    baseline: baseline.json\n    labels: {team: risk-ml}\n")
    serving = StreamSpec(model="fraud-v3", n_events=3000, seed=2, n_numeric=3, n_categorical=1, drifts=(Drift("mean_shift", "x0", 0, None, amount=1.0),))
    topic = topic_factory(partitions=1)
    alerts_topic, group = unique_name("alerts"), unique_name("group")
    produce(kafka_bootstrap, topic, list(generate_events(serving)))
    proc = MonitorProcess(kafka_bootstrap, [topic], alerts_topic, group, tmp_path / "monitor.log", extra_args=["--config", str(tmp_path / "monitor.yaml")])
    try:
        wait_for_lag_zero(kafka_bootstrap, group, [topic], timeout_s=120, check=proc.check_alive)
    finally:
        assert proc.terminate() == 0, proc.log_tail()
    alerts = read_alerts(kafka_bootstrap, alerts_topic)
    x0 = [a for a in alerts if a["feature"] == "x0" and a["status"] == "firing"]
    assert x0, [(a["feature"], a["detector"]) for a in alerts]
    assert x0[0]["reference"]["kind"] == "baseline" and x0[0]["labels"]["team"] == "risk-ml"
    assert x0[0]["source"]["offset"] < 1300, "a baseline needs no warm-up: the first full window alerts"


@pytest.mark.parametrize("here", [False, True], ids=["through-internal-topic", "judged-where-read"])
def test_state_items_above_the_request_size_reset_their_channel_instead_of_failing_every_checkpoint(kafka_bootstrap, topic_factory, unique_name, here):
    """A commit drops the items too large to write and the monitor rolls back to it between batches: every row is
    judged once (no ``late`` dead letter, no alert twice), whichever way the rows go to their judge."""
    topic = topic_factory(partitions=2)
    group, alerts = unique_name("group"), unique_name("alerts")
    fraud, _ = demo_streams(12_000, 7)
    produce(kafka_bootstrap, topic, generate_events(fraud))
    # a numeric channel's reference item is 8 KB (its channel item ~5 KB, a window chunk ~2 KB): above a 6 KB request size;
    # small polls and frequent state commits: commits that drop items end in the middle of batches
    small = {"producer": {"max_request_size": 6_000}}
    cfg = app_config(kafka_bootstrap, [topic], alerts, group, **{"kafka.client_options": small, "kafka.judge_locally": here,
                                                                    "kafka.max_poll_records": 500, "kafka.state_interval_ms": 100})
    monitor = InProcessMonitor.start(cfg)
    try:
        wait_for_lag_zero(kafka_bootstrap, group, [topic], timeout_s=180, check=monitor.check_alive)
    finally:
        assert monitor.stop() == 0
    m = monitor.app.metrics.registry.get_sample_value
    assert (m("stream_monitor_state_items_oversized_total") or 0) > 0
    assert monitor.app.stats.aborts == 0  # no checkpoint failed
    assert monitor.app.stats.oversized_rollbacks > 0
    assert (monitor.app.stats.judged_here > 0) is here
    assert all(len(v) <= 6_000 for _, v in read_all(kafka_bootstrap, f"{group}-state-changelog") if v is not None)
    assert read_all(kafka_bootstrap, f"{alerts}-dlq", timeout_s=5) == []  # no row judged twice (late), none lost
    ids = [(a["alert_id"], a["status"], a["source"]["offset"]) for a in read_alerts(kafka_bootstrap, alerts)]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("partitioning", ["model", "input"])
def test_a_record_whose_processing_raises_becomes_a_dead_letter_and_the_monitor_goes_on(kafka_bootstrap, topic_factory, unique_name, monkeypatch, partitioning):
    from stream_monitor.core import intake as intake_module
    from stream_monitor.runtime import forward as forward_module
    from stream_monitor.runtime import records as records_module

    read = records_module.read_inference

    def failing_on_marker(spec, records, *args, **kwargs):  # a bug in reading that one record triggers
        if any(b"POISON" in r.value for r in records):
            raise RuntimeError("core bug")
        return read(spec, records, *args, **kwargs)

    read_wire = forward_module.read_inference_wire

    def wire_failing_on_marker(spec, topic, partition, records, *args, **kwargs):  # batch reading (the consumer's records)
        if any(b"POISON" in (r.value or b"") for r in records):
            raise RuntimeError("core bug")
        return read_wire(spec, topic, partition, records, *args, **kwargs)

    monkeypatch.setattr(records_module, "read_inference", failing_on_marker)  # state_partitioning: input, one at a time
    monkeypatch.setattr(intake_module, "read_inference_wire", wire_failing_on_marker)  # and as a batch (read_inference_rows)
    monkeypatch.setattr(forward_module, "read_inference", failing_on_marker)  # model (the default): in the forwarder, one at a time
    monkeypatch.setattr(forward_module, "read_inference_wire", wire_failing_on_marker)  # and as a batch
    topic = topic_factory(partitions=1)
    group, alerts = unique_name("group"), unique_name("alerts")
    fraud, _ = demo_streams(400, 9)
    events = list(generate_events(fraud))
    poison = {**events[200], "model": "fraud-v3", "note": "POISON"}
    produce(kafka_bootstrap, topic, events[:200] + [poison] + events[200:])
    monitor = InProcessMonitor.start(app_config(kafka_bootstrap, [topic], alerts, group, **{"kafka.state_partitioning": partitioning}))
    try:
        wait_for_lag_zero(kafka_bootstrap, group, [topic], timeout_s=180, check=monitor.check_alive)
    finally:
        assert monitor.stop() == 0
    dead = [orjson.loads(v) for _, v in read_all(kafka_bootstrap, f"{alerts}-dlq")]
    assert [d["reason"] for d in dead] == ["processing_error"]
    assert b"POISON" in dead[0]["original"].encode() and dead[0]["source"]["offset"] == 200
