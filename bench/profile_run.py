"""Where ``stream-monitor run`` spends its time: ``python -m bench.profile_run --bootstrap H:P``.

Produces the throughput workload (``bench/workload.py``) to a fresh topic, then runs ``MonitorApp``
(what ``stream-monitor run`` runs; exactly-once unless ``--at-least-once``) on it under cProfile,
as row (e) of ``bench.run`` does, until every offset is committed, and prints the profile of the
app's loop (polling, processing, checkpoints) by own time and by cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import uuid
from pathlib import Path

from bench.run import REPO_ROOT, create_topic, produce_all, run_app, say
from bench.workload import throughput_events


def main(argv: list[str] | None = None) -> int:
    """Profile one MonitorApp run over the workload; print the top of the profile."""
    ap = argparse.ArgumentParser(prog="python -m bench.profile_run", description=__doc__.split("\n")[0])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--at-least-once", action="store_true")
    ap.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results" / "run.prof")
    ap.add_argument("--top", type=int, default=30)
    args = ap.parse_args(argv)
    from stream_monitor.ops.logs import configure_logging

    configure_logging(level="WARNING", fmt="json")
    topic = create_topic(args.bootstrap, f"bench-profile-{uuid.uuid4().hex[:8]}", args.partitions)
    values = throughput_events(args.events)
    produce_all(args.bootstrap, topic, values, args.partitions)
    say(f"profiling MonitorApp over {args.events:,} records")
    prof = cProfile.Profile()
    r = run_app(args.bootstrap, topic, args.partitions, args.events, not args.at_least_once, max(300.0, args.events / 100),
                input_bytes=sum(map(len, values)), profiler=prof)
    prof.dump_stats(str(args.out))
    sys.stdout.write(
        f"{r['records']:,} records in {r['seconds']:.2f} s under the profiler; processing {r['process_seconds']:.2f} s, "
        f"{r['checkpoints']} checkpoints {r['checkpoint_seconds']:.2f} s\n"
    )
    for key in ("tottime", "cumulative"):
        buf = io.StringIO()
        pstats.Stats(str(args.out), stream=buf).strip_dirs().sort_stats(key).print_stats(args.top)
        sys.stdout.write(buf.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
