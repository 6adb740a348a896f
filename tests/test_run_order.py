"""The order of work in one batch of ``stream-monitor run``, without a broker (runtime/app.py ``_process``).

A checkpoint begun before the poll is ended by the batch's first send (``Checkpoint.before_send``):
judging sends rarely, reading sends rows at once, so the by-model partitions are judged first and
the broker commits meanwhile. Alerts judged in the batch begin their checkpoint before the inputs
are read, so it commits while they are decoded instead of after the whole loop.
"""

from __future__ import annotations

import secrets
from types import SimpleNamespace
from typing import Any

import pytest
from kafka import TopicPartition

from stream_monitor.config import load_config
from stream_monitor.core.monitor import BatchResult, PartitionMonitor
from stream_monitor.runtime.app import MonitorApp


def _app() -> tuple[MonitorApp, list[Any]]:
    cfg = load_config(None, env={}, overrides={"kafka.group_id": "g", "kafka.input_topics": ["in"], "state.hmac_secret": secrets.token_hex(32), "metrics.enabled": False})
    app = MonitorApp(cfg)
    calls: list[Any] = []
    app.consumer = SimpleNamespace(highwater=lambda tp: None)
    for p in range(2):
        app.tasks[p] = PartitionMonitor(app.spec, p)
        app.owned |= {TopicPartition("in", p), TopicPartition(app.repartition_topic, p)}
    app.forwarder.forward = lambda tp, records: calls.append(("read", tp.topic, tp.partition))  # type: ignore[method-assign]

    def judge(task: Any, tp: TopicPartition, inputs: list[Any]) -> BatchResult:
        calls.append(("judge", tp.topic, tp.partition))
        return BatchResult()

    app._judge_records = judge  # type: ignore[method-assign]

    def begin(reads_only: bool = False) -> None:
        calls.append("begin")
        app._begun = object()  # type: ignore[assignment]  # in flight until the next send ends it

    app._begin_overlapped = begin  # type: ignore[method-assign]
    return app, calls


def _batch(app: MonitorApp) -> dict[TopicPartition, list[Any]]:
    rec = SimpleNamespace(value=b"", offset=0, timestamp=None, headers=None)
    return {TopicPartition(t, p): [rec] for t in ("in", app.repartition_topic) for p in (1, 0)}


def test_the_by_model_partitions_are_judged_before_the_inputs_are_read() -> None:
    app, calls = _app()
    app._process(_batch(app))
    rp = app.repartition_topic
    assert calls == [("judge", rp, 0), ("judge", rp, 1), ("read", "in", 0), ("read", "in", 1)]  # no alert: no checkpoint begun


def test_alerts_judged_in_a_batch_begin_their_checkpoint_before_the_inputs_are_read() -> None:
    app, calls = _app()
    cp = app.checkpoint
    cp.txn_open = True
    cp.add_alerts(["alert"])  # type: ignore[list-item]  # what judging sent
    cp.last_any_commit_at = cp.clock() - 1.0
    app._process(_batch(app))
    rp = app.repartition_topic
    assert calls == [("judge", rp, 0), ("judge", rp, 1), "begin", ("read", "in", 0), ("read", "in", 1)]
    calls.clear()
    app._begun = None
    cp.last_any_commit_at = cp.clock()  # a commit just began: not before min_commit_interval_ms
    app._process(_batch(app))
    assert "begin" not in calls


def test_a_poll_that_raises_a_retriable_error_is_retried_and_any_other_raises():
    """kafka-python raises a failed metadata refresh (KafkaConnectionError) out of ``poll`` while the broker
    restarts: the loop waits and polls again (it exited with code 1 in a clean-clone CI run); anything else raises."""
    from kafka.errors import KafkaConnectionError, KafkaError
    from structlog.testing import capture_logs

    from stream_monitor.config import load_config
    from stream_monitor.runtime.app import MonitorApp

    app = MonitorApp(load_config(None, env={}, overrides={"kafka.group_id": "g", "state.hmac_secret": secrets.token_hex(32), "metrics.enabled": False}))
    raised: list[Exception] = [KafkaConnectionError("111 ECONNREFUSED"), KafkaConnectionError("111 ECONNREFUSED")]

    def poll(timeout_ms: int, max_records: int) -> dict:
        if raised:
            raise raised.pop(0)
        return {"batch": []}

    app.consumer = SimpleNamespace(poll=poll)
    app._stop.set()  # the wait between tries returns at once
    with capture_logs() as logs:
        assert app._poll(10, 10) is None and app._poll(10, 10) is None
        assert app._poll(10, 10) == {"batch": []}
    assert app._poll_failures == 2 and [e["event"] for e in logs] == ["poll_failed_retrying"]  # logged once per POLL_FAILED_LOG_S
    raised.append(KafkaError("not retriable"))
    with pytest.raises(KafkaError, match="not retriable"):
        app._poll(10, 10)
