"""Reading input records where they are: each model's rows to its owner, and progress markers beside them.

With ``state_partitioning: model`` (the default) an input partition's records are read (decoded,
validated, dead-lettered) by whichever instance owns that partition, and each model's rows go, in
the same transaction, to partition ``crc32(model) % n`` of the internal topic, where the model's
owner puts the rows of every input partition (its *sources*) in event-time order. A model with
``judging_groups: N`` sends group g's rows (:func:`~stream_monitor.core.split.split_rows`) to
partition ``(crc32(model) + g * (n // N)) % n`` (:func:`~stream_monitor.core.groups.group_partition`),
each judged there like a model of its own.

Every judging partition expects every source, but a source sends rows only to the partitions of
the models it carries: with input keyed by model, most partitions never get a row from it and
their event-time order would wait for it. So, after a batch's rows, a source that read on sends a
*progress record* (:func:`~stream_monitor.core.exchange.encode_progress`: "read up to event time
t") to every partition that got none of its rows in that batch and does not know t yet — at most
once per ``kafka.progress_interval_ms`` per (source, partition); a marker held back by that
interval goes out later (:meth:`Forwarder.flush`). One producer sends both, to the same partition,
so a marker arrives after every row that source sent there before it.

A source whose reader has reached its end offset says so (:meth:`Forwarder.announce`): a *caught
up* progress record to every partition, which then stops waiting for it until it sends again. Only
the reader can tell an input partition with nothing to read from one that is slow, moving to
another instance, or behind a broker outage, so only its word makes the order go on without it;
the announcement is repeated every ``CAUGHT_UP_REPEAT_S`` while it holds, for tasks restored since.
It carries how long the partition has not grown as the reader saw it, from which the judges count
their grace (:mod:`stream_monitor.runtime.idle`).
"""

from __future__ import annotations

import functools
import operator
import time
import zlib
from typing import Any, Callable, Iterable, Iterator

from kafka import TopicPartition

from stream_monitor.config import AppConfig
from stream_monitor.core import exchange
from stream_monitor.core.events import DeadLetter, SourcePosition
from stream_monitor.core.groups import group_partition, groups_of
from stream_monitor.core.intake import Intake, WireIntake, as_wire, read_inference, read_inference_wire, read_labels, read_labels_wire
from stream_monitor.core.monitor import InputRecord
from stream_monitor.core.spec import MonitorSpec
from stream_monitor.core.split import split_row_lists
from stream_monitor.runtime.checkpoint import Checkpoint
from stream_monitor.runtime.poison import PoisonGuard
from stream_monitor.runtime.records import rows_records

Source = tuple[str, int]
_EVENT_TIME = operator.itemgetter(5)  # of a row in wire form (core/exchange.py)
CAUGHT_UP_REPEAT_S = 5.0  # while a source stays caught up, its announcement is repeated this often


class Forwarder:
    """Stage 1: reads input records, sends dead letters, rows records and progress records.

    ``producer`` returns the current producer (it is re-created after some failures); ``clock``
    is a monotonic wall clock in seconds, for the progress interval. ``partitions`` (the internal
    topic's partition count) is set once the topology is known.
    """

    code_texts = True
    """Rows records code their text columns (``CODED_FORMAT``, core/packed.py); False: they go as ``PACKED_FORMAT`` (an A/B switch)."""

    scan_shapes = True
    """Inference records of a shape seen before are read in one compiled pass (core/scan.py); False: one by one (an A/B switch)."""

    def __init__(
        self,
        cfg: AppConfig,
        spec: MonitorSpec,
        guard: PoisonGuard,
        checkpoint: Checkpoint,
        send_dead_letter: Callable[[DeadLetter], None],
        producer: Callable[[], Any],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        k = cfg.kafka
        self.topic = k.resolved_repartition_topic()
        self.label_topic = k.label_topic
        self.spec = spec
        self.guard = guard
        self.checkpoint = checkpoint
        self.send_dead_letter = send_dead_letter
        self.producer = producer
        self.clock = clock
        self.interval = k.progress_interval_ms / 1000.0
        self.partitions = 0
        self.progress_sent = 0  # progress records sent (aborted ones included)
        self._read_up_to: dict[Source, int] = {}  # per source: the latest event time read
        self._told: dict[tuple[Source, int], int] = {}  # per (source, partition): the latest time it was sent
        self._told_at: dict[tuple[Source, int], float] = {}  # when the last progress record of the pair went
        self.pending: set[tuple[Source, int]] = set()  # pairs whose progress the interval held back
        self.rows_sent: dict[int, int] = {}  # per internal partition: the offset of the last rows record written (runtime/drain.py)
        self._caught_up_told: dict[Source, float] = {}  # caught-up sources: when that was last announced
        self._held: list[Any] = []  # what forward() read, sent by release()
        self._held_offsets: dict[TopicPartition, int] = {}  # the next offset of each input partition forward() read

    def forward(self, tp: TopicPartition, records: list) -> None:
        """Read input records of ``tp``: their dead letters, rows records and progress are held for :meth:`release`.

        Reading goes through the poison guard like judging: a record whose reading raises is
        isolated and becomes a ``processing_error`` dead letter. Inference and label records read as
        a batch go from the consumer's records straight to rows in wire form
        (:func:`read_inference_wire`, :func:`read_labels_wire`).
        What a batch's reading sends goes out at its end (``run`` calls :meth:`release` after the
        batch): the first send ends the checkpoint begun before the poll (it waits for the
        broker's commit), which so has the whole batch's reading and judging to commit in.
        """
        offsets = [r.offset for r in records]
        hold = functools.partial(self._hold, (tp.topic, tp.partition))
        inputs, read = self.reader(tp, records)
        self.guard.feed(tp, offsets, inputs, read, hold, self.send_dead_letter)
        self._held_offsets[tp] = offsets[-1] + 1  # processed once released: never committed before its rows are in the transaction

    def reader(self, tp: TopicPartition, records: list) -> tuple[list, Callable[[list], Intake | WireIntake]]:
        """(the inputs, how to read them) for the poison guard: a batch from the consumer's records straight to rows in
        wire form, the guard's careful pass one :class:`InputRecord` at a time the general way."""
        if self.guard.batched(tp, records[0].offset):
            if tp.topic == self.label_topic:
                return records, functools.partial(read_labels_wire, tp.topic, tp.partition)
            return records, functools.partial(read_inference_wire, self.spec, tp.topic, tp.partition, scan_shapes=self.scan_shapes)
        inputs = [InputRecord(r.value or b"", SourcePosition(tp.topic, tp.partition, r.offset, r.timestamp), r.headers or None) for r in records]
        return inputs, read_labels if tp.topic == self.label_topic else functools.partial(read_inference, self.spec)

    @property
    def held(self) -> bool:
        """Is anything read and not yet released? (No checkpoint may begin then: its offsets would pass rows not sent.)"""
        return bool(self._held or self._held_offsets)

    def _hold(self, source: Source, intake: Intake | WireIntake) -> None:
        self._held.append(self._prepare(source, intake))

    def release(self) -> None:
        """Send what :meth:`forward` held: every dead letter and rows record, then each source's progress records due.

        Progress goes after every rows record of its source (a marker says "read up to t": the
        rows read before it must be there first). Then the input offsets read count as processed
        (:meth:`Checkpoint.processed`): the next checkpoint commits them with these records.
        """
        held, self._held = self._held, []
        for prepared in held:
            self._send_prepared(prepared)
        for source in dict.fromkeys(p[0] for p in held if p[3]):
            self.flush(source)
        offsets, self._held_offsets = self._held_offsets, {}
        for tp, next_offset in offsets.items():
            self.checkpoint.processed(tp, next_offset)

    def _prepare(self, source: Source, intake: Intake | WireIntake) -> tuple[Source, list[DeadLetter], list[tuple[bytes, bytes, int]], bool]:
        """The rows records of ``intake`` encoded, and the progress bookkeeping done: (source, dead letters, records, progress due)."""
        if type(intake) is Intake:
            intake = as_wire(intake)
        n = self.partitions
        told = self._told
        latest = self._read_up_to.get(source)
        got: set[int] = set()
        out: list[tuple[bytes, bytes, int]] = []  # (key, value, partition) of the rows records
        for model, rows in intake.rows.items():
            if not rows:
                continue
            key = model.encode()
            top = max(map(_EVENT_TIME, rows))
            for partition, values in self._rows_records(model, rows):
                out += [(key, value, partition) for value in values]
                got.add(partition)
                if told.get((source, partition), top - 1) < top:
                    told[(source, partition)] = top
            if latest is None or latest < top:
                latest = top
        if latest is not None:  # this source has read rows (now or before): its progress is due where these went not
            self._read_up_to[source] = latest
            self.pending.update((source, q) for q in range(n) if q not in got)
        return source, list(intake.dead_letters), out, latest is not None

    def _rows_records(self, model: str, rows: list[Any]) -> Iterator[tuple[int, list[bytes]]]:
        """One model's rows (wire form) as rows records, per judging group: (its partition of the internal topic, its records).

        ``models.<m>.judging_groups``: each group its own rows and partition (a group with no rows: no record).
        """
        base = zlib.crc32(model.encode())
        groups = groups_of(self.spec, model)
        parts: list[list[Any]] = [rows] if groups == 1 else split_row_lists(self.spec, model, rows)
        for group, part in enumerate(parts):
            encode = functools.partial(exchange.encode_row_lists, group=group, groups=groups, code=self.code_texts)
            yield group_partition(base, group, groups, self.partitions), list(rows_records(model, part, self.checkpoint.max_record_bytes, encode))

    def read_up_to(self, source: Source) -> int | None:
        """The latest event time ``source`` has read (what its progress records say), None before its first rows."""
        return self._read_up_to.get(source)

    def judge_here(self, source: Source, intake: Intake | WireIntake) -> tuple[dict[int, list[exchange.Row]], list[DeadLetter], int | None]:
        """``kafka.judge_locally``: what :meth:`_prepare` would send, as the judges read it, handed over here instead.

        Returns, per partition of the internal topic, the rows its judge would decode from those rows
        records (same records, same decoding), each carried by its own input record (:attr:`Row.carrier`:
        the input's committed offset follows the rows still waiting); the dead letters; and the source's
        latest event time read when this batch raised it, else None (what a progress record would say).
        """
        if type(intake) is Intake:
            intake = as_wire(intake)
        out: dict[int, list[exchange.Row]] = {}
        top: int | None = None
        for model, rows in intake.rows.items():
            if not rows:
                continue
            t = max(map(_EVENT_TIME, rows))
            top = t if top is None or t > top else top
            for partition, values in self._rows_records(model, rows):
                got = out.setdefault(partition, [])
                for value in values:
                    got += exchange.decode_record(value, own=source)[1]  # type: ignore[index]
        latest = self._read_up_to.get(source)
        if top is None or (latest is not None and top <= latest):
            return out, list(intake.dead_letters), None
        self._read_up_to[source] = top
        return out, list(intake.dead_letters), top

    def _send_prepared(self, prepared: tuple[Source, list[DeadLetter], list[tuple[bytes, bytes, int]], bool]) -> None:
        _, dead_letters, out, _ = prepared
        self.checkpoint.ensure_transaction()
        for dl in dead_letters:
            self.send_dead_letter(dl)
        send = self.producer().send
        topic = self.topic
        landed = self._rows_landed
        for key, value, partition in out:
            send(topic, key=key, value=value, partition=partition).add_callback(landed)

    def _rows_landed(self, metadata: Any) -> None:  # (the producer's thread, before its flush returns: before a commit does)
        if self.rows_sent.get(metadata.partition, -1) < metadata.offset:
            self.rows_sent[metadata.partition] = metadata.offset

    def flush(self, only: Source | None = None) -> None:
        """Send the progress records due (of ``only``'s pairs, or all): those the interval no longer holds back."""
        now = self.clock()
        send = None
        for pair in [p for p in self.pending if only is None or p[0] == only]:
            source, partition = pair
            t = self._read_up_to[source]
            if self._told.get(pair, t - 1) >= t:
                self.pending.discard(pair)
                continue
            if now - self._told_at.get(pair, -float("inf")) < self.interval:
                continue
            if send is None:
                self.checkpoint.ensure_transaction()
                send = self.producer().send
            send(self.topic, value=exchange.encode_progress(source[0], source[1], t), partition=partition)
            self._told[pair] = t
            self._told_at[pair] = now
            self.pending.discard(pair)
            self.progress_sent += 1

    def announce(
        self, caught_up: Callable[[TopicPartition], bool], sources: Iterable[TopicPartition], quiet_for: Callable[[TopicPartition], float] | None = None,
    ) -> int:
        """Tell every partition which of ``sources`` are caught up (``caught_up(tp)``); returns the records sent.

        A source is announced when it becomes caught up and again every ``CAUGHT_UP_REPEAT_S``
        while it stays so; one that reads on (not caught up) is announced again once it is. Each
        announcement says how long the partition has not grown (``quiet_for(tp)``, seconds; see
        :class:`~stream_monitor.runtime.idle.QuietWatch`): the judges' grace counts from then.
        """
        now = self.clock()
        sent = 0
        for tp in sources:
            source = (tp.topic, tp.partition)
            if not caught_up(tp):
                self._caught_up_told.pop(source, None)
                continue
            if now - self._caught_up_told.get(source, -float("inf")) < CAUGHT_UP_REPEAT_S:
                continue
            self.checkpoint.ensure_transaction()
            send = self.producer().send
            t = self._read_up_to.get(source)
            quiet_ms = None if quiet_for is None else int(quiet_for(tp) * 1000)
            value = exchange.encode_progress(source[0], source[1], t, caught_up=True, quiet_ms=quiet_ms)
            for q in range(self.partitions):
                send(self.topic, value=value, partition=q)
                if t is not None:
                    self._told[(source, q)] = t
                    self._told_at[(source, q)] = now
                self.pending.discard((source, q))
            self._caught_up_told[source] = now
            sent += self.partitions
        self.progress_sent += sent
        return sent

    def reset(self) -> None:
        """Forget what was read and told: after a rollback the sources are read again from their committed offsets."""
        self._held.clear()
        self._held_offsets.clear()
        self._caught_up_told.clear()
        self._read_up_to.clear()
        self._told.clear()
        self._told_at.clear()
        self.pending.clear()

    def forget(self, tps: Iterable[TopicPartition]) -> None:
        """Input partitions revoked: their bookkeeping goes (their next owner reads them from the committed offsets)."""
        gone = {(tp.topic, tp.partition) for tp in tps}
        for src in gone:
            self._read_up_to.pop(src, None)
            self._caught_up_told.pop(src, None)
        for table in (self._told, self._told_at):
            for pair in [p for p in table if p[0] in gone]:
                del table[pair]
        self.pending = {p for p in self.pending if p[0] not in gone}
