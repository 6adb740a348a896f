"""Hot-path optimisations must not change detection: a fixed seeded stream gives golden output.

The stream (built below, fully deterministic) interleaves the demo's drifting ``fraud-v3`` and
stationary ``churn-v1`` with two smaller models that exercise the other channel kinds (inline
labels and errors, named prediction outputs, booleans) and a sprinkle of odd records: invalid JSON,
schema violations, NaN/Infinity, wrong types, ISO/string/missing timestamps, int event ids. It goes
through :class:`PartitionMonitor` in irregular batches, with a state round trip in the middle, and
the test compares with ``tests/data/optimisation_golden.json`` (generated from the code before
issue 6's optimisations):

- every alert payload, byte for byte (one page per channel, the default);
- with ``alerting.group_by: detector``, which detector-level alerts fire and when (``detector_pages``:
  model, feature, detector, status, severity, escalated, event time, statistic);
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
from stream_monitor.core.model_pages import is_member
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
    # feature names that share a column with reserved channels
    b'{"model": "fraud-v3", "features": {"__latency__": 5.0, "__x": 1.0}, "latency_ms": 7.0}',
    b'{"model": "churn-v1", "features": {"__prediction__": "a", "x0": 2.0}, "prediction": 0.5}',
    b'{"model": "labelled-v1", "features": {"late": 3.0}, "label": 0, "prediction": 0.1}',
    b'{"model": "collide-v1", "features": {"__latency__": 5.0, "__prediction__": 1}, "latency_ms": 7.0, "prediction": "p"}',
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


DETECTOR_PAGES = MonitorSpec.model_validate({"defaults": {"alerting": {"group_by": "detector"}}})


def _page(payload: str) -> list[Any]:
    a = orjson.loads(payload)
    return [a[k] for k in ("model", "feature", "detector", "status", "severity", "escalated", "event_time", "statistic")]


def run(records: list[InputRecord], spec: MonitorSpec | None = None) -> dict[str, Any]:
    spec = spec or MonitorSpec()
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
    # dead letters in record order (a batch lists record-level ones before value-level ones, or
    # sorts them: either way the same set per offset)
    by_offset = lambda dls: sorted(dls, key=lambda d: d[2])  # noqa: E731
    assert by_offset(got["dead_letters"]) == by_offset(golden["dead_letters"])
    assert got["channel_values"] == golden["channel_values"]
    assert len(got["alerts"]) == len(golden["alerts"])
    for k, (a, g) in enumerate(zip(got["alerts"], golden["alerts"], strict=True)):
        assert a == g, f"alert {k} differs:\n got    {a}\n golden {g}"
    assert got["evaluations"] == golden["evaluations"]
    assert got["evaluations_sha256"] == golden["evaluations_sha256"], "a detector statistic changed"


def test_detector_level_pages_are_the_detectors_alerts() -> None:
    """``alerting.group_by: detector``: every detector pages on its own, when it always did."""
    golden = json.loads(GOLDEN.read_text())
    got = run(build_records(), DETECTOR_PAGES)
    assert [_page(a) for a in got["alerts"]] == golden["detector_pages"]
    assert got["evaluations_sha256"] == golden["evaluations_sha256"]


def test_one_page_per_channel_and_no_partition_in_any_alert() -> None:
    """Each channel's firing detectors share one page; no alert names a partition but its source."""
    golden = json.loads(GOLDEN.read_text())
    alerts = [orjson.loads(a) for a in golden["alerts"]]
    detector_pages = golden["detector_pages"]
    # every channel that alerted per detector has exactly one page per episode, listing its detectors; a model's
    # performance metrics share the model's performance page (core/model_pages.py)
    def page_of(model: str, channel: str) -> tuple[str, str]:
        return (model, "__performance__") if is_member(channel) else (model, channel)

    channels = {page_of(p[0], p[1]) for p in detector_pages}
    assert {page_of(a["model"], a["feature"]) for a in alerts} == channels
    assert ("labelled-v1", "__performance__") in channels
    assert len(alerts) < len(detector_pages)
    fingerprints: dict[str, tuple[str, str]] = {}
    for a in alerts:
        assert fingerprints.setdefault(a["fingerprint"], page_of(a["model"], a["feature"])) == page_of(a["model"], a["feature"])
        if a["status"] == "firing":
            names = [d["name"] for d in a["evidence"]["detectors"]]
            assert names[0] == a["detector"] and set(names) <= {p[2] for p in detector_pages if (p[0], p[1]) == (a["model"], a["feature"])}
        assert "partition" not in a["labels"]
        text = json.dumps({k: v for k, v in a.items() if k != "source"})
        assert "partition" not in text.lower(), text[:300]
        assert set(a["source"]) == {"topic", "partition", "offset"}


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
    out = run(build_records())
    out["detector_pages"] = [_page(a) for a in run(build_records(), DETECTOR_PAGES)["alerts"]]
    GOLDEN.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {GOLDEN}")


# ------------------------------------------------------------------ the fast paths, one by one
# Each optimised step against the reference it replaces, on random inputs: exact equality.
import math  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from river import drift as river_drift  # noqa: E402
from scipy import stats as sps  # noqa: E402

from stream_monitor.core import detectors as det  # noqa: E402
from stream_monitor.core import events as ev  # noqa: E402
from stream_monitor.core import stats  # noqa: E402
from stream_monitor.core.settings import AdwinParams, PageHinkleyParams  # noqa: E402


def _typed(x: Any) -> Any:
    """A value with its type spelled out, so 1, 1.0 and True (and NaN) compare as different/equal."""
    if isinstance(x, dict):
        return {"dict": {k: _typed(v) for k, v in x.items()}}
    if isinstance(x, list | tuple):
        return [type(x).__name__, [_typed(v) for v in x]]
    return [type(x).__name__, repr(x)]


def _outcome(out: ev.DecodedEvent | ev.DeadLetter) -> Any:
    if isinstance(out, ev.DeadLetter):
        return ["dead", str(out.reason), out.detail, out.raw, out.position, out.processed]
    e = out.event
    return [
        "event",
        _typed(e.__dict__),
        sorted(e.model_fields_set),
        _typed(e.__pydantic_extra__),
        e.__pydantic_private__,
        out.event_time_ms,
        out.problems,
    ]


_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, -1, 2**53, 2**53 + 1, 2**63, 2**64 - 1, 2**64, 1_767_225_600_000, 32503680000000, 32503680000001]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e308, -1e308, 5e-324, 0.5, 1767225600000.9]),
    st.text(max_size=8),
    st.sampled_from(["", "x", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00.123+01:00", "1767225600000", " 17 ", "yesterday", "NaN", "1e3", "3.5"]),
)
_value = st.one_of(
    _scalar,
    st.lists(_scalar, max_size=2),
    st.dictionaries(st.text(max_size=3), _scalar, max_size=3),
    st.dictionaries(st.text(max_size=2), st.lists(_scalar, max_size=1), max_size=2),
)
_keys = st.sampled_from(
    ["event_id", "model", "model_version", "ts", "features", "prediction", "label", "latency_ms", "extra", "_private", "__dict__", "model_config"]
)


def _mostly(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Usually ``good``, one time in eight anything (one_of would weigh every leaf alike)."""
    return st.integers(0, 7).flatmap(lambda k: good if k else _value)


_model_name = _mostly(st.one_of(st.text(min_size=1, max_size=3), st.sampled_from(["m", "x" * 256, "x" * 257, "é" * 256, ""])))
_scalars = st.dictionaries(st.text(max_size=3), _scalar, max_size=5)
_event = st.fixed_dictionaries(
    {"model": _model_name},
    optional={
        "event_id": _mostly(st.one_of(st.text(max_size=4), st.integers(), st.none())),
        "model_version": _mostly(st.one_of(st.text(max_size=4), st.integers(), st.none())),
        "ts": _mostly(st.one_of(st.integers(0, 32503680000000), st.none(), st.floats(0, 1e13), st.sampled_from(["2026-01-01T00:00:00Z", "17", "2026-01-01 00:00"]))),
        "features": _mostly(st.one_of(_scalars, st.none())),
        "prediction": _mostly(st.one_of(_scalar, _scalars)),
        "label": _mostly(_scalar),
        "latency_ms": _mostly(st.one_of(st.floats(), st.integers(-(2**60), 2**60), st.none())),
        "extra": _value,
        "_x": _value,
    },
)


def _raw(obj: Any) -> bytes:
    return json.dumps(obj, allow_nan=True).encode()


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(obj=st.integers(0, 3).flatmap(lambda k: _event if k else st.one_of(st.dictionaries(_keys, _value, max_size=6), _value)), record_ts=st.sampled_from([None, -1, 0, 1_767_225_600_000]))
def test_fast_decode_accepts_and_rejects_exactly_what_pydantic_does(obj: Any, record_ts: int | None) -> None:
    raw = _raw(obj)
    pos = SourcePosition("t", 1, 7, record_ts)
    assert _outcome(ev.decode_inference(raw, record_ts, pos)) == _outcome(ev.decode_inference_pydantic(raw, record_ts, pos))


@pytest.mark.parametrize(
    "raw",
    [
        b'{"model": "m", "features": {"x": 1e400}}',
        b'{"model": "m", "features": {"x": 123456789012345678901234567890}, "label": -9223372036854775809}',
        b'{"model": "m", "latency_ms": 12, "prediction": {"a": NaN, "b": 1}}',
        b'{"model": "m", "ts": 1767225600000.9, "event_id": 12, "model_version": 3}',
        b'{"model": "m", "ts": true}',
        b'{"model": "m", "latency_ms": true}',
        b'{"model": "m", "latency_ms": "3.5"}',
        b'{"model": "m", "features": {"a": {"b": 1}}}',
        b'{"model": "m", "model_config": 1, "__dict__": 2, "_x": 3}',
        b'{"model": "m", "features": null, "prediction": null, "label": null, "latency_ms": null, "ts": null}',
    ],
)
def test_fast_decode_edge_cases(raw: bytes) -> None:
    for record_ts in (None, 5):
        assert _outcome(ev.decode_inference(raw, record_ts)) == _outcome(ev.decode_inference_pydantic(raw, record_ts))


def _stream(seed: int, n: int = 6000) -> list[float]:
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1, n)
    for start in rng.integers(0, n, 4):  # a few shifts up and down, so both detectors trip and reset
        z[start : start + int(rng.integers(200, 1500))] += rng.choice([-3.0, -1.0, 0.5, 2.0])
    return z.tolist()


@pytest.mark.parametrize("seed", range(12))
def test_page_hinkley_inline_equals_river(seed: int) -> None:
    z = _stream(seed)
    params = PageHinkleyParams() if seed % 3 else PageHinkleyParams(ph_threshold=3.0, min_instances=5)  # many trips
    ours = det.PageHinkleyDetector(params)
    ref = det.PageHinkleyDetector(params)
    trips_ours, trips_ref = [], []
    sizes = np.random.default_rng(seed).integers(1, 400, size=len(z))  # calls of 1..399 values
    chunk = 0
    for size in sizes:
        if chunk >= len(z):
            break
        part = z[chunk : chunk + int(size)]
        trips_ours += [chunk + i for i in ours.update_many(part)]
        trips_ref += [chunk + i for i in ref._update_many_river(part)]
        chunk += len(part)
    assert trips_ours == trips_ref and trips_ours, "both must trip, at the same values"
    a, b = ours.detector, ref.detector
    for attr in ("_sum_increase", "_sum_decrease", "_min_increase", "_max_decrease", "_drift_detected"):
        assert _typed(getattr(a, attr)) == _typed(getattr(b, attr)), attr
    assert (a._x_mean.n, a._x_mean._mean) == (b._x_mean.n, b._x_mean._mean)


@pytest.mark.parametrize("seed", range(8))
def test_adwin_loop_equals_river(seed: int) -> None:
    z = _stream(seed)
    params = AdwinParams() if seed % 2 else AdwinParams(delta=0.5)  # many trips
    ours = det.AdwinDetector(params)
    ref = det.AdwinDetector(params)
    trips_ours, trips_ref = [], []
    sizes = np.random.default_rng(seed).integers(1, 400, size=len(z))
    chunk = 0
    for size in sizes:
        if chunk >= len(z):
            break
        part = z[chunk : chunk + int(size)]
        trips_ours += [chunk + i for i in ours.update_many(part)]
        trips_ref += [chunk + i for i in ref._update_many_river(part)]
        chunk += len(part)
    assert trips_ours == trips_ref and trips_ours
    a, b = ours.detector, ref.detector
    assert (a.drift_detected, a.width, a.total, a.variance, a.n_detections) == (b.drift_detected, b.width, b.total, b.variance, b.n_detections)


def test_ks_and_chi2_equal_scipy() -> None:
    rng = np.random.default_rng(3)
    for i in range(1500):
        n1, n2 = int(rng.integers(1, 2001)), int(rng.integers(1, 1500))
        kind = i % 4
        if kind == 0:
            a, b = rng.normal(size=n1), rng.normal(rng.normal() * 0.5, 1, n2)
        elif kind == 1:
            a, b = rng.integers(0, 5, n1).astype(float), rng.integers(0, 6, n2).astype(float)
        elif kind == 2:
            a, b = np.round(rng.normal(size=n1), 1), np.round(rng.normal(0.2, 1, n2), 1)
        else:
            a, b = np.full(n1, 1.0), rng.choice([1.0, 2.0], n2)
        a = np.sort(a) if i % 3 else a
        res = sps.ks_2samp(a, b, method="asymp")
        assert stats.ks_2samp(a, b) == (float(res.statistic), float(res.pvalue)), (i, n1, n2)
        k = int(rng.integers(2, 12))
        ref, cur = rng.integers(0, 200, k), rng.integers(0, 200, k)
        ref[0] = 0 if i % 5 == 0 else ref[0]
        cur[0] = 0 if i % 5 == 0 else cur[0]
        table = np.vstack([ref.astype(float), cur.astype(float)])
        table = table[:, table.sum(axis=0) > 0]
        if table.shape[1] >= 2 and not (table.sum(axis=1) == 0).any():
            res2 = sps.chi2_contingency(table, correction=False)
            assert stats.chi2_two_sample(ref, cur) == (float(res2.statistic), float(res2.pvalue), int(res2.dof))
    # NaN and empty inputs go to scipy itself
    nan_ref = np.array([0.0, 1.0, math.nan])
    res = sps.ks_2samp(nan_ref, np.array([0.5]), method="asymp")
    assert _typed(stats.ks_2samp(nan_ref, np.array([0.5]))) == _typed((float(res.statistic), float(res.pvalue)))


def test_rate_detectors_equal_isin() -> None:
    rng = np.random.default_rng(4)
    for _ in range(300):
        flags = rng.choice(4, size=int(rng.integers(0, 1200)), p=rng.dirichlet(np.ones(4))).astype(np.uint8)
        view = det.WindowView(values=np.zeros(0), flags=flags)
        for d in (
            det.missing_rate_detector(det.RateParams(), 0.01),
            det.out_of_range_detector(det.OutOfRangeParams(), 0.02, True),
            det.out_of_range_detector(det.OutOfRangeParams(), 0.02, False),
            det.unseen_category_detector(det.RateParams()),
        ):
            f = flags[flags != det.FLAG_MISSING] if d.over_present else flags
            expected = None if f.size == 0 else d._threshold_eval(float(np.isin(f, d.flags).sum()) / f.size - d.reference_rate)
            assert d.evaluate(view) == expected
