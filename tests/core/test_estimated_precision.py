"""Per-class label-free precision estimates (``__estimated_precision__.<class>``) of a multiclass model.

The streams are seeded and the model is calibrated by construction: three classes with Gaussian
class-conditional inputs (unit variance, means on a triangle); the model outputs the exact
posterior P(y | x) and each label is drawn from that posterior, so a probability of 0.7 is right
70 % of the time whatever the inputs. The inputs come from the three classes' clusters (``billing``
30 %, ``refund`` 20 %, ``other`` 50 %). The covariate shift: from ``SHIFT`` on, 40 % of the events
come from a tight cluster between the classes, a little toward ``refund``, where the posterior of
``refund`` is about 0.6 — P(y | x) does not move, the inputs do, and the model's ``refund``
decisions are right much less often (precision about 0.83 before, 0.67 after) while ``billing``
and ``other`` decisions are untouched (0.84 and 0.86).
Labels arrive ``DELAY`` events after their prediction, through the label topic; the calibration
(top-label histogram binning) is learned from the first 2,000 of them. Run with ``pytest -s`` to
see the figures.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from stream_monitor.core import state
from stream_monitor.core.estimate import Realised
from stream_monitor.core.monitor import PartitionMonitor
from stream_monitor.core.spec import MonitorSpec
from tests.core.test_estimates import DELAY, records  # events between a prediction and its label; the two topics' records

T0 = 1_767_225_600_000
CLASSES = ("billing", "refund", "other")
WEIGHTS = (0.3, 0.2, 0.5)
MEANS = 0.6 * np.array([[0.0, 2.6], [-2.25, -1.3], [2.25, -1.3]])
HARD = 0.5 * MEANS[1] / np.linalg.norm(MEANS[1])  # between the classes, toward refund: P(refund | x) about 0.6
HARD_SHARE = 0.4  # of the events after the shift
SHIFT = 20_000
BATCH = 500
WINDOW = 2000  # the estimate channels' window (twice the default), in rows decided that class
SLO = {"precision": {"min": 0.75}}
ERROR = 0.04  # the stated error of the estimate against the realised precision of the same 2,000 rows
WINDOWS_MAE = 0.02  # and the mean error over every window of 2,000 decided rows of every class


def posterior(x: np.ndarray) -> np.ndarray:
    """P(class | x) for each row of ``x``: equal-prior Gaussian classes of unit variance."""
    z = -0.5 * ((x[:, None, :] - MEANS[None, :, :]) ** 2).sum(-1)
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def stream(seed: int, n: int, shift: int | None = SHIFT) -> list[dict[str, Any]]:
    """``n`` events of the calibrated model, each with its label (kept aside by :func:`records`); the shift from ``shift`` on."""
    rng = np.random.default_rng(seed)
    k = rng.choice(3, size=n, p=WEIGHTS)
    x = MEANS[k] + rng.normal(0.0, 1.0, (n, 2))
    if shift is not None:
        hard = (np.arange(n) >= shift) & (rng.random(n) < HARD_SHARE)
        x[hard] = HARD + rng.normal(0.0, 0.1, (int(hard.sum()), 2))
    p = posterior(x)
    y = (rng.random(n)[:, None] > p.cumsum(1)).sum(1).clip(0, 2)
    out = []
    for i in range(n):
        proba = {f"proba_{c}": float(p[i, j]) for j, c in enumerate(CLASSES)}
        out.append({"event_id": f"e{i}", "model": "router", "ts": T0 + 1000 * i, "features": {"x0": float(x[i, 0]), "x1": float(x[i, 1])},
                    "prediction": {"y_pred": CLASSES[int(p[i].argmax())], **proba}, "label": CLASSES[int(y[i])]})  # fmt: skip
    return out


def spec_of(slo: dict[str, Any] | None = None, **model: Any) -> MonitorSpec:
    """Model ``router`` with estimates from its ``proba_<class>`` outputs and the precision SLO; one page per channel
    unless ``performance_pages`` says otherwise."""
    model = {"task": "multiclass", "class_probabilities": "proba_", "estimate": {"enabled": True}, "slo": SLO if slo is None else slo,
             "performance_pages": "channel", **model}  # fmt: skip
    return MonitorSpec.model_validate({"models": {"router": model}})


def run_delayed(spec: MonitorSpec, events: list[dict[str, Any]], split: int | None = None) -> tuple[PartitionMonitor, list[tuple[int, dict[str, Any]]], list[bytes]]:
    """The monitor, every alert with the number of labels read before it, and the alert bytes; labels ``DELAY`` events
    late. With ``split``, the state goes through its items and back before the batch at that event."""
    monitor = PartitionMonitor(spec, partition=0)
    inference, labels = records(events)
    out: list[tuple[int, dict[str, Any]]] = []
    payloads: list[bytes] = []
    done = 0

    def take(result: Any) -> None:
        assert not result.dead_letters, result.dead_letters[:1]
        out.extend((done, orjson.loads(a.payload)) for a in result.alerts)
        payloads.extend(a.payload for a in result.alerts)

    for i in range(0, len(inference), BATCH):
        if split is not None and i == split:
            monitor = PartitionMonitor.from_state_items(spec, 0, monitor.state_items(only_dirty=False))
        take(monitor.process(inference[i : i + BATCH]))
        due = i + BATCH - DELAY  # labels of the events up to here have come
        if due > done:
            labelled = monitor.process_labels(labels[done:due])
            done = due
            take(labelled)
    return monitor, out, payloads


def firing(alerts: list[tuple[int, dict[str, Any]]], channel: str) -> list[tuple[int, dict[str, Any]]]:
    """The firing (not escalated) alerts on ``channel``."""
    return [(n, a) for n, a in alerts if a["feature"] == channel and a["status"] == "firing" and not a["escalated"]]


def realised_precision(events: list[dict[str, Any]], klass: str, end: int, rows: int = WINDOW) -> float:
    """The realised precision of ``klass`` over the last ``rows`` events decided ``klass`` up to event ``end`` (included)."""
    decided = [e for e in events[: end + 1] if e["prediction"]["y_pred"] == klass][-rows:]
    return float(np.mean([e["label"] == klass for e in decided]))


# ------------------------------------------------------------------ the measured check
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_class_whose_decisions_degrade_is_flagged_by_its_estimated_precision_before_the_first_delayed_label(seed: int) -> None:
    events = stream(seed, SHIFT + 12_000)
    monitor, alerts, _ = run_delayed(spec_of(), events)
    est = firing(alerts, "__estimated_precision__.refund")
    assert est, "the shift raised no estimated precision alert"
    labels_read, first = est[0]
    offset = first["source"]["offset"]
    assert first["detector"] == "slo_precision" and first["kind"] == "performance"
    assert SHIFT <= offset < SHIFT + DELAY and labels_read <= SHIFT  # after the shift, before any label of a shifted event
    # the other classes' estimates raise nothing; nothing estimated fired before the shift
    others = [(a["feature"], a["source"]["offset"]) for _, a in alerts if a["feature"].startswith("__estimated") and a["feature"] != "__estimated_precision__.refund"]
    assert others == []
    # the estimate in the alert is the window's mean of q over the last 2,000 rows decided refund: the realised
    # precision of the same rows is within ERROR
    realised = realised_precision(events, "refund", offset)
    assert abs(first["statistic"] - realised) < ERROR, (first["statistic"], realised)
    # the alert shows the realised precision of refund known so far (labels of events before the shift) next to it
    e = first["evidence"]["estimate"]
    assert e["calibrated"] and e["labels"] and e["realised_count"] == 1000 and e["realised"] > 0.78  # pre-shift: labels still say fine
    assert f"realised {e['realised']:.3g} over the latest 1,000 labels" in first["annotations"]["summary"]
    assert "estimated precision of class `refund`" in first["annotations"]["summary"]
    # the realised __precision__.refund confirms it once the shifted events' labels came
    real = firing(alerts, "__precision__.refund")
    confirmed = next((n + DELAY for n, a in real if a["source"]["offset"] > SHIFT), None)
    # per window of 2,000 decided rows, over the whole stream: estimate against realised, per class
    model = monitor.models["router"]
    gaps: dict[str, list[tuple[float, float]]] = {}
    for klass in CLASSES:
        rows = [e for e in events if e["prediction"]["y_pred"] == klass]
        for w in range(0, len(rows) - WINDOW + 1, WINDOW):
            chunk = rows[w : w + WINDOW]
            q = float(np.mean([dict(model.estimates(e["prediction"]))[f"__estimated_precision__.{klass}"] for e in chunk]))
            gaps.setdefault(klass, []).append((q, float(np.mean([e["label"] == klass for e in chunk]))))
    diffs = [abs(a - b) for pairs in gaps.values() for a, b in pairs]
    mae, worst = float(np.mean(diffs)), max(diffs)
    print(
        f"\nseed {seed}: shift at event {SHIFT}, labels {DELAY} events late; __estimated_precision__.refund fired at event {offset} "
        f"({offset - SHIFT} events after the shift, {labels_read} labels read, none of a shifted event), estimate "
        f"{first['statistic']:.3f} vs realised {realised:.3f} over the same 2,000 rows; realised __precision__.refund alert read at "
        f"inference event {confirmed}; per window of {WINDOW} decided rows (estimate, realised): "
        + "; ".join(f"{k} {[(round(a, 3), round(b, 3)) for a, b in v]}" for k, v in gaps.items())
        + f"; mean abs error {mae:.4f}, worst {worst:.3f}"
    )
    assert mae < WINDOWS_MAE and worst < 0.05


def test_no_estimate_alert_over_a_no_shift_control() -> None:
    events = stream(4, 30_000, shift=None)
    monitor, alerts, _ = run_delayed(spec_of({"precision": {"min": 0.75}, "error_rate": {"max_relative_increase": 0.25}}), events)
    est = [(a["feature"], a["source"]["offset"]) for _, a in alerts if a["feature"].startswith("__estimated")]
    channels = sorted(n for n in monitor.models["router"].channels if n.startswith("__estimated_precision__"))
    print(f"\nno-shift control, 30,000 events, SLOs precision >= 0.75 and error rate +25 %: {len(est)} estimate alerts on {channels}")
    assert channels == [f"__estimated_precision__.{c}" for c in sorted(CLASSES)]
    assert est == []


# ------------------------------------------------------------------ the channels
def test_estimated_precision_is_fed_per_tracked_class_with_the_calibrated_probability_of_the_decision() -> None:
    events = stream(5, 12_000, shift=None)
    monitor, _, _ = run_delayed(spec_of(), events)
    m = monitor.models["router"]
    assert m.calibration.learned
    for klass in CLASSES:
        ch = m.channels[f"__estimated_precision__.{klass}"]
        # the 2,000th label was read after the inference events up to 7,000: the estimates restarted there
        decided = [e for e in events[2000 + DELAY :] if e["prediction"]["y_pred"] == klass]
        assert ch.observations == len(decided), (klass, ch.observations, len(decided))
        q = [dict(m.estimates(e["prediction"]))[f"__estimated_precision__.{klass}"] for e in decided]
        assert q == [m.calibration.calibrated(e["prediction"][f"proba_{klass}"]) for e in decided]
        settings = ch.settings
        assert settings.numeric_detectors == ("slo_precision",) and settings.params("slo_precision").expected is True
        assert settings.window.size == WINDOW
    # without a precision SLO the channels are recorded and judge nothing
    assert spec_of({}).channel_settings("router", "__estimated_precision__.refund", "numeric").numeric_detectors == ()


def test_only_the_tracked_classes_get_an_estimated_precision() -> None:
    events = stream(6, 3000, shift=None)
    spec = MonitorSpec.model_validate({"models": {"router": {"task": "multiclass", "class_probabilities": "proba_", "estimate": {"enabled": True}}},
                                       "limits": {"classes_per_model": 2}})  # fmt: skip
    monitor, _, _ = run_delayed(spec, events)
    m = monitor.models["router"]
    assert len(m.classes) == 2
    assert sorted(n for n in m.channels if n.startswith("__estimated_precision__")) == sorted(f"__estimated_precision__.{c}" for c in m.classes)


def test_a_binary_model_gets_the_estimated_precision_of_its_positive_class() -> None:
    from tests.core.test_estimates import run_delayed as binary_run
    from tests.core.test_estimates import spec_of as binary_spec
    from tests.core.test_estimates import stream as binary_stream

    events = binary_stream(13, [(12000, 3.0), (8000, 1.0)])
    monitor, alerts = binary_run(binary_spec({"precision": {"min": 0.8}}), events)
    model = monitor.models["clf"]
    ch = model.channels["__estimated_precision__"]
    assert ch.observations > 0 and ch.settings.params("slo_precision").expected is True
    fired = [(n, a) for n, a in alerts if a["feature"] == "__estimated_precision__" and a["status"] == "firing"]
    assert fired and fired[0][1]["source"]["offset"] >= 12000 and fired[0][0] <= 12000
    after = [e for e in events[12000:] if e["prediction"]["y_pred_proba"] >= 0.5]
    est = float(np.mean([dict(model.estimates(e["prediction"]))["__estimated_precision__"] for e in after]))
    real = float(np.mean([e["label"] == 1 for e in after]))
    print(f"\nbinary: estimated precision after the shift {est:.3f}, realised {real:.3f}; alert at event {fired[0][1]['source']['offset']}")
    assert abs(est - real) < ERROR
    assert fired[0][1]["evidence"]["estimate"]["realised"] is not None  # the realised __precision__ next to it


# ------------------------------------------------------------------ pages, report and state
def test_the_estimated_precision_leads_the_models_performance_page() -> None:
    events = stream(1, SHIFT + 6000)
    _, alerts, _ = run_delayed(spec_of(performance_pages="model"), events)
    from stream_monitor.core.model_pages import page_fingerprint

    pages = [a for _, a in alerts if a["fingerprint"] == page_fingerprint("router") and a["status"] == "firing"]
    assert pages and pages[0]["feature"] == "__estimated_precision__.refund", [(a["feature"], a["source"]["offset"]) for a in pages]
    assert SHIFT <= pages[0]["source"]["offset"] < SHIFT + DELAY
    assert [c["channel"] for c in pages[0]["evidence"]["channels"]] == ["__estimated_precision__.refund"]
    # a member: its own page is not published, the model's page stands for it
    assert not any(a["feature"].startswith("__estimated_precision__") and a["fingerprint"] != page_fingerprint("router") for _, a in alerts)


def test_estimated_precision_resumes_from_a_checkpoint_as_if_uninterrupted() -> None:
    events = stream(7, SHIFT + 4000)
    _, _, uninterrupted = run_delayed(spec_of(), events)
    assert any(b'"__estimated_precision__.refund"' in a for a in uninterrupted)
    for split in (6000, SHIFT + 1000):  # mid-calibration (1,000 labels read); after the shift, precision blocks counted
        assert run_delayed(spec_of(), events, split)[2] == uninterrupted, split


def test_the_realised_precision_blocks_round_trip_and_a_malformed_map_is_refused() -> None:
    r = Realised()
    r.begin_batch(True)
    for i in range(2500):
        r.add(i, "__precision__.refund", float(i % 4 != 0), True)
        r.add(i, "__precision__.other", 1.0, True)
    back = state.decode_model(state.encode_model([], [], None, None, r), "router").realised
    assert back is not None and back.to_state() == r.to_state() and back.snapshot(True) == r.snapshot(True)
    assert dict(back.blocks) == {"__precision__.other": (1.0, 1000), "__precision__.refund": (0.75, 1000)}
    old = {k: v for k, v in r.to_state().items() if k != "precision"}  # as written before per-class blocks existed
    assert Realised.from_state(old).precision == {}
    for bad in ({"__recall__.a": [0.0, 1, None]}, {"__precision__.a": [0.0, 1000, None]}, {"__precision__.a": [0.0, 1]}, ["a"]):
        blob = state._pack({"format": state.FORMAT_VERSION, "kind": "model", "known_features": [], "channels": [],
                            "realised": {**r.to_state(), "precision": bad}})  # fmt: skip
        with pytest.raises(state.StateFormatError, match="realised"):
            state.decode_model(blob, "router")


def test_a_binary_models_estimated_precision_takes_its_reference_from_a_calibrated_baseline(tmp_path: Any) -> None:
    from stream_monitor.baseline import load_baselines
    from tests.core.test_estimate_reference import run as reference_run
    from tests.core.test_estimates import stream as binary_stream
    from tests.core.test_estimates_from_baseline import training_profile

    profile = training_profile(tmp_path)
    monitor, _, spec = reference_run(tmp_path, binary_stream(4, [(3000, 3.0)]), profile)
    ref = monitor.models["clf"].channels["__estimated_precision__"].reference
    cal = load_baselines(spec, warn=False)["clf"].calibration
    train = orjson.loads(profile.read_bytes())["channels"]["__prediction__"]["sample"]
    positive = [p for p in train if p >= 0.5]
    assert ref is not None and ref.kind == "baseline"
    assert ref.mean == pytest.approx(np.mean([cal.calibrated(p) for p in positive]))  # q of the profile's positive decisions
    assert 0 < ref.count < 20_000  # the profile's predictions decided positive, not all of them


def test_the_readme_example_is_what_the_code_produces() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    _, alerts, _ = run_delayed(spec_of(), stream(1, SHIFT + 3000))
    (_, a), *_ = firing(alerts, "__estimated_precision__.refund")
    assert orjson.dumps(a["annotations"]["summary"]).decode() in readme
    assert orjson.dumps(a["evidence"]["estimate"]).decode().replace(",", ", ").replace(":", ": ") in readme
