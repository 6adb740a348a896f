"""bench/latency_trace.py wraps runtime methods by name: it must keep up with them (it broke once, silently).

Run in a subprocess (``install`` patches modules for the whole process): the wrapped calls are
made as ``run`` makes them, and the trace written at exit holds their records.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import secrets, sys
    from types import SimpleNamespace
    import orjson
    from kafka import TopicPartition
    from kafka.future import Future
    from bench.latency_trace import install
    install(sys.argv[1])
    from stream_monitor.config import load_config
    from stream_monitor.core import exchange
    from stream_monitor.runtime.forward import Forwarder
    from stream_monitor.runtime.poison import PoisonGuard

    cfg = load_config(None, env={}, overrides={"kafka.group_id": "g", "kafka.input_topics": ["in"],
                      "state.hmac_secret": secrets.token_hex(32), "metrics.enabled": False, "kafka.progress_interval_ms": 1})
    sent = []
    producer = SimpleNamespace(send=lambda topic, key=None, value=b"", partition=0, **_: sent.append(value) or Future())
    checkpoint = SimpleNamespace(ensure_transaction=lambda: None, max_record_bytes=1_000_000, processed=lambda tp, off: None)
    fw = Forwarder(cfg, cfg.monitor_spec(), PoisonGuard(), checkpoint, lambda dl: None, lambda: producer)
    fw.partitions = 3
    recs = [SimpleNamespace(value=orjson.dumps({"model": "m", "ts": 1000 + i, "features": {"x": 1.0}}), offset=i, timestamp=1000 + i, headers=None)
            for i in range(3)]
    fw.forward(TopicPartition("in", 0), recs)
    fw.release()
    fw.announce(lambda tp: True, [TopicPartition("in", 0)], lambda tp: 6.5)  # as run announces a caught-up partition
    got = [exchange.decode_record(v, ("g-by-model", 0, i)) for i, v in enumerate(sent)]  # as the judge reads them
    assert any(isinstance(g, exchange.Progress) for g in got) and any(not isinstance(g, exchange.Progress) for g in got)
    assert {g.quiet_ms for g in got if isinstance(g, exchange.Progress) and g.caught_up} == {6500}
    """
)


def test_the_trace_wraps_what_run_calls_and_writes_its_records(tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    script = tmp_path / "traced.py"
    script.write_text(SCRIPT)
    done = subprocess.run([sys.executable, str(script), str(trace)], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    kinds = {json.loads(line)[0] for line in trace.read_text().splitlines()}
    assert {"fwd", "prog"} <= kinds
    fwd = [json.loads(line) for line in trace.read_text().splitlines() if json.loads(line)[0] == "fwd"]
    assert [r[2:] for r in fwd] == [[0, 2]]  # input partition 0, its last offset read
