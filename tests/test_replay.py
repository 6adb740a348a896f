"""``stream-monitor replay`` from files (no broker): determinism, ranges, batching, state, exit codes."""

from __future__ import annotations

import gzip
import random
import secrets
from pathlib import Path
from typing import Any

import orjson
import pytest

from stream_monitor.commands import main
from stream_monitor.core.events import format_event_time
from stream_monitor.core.spec import MonitorSpec
from stream_monitor.replay.engine import ReplayEngine
from stream_monitor.replay.sources import SourceRecord, decode_line, encode_envelope
from stream_monitor.replay.timerange import TimeRange
from stream_monitor.synthetic import demo_streams, generate_events

EVENTS_PER_MODEL = 8000
START_MS = 1_767_225_600_000  # synthetic streams start at 2026-01-01T00:00:00Z, 10 ms apart
INVALID_LINES = {
    101: b"{not json",
    202: b"[1, 2, 3]",
    303: b'{"model": "fraud-v3", "features": {"x0": 1.0}}',  # no ts, and a file has no record timestamp
    404: b'{"model": "fraud-v3", "ts": "yesterday", "features": {"x0": 1.0}}',
    505: b'{"model": "fraud-v3", "ts": 1767225601000, "features": {"x0": NaN}}',
}


def _demo_lines(n: int = EVENTS_PER_MODEL, seed: int = 42) -> list[bytes]:
    fraud, churn = demo_streams(n, seed)
    lines: list[bytes] = []
    for a, b in zip(generate_events(fraud), generate_events(churn), strict=True):
        lines += [orjson.dumps(a), orjson.dumps(b)]
    for number in sorted(INVALID_LINES):  # 1-based line numbers
        lines.insert(number - 1, INVALID_LINES[number])
    return lines


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("replay") / "demo.jsonl.gz"
    with gzip.open(path, "wb") as out:
        out.write(b"\n".join(_demo_lines()) + b"\n")
    return path


def replay(tmp: Path, name: str, *args: str, expect: int = 0) -> dict[str, Any]:
    """Run ``stream-monitor replay`` in-process; return its output files' bytes."""
    out = tmp / name
    out.mkdir(parents=True, exist_ok=True)
    argv = ["replay", "--alerts-out", str(out / "alerts.jsonl"), "--dead-letters-out", str(out / "dead.jsonl"), "--progress", "none", *args]
    code = main(argv)
    assert code == expect, f"replay {argv} exited {code}"
    res: dict[str, Any] = {"dir": out}
    for f in ("alerts.jsonl", "dead.jsonl"):
        p = out / f
        res[f] = p.read_bytes() if p.exists() else None
    return res


def alerts_of(blob: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in blob.splitlines()]


@pytest.fixture(scope="module")
def full(demo_file: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One uninterrupted replay of the demo file, shared by the comparisons below."""
    return replay(tmp_path_factory.mktemp("full"), "full", "--input", str(demo_file))


def test_replay_finds_the_planted_drifts_and_dead_letters(full: dict[str, Any]) -> None:
    alerts = alerts_of(full["alerts.jsonl"])
    fired = {(a["model"], a["feature"]) for a in alerts if a["status"] == "firing"}
    assert {("fraud-v3", "x0"), ("fraud-v3", "c0"), ("fraud-v3", "x3")} <= fired
    assert not any(a["model"] == "churn-v1" for a in alerts), "the stationary model must stay quiet"
    assert all(a["monitor"]["instance"] == "replay" for a in alerts)
    assert all(a["source"]["topic"] == "demo.jsonl.gz" and a["source"]["partition"] == 0 for a in alerts)
    keys = [(a["event_time"], a["source"]["offset"]) for a in alerts]
    assert keys == sorted(keys), "alerts are ordered by event time, then offset"
    dead = [orjson.loads(line) for line in full["dead.jsonl"].splitlines()]
    assert [(d["source"]["offset"], d["reason"]) for d in dead] == [
        (101, "invalid_json"),
        (202, "not_an_object"),
        (303, "invalid_timestamp"),
        (404, "invalid_timestamp"),
        (505, "non_finite_value"),
    ]
    assert dead[0]["original"] == "{not json"


def test_two_replays_are_byte_identical(demo_file: Path, full: dict[str, Any], tmp_path: Path) -> None:
    again = replay(tmp_path, "again", "--input", str(demo_file))
    assert full["alerts.jsonl"] and again["alerts.jsonl"] == full["alerts.jsonl"]
    assert again["dead.jsonl"] == full["dead.jsonl"]


def test_batch_size_does_not_change_the_output(demo_file: Path, full: dict[str, Any], tmp_path: Path) -> None:
    for size in ("1", "333", "100000"):
        res = replay(tmp_path, f"b{size}", "--input", str(demo_file), "--batch-size", size)
        assert res["alerts.jsonl"] == full["alerts.jsonl"], f"--batch-size {size} changed the alerts"
        assert res["dead.jsonl"] == full["dead.jsonl"], f"--batch-size {size} changed the dead letters"


def test_from_mid_stream_gives_alerts_only_inside_the_range(demo_file: Path, full: dict[str, Any], tmp_path: Path) -> None:
    start = START_MS + int(0.45 * EVENTS_PER_MODEL) * 10  # after x0 drifted, while it still drifts
    end = START_MS + int(0.85 * EVENTS_PER_MODEL) * 10
    res = replay(tmp_path, "range", "--input", str(demo_file), "--from", format_event_time(start), "--to", str(end))
    alerts = alerts_of(res["alerts.jsonl"])
    assert alerts, "the range holds drift (c0, x3, and x0 reverting): expected alerts"
    lo, hi = format_event_time(start), format_event_time(end)
    for a in alerts:
        assert lo <= a["event_time"] < hi, a
        assert lo <= a["starts_at"] < hi, a
    assert alerts != alerts_of(full["alerts.jsonl"])
    # the record with an unparseable ts cannot be placed in time: it is still a dead letter
    dead = [orjson.loads(line) for line in res["dead.jsonl"].splitlines()]
    assert {(d["source"]["offset"], d["reason"]) for d in dead} >= {(101, "invalid_json"), (404, "invalid_timestamp")}
    assert 505 not in {d["source"]["offset"] for d in dead}, "an in-file record outside the range is skipped"


@pytest.fixture()
def state_secret(monkeypatch: pytest.MonkeyPatch) -> str:
    """A random state secret of this test's own."""
    secret = secrets.token_hex(32)
    monkeypatch.setenv("STREAM_MONITOR_STATE_SECRET", secret)
    return secret


def test_state_files_need_a_real_secret(demo_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a state secret, --state-out and --state-from exit 2 naming the flag and the setting."""
    monkeypatch.delenv("STREAM_MONITOR_STATE_SECRET", raising=False)
    to = format_event_time(START_MS + 1000)
    state = tmp_path / "state.bin"
    capsys.readouterr()
    replay(tmp_path, "no-secret-out", "--input", str(demo_file), "--to", to, "--state-out", str(state), expect=2)
    err = capsys.readouterr().err
    assert "--state-out" in err and "state.hmac_secret" in err
    assert not state.exists()
    state.write_bytes(b"anything")
    replay(tmp_path, "no-secret-from", "--input", str(demo_file), "--to", to, "--state-from", str(state), expect=2)
    err = capsys.readouterr().err
    assert "--state-from" in err and "state.hmac_secret" in err
    monkeypatch.setenv("STREAM_MONITOR_STATE_SECRET", "too-short")
    replay(tmp_path, "short-secret", "--input", str(demo_file), "--to", to, "--state-out", str(state), expect=2)
    assert "32" in capsys.readouterr().err


def test_state_continuation_equals_one_uninterrupted_replay(demo_file: Path, full: dict[str, Any], tmp_path: Path, state_secret: str) -> None:
    split = format_event_time(START_MS + int(0.5 * EVENTS_PER_MODEL) * 10)
    state = tmp_path / "state.bin"
    first = replay(tmp_path, "first", "--input", str(demo_file), "--to", split, "--state-out", str(state))
    second = replay(tmp_path, "second", "--input", str(demo_file), "--from", split, "--state-from", str(state))
    assert first["alerts.jsonl"] and second["alerts.jsonl"]
    assert first["alerts.jsonl"] + second["alerts.jsonl"] == full["alerts.jsonl"]
    # dead letters: records that have no usable event time belong to every range, so both halves
    # report them; the others split cleanly
    d1, d2 = first["dead.jsonl"].splitlines(), second["dead.jsonl"].splitlines()
    timeless = set(d1) & set(d2)
    assert {orjson.loads(d)["source"]["offset"] for d in timeless} == {101, 202, 303, 404}
    assert sorted(set(d1) | set(d2)) == sorted(full["dead.jsonl"].splitlines())
    # without the state the second half warms up afresh and says something else
    cold = replay(tmp_path, "cold", "--input", str(demo_file), "--from", split)
    assert cold["alerts.jsonl"] != second["alerts.jsonl"]


def test_tampered_or_foreign_state_is_rejected(
    demo_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, state_secret: str
) -> None:
    state = tmp_path / "state.bin"
    to = format_event_time(START_MS + 20_000)
    replay(tmp_path, "make", "--input", str(demo_file), "--to", to, "--state-out", str(state))
    blob = bytearray(state.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    tampered = tmp_path / "tampered.bin"
    tampered.write_bytes(bytes(blob))
    capsys.readouterr()
    res = replay(tmp_path, "tampered", "--input", str(demo_file), "--state-from", str(tampered), expect=1)
    err = capsys.readouterr().err
    assert "signature does not verify" in err and "refusing to load it" in err and str(tampered) in err
    assert res["alerts.jsonl"] is None, "nothing is written when the state is refused"
    # a good file signed with another secret is refused too
    monkeypatch.setenv("STREAM_MONITOR_STATE_SECRET", secrets.token_hex(32))
    replay(tmp_path, "foreign", "--input", str(demo_file), "--state-from", str(state), expect=1)
    assert "signed with an unknown key id" in capsys.readouterr().err  # another secret has another key id
    # and with the right secret it loads
    monkeypatch.setenv("STREAM_MONITOR_STATE_SECRET", state_secret)
    replay(tmp_path, "signed", "--input", str(demo_file), "--to", to, "--state-out", str(state))
    replay(tmp_path, "resumed", "--input", str(demo_file), "--from", to, "--state-from", str(state))


def test_exit_codes(demo_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["replay", "--alerts-out", str(tmp_path / "a.jsonl"), "--progress", "none"]
    assert main([*base, "--input", str(tmp_path / "missing.jsonl")]) == 2
    assert "--input" in capsys.readouterr().err
    assert main([*base, "--input", str(demo_file), "--from", "last tuesday"]) == 2
    assert "--from 'last tuesday'" in capsys.readouterr().err
    assert main([*base, "--input", str(demo_file), "--from", "2026-01-02T00:00:00Z", "--to", "2026-01-01T00:00:00Z"]) == 2
    assert main([*base, "--input", str(demo_file), "--batch-size", "0"]) == 2
    assert main([*base, "--input", str(demo_file), "--state-from", str(tmp_path / "none.bin")]) == 2
    assert main([*base, "--input", str(demo_file), "--config", str(tmp_path / "nope.yaml")]) == 2
    with pytest.raises(SystemExit) as exc:  # argparse: --alerts-out is required
        main(["replay", "--input", str(demo_file)])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:  # --topic and --input exclude each other
        main([*base, "--input", str(demo_file), "--topic", "t"])
    assert exc.value.code == 2
    truncated = tmp_path / "truncated.jsonl.gz"
    truncated.write_bytes(demo_file.read_bytes()[:5000])
    capsys.readouterr()
    assert main([*base, "--input", str(truncated)]) == 1
    assert "cannot read" in capsys.readouterr().err
    broken = tmp_path / "broken-envelope.jsonl"
    broken.write_bytes(b'{"topic": "t", "partition": "zero", "offset": 1, "value": "{}"}\n')
    assert main([*base, "--input", str(broken)]) == 0  # a dead letter, not an abort
    assert "invalid records: 1 (schema_violation 1)" in capsys.readouterr().out
    assert main([*base, "--input", str(demo_file), "--to", format_event_time(START_MS + 1000)]) == 0
    out = capsys.readouterr().out
    assert "records" in out and "alert events: 0" in out and "invalid records" in out


def test_envelopes_round_trip_the_original_bytes() -> None:
    cases = [
        SourceRecord("inference-events", 2, 1234, 1767225600000, b"fraud-v3", b'{"model": "m", "ts": 1, "f": "\xc3\xa9"}'),
        SourceRecord("t", 0, 0, None, None, None),  # tombstone, no key
        SourceRecord("t", 1, 5, 7, b"\x00\xff", b"\xff\xfe not utf-8 \x00"),
        SourceRecord("t", 1, 6, 7, b"", b"  {\"model\":  \"m\"}\t"),  # whitespace kept exactly
    ]
    for rec in cases:
        line = encode_envelope(rec)
        assert b"\n" not in line
        assert decode_line(line, "file.jsonl", 99) == rec
    # a plain event is never mistaken for an envelope, even with such field names
    plain = b'{"model": "m", "ts": 1, "features": {"offset": 1.0, "partition": 2.0, "value": 3.0}}'
    assert decode_line(plain, "f.jsonl", 7) == SourceRecord("f.jsonl", 0, 7, None, None, plain)
    # a hand-written envelope may hold the event as an object
    rec = decode_line(b'{"partition": 3, "offset": 9, "value": {"model": "m", "ts": 1}}', "f.jsonl", 1)
    assert (rec.topic, rec.partition, rec.offset, orjson.loads(rec.value or b"")) == ("f.jsonl", 3, 9, {"model": "m", "ts": 1})


def _envelope_file(path: Path, records: list[SourceRecord]) -> Path:
    path.write_bytes(b"".join(encode_envelope(r) + b"\n" for r in records))
    return path


def test_partitions_are_independent_and_ordered_deterministically(tmp_path: Path) -> None:
    """Each partition has its own monitor; the file's interleaving of partitions does not matter."""
    fraud, churn = demo_streams(6000, 3)
    part0 = [SourceRecord("events", 0, i, e["ts"], b"fraud-v3", orjson.dumps(e)) for i, e in enumerate(generate_events(fraud))]
    part1 = [SourceRecord("events", 1, i, e["ts"], b"churn-v1", orjson.dumps(e)) for i, e in enumerate(generate_events(churn))]
    alternating = _envelope_file(tmp_path / "alternating.jsonl", [r for pair in zip(part0, part1, strict=True) for r in pair])
    blocks = _envelope_file(tmp_path / "blocks.jsonl", part1 + part0)
    a = replay(tmp_path, "alternating", "--input", str(alternating))
    b = replay(tmp_path, "blocks", "--input", str(blocks))
    assert a["alerts.jsonl"] and a["alerts.jsonl"] == b["alerts.jsonl"]
    alerts = alerts_of(a["alerts.jsonl"])
    assert {a_["source"]["partition"] for a_ in alerts} == {0}, "only fraud-v3 (partition 0) drifts"
    assert all(a_["source"]["topic"] == "events" and "partition" not in a_["labels"] for a_ in alerts)
    # and the same events as plain lines give the same alerts apart from the source fields
    plain = tmp_path / "plain.jsonl"
    plain.write_bytes(b"".join((r.value or b"") + b"\n" for r in part0))
    c = alerts_of(replay(tmp_path, "plain", "--input", str(plain))["alerts.jsonl"])
    strip = lambda xs: [(x["feature"], x["detector"], x["status"], x["event_time"], x["statistic"]) for x in xs]  # noqa: E731
    assert strip(c) == strip(alerts)


def test_spilled_output_equals_in_memory_output() -> None:
    fraud, _ = demo_streams(5000, 42)
    records = [SourceRecord("t", i % 2, i, None, None, orjson.dumps(e)) for i, e in enumerate(generate_events(fraud))]
    records.append(SourceRecord("t", 0, 10**6, None, None, b"garbage"))
    outputs = []
    for spill in (3, 10**6):
        engine = ReplayEngine(MonitorSpec(instance="t"), batch_size=700, spill_after=spill)
        engine.feed(records)
        engine.finish()
        outputs.append((list(engine.alert_payloads()), list(engine.dead_letter_payloads())))
        engine.close()
    assert outputs[0][0] and outputs[0] == outputs[1]


def test_time_range_filter_counts() -> None:
    engine = ReplayEngine(MonitorSpec(instance="t"), time_range=TimeRange(5, 15), batch_size=4)
    recs = [SourceRecord("t", 0, i, None, None, b'{"model": "m", "ts": %d, "features": {"x": 1}}' % i) for i in range(20)]
    recs.append(SourceRecord("t", 0, 20, 3, None, b'{"model": "m", "features": {"x": 1}}'))  # record time 3: outside
    recs.append(SourceRecord("t", 0, 21, None, None, b'{"model": "m", "ts": "?"}'))  # no usable time: passed on
    engine.feed(recs)
    o = engine.finish()
    assert (o.records_read, o.records_skipped, o.records_processed) == (22, 11, 11)
    assert dict(o.invalid_by_reason) == {"invalid_timestamp": 1}
    assert (o.first_event_ms, o.last_event_ms) == (5, 14)


def test_progress_log_lines_when_not_a_terminal(demo_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["replay", "--input", str(demo_file), "--alerts-out", str(tmp_path / "a.jsonl"), "--progress", "log",
                 "--to", format_event_time(START_MS + 5000)])  # fmt: skip
    assert code == 0
    err = capsys.readouterr().err
    line = next(orjson.loads(x) for x in err.splitlines() if "replay_progress" in x)
    assert line["records"] > 0 and line["percent"] == 100.0


def test_configured_baseline_is_the_reference(tmp_path: Path) -> None:
    """``models.<m>.baseline`` (a relative path: against the config's folder) replaces the warm-up."""
    fraud, _ = demo_streams(6000, 42)
    events = [orjson.dumps(e) for e in generate_events(fraud)]
    training = tmp_path / "cfg" / "training.jsonl"
    training.parent.mkdir()
    training.write_bytes(b"\n".join(events[:3000]) + b"\n")
    assert main(["baseline", "--input", str(training), "--model", "fraud-v3", "--out", str(training.parent / "fraud.json")]) == 0
    config = training.parent / "monitor.yaml"
    config.write_text("models:\n  fraud-v3:\n    baseline: fraud.json\n")
    stream = tmp_path / "stream.jsonl"
    stream.write_bytes(b"\n".join(events) + b"\n")
    res = replay(tmp_path, "baseline", "--input", str(stream), "--config", str(config))
    alerts = alerts_of(res["alerts.jsonl"])
    assert alerts and {a["reference"]["kind"] for a in alerts} == {"baseline"}
    config.write_text("models:\n  fraud-v3:\n    baseline: missing.json\n")
    replay(tmp_path, "no-baseline", "--input", str(stream), "--config", str(config), expect=2)


def test_sort_spool_spills_data_never_pickle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Spilled runs are plain length-prefixed data: the spool works with pickle unusable, and keeps key order."""
    import pickle

    from stream_monitor.replay.spool import SortedSpool

    def refuse(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("pickle used by the sort spool")

    for name in ("dump", "dumps", "load", "loads", "Pickler", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    rng = random.Random(7)
    keys = [(rng.randint(-(2**40), 2**40), rng.randint(0, 9), rng.choice(["", "t", "topic-é"]), i) for i in range(500)]
    spool = SortedSpool(max_in_memory=37)
    for k in keys:
        spool.add(k, b"payload-%d\n\x00" % k[3])
    try:
        assert list(spool) == [b"payload-%d\n\x00" % k[3] for k in sorted(keys)]
    finally:
        spool.close()
    source = Path(__file__).parents[1] / "stream_monitor" / "replay"
    assert not [p.name for p in source.glob("*.py") if "import pickle" in p.read_text()]


def test_a_malformed_envelope_line_is_a_dead_letter_not_an_abort(tmp_path: Path) -> None:
    """Bad envelope fields or bad base64 make that line a dead letter; the rest of the file is replayed."""
    good = [SourceRecord("inf", 1, i, START_MS + i, None, b'{"model": "m", "ts": %d, "features": {"x": %d}}' % (START_MS + i, i % 7))
            for i in range(300)]  # fmt: skip
    lines = [encode_envelope(r) for r in good]
    bad = {
        50: b'{"topic": "inf", "partition": "one", "offset": 5, "value": "{}"}',
        120: b'{"topic": "inf", "partition": 1, "offset": 6, "timestamp": 1, "value_base64": "not base64!"}',
        200: b'{"topic": "inf", "partition": 1, "offset": 7, "timestamp": 1.5, "value": "{}"}',
        250: b'{"topic": "inf", "partition": 1180591620717411303424, "offset": 8, "value": "{}"}',
        260: b'{"topic": "inf", "partition": 1, "offset": -9, "value": "{}"}',
        270: b'{"topic": "inf", "partition": -1, "offset": 9, "value": "{}"}',
    }
    for number in sorted(bad):
        lines.insert(number - 1, bad[number])
    path = tmp_path / "export.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    res = replay(tmp_path, "bad-envelopes", "--input", str(path))
    dead = alerts_of(res["dead.jsonl"])
    assert [(d["source"]["topic"], d["source"]["offset"]) for d in dead] == [("export.jsonl", n) for n in sorted(bad)]
    assert all("envelope" in d["detail"] for d in dead)
    clean = replay(tmp_path, "clean", "--input", str(_envelope_file(tmp_path / "clean.jsonl", good)))
    assert res["alerts.jsonl"] == clean["alerts.jsonl"]


def test_event_times_at_the_edge_of_the_calendar_do_not_stop_a_replay(tmp_path: Path) -> None:
    """A ``ts`` that leaves years 1..9999 after conversion to UTC is never fatal to a replay (summary, progress)."""
    lines = [b'{"model": "m", "ts": %d, "features": {"x": 1}}' % (START_MS + i) for i in range(50)]
    lines += [b'{"model": "m", "ts": "9999-12-31T23:59:59-01:00", "features": {"x": 1}}',
              b'{"model": "m", "ts": "0001-01-01T00:00:00+01:00", "features": {"x": 1}}']  # fmt: skip
    path = tmp_path / "edge.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    replay(tmp_path, "edge", "--input", str(path), "--progress", "log")


def test_a_replay_holds_at_most_limits_replay_partitions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Records of partitions beyond ``limits.replay_partitions`` are limit_exceeded dead letters; the rest replays as alone."""
    fraud, _ = demo_streams(3000, 5)
    events = list(generate_events(fraud))
    records = [SourceRecord("events", p, i, e["ts"], None, orjson.dumps(e)) for i, e in enumerate(events) for p in range(5)]
    capped = _envelope_file(tmp_path / "five.jsonl", records)
    kept = _envelope_file(tmp_path / "three.jsonl", [r for r in records if r.partition < 3])
    monkeypatch.setenv("STREAM_MONITOR_LIMITS__REPLAY_PARTITIONS", "3")
    res = replay(tmp_path, "capped", "--input", str(capped))
    dead = alerts_of(res["dead.jsonl"])
    assert len(dead) == 2 * len(events)
    assert {d["reason"] for d in dead} == {"limit_exceeded"} and {d["source"]["partition"] for d in dead} == {3, 4}
    assert "limits.replay_partitions" in dead[0]["detail"]
    assert res["alerts.jsonl"] == replay(tmp_path, "three", "--input", str(kept))["alerts.jsonl"]


def test_retraining_events_are_written_counted_and_independent_of_batching(demo_file: Path, tmp_path: Path) -> None:
    """Drift that persists triggers one retraining event per drifting model (the cooldown outlasts the stream)."""
    config = tmp_path / "monitor.yaml"
    config.write_text("retraining:\n  enabled: true\n  on_kinds: []\n  drift_persists_seconds: 5\n  cooldown_seconds: 86400\n")
    outs = []
    for batch in ("5000", "777"):
        out = tmp_path / f"retraining-{batch}.jsonl"
        replay(tmp_path, f"r{batch}", "--input", str(demo_file), "--config", str(config), "--batch-size", batch, "--retraining-out", str(out))
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    events = alerts_of(outs[0])
    assert events and len({e["model"] for e in events}) == len(events)
    assert {e["reason"] for e in events} == {"drift_persisted"} and all(e["signals"] for e in events)
    from stream_monitor.commands.replay import format_summary
    from stream_monitor.replay.engine import ReplayOutcome

    assert f"retraining events: {len(events)}" in format_summary(ReplayOutcome(retraining=len(events)), "f", {})


def test_a_baseline_per_model_version_in_replay(tmp_path: Path, state_secret: str) -> None:
    """``models.<m>.baselines``: v2's traffic is judged against v2's own training profile, from its first event on.

    Profiles from labelled training events (``stream-monitor baseline``); the replayed stream switches
    from v1 to v2 (other inputs, higher scores, more errors: all in v2's profile) and then x drifts
    relative to v2's profile. Only that drift alerts, with the version; a replay continued from a
    state file written mid-v2 says the same.
    """
    from tests.core.test_version_baselines import SWITCH, V1, V2, events

    cfg = tmp_path / "cfg"
    cfg.mkdir()
    for name, seed, traffic in (("v1", 11, V1), ("v2", 12, V2)):
        training = cfg / f"{name}-training.jsonl"
        training.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events(seed, [(20_000, name, traffic)])))
        assert main(["baseline", "--input", str(training), "--model", "clf", "--out", str(cfg / f"{name}.json")]) == 0
    shift = SWITCH + 6000
    stream = tmp_path / "stream.jsonl"
    served = events(13, [(SWITCH, "v1", V1), (6000, "v2", V2), (6000, "v2", {**V2, "x": 2.6})])
    stream.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in served))
    config = cfg / "monitor.yaml"
    config.write_text("models:\n  clf:\n    task: binary\n    baseline: v1.json\n    baselines:\n      v2: v2.json\n")
    full = replay(tmp_path, "versions", "--input", str(stream), "--config", str(config))
    firing = [a for a in alerts_of(full["alerts.jsonl"]) if a["status"] == "firing"]
    assert firing and all(a["source"]["offset"] >= shift for a in firing), [(a["feature"], a["source"]["offset"]) for a in firing][:5]
    assert {a["feature"] for a in firing} == {"x"} and {a["model_version"] for a in firing} == {"v2"}
    assert {a["reference"]["kind"] for a in firing} == {"baseline"}
    # continued from a state file written after the switch: the same alerts
    split = format_event_time(served[SWITCH + 3000]["ts"])
    state = tmp_path / "state.bin"
    first = replay(tmp_path, "first", "--input", str(stream), "--config", str(config), "--to", split, "--state-out", str(state))
    second = replay(tmp_path, "second", "--input", str(stream), "--config", str(config), "--from", split, "--state-from", str(state))
    assert first["alerts.jsonl"] + second["alerts.jsonl"] == full["alerts.jsonl"]
    # the control: without v2's profile, v2's traffic is judged against v1's and drifts at the switch
    config.write_text("models:\n  clf:\n    task: binary\n    baseline: v1.json\n")
    control = [a for a in alerts_of(replay(tmp_path, "control", "--input", str(stream), "--config", str(config))["alerts.jsonl"]) if a["status"] == "firing"]
    assert any(a["feature"] == "x" and SWITCH <= a["source"]["offset"] < shift for a in control)
