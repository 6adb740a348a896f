"""The uniform-features fast path of gathering (``uniform_columns`` / ``FeatureBlock.trust``) gives exactly
what the per-record path gives: same channels in the same order, same columns, same alerts."""

from __future__ import annotations

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_monitor.core import gathering as gathering_module
from stream_monitor.core.events import SourcePosition
from stream_monitor.core.intake import InputRecord
from stream_monitor.core.monitor import PartitionMonitor
from stream_monitor.core.settings import DetectionSettings, ReferenceSettings, WindowSettings
from stream_monitor.core.spec import MonitorSpec

_NAMES = ["a", "b", "c", "__prediction__", "__x"]
# small reference and window, so that the batches here evaluate detectors (and the comparison of evaluations is not of empty lists)
SPEC = MonitorSpec(defaults=DetectionSettings(reference=ReferenceSettings(size=50), window=WindowSettings(size=50, step=10)))


def _records(batches: list[list[dict]]) -> list[list[InputRecord]]:
    out, i = [], 0
    for batch in batches:
        recs = []
        for feats in batch:
            body = {"model": "m", "ts": 1_700_000_000_000 + i * 100, "features": feats, "prediction": float(i % 5) / 5}
            recs.append(InputRecord(orjson.dumps(body), SourcePosition("t", 0, i, None)))
            i += 1
        out.append(recs)
    return out


def _run(batches: list[list[InputRecord]], uniform: bool, monkeypatch, spec: MonitorSpec = SPEC) -> tuple[list, list, list, list]:  # noqa: ANN001
    if not uniform:
        monkeypatch.setattr(gathering_module, "uniform_columns", lambda decoded: None)
    m = PartitionMonitor(spec, partition=0)
    evaluations, alerts, gathered = [], [], []
    gather = m._gather

    def recorded(*args):  # noqa: ANN002, ANN202
        batch = gather(*args)
        gathered.append(({k: (list(v), list(r)) for k, (v, r) in batch.columns.items()}, dict(batch.first), sorted(batch.rows_arrays)))
        return batch

    m._gather = recorded  # type: ignore[method-assign]
    for recs in batches:
        result = m.process(recs, record_evaluations=True)
        evaluations += [repr(tuple(e)) for e in result.evaluations or []]  # repr: NaN equals NaN
        alerts += [a.payload for a in result.alerts] + [(d.reason, d.detail) for d in result.dead_letters]
        alerts.append(dict(result.limits_exceeded))
    monkeypatch.undo()
    channels = [(name, ch.ordinal, ch.channel_type, ch.count if hasattr(ch, "count") else None) for name, ch in m.models["m"].channels.items()]
    return channels, evaluations, alerts, gathered


def _value(name: str, i: int) -> float | str | None:
    if (i + len(name)) % 11 == 0:
        return None
    return float(i % 7) if name != "c" else f"v{i % 3}"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(
    shapes=st.lists(st.lists(st.sets(st.sampled_from(_NAMES)), min_size=1, max_size=6), min_size=1, max_size=4),
    uniform_batches=st.lists(st.booleans(), min_size=4, max_size=4),
)
def test_uniform_batches_gather_as_record_by_record(shapes: list[list[set[str]]], uniform_batches: list[bool], monkeypatch) -> None:  # noqa: ANN001
    """Batches of one model whose records all have the same names (or not), names new or known, reserved-looking or not."""
    batches = []
    for k, shape in enumerate(shapes):
        if uniform_batches[k]:  # the names of the batch before (channels by now, mostly) on every record
            shape = [shapes[k - 1][-1] if k else shape[0]] * (20 * len(shape))
        # a value now and then null, on a batch's first record too (a feature it cannot make a channel of yet)
        batches.append([{name: _value(name, i) for name in sorted(names)} for i, names in enumerate(shape)])
    recs = _records(batches)
    assert _run(recs, True, monkeypatch) == _run(recs, False, monkeypatch)


def test_a_uniform_batch_with_a_new_feature_discovers_it_at_its_first_record(monkeypatch) -> None:  # noqa: ANN001
    batches = [[{"a": float(i), "b": 2.0 * i} for i in range(30)], [{"a": 1.0 * i, "b": 2.0, "c": f"x{i % 4}"} for i in range(30)]]
    batches += [[{"a": float(i), "b": -1.0 * i, "c": f"y{i % 3}"} for i in range(30)]]
    recs = _records(batches)
    got = _run(recs, True, monkeypatch)
    assert got == _run(recs, False, monkeypatch)
    assert [c[0] for c in got[0]] == ["a", "b", "__prediction__", "c"]
    assert len(got[1]) > 10, "no detector evaluated: the comparison of evaluations would be vacuous"


def test_a_models_first_uniform_batch_is_trusted_once_its_first_record_made_the_channels(monkeypatch) -> None:  # noqa: ANN001
    """The first batch of a model (no channels yet) gathers whole columns too: ``run``'s first judge batch can be a third of the bench's input."""
    trusted: list[bool] = []
    flush = gathering_module.FeatureBlock.flush

    def recorded(self, *args):  # noqa: ANN001, ANN002, ANN202
        trusted.append(self.uniform is not None)
        return flush(self, *args)

    batches = [[{"a": float(i), "b": f"v{i % 3}", "c": -1.0 * i} for i in range(40)], [{"a": 1.0, "b": None, "c": 2.0}] + [{"a": 1.0, "b": "w", "c": 2.0}] * 5]
    batches += [[{"a": None, "b": "x", "c": 3.0, "d": 1.0}] + [{"a": 1.0, "b": "x", "c": 3.0, "d": 1.0}] * 5]  # d new, a null: discovered, not all channels
    monkeypatch.setattr(gathering_module.FeatureBlock, "flush", recorded)
    _run(_records(batches), True, monkeypatch)  # (undoes the patch at its end)
    assert trusted == [True, True, True]  # the third: d is discovered by the first record, a is a channel already
    trusted.clear()
    batches[2][0]["d"] = None  # d null on the first record: not a channel after it, the batch goes record by record
    monkeypatch.setattr(gathering_module.FeatureBlock, "flush", recorded)
    _run(_records(batches), True, monkeypatch)
    assert trusted == [True, True, False]


def test_a_first_uniform_batch_over_the_channel_cap_refuses_as_record_by_record(monkeypatch) -> None:  # noqa: ANN001
    spec = SPEC.model_copy(update={"limits": SPEC.limits.model_copy(update={"channels_per_model": 3})})
    batches = [[{"a": float(i), "b": 1.0 * i, "c": f"v{i % 3}", "d": 2.0} for i in range(30)], [{"a": 1.0, "b": 2.0, "c": "x", "d": 1.0}] * 30]
    recs = _records(batches)
    got = _run(recs, True, monkeypatch, spec)
    assert got == _run(recs, False, monkeypatch, spec)
    assert any(isinstance(a, dict) and a.get("channels_per_model") for a in got[2]), got[2]


def test_models_interleaved_in_a_batch_gather_whole_columns_each_as_record_by_record(monkeypatch) -> None:  # noqa: ANN001
    """A judge's batch holds every model of its partition, interleaved in event-time order (the latency bench: four
    models on the judging partitions); each model's uniform rows gather whole columns (packed rows too), and give what
    the record-by-record path gives."""
    from stream_monitor.core.exchange import decode_record, encode_rows
    from stream_monitor.core.intake import read_inference

    bodies = []
    for i in range(1200):
        model = ("m0", "m1", "m2")[(i * 7) % 3 if i % 5 else i % 2]
        feats = {"a": float((i * 31) % 17) + (4.0 if i > 700 and model == "m1" else 0.0), "b": None if i % 13 == 0 else float(i % 5), "c": f"v{i % 3}"}
        if model == "m2" and i % 40 == 7:
            feats = {"a": float(i % 3), "c": "v9"}  # m2's rows are not uniform in some batches: record by record there
        bodies.append({"model": model, "ts": 1_700_000_000_000 + i * 100, "event_id": f"e{i}", "features": feats, "prediction": (i % 10) / 10})
    recs = [InputRecord(orjson.dumps(b), SourcePosition("in", 0, i, None)) for i, b in enumerate(bodies)]
    rows = read_inference(SPEC, recs).ordered

    def judged(uniform: bool, packed: bool) -> tuple[list, list]:
        if not uniform:
            monkeypatch.setattr(gathering_module, "uniform_columns", lambda decoded: None)
        trusted: list[tuple[str, bool]] = []
        flush = gathering_module.FeatureBlock.flush

        def recorded(self, *args):  # noqa: ANN001, ANN002, ANN202
            if self.rows:
                trusted.append((self.name, self.uniform is not None))
            return flush(self, *args)

        monkeypatch.setattr(gathering_module.FeatureBlock, "flush", recorded)
        m = PartitionMonitor(SPEC, partition=0)
        out: list = []
        for s in range(0, len(rows), 100):
            chunk = rows[s : s + 100]
            if packed:  # rows records per model and input half, read back and merged in event-time order, as a judge gets them
                blobs = [encode_rows(mo, [r for r in chunk[p::2] if r.event.model == mo], pack=True) for mo in ("m0", "m1", "m2") for p in (0, 1)]
                chunk = sorted((r for b in blobs for r in decode_record(b, ("rp", 0, 1))[1]), key=lambda r: r.key)  # type: ignore[index]
            result = m.judge(chunk, record_evaluations=True)
            out += [repr(tuple(e)) for e in result.evaluations or []] + [a.payload for a in result.alerts]
            out += [(d.reason, d.detail) for d in result.dead_letters]
        monkeypatch.undo()
        channels = [(mo, name, ch.ordinal, ch.channel_type) for mo, mm in m.models.items() for name, ch in mm.channels.items()]
        return [out, channels], trusted

    for packed in (False, True):
        fast, trusted = judged(True, packed)
        slow, untrusted = judged(False, packed)
        assert fast == slow, packed
        assert not any(t for _, t in untrusted)
        by_model = {name: [t for n, t in trusted if n == name] for name in ("m0", "m1", "m2")}
        assert all(by_model["m0"][1:]) and all(by_model["m1"][1:]), by_model  # (a model's first batch makes its channels first)
        assert not all(by_model["m2"]), by_model
    assert any(isinstance(x, bytes) and b'"model":"m1","model_version":null,"feature":"a"' in x for x in fast[0]), "m1's shift raised no alert"
