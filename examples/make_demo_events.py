"""Regenerate ``examples/demo-events.jsonl.gz``: the demo's two models, for replay without a broker.

    python examples/make_demo_events.py            # 20,000 events per model, seed 42
    stream-monitor replay --input examples/demo-events.jsonl.gz --alerts-out alerts.jsonl --report report.html

``fraud-v3`` drifts at known points (see :func:`stream_monitor.synthetic.demo_streams`), ``churn-v1``
stays stationary. Events are interleaved one by one (fraud, churn, fraud, ...), one JSON object per
line, as the demo's producer sends them. The gzip header carries no timestamp, so the file is
byte-identical on every run.
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

import orjson

from stream_monitor.synthetic import demo_streams, generate_events

HERE = Path(__file__).resolve().parent


def write_demo_events(path: Path, events_per_model: int = 20_000, seed: int = 42) -> int:
    """Write the interleaved demo streams to ``path`` (gzipped JSONL); return the number of lines."""
    fraud, churn = demo_streams(events_per_model, seed)
    n = 0
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as out:
        for a, b in zip(generate_events(fraud), generate_events(churn), strict=True):
            out.write(orjson.dumps(a) + b"\n" + orjson.dumps(b) + b"\n")
            n += 2
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="events per model (default 20000)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=HERE / "demo-events.jsonl.gz")
    args = parser.parse_args()
    n = write_demo_events(args.out, args.events, args.seed)
    print(f"wrote {n} events to {args.out} ({args.out.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
