"""runtime/fetch_records.py against kafka-python's own record path, on generated fetch responses (no broker).

Each test feeds the same bytes to kafka-python's ``Fetcher.PartitionRecords`` and to
``FastPartitionRecords`` and takes records in the same (drawn) portions, as the fetcher does
(never from a drained one), comparing after every call: the records (``ConsumerRecord`` equality:
every field), raised errors (type and message), the fetch position (``next_fetch_offset``), the
leader epoch, ``records_read``/``bytes_read``, whether it is drained and the drain callbacks.
"""

from __future__ import annotations

import struct
from collections import namedtuple
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka.consumer.fetcher import Fetcher
from kafka.protocol.consumer import IsolationLevel
from kafka.record import MemoryRecords, MemoryRecordsBuilder
from kafka.record.util import calc_crc32c
from kafka.structs import TopicPartition

from stream_monitor.runtime import kafka_compat
from stream_monitor.runtime.fetch_records import FastPartitionRecords, StockPartitionRecords, decode_v2

TP = TopicPartition("topic", 3)
Aborted = namedtuple("Aborted", ["producer_id", "first_offset"])  # a FetchResponse's AbortedTransaction
ATTRIBUTES_AT, CRC_AT, EPOCH_AT, MAX_TS_AT = 21, 17, 12, 35  # byte offsets in a v2 batch header


def test_the_installed_kafka_python_is_the_one_it_was_written_against():
    assert kafka_compat.version_verified(), f"kafka-python {kafka_compat.installed_version()}: re-read fetch_records.py against it"
    assert StockPartitionRecords is Fetcher.PartitionRecords


def _recrc(batch: bytearray) -> bytearray:
    struct.pack_into(">I", batch, CRC_AT, calc_crc32c(memoryview(batch)[ATTRIBUTES_AT:]))
    return batch


def v2_batch(base_offset: int, records: list[tuple[int, bytes | None, bytes | None, list]], *, codec: int = 0, gaps: list[int] | None = None,
             producer_id: int = -1, transactional: bool = False, log_append_time: int | None = None, leader_epoch: int = 0) -> bytes:
    """One v2 batch; ``gaps`` skips offsets before each record (as compaction leaves them)."""
    b = MemoryRecordsBuilder(2, codec, 1 << 30, offset=0, transactional=transactional, producer_id=producer_id,
                             producer_epoch=0 if producer_id >= 0 else -1, base_sequence=0 if producer_id >= 0 else -1)
    for i, (ts, key, value, headers) in enumerate(records):
        if gaps:
            b.skip(gaps[i % len(gaps)])
        assert b.append(ts, key, value, headers) is not None
    b.close()
    batch = bytearray(b.buffer())
    struct.pack_into(">q", batch, 0, base_offset)  # the base offset and the leader epoch are not covered by the CRC:
    struct.pack_into(">i", batch, EPOCH_AT, leader_epoch)  # the broker sets them
    if log_append_time is not None:
        (attributes,) = struct.unpack_from(">h", batch, ATTRIBUTES_AT)
        struct.pack_into(">h", batch, ATTRIBUTES_AT, attributes | 0x08)
        struct.pack_into(">q", batch, MAX_TS_AT, log_append_time)
        _recrc(batch)
    return bytes(batch)


def control_batch(offset: int, producer_id: int, commit: bool) -> bytes:
    """A transaction marker: a control batch holding one record whose key is (version 0, type)."""
    batch = bytearray(v2_batch(offset, [(1_000, struct.pack(">hh", 0, 1 if commit else 0), b"\x00\x00\x00\x00\x00\x00", [])],
                               producer_id=producer_id, transactional=True))
    (attributes,) = struct.unpack_from(">h", batch, ATTRIBUTES_AT)
    struct.pack_into(">h", batch, ATTRIBUTES_AT, attributes | 0x20)
    return bytes(_recrc(batch))


def legacy_batch(magic: int, base_offset: int, records: list[tuple[int, bytes | None, bytes | None, list]], codec: int = 0) -> bytes:
    b = MemoryRecordsBuilder(magic, codec, 1 << 30, offset=base_offset)
    for ts, key, value, _ in records:
        assert b.append(ts, key, value) is not None
    b.close()
    return bytes(b.buffer())


class Watched(FastPartitionRecords):
    """FastPartitionRecords noting the magic of every batch it leaves to kafka-python's iteration."""

    slow: list[int] = []

    def _slow(self, batch: Any, tp: Any) -> Any:
        Watched.slow.append(batch.magic)
        return super()._slow(batch, tp)


def drive(cls: type, data: bytes, takes: list[int | None], fetch_offset: int = 0, **kw: Any) -> list[Any]:
    """What ``cls`` gives for ``data`` taken in portions ``takes``, as the fetcher calls it (no take once drained)."""
    drained: list[Any] = []
    part = cls(fetch_offset, TP, MemoryRecords(data), on_drain=drained.append, **kw)
    seen: list[Any] = []
    for n in takes + [None, None]:
        if not part:
            got: Any = "drained"
        else:
            try:
                got = part.take(n)
            except Exception as exc:  # noqa: BLE001 - compared
                got = ("raised", type(exc).__name__, str(exc))
        seen.append((got, part.next_fetch_offset, part.leader_epoch, part.records_read, part.bytes_read, bool(part), len(drained)))
    return seen


def same(data: bytes, takes: list[int | None], fetch_offset: int = 0, well_formed: bool = True, **kw: Any) -> list[Any]:
    """Stock and fast agree; for ``well_formed`` data, every v2 batch was decoded by the fast loop (no fallback hides a bug there)."""
    stock = drive(StockPartitionRecords, data, takes, fetch_offset, **kw)
    Watched.slow = []
    fast = drive(Watched, data, takes, fetch_offset, **kw)
    assert fast == stock
    if well_formed:
        assert 2 not in Watched.slow
    return stock


# ------------------------------------------------------------------ strategies

def _varint_sized_ints() -> st.SearchStrategy[int]:
    """Integers whose zig-zag varints take 1, 2, 3 and more bytes, both signs (edges included)."""
    edges = [0, -1, 63, 64, -64, -65, 8191, 8192, -8193, 2**20, -(2**27), 2**34, 2**40]
    return st.one_of(st.sampled_from(edges), st.integers(-(2**45), 2**45))


_bytes = st.one_of(st.none(), st.binary(max_size=40), st.binary(min_size=60, max_size=200),
                   st.integers(8180, 8200).map(lambda n: b"v" * n))  # lengths across the 1/2/3-byte varint edges
_headers = st.lists(st.tuples(st.text(max_size=8), st.one_of(st.none(), st.binary(max_size=12))), max_size=3)
_record = st.tuples(st.integers(1_600_000_000_000, 1_800_000_000_000), _bytes, _bytes, _headers)


def _codecs() -> list[int]:
    """Plain (twice as likely), gzip, lz4 (what the monitor's producer writes by default) and zstd when its library is there."""
    import kafka.codec

    return [0, 0, 1, 3] + ([4] if kafka.codec.has_zstd() else [])


_CODECS = _codecs()


@st.composite
def fetches(draw: Any) -> tuple[bytes, list[Aborted]]:
    """A fetch response's record bytes: data batches (plain, gzip/lz4/zstd, transactional, log-append-time, compacted gaps,
    legacy v0/v1), transaction markers, and the aborted transactions the broker would list with them."""
    out = bytearray()
    aborted: list[Aborted] = []
    offset = draw(st.integers(0, 2**40))
    open_txn: dict[int, int] = {}  # producer id -> first offset of its open transaction
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["plain", "plain", "txn", "marker", "legacy"]))
        if kind == "marker" and open_txn:
            pid = draw(st.sampled_from(sorted(open_txn)))
            commit = draw(st.booleans())
            if not commit:
                aborted.append(Aborted(pid, open_txn[pid]))
            del open_txn[pid]
            out += control_batch(offset, pid, commit)
            offset += 1
            continue
        records = draw(st.lists(_record, min_size=1, max_size=8))
        if kind == "legacy":
            magic = draw(st.sampled_from([0, 1]))
            out += legacy_batch(magic, offset, records, codec=draw(st.sampled_from([0, 1])))
            offset += len(records)
            continue
        gaps = draw(st.one_of(st.none(), st.lists(st.sampled_from([0, 1, 70, 9000, 2**21]), min_size=1, max_size=3)))
        pid = -1
        if kind == "txn":
            pid = draw(st.integers(1000, 1003))
            open_txn.setdefault(pid, offset)
        batch = v2_batch(offset, records, codec=draw(st.sampled_from(_CODECS)), gaps=gaps, producer_id=pid, transactional=pid >= 0,
                         log_append_time=draw(st.one_of(st.none(), st.integers(0, 2**41))), leader_epoch=draw(st.integers(0, 5)))
        out += batch
        (delta,) = struct.unpack_from(">i", batch, 23)
        offset += delta + 1 + draw(st.sampled_from([0, 0, 5]))
    return bytes(out), aborted


_takes = st.lists(st.one_of(st.none(), st.integers(1, 12)), max_size=6)
_level = st.sampled_from([IsolationLevel.READ_COMMITTED, IsolationLevel.READ_UNCOMMITTED])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(fetches(), _takes, _level, st.integers(0, 12), st.booleans())
def test_the_same_records_positions_and_counts_as_kafka_python(fetch, takes, level, skip, check_crcs):
    data, aborted = fetch
    start = MemoryRecords(data).next_batch().base_offset if data else 0
    same(data, takes, start + skip, isolation_level=level, aborted_transactions=aborted, check_crcs=check_crcs)


def test_varint_edges_keys_values_headers_and_nulls_come_out_field_for_field():
    records = [
        (1_700_000_000_000, None, None, []),
        (1_700_000_000_000 - 1, b"", b"", [("", None)]),
        (1_700_000_000_063, b"k" * 63, b"v" * 64, [("h", b"")]),
        (1_700_000_008_192, b"k" * 8191, b"v" * 8192, [("ключ", b"x" * 200), ("b", None)]),
        (1_600_000_000_000, None, b"v" * 70_000, [("h%d" % i, b"%d" % i) for i in range(70)]),
    ]
    data = v2_batch(2**40, records, gaps=[0, 64, 2**21], leader_epoch=7)
    seen = same(data, [None])
    got = seen[0][0]
    assert [r.key for r in got] == [r[1] for r in records] and [r.value for r in got] == [r[2] for r in records]
    assert [r.headers for r in got] == [r[3] for r in records] and [r.timestamp for r in got] == [r[0] for r in records]
    assert [r.serialized_header_size for r in got][:3] == [-1, 0, 1] and got[0].leader_epoch == 7


def test_log_append_time_gives_every_record_the_batch_max_timestamp():
    data = v2_batch(0, [(5, None, b"a", []), (9, None, b"b", [])], log_append_time=123_456)
    got = same(data, [None])[0][0]
    assert [(r.timestamp, r.timestamp_type) for r in got] == [(123_456, 1), (123_456, 1)]


def test_read_committed_skips_aborted_transactions_and_markers():
    committed = v2_batch(0, [(1, None, b"c1", []), (2, None, b"c2", [])], producer_id=7, transactional=True)
    aborted = v2_batch(3, [(3, None, b"a1", [])], producer_id=8, transactional=True)
    plain = v2_batch(4, [(4, None, b"p", [])])
    again = v2_batch(6, [(6, None, b"c3", [])], producer_id=8, transactional=True)  # producer 8's next transaction, committed
    data = committed + control_batch(2, 7, True) + aborted + plain + control_batch(5, 8, False) + again + control_batch(7, 8, True)
    for level, want in ((IsolationLevel.READ_COMMITTED, [b"c1", b"c2", b"p", b"c3"]), (IsolationLevel.READ_UNCOMMITTED, [b"c1", b"c2", b"a1", b"p", b"c3"])):
        seen = same(data, [2, 1, None], isolation_level=level, aborted_transactions=[Aborted(8, 3)])
        assert [r.value for step in seen if isinstance(step[0], list) for r in step[0]] == want
        assert seen[-1][1] == 8  # the position moves past the last marker


def test_gzip_and_legacy_batches_and_a_fetch_starting_inside_a_compressed_batch():
    data = v2_batch(10, [(1, b"k", b"v%d" % i, []) for i in range(6)], codec=1) + legacy_batch(1, 16, [(5, None, b"old", [])], codec=1)
    data += legacy_batch(0, 17, [(0, b"k0", b"v0", [])])
    seen = same(data, [2, None], fetch_offset=13)
    assert [r.offset for r in seen[0][0] + seen[1][0]] == [13, 14, 15, 16, 17]


@pytest.mark.parametrize("codec", [1, 3, 4], ids=["gzip", "lz4", "zstd"])
def test_batches_of_every_codec_the_producer_may_write_decode_in_the_fast_loop(codec):
    """kafka.compression_type (lz4 by default): the monitor reads back what it writes (changelog, by-model rows, alerts)."""
    import kafka.codec

    if not {1: kafka.codec.has_gzip, 3: kafka.codec.has_lz4, 4: kafka.codec.has_zstd}[codec]():
        pytest.skip("the codec's library is not installed")
    records = [(1_700_000_000_000 + i, b"m%d" % (i % 3), b"state-%d;" % i * 30, [("h", b"%d" % i)] if i % 5 == 0 else []) for i in range(40)]
    data = v2_batch(100, records, codec=codec) + v2_batch(140, records[:5], codec=codec, producer_id=7, transactional=True)
    data += control_batch(145, 7, True)
    batches = MemoryRecords(data)
    assert [batches.next_batch().compression_type for _ in range(2)] == [codec, codec]  # compressed, both (no plain fallback)
    for level in (IsolationLevel.READ_COMMITTED, IsolationLevel.READ_UNCOMMITTED):
        seen = same(data, [7, None, None], fetch_offset=113, isolation_level=level)
        got = [r for step in seen if isinstance(step[0], list) for r in step[0]]
        assert [r.offset for r in got] == list(range(113, 145)) and got[-1].value == records[4][2]


def test_a_codec_without_its_library_fails_as_in_kafka_python():
    import kafka.codec

    missing = [code for code, has in ((2, kafka.codec.has_snappy), (3, kafka.codec.has_lz4), (4, kafka.codec.has_zstd)) if not has()]
    if not missing:
        pytest.skip("every codec library is installed")
    batch = bytearray(v2_batch(0, [(1, None, b"v", [])]))
    (attributes,) = struct.unpack_from(">h", batch, ATTRIBUTES_AT)
    struct.pack_into(">h", batch, ATTRIBUTES_AT, attributes | missing[0])
    seen = same(bytes(_recrc(batch)), [None], well_formed=False)
    assert seen[0][0][0] == "raised" and "codec" in seen[0][0][2]


def test_crc_failures_raise_after_the_good_batches_as_in_kafka_python():
    good = v2_batch(0, [(1, None, b"a", []), (2, None, b"b", [])])
    bad = bytearray(v2_batch(2, [(3, None, b"c", [])]))
    bad[-1] ^= 0xFF
    seen = same(good + bytes(bad), [None, None])
    assert [r.value for r in seen[0][0]] == [b"a", b"b"] and seen[1][0][0] == "raised" and "crc" in seen[1][0][2]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_record, min_size=1, max_size=5), st.lists(st.tuples(st.integers(61, 10_000), st.integers(1, 255)), min_size=1, max_size=3), _takes)
def test_corrupt_records_fail_exactly_as_in_kafka_python(records, flips, takes):
    """Flipped bytes in the records (CRC checks off, as a consumer may configure): the fast loop gives up and kafka-python's decides."""
    batch = bytearray(v2_batch(0, records) + v2_batch(len(records), [(9, None, b"next", [])]))
    for at, mask in flips:
        batch[at % len(batch) if at % len(batch) >= 61 else 61] ^= mask
    same(bytes(batch), takes, well_formed=False, check_crcs=False)


def test_bytes_left_after_the_last_record_fail_as_in_kafka_python():
    batch = bytearray(v2_batch(0, [(1, None, b"a", []), (2, None, b"b", [])]))
    struct.pack_into(">i", batch, 57, 1)  # says one record where there are two
    seen = same(bytes(_recrc(batch)), [None, None], well_formed=False)
    assert [r.value for r in seen[0][0]] == [b"a"] and seen[1][0][0] == "raised" and "unconsumed" in seen[1][0][2]


def test_the_fast_loop_decodes_whole_batches_itself():
    """Not a silent fallback: a well-formed batch is decoded by decode_v2, not by kafka-python's iteration."""
    from kafka.record.default_records import DefaultRecordBatch

    batch = DefaultRecordBatch(v2_batch(5, [(1, b"k", b"v", [("h", b"1")]), (2, None, None, [])]))
    got = decode_v2(batch, "t", 1)
    assert got is not None and [r.offset for r in got[0]] == [5, 6] and batch._next_record_index == 0


def test_consumers_with_deserializers_take_the_stock_path():
    data = v2_batch(0, [(1, b"k", b"v", [])])

    class Upper:
        def deserialize(self, topic, headers, data):
            return data.upper()

    stock = drive(StockPartitionRecords, data, [None], value_deserializer=Upper())
    fast = drive(FastPartitionRecords, data, [None], value_deserializer=Upper())
    assert fast == stock and stock[0][0][0].value == b"V"


def test_install_is_per_consumer_and_only_on_the_verified_version(monkeypatch):
    fetcher = type("F", (), {"PartitionRecords": StockPartitionRecords})()
    consumer = type("C", (), {})()
    consumer._fetcher = fetcher
    assert kafka_compat.install_fast_records(consumer) and fetcher.PartitionRecords is FastPartitionRecords
    assert Fetcher.PartitionRecords is StockPartitionRecords  # the class itself is untouched
    other = type("C", (), {})()
    other._fetcher = type("F", (), {"PartitionRecords": StockPartitionRecords})()
    monkeypatch.setattr(kafka_compat, "installed_version", lambda: (3, 1, 0))
    assert not kafka_compat.install_fast_records(other) and other._fetcher.PartitionRecords is StockPartitionRecords
    assert not kafka_compat.install_fast_records(object())  # a fake without a fetcher


def _loop_args(data: bytes) -> tuple:
    from kafka.record.default_records import DefaultRecordBatch

    batch = DefaultRecordBatch(data)
    h = batch._header_data
    return bytes(batch._buffer), batch._pos, batch._num_records, h[0], h[7], h[8], 1 if h[5] & 0x08 else 0, "t", 1, h[2]


def _scanned() -> Any:
    from stream_monitor.runtime import fetch_records

    if fetch_records._scanner() is None:
        pytest.skip("numba's JIT is off: the Python loop reads every batch")
    return fetch_records


def test_header_less_batches_are_scanned_compiled_and_read_as_the_python_loop_reads_them(monkeypatch):
    fr = _scanned()
    loop = fr._records_python
    called = []
    monkeypatch.setattr(fr, "_records_python", lambda *a: called.append(a) or loop(*a))
    args = _loop_args(v2_batch(5, [(1, b"k", b"v", []), (2, None, None, []), (3 + 2**40, b"", b"x" * 300, []), (-(2**40), b"k" * 200, b"", [])], gaps=[0, 3]))
    got = fr._records(*args)
    assert got == loop(*args) and len(got[0]) == 4 and not called  # not a silent fallback: the compiled scan read it
    args = _loop_args(v2_batch(5, [(1, b"k", b"v", []), (2, None, None, [("h", b"1")])]))
    assert fr._records(*args) == loop(*args) and len(called) == 1  # a record with headers: the Python loop


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    records=st.lists(st.tuples(st.integers(-(2**45), 2**45), st.one_of(st.none(), st.binary(max_size=200)), st.one_of(st.none(), st.binary(max_size=300)),
                               st.just([])), min_size=1, max_size=12),  # fmt: skip
    gaps=st.lists(st.integers(0, 2**20), min_size=1, max_size=3),
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), max_size=3),
)
def test_the_compiled_scan_reads_what_the_python_loop_reads(records, gaps, flips):
    """Well-formed or with bytes flipped: what the compiled scan takes is the Python loop's records, sizes included."""
    fr = _scanned()
    buf, *rest = _loop_args(v2_batch(7, records, gaps=gaps))
    body = bytearray(buf)
    for at, x in flips:
        body[rest[0] + at % max(1, len(body) - rest[0])] ^= x
    args = (bytes(body), *rest)
    try:
        want = fr._records_python(*args)
    except Exception as exc:  # noqa: BLE001 - decode_v2 turns any error into None (kafka-python's path then decides)
        want = type(exc)
    try:
        got = fr._records(*args)
    except Exception as exc:  # noqa: BLE001
        got = type(exc)
    assert got == want
