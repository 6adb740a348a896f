"""Scale-out with one hot model: ``python -m bench.scaleout``.

    python -m bench.scaleout [--events 200000] [--partitions 6] [--instances 1,2,3] [--no-groups]
                             [--bootstrap H:P] [--out bench/results/scaleout.json] [--settle 12]

Without ``--bootstrap`` it starts its own broker the way ``bench.run`` does. ``--events`` events of
ONE model (the demo's ``fraud-v3`` stream from ``stream_monitor.synthetic``) are produced, keyed
by their event id (a request id), onto a fresh topic of ``--partitions`` partitions BEFORE any
timing. Then, for each instance count k, k ``python -m stream_monitor run`` processes (each its
own OS process, a fresh consumer group per k, the default exactly-once and
``state_partitioning: model``) are started together; the bench
waits until the group's lag on the input topic AND on its internal ``<group>-by-model`` topic is
0, then reads every instance's CPU seconds (utime + stime from ``/proc/<pid>/stat``) and stops
them. Wall time runs from the start of the processes to lag 0 (interpreter start-up and group
joins included, alike for every k), and from the group's first commit to lag 0 (the rate the
instances reach once running; the lag is probed every ~0.5 s); the start-up CPU of one idle instance is measured first, so
the table can show CPU net of it.

Every instance count k > 1 runs twice: with the model judged whole (``judging_groups: 1``) and
with its channels split over k judging groups (``models.fraud-v3.judging_groups: k``, passed as a
``--config`` file; ``--no-groups`` skips these runs).

The table: instances, judging groups, records/s, CPU s per instance, and the busiest instance's share of the
instances' total CPU; the bare consumption rate of the same topic (``bench.run.consume``) is given
for comparison.

``SCALEOUT_PROFILE=DIR`` runs every instance under ``cProfile`` (``-o DIR/k<k>-i<i>.prof``;
the monitor's loop runs on the main thread) and prints each one's top functions by own time:
this slows the instances down, so rates of a profiled run are not comparable.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.run import REPO_ROOT, STATE_SECRET, OwnBroker, _cpu_seconds, consume, create_topic, say

DEFAULT_OUT = REPO_ROOT / "bench" / "results" / "scaleout.json"
PROBE_TIMEOUT_MS = 30_000
MODEL = "fraud-v3"  # the one (hot) model of the workload


def fraud_events(n: int) -> list[tuple[bytes, bytes]]:
    """(key, value) pairs: the demo's fraud-v3 stream, keyed by event id."""
    import orjson

    from stream_monitor.synthetic import demo_streams, generate_events

    fraud, _ = demo_streams(n, 42)
    from bench.workload import kept

    return [(e["event_id"].encode(), kept(orjson.dumps(e))) for e in generate_events(fraud)]


def produce_keyed(bootstrap: str, topic: str, pairs: list[tuple[bytes, bytes]]) -> float:
    """Produce every (key, value) with the default partitioner; seconds taken."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=20, batch_size=1 << 20, max_request_size=8 << 20)
    started = time.perf_counter()
    for key, value in pairs:
        producer.send(topic, key=key, value=value)
    producer.flush(timeout=300)
    producer.close()
    return time.perf_counter() - started


def group_lag(bootstrap: str, group: str, topics: list[str]) -> int | None:
    """Records of ``topics`` not yet committed by ``group``; None while nothing is committed.

    A transaction's commit marker takes an offset but is no record: a short tail (≤ 50 offsets)
    is read with ``read_committed`` and only records are counted.
    """
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    from stream_monitor.runtime.kafka_compat import topic_partitions

    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=PROBE_TIMEOUT_MS)
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, isolation_level="read_committed")
    except KafkaError:
        return None
    try:
        committed = admin.list_group_offsets({group: None}).get(group, {})
        if not committed:
            return None
        found = topic_partitions(consumer, topics, PROBE_TIMEOUT_MS / 1000)  # KafkaTimeoutError is a KafkaError
        tps = [TopicPartition(t, p) for t in topics for p in sorted(found[t])]
        ends = consumer.end_offsets(tps)
        lag = 0
        for tp in tps:
            c = committed.get(tp)
            start = c.offset if c is not None and c.offset >= 0 else 0
            if ends[tp] - start > 50:
                lag += ends[tp] - start
            elif ends[tp] > start:
                lag += _records_between(consumer, tp, start, ends[tp])
        return lag
    except KafkaError:
        return None
    finally:
        admin.close()
        consumer.close()


def _records_between(consumer: Any, tp: Any, start: int, end: int) -> int:
    """Committed data records in [start, end) of ``tp`` (at least 1 when it cannot tell)."""
    consumer.assign([tp])
    consumer.seek(tp, start)
    n = 0
    deadline = time.monotonic() + PROBE_TIMEOUT_MS / 1000
    while consumer.position(tp) < end and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=200).values():
            n += sum(1 for r in records if r.offset < end)
    return n if consumer.position(tp) >= end else max(n, 1)


def dead_letters(bootstrap: str, topic: str, timeout_s: float = 120.0) -> dict[str, int]:
    """Committed records of the dead-letter ``topic``, counted by their ``reason`` header."""
    from kafka import KafkaConsumer, TopicPartition

    from stream_monitor.runtime.kafka_compat import topic_partitions

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, isolation_level="read_committed")
    counts: dict[str, int] = {}
    try:
        tps = [TopicPartition(topic, p) for p in sorted(topic_partitions(consumer, [topic], timeout_s)[topic])]
        if not tps:
            return counts
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < end[tp] for tp in tps) and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200, max_records=5000).values():
                for r in records:
                    reason = dict(r.headers or []).get("reason", b"?").decode()
                    counts[reason] = counts.get(reason, 0) + 1
        return counts
    finally:
        consumer.close()


FETCH_BYTES: int | None = None  # --fetch-bytes: max_partition_fetch_bytes of the instances' consumers


def instance_env(bootstrap: str, topic: str, group: str, name: str, idle_timeout_ms: int) -> dict[str, str]:
    """The environment of one ``stream-monitor run`` instance (no inherited STREAM_MONITOR_*)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAM_MONITOR_")}
    env.update(
        {
            "STREAM_MONITOR_BOOTSTRAP_SERVERS": bootstrap,
            "STREAM_MONITOR_INPUT_TOPIC": topic,
            "STREAM_MONITOR_ALERTS_TOPIC": f"{group}-alerts",
            "STREAM_MONITOR_DLQ_TOPIC": f"{group}-dlq",
            "STREAM_MONITOR_GROUP_ID": group,
            "STREAM_MONITOR_STATE_SECRET": STATE_SECRET,
            "STREAM_MONITOR_INSTANCE": name,
            "STREAM_MONITOR_METRICS__ENABLED": "false",
            "STREAM_MONITOR_KAFKA__IDLE_TIMEOUT_MS": str(idle_timeout_ms),
            "STREAM_MONITOR_KAFKA__SESSION_TIMEOUT_MS": "10000",
            "PYTHONPATH": str(REPO_ROOT),
        }
    )
    if FETCH_BYTES is not None:
        env["STREAM_MONITOR_KAFKA__CLIENT_OPTIONS"] = json.dumps({"consumer": {"max_partition_fetch_bytes": FETCH_BYTES}})
    return env


def start_instances(bootstrap: str, topic: str, group: str, k: int, log_dir: Path, profile_dir: Path | None, idle_timeout_ms: int = 300_000, groups: int = 1) -> list[subprocess.Popen[bytes]]:
    """Start ``k`` ``python -m stream_monitor run`` processes of one group (logs to ``log_dir``); the model judged in ``groups`` judging groups."""
    procs = []
    config = None
    if groups > 1:
        config = log_dir / f"{group}.yaml"
        config.write_text(f"models:\n  {MODEL}:\n    judging_groups: {groups}\n")
    for i in range(k):
        cmd = [sys.executable]
        if profile_dir is not None:
            cmd += ["-m", "cProfile", "-o", str(profile_dir / f"k{k}-g{groups}-i{i}.prof")]
        cmd += ["-m", "stream_monitor", "run"] + (["--config", str(config)] if config is not None else [])
        log = open(log_dir / f"{group}-{i}.log", "wb")  # noqa: SIM115 - closed with the process
        procs.append(subprocess.Popen(cmd, env=instance_env(bootstrap, topic, group, f"i{i}", idle_timeout_ms), cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        log.close()
    return procs


def stop_instances(procs: list[subprocess.Popen[bytes]]) -> list[int | None]:
    """SIGTERM every instance (a clean stop: final commit, profile written) and wait for it."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    codes = []
    for p in procs:
        try:
            codes.append(p.wait(90))
        except subprocess.TimeoutExpired:
            p.kill()
            codes.append(p.wait(30))
    return codes


def startup_cpu(bootstrap: str, log_dir: Path, settle_s: float = 12.0) -> float:
    """CPU seconds of one idle instance after start-up and its group join (empty topic)."""
    topic = create_topic(bootstrap, f"scaleout-idle-{uuid.uuid4().hex[:8]}", 1)
    procs = start_instances(bootstrap, topic, f"scaleout-idle-{uuid.uuid4().hex[:8]}", 1, log_dir, None)
    try:
        time.sleep(settle_s)
        if procs[0].poll() is not None:
            raise RuntimeError(f"idle instance exited with {procs[0].returncode}; see {log_dir}")
        return _cpu_seconds(procs[0].pid)
    finally:
        stop_instances(procs)


def run_k(bootstrap: str, topic: str, k: int, n: int, log_dir: Path, profile_dir: Path | None, timeout_s: float, idle_timeout_ms: int, groups: int = 1) -> dict[str, Any]:
    """k instances of one fresh group until the group's lag (input + internal topic) is 0; the model in ``groups`` judging groups."""
    group = f"scaleout-k{k}-g{groups}-{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    procs = start_instances(bootstrap, topic, group, k, log_dir, profile_dir, idle_timeout_ms, groups)
    cpu: list[float] = []
    lag: int | None = None
    first_commit: float | None = None
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            for i, p in enumerate(procs):
                if p.poll() is not None:
                    raise RuntimeError(f"instance {i} of {group} exited with {p.returncode}; see {log_dir}/{group}-{i}.log")
            lag = group_lag(bootstrap, group, [topic, f"{group}-by-model"])
            if lag is not None and first_commit is None:
                first_commit = time.perf_counter() - started  # the first transaction of the group is in
            if lag == 0:
                cpu = [_cpu_seconds(p.pid) for p in procs]  # before the stop: no shutdown work counted
                seconds = time.perf_counter() - started
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{group} still lags ({lag}) after {timeout_s} s")
            time.sleep(0.5)
    finally:
        codes = stop_instances(procs)
    after = seconds - (first_commit or 0.0)
    return {
        "instances": k, "judging_groups": groups, "group": group, "records": n, "seconds": seconds, "records_per_s": n / seconds,
        "first_commit_seconds": first_commit, "records_per_s_after_first_commit": n / after if after > 0 else None,
        "cpu_seconds": cpu, "exit_codes": codes, "dead_letters": dead_letters(bootstrap, f"{group}-dlq"),
    }


def print_profiles(profile_dir: Path, top: int = 18) -> None:
    """Each instance's top functions by own time, and its total."""
    for path in sorted(profile_dir.glob("*.prof")):
        stats = pstats.Stats(str(path))
        print(f"\n== {path.name}: {stats.total_tt:.1f} s profiled (main thread)")  # type: ignore[attr-defined]
        stats.sort_stats("tottime").print_stats(top)


def table(report: dict[str, Any]) -> str:
    """The markdown table of a report."""
    base = report["startup_cpu_seconds"]
    bare = report["bare_consumption"]["records_per_s"]
    lines = [
        "| instances | judging groups | records/s (from start) | records/s (from first commit) | vs bare consumption | CPU s per instance | net of start-up | busiest share of CPU (net) | dead letters |",
        "|---:|---:|---:|---:|---:|---|---|---:|---|",
    ]
    for r in report["runs"]:
        cpu = r["cpu_seconds"]
        net = [max(c - base, 0.0) for c in cpu]
        share = max(cpu) / sum(cpu)
        share_net = max(net) / sum(net) if sum(net) > 0 else 0.0
        lines.append(
            f"| {r['instances']} | {r.get('judging_groups', 1)} | {r['records_per_s']:,.0f} | {r['records_per_s_after_first_commit'] or 0:,.0f} | "
            f"{(r['records_per_s_after_first_commit'] or 0) / bare:.2f} | "
            f"{' / '.join(f'{c:.1f}' for c in cpu)} | {' / '.join(f'{c:.1f}' for c in net)} | "
            f"{100 * share:.0f} % ({100 * share_net:.0f} %) | "
            f"{', '.join(f'{k} {v:,}' for k, v in sorted(r['dead_letters'].items())) or 'none'} |"
        )
    lines.append(f"\nBare consumption (kafka-python poll only, one consumer, all partitions): {bare:,.0f} records/s; "
                 f"start-up CPU of one idle instance: {base:.1f} s.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Produce once, run 1, 2, 3 instances, print the table, write the JSON report."""
    ap = argparse.ArgumentParser(prog="python -m bench.scaleout", description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--instances", default="1,2,3", help="comma-separated instance counts")
    ap.add_argument("--bootstrap", help="use this broker (host:port) instead of starting one")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds each run may take to reach lag 0")
    ap.add_argument("--idle-timeout-ms", type=int, default=300_000, help="kafka.idle_timeout_ms of the instances (the last resort; readers announce when they are caught up)")
    ap.add_argument("--fetch-bytes", type=int, help="max_partition_fetch_bytes of the instances (default: run's own, 8 MiB)")
    ap.add_argument("--settle", type=float, default=12.0, help="seconds the idle instance runs before its start-up CPU is read")
    ap.add_argument("--no-groups", action="store_true", help="skip the runs with the model split over k judging groups")
    args = ap.parse_args(argv)
    global FETCH_BYTES
    FETCH_BYTES = args.fetch_bytes
    profile_dir = Path(os.environ["SCALEOUT_PROFILE"]) if os.environ.get("SCALEOUT_PROFILE") else None
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
    log_dir = Path(tempfile.mkdtemp(prefix="bench-scaleout-"))
    broker = None
    bootstrap = args.bootstrap
    if bootstrap is None:
        broker = OwnBroker()
        bootstrap = broker.start()
    try:
        say(f"generating {args.events:,} fraud-v3 events")
        pairs = fraud_events(args.events)
        topic = create_topic(bootstrap, f"scaleout-{uuid.uuid4().hex[:8]}", args.partitions)
        say(f"producing to {topic} ({args.partitions} partitions, keyed by event id): {produce_keyed(bootstrap, topic, pairs):.1f} s")
        del pairs
        bare = consume(bootstrap, topic, args.partitions, args.events)
        bare["records_per_s"] = bare["records"] / bare["seconds"]
        say(f"bare consumption: {bare['records_per_s']:,.0f} records/s")
        base = startup_cpu(bootstrap, log_dir, args.settle)
        say(f"start-up CPU of an idle instance: {base:.2f} s")
        runs = []
        counts = [int(x) for x in args.instances.split(",")]
        plan = [(k, 1) for k in counts] + ([] if args.no_groups else [(k, k) for k in counts if k > 1])
        for k, groups in plan:
            say(f"{k} instance(s), {groups} judging group(s)")
            r = run_k(bootstrap, topic, k, args.events, log_dir, profile_dir, args.timeout, args.idle_timeout_ms, groups)
            say(f"{k} instance(s), {groups} group(s): {r['records_per_s']:,.0f} records/s, CPU {[round(c, 1) for c in r['cpu_seconds']]}, dead letters {r['dead_letters']}")
            runs.append(r)
        report = {"events": args.events, "partitions": args.partitions, "idle_timeout_ms": args.idle_timeout_ms, "fetch_bytes": args.fetch_bytes, "load_average": os.getloadavg(), "nproc": os.cpu_count(),
                  "bare_consumption": bare, "startup_cpu_seconds": base, "runs": runs, "profiled": profile_dir is not None, "logs": str(log_dir)}
    finally:
        if broker is not None:
            broker.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(table(report))
    if profile_dir is not None:
        print_profiles(profile_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
