"""A commit whose outcome the client never learned is settled from the broker (real broker).

A transaction's commit can complete on the broker while the client gives up waiting for the answer
(``transaction_operation_timeout_ms``: a slow coordinator, a lost response). Rolling back then
would read again, and send again, what the broker already committed: alerts twice, rows judged
twice (their second coming a ``late`` dead letter). The monitor instead replaces its producer (whose
``InitProducerId`` makes the coordinator finish the old transaction either way) and asks the group
which offsets are committed: the transaction's own mean it committed, and the monitor moves forward
to it before going on.

Here the client's wait is made to lose the answer: the real commit completes, then the wait
raises the timeout it raises when the answer does not come. Every such commit must count once.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka.errors import KafkaTimeoutError

from stream_monitor.commands import main
from stream_monitor.runtime import kafka_compat
from tests.integration.harness import InProcessMonitor, app_config, read_alerts, read_all, wait_for_lag_zero
from tests.integration.test_one_judgement import KEEP, _events, _produce, judgement

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def expected(tmp_path_factory: pytest.TempPathFactory) -> Counter[tuple[Any, ...]]:
    tmp = tmp_path_factory.mktemp("commit-outcome")
    path = tmp / "events.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(e) for e in _events()) + b"\n")
    out = tmp / "file.jsonl"
    assert main(["replay", "--alerts-out", str(out), "--progress", "none", "--input", str(path)]) == 0
    alerts = [orjson.loads(line) for line in out.read_bytes().splitlines() if line]
    assert any(a["status"] == "firing" for a in alerts)
    return judgement(alerts)


@pytest.mark.parametrize(("lose", "here"), [
    ((2, 5, 9), False),
    # rollbacks in a row from start-up, before the tasks' first checkpoint: a task rebuilt from no
    # order item must still wait for every input partition (MonitorApp._rebuild), else the rows of
    # the partitions read first are judged past the others' and those come `late` (2 of 5 runs before)
    ((1, 2, 3, 4, 6, 8, 12), False),
    # judged where read (kafka.judge_locally, one instance owning every partition): the inputs' offsets
    # commit with the state, at their oldest record with a row still waiting; fewer commits in all
    ((1, 2, 3), True),
])  # fmt: skip
def test_a_commit_that_completed_on_the_broker_but_timed_out_in_the_client_counts_once(
    kafka_bootstrap, topic_factory, unique_name, expected, monkeypatch, tmp_path: Path, lose: tuple[int, ...], here: bool
):
    topic = topic_factory(partitions=3, configs=KEEP)
    _produce(kafka_bootstrap, topic, _events(), "request")
    real = kafka_compat.finish_commit
    seen = {"commits": 0, "lost": 0}

    def answer_lost(commit: Any, timeout_ms: int) -> None:
        real(commit, timeout_ms)  # the broker committed
        if commit.committed is None:
            return
        seen["commits"] += 1
        if seen["commits"] in lose:
            seen["lost"] += 1
            raise KafkaTimeoutError(f"commit did not complete within {timeout_ms} ms")

    monkeypatch.setattr(kafka_compat, "finish_commit", answer_lost)
    alerts_topic, group = unique_name("alerts"), unique_name("group")
    # the state at every interval, as before kafka.state_interval_ms: the lost answers are counted per
    # commit, and the run must make the last one in `lose` (with the 2 s default it made 8, not 9)
    cfg = app_config(kafka_bootstrap, [topic], alerts_topic, group, **{"kafka.state_interval_ms": 250, "kafka.judge_locally": here})
    monitor = InProcessMonitor.start(cfg)
    try:
        wait_for_lag_zero(kafka_bootstrap, group, [topic], timeout_s=300, check=monitor.check_alive)
    finally:
        assert monitor.stop() == 0
    assert seen["lost"] == len(lose), seen  # the answers were really lost
    assert (monitor.app.stats.judged_here > 0) is here, "judged where read only when asked"
    dead = Counter(orjson.loads(v)["reason"] for _, v in read_all(kafka_bootstrap, f"{alerts_topic}-dlq"))
    assert not dead, dead  # no row judged twice (a `late` dead letter)
    got = judgement(read_alerts(kafka_bootstrap, alerts_topic))
    assert got == expected, (sorted(got - expected)[:5], sorted(expected - got)[:5])
