"""The peers of issue 13 inside ``python -m bench.run``: (g) and (h) as subprocesses, and the
exactly-once run with a label topic (changelog volume of the label join).

- (g) ``bench.peers loop``: kafka-python + orjson + River ADWIN/Page-Hinkley per numeric feature,
  committing every 5,000 records; (g-file) the same loop over the JSONL file of (f);
- (h) ``bench.peers quix``: the same on Quix Streams, at-least-once and exactly-once (skipped with
  a note when ``quixstreams`` is not installed: ``pip install -e '.[bench]'``);
- (e+labels) ``MonitorApp`` exactly-once with ``kafka.label_topic`` set, on a fresh workload of
  which every other event gets a label event (co-partitioned with its inference event), produced
  once the inference event is committed (labels trail their predictions).
"""

from __future__ import annotations

import importlib.util
import json
import resource
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

REPO_ROOT = Path(__file__).resolve().parents[1]

PEER_LABELS = {
    "g": "hand-written loop: kafka-python + orjson + River ADWIN & Page-Hinkley per numeric feature, commit every 5k",
    "g-file": "the hand-written loop (g) over the JSONL file of (f)",
    "h-alo": "the same on Quix Streams (+ River), at-least-once",
    "h-eos": "the same on Quix Streams (+ River), exactly-once",
    "e+labels": "stream-monitor run, exactly-once, with a label topic (every other event labelled)",
}


def quix_missing() -> str | None:
    """Why the Quix Streams rows cannot run here, or None when they can."""
    for mod in ("quixstreams", "confluent_kafka"):
        if importlib.util.find_spec(mod) is None:
            return f"`{mod}` is not installed (it comes with the `bench` extra: pip install -e '.[bench]'; `make bench` does it)"
    return None


def children_cpu() -> float:
    """User + system CPU seconds of this process's waited-for children so far."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_peer(variant: str, *args: str, timeout_s: float = 1800.0) -> dict[str, Any]:
    """``python -m bench.peers VARIANT ARGS``; its JSON line (records, seconds, cpu_seconds, alerts)."""
    cmd = [sys.executable, "-W", "ignore", "-m", "bench.peers", variant, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT, timeout=timeout_s, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise RuntimeError(f"bench.peers {variant} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_peers(bootstrap: str, topic: str, events: int, jsonl: Path, work_dir: Path, timeout_s: float) -> dict[str, dict[str, Any]]:
    """Rows (g), (g-file), (h-alo), (h-eos) on the records of (a)-(f)."""
    out: dict[str, dict[str, Any]] = {}

    def kafka_args(tag: str) -> list[str]:
        uid = uuid.uuid4().hex[:8]
        return ["--bootstrap", bootstrap, "--topic", topic, "--records", str(events), "--alerts-topic", f"bench-{tag}-alerts-{uid}", "--group", f"bench-{tag}-{uid}"]

    out["g"] = run_peer("loop", *kafka_args("loop"), timeout_s=timeout_s)
    out["g"]["note"] = "kafka-python defaults but for the group settings; producer flushed and offsets committed every 5,000 records"
    out["g-file"] = run_peer("file", "--input", str(jsonl), "--alerts-out", str(work_dir / "loop-alerts.jsonl"), timeout_s=timeout_s)
    out["g-file"]["note"] = "reading + orjson + River, alerts to a file; timed inside the process (no interpreter start-up), as (f)"
    missing = quix_missing()
    for key, eos in (("h-alo", False), ("h-eos", True)):
        if missing:
            out[key] = {"skipped": f"not measured: {missing}"}
            continue
        out[key] = run_peer("quix", *kafka_args(key), *(["--exactly-once"] if eos else []), timeout_s=timeout_s)
        out[key]["note"] = f"quixstreams {_version('quixstreams')}, confluent-kafka {_version('confluent_kafka')}; commit_every 5,000 (and Quix's 5 s interval)"
    return out


def _version(module: str) -> str:
    try:
        from importlib.metadata import version

        return version(module.replace("_", "-"))
    except Exception:  # noqa: BLE001 - a version string is only decoration
        return "?"


def label_events(values: list[bytes], every: int = 2) -> list[tuple[int, bytes]]:
    """(index of the inference event, label event) for every ``every``-th event: label 1 when the
    prediction is above 0.5, else 0; same event_id, model and ts."""
    from bench.workload import kept

    out = []
    for i in range(0, len(values), every):
        e = orjson.loads(values[i])
        label = {"event_id": e["event_id"], "model": e["model"], "ts": e["ts"], "label": int(e["prediction"] > 0.5)}
        out.append((i, kept(orjson.dumps(label))))
    return out


def run_labelled(bootstrap: str, partitions: int, events: int, timeout_s: float) -> dict[str, Any]:
    """(e+labels): ``events`` fresh events, exactly-once, label topic on; every other event's label
    is produced once its inference event is committed (labels trail their predictions, as in
    production), by a thread whose own CPU time, and its producer's network thread's, is subtracted from the run's."""
    from kafka import KafkaProducer

    from bench.run import _cpu_seconds, create_topic, produce_all, run_app
    from bench.workload import throughput_events

    values = throughput_events(events)
    labels = label_events(values)
    uid = uuid.uuid4().hex[:8]
    topic = create_topic(bootstrap, f"bench-labelled-input-{uid}", partitions)
    label_topic = create_topic(bootstrap, f"bench-labels-{uid}", partitions)
    produce_all(bootstrap, topic, values, partitions)
    # one producer, partition i % partitions, fresh topic: event i is at offset i // partitions
    todo: list[list[tuple[int, bytes]]] = [[(i // partitions, v) for i, v in labels if i % partitions == p] for p in range(partitions)]
    latest: dict[int, int] = {}
    progress = threading.Condition()
    stop = threading.Event()
    feeder_cpu: list[float] = []

    def on_commit(committed: dict[Any, int]) -> None:
        with progress:
            latest.update({tp.partition: off for tp, off in committed.items() if tp.topic == topic})
            progress.notify()

    def feed() -> None:
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=5)
        sent = [0] * partitions
        try:
            while not stop.is_set() and any(sent[p] < len(todo[p]) for p in range(partitions)):
                with progress:
                    progress.wait(0.2)
                    upto = dict(latest)
                for p in range(partitions):
                    while sent[p] < len(todo[p]) and todo[p][sent[p]][0] < upto.get(p, 0):
                        producer.send(label_topic, value=todo[p][sent[p]][1], partition=p)
                        sent[p] += 1
                producer.flush()
        finally:
            # the producer's network thread did its sends: its CPU is the feeder's too (read while it runs)
            sender = getattr(getattr(producer, "_sender", None), "native_id", None)
            feeder_cpu.append(time.thread_time() + (_cpu_seconds("self", sender) if sender is not None else 0.0))
            producer.close()

    feeder = threading.Thread(target=feed, name="bench-label-feeder", daemon=True)
    feeder.start()
    input_bytes = sum(map(len, values)) + sum(len(v) for _, v in labels)
    try:
        r = run_app(bootstrap, topic, partitions, events, True, timeout_s, input_bytes=input_bytes, label_topic=label_topic,
                    labels=len(labels), on_commit=on_commit)
    finally:
        stop.set()
        feeder.join(30)
    if feeder_cpu and r.get("cpu_seconds"):
        r["cpu_seconds"] = max(r["cpu_seconds"] - feeder_cpu[0], 1e-9)
    r["labels"] = len(labels)
    r["labels_unmatched"] = sum(n for reason, n in r["invalid_by_reason"].items() if "label_unmatched" in str(reason).lower())
    r["late"] = sum(n for reason, n in r["invalid_by_reason"].items() if str(reason).lower().endswith("late"))
    r["note"] = (
        f"{events:,} fresh events of the same shape produced before timing; {len(labels):,} label events (every other event, same "
        f"partition), each produced once its inference event's offset is committed; {r['labels_unmatched']:,} labels unmatched, "
        f"{r['late']:,} rows dead-lettered as late"
    )
    if r["late"] or (r["alerts"] == 0 and events >= 20_000):  # the workload drifts: a full-size run that judged raises alerts
        r["note"] += "; SUSPECT: " + ("rows came late" if r["late"] else "no alert: were the rows judged?")
    return r
