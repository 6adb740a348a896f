"""Prometheus metrics of the monitor and of the bridges.

Each :class:`MonitorMetrics` (and :class:`BridgeMetrics`) owns its own ``CollectorRegistry`` (no
global state), so tests and several apps in one process never collide. Per-channel series are
capped (``metrics.max_channel_series``): past the cap new channels are counted, not exported.
``model`` label values are capped too (``metrics.max_model_series``): models past the cap are
exported as ``__other__``, so ``/metrics`` stays small whatever the number of models.
The HTTP endpoints that expose them are in :mod:`stream_monitor.ops.health`.

>>> m = MonitorMetrics(max_channel_series=1)
>>> m.observe_statistic("m", "x", "psi", 0.1); m.observe_statistic("m", "y", "psi", 0.2)
>>> m.channel_series_dropped._value.get()
1.0
>>> m.assignment_received, m.assigned_partitions.set(0), m.assignment_received
(False, None, True)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from stream_monitor.core.alert import kind_of
from stream_monitor.core.signing import REJECT_REASONS
from stream_monitor.ops.status import StatusSnapshot, render_status

if TYPE_CHECKING:  # pragma: no cover
    from stream_monitor.core.alert import AlertEvent
    from stream_monitor.core.monitor import PartitionMonitor

JUDGE_DELAY_EVERY = 64  # stream_monitor_judge_delay_seconds samples every this many events judged
_JUDGE_DELAY_HELP = f"Wall time from an input record's Kafka timestamp to the judgement of its event (every {JUDGE_DELAY_EVERY}th event judged)"
# fine about 1 s and about the default max_lateness_seconds (20 s)
_JUDGE_DELAY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.25, 1.5, 2, 3, 5, 10, 15, 20, 25, 30, 45, 60, 120, 300, 900, 3600, 21600, 86400)


class _AssignmentGauge(Gauge):
    """``stream_monitor_assigned_partitions`` that also remembers that an assignment happened.

    The consumer's rebalance listener sets it (also to 0 for an empty assignment), so "set at
    least once" means "joined the group and got an assignment": the readiness condition.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.assigned_event = threading.Event()
        super().__init__(*args, **kwargs)

    def set(self, value: float) -> None:
        super().set(value)
        self.assigned_event.set()


class MonitorMetrics:
    """All metrics of one monitor instance."""

    _judge_skip = 0  # judged events before the next one observe_judged samples

    def __init__(self, max_channel_series: int = 2000, liveness_timeout_s: float = 300.0, max_model_series: int = 500) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.max_channel_series = max_channel_series
        self.models = LabelCap(max_model_series)
        self.liveness_timeout_s = liveness_timeout_s
        self._lock = threading.Lock()
        self._last_heartbeat: float | None = None
        self._channel_keys: set[tuple[str, str, str]] = set()
        self.records = Counter("stream_monitor_records_consumed_total", "Records consumed", ["topic", "partition"], registry=r)
        self.invalid = Counter("stream_monitor_invalid_records_total", "Records sent to the dead-letter topic", ["reason"], registry=r)
        self.limit_hits = Counter(
            "stream_monitor_limit_hits_total", "Values or records refused because a configured limit was reached", ["limit"], registry=r
        )
        self.channel_values = Counter("stream_monitor_channel_values_total", "Channel values fed to detectors", registry=r)
        self.lag = Gauge("stream_monitor_consumer_lag", "High watermark minus position", ["topic", "partition"], registry=r)
        self.batch_seconds = Histogram(
            "stream_monitor_batch_processing_seconds",
            "Time to process one polled batch",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self.checkpoint_seconds = Histogram(
            "stream_monitor_checkpoint_seconds",
            "Time to commit alerts, state and offsets (exactly-once: from its start until the loop ends it, at the next send)",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.checkpoints = Counter("stream_monitor_checkpoints_total", "Checkpoints by outcome", ["outcome"], registry=r)
        self.judge_delay = Histogram("stream_monitor_judge_delay_seconds", _JUDGE_DELAY_HELP, buckets=_JUDGE_DELAY_BUCKETS, registry=r)
        self.state_bytes = Counter("stream_monitor_state_bytes_written_total", "Changelog bytes written", registry=r)
        self.state_rejected = Counter(
            "stream_monitor_state_records_rejected_total",
            "Changelog records not loaded (signature, unknown_key, old_format, unknown_format, malformed, unreadable)",
            ["reason"],
            registry=r,
        )
        for reason in (*REJECT_REASONS, "unreadable"):  # every reason exported from the start, at 0
            self.state_rejected.labels(reason)
        self.state_oversized = Counter(
            "stream_monitor_state_items_oversized_total", "State items too large to write; what they held starts again", registry=r
        )
        self.late = Counter(
            "stream_monitor_late_events_total",
            "Events later than max_lateness_seconds behind their input partition (dead letters with reason late)",
            registry=r,
        )
        self.outputs_held_back = Counter(
            "stream_monitor_outputs_held_back_total",
            "Alerts and retraining events judged again after a restore or rollback and not sent: committed before (core/sent.py)",
            registry=r,
        )
        self.records_oversized = Counter(
            "stream_monitor_output_records_oversized_total",
            "Dead letters too large to send whole, sent as a summary (size, sha256, prefix)",
            registry=r,
        )
        self.alerts = Counter(
            "stream_monitor_alerts_total", "Alert events emitted", ["model", "kind", "severity", "status"], registry=r
        )
        self.firing = Gauge("stream_monitor_alerts_firing", "Alerts currently firing", ["model", "kind", "severity"], registry=r)
        self.statistic = Gauge(
            "stream_monitor_drift_statistic", "Latest alerting statistic per channel", ["model", "channel", "detector"], registry=r
        )
        self.model_series_capped = Counter(
            "stream_monitor_model_series_capped_total", "Alert events counted under model=__other__ (model label cap)", registry=r
        )
        self.channel_series_dropped = Counter(
            "stream_monitor_channel_series_dropped_total", "Channel series not exported (cardinality cap)", registry=r
        )
        self.assigned_partitions = _AssignmentGauge("stream_monitor_assigned_partitions", "Partitions assigned (input, label and internal by-model topics)", registry=r)
        self.up_since = Gauge("stream_monitor_start_time_seconds", "Unix time the monitor process started", registry=r)
        self.up_since.set_to_current_time()
        self.loop_heartbeat = Gauge(
            "stream_monitor_loop_heartbeat_timestamp_seconds", "Unix time the main loop last turned (0: never)", registry=r
        )
        # fingerprint -> (model, kind, severity) and the partition it belongs to
        self._firing: dict[str, tuple[str, str, str]] = {}
        self._firing_partition: dict[str, int] = {}
        # what the status page at / shows; the loop updates it, the HTTP thread renders a copy
        self.status = StatusSnapshot(max_channels=max_channel_series)

    # ------------------------------------------------------------------ health
    @property
    def assignment_received(self) -> bool:
        """Has the consumer group given us an assignment (possibly empty) at least once?"""
        return self.assigned_partitions.assigned_event.is_set()

    def heartbeat(self) -> None:
        """The main loop turned (call once per poll). Enables the ``/healthz`` stall check."""
        self._last_heartbeat = time.monotonic()
        self.loop_heartbeat.set_to_current_time()

    def liveness(self) -> tuple[bool, str]:
        """Liveness check: fails when the main loop has not turned for ``liveness_timeout_s``."""
        last = self._last_heartbeat
        if last is None:
            return True, "alive"
        stalled = time.monotonic() - last
        if stalled > self.liveness_timeout_s:
            return False, f"main loop stalled for {stalled:.0f} s (limit {self.liveness_timeout_s:g} s)"
        return True, "alive"

    def assignment_check(self) -> tuple[bool, str]:
        """Readiness check: an assignment was received."""
        return (True, "assigned") if self.assignment_received else (False, "waiting for a partition assignment")

    def observe_statistic(self, model: str, channel: str, detector: str, value: float | None) -> None:
        """The latest statistic of one channel's detector (new series past the cap are only counted)."""
        key = (model, channel, detector)
        if key not in self._channel_keys:
            if len(self._channel_keys) >= self.max_channel_series:
                self.channel_series_dropped.inc()
                return
            self._channel_keys.add(key)
        if value is not None:
            self.statistic.labels(*key).set(value)

    def observe_statistics(self, latest: Iterable[tuple[str, str, str, float | None]]) -> None:
        """The latest statistic of many (model, channel, detector) evaluations (capped like above)."""
        for model, channel, detector, value in latest:
            self.observe_statistic(model, channel, detector, value)

    def observe_judged(self, rows: Sequence[Any], now: float) -> None:
        """Inference rows just judged (``BatchResult.judged``, in order): every :data:`JUDGE_DELAY_EVERY`\\ th one's delay.

        The delay is ``now`` (Unix seconds) minus its input record's Kafka timestamp: how far judgement runs behind
        the records' arrival (with ``CreateTime``, the producer's clock: skew between hosts shows in it; an event
        whose record has no timestamp is skipped). Sampling every n-th event across batches weighs each event
        alike, at a cost that does not grow with the rate of small batches.

        >>> from types import SimpleNamespace as R
        >>> m = MonitorMetrics(); rows = [R(position=R(timestamp_ms=1000 * (i + 1))) for i in range(JUDGE_DELAY_EVERY + 1)]
        >>> seen = lambda s: m.registry.get_sample_value(f"stream_monitor_judge_delay_seconds_{s}")
        >>> m.observe_judged(rows, 100.0); seen("count"), seen("sum")  # the first and the 65th: 99 s and 35 s behind
        (2.0, 134.0)
        >>> m.observe_judged(rows[:62], 100.0); m.observe_judged(rows[:1], 100.0); seen("count")  # events 66 to 128
        2.0
        >>> m.observe_judged(rows[:1], 100.0); seen("count")  # the 129th
        3.0
        """
        skip, step = self._judge_skip, JUDGE_DELAY_EVERY
        n = len(rows)
        delay = None
        for k in range(skip, n, step):
            ts = rows[k].position.timestamp_ms
            if ts is not None and ts > 0:
                delay = max(now - ts / 1000.0, 0.0)
                self.judge_delay.observe(delay)
        self._judge_skip = (skip - n) % step
        if delay is not None:  # the status page shows the latest
            self.status.observe_judge_delay(delay)

    def observe_limit_hits(self, hits: Mapping[str, int]) -> None:
        """Values or records a batch refused, per configured limit (``BatchResult.limits_exceeded``)."""
        for limit, n in hits.items():
            self.limit_hits.labels(limit).inc(n)

    def observe_alert(self, alert: AlertEvent, partition: int | None = None) -> None:
        """A committed alert event: count it and keep the firing gauge exact per fingerprint.

        ``partition`` is the partition of the task that owns the alert's series (forgetting that
        partition forgets the alert); by default the source record's.
        """
        model, kind, severity, status = alert.model, alert.kind, alert.severity, alert.status
        self.observe_statistic(model, alert.feature, alert.detector, alert.statistic)
        model = self.models.label(model)
        if model == OTHER:
            self.model_series_capped.inc()
        self.alerts.labels(model, kind, severity, status).inc()
        if partition is None:
            partition = alert.source.partition
        with self._lock:
            self._set_firing(alert.fingerprint, (model, kind, severity) if status == "firing" else None, int(partition))
        self.status.observe_alert(alert, int(partition))

    def _set_firing(self, fp: str, labels: tuple[str, str, str] | None, partition: int | None) -> None:
        previous = self._firing.pop(fp, None)
        self._firing_partition.pop(fp, None)
        if previous is not None:
            self.firing.labels(*previous).dec()
        if labels is not None:
            labels = (self.models.label(labels[0]), labels[1], labels[2])
            self._firing[fp] = labels
            if partition is not None:
                self._firing_partition[fp] = int(partition)
            self.firing.labels(*labels).inc()

    def forget_partitions(self, partitions: Iterable[int]) -> None:
        """Partitions revoked: their firing alerts are now counted by the member that owns them."""
        gone = set(partitions)
        with self._lock:
            for fp in [fp for fp, p in self._firing_partition.items() if p in gone]:
                self._set_firing(fp, None, None)
        self.status.forget_partitions(gone)

    def restore_partition(self, partition: int, task: PartitionMonitor) -> None:
        """A partition's state was restored: count its open episodes as firing alerts."""
        with self._lock:
            for fp, labels in open_episodes(task):
                self._set_firing(fp, labels, partition)
        self.status.restore_partition(partition, task)

    @property
    def firing_count(self) -> int:
        """Number of alerts currently firing on this member."""
        return len(self._firing)

    def render(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)

    def render_status(self) -> bytes:
        """The status page (``/``) as UTF-8 HTML, rendered from a copy of :attr:`status`."""
        return render_status(self.status.view()).encode("utf-8")


OTHER = "__other__"


class LabelCap:
    """Admits the first ``limit`` distinct values of a label; every later value becomes ``__other__``.

    >>> cap = LabelCap(2)
    >>> [cap.label(v) for v in ("a", "b", "c", "a")]
    ['a', 'b', '__other__', 'a']
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._admitted: set[str] = set()
        self._lock = threading.Lock()

    def label(self, value: str) -> str:
        """``value`` if it is (or can still be) admitted, else ``__other__``."""
        if value in self._admitted:
            return value
        with self._lock:
            if len(self._admitted) < self.limit:
                self._admitted.add(value)
                return value
        return OTHER


def open_episodes(task: PartitionMonitor) -> list[tuple[str, tuple[str, str, str]]]:
    """(fingerprint, (model, kind, severity)) of every firing episode in a partition's state."""
    return [
        (ep.fingerprint, (model.model, kind_of(channel.name, ep.quality), ep.lifecycle.severity))
        for model in task.models.values()
        for channel in model.channels.values()
        for ep in channel.open_episodes()
    ]


class BridgeMetrics:
    """Metrics of one ``stream-monitor bridge`` process (its own registry)."""

    def __init__(self, target: str) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.target = target
        self.received = Counter(
            "stream_monitor_bridge_alerts_received_total", "Alert events read from the alert topic", ["target", "status"], registry=r
        )
        self.invalid = Counter(
            "stream_monitor_bridge_invalid_events_total", "Alert-topic records that are not valid alert events", ["target"], registry=r
        )
        self.deliveries = Counter(
            "stream_monitor_bridge_deliveries_total",
            "Delivery attempts by outcome (accepted, retry, rejected)",
            ["target", "outcome"],
            registry=r,
        )
        self.delivery_seconds = Histogram(
            "stream_monitor_bridge_delivery_seconds",
            "Time of one HTTP delivery attempt",
            ["target"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.active = Gauge("stream_monitor_bridge_active_alerts", "Firing alerts the bridge keeps re-sending", ["target"], registry=r)
        self.last_success = Gauge(
            "stream_monitor_bridge_last_success_timestamp_seconds", "Unix time of the last accepted delivery", ["target"], registry=r
        )
        self.committed = Counter(
            "stream_monitor_bridge_offsets_committed_total", "Offset commits after accepted deliveries", ["target"], registry=r
        )
        self.assigned_partitions = _AssignmentGauge(
            "stream_monitor_bridge_assigned_partitions", "Alert-topic partitions assigned", registry=r
        )

    @property
    def assignment_received(self) -> bool:
        """Has the consumer group given us an assignment (possibly empty) at least once?"""
        return self.assigned_partitions.assigned_event.is_set()

    def assignment_check(self) -> tuple[bool, str]:
        """Readiness check: an assignment was received."""
        return (True, "assigned") if self.assignment_received else (False, "waiting for a partition assignment")

    def liveness(self) -> tuple[bool, str]:
        """Liveness check: always alive (the bridge loop has no heartbeat)."""
        return True, "alive"

    def render(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)


