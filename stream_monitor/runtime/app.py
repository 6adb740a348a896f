"""``stream-monitor run``: the consumer-group member that monitors, alerts and checkpoints.

One loop, one thread: poll a batch → restore state of newly assigned partitions → process each
partition's records with its :class:`~stream_monitor.core.monitor.PartitionMonitor` → send alerts
and dead letters → every ``commit_interval_ms`` a checkpoint.

What is pending and what is committed, and the commit order, belong to
:class:`~stream_monitor.runtime.checkpoint.Checkpoint`. If a commit fails with an abortable error
we abort, roll back to the last committed state and offsets and retry the same work, which
produces the same alerts with the same ids. A fenced producer (a newer instance with our
``transactional_id``) is fatal: exit 1. Under exactly-once a checkpoint is begun at the end of a
loop and ended by the next send (or after the next batch, when nothing is sent): the broker commits
while the consumer polls and the first records are read; a failure found then rolls back and drops
that batch.

Rebalance listener callbacks run on kafka-python's IO thread while the main thread waits in
``poll``: on revocation we commit the open transaction with the producer (never a blocking
consumer call) and drop the revoked partitions; new partitions are restored by the main loop
after ``poll`` returns and before their records are processed.
"""

from __future__ import annotations

import functools
import sys
import threading
import time
from typing import Any, Callable, Iterable

import structlog
from kafka import TopicPartition
from kafka.errors import KafkaError

from stream_monitor.config import AppConfig
from stream_monitor.core import kernels
from stream_monitor.core.events import DeadLetter, SourcePosition
from stream_monitor.core.monitor import Alert, BatchResult, InputRecord, PartitionMonitor
from stream_monitor.ops.metrics import MonitorMetrics
from stream_monitor.runtime import clients, fetch_records
from stream_monitor.runtime.changelog import UNREADABLE, ChangelogStore, tolerant_rebuild
from stream_monitor.runtime.checkpoint import Checkpoint, InFlight
from stream_monitor.runtime.checkpointing import CheckpointSteps
from stream_monitor.runtime.judging import JudgingSteps
from stream_monitor.runtime.forward import Forwarder
from stream_monitor.runtime.idle import IdleClocks, QuietWatch
from stream_monitor.runtime.kafka_compat import FatalError, RebalanceListener, await_topic_metadata, caught_up, fenced_is_fatal, highwater, known_partitions, prefetch, seek_to_committed
from stream_monitor.runtime.poison import PoisonGuard, PoisonRecord
from stream_monitor.runtime.records import fitted_dead_letter
from stream_monitor.runtime.run_stats import RunStats, Timings
from stream_monitor.runtime.topics import prepare_topology

log = structlog.get_logger("stream_monitor.app")
POLL_RETRY_S = 0.5  # a poll that raised a retriable error (no broker reachable) is tried again after this
POLL_FAILED_LOG_S = 10.0  # ... and logged at most this often
PREFETCH_MIN_LAG = 1000  # records a polled partition is still behind for the next fetch to go out at once


class MonitorApp(CheckpointSteps, JudgingSteps):
    """The sidecar. ``run()`` blocks until :meth:`request_stop` (or a fatal error).

    ``on_alert`` sees every alert once its checkpoint committed; ``on_checkpoint`` sees every
    successful :class:`~stream_monitor.runtime.checkpoint.CommitResult` (benchmarks time with it).
    """

    metadata_wait_s = 30.0  # at start-up, the longest wait for the input topics' metadata
    # while running, the interpreter's thread switch interval (Python's default 5 ms): the producer's sender thread
    # commits a checkpoint while this loop decodes and judges, and waits up to the interval for the GIL at each step
    switch_interval_s = 0.001

    def __init__(
        self,
        cfg: AppConfig,
        metrics: MonitorMetrics | None = None,
        on_alert: Callable[[Alert], None] | None = None,
        stop_event: threading.Event | None = None,
        base_dir: str | None = None,
        on_checkpoint: Callable[[CommitResult], None] | None = None,
    ) -> None:
        self.cfg = cfg
        # refuse to start without a real secret: forged state must not verify (ConfigError: exit 2)
        self._keys = cfg.state.signing_keys() if cfg.state.enabled else None
        self.spec = cfg.monitor_spec()
        # compiled, or loaded from their caches, at start-up: not in the first batch
        kernels.page_hinkley()
        kernels.ks_walk()
        kernels.ks_steps_kernel()
        kernels.bin_codes_kernel()
        kernels.ks_window_kernel()
        kernels.bin_counts_kernel()
        if cfg.kafka.label_topic:
            kernels.hddm_a()
            kernels.ddm()
        fetch_records.load_scanner()
        from stream_monitor.baseline import load_baselines

        # training baselines (models.<m>.baseline and .baselines per model version), read once; relative paths resolve against base_dir
        self.baselines = load_baselines(self.spec, base_dir)
        m = cfg.metrics
        self.metrics = metrics or MonitorMetrics(m.max_channel_series, m.liveness_timeout_seconds, m.max_model_series)
        self.on_alert = on_alert
        self.on_checkpoint = on_checkpoint
        self.exactly_once = cfg.kafka.exactly_once
        self.stats = RunStats()
        self.timings = Timings()
        self._stop = stop_event or threading.Event()
        self._poll_failures, self._poll_failed_logged_at = 0, -POLL_FAILED_LOG_S  # polls that raised (_poll_failed)
        self.tasks: dict[int, PartitionMonitor] = {}
        self._owed_since: dict[int, float] = {}
        self.owned: set[TopicPartition] = set()
        self._to_restore: set[int] = set()
        self._new_tps: set[TopicPartition] = set()  # assigned, position not yet recorded
        k = cfg.kafka
        self.repartition_topic = k.resolved_repartition_topic() if k.state_partitioning == "model" else None
        # topics whose partitions carry state: the inputs, or the repartition topic
        self.state_topics = (
            {self.repartition_topic} if self.repartition_topic else set(k.input_topics) | ({k.label_topic} if k.label_topic else set())
        )
        self.state_partitions = 0  # known after prepare_topology
        self.guard = PoisonGuard()  # records whose processing raised become dead letters
        self._sources: list[tuple[str, int]] = []  # input partitions: every model's rows may come from each
        self.idle = IdleClocks(k.idle_timeout_ms, grace_ms=k.caught_up_grace_ms)  # per task: when each input partition last sent it something
        self.quiet = QuietWatch(older_than_s=k.caught_up_grace_ms / 1000 if k.grace_from_record_timestamps else 0.0)  # since when each partition read here has not grown
        self.checkpoint = Checkpoint(
            producer=None,
            consumer=None,
            store=None,
            exactly_once=self.exactly_once,
            changelog_topic=k.resolved_changelog_topic(),
            operation_timeout_ms=k.transaction_operation_timeout_ms,
            state_topics=self.state_topics,
            max_record_bytes=clients.max_record_bytes(k),
        )
        self._begun: InFlight | None = None  # a checkpoint whose commit the broker does during the next poll
        self._oversized_partitions: set[int] = set()  # state items dropped by a commit: rolled back after the batch
        self.forwarder = Forwarder(cfg, self.spec, self.guard, self.checkpoint, self._send_dead_letter, lambda: self.producer)
        self.ready = False
        self.log = log.bind(group=cfg.kafka.group_id, instance=cfg.instance)
    # ----------------------------------------------------------------- control
    def request_stop(self) -> None:
        """Ask ``run()`` to commit what it has and return (thread-safe)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        """Has a stop been requested?"""
        return self._stop.is_set()

    def readiness(self) -> tuple[bool, str]:
        """Ready = started, partitions assigned and restored, and checkpoints reach the broker."""
        if not self.ready:
            return False, "starting"
        if not self.owned:
            return False, "no partitions assigned (waiting for the group, or more instances than partitions)"
        if self._to_restore:
            return False, f"restoring partitions {sorted(self._to_restore)}"
        stalled = self.checkpoint.stalled_for()  # failing, or a commit that just hangs
        if stalled is not None and stalled > max(10.0, 3 * self.cfg.kafka.commit_interval_ms / 1000.0):
            return False, f"checkpoints failing for {stalled:.0f} s (broker unreachable?)"
        return True, f"ready; partitions {sorted(self.tasks)}"

    # -------------------------------------------------------------------- run
    def run(self) -> int:
        """Monitor until stopped; returns the exit code (0, or 1 after a fatal error)."""
        k = self.cfg.kafka
        client_id = f"stream-monitor-{self.cfg.instance}"
        admin = clients.admin(k, client_id + "-admin")
        try:
            self.state_partitions = prepare_topology(admin, self.cfg, lambda: self.stopping)
        finally:
            admin.close()
        self.forwarder.partitions = self.state_partitions
        self._new_producer()
        self.store = self.checkpoint.store = self._changelog_store(client_id)
        self.consumer = self.checkpoint.consumer = clients.group_consumer(k, client_id)
        topics = list(k.input_topics) + ([k.label_topic] if k.label_topic else []) + ([self.repartition_topic] if self.repartition_topic else [])
        listener = RebalanceListener(self._on_assigned, lambda tps: self._on_revoked(tps, lost=False), lambda tps: self._on_revoked(tps, lost=True))
        self.consumer.subscribe(topics=topics, listener=listener)
        # a leader without the topics' partitions before the first join assigns nothing (see the callee)
        missing = await_topic_metadata(self.consumer, topics, self.metadata_wait_s, lambda: self.stopping)
        if missing:
            self.log.warning("topic_metadata_missing", topics=missing, waited_s=self.metadata_wait_s)
        # every input partition may send rows of any model: the order expects them all
        self._sources += [(t, p) for t in topics if t != self.repartition_topic for p in sorted(known_partitions(self.consumer, t))]
        self.ready = True
        key_id = self._keys.current_id if self._keys is not None else None
        self.log.info("monitor_started", topics=topics, exactly_once=self.exactly_once, alerts_topic=k.alerts_topic, state_key_id=key_id)
        code = 0
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(switch_interval, self.switch_interval_s))
        try:
            while not self.stopping:
                polled_at = time.perf_counter()
                # a commit in flight and nothing to read: end it as soon as the broker answers, not after the poll's timeout
                batch = self._poll(0 if self._begun is not None and self._read_to_end() else k.poll_timeout_ms, k.max_poll_records)
                if batch is None:
                    continue
                # a checkpoint begun before the poll ends at the first send (Checkpoint.before_send) or after
                # processing; here when there is nothing to process or state to restore (failed: the batch is read again)
                if (not batch or self._new_tps or self._to_restore) and not self._end_checkpoint():
                    batch = {}
                if batch and self.timings.first_records_at is None:
                    self.timings.first_records_at = polled_at
                self.metrics.heartbeat()  # /healthz fails if this loop stalls
                self._restore_assigned(batch)
                if batch:
                    try:
                        with fenced_is_fatal("while processing"):
                            self._process(batch)
                    except KafkaError as exc:  # e.g. a send that could not get metadata in max_block_ms
                        self._recover(exc)
                    except PoisonRecord as exc:  # retried after the rollback, that record isolated
                        self.log.error("record_processing_failed", partition=f"{exc.tp.topic}-{exc.tp.partition}", offset=exc.offset, error=repr(exc.error))
                        self._recover(exc)
                self._end_checkpoint()  # nothing was sent
                if self._oversized_partitions:  # a commit dropped state items: back to it, between batches
                    self._roll_back_oversized()
                self._watch_quiet()
                if self.forwarder.pending or (self.repartition_topic and not self.local):
                    self._flush_progress()
                self._release_idle()
                full = self.checkpoint.full_due(k.commit_interval_ms / 1000.0, k.state_interval_ms / 1000.0, self._state_apart())
                full = True if not full and self._state_waits(k.min_commit_interval_ms / 1000.0) else full  # caught up: save it now
                if full is not None:  # the interval: the state every state_interval_ms (or with judged output), reads-only between
                    self._checkpoint_or_recover(reads_only=not full, overlap=True)
                elif self.checkpoint.due_soon(k.min_commit_interval_ms / 1000.0, self._reading(), bool(self.repartition_topic) and not self.local):  # readers wait
                    self._checkpoint_or_recover(reads_only=self._reads_only_possible(), overlap=True)
            self._end_checkpoint()
            self._checkpoint_or_recover()
        except FatalError as exc:
            self.log.error("monitor_fatal", error=str(exc))
            code = 1
        finally:
            sys.setswitchinterval(switch_interval)
            self.ready = False
            self._close(clean=code == 0)
        self.log.info("monitor_stopped", records=self.stats.records, internal_records=self.stats.internal_records, judged_here=self.stats.judged_here,
                      alerts=self.stats.alerts, exit_code=code)  # fmt: skip
        return code

    def _close(self, clean: bool) -> None:
        try:
            if clean:
                self.consumer.close()  # revocation listener commits what is left
            else:
                self.consumer.close(autocommit=False)
        except Exception as exc:  # noqa: BLE001 - closing must not mask the exit
            self.log.warning("consumer_close_failed", error=str(exc))
        try:
            self.checkpoint.abort()
        except Exception:  # noqa: BLE001 - closing; the next instance's init_transactions aborts it
            pass
        self.producer.close(timeout=10)
        if self.store is not None:
            self.store.close()

    # -------------------------------------------------------------- rebalance
    def _on_assigned(self, assigned: set[TopicPartition]) -> None:
        # IO thread: record only; the main loop restores before processing.
        new = assigned - self.owned
        self.owned |= assigned
        self._new_tps |= new
        for tp in new:
            if tp.topic in self.state_topics and tp.partition not in self.tasks:
                self._to_restore.add(tp.partition)
        self.metrics.assigned_partitions.set(len(self.owned))
        self.log.info("partitions_assigned", partitions=sorted(f"{tp.topic}-{tp.partition}" for tp in assigned))

    def _on_revoked(self, revoked: set[TopicPartition], lost: bool) -> None:
        # IO thread: commit with the producer only, then forget the partitions.
        self._end_checkpoint()  # one begun before the poll that called us
        if revoked & self.owned:
            if lost:
                try:
                    self.checkpoint.abort()
                except KafkaError as exc:
                    self._reset_producer(f"abort failed after losing partitions: {exc!r}")
                self._rollback()
            else:
                try:
                    with fenced_is_fatal("during a rebalance"):
                        self._commit()
                except KafkaError as exc:
                    self._recover(exc)
        self.owned -= revoked
        self._new_tps -= revoked
        self.metrics.forget_partitions({tp.partition for tp in revoked} - {tp.partition for tp in self.owned})
        remaining = {tp.partition for tp in self.owned if tp.topic in self.state_topics}
        for p in list(self.tasks):
            if p not in remaining:
                # committed just now: if the partition comes back unchanged (eager rebalances
                # revoke everything), the checkpoint keeps this state for reuse
                self.checkpoint.release(p, self.tasks.pop(p), keep=not lost)
        self.checkpoint.forget(revoked)
        self.guard.forget(revoked)
        self.forwarder.forget(revoked)
        self.quiet.forget(revoked)
        self._to_restore &= remaining
        self._leave_local()  # (after the commit above, which commits the inputs' offsets as judging here does)
        self.metrics.assigned_partitions.set(len(self.owned))
        self.log.info("partitions_revoked", lost=lost, partitions=sorted(f"{tp.topic}-{tp.partition}" for tp in revoked))

    def _restore_assigned(self, batch: dict[TopicPartition, list] | None = None) -> None:
        if not self._new_tps and not self._to_restore:
            return
        # where each new partition starts: the offsets a rollback returns to (state partitions: the
        # committed offset; others: the first record poll() already returned, or the position)
        batch = batch if batch is not None else {}
        state_tps = [tp for tp in self._new_tps if tp in self.owned and tp.topic in self.state_topics]
        state_tps += self._reseek_inputs([tp for tp in self._new_tps if tp in self.owned and tp.topic not in self.state_topics])
        if state_tps:  # a state partition starts again where its state was committed, even one kept over the rebalance
            seek_to_committed(self.consumer, state_tps, 30_000)
            for tp in state_tps:
                batch.pop(tp, None)  # polled from the kept position: read again after the seek
        positions = {
            tp: batch[tp][0].offset if batch.get(tp) else self.consumer.position(tp) for tp in self._new_tps if tp in self.owned
        }
        self.quiet.observe_ends(self.consumer, [tp for tp in positions if tp.topic != self.repartition_topic])  # a backlog is quiet from now
        for tp, (was, committed) in self.checkpoint.raise_to_committed(positions, batch).items():
            self.log.warning("start_below_committed", partition=f"{tp.topic}-{tp.partition}", position=was, committed=committed)
        self.checkpoint.positions(positions)  # where the carriers of tasks rebuilt below are read again from
        self._judge_locally_if_alone(positions)
        for p in sorted(self._to_restore):
            task = self.checkpoint.reclaim(p, positions)
            if task is not None:
                task.forget_queued()  # their records are read again from the committed offsets
                self.tasks[p] = task
                self.metrics.restore_partition(p, task)
                self.log.info("state_kept", partition=p, detail="partition came back at the offsets we committed")
                continue
            items: dict[str, bytes] = {}
            if self.store is not None:
                restored = self.store.restore(p)
                items = restored.items
                self.stats.rejected_state_records += restored.rejected
                for reason, n in restored.rejected_by_reason.items():
                    self.metrics.state_rejected.labels(reason).inc(n)
            self.tasks[p] = self._rebuild(p, items)
            self.metrics.restore_partition(p, self.tasks[p])
            self.metrics.heartbeat()  # a long restore is progress, not a stall
            self.checkpoint.started(p, items)
            self.stats.restored_partitions += 1
        self._restart_idle_clocks(self._to_restore)
        self._new_tps.clear()
        self._to_restore.clear()
        self._left_local = False
        self.checkpoint.drop_parked()

    def _restart_idle_clocks(self, partitions: Iterable[int]) -> None:
        """Restored (or kept) tasks expect every input partition; their sources count as having sent just now
        (a clock at 0 or stopped while away would make a source idle before its rows are read again)."""
        for p in partitions:
            task = self.tasks.get(p)
            if task is None:
                continue
            self._expect_sources(task)  # a kept task (a rebuilt one expects them already)
            self.idle.arrived(p, [*task.order.latest, *task.label_order.latest])

    def _expect_sources(self, task: PartitionMonitor) -> None:
        """A model's rows come from every input partition: the task's order waits for each until it sends or goes idle."""
        if self.repartition_topic:
            for topic, part in self._sources:
                (task.label_order if topic == self.cfg.kafka.label_topic else task.order).expect((topic, part))

    def _rebuild(self, partition: int, items: dict[str, bytes]) -> PartitionMonitor:
        """The partition's task from its items; items the core cannot read start again (logged, counted)."""
        task, dropped = tolerant_rebuild(lambda part: PartitionMonitor.from_state_items(self.spec, partition, part, self.baselines), items)
        # restored, rolled back or reset alike: state without an order item (nothing committed yet) knows no
        # source, and the rows of those read first would be judged past the others' earlier rows (``late``)
        self._expect_sources(task)
        # alerts commit ahead of the state (core/sent.py) where commits can leave the state out: remember what goes out
        task.sent.track = self.checkpoint.store is not None and self.exactly_once and self._state_apart()
        task.read_from({(tp.topic, tp.partition): off for tp, off in self.checkpoint.state_offsets(partition).items()})
        self._owe_inputs(task)
        for key in dropped:
            items.pop(key, None)  # never committed again as if it were state
            self.metrics.state_rejected.labels(UNREADABLE).inc()
            self.log.error("state_record_rejected", partition=partition, key=key.replace("\x1f", "/"), reason=UNREADABLE)
        return task

    def _changelog_store(self, client_id: str) -> ChangelogStore | None:
        """The changelog store with its two restore consumers (None without a state key: no state kept)."""
        if self._keys is None:
            return None
        k = self.cfg.kafka
        return ChangelogStore(
            k.resolved_changelog_topic(), self._keys, clients.plain_consumer(k, client_id + "-restore"),
            watermark_consumer=clients.plain_consumer(k, client_id + "-restore-hw", read_committed=False),
        )  # fmt: skip

    def _poll(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list] | None:
        """The consumer's poll; None when it raised a retriable error (no broker reachable), after a short wait.

        kafka-python raises a failed metadata refresh out of ``poll`` while the brokers are away
        (seen in a broker restart). The loop is alive (the liveness heartbeat goes on); readiness
        reports checkpoints failing once they do. Logged once per ``POLL_FAILED_LOG_S`` at most.
        """
        try:
            got = self.consumer.poll(timeout_ms=timeout_ms, max_records=max_records)
            if got and fetch_records.reading_backlog(self.consumer, got, PREFETCH_MIN_LAG):  # the partitions read up fetch again meanwhile
                prefetch(self.consumer)
            return got
        except KafkaError as exc:
            if not exc.retriable:
                raise
            error = exc
        self.metrics.heartbeat()
        self._poll_failures += 1
        now = time.monotonic()
        if now - self._poll_failed_logged_at >= POLL_FAILED_LOG_S:
            self._poll_failed_logged_at = now
            self.log.warning("poll_failed_retrying", error=repr(error), failures=self._poll_failures)
        self._stop.wait(POLL_RETRY_S)
        return None

    # ------------------------------------------------------------- processing
    def _process(self, batch: dict[TopicPartition, list]) -> None:
        started = time.perf_counter()
        # judging (state partitions) first, then reading the inputs, whose sends are held to the batch's end
        # (Forwarder.release): the first send ends the checkpoint begun before the poll (Checkpoint.before_send),
        # and judging rarely sends (alerts, dead letters), so the broker commits meanwhile and that send seldom waits
        soon_s = self.cfg.kafka.min_commit_interval_ms / 1000.0
        for tp in sorted(batch, key=lambda t: (t.topic not in self.state_topics, t.partition, t.topic)):
            records = batch.get(tp)
            if not records or tp not in self.owned:
                continue
            if tp.topic not in self.state_topics:
                if self._begun is None and not self.forwarder.held and self.checkpoint.alerts_wait(soon_s):
                    self._begin_overlapped(self._reads_only_possible())  # alerts judged: their commit goes on while the inputs are read
                if self.local:  # every partition is ours: judged here (runtime/judging.py)
                    with fenced_is_fatal("while processing"):
                        self._judge_here(tp, records)
                else:
                    with fenced_is_fatal("while forwarding"):
                        self.forwarder.forward(tp, records)  # read here, judged by the model's owner; sent below
            else:
                task = self.tasks.get(tp.partition)
                if task is None:  # assigned in this poll but not restored: restore now
                    self._end_checkpoint(recover=False)
                    self._to_restore.add(tp.partition)
                    self._restore_assigned(batch)
                    task = self.tasks[tp.partition]
                    if tp not in batch:  # moved back to its committed offset: read again from there
                        continue
                offsets = [r.offset for r in records]  # state_partitioning: input reads a batch of inference records as model's judge (below)
                here = not self.repartition_topic and tp.topic != self.cfg.kafka.label_topic and self.guard.batched(tp, offsets[0])
                inputs = records if here else [InputRecord(r.value or b"", SourcePosition(tp.topic, tp.partition, r.offset, r.timestamp), r.headers or None) for r in records]
                run = functools.partial(self._judge_records, task, tp)
                self.guard.feed(tp, offsets, inputs, run, self._emit, functools.partial(self._send_dead_letter, judged=True))
                task.carriers.read((tp.topic, tp.partition), records[-1].offset + 1)
            self.stats.read(len(records), internal=tp.topic == self.repartition_topic)
            if self.local and tp.topic not in self.state_topics:
                self.stats.judged_here += len(records)
            self.metrics.records.labels(tp.topic, str(tp.partition)).inc(len(records))
            hw = self.consumer.highwater(tp)
            if hw is not None:
                self.metrics.lag.labels(tp.topic, str(tp.partition)).set(max(0, hw - records[-1].offset - 1))
                self.metrics.status.observe_lag(tp.topic, tp.partition, max(0, hw - records[-1].offset - 1))
            self.metrics.status.observe_records(len(records))
        with fenced_is_fatal("while forwarding"):
            self.forwarder.release()  # what reading sends, once the whole batch is read (then its offsets count as processed)
        elapsed = time.perf_counter() - started
        self.timings.process_seconds += elapsed
        self.metrics.batch_seconds.observe(elapsed)

    def _watch_quiet(self) -> None:  # the high watermarks of the partitions read here: announcements say how long they stood
        self.quiet.observe((tp, highwater(self.consumer, tp)) for tp in self._reading())

    def _flush_progress(self) -> None:
        """Progress records the interval held back, once it passed, and caught-up inputs announced (see :class:`Forwarder`)."""
        try:
            with fenced_is_fatal("while forwarding"):
                self.forwarder.flush()
                self.forwarder.announce(functools.partial(caught_up, self.consumer), self._reading(), self.quiet.quiet_for)
        except KafkaError as exc:
            self._recover(exc)

    def _read_to_end(self) -> bool:  # every owned partition read to its end (as of the last fetches)
        return bool(self.owned) and all(caught_up(self.consumer, tp) for tp in self.owned)

    def _reading(self) -> list[TopicPartition]:  # owned partitions not written by us (the internal topic is)
        return [tp for tp in self.owned if tp.topic != self.repartition_topic]

    def _emit(self, result: BatchResult) -> None:
        self.metrics.observe_judged(result.judged, time.time())
        self.metrics.observe_limit_hits(result.limits_exceeded)
        if result.held_back:
            self.metrics.outputs_held_back.inc(result.held_back)
        if result.evaluations:
            self.metrics.status.observe_evaluations(result.evaluations)
        if not (result.alerts or result.dead_letters or result.retraining):
            self.metrics.channel_values.inc(result.channel_values)
            return
        k = self.cfg.kafka
        with fenced_is_fatal("while sending"):
            # alerts and retraining events commit without the state, their ``sent`` item with them (core/sent.py);
            # dead letters of judging, and everything when no state is kept, with the state that made them
            self.checkpoint.ensure_transaction(judged=bool(result.dead_letters) or self.checkpoint.store is None)
            for alert in result.alerts:
                self.producer.send(k.alerts_topic, key=alert.fingerprint.encode(), value=alert.payload)
            self.checkpoint.send_retraining(self.spec.retraining.topic, result.retraining)
            for dl in result.dead_letters:
                headers = [("reason", str(dl.reason).encode())]
                self.producer.send(k.dlq_topic, value=self._fitted(dl), headers=headers)
        self.checkpoint.add_alerts(result.alerts)
        self.stats.dead_letters += len(result.dead_letters)
        for reason, n in result.invalid_by_reason.items():
            self.stats.invalid_by_reason[reason] += n
            self.metrics.invalid.labels(reason).inc(n)
        self.metrics.channel_values.inc(result.channel_values)

    def _send_dead_letter(self, dl: DeadLetter, judged: bool = False) -> None:
        reason = str(dl.reason)
        with fenced_is_fatal("while sending"):
            self.checkpoint.ensure_transaction(judged)
            self.producer.send(self.cfg.kafka.dlq_topic, value=self._fitted(dl), headers=[("reason", reason.encode())])
        self.stats.dead_letters += 1
        self.stats.invalid_by_reason[reason] += 1
        self.metrics.invalid.labels(reason).inc()

    def _fitted(self, dl: DeadLetter) -> bytes:
        value, summarised = fitted_dead_letter(dl, self.checkpoint.max_record_bytes, self.spec.limits.dead_letter_original_bytes)
        if summarised:
            self.metrics.records_oversized.inc()
            self.log.warning("dead_letter_too_large", bytes=len(dl.raw), limit=self.checkpoint.max_record_bytes, reason=str(dl.reason))
        return value

    # --------------------------------------------------------------- producer
    def _new_producer(self) -> None:
        """(Re)create the producer; retry init_transactions until the broker answers or we stop."""
        k = self.cfg.kafka
        while True:
            self.producer = clients.producer(k, f"stream-monitor-{self.cfg.instance}", self.cfg.transactional_id() if self.exactly_once else None)
            try:
                if self.exactly_once:
                    with fenced_is_fatal("at start-up"):
                        self.producer.init_transactions()
                self.checkpoint.producer_replaced(self.producer)
                return
            except KafkaError as exc:
                self.producer.close(timeout=0)
                if self.stopping:
                    raise FatalError(f"stopped while the producer could not initialise: {exc!r}") from exc
                self.log.warning("producer_init_retry", error=repr(exc))
                self.metrics.heartbeat()
                time.sleep(2.0)

    def _reset_producer(self, reason: str) -> None:
        self.log.warning("producer_reset", reason=reason)
        try:
            self.producer.close(timeout=0)
        except Exception:  # noqa: BLE001 - the old producer is being discarded
            pass
        self.checkpoint.producer_replaced(None)
        self._new_producer()
