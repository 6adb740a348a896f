"""Memory over a long run: ``python -m bench.soak [--seconds 1800] [--rate 2000] [--bootstrap H:P]``.

Runs ``python -m stream_monitor run`` (exactly-once, default config) as a subprocess, feeds it a
paced, endless stream of the benchmark's event shape (``--models`` models x 26 channels, drifting
now and then so alerts fire and resolve) and samples the monitor's resident set every
``--sample`` seconds. Reports RSS at the end of the warm-up (the first 20 %: references and
windows fill, imports finish), at the end and its maximum, and the least-squares slope over the
rest of the run; "flat" means it grew by less than 2 % over that part. Writes JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]


def _events(models: int, start_ms: int, stop: threading.Event):
    """Endless interleaved events of ``models`` models, 10k per model per chunk, fresh seeds."""
    from bench.workload import N_CATEGORICAL, N_NUMERIC, encoded
    from stream_monitor.synthetic import Drift, StreamSpec

    chunk = 10_000
    k = 0
    while not stop.is_set():
        streams = []
        for m in range(models):
            # every other chunk drifts in its second half (alerts fire, then resolve in the next)
            drifts = (Drift("mean_shift", "x0", chunk // 2, None, amount=2.0),) if k % 2 else ()
            spec = StreamSpec(
                model=f"soak-{m}", n_events=chunk, seed=10_000 + k * models + m, n_numeric=N_NUMERIC,
                n_categorical=N_CATEGORICAL, start_ms=start_ms + k * chunk * 10, drifts=drifts,
            )
            streams.append(list(encoded(spec)))
        for i in range(chunk):
            for m in range(models):
                yield m, streams[m][i]
        k += 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=1800.0)
    ap.add_argument("--rate", type=float, default=2000.0, help="records per second")
    ap.add_argument("--models", type=int, default=4)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--sample", type=float, default=10.0, help="seconds between RSS samples")
    ap.add_argument("--bootstrap", help="broker (default: start one with deploy/kafka/broker.sh)")
    ap.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results" / "soak.json")
    args = ap.parse_args(argv)

    from kafka import KafkaProducer

    from bench.memory import rss_bytes
    from bench.run import STATE_SECRET, OwnBroker, create_topic, say

    broker = None
    bootstrap = args.bootstrap
    if not bootstrap:
        broker = OwnBroker()
        bootstrap = broker.start()
    uid = uuid.uuid4().hex[:8]
    log_path = Path(f"/tmp/bench-soak-{uid}.log")
    samples: list[tuple[float, int]] = []
    sent = 0
    try:
        topic = create_topic(bootstrap, f"bench-soak-{uid}", args.partitions)
        env = {**os.environ, "STREAM_MONITOR_STATE_SECRET": STATE_SECRET, "STREAM_MONITOR_DLQ_TOPIC": f"bench-soak-dlq-{uid}"}
        cmd = [sys.executable, "-m", "stream_monitor", "--log-format", "json", "run", "--bootstrap-servers", bootstrap,
               "--input-topic", topic, "--alerts-topic", f"bench-soak-alerts-{uid}", "--group-id", f"bench-soak-{uid}", "--metrics-port", "0"]
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT)
            try:
                producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=5)
                stop = threading.Event()
                t0 = time.perf_counter()
                next_sample = 0.0
                say(f"soak: {args.seconds:.0f} s at {args.rate:,.0f} records/s, monitor pid {proc.pid}")
                for model, value in _events(args.models, 1_767_225_600_000, stop):
                    now = time.perf_counter() - t0
                    if now >= args.seconds:
                        break
                    if now >= next_sample:
                        if proc.poll() is not None:
                            raise RuntimeError(f"monitor exited ({proc.returncode}); see {log_path}")
                        samples.append((round(now, 1), rss_bytes(str(proc.pid))))
                        next_sample += args.sample
                    ahead = sent / args.rate - now
                    if ahead > 0:
                        time.sleep(ahead)
                    producer.send(topic, value=value, partition=model % args.partitions)
                    sent += 1
                stop.set()
                producer.flush()
                producer.close()
            finally:
                proc.terminate()
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
    finally:
        if broker is not None:
            broker.stop()
    warm = [s for s in samples if s[0] >= 0.2 * args.seconds]
    xs = [t for t, _ in warm]
    ys = [r for _, r in warm]
    slope = 0.0
    if len(warm) >= 2:
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / max(1e-9, sum((x - mx) ** 2 for x in xs))
    growth = (slope * (xs[-1] - xs[0]) / ys[0]) if len(warm) >= 2 and ys[0] else 0.0
    out: dict[str, Any] = {
        "seconds": args.seconds,
        "rate": args.rate,
        "records": sent,
        "models": args.models,
        "channels": args.models * 26,
        "rss_after_warmup_bytes": ys[0] if ys else None,
        "rss_end_bytes": ys[-1] if ys else None,
        "rss_max_bytes": max(ys) if ys else None,
        "slope_bytes_per_minute": slope * 60,
        "growth_after_warmup": growth,
        "flat": abs(growth) < 0.02,
        "samples": samples,
        "monitor_log": str(log_path),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    say(
        f"soak: RSS {out['rss_after_warmup_bytes'] / 2**20:.1f} MiB after warm-up -> {out['rss_end_bytes'] / 2**20:.1f} MiB at the end "
        f"(max {out['rss_max_bytes'] / 2**20:.1f}); slope {out['slope_bytes_per_minute'] / 1024:.1f} KiB/min; growth {growth:+.2%}: "
        f"{'flat' if out['flat'] else 'NOT flat'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
