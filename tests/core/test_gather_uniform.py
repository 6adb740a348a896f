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


def _run(batches: list[list[InputRecord]], uniform: bool, monkeypatch) -> tuple[list, list, list, list]:  # noqa: ANN001
    if not uniform:
        monkeypatch.setattr(gathering_module, "uniform_columns", lambda decoded: None)
    m = PartitionMonitor(SPEC, partition=0)
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
        alerts += [a.payload for a in result.alerts]
    monkeypatch.undo()
    channels = [(name, ch.ordinal, ch.channel_type, ch.count if hasattr(ch, "count") else None) for name, ch in m.models["m"].channels.items()]
    return channels, evaluations, alerts, gathered


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
        batches.append([{name: (float(i % 7) if name != "c" else f"v{i % 3}") for name in sorted(names)} for i, names in enumerate(shape)])
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
