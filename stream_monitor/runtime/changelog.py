"""Partition state on a compacted changelog topic, authenticated with HMAC-SHA256.

Changelog partition ``p`` holds the state items of state partition ``p`` (key = item name,
value = the item signed by :mod:`stream_monitor.core.signing` for that partition and key).
Restoring reads the partition under ``read_committed`` until the position reaches the end offset
(transaction markers take offsets, so we never wait for a record at ``end - 1``). A record that
does not verify (forged, moved from another key or partition, signed with an unknown key, or of
the previous format) is rejected, logged (``state_record_rejected``) and counted by reason; only
what that item held (one channel, at most one model) starts fresh.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, TypeVar

import structlog
from kafka import KafkaConsumer, TopicPartition

from stream_monitor.core.signing import SigningKeys, StateAuthError, sign_state, verify_state

log = structlog.get_logger("stream_monitor.state")

T = TypeVar("T")
UNREADABLE = "unreadable"  # verified, but the state codec could not rebuild it


@dataclass(slots=True)
class RestoreResult:
    """The items of one restored partition, with counts of records read and rejected."""

    items: dict[str, bytes] = field(default_factory=dict)
    records: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def rejected(self) -> int:
        """Records not loaded, whatever the reason."""
        return sum(self.rejected_by_reason.values())


def signing_context(partition: int, key: bytes) -> bytes:
    """What a changelog record's signature is bound to besides its value: partition and key.

    >>> signing_context(3, b"labels")
    b'3\\x1flabels'
    """
    return str(partition).encode() + b"\x1f" + key


class ChangelogStore:
    """Encodes state items as changelog records and restores them per partition."""

    def __init__(
        self,
        topic: str,
        keys: SigningKeys,
        restore_consumer: KafkaConsumer,
        restore_timeout_s: float = 120.0,
        watermark_consumer: KafkaConsumer | None = None,
        settle_s: float = 3.0,
    ) -> None:
        self.topic = topic
        self.keys = keys
        self.consumer = restore_consumer  # read_committed: reads up to the last stable offset
        self.restore_timeout_s = restore_timeout_s
        self.watermarks = watermark_consumer  # read_uncommitted: its end offsets are high watermarks
        self.settle_s = settle_s
        self._settle_until: float | None = None

    def encode(self, partition: int, items: dict[str, bytes | None]) -> list[tuple[bytes, bytes | None]]:
        """State items of ``partition`` as signed changelog records (key, value); an item given as None is a tombstone."""
        out: list[tuple[bytes, bytes | None]] = []
        for name, value in items.items():
            key = name.encode("utf-8")
            out.append((key, None if value is None else sign_state(value, self.keys, signing_context(partition, key))))
        return out

    def close(self) -> None:
        """Close the restore consumers."""
        self.consumer.close()
        if self.watermarks is not None:
            self.watermarks.close()

    def _settled_end(self, tp: TopicPartition) -> int:
        """Where restoring ``tp`` ends: its last stable offset, once the transactions open at the start are finished.

        A transaction the coordinator has committed is invisible to ``read_committed`` readers
        until its marker is written to each partition, a moment after the committer heard back.
        A new owner restoring in that moment would miss the last state its predecessor committed
        while the group's offsets (stable by then) already count it. So when records stand beyond
        the last stable offset, wait (``settle_s``, polled, one wait shared by the restores that start
        within ``10 * settle_s`` of it) until it passes them. A transaction
        still open after that (a predecessor that died mid-transaction: it aborts at
        ``transaction_timeout_ms``) is left out, as ``read_committed`` always left it.
        """
        c = self.consumer
        end = c.end_offsets([tp])[tp]
        if self.watermarks is None:
            return end
        high = self.watermarks.end_offsets([tp])[tp]
        started = time.monotonic()
        if end < high and (self._settle_until is None or started > self._settle_until + 10 * self.settle_s):
            self._settle_until = started + self.settle_s  # one wait for the partitions a rebalance gave (one open transaction spans them)
        while end < high and time.monotonic() < (self._settle_until or started):
            time.sleep(0.02)
            end = c.end_offsets([tp])[tp]
        if end < high:
            log.warning(
                "state_restore_open_transaction", partition=tp.partition, last_stable=end, high_watermark=high,
                waited_s=round(time.monotonic() - started, 3), detail="records of a transaction still open are not restored",
            )  # fmt: skip
        return end

    def restore(self, partition: int) -> RestoreResult:
        """Read changelog partition ``partition`` to its end; the latest verified value of each key."""
        started = time.monotonic()
        tp = TopicPartition(self.topic, partition)
        c = self.consumer
        c.assign([tp])
        c.seek_to_beginning(tp)
        end = self._settled_end(tp)
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
                name = key.decode("utf-8")
                result.items[name] = verify_state(value, self.keys, signing_context(partition, key))
            except (StateAuthError, UnicodeDecodeError) as exc:
                reason = exc.reason if isinstance(exc, StateAuthError) else "malformed"
                result.rejected_by_reason[reason] = result.rejected_by_reason.get(reason, 0) + 1
                log.error("state_record_rejected", partition=partition, key=key.decode("utf-8", "replace"), reason=reason, detail=str(exc))
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


def _group_of(key: str) -> str:
    """Items that only rebuild together: a model's item and its channels' (with their reference and window items); anything else alone."""
    parts = key.split("\x1f")
    if parts[0] in ("m", "c", "r", "w") and len(parts) >= 2:
        return "model\x1f" + parts[1]
    return "item\x1f" + key


def tolerant_rebuild(build: Callable[[dict[str, bytes]], T], items: dict[str, bytes]) -> tuple[T, list[str]]:
    r"""``build(items)``, or when that raises, ``build`` of the largest readable part: (result, dropped keys).

    An unreadable channel item drops that channel; an unreadable model item drops that model;
    other items drop alone. Extra ``build`` calls happen only when the first one fails.

    >>> def build(items):
    ...     if b"bad" in items.values():
    ...         raise ValueError("unreadable")
    ...     return sorted(items)
    >>> tolerant_rebuild(build, {"m\x1fa": b"ok", "c\x1fa\x1fx": b"bad", "c\x1fa\x1fy": b"ok", "labels": b"ok"})
    (['c\x1fa\x1fy', 'labels', 'm\x1fa'], ['c\x1fa\x1fx'])
    """
    try:
        return build(items), []
    except Exception:  # noqa: BLE001 - whatever the codec raises, the partition must come back
        pass
    groups: dict[str, dict[str, bytes]] = {}
    for key, value in items.items():
        groups.setdefault(_group_of(key), {})[key] = value
    keep: dict[str, bytes] = {}
    for group in groups.values():
        keep.update(_readable_part(build, group))
    try:
        return build(keep), sorted(set(items) - set(keep))
    except Exception:  # noqa: BLE001 - parts that read alone but not together: start empty
        return build({}), sorted(items)


def _readable_part(build: Callable[[dict[str, bytes]], object], group: dict[str, bytes]) -> dict[str, bytes]:
    try:
        build(group)
        return group
    except Exception:  # noqa: BLE001
        pass
    base = {k: v for k, v in group.items() if not k.startswith("c\x1f")}
    try:
        build(base)
    except Exception:  # noqa: BLE001 - the model item itself is unreadable: the model starts again
        return {}
    good = dict(base)
    for key, value in group.items():
        if key.startswith("c\x1f"):
            try:
                build({**base, key: value})
                good[key] = value
            except Exception:  # noqa: BLE001 - this channel starts again
                pass
    return good
