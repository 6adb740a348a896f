"""Exactly-once with reads-only commits: paced input (no backlog, so forwarded rows commit in reads-only
transactions between full checkpoints), ``stream-monitor run`` killed -9 twice mid-stream and restarted;
the committed alerts must equal those of an uninterrupted run over the same events.

``python -m bench.latency_kill [BOOTSTRAP]`` (an experiment, not a CI test: under heavy CPU contention a
caught-up announcement based on a stale high watermark can make rows ``late`` in either run, which
differs between runs for reasons unrelated to the commits).
"""
import collections, os, signal, subprocess, sys, tempfile, time, uuid
from pathlib import Path
import orjson
from kafka import KafkaProducer, KafkaConsumer, TopicPartition
from bench.run import latency_stream, create_topic, _wait_judged, STATE_SECRET, REPO_ROOT
from stream_monitor.runtime.kafka_compat import topic_partitions
RATE = 1250.0  # about a quarter of the exactly-once rate on a busy 2-core machine: no backlog
SECS = 30.0

def monitor(topic, alerts, group, log):
    cfg = work / "cfg.yaml"; cfg.write_text("max_lateness_seconds: 0.5\n")
    env = {**os.environ, "STREAM_MONITOR_STATE_SECRET": STATE_SECRET, "STREAM_MONITOR_DLQ_TOPIC": f"{alerts}-dlq", "STREAM_MONITOR_INSTANCE": "kp"}
    return subprocess.Popen([sys.executable, "-m", "stream_monitor", "--log-format", "json", "run", "--config", str(cfg), "--bootstrap-servers", BS,
        "--input-topic", topic, "--alerts-topic", alerts, "--group-id", group, "--metrics-port", "0"], stdout=open(log, "ab"), stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT)

def read(topic):
    c = KafkaConsumer(bootstrap_servers=BS, group_id=None, enable_auto_commit=False, isolation_level="read_committed", consumer_timeout_ms=4000)
    tps = [TopicPartition(topic, p) for p in sorted(topic_partitions(c, [topic])[topic])]  # bounded (kafka_compat)
    c.assign(tps); c.seek_to_beginning(*tps)
    out = []
    for r in c:
        d = orjson.loads(r.value)
        out.append((d["model"], d["feature"], d["detector"], d["status"], d["severity"], d["event_time"], d["statistic"], d["source"]["partition"], d["source"]["offset"]))
    c.close(); return out

def run(kills):
    uid = uuid.uuid4().hex[:8]
    topic = create_topic(BS, f"kp-in-{uid}", 4); alerts, group = f"kp-alerts-{uid}", f"kp-{uid}"; log = work / f"{uid}.log"
    proc = monitor(topic, alerts, group, log)
    while b'"partitions_assigned"' not in (log.read_bytes() if log.exists() else b""): time.sleep(0.1)
    time.sleep(1.0)
    prod = KafkaProducer(bootstrap_servers=BS, acks="all", linger_ms=2, enable_idempotence=True)
    t0 = time.perf_counter(); killed = 0
    for i, v in enumerate(values):
        if i % 50 == 0:
            ahead = t0 + i / RATE - time.perf_counter()
            if ahead > 0: time.sleep(ahead)
            if killed < len(kills) and i >= kills[killed] * len(values):
                proc.send_signal(signal.SIGKILL); proc.wait(); killed += 1
                print(f"  kill -9 #{killed} at record {i}", flush=True)
                proc = monitor(topic, alerts, group, log)
        prod.send(topic, value=v, partition=model_of[i] % 4)
    prod.flush(); prod.close()
    _wait_judged(BS, group, topic, len(values), 180)
    time.sleep(2); proc.terminate(); proc.wait(60)
    return read(alerts), log

if __name__ == "__main__":
    BS = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9092"
    values, model_of, info = latency_stream(RATE, SECS, 4, start_ms=1_790_000_000_000)  # the same events in both runs
    work = Path(tempfile.mkdtemp(prefix="latency-kill-"))
    ref, _ = run([])
    got, log = run([0.35, 0.7])
    cr, cg = collections.Counter(ref), collections.Counter(got)
    print("reference alerts", len(ref), "with kills", len(got), "equal", cr == cg)
    print("missing", list((cr - cg).elements())[:5])
    print("extra", list((cg - cr).elements())[:5])
    print("state restores", log.read_text().count('"state_restored"'))
    raise SystemExit(0 if cr == cg else 1)
