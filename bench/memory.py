"""Memory per channel, measured in a fresh interpreter: ``python -m bench.memory --channels N``.

Builds one :class:`PartitionMonitor` holding ``N`` channels (models of 20 numeric + 5 categorical
features), feeds every model enough records to finish its warm-up and fill its windows (default
windows: 1000-value reference, 1000-value window), then reports, as one JSON line on stdout:

- resident set size after imports and after building the state (``/proc/self/status`` VmRSS),
  and the difference per channel; the same for the C heap in use (glibc ``mallinfo2``), which
  is not hidden by reuse of freed pages;
- serialized state size: ``PartitionMonitor.state_items(only_dirty=False)``, in total, per
  channel (its channel, reference and window-chunk items together), and per channel type (numeric / categorical), with the largest channel.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import sys
import time

import orjson


def rss_bytes(pid: str = "self") -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def heap_bytes() -> int:
    """Bytes in use on the C heap (glibc ``mallinfo2``: in-use chunks + mmapped blocks), or 0.

    Unlike RSS it does not keep pages that were freed earlier, so per-channel deltas are not
    hidden by reuse of memory the warm-up left behind.
    """
    try:
        import ctypes

        class _MallInfo2(ctypes.Structure):
            _fields_ = [(n, ctypes.c_size_t) for n in "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]

        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        info = libc.mallinfo2()
        return int(info.uordblks + info.hblkhd)
    except (OSError, AttributeError):
        return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.memory")
    ap.add_argument("--channels", type=int, required=True)
    ap.add_argument("--records-per-model", type=int, default=2200)
    ap.add_argument("--batch", type=int, default=500)
    args = ap.parse_args(argv)

    from stream_monitor.ops.logs import configure_logging

    configure_logging(level="WARNING", fmt="json")
    from bench.workload import channel_models, encoded
    from stream_monitor.core.events import SourcePosition
    from stream_monitor.core.monitor import InputRecord, PartitionMonitor
    from stream_monitor.core.spec import MonitorSpec

    def feed(monitor: PartitionMonitor, specs: list, offset: int = 0) -> tuple[int, int]:
        values = 0
        for spec in specs:
            spec = dataclasses.replace(spec, n_events=args.records_per_model)
            batch: list[InputRecord] = []
            for raw in encoded(spec, prediction=False):
                batch.append(InputRecord(raw, SourcePosition("mem", 0, offset, None)))
                offset += 1
                if len(batch) >= args.batch:
                    values += monitor.process(batch).channel_values
                    batch = []
            if batch:
                values += monitor.process(batch).channel_values
        return offset, values

    # warm-up on a throwaway monitor, fed the same way, so lazy imports (scipy.stats, ...),
    # caches and the heap's working set are in the baseline, not in the per-channel figure
    warm = PartitionMonitor(MonitorSpec(), partition=0)
    feed(warm, [dataclasses.replace(channel_models(25)[0], model="warm")])
    del warm
    monitor = PartitionMonitor(MonitorSpec(), partition=0)
    gc.collect()
    rss0 = rss_bytes()
    heap0 = heap_bytes()
    started = time.perf_counter()
    offset, values = feed(monitor, channel_models(args.channels))
    seconds = time.perf_counter() - started
    gc.collect()
    rss1 = rss_bytes()
    heap1 = heap_bytes()
    items = monitor.state_items(only_dirty=False)
    per_channel: dict[tuple[str, ...], int] = {}  # a channel's item, its reference's and its window chunks' (core/state_window.py)
    for k, v in items.items():
        if k[:2] in ("c\x1f", "r\x1f", "w\x1f"):
            key = tuple(k.split("\x1f")[1:3])
            per_channel[key] = per_channel.get(key, 0) + len(v)
    channels = list(per_channel.items())
    n = sum(len(m.channels) for m in monitor.models.values())
    by_type: dict[str, list[int]] = {}
    for m in monitor.models.values():
        for name, ch in m.channels.items():
            by_type.setdefault(ch.channel_type, []).append(per_channel[(m.model, name)])
    total = sum(len(v) for v in items.values())
    out = {
        "channels": n,
        "records": offset,
        "channel_values": values,
        "build_seconds": round(seconds, 3),
        "rss_after_imports_bytes": rss0,
        "rss_after_state_bytes": rss1,
        "rss_per_channel_bytes": (rss1 - rss0) / n if n else 0,
        "heap_in_use_per_channel_bytes": (heap1 - heap0) / n if n and heap0 else None,
        "state_bytes_total": total,
        "state_bytes_per_channel": total / n if n else 0,
        "state_bytes_per_channel_by_type": {t: sum(v) / len(v) for t, v in by_type.items()},
        "state_bytes_max_channel": max((s for _, s in channels), default=0),
    }
    sys.stdout.write(orjson.dumps(out).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
