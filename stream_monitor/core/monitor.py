"""The processing step: a batch of records of one partition in, alert events and dead letters out.

:class:`PartitionMonitor` holds every model's channels for one input partition (Kafka's unit of
ordering and assignment). ``process`` is the single processing step shared by ``run``, ``replay``
and the benchmarks. It is deterministic: the same records give the same alerts, whatever the batch
boundaries, because evaluations fall on observation counts and alerts are ordered by
(record, channel, detector).

>>> import orjson
>>> from stream_monitor.core.events import SourcePosition
>>> monitor = PartitionMonitor(MonitorSpec(), partition=0)
>>> recs = [InputRecord(orjson.dumps({"model": "m", "ts": i, "features": {"x": float(i % 7)}}),
...                     SourcePosition("t", 0, i, i)) for i in range(10)]
>>> result = monitor.process(recs)
>>> result.records, result.alerts, sorted(monitor.models["m"].channels)
(10, [], ['x'])
"""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import orjson
import structlog

from stream_monitor.core import events as ev
from stream_monitor.core import state
from stream_monitor.core.channel import ChannelMonitor, ChannelTrigger, EvaluationRecord
from stream_monitor.core.lifecycle import alert_id
from stream_monitor.core.reference import NumericReference, Reference
from stream_monitor.core.settings import ChannelType
from stream_monitor.core.spec import ERROR, LABEL, LATENCY, PREDICTION, MonitorSpec

log = structlog.get_logger("stream_monitor.core")

STATE_FORMAT_VERSION = state.FORMAT_VERSION  # also the version byte of signed state records


@dataclass(frozen=True, slots=True)
class InputRecord:
    """Raw bytes of one record and where it came from."""

    value: bytes
    position: ev.SourcePosition


@dataclass(slots=True)
class Alert:
    """An alert event ready to publish: Kafka key, JSON bytes, and the parsed fields."""

    fingerprint: str
    payload: bytes
    fields: dict[str, Any]
    event_time_ms: int
    position: ev.SourcePosition


@dataclass(slots=True)
class BatchResult:
    records: int = 0
    alerts: list[Alert] = field(default_factory=list)
    dead_letters: list[ev.DeadLetter] = field(default_factory=list)
    invalid_by_reason: Counter[str] = field(default_factory=Counter)
    channel_values: int = 0
    evaluations: list[EvaluationRecord] | None = None  # every evaluation, when asked for (reports)


def _kind_of(channel: str) -> str:
    if channel.startswith(PREDICTION):
        return "prediction_drift"
    if channel in (LATENCY, ERROR):
        return "performance"
    return "data_drift"


def _type_of(value: Any) -> ChannelType | None:
    t = type(value)
    if t is float or t is int:
        return "numeric"
    if t is str or t is bool:
        return "categorical"
    return None


def _error_value(prediction: Any, label: Any) -> float | None:
    """Absolute error for numeric predictions, 0/1 mismatch for classes."""
    if isinstance(prediction, dict):
        if "y_pred" in prediction:
            prediction = prediction["y_pred"]
        elif prediction:
            prediction = next(iter(prediction.values()))
        else:
            return None
    if prediction is None or label is None:
        return None
    if isinstance(prediction, bool):
        prediction = int(prediction)
    if isinstance(label, bool):
        label = int(label)
    if isinstance(prediction, int | float) and isinstance(label, int | float):
        return abs(float(prediction) - float(label))
    return 0.0 if str(prediction) == str(label) else 1.0


class ModelMonitor:
    """The channels of one model within one partition, in the order they were first seen."""

    def __init__(self, spec: MonitorSpec, model: str, partition: int, baseline: dict[str, Reference] | None) -> None:
        self.spec = spec
        self.model = model
        self.partition = partition
        self.baseline = baseline or {}
        self.channels: dict[str, ChannelMonitor] = {}
        self.disabled: set[str] = set()
        mspec = spec.models.get(model)
        self.discover = mspec.discover if mspec else True
        self.labels = {**spec.labels, **(mspec.labels if mspec else {})}
        self.annotations = {**spec.annotations, **(mspec.annotations if mspec else {})}
        self.known_features: list[str] = []  # features observed on every record with a features object
        if mspec:
            for name, cspec in mspec.channels.items():
                if not cspec.enabled:
                    self.disabled.add(name)
                elif not name.startswith("__"):
                    self.known_features.append(name)
        self.dirty = True
        self._gather: tuple[tuple[int, str], ...] = ()
        self._gather_stamp: tuple[int, int] | None = None

    def gather(self) -> tuple[tuple[int, str], ...]:
        """(index in ``known_features``, name) of the known features that are channels, in order.

        Cached; ``known_features`` and ``channels`` only grow, so their lengths tell when the
        cache is stale.
        """
        stamp = (len(self.known_features), len(self.channels))
        if stamp != self._gather_stamp:
            channels = self.channels
            self._gather = tuple((i, name) for i, name in enumerate(self.known_features) if name in channels)
            self._gather_stamp = stamp
        return self._gather

    def baseline_for(self, name: str, channel_type: ChannelType) -> Reference | None:
        """The baseline reference of a channel, when one of the right type was configured."""
        ref = self.baseline.get(name)
        if ref is None or isinstance(ref, NumericReference) != (channel_type == "numeric"):
            return None
        return ref

    def channel(self, name: str, first_value: Any) -> ChannelMonitor | None:
        ch = self.channels.get(name)
        if ch is not None:
            return ch
        if name in self.disabled:
            return None
        cspec = self.spec.channel_spec(self.model, name)
        if cspec is None and not self.discover:
            return None
        ctype = (cspec.type if cspec else None) or _type_of(first_value)
        if ctype is None:
            return None  # type unknown until a non-null value arrives
        baseline = self.baseline_for(name, ctype)
        settings = self.spec.channel_settings(self.model, name, ctype)
        ch = ChannelMonitor(self.model, name, ctype, settings, self.partition, len(self.channels), baseline)
        self.channels[name] = ch
        self.dirty = True
        log.info("channel_discovered", model=self.model, channel=name, type=ctype, partition=self.partition)
        return ch


_MISSING: Any = object()


class _FeatureBlock:
    """One model's records with a features object in a batch, gathered column-wise at the end.

    ``segments`` marks where the gathered feature set changed (a feature was discovered), so a
    feature's column starts at the first record that had it. When a feature name starts with
    "__" (it could share a column with a reserved channel) the block switches to value-by-value
    gathering (``direct``) for the rest of the batch.
    """

    __slots__ = ("model", "rows", "feats", "segments", "gather", "direct")

    def __init__(self, model: ModelMonitor) -> None:
        self.model = model
        self.rows: list[int] = []
        self.feats: list[dict[str, Any]] = []
        self.segments: list[tuple[int, tuple[tuple[int, str], ...]]] = []
        self.gather: tuple[tuple[int, str], ...] | None = None
        self.direct = False

    def switch(self, gather: tuple[tuple[int, str], ...], columns: dict, first: dict) -> None:
        self.gather = gather
        if self.direct:
            return
        if any(name.startswith("__") for _, name in gather):
            self.flush(columns, first, None)
            self.direct = True
            return
        self.segments.append((len(self.rows), gather))

    def flush(self, columns: dict, first: dict, rows_arrays: dict | None) -> None:
        """Add the gathered columns to ``columns`` (which holds none of this model's features yet)."""
        if not self.rows:
            return
        starts: dict[str, tuple[int, int]] = {}
        for start, gather in self.segments:
            for kf_index, name in gather:
                if name not in starts:
                    starts[name] = (start, kf_index)
        model = self.model.model
        all_rows = self.rows
        rows_array = np.array(all_rows, dtype=np.intp) if rows_arrays is not None else None
        for name, (start, kf_index) in starts.items():
            feats = self.feats if start == 0 else self.feats[start:]
            key = (model, name)
            # (a copy of) the rows list: shared by the columns at the end, copied when they still grow
            rows = all_rows[start:] if start or rows_arrays is None else all_rows
            columns[key] = ([f.get(name) for f in feats], rows)
            first[key] = (all_rows[start], 0, kf_index)
            if rows_array is not None:
                rows_arrays[key] = rows_array if start == 0 else rows_array[start:]
        self.rows, self.feats, self.segments = [], [], []


class PartitionMonitor:
    """All monitoring state of one input partition, and the batch processing step."""

    def __init__(self, spec: MonitorSpec, partition: int, baselines: dict[str, dict[str, Reference]] | None = None) -> None:
        self.spec = spec
        self.partition = partition
        self.baselines = baselines or {}
        self.models: dict[str, ModelMonitor] = {}
        self.pending_labels: OrderedDict[str, tuple[str, Any, int]] = OrderedDict()
        self.labels_dirty = False
        self.rejected_state_items = 0  # state items that did not decode when this partition was restored
        self.log = log.bind(partition=partition)

    # ------------------------------------------------------------- processing
    def model(self, name: str) -> ModelMonitor | None:
        m = self.models.get(name)
        if m is None:
            if name not in self.spec.models and not self.spec.discover_models:
                return None
            m = ModelMonitor(self.spec, name, self.partition, self.baselines.get(name))
            self.models[name] = m
        return m

    def process(self, records: Sequence[InputRecord], record_evaluations: bool = False) -> BatchResult:
        """Decode, monitor and alert on one batch of records (all from this partition).

        With ``record_evaluations`` the result also lists every detector evaluation (for reports).
        """
        result = BatchResult(records=len(records), evaluations=[] if record_evaluations else None)
        decoded: list[ev.DecodedEvent] = []
        positions: list[ev.SourcePosition] = []
        raws: list[bytes] = []
        for rec in records:
            out = ev.decode_inference(rec.value, rec.position.timestamp_ms, rec.position, self.spec.max_record_bytes)
            if isinstance(out, ev.DeadLetter):
                result.dead_letters.append(out)
                result.invalid_by_reason[str(out.reason)] += 1
                continue
            decoded.append(out)
            positions.append(rec.position)
            raws.append(rec.value)
        self._monitor(decoded, positions, raws, result)
        return result

    def _monitor(
        self,
        decoded: list[ev.DecodedEvent],
        positions: list[ev.SourcePosition],
        raws: list[bytes],
        result: BatchResult,
        joined: list[Any] | None = None,
    ) -> None:
        """Feed decoded events to their channels; ``joined[i]`` is the prediction a label joined to.

        Values are grouped per (model, channel) in row order, and the channels are fed in the order
        in which they got their first value of the batch (row, then features in ``known_features``
        order, then prediction, latency, label, error), which orders dead-letter details and
        evaluations. Features are gathered column-wise per model (one list comprehension per
        feature over the model's rows) unless a feature name could collide with a reserved
        channel name; then, as for the other channels, value by value.
        """
        row_times = [d.event_time_ms for d in decoded]
        row_offsets = [p.offset for p in positions]
        problems: dict[int, list[tuple[ev.DeadLetterReason, str]]] = {
            i: list(d.problems) for i, d in enumerate(decoded) if d.problems
        }
        # per (model, channel): values and rows; and where each got its first value of the batch
        columns: dict[tuple[str, str], tuple[list[Any], list[int]]] = {}
        first: dict[tuple[str, str], tuple[int, int, int]] = {}
        blocks: dict[str, _FeatureBlock | None] = {}
        remember = self.spec.label_join_max_pending
        for row, d in enumerate(decoded):
            e = d.event
            blk = blocks.get(e.model, _MISSING)
            if blk is _MISSING:
                m0 = self.model(e.model)
                blk = blocks[e.model] = None if m0 is None else _FeatureBlock(m0)
            if blk is None:
                continue
            m = blk.model
            feats = e.features
            if feats is not None:
                if not m.channels.keys() >= feats.keys():
                    for name, value in feats.items():
                        if name not in m.channels and value is not None:
                            ch = m.channel(name, value)
                            if ch is not None:
                                m.known_features.append(name) if name not in m.known_features else None
                gather = m.gather()
                if gather is not blk.gather:
                    blk.switch(gather, columns, first)
                if blk.direct:
                    for kf_index, name in gather:
                        key = (e.model, name)
                        col = columns.get(key)
                        if col is None:
                            col = columns[key] = ([], [])
                            first[key] = (row, 0, kf_index)
                        col[0].append(feats.get(name))
                        col[1].append(row)
                else:
                    blk.rows.append(row)
                    blk.feats.append(feats)
            pred = e.prediction
            extra: list[tuple[str, Any]] = []
            if isinstance(pred, dict):
                extra.extend((f"{PREDICTION}.{k}", v) for k, v in pred.items())
            elif pred is not None:
                extra.append((PREDICTION, pred))
            if e.latency_ms is not None:
                extra.append((LATENCY, e.latency_ms))
            if e.label is not None:
                extra.append((LABEL, e.label))
                err = _error_value(joined[row] if joined is not None else pred, e.label)
                if err is not None:
                    extra.append((ERROR, err))
            elif remember and e.event_id and pred is not None:
                self._remember_prediction(e.event_id, e.model, pred, d.event_time_ms)
            for j, (name, value) in enumerate(extra):
                if name not in m.channels:
                    if value is None or m.channel(name, value) is None:
                        continue
                key = (e.model, name)
                col = columns.get(key)
                if col is None:
                    col = columns[key] = ([], [])
                    first[key] = (row, 1, j)
                col[0].append(value)
                col[1].append(row)
        rows_arrays: dict[tuple[str, str], np.ndarray] = {}
        for blk in blocks.values():
            if blk is not None:
                blk.flush(columns, first, rows_arrays)
        order = sorted(columns, key=first.__getitem__)
        row_times_array = np.array(row_times, dtype=np.int64)
        triggers: list[ChannelTrigger] = []
        for key in order:
            values, rows = columns[key]
            ch = self.models[key[0]].channels[key[1]]
            flags, payload, wrong = ch.classify(values)
            for i in wrong:
                problems.setdefault(rows[i], []).append(
                    (ev.DeadLetterReason.WRONG_TYPE, f"{key[1]}: expected {ch.channel_type}, got {type(values[i]).__name__}")
                )
            result.channel_values += len(values)
            triggers.extend(
                ch.ingest_classified(flags, payload, rows_arrays.get(key, rows), row_times, row_offsets, result.evaluations, row_times_array)
            )
        for row in sorted(problems):
            reason, detail = problems[row][0]
            more = f" (+{len(problems[row]) - 1} more)" if len(problems[row]) > 1 else ""
            result.dead_letters.append(ev.DeadLetter(reason, detail + more, raws[row], positions[row], processed=True))
            result.invalid_by_reason[str(reason)] += 1
        triggers.sort(key=lambda t: (t.row, t.channel_ordinal, t.detector_ordinal))
        for t in triggers:
            result.alerts.append(self._alert(t, decoded[t.row], positions[t.row]))
        # record-level and value-level dead letters, in record order whatever the batch boundaries
        result.dead_letters.sort(key=lambda dl: dl.position.offset if dl.position is not None else -1)

    # ------------------------------------------------------------ label join
    def _remember_prediction(self, event_id: str, model: str, prediction: Any, event_time_ms: int) -> None:
        pending = self.pending_labels
        self.labels_dirty = True
        pending[event_id] = (model, prediction, event_time_ms)
        pending.move_to_end(event_id)
        horizon = event_time_ms - int(self.spec.label_join_window_seconds * 1000)
        while pending and (len(pending) > self.spec.label_join_max_pending or next(iter(pending.values()))[2] < horizon):
            pending.popitem(last=False)

    def process_labels(self, records: Sequence[InputRecord], record_evaluations: bool = False) -> BatchResult:
        """Join label events to remembered predictions (by event_id) and feed __label__/__error__."""
        result = BatchResult(records=len(records), evaluations=[] if record_evaluations else None)
        decoded: list[ev.DecodedEvent] = []
        positions: list[ev.SourcePosition] = []
        raws: list[bytes] = []
        joined: list[Any] = []
        for rec in records:
            out = ev.decode_label(rec.value, rec.position.timestamp_ms, rec.position)
            hit = None if isinstance(out, ev.DeadLetter) else self.pending_labels.pop(out.event_id, None)
            self.labels_dirty = self.labels_dirty or hit is not None
            if hit is None and not isinstance(out, ev.DeadLetter):
                out = ev.DeadLetter(
                    ev.DeadLetterReason.LABEL_UNMATCHED,
                    f"no prediction with event_id {out.event_id!r} within the join window",
                    rec.value,
                    rec.position,
                )
            if isinstance(out, ev.DeadLetter):
                result.dead_letters.append(out)
                result.invalid_by_reason[str(out.reason)] += 1
                continue
            model, prediction, prediction_time = hit  # type: ignore[misc]
            event_time = out.ts if out.ts is not None else prediction_time
            event = ev.InferenceEvent(event_id=out.event_id, model=model, ts=event_time, label=out.label)
            decoded.append(ev.DecodedEvent(event, event_time))
            positions.append(rec.position)
            raws.append(rec.value)
            joined.append(prediction)
        self._monitor(decoded, positions, raws, result, joined)
        return result

    # ----------------------------------------------------------------- alerts
    def _alert(self, t: ChannelTrigger, d: ev.DecodedEvent, pos: ev.SourcePosition) -> Alert:
        m = self.models[d.event.model]
        e = t.evaluation
        cspec = self.spec.channel_spec(m.model, t.channel)
        labels = {**m.labels, **(cspec.labels if cspec else {}), "partition": str(self.partition)}
        annotations = {**m.annotations, **(cspec.annotations if cspec else {})}
        kind = "data_quality" if t.quality else _kind_of(t.channel)
        starts = t.episode_start_ms if t.episode_start_ms is not None else d.event_time_ms
        status = "resolved" if t.transition == "resolved" else "firing"
        severity = t.severity
        stat = e.statistic
        thr = e.threshold
        fmt = lambda x: "n/a" if x is None else f"{x:.4g}"  # noqa: E731
        if status == "firing":
            summary = f"{kind.replace('_', ' ')} on {m.model}/{t.channel}: {t.detector} {fmt(stat)} > {fmt(thr)}"
            description = (
                f"{t.detector} compared the last {t.window_count} observations of {t.channel} with the "
                f"{t.reference_kind} reference ({t.reference_count} observations) and found "
                f"{fmt(stat)} (threshold {fmt(thr)}"
                + (f", p={e.p_value:.3g}" if e.p_value is not None else "")
                + f") in partition {self.partition}."
            )
        else:
            summary = f"resolved: {m.model}/{t.channel} {t.detector} back within bounds"
            description = f"{t.detector} on {t.channel} has been within its threshold ({fmt(thr)}) since the episode ended."
        alert: dict[str, Any] = {
            "schema_version": ev.SCHEMA_VERSION,
            "alert_id": alert_id(t.fingerprint, starts, t.episode_offset),
            "fingerprint": t.fingerprint,
            "status": status,
            "escalated": t.transition == "escalated",
            "severity": severity,
            "kind": kind,
            "model": m.model,
            "model_version": d.event.model_version,
            "feature": t.channel,
            "detector": t.detector,
            "statistic": _clean(stat),
            "threshold": _clean(thr),
            "p_value": _clean(e.p_value),
            "event_time": ev.format_event_time(d.event_time_ms),
            "starts_at": ev.format_event_time(starts),
            "ends_at": ev.format_event_time(t.ended_ms) if status == "resolved" and t.ended_ms is not None else None,
            "window": {
                "start": None if t.window_start_ms is None else ev.format_event_time(t.window_start_ms),
                "end": None if t.window_end_ms is None else ev.format_event_time(t.window_end_ms),
                "count": t.window_count,
            },
            "reference": {"kind": t.reference_kind, "count": t.reference_count},
            "source": {"topic": pos.topic, "partition": pos.partition, "offset": pos.offset},
            "labels": labels,
            "annotations": {"summary": summary, "description": description, **annotations},
            "monitor": {"instance": self.spec.instance, "version": self.spec.version},
        }
        self.log.info(
            "alert",
            model=m.model,
            channel=t.channel,
            detector=t.detector,
            status=status,
            severity=severity,
            statistic=alert["statistic"],
        )
        return Alert(t.fingerprint, orjson.dumps(alert), alert, d.event_time_ms, pos)

    # ------------------------------------------------------------------ state
    # State is stored as items (one per channel, one per model, one for pending labels) so a
    # checkpoint writes only what changed and no single record grows with the number of channels.
    # Items are data in the format of ``core.state``, never objects.
    def state_items(self, only_dirty: bool = True) -> dict[str, bytes]:
        """Encoded state items changed since the last call (all items when ``only_dirty`` is False)."""
        items: dict[str, bytes] = {}
        for name, m in self.models.items():
            if m.dirty or not only_dirty:
                items[f"m\x1f{name}"] = state.encode_model(m.known_features, list(m.channels))
                m.dirty = False
            for ch_name, ch in m.channels.items():
                if ch.dirty or not only_dirty:
                    items[f"c\x1f{name}\x1f{ch_name}"] = state.encode_channel(ch)
                    ch.dirty = False
        if self.labels_dirty or (not only_dirty and self.pending_labels):
            items["labels"] = state.encode_labels(self.pending_labels)
            self.labels_dirty = False
        return items

    @classmethod
    def from_state_items(
        cls,
        spec: MonitorSpec,
        partition: int,
        items: dict[str, bytes],
        baselines: dict[str, dict[str, Reference]] | None = None,
    ) -> PartitionMonitor:
        """Rebuild a partition from state items that the caller has already authenticated.

        A channel whose stored settings differ from the current config restarts its detectors
        (keeping its reference) and says so in the log. An item that is not well-formed state
        (corrupt, truncated, another format version) resets what it held — the model, the channel
        or the pending labels — with a ``state_item_rejected`` log line; ``rejected_state_items``
        counts them.
        """
        monitor = cls(spec, partition, baselines)
        for key, blob in items.items():
            if key.startswith("m\x1f"):
                monitor._restore_model(key[2:], blob, items)
            elif key == "labels":
                try:
                    monitor.pending_labels = state.decode_labels(blob)
                except state.StateFormatError as exc:
                    monitor._rejected(None, None, exc)
        return monitor

    def _restore_model(self, name: str, blob: bytes, items: dict[str, bytes]) -> None:
        try:
            record = state.decode_model(blob, name)
        except state.StateFormatError as exc:
            self._rejected(name, None, exc)
            return
        model = self.model(name)
        if model is None:
            return
        model.known_features = list(record.known_features)
        for ch_name in record.channels:
            blob_ch = items.get(f"c\x1f{name}\x1f{ch_name}")
            if blob_ch is None:
                continue
            try:
                ch = self._reconciled(model, state.decode_channel(blob_ch, name, ch_name, self.partition))
            except Exception as exc:  # noqa: BLE001 - whatever a stored item holds, it resets only its channel
                self._rejected(name, ch_name, exc)
                continue
            if ch is not None:
                model.channels[ch_name] = ch
        model.dirty = False

    def _rejected(self, model: str | None, channel: str | None, exc: Exception) -> None:
        self.rejected_state_items += 1
        reason = str(exc) if isinstance(exc, state.StateFormatError) else f"{type(exc).__name__}: {exc}"
        self.log.warning("state_item_rejected", model=model, channel=channel, reason=reason[:300])

    def _reconciled(self, model: ModelMonitor, snap: state.ChannelSnapshot) -> ChannelMonitor | None:
        """A restored channel, brought in line with the current config.

        A channel the config no longer monitors (disabled, or undiscoverable) is dropped; one whose
        settings, type or baseline changed is rebuilt — keeping its open alert episodes, so an alert
        that was firing still resolves (or stays firing) instead of being forgotten.
        """
        name, log_ = snap.name, self.log.bind(model=model.model, channel=snap.name)
        cspec = self.spec.channel_spec(model.model, name)
        if name in model.disabled or (cspec is None and not model.discover):
            still_open = [e.fingerprint for e in snap.open_episodes()]
            log_.warning("state_channel_dropped", reason="no longer monitored by the config", open_alerts=still_open)
            return None
        ctype = (cspec.type if cspec is not None and cspec.type else None) or snap.channel_type
        wanted = self.spec.channel_settings(model.model, name, ctype)
        baseline = model.baseline_for(name, ctype)
        ref = snap.reference
        baseline_changed = baseline is not None and (ref is None or ref.kind != "baseline" or ref.to_profile() != baseline.to_profile())
        same_settings = state.settings_digest(wanted) == snap.settings_digest
        ordinal = len(model.channels)
        if same_settings and ctype == snap.channel_type and not baseline_changed:
            return state.restore_channel(snap, wanted, self.partition, ordinal)
        reference = baseline if baseline is not None else (ref if ctype == snap.channel_type else None)
        log_.warning(
            "state_settings_changed_reset",
            reason="settings changed" if not same_settings else ("type changed" if ctype != snap.channel_type else "baseline changed"),
            open_alerts=[e.fingerprint for e in snap.open_episodes()],
        )
        fresh = ChannelMonitor(model.model, name, ctype, wanted, self.partition, ordinal, reference)
        fresh.adopt_open_episodes(snap)
        return fresh

def _clean(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    if x != x or x in (float("inf"), float("-inf")):
        return None
    return round(x, 6)


class StateAuthError(ValueError):
    """A state record's signature did not verify: it is not loaded."""


_MAC_LEN = 32


def sign_state(payload: bytes, secret: bytes) -> bytes:
    """Prefix ``payload`` with version byte and HMAC-SHA256 over it."""
    body = bytes([STATE_FORMAT_VERSION]) + payload
    return hmac.new(secret, body, hashlib.sha256).digest() + body


def verify_state(blob: bytes, secret: bytes) -> bytes:
    """Return the payload of a signed state blob, or raise :class:`StateAuthError`."""
    if len(blob) < _MAC_LEN + 1:
        raise StateAuthError("state record too short to carry a signature")
    mac, body = blob[:_MAC_LEN], blob[_MAC_LEN:]
    if not hmac.compare_digest(mac, hmac.new(secret, body, hashlib.sha256).digest()):
        raise StateAuthError("state record signature does not verify (wrong secret or forged record)")
    if body[0] != STATE_FORMAT_VERSION:
        raise StateAuthError(f"state record format {body[0]} is not {STATE_FORMAT_VERSION}")
    return body[1:]
