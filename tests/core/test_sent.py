"""Alerts committed ahead of the state (``core/sent.py``): judging redone from an older state makes them
again and holds them back; the alerts after them go out as in an uninterrupted run."""

from __future__ import annotations

import logging
from collections import Counter

import msgpack
import orjson
import pytest
import structlog
from structlog.testing import capture_logs

from stream_monitor.core.events import SourcePosition
from stream_monitor.core.monitor import InputRecord, PartitionMonitor
from stream_monitor.core.sent import ITEM, decode_item, decode_sent, encode_sent
from stream_monitor.core.state import StateFormatError
from stream_monitor.core.spec import MonitorSpec
from tests.core.test_state import SMALL, SPEC1, T0, records


def _alerts(monitor: PartitionMonitor, start: int, stop: int, step: int = 50) -> list[bytes]:
    out: list[bytes] = []
    for i in range(start, stop, step):
        out += [a.payload for a in monitor.process(records(i, min(stop, i + step))).alerts]
    return out


def _restore(items: dict[str, bytes]) -> PartitionMonitor:
    monitor = PartitionMonitor.from_state_items(SPEC1, 0, items)
    monitor.sent.track = True  # as ``run`` sets it where alerts commit ahead of the state
    return monitor


def _before_the_drift() -> tuple[PartitionMonitor, dict[str, bytes]]:
    monitor = PartitionMonitor(SPEC1, partition=0)
    monitor.sent.track = True
    _alerts(monitor, 0, 500)  # the stream drifts from record 600 on
    return monitor, {k: v for k, v in monitor.state_items(only_dirty=False).items() if v is not None}


@pytest.fixture
def info_logs():
    """structlog passing info lines (the suite may run at another level), as it was after."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
    yield
    structlog.configure(**saved)


@pytest.mark.parametrize("step", [50, 37])  # judged again in other slices than the first time
def test_alerts_committed_ahead_of_the_state_are_not_sent_again(step, info_logs):
    monitor, state = _before_the_drift()
    ahead = _alerts(monitor, 500, 1000)  # committed without the state ...
    item = monitor.sent.ahead_item()  # ... with this item
    later = _alerts(monitor, 1000, 2000)
    assert ahead and later and item is not None
    assert ITEM not in state, "nothing was owed when the state was written"

    with capture_logs() as logs:
        restored = _restore({**state, ITEM: item})
        assert _alerts(restored, 500, 1000, step) == []
        assert restored.sent.held_back == len(ahead) and not restored.sent.owed
        assert [e for e in logs if e["event"] == "alert"] == [], "an alert held back is not logged as an alert again"
        assert _alerts(restored, 1000, 2000, step) == later
    assert sum(e["event"] == "alert" for e in logs) == len(later), "each alert sent is logged once"

    without = _restore(state)  # the same restore without the item sends them twice
    assert _alerts(without, 500, 1000, step) == ahead


def test_a_state_written_before_judging_caught_up_keeps_what_is_still_owed():
    monitor, state = _before_the_drift()
    ahead = _alerts(monitor, 500, 1000)
    item = monitor.sent.ahead_item()
    later = _alerts(monitor, 1000, 2000)

    restored = _restore({**state, ITEM: item})
    assert _alerts(restored, 500, 700) == []
    assert 0 < restored.sent.held_back < len(ahead), "the drift's first alerts come between 600 and 700, not all of them"
    written = restored.state_items()  # a full checkpoint here: the state past the alerts held back so far
    assert sum(decode_sent(written[ITEM]).values()) == len(ahead) - restored.sent.held_back

    again = _restore({**state, **{k: v for k, v in written.items() if v is not None}})
    assert _alerts(again, 700, 1000) == []
    assert _alerts(again, 1000, 2000) == later
    assert again.state_items()[ITEM] is None, "everything owed was made again: the next full checkpoint deletes the item"


def test_an_unreadable_sent_item_is_rejected_not_loaded():
    _, state = _before_the_drift()
    good = encode_sent(Counter({b"k" * 16: 2}))
    assert decode_sent(good) == {b"k" * 16: 2}
    bad = [
        b"\x80",
        msgpack.packb({"format": 4, "kind": "sent", "keys": [[b"short", 1]]}),
        msgpack.packb({"format": 4, "kind": "sent", "keys": [[b"k" * 16, 0]]}),
        msgpack.packb({"format": 4, "kind": "order", "keys": []}),
    ]
    for blob in bad:
        with pytest.raises(StateFormatError):
            decode_sent(blob)
        restored = PartitionMonitor.from_state_items(SPEC1, 0, {**state, ITEM: blob})
        assert restored.rejected_state_items == 1 and not restored.sent.owed


def test_where_alerts_never_commit_ahead_of_the_state_nothing_is_remembered():
    """``replay``, ``run`` without state or at-least-once: the ledger is not tracked, so it does not grow with every alert."""
    monitor = PartitionMonitor(SPEC1, partition=0)
    assert _alerts(monitor, 0, 2000)
    assert not monitor.sent.unsaved and monitor.sent.ahead_item() is None and ITEM not in monitor.state_items()


# x keeps only missing_rate: its drift alerts (psi, ks, ...) committed ahead of the state are never made again
SPEC_X = MonitorSpec.model_validate({"defaults": SMALL, "models": {"m": {"channels": {"x": {"type": "numeric", "detectors": ["missing_rate"]}}}}})


def test_what_judging_redone_never_makes_again_is_dropped_once_past_the_rows_that_made_it(info_logs):
    monitor, state = _before_the_drift()
    ahead = _alerts(monitor, 500, 1000)  # judged up to record 999, committed without the state
    item = monitor.sent.ahead_item()
    upto = decode_item(item)[1]
    assert upto is not None and upto[0][0] == T0 + 1000 * 999 and upto[1] is None, "the largest key judged: record 999's; no label rows"
    with capture_logs() as logs:
        restored = PartitionMonitor.from_state_items(SPEC_X, 0, {**state, ITEM: item})  # the config changed before the restart
        restored.sent.track = True
        _alerts(restored, 500, 990)
        assert restored.sent.owed and restored.sent.dropped == 0, "not yet past the rows judged before: still owed"
        assert [e for e in logs if e["event"] == "owed_outputs_dropped"] == []
        _alerts(restored, 990, 1000)
    assert restored.sent.dropped > 0 and not restored.sent.owed
    assert restored.sent.held_back + restored.sent.dropped == len(ahead), "each committed output is made again or dropped"
    assert [e["dropped"] for e in logs if e["event"] == "owed_outputs_dropped"] == [restored.sent.dropped]
    assert restored.state_items()[ITEM] is None, "nothing owed any more: the next full checkpoint deletes the item"


def test_an_item_without_upto_keeps_what_it_owes():
    """An item written before ``upto`` existed: how far its outputs need judging to go is not known, so nothing expires."""
    monitor, state = _before_the_drift()
    ahead = _alerts(monitor, 500, 1000)
    owed, upto = decode_item(monitor.sent.ahead_item())
    assert upto is not None and sum(owed.values()) == len(ahead)
    restored = PartitionMonitor.from_state_items(SPEC_X, 0, {**state, ITEM: encode_sent(owed)})
    restored.sent.track = True
    _alerts(restored, 500, 2000)
    assert restored.sent.owed and restored.sent.dropped == 0
    assert decode_item(restored.sent.ahead_item() or restored.state_items()[ITEM])[1] is None, "written again without upto"


def test_a_limit_alert_held_back_is_not_logged_as_a_limit_reached_again(info_logs):
    """``limit_reached`` (a warning) is logged with the limit's alert as it goes out, like ``alert``: once."""
    spec = MonitorSpec.model_validate({"limits": {"quiet_seconds": 5, "channels_per_model": 10}})

    def recs(start: int, stop: int) -> list[InputRecord]:  # x0..x2 and, until 300, one never-seen feature name each
        out = []
        for i in range(start, stop):
            feats = {"x0": 1.0, "x1": 2.0, "x2": 3.0, **({f"new_{i}": float(i)} if i < 300 else {})}
            out.append(InputRecord(orjson.dumps({"model": "m", "ts": T0 + 10 * i, "features": feats}), SourcePosition("t", 0, i, None)))
        return out

    with capture_logs() as logs:
        monitor = PartitionMonitor(spec, 0)
        monitor.sent.track = True
        monitor.process(recs(0, 5))  # five channels so far: under the cap
        state = {k: v for k, v in monitor.state_items(only_dirty=False).items() if v is not None}
        ahead = monitor.process(recs(5, 200)).alerts  # the cap is reached at record 7: its alert commits without the state
        item = monitor.sent.ahead_item()
    assert [(a.event.detector, a.event.status) for a in ahead] == [("channels_per_model", "firing")]
    assert [(e["limit"], e["cap"]) for e in logs if e["event"] == "limit_reached"] == [("channels_per_model", 10)]
    with capture_logs() as logs:
        restored = PartitionMonitor.from_state_items(spec, 0, {**state, ITEM: item})
        restored.sent.track = True
        assert restored.process(recs(5, 200)).alerts == [] and restored.sent.held_back == 1
    assert [e for e in logs if e["event"] in ("limit_reached", "alert")] == []
