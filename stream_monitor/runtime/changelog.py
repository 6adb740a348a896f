"""Partition state on a compacted changelog topic, authenticated with HMAC-SHA256.

Changelog partition ``p`` holds the state items of input partition ``p`` (key = item name,
value = signed pickle). Restoring reads the partition under ``read_committed`` until the
position reaches the end offset (transaction markers take offsets, so we never wait for a record
at ``end - 1``). A record whose signature does not verify is rejected, logged and counted; the
channel it belonged to starts fresh.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import structlog
from kafka import KafkaConsumer, TopicPartition

from stream_monitor.core.signing import StateAuthError, sign_state, verify_state

log = structlog.get_logger("stream_monitor.state")


@dataclass(slots=True)
class RestoreResult:
    """The items of one restored partition, with counts of records read and rejected."""

    items: dict[str, bytes] = field(default_factory=dict)
    records: int = 0
    rejected: int = 0
    seconds: float = 0.0


class ChangelogStore:
    """Encodes state items as changelog records and restores them per partition."""

    def __init__(self, topic: str, secret: bytes, restore_consumer: KafkaConsumer, restore_timeout_s: float = 120.0) -> None:
        self.topic = topic
        self.secret = secret
        self.consumer = restore_consumer
        self.restore_timeout_s = restore_timeout_s

    def encode(self, items: dict[str, bytes]) -> list[tuple[bytes, bytes]]:
        """State items as signed changelog records (key, value)."""
        return [(key.encode("utf-8"), sign_state(value, self.secret)) for key, value in items.items()]

    def restore(self, partition: int) -> RestoreResult:
        """Read changelog partition ``partition`` to its end; the latest verified value of each key."""
        started = time.monotonic()
        tp = TopicPartition(self.topic, partition)
        c = self.consumer
        c.assign([tp])
        c.seek_to_beginning(tp)
        end = c.end_offsets([tp])[tp]
        result = RestoreResult()
        raw: dict[bytes, bytes | None] = {}
        while c.position(tp) < end:
            if time.monotonic() - started > self.restore_timeout_s:
                raise TimeoutError(f"restoring {tp} did not reach end offset {end} in {self.restore_timeout_s} s")
            for records in c.poll(timeout_ms=500, max_records=10_000).values():
                for rec in records:
                    result.records += 1
                    if rec.key is not None:
                        raw[rec.key] = rec.value
        for key, value in raw.items():
            if value is None:  # tombstone
                continue
            try:
                result.items[key.decode("utf-8")] = verify_state(value, self.secret)
            except (StateAuthError, UnicodeDecodeError) as exc:
                result.rejected += 1
                log.error("state_record_rejected", partition=partition, key=key.decode("utf-8", "replace"), reason=str(exc))
        c.assign([])
        result.seconds = time.monotonic() - started
        log.info(
            "state_restored",
            partition=partition,
            items=len(result.items),
            records=result.records,
            rejected=result.rejected,
            seconds=round(result.seconds, 3),
        )
        return result
