"""Multiclass models: per-class recall, precision and F1 channels, their cap, their state, and label-free estimates.

The streams are seeded: River's ``RandomRBF`` (four classes) scored by a Gaussian naive Bayes
model trained on the first 5,000 events and then frozen. Its classes are ``billing``, ``tech``,
``refund`` and ``other`` (about 30 %, 6 %, 14 % and 50 % of the labels). The concept change: from
the change on, 60 % of the events whose concept says ``other`` are labelled ``refund`` (P(y | x)
moves, the inputs do not), so the recall of ``refund`` and the precision of ``other`` fall while
``billing`` and ``tech`` are untouched. Run with ``pytest -s`` to see the figures.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from itertools import islice
from typing import Any

import numpy as np
import orjson
import pytest
from scipy import special
from structlog.testing import capture_logs

from stream_monitor.core import state
from stream_monitor.core.events import SourcePosition
from stream_monitor.core.monitor import InputRecord, PartitionMonitor
from stream_monitor.core.spec import MonitorSpec
from tests.core.test_performance import detector_pages, run

T0 = 1_767_225_600_000
CLASSES = ("billing", "tech", "refund", "other")
TRAIN = 5000
PER_CLASS = ("__recall__", "__precision__", "__f1__")


@lru_cache(maxsize=4)
def _frozen(seed: int) -> Any:
    """A Gaussian naive Bayes model trained on the first concept's first 5,000 events, then frozen."""
    from river import naive_bayes
    from river.datasets import synth

    model = naive_bayes.GaussianNB()
    for x, y in islice(iter(synth.RandomRBF(seed_model=3, seed_sample=seed, n_classes=4, n_features=4, n_centroids=12)), TRAIN):
        model.learn_one(x, y)
    return model


def joint_log_likelihoods(model: Any, xs: list[dict[Any, float]]) -> list[dict[Any, float]]:
    """``[model.joint_log_likelihood(x) for x in xs]`` of a frozen River ``GaussianNB``: its arithmetic, in its order (so
    the same floats: ``test_the_likelihoods_are_rivers``), with each Gaussian's parameters read once instead of per call."""
    from river.naive_bayes.gaussian import _LOG_PDF_EPS, _PDF_EPS

    total = sum(model.class_counts.values())
    root = math.sqrt(2.0 * math.pi)
    params: dict[Any, tuple[float, dict[Any, tuple[float, float] | None]]] = {}
    for c in model.class_counts:
        per_feature: dict[Any, tuple[float, float] | None] = {}
        for i, g in model.gaussians.get(c, {}).items():
            var = g._var
            n = var.mean.n
            variance = var._S / (n - var.ddof) if n > var.ddof else 0.0
            per_feature[i] = (var.mean._mean, math.sqrt(variance)) if variance > 0.0 else None
        params[c] = (math.log(model.class_counts[c] / total), per_feature)
    exp, log = math.exp, math.log
    out = []
    for x in xs:
        row = {}
        for c, (prior, per_feature) in params.items():
            terms = []
            for i, xi in x.items():
                if i not in per_feature:
                    terms.append(_LOG_PDF_EPS)
                elif (p := per_feature[i]) is None:
                    terms.append(log(_PDF_EPS + 0.0))
                else:
                    mu, sigma = p
                    z = (xi - mu) / sigma
                    terms.append(log(_PDF_EPS + exp(-0.5 * z * z) / root / sigma))
            row[c] = prior + sum(terms)
        out.append(row)
    return out


def test_the_likelihoods_are_rivers() -> None:
    """The fast likelihoods of :func:`stream` are River's own, to the last bit (checked over 100k events of
    seeds 1-9 once; here 3,000 of two seeds)."""
    from river.datasets import synth

    for seed in (1, 4):
        model = _frozen(seed)
        xs = [x for x, _ in islice(iter(synth.RandomRBF(seed_model=3, seed_sample=seed + 1000, n_classes=4, n_features=4, n_centroids=12)), 3000)]
        assert joint_log_likelihoods(model, xs) == [model.joint_log_likelihood(x) for x in xs]


def stream(seed: int, n: int, change: int | None = None, moved: float = 0.6, probabilities: bool = False) -> list[dict[str, Any]]:
    """``n`` events of the frozen model, labels inline; from ``change`` on, ``moved`` of the ``other`` labels are ``refund``.

    With ``probabilities`` the prediction is ``{"y_pred": class, "proba_<class>": p, ...}``, else the class alone.
    """
    from river.datasets import synth

    model = _frozen(seed)
    rng = np.random.default_rng(seed)
    gen = iter(synth.RandomRBF(seed_model=3, seed_sample=seed + 1000, n_classes=4, n_features=4, n_centroids=12))
    samples = list(islice(gen, n))
    # the class of highest probability is that of highest joint log-likelihood: without the
    # probabilities, River's normalisation (scipy's logsumexp, most of the time of these tests)
    # is skipped; the classes are the same on every stream of these tests (checked once over seeds 1-9, 100k events each)
    likelihoods = joint_log_likelihoods(model, [x for x, _ in samples])
    if probabilities:  # River's predict_proba_one, its logsumexp done for all rows in one call (the same floats, 5x faster)
        lse = special.logsumexp(np.array([list(j.values()) for j in likelihoods]), axis=1).tolist()
        likelihoods = [{k: math.exp(v - s) for k, v in j.items()} for j, s in zip(likelihoods, lse, strict=True)]
    out: list[dict[str, Any]] = []
    for i, ((x, y), proba) in enumerate(zip(samples, likelihoods, strict=True)):
        predicted = CLASSES[max(proba, key=proba.get)]
        label = CLASSES[y]
        if change is not None and i >= change and label == "other" and rng.random() < moved:
            label = "refund"
        prediction: Any = predicted
        if probabilities:
            prediction = {"y_pred": predicted, **{f"proba_{CLASSES[k]}": float(proba.get(k, 0.0)) for k in range(4)}}
        out.append({"event_id": f"e{i}", "model": "router", "ts": T0 + 1000 * i, "features": {f"x{k}": v for k, v in x.items()},
                    "prediction": prediction, "label": label})  # fmt: skip
    return out


def records(events: list[dict[str, Any]]) -> list[InputRecord]:
    """Input records of ``events``, one offset each."""
    return [InputRecord(orjson.dumps(e), SourcePosition("t", 0, i, e["ts"])) for i, e in enumerate(events)]


def monitor_of(spec: MonitorSpec, events: list[dict[str, Any]]) -> tuple[PartitionMonitor, Any]:
    """A partition monitor that processed ``events`` in batches of 500, and the counts of values refused by limits."""
    monitor = PartitionMonitor(spec, partition=0)
    hits: Any = {}
    recs = records(events)
    for i in range(0, len(recs), 500):
        result = monitor.process(recs[i : i + 500])
        assert not result.dead_letters, result.dead_letters[:1]
        for k, v in result.limits_exceeded.items():
            hits[k] = hits.get(k, 0) + v
    return monitor, hits


def spec_of(**model: Any) -> MonitorSpec:
    """One model ``router`` with the given settings (and ``limits`` when given)."""
    limits = model.pop("limits", {})
    return MonitorSpec.model_validate({"models": {"router": model}, "limits": limits})


# ------------------------------------------------------------------ the channels
def test_a_multiclass_model_gets_recall_precision_and_f1_per_class() -> None:
    events = stream(1, 3000)
    m = monitor_of(MonitorSpec(), events)[0].models["router"]
    assert m.task == "multiclass"
    for c in CLASSES:
        labelled = sum(e["label"] == c for e in events)
        predicted = sum(e["prediction"] == c for e in events)
        either = sum(e["label"] == c or e["prediction"] == c for e in events)
        assert m.channels[f"__recall__.{c}"].observations == labelled
        assert m.channels[f"__precision__.{c}"].observations == predicted
        assert m.channels[f"__f1__.{c}"].observations == either
        settings = m.channels[f"__recall__.{c}"].settings
        assert settings.numeric_detectors == ("ddm", "hddm_a", "adwin", "two_proportion")
        assert settings.params("ddm").direction == "down" and settings.params("two_proportion").max_p_value == 1e-4
    assert not {"__recall__", "__precision__", "__f1__"} & set(m.channels)  # no positive class configured


def test_a_binary_model_gets_no_per_class_channels() -> None:
    events = [{"model": "b", "ts": T0 + i, "prediction": i % 2, "label": (i // 3) % 2} for i in range(200)]
    m = monitor_of(MonitorSpec(), events)[0].models["b"]
    assert m.task == "binary" and not [n for n in m.channels if "." in n]


def test_classes_beyond_the_cap_are_counted_not_tracked_and_logged_once() -> None:
    events = stream(1, 3000)
    with capture_logs() as logs:
        monitor, hits = monitor_of(spec_of(limits={"classes_per_model": 2}), events)
    m = monitor.models["router"]
    first = list(dict.fromkeys(c for e in events for c in (e["label"], e["prediction"])))[:2]
    assert sorted({n.partition(".")[2] for n in m.channels if n.startswith(PER_CLASS)}) == sorted(first)
    untracked = sum(1 for e in events if e["label"] not in first or e["prediction"] not in first)
    assert m.untracked == untracked and hits["classes_per_model"] == untracked
    assert [entry["event"] for entry in logs].count("classes_over_limit") == 1


def test_a_configured_per_class_channel_is_tracked_whatever_the_cap() -> None:
    spec = spec_of(limits={"classes_per_model": 1}, channels={"__recall__.tech": {"detection": {"detector_params": {"slo_recall": {"min": 0.9}}}}})
    m = monitor_of(spec, stream(1, 2000))[0].models["router"]
    assert "tech" in m.classes and "__recall__.tech" in m.channels and len(m.classes) == 1


# ------------------------------------------------------------------ concept drift: the class that degrades pages
SEGMENT = 20_000


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_class_that_degrades_fires_on_its_own_channels(seed: int) -> None:
    events = stream(seed, 2 * SEGMENT, change=SEGMENT)
    alerts = [a for a in run(MonitorSpec(), events) if a["status"] == "firing" and not a["escalated"]]
    early = [(a["feature"], a["detector"]) for a in alerts if a["source"]["offset"] < SEGMENT and a["feature"].startswith(PER_CLASS)]
    assert early == [], "a per-class alert before the change"
    first: dict[str, int] = {}
    for a in alerts:
        first.setdefault(a["feature"], a["source"]["offset"] - SEGMENT)
    per_class = {f: d for f, d in first.items() if f.startswith(PER_CLASS)}
    print(f"seed {seed}: first alert per per-class channel, in events after the change: {dict(sorted(per_class.items(), key=lambda x: x[1]))}")
    assert "__recall__.refund" in per_class and "__precision__.other" in per_class
    untouched = [f for f in per_class if f.endswith((".billing", ".tech"))]
    assert untouched == [], "channels of classes the change leaves alone fired"
    recall = next(a for a in alerts if a["feature"] == "__recall__.refund")
    assert recall["kind"] == "performance"
    summary = recall["annotations"]["summary"]
    assert summary.startswith("router recall of class `refund`: recall of class `refund` ") and " → " in summary, summary


def test_a_recall_slo_guards_each_class_and_says_which() -> None:
    events = stream(1, SEGMENT + 10_000, change=SEGMENT)
    alerts = run(spec_of(slo={"recall": {"min": 0.5}}), events)
    slo = [a for a in alerts if a["detector"] == "slo_recall" and a["status"] == "firing"]
    assert {a["feature"] for a in slo} == {"__recall__.refund"}, [(a["feature"], a["statistic"]) for a in slo]
    a = slo[0]
    assert a["source"]["offset"] >= SEGMENT and a["statistic"] < 0.5
    assert f"recall of class `refund` {a['statistic']:.3g} < 0.5 (SLO min)" in a["annotations"]["summary"], a["annotations"]["summary"]
    assert a["annotations"]["description"].startswith(f"slo_recall: recall of class `refund` {a['statistic']:.3g} < 0.5 (SLO min)")
    # the README's example alerts are these
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    hddm = next(x for x in alerts if x["feature"] == "__recall__.refund" and x["detector"] == "hddm_a" and x["status"] == "firing")
    for x in (hddm, a):
        assert orjson.dumps(x["annotations"]["summary"]).decode() in readme
        assert f'"statistic": {x["statistic"]}, "threshold": {x["threshold"]}, "severity": "{x["severity"]}"' in readme


# ------------------------------------------------------------------ the no-drift control
@pytest.mark.slow
@pytest.mark.parametrize("seed", [4, 5, 6, 7, 8, 9])
def test_no_alert_over_100k_multiclass_events_without_drift_with_every_default_detector(seed: int) -> None:
    events = stream(seed, 100_000)
    matrix = {"other": {"refund": 40, "billing": 5}, "refund": {"other": 25}, "tech": {"billing": 10, "other": 10}}
    spec = spec_of(cost={"matrix": matrix})
    channels = set(monitor_of(spec, events[:2000])[0].models["router"].channels)
    assert {f"{m}.{c}" for m in PER_CLASS for c in CLASSES} | {"__error_rate__", "__cost__"} <= channels
    alerts = run(spec, events)
    assert alerts == [], [(a["feature"], a["detector"], a["source"]["offset"]) for a in alerts][:10]


# ------------------------------------------------------------------ state
def test_the_tracked_classes_round_trip_and_resume_as_if_uninterrupted() -> None:
    spec = detector_pages(spec_of(limits={"classes_per_model": 3}))
    events = stream(2, 2 * SEGMENT // 2, change=SEGMENT // 2)
    whole = PartitionMonitor(spec, partition=0)
    split = PartitionMonitor(spec, partition=0)
    recs = records(events)
    a1 = [x.payload for i in range(0, len(recs), 500) for x in whole.process(recs[i : i + 500]).alerts]
    a2 = [x.payload for i in range(0, 12_000, 500) for x in split.process(recs[i : i + 500]).alerts]
    restored = PartitionMonitor.from_state_items(spec, 0, split.state_items(only_dirty=False))
    m, r = split.models["router"], restored.models["router"]
    assert list(r.classes) == list(m.classes) and len(m.classes) == 3 and r.untracked == m.untracked > 0
    a2 += [x.payload for i in range(12_000, len(recs), 500) for x in restored.process(recs[i : i + 500]).alerts]
    assert a2 == a1 and any(b'"__recall__.' in p or b'"__precision__.' in p for p in a1)


def test_a_model_item_without_classes_still_loads() -> None:
    blob = state.encode_model([], ["__recall__.a"], ["v1"])  # as written before per-class state existed
    assert state.decode_model(blob, "m").classes is None
    assert state.decode_model(state.encode_model([], [], None, None, None, (["a", "b"], 4)), "m").classes == (["a", "b"], 4)
    # a monitor's items as an older version wrote them (no classes field): its channels come back and are fed again
    import msgpack

    events = stream(1, 2000)
    monitor = monitor_of(MonitorSpec(), events[:1000])[0]
    items = monitor.state_items(only_dirty=False)
    item = msgpack.unpackb(items["m\x1frouter"])
    assert item.pop("classes")["tracked"]
    items["m\x1frouter"] = msgpack.packb(item, use_bin_type=True)
    restored = PartitionMonitor.from_state_items(MonitorSpec(), 0, items)
    before = restored.models["router"].channels["__recall__.other"].observations
    assert before == monitor.models["router"].channels["__recall__.other"].observations and not restored.models["router"].classes
    restored.process(records(events)[1000:])
    assert restored.models["router"].channels["__recall__.other"].observations == before + sum(e["label"] == "other" for e in events[1000:])


@pytest.mark.parametrize("bad", [{"tracked": ["a", "a"], "untracked": 0}, {"tracked": ["a"], "untracked": -1}, {"tracked": [1], "untracked": 0}, ["a"]])
def test_a_malformed_classes_field_is_refused(bad: Any) -> None:
    import msgpack

    item = msgpack.unpackb(state.encode_model([], [], None))
    item["classes"] = bad
    with pytest.raises(state.StateFormatError, match="classes"):
        state.decode_model(msgpack.packb(item, use_bin_type=True), "m")


# ------------------------------------------------------------------ label-free estimates from per-class probabilities
def shifted(seed: int, n: int, shift: int, keep_confident: float = 0.05) -> list[dict[str, Any]]:
    """Events with per-class probabilities and their true labels; from ``shift`` on a covariate shift: events the model
    is confident about (top probability >= 0.5) are kept with probability ``keep_confident`` only (P(y | x) unchanged)."""
    rng = np.random.default_rng(seed + 7)
    out: list[dict[str, Any]] = []
    for e in stream(seed, 4 * n, probabilities=True):
        if len(out) >= n:
            break
        top = max(v for k, v in e["prediction"].items() if k.startswith("proba_"))
        if len(out) >= shift and top >= 0.5 and rng.random() >= keep_confident:
            continue
        k = len(out)
        out.append({**e, "event_id": f"e{k}", "ts": T0 + 1000 * k})
    return out


MATRIX = {"other": {"refund": 40, "billing": 5}, "refund": {"other": 25}, "tech": {"billing": 10, "other": 10}}


def estimate_spec() -> MonitorSpec:
    """Model ``router`` with estimates from its ``proba_<class>`` outputs, a cost matrix and an error-rate SLO."""
    return spec_of(estimate={"enabled": True}, class_probabilities="proba_", cost={"matrix": MATRIX, "currency": "USD"},
                   slo={"error_rate": {"max_relative_increase": 0.2}})  # fmt: skip


def realised_cost(e: dict[str, Any]) -> float:
    """What a labelled prediction cost by :data:`MATRIX`."""
    return float(MATRIX.get(e["label"], {}).get(e["prediction"]["y_pred"], 0.0))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_covariate_shift_is_flagged_by_the_multiclass_estimate_before_any_label_of_it(seed: int) -> None:
    shift, n, window = 10_000, 18_000, 2000
    events = shifted(seed, n, shift)
    # labels of the events before the shift only: the calibration learns from them; none after
    unlabelled = [e if i < shift else {k: v for k, v in e.items() if k != "label"} for i, e in enumerate(events)]
    alerts = [a for a in run(estimate_spec(), unlabelled) if a["status"] == "firing" and not a["escalated"]]
    est = [a for a in alerts if a["feature"] == "__estimated_error_rate__"]
    assert est and all(a["source"]["offset"] >= shift for a in est), [(a["detector"], a["source"]["offset"]) for a in est]
    assert "estimated error rate" in est[0]["annotations"]["summary"] and est[0]["evidence"]["estimate"]["calibrated"] is True
    # the estimate against the realised error rate and cost, per window of 2,000 events
    monitor = monitor_of(estimate_spec(), events[:shift])[0]
    model = monitor.models["router"]
    assert model.calibration.learned
    errors, costs = [], []
    for w in range(0, n - window + 1, window):
        chunk = events[w : w + window]
        values = [dict(model.estimates(e["prediction"])) for e in chunk]
        estimate = float(np.mean([v["__estimated_error_rate__"] for v in values]))
        realised = float(np.mean([e["label"] != e["prediction"]["y_pred"] for e in chunk]))
        errors.append((w, estimate, realised))
        costs.append((w, 1000 * float(np.mean([v["__estimated_cost__"] for v in values])), 1000 * float(np.mean([realised_cost(e) for e in chunk]))))
    mae = float(np.mean([abs(a - b) for _, a, b in errors]))
    after = [(a, b) for w, a, b in costs if w >= shift]
    cost_gap = float(np.mean([a for a, _ in after]) / np.mean([b for _, b in after]) - 1)
    before = [(a, b) for w, a, b in costs if w < shift]
    before_gap = float(np.mean([a for a, _ in before]) / np.mean([b for _, b in before]) - 1)
    print(f"seed {seed}: first estimate alert {est[0]['source']['offset'] - shift} events after the shift; error rate per window "
          f"(estimate, realised) {[(round(a, 3), round(b, 3)) for _, a, b in errors]}; mean abs error {mae:.4f}; "
          f"estimated cost after the shift {np.mean([a for a, _ in after]):,.0f} vs realised {np.mean([b for _, b in after]):,.0f} USD per 1k ({cost_gap:+.1%}; "
          f"before it {before_gap:+.1%})")
    assert mae < 0.03
    # the cost: q is calibrated over all classes, not per decided class (which the matrix weighs): looser
    assert abs(cost_gap) < 0.15 and abs(before_gap) < 0.25


def test_multiclass_estimates_need_the_probability_outputs() -> None:
    events = stream(1, 300, probabilities=True)
    assert "__estimated_error_rate__" not in monitor_of(spec_of(estimate={"enabled": True}), events)[0].models["router"].channels
    m = monitor_of(spec_of(estimate={"enabled": True}, class_probabilities="proba_"), events)[0].models["router"]
    assert m.channels["__estimated_error_rate__"].observations == len(events)


def test_the_wrong_decisions_counted_for_the_cost_round_trip_and_a_malformed_map_is_refused() -> None:
    from stream_monitor.core.estimate import Calibration

    m = monitor_of(estimate_spec(), shifted(1, 3000, 3000))[0].models["router"]
    cal = m.calibration
    assert cal.learned and sum(v for row in cal.errors.values() for v in row.values()) == sum(cal.n) - sum(cal.pos)
    back = state.decode_model(state.encode_model([], [], None, cal, None), "m").calibration
    assert back.errors == cal.errors and back.error_shares("other") == cal.error_shares("other") is not None
    assert Calibration.from_state({"bins": 2, "size": 4, "n": [1, 0], "pos": [0, 0]}).errors == {}  # as written before errors existed
    for bad in ({"a": {"b": 0}}, {"a": {"b": 5}}, {"a": ["b"]}, ["a"]):
        with pytest.raises(ValueError, match="errors"):
            Calibration.from_state({"bins": 2, "size": 4, "n": [1, 0], "pos": [0, 0], "errors": bad})
