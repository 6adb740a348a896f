"""``replay --topic`` and ``export`` on the real broker.

* A topic replay over a time range equals a file replay of the topic's export, byte for byte
  (three partitions keyed by model, bad records, an aborted transaction that read_committed hides).
* Replay beside a running ``run`` instance leaves that instance's consumer group (members and
  committed offsets) and its alert topic alone, publishes only when asked (``--alerts-topic``),
  and says what ``run`` said (same alert events, given the same instance name).
* A topic that does not exist: replay and export exit 2 naming it, and do not create it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import orjson
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from stream_monitor.commands import main
from stream_monitor.core.events import format_event_time
from stream_monitor.synthetic import Drift, StreamSpec, demo_streams, generate_events
from tests.integration.harness import InProcessMonitor, app_config, read_all, wait_for_lag_zero

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]

N = 6000  # events per model
START_MS = 1_767_225_600_000
KEEP = {"retention.ms": "-1"}  # the synthetic events are dated 2026-01-01: keep them whatever the clock says


def _streams(n: int = N) -> list[dict[str, Any]]:
    """Three models interleaved; keyed by model they land on partitions 0, 2 and 1 of three."""
    fraud, churn = demo_streams(n, 42)
    ads = StreamSpec(model="ads-v1", n_events=n, seed=5, n_numeric=3, n_categorical=1,
                     drifts=(Drift("scale", "x1", int(0.5 * n), None, amount=3.0),))  # fmt: skip
    out: list[dict[str, Any]] = []
    for trio in zip(generate_events(fraud), generate_events(churn), generate_events(ads), strict=True):
        out.extend(trio)
    return out


def _produce(bootstrap: str, topic: str, events: list[dict[str, Any]]) -> None:
    """Events keyed by model with the event time as record timestamp, plus bad records."""
    p = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks="all", batch_size=256 * 1024)
    for i, e in enumerate(events):
        p.send(topic, key=e["model"].encode(), value=orjson.dumps(e), timestamp_ms=e["ts"])
        if i % 4000 == 1234:  # bad records along the way, in every partition
            for j, bad in enumerate([b"{not json", b"\xff\xfe\x00binary", b'{"model": "fraud-v3", "ts": "yesterday"}']):
                p.send(topic, key=None, value=bad, partition=(i + j) % 3, timestamp_ms=e["ts"])
            p.send(topic, key=b"tombstone", value=None, partition=i % 3, timestamp_ms=e["ts"])
    p.flush(60)
    p.close()


def _produce_aborted(bootstrap: str, topic: str, transactional_id: str) -> None:
    """Records in an aborted transaction: read_committed never shows them (nor to replay)."""
    p = KafkaProducer(bootstrap_servers=bootstrap, transactional_id=transactional_id, acks="all")
    p.init_transactions()
    p.begin_transaction()
    for part in range(3):
        for k in range(5):
            p.send(topic, value=b'{"ABORTED": %d}' % k, partition=part, timestamp_ms=START_MS + 1000 * k)
    p.flush()
    p.abort_transaction()
    p.close()


def _replay(tmp: Path, name: str, *args: str, expect: int = 0) -> tuple[bytes, bytes]:
    out = tmp / name
    out.mkdir(parents=True, exist_ok=True)
    code = main(["replay", "--alerts-out", str(out / "alerts.jsonl"), "--dead-letters-out", str(out / "dead.jsonl"),
                 "--progress", "none", *args])  # fmt: skip
    assert code == expect
    if expect != 0:
        assert not (out / "alerts.jsonl").exists(), "a failed replay leaves no alert file behind"
        return b"", b""
    return (out / "alerts.jsonl").read_bytes(), (out / "dead.jsonl").read_bytes()


def test_topic_replay_over_a_range_equals_file_replay_of_the_export(
    kafka_bootstrap: str, topic_factory: Callable[..., str], unique_name: Callable[..., str], tmp_path: Path
) -> None:
    topic = topic_factory(partitions=3, configs=KEEP)
    _produce(kafka_bootstrap, topic, _streams()[: 3 * N // 2])
    _produce_aborted(kafka_bootstrap, topic, unique_name("txn"))
    _produce(kafka_bootstrap, topic, _streams()[3 * N // 2 :])
    boot = ["--bootstrap-servers", kafka_bootstrap]
    start, end = START_MS + int(0.2 * N) * 10, START_MS + int(0.9 * N) * 10
    rng = ["--from", format_event_time(start), "--to", format_event_time(end)]

    topic_alerts, topic_dead = _replay(tmp_path, "topic", *boot, "--topic", topic, *rng)
    export = tmp_path / "export.jsonl.gz"
    assert main(["export", *boot, "--topic", topic, "--out", str(export), "--progress", "none"]) == 0
    file_alerts, file_dead = _replay(tmp_path, "file", "--input", str(export), *rng)
    assert topic_alerts and topic_alerts == file_alerts
    assert topic_dead and topic_dead == file_dead

    alerts = [orjson.loads(x) for x in topic_alerts.splitlines()]
    assert {a["source"]["topic"] for a in alerts} == {topic}
    assert {a["model"] for a in alerts} == {"fraud-v3", "ads-v1"}, "the drifting models alert, churn-v1 does not"
    assert len({a["source"]["partition"] for a in alerts}) == 2
    assert all(format_event_time(start) <= a["event_time"] < format_event_time(end) for a in alerts)
    dead = [orjson.loads(x) for x in topic_dead.splitlines()]
    assert {d["reason"] for d in dead} == {"invalid_json", "undecodable", "invalid_timestamp"}
    assert {d["source"]["partition"] for d in dead} == {0, 1, 2}
    assert not [d for d in dead if "ABORTED" in d["original"]], "read_committed hides aborted records"

    # the export of just the range gives the same too, and so does an unbounded replay
    ranged = tmp_path / "ranged.jsonl"
    assert main(["export", *boot, "--topic", topic, *rng, "--out", str(ranged), "--progress", "none"]) == 0
    assert _replay(tmp_path, "ranged", "--input", str(ranged), *rng) == (topic_alerts, topic_dead)
    assert _replay(tmp_path, "topic-all", *boot, "--topic", topic) == _replay(tmp_path, "file-all", "--input", str(export))
    lines = ranged.read_bytes().splitlines()
    assert all(orjson.loads(x)["topic"] == topic for x in lines)
    # and a missing topic is a usage error (exit 2) that leaves no output behind
    _replay(tmp_path, "missing", *boot, "--topic", unique_name("no-such-topic"), expect=2)


def _group_state(bootstrap: str, group: str, topic: str) -> tuple[dict[Any, int], list[tuple[str, str]], str]:
    """The group's committed offsets on ``topic``, its members (member id, client id) and its state.

    Only the input topic: the monitor itself goes on committing on its internal by-model topic while
    the rows of the last seconds of event time wait for their turn (then for the idle timeout).
    """
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        committed = admin.list_group_offsets({group: None}).get(group, {})
        offsets = {tp: om.offset for tp, om in committed.items() if tp.topic == topic}
        info = admin.describe_groups([group])[group]
        members = sorted((m["member_id"], m["client_id"]) for m in info["members"])
        return offsets, members, info["group_state"]
    finally:
        admin.close()


def _end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or [])]
        return {tp.partition: off for tp, off in c.end_offsets(tps).items()}
    finally:
        c.close()


def _wait_until_committed(bootstrap: str, group: str, topic: str, monitor: InProcessMonitor, timeout_s: float = 600.0) -> None:
    """Wait until the monitor has read every record of ``topic`` and its group committed the end offsets.

    The input is complete before the monitor starts and holds no transaction markers, so "done" is
    exact: committed offset == end offset on every partition. The monitor's own record count says
    when to ask the broker, and one admin client, kept open, asks: a probe that bootstraps new
    clients twice a second fails on a starved machine and cannot tell "nothing committed yet"
    from "no answer" (lag None).
    """
    ends = _end_offsets(bootstrap, topic)
    expected = sum(ends.values())
    deadline = time.monotonic() + timeout_s
    admin: KafkaAdminClient | None = None
    broker = "not asked yet"
    try:
        while time.monotonic() < deadline:
            monitor.check_alive()
            if monitor.app.stats.records >= expected:
                try:
                    admin = admin or KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=60_000)
                    offsets = admin.list_group_offsets({group: None}).get(group, {})
                    committed = {tp.partition: om.offset for tp, om in offsets.items() if tp.topic == topic}
                    if committed == ends:
                        return
                    broker = f"committed {committed}, end offsets {ends}"
                except KafkaError as exc:  # a starved broker or client: ask again
                    broker = repr(exc)
            time.sleep(0.5)
    finally:
        if admin is not None:
            admin.close()
    s = monitor.app.stats
    raise TimeoutError(
        f"group {group} not done after {timeout_s:g} s: monitor read {s.records} of {expected} records, "
        f"{s.checkpoints} checkpoints, {s.aborts} aborts; broker: {broker}"
    )


@pytest.mark.timeout(900)  # the wait below is bounded by 600 s; a loaded machine is slow, not wrong
def test_replay_beside_a_running_monitor_leaves_its_group_and_alert_topic_alone(
    kafka_bootstrap: str, topic_factory: Callable[..., str], unique_name: Callable[..., str], tmp_path: Path
) -> None:
    topic = topic_factory(partitions=3, configs=KEEP)
    alerts_topic = topic_factory(partitions=1, prefix="alerts")
    replay_topic = topic_factory(partitions=1, prefix="replay-alerts")
    group = unique_name("group")
    _produce(kafka_bootstrap, topic, _streams())
    monitor = InProcessMonitor.start(app_config(kafka_bootstrap, [topic], alerts_topic, group))
    try:
        _wait_until_committed(kafka_bootstrap, group, topic, monitor)
        # and judged: the rows of the last seconds wait on the internal topic for the idle timeout
        wait_for_lag_zero(kafka_bootstrap, group, [topic], timeout_s=300, check=monitor.check_alive)
        before = _group_state(kafka_bootstrap, group, topic)
        alerts_end = _end_offsets(kafka_bootstrap, alerts_topic)
        assert before[0] and len(before[1]) == 1, "the monitor owns the group and committed offsets"

        # replay beside it, twice: without and with a topic of its own to publish to
        boot = ["--bootstrap-servers", kafka_bootstrap, "--topic", topic, "--instance", "test"]
        quiet, _ = _replay(tmp_path, "quiet", *boot)
        assert _end_offsets(kafka_bootstrap, replay_topic) == {0: 0}
        loud, _ = _replay(tmp_path, "loud", *boot, "--alerts-topic", replay_topic)
        monitor.check_alive()
        after = _group_state(kafka_bootstrap, group, topic)
    finally:
        assert monitor.stop() == 0
    assert quiet and loud == quiet
    assert after == before, "replay joined or committed to the monitor's group"
    assert before[2] == "Stable" and not [m for m in before[1] if "replay" in m[1]]
    assert _end_offsets(kafka_bootstrap, alerts_topic) == alerts_end, "replay wrote to the production alert topic"
    published = read_all(kafka_bootstrap, replay_topic)
    assert [v for _, v in published] == quiet.splitlines(), "--alerts-topic gets exactly the alert file, in order"
    assert all(k == orjson.loads(v)["fingerprint"].encode() for k, v in published)
    # the same processing step: replay says what run said (run's order across partitions differs)
    run_alerts = sorted(v for _, v in read_all(kafka_bootstrap, alerts_topic))
    assert run_alerts and run_alerts == sorted(quiet.splitlines())


def test_a_topic_that_does_not_exist_exits_2_naming_it_and_is_not_created(
    kafka_bootstrap: str, topic_factory: Callable[..., str], unique_name: Callable[..., str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    present = topic_factory(partitions=1)
    missing = unique_name("missing")
    boot = ["--bootstrap-servers", kafka_bootstrap]
    _replay(tmp_path, "missing", *boot, "--topic", f"{present},{missing}", expect=2)
    assert f"stream-monitor replay: error: --topic {missing}: topic does not exist" in capsys.readouterr().err
    assert main(["export", *boot, "--topic", missing, "--out", str(tmp_path / "e.jsonl"), "--progress", "none"]) == 2
    assert f"stream-monitor export: error: --topic {missing}: topic does not exist" in capsys.readouterr().err
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        assert missing not in admin.list_topics(), "looking the topic up must not auto-create it"
    finally:
        admin.close()
