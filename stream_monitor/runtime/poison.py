"""A record whose processing raises becomes a dead letter instead of stopping the monitor.

When processing a run of records raises (anything but a Kafka error), the caller rolls back to
the last checkpoint, which discards whatever the failed call changed, and retries. The retry
processes that run's records one at a time; the record that raises again is remembered by
offset, the caller rolls back once more, and from then on that record is sent to the dead-letter
topic (reason ``processing_error``) without being processed. The results equal those of a stream
in which that record had been a dead letter from the start, so a restart or a rebalance gives
the same alerts. Every poison record costs one extra rollback.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Iterable

from kafka import TopicPartition
from kafka.errors import KafkaError

from stream_monitor.core.events import DeadLetter
from stream_monitor.runtime.kafka_compat import FatalError

PROCESSING_ERROR = "processing_error"


class PoisonRecord(Exception):
    """Processing records of ``tp`` raised: roll back and retry (``offset`` is known once isolated)."""

    def __init__(self, tp: TopicPartition, offset: int | None, error: BaseException) -> None:
        super().__init__(f"processing {tp.topic}-{tp.partition} raised {error!r}")
        self.tp = tp
        self.offset = offset
        self.error = error


class PoisonGuard:
    """Which offsets are processed one at a time, and which are dead letters without processing."""

    def __init__(self) -> None:
        self.careful: dict[TopicPartition, int] = {}  # process one at a time up to this offset
        self.poison: dict[TopicPartition, set[int]] = {}

    def feed(
        self,
        tp: TopicPartition,
        offsets: Sequence[int],
        inputs: Sequence[Any],
        run: Callable[[list[Any]], Any],
        emit: Callable[[Any], None],
        dead_letter: Callable[[DeadLetter], None],
    ) -> None:
        """Process ``inputs`` (records of ``tp`` at ``offsets``) with ``run`` and ``emit`` the result.

        Raises :class:`PoisonRecord` when ``run`` raises: the caller must roll back and retry.
        """
        if self.batched(tp, offsets[0]):
            try:
                result = run(list(inputs))
            except (KafkaError, FatalError):
                raise
            except Exception as exc:  # noqa: BLE001 - any failure of the core is isolated
                self.careful[tp] = max(offsets[-1], self.careful.get(tp, -1))
                raise PoisonRecord(tp, None, exc) from exc
            emit(result)
            return
        poison = self.poison.setdefault(tp, set())
        for offset, record in zip(offsets, inputs, strict=True):
            if offset in poison:
                detail = "processing this record raised an error; it was not monitored"
                dead_letter(DeadLetter(PROCESSING_ERROR, detail, record.value, record.position))  # type: ignore[arg-type]
                continue
            try:
                result = run([record])
            except (KafkaError, FatalError):
                raise
            except Exception as exc:  # noqa: BLE001
                poison.add(offset)
                raise PoisonRecord(tp, offset, exc) from exc
            emit(result)

    def batched(self, tp: TopicPartition, first_offset: int) -> bool:
        """Whether records of ``tp`` from ``first_offset`` on are processed as one batch (else one at a time, see :meth:`feed`)."""
        bound = self.careful.get(tp)
        return bound is None or first_offset > bound

    def committed(self, offsets: dict[TopicPartition, int]) -> None:
        """Offsets before ``offsets`` are committed: forget what lies behind them."""
        for tp, next_offset in offsets.items():
            if tp in self.careful and self.careful[tp] < next_offset:
                del self.careful[tp]
            if tp in self.poison:
                self.poison[tp] = {o for o in self.poison[tp] if o >= next_offset}
                if not self.poison[tp]:
                    del self.poison[tp]

    def forget(self, tps: Iterable[TopicPartition]) -> None:
        """Partitions revoked: their new owner finds its own poison records."""
        for tp in tps:
            self.careful.pop(tp, None)
            self.poison.pop(tp, None)
