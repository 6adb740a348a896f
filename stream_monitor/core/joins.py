"""Labels that came before their prediction: they wait, bounded by event time, entries and bytes.

Label events join predictions by ``event_id`` (:meth:`PartitionMonitor._join`). A label read
before its prediction (another input partition was slower, or the label topic is faster than the
inference topic) waits here instead of becoming a ``label_unmatched`` dead letter at once. It
stops waiting when its prediction is judged (:meth:`LabelWaits.ready`), or when predictions
``label_wait_seconds`` later than the label's own time have been judged (its prediction should
have come by then), or when the waiting labels exceed ``label_join_max_pending`` entries or
``limits.label_join_bytes`` — those become ``label_unmatched`` dead letters
(:meth:`LabelWaits.expired`).

>>> from types import SimpleNamespace as R
>>> from stream_monitor.core.spec import MonitorSpec
>>> w = LabelWaits()
>>> w.wait(R(key=(1_000, 0, 0), event=R(event_id="e1", label=1)))
>>> [r.event.event_id for r in w.ready({"e1": ("m", 0.4, 900)})], len(w.waiting)
(['e1'], 0)
>>> w.wait(R(key=(1_000, 0, 0), event=R(event_id="e2", label=1))); w.prediction_time = 1_000 + 300_001
>>> [r.event.event_id for r in w.expired(MonitorSpec())]
['e2']
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Mapping

from stream_monitor.core import events as ev
from stream_monitor.core import state, state_order
from stream_monitor.core.batch import entry_bytes
from stream_monitor.core.exchange import RawsOf, RowsFormatError, decode_rows
from stream_monitor.core.intake import InputRecord, failed
from stream_monitor.core.spec import MonitorSpec

_ENTRY_BYTES = 400  # an estimate of what one waiting label holds besides its strings


def _size(row: Any) -> int:
    label = row.event.label
    return _ENTRY_BYTES + len(row.event.event_id) + (len(label) if type(label) is str else 0)


class LabelWaits:
    """Label rows waiting for their prediction, oldest first."""

    def __init__(self) -> None:
        self.waiting: OrderedDict[str, Any] = OrderedDict()
        self.prediction_time: int | None = None  # the latest event time of a judged prediction
        self.bytes = 0
        self.dirty = False
        self._evicted: list[Any] = []

    def wait(self, row: Any) -> None:
        """Keep a label row until its prediction comes (a later label for the same id replaces it)."""
        old = self.waiting.pop(row.event.event_id, None)
        if old is not None:
            self.bytes -= _size(old)
            self._evicted.append(old)
        self.waiting[row.event.event_id] = row
        self.bytes += _size(row)
        self.dirty = True

    def ready(self, predictions: Mapping[str, Any]) -> list[Any]:
        """The waiting labels whose prediction is now remembered, taken out of the wait (oldest first)."""
        if not self.waiting:
            return []
        found = [k for k in self.waiting if k in predictions]
        out = []
        for k in found:
            row = self.waiting.pop(k)
            self.bytes -= _size(row)
            out.append(row)
        if out:
            self.dirty = True
        return out

    def expired(self, spec: MonitorSpec) -> list[Any]:
        """Labels that stop waiting: replaced, past ``label_wait_seconds``, or beyond the entry and byte caps."""
        out, self._evicted = self._evicted, []
        waiting = self.waiting
        horizon = None if self.prediction_time is None else self.prediction_time - int(spec.label_wait_seconds * 1000)
        cap_entries, cap_bytes = max(spec.label_join_max_pending, 1), spec.limits.label_join_bytes
        while waiting:
            row = next(iter(waiting.values()))
            if not ((horizon is not None and row.key[0] < horizon) or len(waiting) > cap_entries or self.bytes > cap_bytes):
                break
            waiting.popitem(last=False)
            self.bytes -= _size(row)
            out.append(row)
        if out:
            self.dirty = True
        return out


# ``monitor`` below is the PartitionMonitor that owns the join (its predictions, channels and waits)
def judge_labels(monitor: Any, rows: list[Any], result: Any) -> None:
    """Join label rows (and labels that waited for their prediction) and monitor the joined ones."""
    joined_rows: list[Any] = []
    joined: list[Any] = []
    decoded: list[ev.DecodedEvent] = []
    waited = monitor.joins.ready(monitor.pending_labels)
    result.resumed += len(waited)
    for row in waited + rows:
        try:
            hit = _join(monitor, row)
        except Exception as exc:  # noqa: BLE001 - a label alone is lost
            _dead(result, failed(InputRecord(row.raw(), row.position), exc))
            continue
        if hit is None:
            result.waiting += 1
            continue
        decoded.append(hit[0])
        joined.append(hit[1])
        joined_rows.append(row)
    expired = monitor.joins.expired(monitor.spec)
    result.resumed += len(expired)
    for row in expired:
        detail = f"no prediction with event_id {row.event.event_id!r} within the join window"
        _dead(result, ev.DeadLetter(ev.DeadLetterReason.LABEL_UNMATCHED, detail, row.raw(), row.position))
    if decoded:
        monitor._monitor(decoded, [r.position for r in joined_rows], RawsOf(joined_rows), result, joined, [r.identity for r in joined_rows])


def _join(monitor: Any, row: Any) -> tuple[ev.DecodedEvent, Any] | None:
    """The label row joined to its remembered prediction; None when it waits for that prediction."""
    label = row.event
    hit = monitor.pending_labels.pop(label.event_id, None)
    if hit is None:
        monitor.joins.wait(row)
        return None
    if monitor._pending_bytes is not None:
        monitor._pending_bytes -= entry_bytes(label.event_id, hit)
    monitor.label_segments.remove(label.event_id)
    model, prediction, prediction_time = hit
    event_time = ev.event_time_of(label.ts, prediction_time)  # the label's own time, else its prediction's
    assert event_time is not None
    event = ev.joined_event(label.event_id, model, event_time, label.label)  # as InferenceEvent.model_construct builds it
    return ev.DecodedEvent(event, event_time), prediction


def _dead(result: Any, dl: ev.DeadLetter) -> None:
    result.dead_letters.append(dl)
    result.invalid_by_reason[str(dl.reason)] += 1


def restore_waiting(monitor: Any, blob: bytes) -> None:
    """Restore the labels waiting for their prediction (an unreadable item is rejected and logged)."""
    try:
        for rows_blob in state_order.decode_waiting(blob):
            for row in decode_rows(rows_blob)[1]:
                monitor.joins.wait(row)
    except (state.StateFormatError, RowsFormatError) as exc:
        monitor._rejected(None, None, state.StateFormatError(str(exc)))
    monitor.joins.dirty = False
