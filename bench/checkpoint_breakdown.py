"""Where the checkpoint time of (e+labels) goes: ``python -m bench.checkpoint_breakdown HOST:PORT [events]``.

Runs ``bench.compare.run_labelled`` (the (e+labels) row: exactly-once, 4 partitions, every other event
labelled) with ``Checkpoint.begin_commit``/``end_commit``, ``PartitionMonitor.state_items``, the item
encoders, ``ChangelogStore.encode`` (signing) and ``kafka_compat.start_commit``/``finish_commit`` wrapped
in timers, and prints the row, then per kind of commit (full: state written; reads-only) the seconds
in each step and the bytes written per kind of item. ``begin`` less state_items, sign and start_commit
is mostly the producer's ``send`` of the changelog records; ``end`` is the wait for the broker's commit.
Timings include the wrappers' own cost (small) and the machine's load: compare runs, not figures.
"""
import collections, json, sys, time
from stream_monitor.runtime import checkpoint as cpmod, kafka_compat
from stream_monitor.core import monitor as monmod

T = collections.Counter()   # seconds
B = collections.Counter()   # bytes per kind
N = collections.Counter()   # items per kind
per_kind_t = collections.Counter()
ncp = [0]

def kind(k):
    if k.startswith("c\x1f"): return "channel"
    if k.startswith("r\x1f"): return "reference"
    if k.startswith("w\x1f"): return "window"
    if k.startswith("m\x1f"): return "model"
    if k.startswith("labels"): return "labels"
    return k

orig_si = monmod.PartitionMonitor.state_items
def si(self, only_dirty=True):
    t = time.perf_counter(); out = orig_si(self, only_dirty); T["state_items"] += time.perf_counter() - t
    for k, v in out.items():
        B[kind(k)] += len(v or b""); N[kind(k)] += 1
    return out
monmod.PartitionMonitor.state_items = si

orig_begin = cpmod.Checkpoint.begin_commit
CUR = {}
REC = []
def begin(self, tasks, reads_only=False):
    CUR.clear(); T0 = dict(T)
    t = time.perf_counter(); r = orig_begin(self, tasks, reads_only); dt = time.perf_counter() - t; T["begin_total"] += dt
    if r is not None:
        REC.append({"ro": reads_only, "begin": dt, **{k: T[k] - T0.get(k, 0) for k in ("state_items", "sign", "start_commit")}, "bytes": r.written, "end": None})
    if not reads_only and r is not None: ncp[0] += 1
    else: T["reads_only_begins"] += 1
    return r
cpmod.Checkpoint.begin_commit = begin
orig_end = cpmod.Checkpoint.end_commit
def end(self, begun):
    t = time.perf_counter(); r = orig_end(self, begun); dt = time.perf_counter() - t; T["end_total"] += dt
    for rec in reversed(REC):
        if rec["end"] is None: rec["end"] = dt; break
    return r
cpmod.Checkpoint.end_commit = end
orig_sc = kafka_compat.start_commit
LOG = []
def sc(producer, consumer, offsets, timeout_ms, group_added=None, token=""):
    pre = None if group_added is None else group_added.is_done
    t = time.perf_counter(); r = orig_sc(producer, consumer, offsets, timeout_ms, group_added, token); dt = time.perf_counter() - t
    T["start_commit"] += dt
    LOG.append((round(dt, 3), pre, len(offsets)))
    return r
kafka_compat.start_commit = sc
orig_fc = kafka_compat.finish_commit
def fc(*a, **k):
    t = time.perf_counter(); r = orig_fc(*a, **k); T["finish_commit"] += time.perf_counter() - t; return r
kafka_compat.finish_commit = fc
from stream_monitor.runtime import changelog
orig_enc = changelog.ChangelogStore.encode
def enc(self, p, items):
    t = time.perf_counter(); r = orig_enc(self, p, items); T["sign"] += time.perf_counter() - t; return r
changelog.ChangelogStore.encode = enc

# per-encoder timing inside state_items
from stream_monitor.core import state, state_window, state_labels, state_order
def wrap(mod, name, label):
    f = getattr(mod, name)
    def g(*a, **k):
        t = time.perf_counter(); r = f(*a, **k); per_kind_t[label] += time.perf_counter() - t; return r
    setattr(mod, name, g)
wrap(state_window, "encode_channel", "encode_channel")
wrap(state_window, "encode_chunk", "encode_chunk")
wrap(state_window, "encode_reference", "encode_reference")
wrap(state_labels, "encode_labels", "encode_labels")
wrap(state, "encode_model", "encode_model")
wrap(monmod.state_order, "encode_order", "encode_order")
wrap(monmod.state_order, "encode_waiting", "encode_waiting")

from bench.compare import run_labelled
r = run_labelled(sys.argv[1], 4, int(sys.argv[2]) if len(sys.argv) > 2 else 60000, 300)
keep = {k: r[k] for k in ("records", "seconds", "cpu_seconds", "checkpoints", "checkpoint_seconds", "checkpoint_share", "changelog_bytes", "changelog_per_input_byte", "alerts", "labels_unmatched", "late")}
keep["records_per_s"] = r["records"] / r["seconds"]
print(json.dumps(keep, indent=1))
print("full checkpoints (incl after timed end):", ncp[0])
print("times s:", {k: round(v, 3) for k, v in T.items()})
print("encoders s:", {k: round(v, 3) for k, v in per_kind_t.items()})
print("start_commit (seconds, early AddOffsetsToTxn answered before, offsets):", LOG)
print("bytes:", dict(B), "total", sum(B.values()))
print("items:", dict(N))

import statistics
for ro in (False, True):
    rs = [r for r in REC if r["ro"] == ro and r["end"] is not None]
    if not rs: continue
    print("reads_only" if ro else "full", len(rs), {k: round(sum(r[k] for r in rs), 3) for k in ("begin", "state_items", "sign", "start_commit", "end", "bytes")})
    print("   per:", [(round(r["begin"], 3), round(r["end"], 3), r["bytes"]) for r in rs])
