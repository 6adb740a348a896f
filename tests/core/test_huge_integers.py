"""An integer beyond float range in a numeric feature (only the stdlib JSON parser yields one) is a
non-finite value: a dead letter with processed=True and an invalid observation, never a crash."""

from __future__ import annotations

from stream_monitor.core.events import SourcePosition, decode_inference
from stream_monitor.core.monitor import InputRecord, PartitionMonitor
from stream_monitor.core.spec import MonitorSpec

HUGE = b"1" + b"0" * 400


def test_huge_integer_feature_is_a_non_finite_value_not_a_crash() -> None:
    raw = b'{"model": "m", "ts": 2, "features": {"x": ' + HUGE + b"}}"
    decoded = decode_inference(raw, None)
    assert [str(r) for r, _ in decoded.problems] == ["non_finite_value"]
    monitor = PartitionMonitor(MonitorSpec(), 0)
    ok = InputRecord(b'{"model": "m", "ts": 1, "features": {"x": 1.5}}', SourcePosition("t", 0, 0, 0))
    result = monitor.process([ok, InputRecord(raw, SourcePosition("t", 0, 1, 0))])
    assert [(str(d.reason), d.processed, d.position.offset) for d in result.dead_letters] == [("non_finite_value", True, 1)]
    ch = monitor.models["m"].channels["x"]
    assert ch._warm_invalid == 1 and ch._warm_values == [1.5]
