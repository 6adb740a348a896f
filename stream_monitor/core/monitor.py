"""The judging step: one task's models, rows in event-time order in, alert events and dead letters out.

:class:`PartitionMonitor` holds the models of one task: a partition of the internal by-model topic
(every input partition's rows of those models), or an input partition when state is partitioned by
input. ``take`` queues rows in event-time order, ``release`` hands back those the watermark has
passed, and ``judge`` feeds them to the channels. ``process`` (read and judge a batch of records in
record order) serves the unit tests and the golden file. Judging is deterministic: the same rows give
the same alerts, whatever the batch boundaries, because evaluations fall on observation counts and
alerts are ordered by (row, channel, detector).

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

from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Sequence

import numpy as np
import structlog

from stream_monitor.core import events as ev
from stream_monitor.core import state, state_order, versions
from stream_monitor.core.alert import AlertEvent, alert_payload, build_alert
from stream_monitor.core.channel import ChannelTrigger, drifting_features
from stream_monitor.core.evaluations import EvaluationLog, evaluation_log
from stream_monitor.core.batch import Batch, entry_bytes, error_text, extras
from stream_monitor.core.exchange import INFERENCE, LABEL, PositionsOf, RawsOf, Row, encode_rows
from stream_monitor.core.packed import CodedColumn, PackedColumn
from stream_monitor.core.split import split_for_judging
from stream_monitor.core.groups import GroupBaselines, grouped, groups_of, in_group, model_of
from stream_monitor.core.intake import InputRecord, failed, merge_intake, read_inference, read_labels
from stream_monitor.core.joins import LabelWaits, judge_labels, restore_waiting
from stream_monitor.core.ordering import Carriers, EventTimeMerger, restore_order
from stream_monitor.core.limits import LIMITS_CHANNEL, LimitGuard, limit_model, limit_texts
from stream_monitor.core.gathering import _LIMITED, FeatureBlock, gather_batch
from stream_monitor.core.model_monitor import AllMissing, ModelMonitor, classify_all_missing
from stream_monitor.core.model_pages import performance_pages
from stream_monitor.core.reference import Reference
from stream_monitor.core.restore import restore_model
from stream_monitor.core.retraining import Retraining, RetrainingTrigger, decode_trigger, encode_trigger
from stream_monitor.core.sent import ITEM as SENT_ITEM
from stream_monitor.core.sent import SentLedger, decode_item
from stream_monitor.core.spec import ESTIMATED_CHANNELS, PREDICTION, MonitorSpec, base_channel
from stream_monitor.core.state_labels import LabelSegments, is_labels_key, restore_labels
from stream_monitor.core.state_window import StoredParts

log = structlog.get_logger("stream_monitor.core")

STATE_FORMAT_VERSION = state.FORMAT_VERSION  # also the version byte of signed state records


@dataclass(slots=True)
class Alert:
    """An alert ready to publish: Kafka key (``fingerprint``), JSON bytes and the typed event."""

    fingerprint: str
    payload: bytes
    event: AlertEvent
    event_time_ms: int
    position: ev.SourcePosition


@dataclass(slots=True)
class BatchResult:
    """What one processing step produced: counts, alerts, dead letters (and evaluations when asked)."""

    records: int = 0
    alerts: list[Alert] = field(default_factory=list)
    dead_letters: list[ev.DeadLetter] = field(default_factory=list)
    invalid_by_reason: Counter[str] = field(default_factory=Counter)
    channel_values: int = 0
    processed: int = 0  # records monitored (the others are dead letters with ``processed`` False)
    waiting: int = 0  # labels that now wait for their prediction (neither monitored nor dead letters yet)
    resumed: int = 0  # labels that stopped waiting here (joined, or label_unmatched dead letters)
    limits_exceeded: Counter[str] = field(default_factory=Counter)  # values refused per limit (a metric)
    evaluations: EvaluationLog | None = None  # evaluations when asked for: every one (reports), or each detector's latest
    retraining: list[Retraining] = field(default_factory=list)  # retraining events (when ``retraining.enabled``)
    held_back: int = 0  # alerts and retraining events judged again and not sent: committed before (core/sent.py)
    version_switches: list[versions.VersionSwitch] = field(default_factory=list)  # model version switches, in row order (reports)
    judged: Sequence[Row] = ()  # the inference rows :meth:`PartitionMonitor.release` judged, in order (the runtime's delay metric)


_KEY = attrgetter("key")


class PartitionMonitor:
    """All monitoring state of one input partition, and the batch processing step."""

    def __init__(self, spec: MonitorSpec, partition: int, baselines: dict[str, dict[str, Reference]] | None = None) -> None:
        self.spec = spec
        self.partition = partition
        self.baselines = GroupBaselines(baselines or {}) if grouped(spec) else baselines or {}
        self.models: dict[str, ModelMonitor] = {}  # by judge name: a judging group g > 0 of model m is "m<RS>g" (core/groups.py)
        self.pending_labels: OrderedDict[str, tuple[str, Any, int]] = OrderedDict()
        self.label_segments = LabelSegments()  # which state item holds each pending prediction (core/state_labels.py)
        self.window_parts = StoredParts()  # the reference and window items of each channel (core/state_window.py)
        self.rejected_state_items = 0  # state items that did not decode when this partition was restored
        self.limits = LimitGuard(spec.limits, partition, spec.label_join_max_pending)
        self._pending_bytes: int | None = None  # estimated size of pending_labels (None: not yet counted)
        self.joins = LabelWaits()  # labels read before their prediction
        lateness = int(spec.max_lateness_seconds * 1000)
        self.order = EventTimeMerger(lateness, spec.order_max_rows)  # inference rows of every source, in event-time order
        self.label_order = EventTimeMerger(lateness, spec.order_max_rows)
        self._late_labels: list[Row] = []  # labels that came behind the label order's frontier: judged at the next release
        self.carriers = Carriers()
        self.hold_owed = False  # wait while rows read again may still come (owing): a task of several input partitions
        self.order_dirty = False
        self.retraining = RetrainingTrigger(spec) if spec.retraining.enabled else None
        self.sent = SentLedger()  # outputs committed ahead of the written state: not sent again when judged again
        self.log = log.bind(partition=partition)

    # ------------------------------------------------------------- processing
    def model(self, name: str) -> ModelMonitor | None:
        """The monitor of model ``name``, created on first sight; None when the model is not monitored.

        An unconfigured model beyond ``limits.models`` is not monitored either (see :meth:`_block`).
        """
        m = self.models.get(name)
        if m is None:
            real, group = model_of(name)
            if real not in self.spec.models and (not self.spec.discover_models or len(self.models) >= self.spec.limits.models):
                return None
            m = ModelMonitor(self.spec, real, self.partition, self.baselines.get(real))
            n = groups_of(self.spec, real)
            if n > 1 or group:  # a judging group knows its own configured features only
                m.known_features = [f for f in m.known_features if in_group(f, group, n)]
            self.models[name] = m
        return m

    def process(self, records: Sequence[InputRecord], record_evaluations: bool | str = False) -> BatchResult:
        """Read, monitor and alert on one batch of records in their order (no event-time reordering). Never raises.

        With ``record_evaluations`` the result also lists every detector evaluation (for reports).
        This is :func:`read_inference` followed by :meth:`judge`; ``run`` and ``replay`` put the
        rows of every input partition in event-time order between the two (:meth:`take`,
        :meth:`release`).
        """
        intake = read_inference(self.spec, records)
        result = self.judge(split_for_judging(self.spec, intake.ordered) if grouped(self.spec) else intake.ordered, record_evaluations)
        merge_intake(result, intake)
        return result

    def process_labels(self, records: Sequence[InputRecord], record_evaluations: bool | str = False) -> BatchResult:
        """Read label records and join them to remembered predictions (by event_id), in record order."""
        intake = read_labels(records)
        result = self.judge(intake.ordered, record_evaluations)
        merge_intake(result, intake)
        return result

    def judge(self, rows: Sequence[Row], record_evaluations: bool | str = False) -> BatchResult:
        """Monitor rows in the order given (inference rows, then joined labels); alerts and dead letters out. Never raises.

        ``record_evaluations``: True lists every evaluation in the result, ``"latest"`` each detector's last (:mod:`~stream_monitor.core.evaluations`).
        """
        result = BatchResult(evaluations=evaluation_log(record_evaluations))
        inference = [r for r in rows if r.kind == INFERENCE]
        labels = [r for r in rows if r.kind == LABEL] if len(inference) < len(rows) else []
        if inference:
            self._judge_inference(inference, result)
        if labels or self.joins.waiting:
            judge_labels(self, labels, result)
        if self.retraining is not None and (rows or result.alerts):
            times: dict[str, int] = {}
            for r in rows:  # by judge name: a judging group's trigger (RetrainingTrigger._key) sees its group's time
                times[r.event.model] = max(times.get(r.event.model, r.key[0]), r.key[0])
            result.retraining = self.retraining.feed(result.alerts, times)
        if result.evaluations is not None:
            result.evaluations.finish()
        sent = self.sent
        if result.alerts or result.retraining:  # those committed before (judging redone after a restore) are not sent again
            held = sent.held_back
            result.alerts, result.retraining = sent.settle(result.alerts, result.retraining)
            if sent.held_back > held:
                result.held_back = sent.held_back - held
                self.log.info("outputs_already_committed", held_back=result.held_back, still_owed=sum(sent.owed.values()))
        if sent.track or sent.owed:  # how far judging went: for the item's upto, and what judging redone did not make again
            dropped = sent.judged(max(map(_KEY, inference)) if inference else None, max(map(_KEY, labels)) if labels else None)
            if dropped:
                self.log.warning(
                    "owed_outputs_dropped", dropped=dropped,
                    reason="judging redone past the rows that made these committed outputs did not make them again (the config or the code changed since)",
                )  # fmt: skip
        for a in result.alerts:  # logged once it is to be sent: not again when judging redone holds it back
            e = a.event
            self.log.info("alert", model=e.model, channel=e.feature, detector=e.detector, status=e.status, severity=e.severity, statistic=e.statistic)
            if e.feature == LIMITS_CHANNEL and e.status == "firing" and not e.escalated:
                self.log.warning("limit_reached", limit=e.detector, fingerprint=a.fingerprint, cap=e.reference.count)
        return result

    def _judge_inference(self, rows: list[Row], result: BatchResult) -> None:
        # a row is its own decoded event (``event``, ``event_time_ms``, ``problems``): none built per row
        keys = list(map(_KEY, rows))
        ids = [k[1] ^ k[2] for k in keys]  # Row.identity
        self._monitor(rows, PositionsOf(rows), RawsOf(rows), result, ids=ids)  # type: ignore[arg-type]
        latest = max([k[0] for k in keys])
        if self.joins.prediction_time is None or latest > self.joins.prediction_time:
            self.joins.prediction_time = latest
            self.order_dirty = True  # state (the order item): the label waits expire by it

    # ------------------------------------------------------- event-time order
    def take(self, rows: Sequence[Row]) -> list[Row]:
        """Queue rows for their turn in event-time order; return the inference rows that came too late (``late`` dead letters).

        A label behind the label order's frontier is not late: labels trail their predictions by
        nature, and label partitions fill at their own pace, so it is judged (joined) at the next
        :meth:`release`, before the labels released in order.

        After a restore, rows read again from records read before it, at or below the frontier *of the
        restore*, were judged (or dead-lettered) then: skipped. Above it they were waiting: ``late`` if behind.
        """
        late: list[Row] = []
        self.order_dirty = True
        inference = [r for r in rows if r.kind == INFERENCE]
        labels = [r for r in rows if r.kind == LABEL] if len(inference) < len(rows) else []
        for mine, merger in ((inference, self.order), (labels, self.label_order)):
            if not mine:
                continue
            if merger.judged_before is not None and self.carriers.restored:
                frontier, before = merger.judged_before, self.carriers.read_before
                mine = [r for r in mine if not (r.key <= frontier and before(r))]
            too_late = merger.add(mine)
            if too_late and merger is self.label_order:  # labels trail their predictions by nature: judged now, out of order
                self._late_labels += too_late
                self.carriers.queue(mine)
                continue
            late += too_late
            if too_late:
                gone = set(map(id, too_late))
                self.carriers.queue(r for r in mine if id(r) not in gone)
            else:
                self.carriers.queue(mine)
        if self.carriers.owed and self.carriers.owing(self.order, self.label_order):  # (after the rows read before were told apart)
            self.carriers.paid_by(rows)
        return late

    def release(self, final: bool = False, record_evaluations: bool | str = False) -> BatchResult:
        """Judge the queued rows whose turn came (all of them when ``final``), inference rows first; with ``hold_owed``
        none while rows read again may still come (``Carriers.owing``), unless the order is full."""
        if not final and self.hold_owed and self.carriers.owing(self.order, self.label_order) and max(len(self.order), len(self.label_order)) <= self.order.max_rows:
            return BatchResult(evaluations=evaluation_log(record_evaluations))
        rows = self.order.release(final)
        labels = self.label_order.release(final)
        if self._late_labels:  # behind the label order's frontier when they came (take): joined at once, first
            labels, self._late_labels = self._late_labels + labels, []
        if not rows and not labels:
            return BatchResult(evaluations=evaluation_log(record_evaluations))
        self.order_dirty = True
        self.carriers.release(rows)
        self.carriers.release(labels)
        result = self.judge(rows + labels if labels else rows, record_evaluations)
        result.judged = rows
        return result

    def advance(self, source: tuple[str, int], event_time_ms: int, labels: bool = False) -> None:
        """A progress marker: ``source`` has read up to ``event_time_ms`` (its label order's when ``labels``)."""
        (self.label_order if labels else self.order).advance(source, event_time_ms)
        self.order_dirty = True

    def idle(self, source: tuple[str, int]) -> None:
        """An input partition sends nothing for now: the event-time order stops waiting for it."""
        self.order.idle(source)
        self.label_order.idle(source)

    def caught_up(self, source: tuple[str, int]) -> None:
        """An input partition's reader is at its end (see :meth:`EventTimeMerger.caught_up`): nothing read before is owed."""
        self.order.caught_up(source)
        self.label_order.caught_up(source)
        self.carriers.paid(source)

    def forget_queued(self) -> None:
        """Drop the queued rows: their records will be read again (this task was kept over a rebalance)."""
        self.order.clear()
        self.label_order.clear()
        self.order.judged_before, self.label_order.judged_before = self.order.frontier, self.label_order.frontier
        # read again from the commit offsets; records read before stay known (Carriers.rewound)
        self.carriers = self.carriers.rewound(self.carriers.commit_offsets())

    def read_from(self, offsets: dict[tuple[str, int], int]) -> None:
        """A rebuilt task's carrying partitions are read again from ``offsets`` (their committed offsets).

        The restored state knows how far its records were read (``seen``), past records whose rows
        were still waiting; until those are read and queued again, a checkpoint must commit where
        reading starts again, not ``seen``: committing ``seen`` would skip the waiting rows for
        good after a crash (:meth:`Carriers.resume_from`).
        """
        self.carriers.resume_from(offsets)

    def queued(self) -> int:
        """Rows waiting for their turn."""
        return len(self.order) + len(self.label_order)

    def _monitor(
        self,
        decoded: list[ev.DecodedEvent],
        positions: Sequence[ev.SourcePosition],
        raws: list[bytes],
        result: BatchResult,
        joined: list[Any] | None = None,
        ids: list[int] | None = None,
    ) -> None:
        """Feed decoded events to their channels; ``joined[i]`` is the prediction a label joined to.

        ``ids`` are the rows' identities (:attr:`Row.identity`; default: source offsets), which
        alert ids hash.

        Values are grouped per (model, channel) in row order (:meth:`_gather`), and the channels
        are fed in the order in which they got their first value of the batch (row, then features
        in ``known_features`` order, then prediction, latency, label, error), which orders the
        evaluations (:meth:`_ingest`). Alerts follow in (row, channel, detector) order and dead
        letters in record order, whatever the batch boundaries.

        An exception while gathering one record's values makes that record (alone) a
        ``processing_error`` dead letter; one inside a channel resets that channel (see
        :meth:`_ingest`). Neither costs anything while nothing raises. A model version never
        seen before cuts the batch at its first row (:mod:`stream_monitor.core.versions`).
        """
        cut, first_versions = versions.version_cut(self.models, decoded, self.baselines, self.model, result.version_switches)
        if cut:  # a model's version changes at row ``cut``: the rows before it go to the old references
            for part in (slice(None, cut), slice(cut, None)):
                self._monitor(
                    decoded[part], positions[part], raws[part], result,
                    joined[part] if joined is not None else None, ids[part] if ids is not None else None,
                )
            return
        batch = self._gather(decoded, positions, joined, ids if ids is not None else [p.offset for p in positions])
        versions.record_first_versions(self.models, first_versions)
        triggers = self._ingest(batch, decoded, positions, result)
        triggers.extend(batch.triggers)
        result.processed += len(decoded) - len(batch.failed) - len(batch.limited)
        for row, exc in batch.failed.items():
            result.dead_letters.append(failed(InputRecord(raws[row], positions[row]), exc))
            result.invalid_by_reason[ev.DeadLetterReason.PROCESSING_ERROR] += 1
        for row, detail in batch.limited.items():
            result.dead_letters.append(ev.DeadLetter(ev.DeadLetterReason.LIMIT_EXCEEDED, detail, raws[row], positions[row]))
            result.invalid_by_reason[ev.DeadLetterReason.LIMIT_EXCEEDED] += 1
        result.limits_exceeded.update(batch.hits)
        problems = batch.problems
        for row in sorted(problems):
            reason, detail = problems[row][0]
            more = f" (+{len(problems[row]) - 1} more)" if len(problems[row]) > 1 else ""
            result.dead_letters.append(ev.DeadLetter(reason, detail + more, raws[row], positions[row], processed=True))
            result.invalid_by_reason[str(reason)] += 1
        triggers.sort(key=lambda t: (t.row, t.channel_ordinal, t.detector_ordinal))
        triggers = performance_pages(triggers, lambda row: self.models.get(decoded[row].event.model))
        for t in triggers:
            try:
                result.alerts.append(self._alert(t, decoded[t.row], positions[t.row]))
            except Exception as exc:
                dl = failed(InputRecord(raws[t.row], positions[t.row]), exc)
                result.dead_letters.append(ev.DeadLetter(dl.reason, f"alert {t.fingerprint}: {dl.detail}", dl.raw, dl.position, processed=True))
                result.invalid_by_reason[str(dl.reason)] += 1
        # record-level and value-level dead letters, in record order whatever the batch boundaries
        result.dead_letters.sort(key=lambda dl: dl.position.offset if dl.position is not None else -1)

    def _gather(self, decoded: list[ev.DecodedEvent], positions: Sequence[ev.SourcePosition], joined: list[Any] | None, ids: list[int]) -> Batch:
        """Group the batch's values per (model, channel), remembering where each column started (:func:`gather_batch`)."""
        return gather_batch(self, decoded, joined, ids)

    def _block(self, name: str) -> FeatureBlock | None:
        """A batch's feature block of model ``name``; None when unmonitored, ``_LIMITED`` when refused by the models limit."""
        m = self.model(name)
        if m is not None:
            m.begin_batch()
            return FeatureBlock(m, name)
        limited = name not in self.models and name not in self.spec.models and self.spec.discover_models
        return _LIMITED if limited else None

    def _ingest(
        self, batch: Batch, decoded: list[ev.DecodedEvent], positions: Sequence[ev.SourcePosition], result: BatchResult
    ) -> list[ChannelTrigger]:
        """Feed every gathered column to its channel, in first-value order; return the lifecycle transitions.

        Wrong-type values are listed per record in channel order. A channel that raises is reset
        (its open alert episodes kept) and every record of its column says so in a
        ``processing_error`` dead letter: which value caused it cannot be told.
        """
        row_times = [d.event_time_ms for d in decoded]
        row_offsets = batch.identities
        row_times_array = np.array(row_times, dtype=np.int64)
        columns, rows_arrays = batch.columns, batch.rows_arrays
        late: list[tuple[int, int, ev.DeadLetterReason, str]] = []  # (row, channel ordinal, reason, detail)
        triggers: list[ChannelTrigger] = []
        for key in sorted(columns, key=batch.first.__getitem__):
            values, rows = columns[key]
            model = self.models[key[0]]
            ch = model.channels[key[1]]
            result.channel_values += len(values)
            try:
                if values.__class__ is AllMissing:
                    flags, payload, wrong = classify_all_missing(ch.channel_type, len(values))
                elif values.__class__ is PackedColumn:  # floats and nulls, classified where they were read (core/packed.py)
                    if ch.channel_type == "numeric":
                        flags, payload, wrong = values.classified()
                    else:
                        values = values.tolist()
                        flags, payload, wrong = ch.classify(values)
                elif values.__class__ is CodedColumn:  # texts and nulls, coded where they were read (core/packed.py)
                    if ch.channel_type == "categorical":
                        flags, payload, wrong = ch.classify_coded(values)
                    else:
                        values = values.tolist()
                        flags, payload, wrong = ch.classify(values)
                else:
                    flags, payload, wrong = ch.classify(values)
                for i in wrong:
                    late.append((rows[i], ch.ordinal, ev.DeadLetterReason.WRONG_TYPE, f"{key[1]}: expected {ch.channel_type}, got {type(values[i]).__name__}"))
                triggers.extend(
                    ch.ingest_classified(flags, payload, rows_arrays.get(key, rows), row_times, row_offsets, result.evaluations, row_times_array)
                )
            except Exception as exc:
                self.log.error("channel_failed_reset", model=key[0], channel=key[1], error=error_text(exc), exc_info=exc)
                model.reset_channel(key[1])
                detail = f"{key[1]}: {error_text(exc)}; channel reset"
                late.extend((row, ch.ordinal, ev.DeadLetterReason.PROCESSING_ERROR, detail) for row in rows)
        late.sort(key=lambda p: (p[0], p[1]))
        problems = batch.problems
        for row, _, reason, detail in late:
            problems.setdefault(row, []).append((reason, detail))
        return triggers

    # ------------------------------------------------------------ label join
    def _remember_prediction(self, event_id: str, model: str, prediction: Any, event_time_ms: int) -> tuple[int, int] | None:
        """Keep a prediction for the label join; None, or how many were dropped by the (byte, entry) caps.

        Entries older than the join window go first (that is the join window, not a limit); then,
        oldest first, those beyond ``label_join_max_pending`` entries or ``limits.label_join_bytes``.
        """
        pending, segments = self.pending_labels, self.label_segments
        size = self._pending_size()
        old = pending.get(event_id)
        if old is not None:
            size -= entry_bytes(event_id, old)
            segments.remove(event_id)
        entry = (model, prediction, event_time_ms)
        pending[event_id] = entry
        pending.move_to_end(event_id)
        segments.add(event_id)
        size += entry_bytes(event_id, entry)
        horizon = event_time_ms - int(self.spec.label_join_window_seconds * 1000)
        cap_entries, cap_bytes = self.spec.label_join_max_pending, self.spec.limits.label_join_bytes
        by_bytes = by_entries = 0
        while pending:
            oldest_id, oldest = next(iter(pending.items()))
            expired, over_entries, over_bytes = oldest[2] < horizon, len(pending) > cap_entries, size > cap_bytes
            if not (expired or over_entries or over_bytes):
                break
            pending.popitem(last=False)
            segments.remove(oldest_id)
            size -= entry_bytes(oldest_id, oldest)
            if not expired:
                by_entries += over_entries
                by_bytes += over_bytes and not over_entries
        self._pending_bytes = size
        return (by_bytes, by_entries) if by_bytes or by_entries else None

    def _dropped_predictions(self, batch: Batch, row: int, d: ev.DecodedEvent, dropped: tuple[int, int]) -> None:
        """Signal pending predictions dropped by the label-join caps (a limit alert and a count)."""
        for kind, n in zip(("label_join_bytes", "label_join_entries"), dropped, strict=True):
            if n:
                batch.limit_hit(self.limits, row, d, kind, n)

    def _pending_size(self) -> int:
        """The estimated size of ``pending_labels`` (counted once after a restore, then kept up to date)."""
        if self._pending_bytes is None:
            self._pending_bytes = sum(entry_bytes(k, v) for k, v in self.pending_labels.items())
        return self._pending_bytes

    def _alert(self, t: ChannelTrigger, d: ev.DecodedEvent, pos: ev.SourcePosition) -> Alert:
        """The alert of one transition at record ``d``: a channel's, or a limit's (on ``__limits__``).

        A prediction channel's firing page also names the model's features drifting at that time;
        an estimate channel's alert says how the estimate was made and what the labels say so far.
        """
        coinciding = estimate = None
        if t.channel == LIMITS_CHANNEL:
            model = limit_model(t.detector, d.event.model)
            m = self.models.get(model)
            labels, annotations = (m.labels, m.annotations) if m is not None else (self.spec.labels, self.spec.annotations)
            model = m.model if m is not None else model_of(model)[0]
            texts: tuple[str, str] | None = limit_texts(model, self.partition, t, self.spec.limits.quiet_seconds)
            version = d.event.model_version if model == model_of(d.event.model)[0] else None
        else:
            m = self.models[d.event.model]
            model, version, texts = m.model, d.event.model_version, None
            cspec = self.spec.channel_spec(model, t.channel)
            labels = {**m.labels, **(cspec.labels if cspec else {})}
            annotations = {**m.annotations, **(cspec.annotations if cspec else {})}
            if t.channel.startswith(PREDICTION) and t.transition != "resolved":
                coinciding = drifting_features(m.channels.values(), d.event_time_ms, t.window_start_ms)
            elif base_channel(t.channel) in ESTIMATED_CHANNELS:
                estimate = m.estimate_evidence(t.channel, t.row)
        spec = self.spec
        event = build_alert(
            t, model=model, model_version=version, event_time_ms=d.event_time_ms, position=pos, labels=labels,
            annotations=annotations, instance=spec.instance, version=spec.version, texts=texts, coinciding=coinciding,
            estimate=estimate,
        )  # fmt: skip
        return Alert(t.fingerprint, alert_payload(event), event, d.event_time_ms, pos)

    # ------------------------------------------------------------------ state
    # State is stored as items (one per model, per channel with its reference and window chunks apart, segments of
    # the pending labels) so a checkpoint writes only what changed and no single record grows with the number of channels.
    def state_items(self, only_dirty: bool = True) -> dict[str, bytes | None]:
        """Encoded state items changed since the last call (all items when ``only_dirty`` is False).

        ``None`` for an item that is gone (a full segment of the pending predictions now empty, a channel's window
        chunk or reference it no longer has).
        """
        items: dict[str, bytes | None] = self.window_parts.take_stale() if only_dirty else {}
        parts = self.window_parts
        for name, m in self.models.items():
            if m.dirty or not only_dirty:
                items[f"m\x1f{name}"] = state.encode_model(
                    m.known_features, list(m.channels), m.versions, m.calibration, m.realised, (list(m.classes), m.untracked), m.page
                )
                m.dirty = False
            for ch_name, ch in m.channels.items():
                if ch.dirty or not only_dirty:
                    items.update(parts.channel_items(ch, name, only_dirty))
                    ch.dirty = False
        items.update(self.label_segments.items(self.pending_labels, only_dirty))
        if self.order_dirty or self.joins.dirty or not only_dirty:
            items["order"] = state_order.encode_order(
                (self.order.frontier, self.order.latest), (self.label_order.frontier, self.label_order.latest),
                self.carriers.seen, self.joins.prediction_time,
            )  # fmt: skip
            self.order_dirty = False
        if self.joins.dirty or (not only_dirty and self.joins.waiting):
            by_model: dict[str, list[Row]] = {}
            for row in self.joins.waiting.values():
                by_model.setdefault(row.event.model, []).append(row)
            items["waiting"] = state_order.encode_waiting([encode_rows(m, rows) for m, rows in by_model.items()])
            self.joins.dirty = False
        if self.retraining is not None and (self.retraining.dirty or not only_dirty):
            items["retraining"] = encode_trigger(self.retraining)
            self.retraining.dirty = False
        write, sent = self.sent.state_item()
        if write:
            items[SENT_ITEM] = sent
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
        labels: dict[str, bytes] = {}
        for key, blob in items.items():
            if key.startswith("m\x1f"):
                restore_model(monitor, key[2:], blob, items)
            elif is_labels_key(key):
                labels[key] = blob
            elif key == "order":
                restore_order(monitor, blob)
            elif key == "waiting":
                restore_waiting(monitor, blob)
            elif key == SENT_ITEM:
                try:
                    monitor.sent = SentLedger(*decode_item(blob))
                except state.StateFormatError as exc:
                    monitor._rejected(None, None, exc)
            elif key == "retraining" and monitor.retraining is not None:
                try:
                    monitor.retraining.models = decode_trigger(blob)
                except state.StateFormatError as exc:
                    monitor._rejected(None, None, exc)
        if labels:
            (monitor.pending_labels, monitor.label_segments), rejected = restore_labels(labels)
            for exc in rejected:
                monitor._rejected(None, None, exc)
        restored = {f"{name}\x1f{ch}" for name, m in monitor.models.items() for ch in m.channels}
        monitor.window_parts = StoredParts.found(items, restored)
        return monitor

    def _rejected(self, model: str | None, channel: str | None, exc: Exception) -> None:
        self.rejected_state_items += 1
        reason = str(exc) if isinstance(exc, state.StateFormatError) else f"{type(exc).__name__}: {exc}"
        self.log.warning("state_item_rejected", model=model, channel=channel, reason=reason[:300])
