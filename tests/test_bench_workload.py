"""The benchmark's workloads are kept at their size: an ``orjson.dumps`` result holds ~4 KiB whatever its length."""

from __future__ import annotations

import tracemalloc

import orjson

from bench.workload import kept, throughput_events


def _traced(make):
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        out = make()
        return out, tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_kept_is_the_same_bytes_at_their_size() -> None:
    doc = {"model": "m", "ts": 1, "features": {"x": 1.5, "c": "v1"}}
    raw = orjson.dumps(doc)
    assert kept(raw) == raw and type(kept(raw)) is bytes
    values, size = _traced(lambda: [kept(orjson.dumps(doc)) for _ in range(2000)])
    assert size < 2000 * (len(raw) + 200), size  # ~4 KiB each without the copy


def test_throughput_workload_takes_about_its_length() -> None:
    values, size = _traced(lambda: throughput_events(3000))
    length = sum(map(len, values))
    assert len(values) == 3000
    assert size < 1.5 * length, (size, length)
