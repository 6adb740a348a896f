"""A/B of reading label records for ``run``, in one process: ``python -m bench.ab_labels --ref main``.

What ``runtime/forward.py`` does with a batch of label records of one partition before sending
them: the old way (``--ref``: consumer records → ``InputRecord`` → ``read_labels`` (pydantic
``LabelEvent``) → ``as_wire``) against the working tree's (``read_labels_wire``), both followed by
``encode_row_lists`` of each model's rows (what ``Forwarder._prepare`` sends). The bench's label
shape (``bench/compare.label_events``), batches of ``--batch``, alternated ``--reps`` times;
CPU time (``time.process_time``) per label record, and whether both gave the same bytes.
``--join`` times instead the judging of those labels (the join to remembered predictions, what a
model's owner does with label rows read back from the internal topic), on monitors that have
judged the labelled inference events first (not timed), and checks both give the same alerts.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import statistics
import sys
import tempfile
import time
from collections import namedtuple
from pathlib import Path

from bench.ab_against_ref import OLD, extract

Rec = namedtuple("Rec", "value offset timestamp headers")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", default="main")
    ap.add_argument("--labels", type=int, default=30_000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--join", action="store_true", help="time judging the label rows (the join), not reading them")
    args = ap.parse_args(argv)
    if args.join:
        return join_ab(args)
    from bench.compare import label_events
    from bench.workload import throughput_events

    raws = [raw for _, raw in label_events(throughput_events(2 * args.labels))]
    records = [Rec(raw, i, 1_700_000_000_000 + i, None) for i, raw in enumerate(raws)]
    batches = [records[i : i + args.batch] for i in range(0, len(records), args.batch)]
    with tempfile.TemporaryDirectory() as tmp:
        extract(args.ref, Path(tmp))
        sys.path.insert(0, tmp)
        old_ik = importlib.import_module(f"{OLD}.core.intake")
        old_ev = importlib.import_module(f"{OLD}.core.events")
        old_ex = importlib.import_module(f"{OLD}.core.exchange")
        from stream_monitor.core import exchange as new_ex
        from stream_monitor.core import intake as new_ik

        def old() -> list[bytes]:
            out = []
            for b in batches:
                inputs = [old_ik.InputRecord(r.value or b"", old_ev.SourcePosition("labels", 0, r.offset, r.timestamp), r.headers or None) for r in b]
                w = old_ik.as_wire(old_ik.read_labels(inputs))
                out += [old_ex.encode_row_lists(m, rows) for m, rows in w.rows.items()]
            return out

        def new() -> list[bytes]:
            out = []
            for b in batches:
                w = new_ik.read_labels_wire("labels", 0, b)
                out += [new_ex.encode_row_lists(m, rows) for m, rows in w.rows.items()]
            return out

        same = old() == new()
        times: dict[str, list[float]] = {"old": [], "new": []}
        for _ in range(args.reps):
            for name, fn in (("old", old), ("new", new)):
                gc.collect()
                t0 = time.process_time()
                fn()
                times[name].append((time.process_time() - t0) / len(records) * 1e6)
        saved = [o - n for o, n in zip(times["old"], times["new"], strict=True)]
        for name, ts in times.items():
            print(f"{name}: median {statistics.median(ts):.2f} µs/label (min {min(ts):.2f}, max {max(ts):.2f})")
        print(f"saved per label: median {statistics.median(saved):.2f} µs (min {min(saved):.2f}, max {max(saved):.2f}); same bytes: {same}")


def join_ab(args: argparse.Namespace) -> None:
    """Judging label rows on a monitor that judged their predictions: old (``--ref``) against new, alternately."""
    from bench.compare import label_events
    from bench.workload import throughput_events

    values = throughput_events(2 * args.labels)
    raws = [raw for _, raw in label_events(values)]
    times: dict[str, list[float]] = {"old": [], "new": []}
    alerts: dict[str, list[bytes]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        extract(args.ref, Path(tmp))
        sys.path.insert(0, tmp)
        pkgs = {"old": OLD, "new": "stream_monitor"}
        for _ in range(args.reps):
            for name, pkg in pkgs.items():
                mon = importlib.import_module(f"{pkg}.core.monitor")
                spec = importlib.import_module(f"{pkg}.core.spec").MonitorSpec()
                pos = importlib.import_module(f"{pkg}.core.events").SourcePosition
                ik = importlib.import_module(f"{pkg}.core.intake")
                m = mon.PartitionMonitor(spec, 0)
                out = m.process([ik.InputRecord(v, pos("in", 0, i, None)) for i, v in enumerate(values)])
                rows = ik.read_labels([ik.InputRecord(v, pos("l", 0, i, None)) for i, v in enumerate(raws)]).ordered
                gc.collect()
                t0 = time.process_time()
                res = m.judge(rows)
                times[name].append((time.process_time() - t0) / len(raws) * 1e6)
                alerts.setdefault(name, [a.payload for a in out.alerts + res.alerts])
    saved = [o - n for o, n in zip(times["old"], times["new"], strict=True)]
    for name, ts in times.items():
        print(f"join {name}: median {statistics.median(ts):.2f} µs/label (min {min(ts):.2f}, max {max(ts):.2f})")
    print(f"saved per label: median {statistics.median(saved):.2f} µs (min {min(saved):.2f}, max {max(saved):.2f}); alerts {len(alerts['new'])}, same: {alerts['old'] == alerts['new']}")


if __name__ == "__main__":
    main()
