"""Fetched records turned into ``ConsumerRecord`` tuples a whole record batch at a time.

kafka-python's consumer decodes a fetch one record at a time: a generator
(``Fetcher.PartitionRecords._unpack_records``) asks the batch for each record
(``DefaultRecordBatch._read_msg``: seven ``decode_varint`` calls, property look-ups per field,
a ``DefaultRecord`` object), builds the ``ConsumerRecord`` namedtuple through its Python
``__new__``, and hands it out through ``itertools.dropwhile`` and ``islice``. That was about
15 % of ``stream-monitor run``'s CPU.

:class:`FastPartitionRecords` keeps kafka-python's handling of everything around the records —
batch CRC checks, decompression (the batch's own ``_maybe_uncompress``), transaction markers and
aborted transactions under ``read_committed``, control batches, the leader epoch, the position
after the last batch — line for line, and replaces the per-record part for v2 batches by
:func:`decode_v2`: one loop over the batch's bytes with the varints inlined, the same
``ConsumerRecord`` tuples made with ``tuple.__new__``. ``take`` then hands out list slices. Batches
whose records have no headers (the monitor's input) are scanned by a compiled loop
(:func:`scan_python`, numba, compiled or loaded from its disk cache on the first batch) into each
record's positions and sizes, and their tuples made by C-level ``map`` calls: about half the CPU of
the Python loop, which reads any batch the scan does not take (and every batch without numba's JIT).
Whatever that loop does not expect (a corrupt record, bytes left over, a bad header key) makes
it give up on the batch, and kafka-python's own iteration decodes it instead, so errors and the
records before them come out exactly as without this class. Legacy (v0/v1) batches and consumers
with deserializers go the stock way.

Installed per consumer by :func:`stream_monitor.runtime.kafka_compat.install_fast_records`, only
on the kafka-python versions this was read against (``kafka_compat.VERIFIED_RANGE``);
``tests/runtime/test_fetch_records.py`` compares it with kafka-python's own path.
"""

from __future__ import annotations

import logging
from typing import Any

from itertools import repeat
from operator import add

import kafka.errors as Errors
import numpy as np
from kafka.consumer.fetcher import ConsumerRecord, Fetcher
from kafka.protocol.consumer import IsolationLevel
from kafka.record.util import decode_varint

from stream_monitor.core.kernels import compile_kernel, jit_enabled

log = logging.getLogger("kafka.consumer.fetcher")  # the messages kafka-python's own path logs, under its name

_new = tuple.__new__
# the zig-zag decoding of every 14-bit number: the value of a varint of one or two bytes from its 7-bit groups
# (a table look-up is about 15 % faster than the arithmetic in the loop below; 16,384 ints, about 0.6 MB)
_ZIGZAG = [(v >> 1) ^ -(v & 1) for v in range(1 << 14)]
StockPartitionRecords = Fetcher.PartitionRecords


def decode_v2(batch: Any, topic: str, partition: int) -> tuple[list[Any], list[int]] | None:
    """The records of a v2 data batch as ``ConsumerRecord`` tuples, and each record's size in bytes.

    Returns None when anything is not as a well-formed batch has it (kafka-python's iteration
    then decodes the batch and raises where it does). Reads the batch's private fields
    (``_buffer``, ``_pos``, ``_num_records``, ``_header_data``) after ``_maybe_uncompress``.
    """
    try:
        batch._maybe_uncompress()
        buf = bytes(batch._buffer)
        header = batch._header_data
        got = _records(buf, batch._pos, batch._num_records, header[0], header[7], header[8], 1 if header[5] & 0x08 else 0, topic, partition, header[2])
    except Exception:  # noqa: BLE001 - (IndexError, ValueError, UnicodeDecodeError, codec errors): kafka-python's path decides
        return None
    return got


def _records(buf: bytes, pos: int, count: int, base_offset: int, first_ts: int, max_ts: int, ts_type: int, topic: str, partition: int,
             epoch: int) -> tuple[list[Any], list[int]] | None:  # fmt: skip
    """:func:`decode_v2`'s records: scanned by the compiled :func:`scan_python` when they have no headers, else (or without
    numba, or when the scan finds anything unusual) by :func:`_records_python`, whose records the scan's equal."""
    scan = _scanner()
    if scan is not None and 0 < count <= len(buf):  # (a count beyond the bytes is a corrupt batch: the Python loop's)
        fields = np.empty((count, 7), dtype=np.int64)
        if scan(np.frombuffer(buf, dtype=np.uint8), pos, count, fields) == count:
            deltas, ts_deltas, key_at, key_size, value_at, value_size, sizes = fields.T.tolist()
            keys = _slices(buf, key_at, key_size)
            values = _slices(buf, value_at, value_size)
            stamps = [max_ts] * count if ts_type else list(map(first_ts.__add__, ts_deltas))
            rest = zip(map(base_offset.__add__, deltas), stamps, repeat(ts_type), keys, values, [[] for _ in sizes], repeat(None), key_size, value_size, repeat(-1))
            return list(map(_new, repeat(ConsumerRecord), map(add, repeat((topic, partition, epoch)), rest))), sizes
    return _records_python(buf, pos, count, base_offset, first_ts, max_ts, ts_type, topic, partition, epoch)


def _slices(buf: bytes, at: list[int], size: list[int]) -> list[bytes | None]:
    """``buf[at[i] : at[i] + size[i]]`` of every record, None where the size is -1 (a null key or value)."""
    if min(size, default=0) >= 0:
        return list(map(buf.__getitem__, map(slice, at, map(add, at, size))))
    return [buf[a : a + n] if n >= 0 else None for a, n in zip(at, size)]


def _records_python(buf: bytes, pos: int, count: int, base_offset: int, first_ts: int, max_ts: int, ts_type: int, topic: str, partition: int,
                    epoch: int) -> tuple[list[Any], list[int]] | None:  # fmt: skip
    """:func:`decode_v2`'s loop in Python: varints inline for one and two bytes (``decode_varint`` beyond), as kafka-python decodes them.

    A one- or two-byte varint's 7-bit groups, put together, index :data:`_ZIGZAG` for its value.
    """
    records: list[Any] = []
    sizes: list[int] = []
    append, size, cr, zz = records.append, sizes.append, ConsumerRecord, _ZIGZAG
    for _ in range(count):
        b = buf[pos]
        if b < 128:
            length, pos = zz[b], pos + 1
        elif buf[pos + 1] < 128:
            v = (b & 127) | (buf[pos + 1] << 7)
            length, pos = zz[v], pos + 2
        else:
            length, pos = decode_varint(buf, pos)
        start = pos
        if buf[pos] < 128:  # the attributes (unused), a varint to kafka-python
            pos += 1
        else:
            _, pos = decode_varint(buf, pos)
        b = buf[pos]
        if b < 128:
            ts_delta, pos = zz[b], pos + 1
        elif buf[pos + 1] < 128:
            v = (b & 127) | (buf[pos + 1] << 7)
            ts_delta, pos = zz[v], pos + 2
        else:
            ts_delta, pos = decode_varint(buf, pos)
        b = buf[pos]
        if b < 128:
            offset_delta, pos = zz[b], pos + 1
        elif buf[pos + 1] < 128:
            v = (b & 127) | (buf[pos + 1] << 7)
            offset_delta, pos = zz[v], pos + 2
        else:
            offset_delta, pos = decode_varint(buf, pos)
        b = buf[pos]
        if b < 128:
            n, pos = zz[b], pos + 1
        elif buf[pos + 1] < 128:
            v = (b & 127) | (buf[pos + 1] << 7)
            n, pos = zz[v], pos + 2
        else:
            n, pos = decode_varint(buf, pos)
        if n >= 0:
            key, key_size, pos = buf[pos : pos + n], n, pos + n
        else:
            key, key_size = None, -1
        b = buf[pos]
        if b < 128:
            n, pos = zz[b], pos + 1
        elif buf[pos + 1] < 128:
            v = (b & 127) | (buf[pos + 1] << 7)
            n, pos = zz[v], pos + 2
        else:
            n, pos = decode_varint(buf, pos)
        if n >= 0:
            value, value_size, pos = buf[pos : pos + n], n, pos + n
        else:
            value, value_size = None, -1
        if buf[pos] == 0:
            headers, header_size, pos = [], -1, pos + 1
        else:
            headers, header_size, pos = _headers(buf, pos)
        if pos - start != length:
            return None
        append(_new(cr, (topic, partition, epoch, base_offset + offset_delta, max_ts if ts_type else first_ts + ts_delta, ts_type,
                         key, value, headers, None, key_size, value_size, header_size)))  # fmt: skip
        size(length)
    if pos != len(buf):
        return None
    return records, sizes


def scan_python(buf: Any, pos: int, count: int, fields: Any) -> int:
    """The compiled scan's source: ``count`` records from ``pos`` of a v2 batch's bytes, each record's (offset delta,
    timestamp delta, key position, key size, value position, value size, record size) into ``fields`` (sizes -1 for a
    null key or value); returns the records read, or -1 when a record has headers, does not fit its length, runs past
    the end, has a varint of more than 9 bytes (beyond 63 bits, where Python's integers and int64 part) or bytes are
    left: then :func:`_records_python` reads the batch (and gives up where kafka-python must decide). Varints are
    zig-zag, as ``decode_varint`` reads them.
    """
    n = len(buf)
    length = ts_delta = offset_delta = key_at = key_size = value_at = value_size = start = 0
    for i in range(count):
        for f in range(6):  # the record's length, attributes (unused), timestamp delta, offset delta, key size, value size
            result = 0
            shift = 0
            while True:
                if pos >= n or shift > 56:
                    return -1
                b = buf[pos]
                pos += 1
                result |= (b & 127) << shift
                if b < 128:
                    break
                shift += 7
            v = (result >> 1) ^ -(result & 1)
            if f == 0:
                length = v
                start = pos
            elif f == 2:
                ts_delta = v
            elif f == 3:
                offset_delta = v
            elif f == 4:
                key_at, key_size = pos, (v if v >= 0 else -1)  # (kafka-python's size -1 for any negative size)
                pos += max(v, 0)
            elif f == 5:
                value_at, value_size = pos, (v if v >= 0 else -1)
                pos += max(v, 0)
        if pos >= n or buf[pos] != 0 or pos + 1 - start != length:  # (headers: the Python loop's)
            return -1
        pos += 1
        fields[i, 0] = offset_delta
        fields[i, 1] = ts_delta
        fields[i, 2] = key_at
        fields[i, 3] = key_size
        fields[i, 4] = value_at
        fields[i, 5] = value_size
        fields[i, 6] = length
    return count if pos == n else -1


_UNSET: Any = object()
_scan: Any = _UNSET


_SCAN_SIGNATURE = "int64(Array(uint8, 1, 'C', readonly=True), int64, int64, int64[:, ::1])"


def _scanner() -> Any:
    """The compiled :func:`scan_python` (compiled, or loaded from numba's cache, on the first call), or None without the JIT."""
    global _scan
    if _scan is _UNSET:
        _scan = compile_kernel(scan_python, _SCAN_SIGNATURE) if jit_enabled() else None
    return _scan


def load_scanner() -> bool:
    """Compile (or load from the cache) the scan now, at start-up, not in the first fetched batch; whether it is there."""
    return _scanner() is not None


def _headers(buf: bytes, pos: int) -> tuple[list[tuple[str, bytes | None]], int, int]:
    """A record's headers from ``pos`` (the count's varint): (headers, their size as kafka-python counts it, the position after)."""
    count, pos = decode_varint(buf, pos)
    if count < 0:
        raise ValueError("negative header count")
    headers = []
    header_size = 0
    while count:
        n, pos = decode_varint(buf, pos)
        if n < 0:
            raise ValueError("negative header key size")
        h_key = buf[pos : pos + n].decode("utf-8")
        pos += n
        header_size += n
        n, pos = decode_varint(buf, pos)
        if n >= 0:
            h_value, pos = buf[pos : pos + n], pos + n
            header_size += n
        else:
            h_value = None
        headers.append((h_key, h_value))
        count -= 1
    return headers, (header_size if headers else -1), pos


class FastPartitionRecords(StockPartitionRecords):
    """``Fetcher.PartitionRecords`` whose v2 batches are decoded by :func:`decode_v2`, handed out in slices.

    Without deserializers only (the monitor's consumers); otherwise it is the stock class.
    """

    def __init__(self, fetch_offset: int, tp: Any, records: Any, key_deserializer: Any = None, value_deserializer: Any = None,
                 check_crcs: bool = True, isolation_level: Any = IsolationLevel.READ_UNCOMMITTED, aborted_transactions: Any = None,
                 metric_aggregator: Any = None, on_drain: Any = lambda x: None) -> None:  # fmt: skip
        super().__init__(fetch_offset, tp, records, key_deserializer=key_deserializer, value_deserializer=value_deserializer,
                         check_crcs=check_crcs, isolation_level=isolation_level, aborted_transactions=aborted_transactions,
                         metric_aggregator=metric_aggregator, on_drain=on_drain)  # fmt: skip
        self._fast = key_deserializer is None and value_deserializer is None
        if self._fast:
            self.record_iterator = self._batches(tp, records)  # replaces the stock generator, never started
            self._chunk: list[Any] = []  # the records of the batch being handed out
            self._sizes: list[int] = []
            self._at = 0  # the first of them not handed out yet
            self._skipping = True  # records below fetch_offset are dropped until the first one at or above it

    def take(self, n: int | None = None) -> list[Any]:
        """Up to ``n`` records (all when None), as the stock ``take``: an error after some records is raised at the next call."""
        if not self._fast:
            return super().take(n)
        self._maybe_raise_next_inline_exception()
        out: list[Any] = []
        try:
            while n is None or len(out) < n:
                chunk, at = self._chunk, self._at
                end = len(chunk)
                if self._skipping and at < end:
                    first = at
                    while at < end and chunk[at][3] < self.fetch_offset:
                        log.debug("Skipping message offset: %s (expecting %s)", chunk[at][3], self.fetch_offset)
                        at += 1
                    if at > first:
                        self._count(chunk, first, at)
                    if at < end:
                        self._skipping = False
                if at < end:
                    if n is not None:
                        end = min(end, at + n - len(out))
                    out += chunk[at:end]
                    self._count(chunk, at, end)
                    at = end
                self._at = at
                if n is not None and len(out) >= n:
                    break
                if self.record_iterator is None:
                    break
                got = next(self.record_iterator, None)
                if got is None:
                    break
                self._chunk, self._sizes = got
                self._at = 0
        except Exception as e:  # noqa: BLE001 - as the stock take
            if not out:
                raise e
            self._next_inline_exception = e
        return out

    def _count(self, chunk: list[Any], start: int, end: int) -> None:
        """Account for records ``start:end`` of the batch leaving, as the stock generator does record by record."""
        self.records_read += end - start
        self.bytes_read += sum(self._sizes[start:end])
        self.next_fetch_offset = chunk[end - 1][3] + 1

    def _slow(self, batch: Any, tp: Any) -> tuple[list[Any], list[int], BaseException | None]:
        """A batch decoded by kafka-python's own iteration, as its ``_unpack_records`` does: (records, sizes, the error that ended it)."""
        out: list[Any] = []
        sizes: list[int] = []
        try:
            for record in batch:
                if self.check_crcs and not record.validate_crc():
                    raise Errors.CorruptRecordError(
                        "Record for partition %s at offset %s failed crc check" % (self.topic_partition, record.offset))
                key, value, headers = record.key, record.value, record.headers
                header_size = sum(len(k.encode("utf-8")) + (len(v) if v is not None else 0) for k, v in headers) if headers else -1
                out.append(ConsumerRecord(
                    tp.topic, tp.partition, self.leader_epoch, record.offset, record.timestamp, record.timestamp_type, key, value,
                    headers, record.checksum, len(key) if key is not None else -1, len(value) if value is not None else -1, header_size))
                sizes.append(record.size_in_bytes)
        except Exception as exc:  # noqa: BLE001 - raised after the records before it, as kafka-python does
            return out, sizes, exc
        return out, sizes, None

    def _batches(self, tp: Any, records: Any) -> Any:
        """The stock ``_unpack_records``, yielding each batch's (records, sizes) instead of each record."""
        try:
            batch = records.next_batch()
            last_batch = None
            while batch is not None:
                last_batch = batch
                if self.check_crcs and not batch.validate_crc():
                    raise Errors.CorruptRecordError(
                        "Record batch for partition %s at offset %s failed crc check" % (self.topic_partition, batch.base_offset))
                got = None
                if batch.magic == 2:
                    self.leader_epoch = batch.leader_epoch
                    if self.isolation_level == IsolationLevel.READ_COMMITTED and batch.has_producer_id():
                        self._consume_aborted_transactions_up_to(batch.last_offset)
                        producer_id = batch.producer_id
                        if self._contains_abort_marker(batch):
                            self.aborted_producer_ids.discard(producer_id)
                        elif self._is_batch_aborted(batch):
                            log.debug("Skipping aborted record batch from partition %s with producer_id %s and offsets %s to %s",
                                      self.topic_partition, producer_id, batch.base_offset, batch.last_offset)
                            self.next_fetch_offset = batch.next_offset
                            batch = records.next_batch()
                            continue
                    if batch.is_control_batch:
                        self.next_fetch_offset = batch.next_offset
                        batch = records.next_batch()
                        continue
                    got = decode_v2(batch, tp.topic, tp.partition)
                if got is None:
                    recs, sizes, exc = self._slow(batch, tp)
                    if recs:
                        yield recs, sizes
                    if exc is not None:
                        raise exc
                elif got[0]:
                    yield got
                batch = records.next_batch()
            if last_batch and last_batch.magic == 2:
                self.next_fetch_offset = last_batch.next_offset
            self.drain()
        except StopIteration:
            log.exception("StopIteration raised unpacking messageset")
            raise RuntimeError("StopIteration raised unpacking messageset")


def reading_backlog(consumer: Any, polled: dict[Any, list[Any]], min_lag: int) -> bool:
    """Is a partition of ``polled`` (what a poll returned) still ``min_lag`` records or more behind its high watermark?

    Only then does ``MonitorApp._poll`` fetch ahead (:func:`~stream_monitor.runtime.kafka_compat.prefetch`): a consumer
    that keeps up would get, at its next poll, what an early fetch found (the few records that had arrived) while
    those arriving meanwhile wait for the fetch after it, where that poll would have fetched them.
    """
    for tp, records in polled.items():
        hw = consumer.highwater(tp) if records else None
        if hw is not None and hw - records[-1].offset - 1 >= min_lag:
            return True
    return False
