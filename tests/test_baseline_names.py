"""Baselines use the channel names ``run`` uses: an object prediction's outputs are ``__prediction__.<output>``.

A model whose live predictions are ``{"proba": p, "label": y}`` has the channels
``__prediction__.proba`` and ``__prediction__.label``. A flat-row profile built with a plain
``--prediction-column`` has ``__prediction__``, which cannot match them: those channels would start
from a warm-up without a word. ``--prediction-column OUTPUT=COLUMN`` (or ``--config`` naming the
outputs) builds the profile under the live names; a mismatch is a warning naming both names, at
start-up (``load_baselines``, logged), when a channel starts (logged by the core) and in
``check-config`` (printed).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from structlog.testing import capture_logs

from stream_monitor.baseline import BaselineError, build_profile, load_baselines, write_profile
from stream_monitor.commands import main
from stream_monitor.core.events import SourcePosition
from stream_monitor.core.monitor import InputRecord, PartitionMonitor
from stream_monitor.core.spec import ModelSpec, MonitorSpec

T0 = 1_767_225_600_000


pytestmark = pytest.mark.usefixtures("isolated_cli")


def training(path: Path, n: int = 3000, seed: int = 1) -> Path:
    """Training rows: a feature, the model's probability ``p``, its class ``yhat`` and the label ``y``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, n)
    p = 1.0 / (1.0 + np.exp(-2.0 * x))
    label = (rng.random(n) < p).astype(int)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["x", "p", "yhat", "y"])
        w.writerows([[round(float(a), 5), round(float(b), 5), int(b >= 0.5), int(c)] for a, b, c in zip(x, p, label, strict=True)])
    return path


def live_events(n: int, seed: int = 2) -> list[InputRecord]:
    """Live traffic of the same model: object predictions ``{"proba", "label"}``, as ``run`` reads them."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        x = float(rng.normal())
        p = float(1.0 / (1.0 + np.exp(-2.0 * x)))
        e = {"model": "clf", "ts": T0 + 1000 * i, "features": {"x": x}, "prediction": {"proba": p, "label": int(p >= 0.5)}}
        out.append(InputRecord(orjson.dumps(e), SourcePosition("t", 0, i, e["ts"])))
    return out


def spec_of(baseline: Path | None = None, **model: Any) -> MonitorSpec:
    return MonitorSpec.model_validate({"models": {"clf": {**model, **({"baseline": str(baseline)} if baseline else {})}}})


# ---------------------------------------------------------------------------------- (a) the names
def test_output_equals_column_names_the_channel_as_run_does_and_scores_the_object_prediction(tmp_path: Path) -> None:
    src = training(tmp_path / "train.csv")
    profile = build_profile(src, "clf", ["proba=p", "label=yhat"], "y")
    ch = profile["channels"]
    assert {"__prediction__.proba", "__prediction__.label"} <= set(ch) and "__prediction__" not in ch
    assert ch["__prediction__.proba"]["type"] == "numeric" and ch["__prediction__.proba"]["count"] == 3000
    # the performance channels and the calibration read the object prediction as run reads it (proba: score, label: class)
    rows = list(csv.DictReader(open(src)))
    wrong = np.mean([int(r["yhat"]) != int(r["y"]) for r in rows])
    assert ch["__error_rate__"]["mean"] == pytest.approx(wrong)
    assert sum(profile["calibration"]["n"]) == 3000 and sum(profile["calibration"]["pos"]) == sum(int(r["y"]) for r in rows)


def test_a_column_named_after_a_configured_output_is_that_output(tmp_path: Path) -> None:
    src = training(tmp_path / "train.csv")
    (tmp_path / "proba.csv").write_text(src.read_text().replace("x,p,yhat,y", "x,proba,yhat,y", 1))
    mspec = ModelSpec(score_output="proba", class_output="label")
    ch = build_profile(tmp_path / "proba.csv", "clf", "proba", "y", model_spec=mspec)["channels"]
    assert "__prediction__.proba" in ch and "__prediction__" not in ch
    with pytest.raises(BaselineError, match=r"config names its outputs \('proba', 'label'\).*--prediction-column proba=p"):
        build_profile(src, "clf", "p", "y", model_spec=mspec)
    # without a config, a plain column stays the scalar __prediction__ (a model whose predictions are numbers)
    assert "__prediction__" in build_profile(src, "clf", "p")["channels"]


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        (["p", "label=yhat"], "not both"),
        (["proba=p", "score=p"], "column 'p' is given twice"),
        (["proba=p", "proba=yhat"], "an output is given twice"),
        (["=p"], "expected COLUMN or OUTPUT=COLUMN"),
        (["proba=nope"], "--prediction-column 'nope' is not a column"),
        (["proba=y"], "--prediction-column and --label-column are both 'y'"),
    ],
)
def test_bad_prediction_columns_are_refused_naming_the_flag(tmp_path: Path, columns: list[str], expected: str) -> None:
    with pytest.raises(BaselineError) as info:
        build_profile(training(tmp_path / "train.csv", 50), "clf", columns, "y")
    assert expected in str(info.value)


def test_cli_with_the_config_writes_the_live_names(tmp_path: Path, capsys) -> None:
    src = training(tmp_path / "train.csv", 500)
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text("models:\n  clf:\n    score_output: p\n    class_output: label\n")
    out = tmp_path / "b.json"
    assert main(["baseline", "--input", str(src), "--model", "clf", "--out", str(out), "--config", str(cfg), "--prediction-column", "p"]) == 0
    assert "__prediction__.p" in orjson.loads(out.read_bytes())["channels"]
    assert main(["baseline", "--input", str(src), "--model", "clf", "--out", str(out), "--prediction-column", "proba=p",
                 "--prediction-column", "label=yhat", "--label-column", "y"]) == 0  # fmt: skip
    assert {"__prediction__.proba", "__prediction__.label", "__error_rate__"} <= set(orjson.loads(out.read_bytes())["channels"])
    assert main(["baseline", "--input", str(src), "--model", "clf", "--out", str(out), "--config", str(cfg), "--prediction-column", "yhat"]) == 2
    err = capsys.readouterr().err
    assert "the model's config names its outputs ('p', 'label')" in err and "--prediction-column p=yhat" in err


def test_a_profile_under_the_live_names_is_the_live_channels_reference(tmp_path: Path) -> None:
    """The point of it all: with the live names the prediction channels start on the baseline, else on a warm-up."""
    src = training(tmp_path / "train.csv")
    for columns, kind in ((["proba=p", "label=yhat"], "baseline"), ("p", "warmup")):
        path = tmp_path / f"{kind}.json"
        write_profile(build_profile(src, "clf", columns, "y"), path)
        spec = spec_of(path)
        monitor = PartitionMonitor(spec, 0, load_baselines(spec, warn=False))
        with capture_logs() as logs:
            monitor.process(live_events(1500))
        m = monitor.models["clf"]
        for name in ("__prediction__.proba", "__prediction__.label"):
            assert m.channels[name].reference.kind == kind, (columns, name)
        warned = [e for e in logs if e["event"] == "baseline_prediction_channel_missing"]
        if kind == "baseline":
            assert warned == []
        else:  # the silent fallback is said, naming both names
            assert {e["channel"] for e in warned} == {"__prediction__.proba", "__prediction__.label"}
            assert all(e["baseline_channels"] == ["__prediction__"] and e["log_level"] == "warning" for e in warned)


# ------------------------------------------------------------------------------- (b) the warnings
def test_start_up_warns_when_the_config_names_outputs_the_profile_lacks(tmp_path: Path) -> None:
    src = training(tmp_path / "train.csv", 500)
    flat, named = tmp_path / "flat.json", tmp_path / "named.json"
    write_profile(build_profile(src, "clf", "p"), flat)
    write_profile(build_profile(src, "clf", ["proba=p"]), named)
    with capture_logs() as logs:
        load_baselines(spec_of(flat, score_output="proba"))
    notes = [e["note"] for e in logs if e["event"] == "baseline_prediction_channels"]
    assert len(notes) == 1 and notes[0].startswith("models.clf.baseline: ")
    assert "baseline channel __prediction__ matches no prediction channel of model 'clf'" in notes[0]
    assert "prediction channel __prediction__.proba has no entry in the profile (it has __prediction__)" in notes[0]
    for spec in (spec_of(named, score_output="proba"), spec_of(flat), spec_of(flat, task="binary")):  # matching, or nothing named
        with capture_logs() as logs:
            load_baselines(spec)
        assert [e for e in logs if e["event"] == "baseline_prediction_channels"] == []


def test_check_config_prints_the_mismatch_from_the_config_and_from_a_sample(tmp_path: Path, capsys) -> None:
    src = training(tmp_path / "train.csv", 500)
    write_profile(build_profile(src, "clf", "p"), tmp_path / "flat.json")
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text("models:\n  clf:\n    baseline: flat.json\n    score_output: proba\n")
    assert main(["check-config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "models.clf.baseline: baseline channel __prediction__ matches no prediction channel" in out
    assert "__prediction__.proba has no entry in the profile (it has __prediction__)" in out
    # no output named: a sample of live events shows what the model produces
    cfg.write_text("models:\n  clf:\n    baseline: flat.json\n")
    assert main(["check-config", str(cfg)]) == 0
    assert "matches no prediction channel" not in capsys.readouterr().out
    sample = tmp_path / "sample.jsonl"
    sample.write_bytes(b"\n".join(r.value for r in live_events(20)) + b"\n")
    assert main(["check-config", str(cfg), "--sample", str(sample)]) == 0
    out = capsys.readouterr().out
    assert "baseline channel __prediction__ matches no prediction channel of model 'clf' (seen in the sample)" in out
    assert "prediction channel __prediction__.label, __prediction__.proba has no entry in the profile (it has __prediction__)" in out
    # a profile under the live names: no warning
    write_profile(build_profile(src, "clf", ["proba=p", "label=yhat"]), tmp_path / "flat.json")
    assert main(["check-config", str(cfg), "--sample", str(sample)]) == 0
    out = capsys.readouterr().out
    assert "matches no prediction channel" not in out and "has no entry in the profile" not in out
