"""Where an alert's latency goes: stage timestamps of a traced ``stream-monitor run`` and their breakdown.

``python -m bench.latency_trace TRACE_PATH ARGS...`` runs ``stream-monitor ARGS...`` with a few of
the runtime's methods wrapped (nothing in ``stream_monitor`` changes): each wrapper appends a
wall-clock (``time.time()``) stage record to a list that is written to ``TRACE_PATH`` (JSON lines)
when the process exits. The stages:

- ``poll``: a consumer poll returned records (start, end, and per topic-partition the offsets);
- ``fwd``: the reader sent an input partition's rows to the internal topic (its last offset);
- ``prog``: a progress record was encoded (source, event time, caught up);
- ``begin`` / ``commit``: a checkpoint (transaction) was begun, the broker answered its commit (visible), and it was ended;
- ``judge``: the judging side read internal records (per record: source, last offset or
  progress time, and the task's watermark after them);
- ``emit``: alerts went into the open transaction (their source partition and offset);
- ``gc``: a collection of the cyclic garbage collector (its start and end, generation, CPU seconds,
  for a full one the objects in the oldest generation, and the objects it freed); ``gc_held``: the
  types of those objects at the first full collection;
- ``gc_objects``: at exit, the objects the collector tracks (outside ``gc.freeze``), by type.

:func:`breakdown` joins them with the bench's send and receive times (``run_latency(trace=...)``):
per alert, the time from the send of its event to each stage, and what the release waited for.
"""

from __future__ import annotations

import atexit
import bisect
import collections
import gc
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any


def install(path: str) -> None:
    """Wrap the runtime's stages; the records go to ``path`` at exit."""
    from stream_monitor.core import exchange
    from stream_monitor.runtime import app as app_mod
    from stream_monitor.runtime import forward as fwd_mod
    from stream_monitor.runtime.checkpoint import Checkpoint

    out: list[Any] = []
    now = time.time
    arrivals: list[Any] = []

    decode = exchange.decode_record

    def decode_record(blob: bytes, carrier: Any = None) -> Any:
        got = decode(blob, carrier)
        if isinstance(got, exchange.Progress):
            arrivals.append(("p", got.source[1], got.event_time_ms, got.caught_up))
        else:
            rows = got[1]
            if rows:
                arrivals.append(("r", rows[-1].position.partition, max(r.position.offset for r in rows), max(r.key[0] for r in rows)))
        return got

    exchange.decode_record = decode_record  # app calls exchange.decode_record through the module

    encode_progress = exchange.encode_progress

    def traced_progress(topic: str, partition: int, t: int | None, caught_up: bool = False, quiet_ms: int | None = None) -> bytes:
        out.append(("prog", now(), partition, t, caught_up))
        return encode_progress(topic, partition, t, caught_up=caught_up, quiet_ms=quiet_ms)

    exchange.encode_progress = traced_progress  # forward calls it through the module (only forward does)

    release = fwd_mod.Forwarder.release

    def fwd_release(self: Any) -> None:  # a batch's reading is sent at its end (Forwarder.forward holds it)
        read = dict(self._held_offsets)
        release(self)
        t = now()
        for tp, next_offset in read.items():
            out.append(("fwd", t, tp.partition, next_offset - 1))

    fwd_mod.Forwarder.release = fwd_release

    # a checkpoint is begun (begin_commit) at the end of a loop and ended (end_commit) later; the broker's
    # answer to its EndTxn (when its records became visible) is caught on the request's result
    from stream_monitor.runtime import kafka_compat

    begun_at: dict[int, tuple[float, bool, list[float]]] = {}
    begin_commit, end_commit = Checkpoint.begin_commit, Checkpoint.end_commit
    start_commit = kafka_compat.start_commit
    answered: list[list[float]] = [[]]  # when the broker answered the commit started last (empty: not yet)

    def traced_start_commit(*a: Any, **kw: Any) -> Any:
        mine: list[float] = []
        answered[0] = mine
        commit = start_commit(*a, **kw)
        result = commit.committed
        if result is not None:
            done = result.done

            def traced_done(error: Any = None) -> None:
                mine.append(now())
                done(error)

            result.done = traced_done
            if result.is_done and not mine:
                mine.append(now())
        return commit

    kafka_compat.start_commit = traced_start_commit

    def traced_begin(self: Any, tasks: Any, reads_only: bool = False) -> Any:
        t0 = now()
        answered[0] = []
        got = begin_commit(self, tasks, reads_only)
        if got is not None:
            begun_at[id(got)] = (t0, reads_only, answered[0])
            out.append(("begin", t0, now(), reads_only))
        return got

    def traced_end(self: Any, begun: Any) -> Any:
        t1 = now()
        t0, reads_only, mine = begun_at.pop(id(begun), (t1, False, []))
        result = end_commit(self, begun)
        t2 = now()
        out.append(("commit", t0, t2, result.state_bytes, reads_only, mine[0] if mine else t2, t1))
        return result

    Checkpoint.begin_commit = traced_begin
    Checkpoint.end_commit = traced_end

    bounded = kafka_compat._bounded

    def traced_bounded(sender: Any, result: Any, what: str, timeout_ms: int) -> None:
        t0 = now()
        try:
            bounded(sender, result, what, timeout_ms)
        finally:
            out.append(("bounded", t0, now(), what))

    kafka_compat._bounded = traced_bounded

    judge = app_mod.MonitorApp._judge_records

    def traced_judge(self: Any, task: Any, tp: Any, inputs: Any) -> Any:
        arrivals.clear()
        t0 = now()
        result = judge(self, task, tp, inputs)
        wm = task.order.watermark()
        out.append(("judge", t0, now(), tp.partition, list(arrivals), wm))
        return result

    app_mod.MonitorApp._judge_records = traced_judge

    emit = app_mod.MonitorApp._emit

    def traced_emit(self: Any, result: Any) -> None:
        emit(self, result)
        if result.alerts:
            out.append(("emit", now(), [(a.position.partition, a.position.offset, a.event_time_ms) for a in result.alerts]))

    app_mod.MonitorApp._emit = traced_emit

    poll_of: dict[int, Any] = {}
    group_consumer = app_mod.clients.group_consumer

    def traced_consumer(*a: Any, **kw: Any) -> Any:
        consumer = group_consumer(*a, **kw)
        poll = consumer.poll

        def traced_poll(*pa: Any, **pkw: Any) -> Any:
            t0 = now()
            batch = poll(*pa, **pkw)
            if batch:
                out.append(("poll", t0, now(), [(tp.topic, tp.partition, recs[0].offset, recs[-1].offset) for tp, recs in batch.items() if recs]))
            return batch

        consumer.poll = traced_poll
        poll_of[id(consumer)] = consumer
        return consumer

    app_mod.clients.group_consumer = traced_consumer

    gc_started: list[float] = [0.0, 0.0, 0]
    cpu = time.thread_time
    held_told = [False]

    def kinds(objects: list[Any], n: int) -> list[tuple[str, int]]:
        return collections.Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in objects).most_common(n)

    def traced_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":  # a full collection walks the oldest generation: how many objects it holds (not timed)
            held = gc.get_objects(generation=2) if info["generation"] == 2 else []
            if held and not held_told[0]:
                held_told[0] = True
                out.append(("gc_held", now(), len(held), kinds(held, 30)))
            gc_started[:] = now(), cpu(), len(held)
            del held
        else:  # wall clock, and the collecting thread's CPU (a collection of a busy machine is also descheduled)
            out.append(("gc", gc_started[0], now(), info["generation"], cpu() - gc_started[1], gc_started[2], info["collected"]))

    gc.callbacks.append(traced_gc)

    def dump() -> None:
        tracked = gc.get_objects()
        out.append(("gc_objects", now(), len(tracked), kinds(tracked, 40)))
        del tracked
        with open(path, "w") as f:
            for rec in out:
                f.write(json.dumps(rec) + "\n")

    atexit.register(dump)


def _after(times: list[float], t: float) -> float | None:
    i = bisect.bisect_left(times, t)
    return times[i] if i < len(times) else None


def _pcts(xs: list[float]) -> dict[str, float] | None:
    if not xs:
        return None
    xs = sorted(xs)
    pick = lambda q: xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]  # noqa: E731
    return {"p50": round(pick(0.5) * 1000, 1), "p90": round(pick(0.9) * 1000, 1), "p99": round(pick(0.99) * 1000, 1), "mean": round(statistics.fmean(xs) * 1000, 1)}


def breakdown(trace_path: Path, input_topic: str, sent_at: dict[int, list[float]], ts_of: dict[int, list[int]],
              received: list[tuple[float, int, int, str, str]], lateness_ms: int) -> dict[str, Any]:
    """Per-stage latency percentiles (ms) of the alerts in ``received``.

    ``sent_at[p][o]`` / ``ts_of[p][o]``: when record ``o`` of input partition ``p`` was handed to the
    producer and its event time. Stages per alert (times from the send of its event):

    - ``input_polled``: the monitor's poll returned it; ``forwarded``: its rows went to the internal
      topic; ``hop_visible``: the transaction holding them committed; ``judge_read``: the judge read it;
    - ``ideal_release``: the last input partition *sent* an event past the row's event time plus the
      lateness (what the order waits for, no transport at all);
    - ``released``: its alert went into the transaction; ``alert_visible``: that transaction committed;
      ``received``: the bench's read_committed reader polled it.

    The differences between consecutive stages are reported too; ``release_after_ideal`` is how long
    after the ideal release the watermark actually passed the row (the transport of the events that
    carry the watermark: input fetch, the hop's commit, the judge's fetch, progress held back).
    """
    recs = [json.loads(line) for line in trace_path.read_text().splitlines() if line]
    polls: dict[int, list[tuple[int, float]]] = {}
    fwds: dict[int, list[tuple[int, float]]] = {}
    commits = sorted((r[1], r[5]) for r in recs if r[0] == "commit")  # (begun, the broker answered: visible)
    commit_starts = [c[0] for c in commits]
    judged: dict[int, list[tuple[int, float]]] = {}
    emitted: dict[tuple[int, int], float] = {}
    for r in recs:
        if r[0] == "poll":
            for topic, p, _first, last in r[3]:
                if topic == input_topic:
                    polls.setdefault(p, []).append((last, r[2]))
        elif r[0] == "fwd":
            fwds.setdefault(r[2], []).append((r[3], r[1]))
        elif r[0] == "judge":
            for a in r[4]:
                if a[0] == "r":
                    judged.setdefault(a[1], []).append((a[2], r[1]))
        elif r[0] == "emit":
            for p, o, _t in r[2]:
                emitted.setdefault((p, o), r[1])

    def first_at_or_after(table: list[tuple[int, float]], offset: int) -> float | None:
        best = None
        for last, t in table:  # in time order; the first record covering ``offset``
            if last >= offset:
                best = t
                break
        return best

    def visible(t: float | None) -> float | None:
        if t is None:
            return None
        i = bisect.bisect_left(commit_starts, t)
        return commits[i][1] if i < len(commits) else None

    stages: dict[str, list[float]] = {k: [] for k in (
        "input_polled", "forwarded", "hop_visible", "judge_read", "ideal_release", "released", "alert_visible", "received",
        "release_after_ideal", "alert_commit_wait", "reader_after_commit")}
    for now, p, off, _feat, _det in received:
        if not (0 <= off < len(sent_at.get(p, []))):
            continue
        s0 = sent_at[p][off]
        t_row = ts_of[p][off]
        polled = first_at_or_after(polls.get(p, []), off)
        fwd = first_at_or_after(fwds.get(p, []), off)
        hop = visible(fwd)
        jread = first_at_or_after(judged.get(p, []), off)
        rel = emitted.get((p, off))
        # the moment every input partition had sent an event the watermark lets this row go by
        ideal = None
        for q, tss in ts_of.items():
            i = bisect.bisect_right(tss, t_row + lateness_ms)  # first event with time > t_row + lateness
            if i < len(tss):
                ideal = max(ideal or 0.0, sent_at[q][i])
        avis = visible(rel)
        for name, t in (("input_polled", polled), ("forwarded", fwd), ("hop_visible", hop), ("judge_read", jread),
                        ("ideal_release", ideal), ("released", rel), ("alert_visible", avis), ("received", now)):
            if t is not None:
                stages[name].append(t - s0)
        if rel is not None and ideal is not None:
            stages["release_after_ideal"].append(rel - ideal)
        if rel is not None and avis is not None:
            stages["alert_commit_wait"].append(avis - rel)
        if avis is not None:
            stages["reader_after_commit"].append(now - avis)
    gaps = [b - a for a, b in zip(commit_starts, commit_starts[1:])]
    return {
        "from_send_ms": {k: _pcts(v) for k, v in stages.items()},
        "commits": len(commits),
        "commit_seconds": _pcts([b - a for a, b in commits]),  # begun -> the broker answered
        "begin_seconds": _pcts([r[2] - r[1] for r in recs if r[0] == "begin"]),  # state items built and sent, commit queued
        "end_wait_seconds": _pcts([r[2] - r[6] for r in recs if r[0] == "commit"]),  # end_commit: waiting for the answer
        "begun_to_ended": _pcts([r[2] - r[1] for r in recs if r[0] == "commit"]),
        "aborts": sum(1 for r in recs if r[0] == "bounded" and r[3] == "abort"),
        "between_commit_starts": _pcts(gaps),
        "progress_records": sum(1 for r in recs if r[0] == "prog"),
        "state_bytes_per_commit": statistics.fmean([r[3] for r in recs if r[0] == "commit"] or [0]),
        "reads_only_commits": sum(1 for r in recs if r[0] == "commit" and r[4]),
    }


if __name__ == "__main__":
    install(sys.argv[1])
    from stream_monitor.commands import main

    raise SystemExit(main(sys.argv[2:]))
