"""The bridge's consumer loop: poll the alert topic, deliver, commit what was delivered."""

from __future__ import annotations

import threading
import time
from typing import Any

import structlog
from kafka import ConsumerRebalanceListener, TopicPartition
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata
from pydantic import ValidationError

from stream_monitor.bridges.http import redact_url
from stream_monitor.bridges.options import BridgeOptions
from stream_monitor.bridges.sinks import AlertmanagerSink, Item, PagerDutySink
from stream_monitor.config import KafkaSettings
from stream_monitor.core.alert import AlertEvent
from stream_monitor.core.retraining import RetrainingEvent
from stream_monitor.ops.metrics import BridgeMetrics
from stream_monitor.runtime import clients

log = structlog.get_logger("stream_monitor.bridge")


class _Listener(ConsumerRebalanceListener):
    """Runs on kafka-python's IO thread: only records what changed."""

    def __init__(self, runner: BridgeRunner) -> None:
        self.runner = runner

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        """Note the rebalance."""
        self.runner._rebalanced = True

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        """Note the rebalance and the number of partitions."""
        self.runner._rebalanced = True
        self.runner.metrics.assigned_partitions.set(len(assigned))

    def on_partitions_lost(self, lost: list[TopicPartition]) -> None:
        """Note the rebalance."""
        self.runner._rebalanced = True


class BridgeRunner:
    """The consumer loop: poll, deliver, commit what was accepted, re-send, repeat."""

    def __init__(
        self, kafka: KafkaSettings, opts: BridgeOptions, sink: AlertmanagerSink | PagerDutySink, metrics: BridgeMetrics, stop: threading.Event,
        client_id: str, topic: str | None = None,
    ) -> None:  # fmt: skip
        self.kafka = kafka.model_copy(update={"group_id": opts.group_id, "max_poll_records": opts.max_batch})
        self.opts = opts
        self.sink = sink
        self.metrics = metrics
        self.stop = stop
        self.client_id = client_id
        self.topic = topic or kafka.alerts_topic  # the retraining bridge reads the retraining topic
        self.event_type: type[AlertEvent] | type[RetrainingEvent] = RetrainingEvent if opts.target == "retraining" else AlertEvent
        self.log = log.bind(target=opts.target, group=opts.group_id, topic=self.topic)
        self.owned: dict[TopicPartition, int | None] = {}  # partition -> offset we last committed
        self._rebalanced = False
        self.started = False

    def readiness(self) -> tuple[bool, str]:
        """``/readyz``: (ready, reason); not ready while the receiver's answers have to be retried."""
        if not self.started:
            return False, "starting"
        if self.sink.failing is not None:
            return False, f"receiver not accepting: {self.sink.failing}"
        return True, "consuming"

    def run(self) -> int:
        """Consume and deliver until stopped; returns the exit code."""
        self.consumer = clients.group_consumer(self.kafka, self.client_id)
        try:
            self.consumer.subscribe(topics=[self.topic], listener=_Listener(self))
            self.started = True
            self.log.info(
                "bridge_started", urls=[redact_url(u) for u in self.opts.urls] if self.opts.target == "alertmanager" else None,
                headers=sorted(self.opts.headers) or None, **clients.describe_security(self.kafka),
            )  # fmt: skip
            while not self.stop.is_set():
                batch = self.consumer.poll(timeout_ms=self._poll_timeout_ms())
                if self._rebalanced:
                    self._rebalanced = False
                    self._sync_assignment()
                if batch:
                    self._handle(batch)
                self.sink.tick()
        finally:
            self.started = False
            try:
                self.consumer.close(autocommit=False)
            except Exception as exc:  # noqa: BLE001 - closing must not mask the exit
                self.log.warning("consumer_close_failed", error=str(exc))
        self.log.info("bridge_stopped")
        return 0

    def _poll_timeout_ms(self) -> int:
        wait = 1.0
        if isinstance(self.sink, AlertmanagerSink):
            wait = max(0.0, min(wait, self.sink.next_resend - time.monotonic()))
        return int(wait * 1000)

    # ------------------------------------------------------------- assignment
    def _sync_assignment(self) -> None:
        """After a rebalance: forget lost partitions; rebuild new or changed ones from history."""
        assignment = set(self.consumer.assignment())
        gone = set(self.owned) - assignment
        if gone:
            self.sink.forget(gone)
            for tp in gone:
                self.owned.pop(tp, None)
        changed: dict[TopicPartition, int] = {}
        for tp in sorted(assignment, key=lambda t: t.partition):
            committed = self.consumer.committed(tp)
            committed = committed if committed is not None else 0
            if tp not in self.owned or self.owned[tp] != committed:
                changed[tp] = committed
            self.owned[tp] = committed
        if changed:
            self.sink.forget(set(changed))
            if self.sink.needs_history:
                self._restore(changed)
            self.sink.after_restore()
        self.log.info("partitions_assigned", partitions=sorted(tp.partition for tp in assignment), rebuilt=sorted(tp.partition for tp in changed))

    def _restore(self, upto: dict[TopicPartition, int], timeout_s: float = 120.0) -> None:
        """Replay each partition's alert events below the committed offset into the sink's state."""
        todo = {tp: end for tp, end in upto.items() if end > 0}
        if not todo:
            return
        reader = clients.plain_consumer(self.kafka, self.client_id + "-restore")
        restored = 0
        try:
            reader.assign(list(todo))
            reader.seek_to_beginning(*todo)
            deadline = time.monotonic() + timeout_s
            while any(reader.position(tp) < end for tp, end in todo.items()):
                if time.monotonic() > deadline or self.stop.is_set():
                    self.log.warning("restore_incomplete", partitions=sorted(tp.partition for tp in todo))
                    break
                for tp, records in reader.poll(timeout_ms=500).items():
                    for rec in records:
                        if rec.offset >= todo[tp]:
                            continue
                        alert = self._parse(rec.value, tp, rec.offset, count=False)
                        if alert is not None:
                            self.sink.restore(alert, tp)
                            restored += 1
        finally:
            reader.close()
        self.log.info("state_restored", alert_events=restored, partitions=sorted(tp.partition for tp in todo))

    # ------------------------------------------------------------- processing
    def _parse(self, value: bytes | None, tp: TopicPartition, offset: int, count: bool = True) -> Any:
        try:
            alert = self.event_type.model_validate_json(value or b"")
        except ValidationError as exc:
            if count:
                self.metrics.invalid.labels(self.opts.target).inc()
                self.log.warning("invalid_alert_event_skipped", partition=tp.partition, offset=offset, error=str(exc).splitlines()[0])
            return None
        if count:
            self.metrics.received.labels(self.opts.target, getattr(alert, "status", "retraining")).inc()
        return alert

    def _handle(self, batch: dict[TopicPartition, list[Any]]) -> None:
        items: list[Item] = []
        for tp in sorted(batch, key=lambda t: t.partition):
            for rec in batch[tp]:
                items.append(Item(tp, rec.offset, self._parse(rec.value, tp, rec.offset)))
        if not items:
            return
        deadline = time.monotonic() + self.opts.epoch_s
        done = self.sink.deliver(items, deadline)
        accepted = items[:done]
        rest = items[done:]
        offsets: dict[TopicPartition, int] = {}
        for it in accepted:
            offsets[it.tp] = it.offset + 1
        if offsets:
            self._commit(offsets)
        if rest:
            # not delivered (stopping, or retrying too long): back to the first undelivered
            # record of each partition, so the next poll returns them again
            first: dict[TopicPartition, int] = {}
            for it in rest:
                first.setdefault(it.tp, it.offset)
            for tp, off in first.items():
                try:
                    self.consumer.seek(tp, off)
                except (KafkaError, AssertionError, ValueError) as exc:  # partition no longer assigned
                    self.log.warning("seek_back_failed", partition=tp.partition, error=str(exc))
            self.log.warning("delivery_pending", undelivered=len(rest), stopping=self.stop.is_set())

    def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        try:
            self.consumer.commit({tp: OffsetAndMetadata(off, "", -1) for tp, off in offsets.items()})
        except CommitFailedError as exc:
            # the group rebalanced while we delivered: the new owner re-delivers (idempotent)
            self.log.warning("commit_failed_rebalanced", error=str(exc))
            return
        except KafkaError as exc:
            self.log.warning("commit_failed", error=repr(exc))
            return
        for tp, off in offsets.items():
            self.owned[tp] = off
        self.metrics.committed.labels(self.opts.target).inc()
        self.log.debug("offsets_committed", offsets={f"{tp.topic}-{tp.partition}": off for tp, off in offsets.items()})

