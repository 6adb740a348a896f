"""Hot-path optimisations must not change detection: a fixed seeded stream gives golden output.

The stream (built below, fully deterministic) interleaves the demo's drifting ``fraud-v3`` and
stationary ``churn-v1`` with two smaller models that exercise the other channel kinds (inline
labels and errors, named prediction outputs, booleans) and a sprinkle of odd records: invalid JSON,
schema violations, NaN/Infinity, wrong types, ISO/string/missing timestamps, int event ids. It goes
through :class:`PartitionMonitor` in irregular batches, with a state round trip in the middle, and
the test compares with ``tests/data/optimisation_golden.json`` (generated from the code before
issue 6's optimisations):

- every alert payload, byte for byte;
- every dead letter (reason, detail, offset);
- the channel-value count;
- a SHA-256 over every detector evaluation (statistic and threshold as exact float reprs).

Regenerate only for an intended change of detection, and say so in the commit:
``python -m tests.core.test_optimisation_equivalence --write``.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from pathlib import Path
from typing import Any

import orjson

from stream_monitor.core.events import SourcePosition
from stream_monitor.core.monitor import InputRecord, PartitionMonitor
from stream_monitor.core.spec import MonitorSpec
from stream_monitor.synthetic import StreamSpec, demo_streams, generate_events

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "optimisation_golden.json"
N = 24_000  # events per demo model, as in tests/integration/test_run_e2e.py
BATCHES = (1, 7, 500, 1234, 5000, 64, 2999)
ROUND_TRIP_AT = 30_000  # records processed before the state goes through state_items and back

ODD: list[bytes] = [
    b"{not json",
    b'{"model": 5}',
    b'{"model": ""}',
    b'{"model": "fraud-v3", "ts": "yesterday"}',
    "\u00e9".encode("latin-1"),
    b"[1, 2]",
    b'{"model": "fraud-v3", "features": {"x0": NaN, "x1": Infinity}, "prediction": -Infinity}',
    b'{"model": "fraud-v3", "features": {"x0": "high", "c0": 3}}',
    b'{"model": "fraud-v3", "features": {"x2": [1, 2]}}',
    b'{"model": "fraud-v3", "features": {"x2": null, "x5": true}, "latency_ms": "slow"}',
    b'{"model": "churn-v1", "ts": "2026-01-01T00:00:01.5Z", "event_id": 17, "features": {"x0": 1e308}}',
    b'{"model": "churn-v1", "ts": "1767225600000", "model_version": 3, "prediction": {"a": 1}}',
    b'{"model": "churn-v1", "features": {"c1": false}, "extra": {"nested": [1]}}',
    b'{"model": "churn-v1", "ts": -5}',
    b'{"model": "churn-v1", "ts": true}',
    b'{"model": "churn-v1", "prediction": [0.1]}',
    b'{"model": "fraud-v3", "label": 1, "prediction": 0.9, "latency_ms": NaN}',
    b'{"model": "x' + b"y" * 300 + b'"}',
]


def _labelled(n: int) -> list[dict[str, Any]]:
    """A model logging labels inline, with a boolean and an int feature; errors drift halfway."""
    rng = random.Random(5)
    out = []
    for i, e in enumerate(generate_events(StreamSpec(model="labelled-v1", n_events=n, seed=9, n_numeric=2, n_categorical=1))):
        p = e["prediction"]
        flip = rng.random() < (0.1 if i < n // 2 else 0.4)
        e["label"] = int((p > 0.5) != flip)
        e["features"]["flag"] = rng.random() < 0.2
        e["features"]["count"] = rng.randint(0, 5)
        out.append(e)
    return out


def _multi_output(n: int) -> list[dict[str, Any]]:
    """A classifier with named outputs, no features object on some records (prediction-only)."""
    out = []
    for i, e in enumerate(generate_events(StreamSpec(model="multi-v1", n_events=n, seed=11, n_numeric=1, n_categorical=1))):
        p = e["prediction"] if i < n * 2 // 3 else min(1.0, e["prediction"] + 0.3)
        e["prediction"] = {"y_pred_proba": p, "y_pred": int(p > 0.5), "y_class": "yes" if p > 0.5 else "no"}
        if i % 3 == 0:
            del e["features"]
        out.append(e)
    return out


def build_records() -> list[InputRecord]:
    fraud, churn = demo_streams(N, 42)
    streams = [list(generate_events(fraud)), list(generate_events(churn)), _labelled(N // 2), _multi_output(N // 2)]
    rng = random.Random(1234)
    raws: list[bytes] = []
    cursors = [0] * len(streams)
    while any(c < len(s) for c, s in zip(cursors, streams, strict=True)):
        for k, s in enumerate(streams):
            if cursors[k] < len(s):
                raws.append(orjson.dumps(s[cursors[k]]))
                cursors[k] += 1
        if rng.random() < 0.01:
            raws.append(rng.choice(ODD))
    t0 = 1_767_225_600_000
    return [InputRecord(raw, SourcePosition("golden", 0, i, t0 + i)) for i, raw in enumerate(raws)]


def _num(x: Any) -> str:
    return "None" if x is None else repr(float(x))


def run(records: list[InputRecord]) -> dict[str, Any]:
    spec = MonitorSpec()
    monitor = PartitionMonitor(spec, partition=0)
    alerts: list[str] = []
    dead: list[list[Any]] = []
    evals = hashlib.sha256()
    n_evals = 0
    channel_values = 0
    i = 0
    b = 0
    round_tripped = False
    while i < len(records):
        if not round_tripped and i >= ROUND_TRIP_AT:
            monitor = PartitionMonitor.from_state_items(spec, 0, monitor.state_items(only_dirty=False))
            round_tripped = True
        size = BATCHES[b % len(BATCHES)]
        b += 1
        result = monitor.process(records[i : i + size], record_evaluations=True)
        i += size
        alerts.extend(a.payload.decode() for a in result.alerts)
        dead.extend([str(d.reason), d.detail, d.position.offset if d.position else None, d.processed] for d in result.dead_letters)
        channel_values += result.channel_values
        for e in result.evaluations or []:
            evals.update(f"{e.model}|{e.channel}|{e.detector}|{e.event_time_ms}|{_num(e.statistic)}|{_num(e.threshold)}|{e.breached}\n".encode())
            n_evals += 1
    return {
        "records": len(records),
        "channel_values": channel_values,
        "evaluations": n_evals,
        "evaluations_sha256": evals.hexdigest(),
        "dead_letters": dead,
        "alerts": alerts,
    }


def test_detection_identical_to_golden() -> None:
    golden = json.loads(GOLDEN.read_text())
    got = run(build_records())
    assert got["records"] == golden["records"]
    assert got["dead_letters"] == golden["dead_letters"]
    assert got["channel_values"] == golden["channel_values"]
    assert len(got["alerts"]) == len(golden["alerts"])
    for k, (a, g) in enumerate(zip(got["alerts"], golden["alerts"], strict=True)):
        assert a == g, f"alert {k} differs:\n got    {a}\n golden {g}"
    assert got["evaluations"] == golden["evaluations"]
    assert got["evaluations_sha256"] == golden["evaluations_sha256"], "a detector statistic changed"


def test_golden_covers_the_interesting_paths() -> None:
    golden = json.loads(GOLDEN.read_text())
    alerts = [orjson.loads(a) for a in golden["alerts"]]
    assert {a["model"] for a in alerts} >= {"fraud-v3", "labelled-v1", "multi-v1"}
    assert {a["status"] for a in alerts} == {"firing", "resolved"}
    assert {a["kind"] for a in alerts} >= {"data_drift", "data_quality", "prediction_drift", "performance"}
    reasons = {d[0] for d in golden["dead_letters"]}
    assert reasons >= {"invalid_json", "schema_violation", "invalid_timestamp", "undecodable", "not_an_object", "non_finite_value", "wrong_type"}


if __name__ == "__main__":
    if "--write" not in sys.argv:
        sys.exit("usage: python -m tests.core.test_optimisation_equivalence --write")
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(json.dumps(run(build_records()), indent=1) + "\n")
    print(f"wrote {GOLDEN}")
