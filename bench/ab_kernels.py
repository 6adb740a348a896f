"""A/B of the per-value kernels (issue 13) in one process: ``PartitionMonitor.process`` over the
throughput workload with the code of a git ref (default ``main``) for the per-value parts, against
this tree's code, alternating; CPU time (``time.process_time``) per record, and the alerts compared.

    PYTHONPATH=$PWD python -m bench.ab_kernels [--records 55000] [--rounds 4] [--ref main]

``--python-arm``: "old" is this tree with the kernels switched off (the fallback's cost) instead.
"Old" swaps in the ref's ``PageHinkleyDetector.update_many``, ``AdwinDetector.update_many`` and
``ChannelMonitor._detect`` / ``_push`` (loaded from ``git show REF:path`` into temporary modules); everything else is
shared, so the difference is the per-value work only. Also reported: the CPU time spent inside
``_detect`` (which calls the point detectors), timed the same way in both arms — less noisy than
the whole step on a busy machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import structlog


def _load(ref: str, path: str, name: str, tmp: Path):
    source = subprocess.run(["git", "show", f"{ref}:{path}"], check=True, capture_output=True, text=True).stdout
    file = tmp / f"{name}.py"
    file.write_text(source)
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab_kernels", description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=55_000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--ref", default="main")
    parser.add_argument("--python-arm", action="store_true", help="'old' = this tree with the kernels off (the Python fallback)")
    args = parser.parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    from bench.workload import throughput_events
    from stream_monitor.core import channel
    from stream_monitor.core.detectors import river_adapter
    from stream_monitor.core.events import SourcePosition
    from stream_monitor.core.monitor import InputRecord, PartitionMonitor
    from stream_monitor.core.spec import MonitorSpec

    with tempfile.TemporaryDirectory() as tmp:
        old_ra = _load(args.ref, "stream_monitor/core/detectors/river_adapter.py", "_ab_old_river_adapter", Path(tmp))
        old_ch = _load(args.ref, "stream_monitor/core/channel.py", "_ab_old_channel", Path(tmp))
    swaps = [
        (river_adapter.PageHinkleyDetector, "update_many", old_ra.PageHinkleyDetector.update_many),
        (river_adapter.AdwinDetector, "update_many", old_ra.AdwinDetector.update_many),
        (channel.ChannelMonitor, "_detect", old_ch.ChannelMonitor._detect),
        (channel.ChannelMonitor, "_push", old_ch.ChannelMonitor._push),
    ]
    new = [(cls, name, cls.__dict__[name]) for cls, name, _ in swaps]

    records = [InputRecord(raw, SourcePosition("ab", 0, i, None)) for i, raw in enumerate(throughput_events(args.records))]

    inside = [0.0]  # CPU seconds inside ChannelMonitor._detect (the per-value path: it calls the detectors)

    def timed(detect):
        def _detect(self, *a):
            t = time.process_time()
            detect(self, *a)
            inside[0] += time.process_time() - t

        return _detect

    from stream_monitor.core import kernels

    compiled = kernels.page_hinkley()
    if args.python_arm:
        swaps = new

    def run(which: list, label: str) -> tuple[float, float, list]:
        for cls, name, func in which:
            setattr(cls, name, timed(func) if name == "_detect" else func)
        kernels._kernel = None if args.python_arm and label == "old" else compiled  # read when a detector is built
        monitor = PartitionMonitor(MonitorSpec(), 0)
        alerts = []
        inside[0] = 0.0
        start = time.process_time()
        for i in range(0, len(records), args.batch):
            alerts += [a.payload for a in monitor.process(records[i : i + args.batch]).alerts]
        whole = (time.process_time() - start) / len(records) * 1e6
        return whole, inside[0] / len(records) * 1e6, alerts

    run(new, "new")  # warm-up: kernel loaded, caches filled
    times: dict[str, list[float]] = {"old": [], "new": [], "old_detect": [], "new_detect": []}
    outputs = {}
    for _ in range(args.rounds):
        for label, which in (("old", swaps), ("new", new)):
            us, detect_us, alerts = run(which, label)
            times[label].append(us)
            times[label + "_detect"].append(detect_us)
            outputs[label] = alerts
    for label, what in (("old", "process"), ("new", "process"), ("old_detect", "in _detect"), ("new_detect", "in _detect")):
        t = times[label]
        print(f"{label}: {statistics.median(t):.2f} us/record CPU {what} (min {min(t):.2f}, max {max(t):.2f}, n={len(t)})")
    for part in ("", "_detect"):
        saved = [o - n for o, n in zip(times["old" + part], times["new" + part], strict=True)]
        print(f"saved{part or ' (process)'}: median {statistics.median(saved):.2f} us/record (pairs: {', '.join(f'{s:.2f}' for s in saved)})")
    print(f"alerts identical: {outputs['old'] == outputs['new']} ({len(outputs['new'])} alerts)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
