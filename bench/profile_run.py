"""Where ``stream-monitor run`` spends its time: ``python -m bench.profile_run --bootstrap H:P``.

Produces the throughput workload (``bench/workload.py``) to a fresh topic, then runs
``python -m cProfile -o FILE -m stream_monitor run`` (exactly-once by default, the CLI's defaults
otherwise) on it, stops it with SIGTERM once every offset is committed, and prints the profile by
own time and by cumulative time (the whole process: polling, processing, checkpoints).
"""

from __future__ import annotations

import argparse
import io
import os
import pstats
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from bench.run import REPO_ROOT, STATE_SECRET, create_topic, produce_all, say
from bench.workload import throughput_events


def committed(bootstrap: str, group: str, topic: str) -> int:
    """Sum of the committed offsets of ``group`` on ``topic``."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets({group: None}).get(group, {})
    finally:
        admin.close()
    return sum(o.offset for tp, o in offsets.items() if tp.topic == topic and o.offset > 0)


def main(argv: list[str] | None = None) -> int:
    """Profile one ``stream-monitor run`` over the workload; print the top of the profile."""
    ap = argparse.ArgumentParser(prog="python -m bench.profile_run", description=__doc__.split("\n")[0])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--at-least-once", action="store_true")
    ap.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results" / "run.prof")
    ap.add_argument("--top", type=int, default=30)
    args = ap.parse_args(argv)
    uid = uuid.uuid4().hex[:8]
    topic = create_topic(args.bootstrap, f"bench-profile-{uid}", args.partitions)
    produce_all(args.bootstrap, topic, throughput_events(args.events), args.partitions)
    group = f"bench-profile-{uid}"
    cmd = [sys.executable, "-m", "cProfile", "-o", str(args.out), "-m", "stream_monitor", "--log-level", "WARNING", "run",
           "--bootstrap-servers", args.bootstrap, "--input-topic", topic, "--alerts-topic", f"{group}-alerts", "--group-id", group,
           "--metrics-port", "0", *(["--at-least-once"] if args.at_least_once else [])]
    env = {**os.environ, "STREAM_MONITOR_STATE_SECRET": STATE_SECRET, "STREAM_MONITOR_DLQ_TOPIC": f"{group}-dlq"}
    say(f"profiling `stream-monitor run` over {args.events:,} records")
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + max(300.0, args.events / 100)
    try:
        while time.monotonic() < deadline and proc.poll() is None and committed(args.bootstrap, group, topic) < args.events:
            time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    if proc.returncode != 0 or not args.out.exists():
        sys.stderr.write(err.decode(errors="replace")[-3000:])
        return 1
    for key in ("tottime", "cumulative"):
        buf = io.StringIO()
        pstats.Stats(str(args.out), stream=buf).strip_dirs().sort_stats(key).print_stats(args.top)
        sys.stdout.write(buf.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
