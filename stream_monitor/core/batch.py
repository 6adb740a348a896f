"""One batch on its way through the processing step: its columns, problems, failures and limit hits.

:class:`Batch` is what :func:`~stream_monitor.core.gathering.gather_batch` fills and :meth:`PartitionMonitor._ingest`
consumes; the helpers below are the per-record pieces of the processing step.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from stream_monitor.core import events as ev
from stream_monitor.core.channel import ChannelTrigger
from stream_monitor.core.groups import model_of
from stream_monitor.core.limits import ALL_MODELS, LimitGuard, limit_model
from stream_monitor.core.model_monitor import ModelMonitor
from stream_monitor.core.spec import ESTIMATED_CHANNELS, LABEL, LATENCY, PREDICTION, base_channel


def error_text(exc: BaseException) -> str:
    """A short, single-line description of an exception for a dead letter."""
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return text if len(text) <= 200 else text[:199] + "…"


def entry_bytes(event_id: str, entry: tuple[str, Any, int]) -> int:
    """An estimate of the memory one pending prediction holds (key, model, prediction, time).

    >>> entry_bytes("e1", ("m", 0.5, 0)) < entry_bytes("e1", ("m", {"a": 0.1, "b": "x" * 100}, 0))
    True
    """
    prediction = entry[1]
    size = 200 + len(event_id) + len(entry[0])
    if type(prediction) is dict:
        size += 232 + sum(90 + len(k) + (len(v) if type(v) is str else 0) for k, v in prediction.items())
    elif type(prediction) is str:
        size += 49 + len(prediction)
    else:
        size += 32
    return size


def extras(e: ev.InferenceEvent, prediction: Any, model: ModelMonitor) -> list[tuple[str, Any]]:
    """The (reserved channel, value) pairs of one event, in channel order.

    ``prediction`` (the event's, or the one a label joined to) and the label feed the model's
    performance channels (:meth:`ModelMonitor.performance`); the event's own prediction feeds the
    label-free estimates (:meth:`ModelMonitor.estimates`) when they are enabled.
    """
    pred = e.prediction
    extra: list[tuple[str, Any]] = []
    if isinstance(pred, dict):
        extra.extend((f"{PREDICTION}.{k}", v) for k, v in pred.items())
    elif pred is not None:
        extra.append((PREDICTION, pred))
    if e.latency_ms is not None:
        extra.append((LATENCY, e.latency_ms))
    if pred is not None and model.calibration is not None:
        extra.extend(model.estimates(pred))
    if e.label is not None:
        extra.append((LABEL, e.label))
        extra.extend(model.performance(prediction, e.label))
    return extra


class Batch:
    """One batch's columns per (model, channel), where each got its first value, and value-level problems."""

    __slots__ = ("columns", "first", "rows_arrays", "problems", "failed", "limited", "triggers", "row_hits", "hits", "identities")

    def __init__(self, decoded: list[ev.DecodedEvent], identities: list[int]) -> None:
        self.identities = identities  # per row: what alert ids hash (see Row.identity)
        self.columns: dict[tuple[str, str], tuple[list[Any], list[int]]] = {}
        self.first: dict[tuple[str, str], tuple[int, int, int]] = {}
        self.rows_arrays: dict[tuple[str, str], np.ndarray] = {}
        self.problems: dict[int, list[tuple[ev.DeadLetterReason, str]]] = {
            i: list(d.problems) for i, d in enumerate(decoded) if d.problems
        }
        self.failed: dict[int, BaseException] = {}  # rows whose gathering raised
        self.limited: dict[int, str] = {}  # rows refused whole by a limit, with the reason text
        self.triggers: list[ChannelTrigger] = []  # limit alerts raised while gathering
        self.row_hits: set[str] = set()  # limits hit by the record being gathered
        self.hits: Counter[str] = Counter()  # values refused per limit

    def drop_failed(self) -> None:
        """Take the failed rows' values out of every column, as if those records had not come."""
        failed = self.failed
        for row in failed:
            self.problems.pop(row, None)
        for key in list(self.columns):
            values, rows = self.columns[key]
            if failed.keys().isdisjoint(rows):
                continue
            self.rows_arrays.pop(key, None)
            keep = [i for i, r in enumerate(rows) if r not in failed]
            if not keep:
                del self.columns[key], self.first[key]
                continue
            self.columns[key] = ([values[i] for i in keep], [rows[i] for i in keep])
            self.first[key] = (rows[keep[0]], *self.first[key][1:])

    def restart_estimates(self, m: ModelMonitor) -> None:
        """Model ``m``'s calibration was learned at this record: its estimate channels restarted, so
        the estimates gathered so far in this batch (made before) are dropped; the restarted
        channels see only the records after this one, wherever the batch boundaries fall."""
        for key in [k for k in self.columns if k[0] == m.model and base_channel(k[1]) in ESTIMATED_CHANNELS]:
            del self.columns[key], self.first[key]
            self.rows_arrays.pop(key, None)
        m.recalibrated = False

    def limit_hit(self, guard: LimitGuard, row: int, d: ev.DecodedEvent, kind: str, n: int = 1) -> None:
        """Count ``n`` refusals of limit ``kind`` at a record; a firing limit alert when it starts an episode."""
        model = limit_model(kind, d.event.model)
        t = guard.hit(model, kind, row, d.event_time_ms, self.identities[row], n)  # type: ignore[arg-type]
        if t is not None:
            self.triggers.append(t)
        self.hits[kind] += n
        self.row_hits.add(kind)

    def refused_model(self, guard: LimitGuard, row: int, d: ev.DecodedEvent) -> None:
        """A record of a model the models limit refused: a dead letter, not monitored."""
        cap = guard.limits.models
        self.limited[row] = f"model {model_of(d.event.model)[0]!r}: this partition already monitors {cap:,} models (limits.models); record ignored"
        self.limit_hit(guard, row, d, "models")
        if guard.open:
            self.quiet(guard, row, d)

    def refusals(self, guard: LimitGuard, row: int, d: ev.DecodedEvent, m: ModelMonitor) -> None:
        """List the channels a limit refused at this record (a ``limit_exceeded`` problem) and count them."""
        limits = guard.limits
        for kind, name in m.refused:
            what = "features." + name if not name.startswith("__") else name
            cap = limits.prediction_outputs if kind == "prediction_outputs" else limits.channels_per_model
            self.problems.setdefault(row, []).append(
                (ev.DeadLetterReason.LIMIT_EXCEEDED, f"{what}: model {m.model!r} reached its limit of {cap:,} {kind.replace('_', ' ')}; ignored")
            )
            self.limit_hit(guard, row, d, kind)
        m.refused.clear()

    def quiet(self, guard: LimitGuard, row: int, d: ev.DecodedEvent) -> None:
        """Let open limit episodes of this record's model (and of the partition) see a record without a hit."""
        for model in (d.event.model, ALL_MODELS):
            if model in guard.open:
                self.triggers.extend(guard.quiet(model, row, d.event_time_ms, self.identities[row], self.row_hits))
        self.row_hits.clear()
