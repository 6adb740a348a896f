"""A baseline per model version: a switch to a version with its own baseline takes that baseline as reference.

The stream is seeded: a classifier whose version v2 was trained on other inputs (feature ``x``
around 2 instead of 0) and scores higher and errs more. Its traffic matches v2's own baseline, so
judged against it nothing moves; judged against v1's (the model's ``baseline``) everything does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from stream_monitor.core.events import SourcePosition
from stream_monitor.core.monitor import InputRecord, PartitionMonitor
from stream_monitor.core.reference import Baseline, NumericReference
from stream_monitor.core.spec import MonitorSpec

T0 = 1_767_225_600_000
V1 = {"x": 0.0, "score": 0.3, "errors": 0.10}
V2 = {"x": 2.0, "score": 0.45, "errors": 0.25}
SWITCH = 8000


def draws(seed: int, n: int, x: float, score: float, errors: float) -> dict[str, np.ndarray]:
    """``n`` draws of a version's traffic: feature ``x``, probability, class, label (wrong at rate ``errors``)."""
    rng = np.random.default_rng(seed)
    proba = np.clip(rng.normal(score, 0.1, n), 0.0, 1.0)
    pred = (proba >= 0.5).astype(int)
    label = pred ^ (rng.random(n) < errors).astype(int)
    return {"x": rng.normal(x, 1.0, n), "proba": proba, "pred": pred, "label": label}


def baseline(seed: int, traffic: dict[str, float]) -> Baseline:
    """A version's baseline, as `stream-monitor baseline` would profile its training data (features, prediction, label, error rate)."""
    d = draws(seed, 20_000, **traffic)
    values = {"x": d["x"], "__prediction__.y_pred_proba": d["proba"], "__label__": d["label"], "__error_rate__": d["pred"] != d["label"]}
    return Baseline({name: NumericReference.from_values(v.astype(float), 0, 0, "baseline") for name, v in values.items()})


def events(seed: int, segments: list[tuple[int, str, dict[str, float]]]) -> list[dict[str, Any]]:
    """Labelled inference events: ``(n, model_version, traffic)`` segments."""
    out: list[dict[str, Any]] = []
    for k, (n, version, traffic) in enumerate(segments):
        d = draws(seed * 100 + k, n, **traffic)
        for i in range(n):
            out.append({"model": "clf", "model_version": version, "ts": T0 + 1000 * len(out), "features": {"x": float(d["x"][i])},
                        "prediction": {"y_pred_proba": float(d["proba"][i]), "y_pred": int(d["pred"][i])}, "label": int(d["label"][i])})  # fmt: skip
    return out


def records(evs: list[dict[str, Any]]) -> list[InputRecord]:
    return [InputRecord(orjson.dumps(e), SourcePosition("t", 0, i, e["ts"])) for i, e in enumerate(evs)]


SPEC = MonitorSpec.model_validate({"models": {"clf": {"task": "binary"}}, "defaults": {"alerting": {"group_by": "detector"}}})


def baselines(with_v2: bool = True) -> dict[str, Baseline]:
    b1 = baseline(1, V1)
    if with_v2:
        b1.versions["v2"] = baseline(2, V2)
    return {"clf": b1}


def run(evs: list[dict[str, Any]], base: dict[str, Baseline], batch: int = 777, restore_at: int | None = None) -> tuple[PartitionMonitor, list[bytes]]:
    """Every alert's bytes, in batches of ``batch`` (cutting through the switch); restored from its state items at ``restore_at``."""
    monitor = PartitionMonitor(SPEC, 0, base)
    recs = records(evs)
    out: list[bytes] = []
    for i in range(0, len(recs), batch):
        if restore_at is not None and i == restore_at:
            monitor = PartitionMonitor.from_state_items(SPEC, 0, monitor.state_items(only_dirty=False), base)
        result = monitor.process(recs[i : i + batch])
        assert not result.dead_letters, result.dead_letters[:1]
        out.extend(a.payload for a in result.alerts)
    return monitor, out


def firing(alerts: list[bytes]) -> list[dict[str, Any]]:
    return [a for a in map(orjson.loads, alerts) if a["status"] == "firing" and not a["escalated"]]


def test_a_switch_to_a_version_with_a_baseline_takes_its_references_and_raises_nothing() -> None:
    evs = events(3, [(SWITCH, "v1", V1), (12_000, "v2", V2)])
    # the control: v2's traffic judged against the model's baseline (v1's training data) drifts everywhere
    _, without = run(evs, baselines(with_v2=False))
    moved = {a["feature"] for a in firing(without) if a["source"]["offset"] >= SWITCH}
    assert {"x", "__label__"} <= moved, moved
    monitor, alerts = run(evs, baselines())
    assert firing(alerts) == [], [(a["feature"], a["detector"], a["source"]["offset"]) for a in firing(alerts)][:5]
    m = monitor.models["clf"]
    assert m.versions == ["v1", "v2"]
    own = baselines()["clf"].versions["v2"]
    for name in ("x", "__prediction__.y_pred_proba", "__label__", "__error_rate__"):  # what v2's baseline covers
        ref = m.channels[name].reference
        assert ref is not None and ref.kind == "baseline" and ref.to_profile() == own[name].to_profile(), name
    # a channel v2's baseline does not cover: as before, a model-dependent one restarts with a warm-up ...
    assert m.channels["__prediction__.y_pred"].reference.kind == "warmup"
    assert m.channels["__prediction__.y_pred"].observations == 12_000
    # ... and the features keep their observations only when no other baseline applies (x restarted on v2's)
    assert m.channels["x"].observations == 12_000


def test_a_drift_relative_to_the_new_baseline_is_detected_with_the_version() -> None:
    shift = SWITCH + 6000
    evs = events(4, [(SWITCH, "v1", V1), (6000, "v2", V2), (6000, "v2", {**V2, "x": 2.6})])
    _, alerts = run(evs, baselines())
    found = firing(alerts)
    assert found, "the drift of x relative to v2's baseline raised nothing"
    assert all(a["source"]["offset"] >= shift for a in found), [(a["feature"], a["source"]["offset"]) for a in found][:3]
    assert {a["feature"] for a in found} == {"x"} and all(a["model_version"] == "v2" for a in found)
    first = min(a["source"]["offset"] for a in found)
    print(f"\nx shifted by 0.6 sd relative to v2's baseline at event {shift}: first alert at {first} ({first - shift} events later)")


def test_a_first_version_with_a_baseline_starts_on_it() -> None:
    evs = events(5, [(3000, "v2", V2)])
    for batch in (1000, len(evs)):
        monitor, alerts = run(evs, baselines(), batch=batch)
        m = monitor.models["clf"]
        assert m.versions == ["v2"] and firing(alerts) == []
        assert m.channels["x"].reference.to_profile() == baselines()["clf"].versions["v2"]["x"].to_profile()


@pytest.mark.parametrize("restore_at", [7000, 7770, 15540])
def test_a_switch_to_a_baselined_version_resumes_from_a_checkpoint_as_if_uninterrupted(restore_at: int) -> None:
    evs = events(6, [(SWITCH, "v1", V1), (6000, "v2", V2), (6000, "v2", {**V2, "x": 2.6})])
    _, uninterrupted = run(evs, baselines())
    assert firing(uninterrupted)
    assert run(evs, baselines(), restore_at=restore_at)[1] == uninterrupted


def test_alerts_do_not_depend_on_batch_boundaries() -> None:
    evs = events(7, [(SWITCH, "v1", V1), (6000, "v2", V2), (6000, "v2", {**V2, "x": 2.6})])
    want = run(evs, baselines(), batch=len(evs))[1]
    assert firing(want)
    for batch in (500, 333):
        assert run(evs, baselines(), batch=batch)[1] == want, batch


def test_a_model_without_version_baselines_is_unchanged() -> None:
    """The model's own ``baseline`` only: the switch restarts the model-dependent channels on it, features keep theirs."""
    evs = events(8, [(SWITCH, "v1", V1), (3000, "v2", V1)])
    monitor, _ = run(evs, baselines(with_v2=False))
    m = monitor.models["clf"]
    assert m.channels["x"].observations == len(evs)
    assert m.channels["__error_rate__"].reference.to_profile() == baselines(with_v2=False)["clf"]["__error_rate__"].to_profile()
    assert m.channels["__error_rate__"].observations == 3000
