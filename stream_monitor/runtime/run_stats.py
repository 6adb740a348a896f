"""Counters and timings of one ``stream-monitor run`` (:class:`~stream_monitor.runtime.app.MonitorApp`)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field


@dataclass(slots=True)
class RunStats:
    """Counters of one run, for tests, the demo and the final log line."""

    records: int = 0  # records read of the input (and label) topics
    internal_records: int = 0  # records read of the internal by-model topic (rows and progress of records counted above)
    judged_here: int = 0  # input records whose rows were judged where they were read (kafka.judge_locally), of ``records``
    alerts: int = 0
    dead_letters: int = 0
    checkpoints: int = 0
    aborts: int = 0
    oversized_rollbacks: int = 0  # rollbacks to a commit that dropped state items too large to write
    restored_partitions: int = 0
    rejected_state_records: int = 0
    invalid_by_reason: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def read(self, n: int, internal: bool) -> None:
        """``n`` more records read, of the internal topic when ``internal`` (they are not counted as records again)."""
        if internal:
            self.internal_records += n
        else:
            self.records += n


@dataclass(slots=True)
class Timings:
    """Where the loop spends its time (``time.perf_counter()`` seconds), for benchmarks.

    ``first_records_at`` is the start of the ``poll`` that returned the first records.
    """

    first_records_at: float | None = None
    process_seconds: float = 0.0
    checkpoint_seconds: float = 0.0  # the loop waiting for checkpoints (not the broker's commit during the next poll)
