"""`stream-monitor baseline`: profiles from CSV / JSONL(.gz) / Parquet, loading them, and skew detection."""

from __future__ import annotations

import csv
import gzip
import json
import sys
from pathlib import Path

import numpy as np
import orjson
import pytest
import structlog

from stream_monitor.commands import main
from stream_monitor.baseline import BaselineError, build_profile, load_baselines, load_profile, write_profile
from stream_monitor.config import ConfigError
from stream_monitor.core.events import SourcePosition
from stream_monitor.core.monitor import InputRecord, PartitionMonitor
from stream_monitor.core.reference import CategoricalReference, NumericReference
from stream_monitor.core.spec import MonitorSpec

SEED = 7
T0 = 1_767_225_600_000


@pytest.fixture
def restore_logging():
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def write_jsonl(path: Path, rows: list[dict], gz: bool = False) -> Path:
    data = b"".join(json.dumps(r).encode() + b"\n" for r in rows)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def training_rows(n: int = 5000, seed: int = SEED) -> list[list]:
    """amount ~ N(100, 15), country in DE/FR/IT, score in [0, 1], label 0/1."""
    rng = np.random.default_rng(seed)
    amount = rng.normal(100, 15, n)
    country = rng.choice(["DE", "FR", "IT"], size=n, p=[0.5, 0.3, 0.2])
    score = rng.random(n)
    return [[round(float(a), 4), str(c), round(float(s), 4), int(s > 0.7)] for a, c, s in zip(amount, country, score, strict=True)]


# ------------------------------------------------------------------------------------------------ CSV
def test_csv_profile(tmp_path):
    rows = training_rows(1000)
    rows[0][0] = ""  # missing amount
    rows[1][0] = "nan"  # non-finite: invalid
    rows[2][1] = ""  # missing country
    path = write_csv(tmp_path / "train.csv", ["amount", "country", "score", "label"], rows)
    profile = build_profile(path, "fraud-v3", prediction_column="score", label_column="label")
    assert profile["schema_version"] == 1 and profile["model"] == "fraud-v3" and profile["rows"] == 1000
    assert profile["created_from"]["format"] == "csv" and profile["created_from"]["path"] == str(path)
    assert len(profile["created_from"]["sha256"]) == 64
    ch = profile["channels"]
    assert list(ch)[:4] == ["amount", "country", "__prediction__", "__label__"]  # then the performance channels
    assert ch["amount"]["type"] == "numeric" and ch["amount"]["count"] == 1000
    assert ch["amount"]["missing_rate"] == pytest.approx(0.001) and ch["amount"]["invalid_rate"] == pytest.approx(0.001)
    assert 95 < ch["amount"]["mean"] < 105 and 13 < ch["amount"]["std"] < 17
    assert len(ch["amount"]["sample"]) == 998 and ch["amount"]["sample"] == sorted(ch["amount"]["sample"])
    assert ch["country"]["type"] == "categorical" and set(ch["country"]["categories"]) == {"DE", "FR", "IT"}
    assert sum(ch["country"]["categories"].values()) == 999 and ch["country"]["missing_rate"] == pytest.approx(0.001)
    assert ch["__prediction__"]["type"] == "numeric" and ch["__label__"]["type"] == "numeric"
    # the profile is plain JSON and round-trips into references
    refs = load_profile(write_and_return(profile, tmp_path / "b.json"), "fraud-v3")
    assert isinstance(refs["amount"], NumericReference) and refs["amount"].kind == "baseline"
    assert isinstance(refs["country"], CategoricalReference) and refs["country"].categories[0] == "DE"


def write_and_return(profile: dict, path: Path) -> Path:
    write_profile(profile, path)
    return path



def test_csv_typing_rules(tmp_path):
    path = write_csv(
        tmp_path / "t.csv",
        ["num", "mixed", "flag", "empty", "zip"],
        [["1", "1", "true", "", "01234"], ["2.5", "a", "false", "", "99999"], ["-3e2", "2", "true", "", ""]],
    )
    ch = build_profile(path, "m")["channels"]
    assert ch["num"]["type"] == "numeric" and ch["num"]["sample"] == [-300.0, 1.0, 2.5]
    assert ch["mixed"]["type"] == "categorical" and ch["mixed"]["categories"] == {"1": 1, "a": 1, "2": 1}
    assert ch["flag"]["categories"] == {"true": 2, "false": 1}  # like JSON booleans in serving
    assert ch["zip"]["type"] == "numeric" and ch["zip"]["missing_rate"] == pytest.approx(1 / 3)
    assert "empty" not in ch and build_profile(path, "m")["empty_columns"] == ["empty"]


def test_csv_large_sample_is_quantile_compressed(tmp_path):
    path = write_csv(tmp_path / "big.csv", ["x"], [[i] for i in range(10_000)])
    ch = build_profile(path, "m")["channels"]["x"]
    assert len(ch["sample"]) == 2000 and ch["sample"][0] == 0 and ch["sample"][-1] == 9999 and ch["count"] == 10_000


# ---------------------------------------------------------------------------------------------- JSONL
def test_jsonl_inference_events(tmp_path):
    events = [
        {"event_id": str(i), "model": "m", "ts": T0 + i, "features": {"x": float(i), "c": "ab"[i % 2], **({"late": 1.0} if i >= 2 else {})},
         "prediction": {"y_pred_proba": i / 10, "y_pred": int(i > 5)}, "label": i % 2, "latency_ms": 3.0}
        for i in range(10)
    ]
    events.append({"model": "other", "ts": T0, "features": {"x": 1e9}})
    events.append({"model": "m", "ts": T0, "prediction": {"y_pred_proba": 0.5, "y_pred": None}})  # no features
    for gz in (False, True):
        path = write_jsonl(tmp_path / ("e.jsonl.gz" if gz else "e.jsonl"), events, gz=gz)
        profile = build_profile(path, "m")
        assert profile["rows"] == 11 and profile["skipped_rows_of_other_models"] == 1
        ch = profile["channels"]
        reserved = {"__prediction__.y_pred_proba", "__prediction__.y_pred", "__label__", "__latency__"}
        # a labelled prediction also feeds the performance channels, by the monitor's own code
        assert set(ch) == {"x", "c", "late", *reserved, "__error__", "__error_rate__", "__recall__", "__precision__", "__f1__",
                           "__log_loss__", "__calibration__", "__roc_auc__"}  # fmt: skip
        assert ch["__error_rate__"]["count"] == 10 and profile["calibration"]["n"][0] == 1  # p = 0.0 in the first bin
        assert ch["x"]["max"] == 9.0 and ch["x"]["missing_rate"] == 0.0  # the prediction-only event says nothing about x
        assert ch["late"]["missing_rate"] == pytest.approx(0.2)  # absent from 2 of 10 feature rows
        assert ch["__prediction__.y_pred_proba"]["count"] == 11 and ch["__prediction__.y_pred"]["count"] == 10
        assert ch["__latency__"]["mean"] == 3.0


def test_jsonl_flat_rows_with_prediction_and_label_columns(tmp_path):
    rows = [{"amount": 10.0 + i, "country": "DE", "p": 0.1, "y": "fraud" if i % 3 else "ok", "ok": True} for i in range(30)]
    rows[0]["amount"] = None
    rows[1]["amount"] = float("nan")
    profile = build_profile(write_jsonl(tmp_path / "flat.jsonl", rows), "m", prediction_column="p", label_column="y")
    ch = profile["channels"]
    assert set(ch) == {"amount", "country", "ok", "__prediction__", "__label__", "__error__"}  # string labels: a class mismatch only
    assert ch["__label__"]["type"] == "categorical" and ch["__label__"]["categories"] == {"fraud": 20, "ok": 10}
    assert ch["amount"]["missing_rate"] == pytest.approx(1 / 30) and ch["amount"]["invalid_rate"] == pytest.approx(1 / 30)
    assert ch["ok"]["categories"] == {"true": 30}


# -------------------------------------------------------------------------------------------- Parquet
def test_parquet_without_pyarrow_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    path = tmp_path / "train.parquet"
    path.write_bytes(b"PAR1")
    with pytest.raises(BaselineError) as info:
        build_profile(path, "m")
    assert "stream-monitor[parquet]" in str(info.value) and "pyarrow" in str(info.value)


def test_parquet_with_pyarrow(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table = pa.table({"amount": [1.0, 2.0, None, 4.0], "country": ["DE", "FR", "DE", None], "score": [0.1, 0.2, 0.3, 0.4], "n": [1, 2, 3, 4]})
    path = tmp_path / "train.parquet"
    pq.write_table(table, path)
    profile = build_profile(path, "m", prediction_column="score")
    ch = profile["channels"]
    assert profile["rows"] == 4 and profile["created_from"]["format"] == "parquet"
    assert set(ch) == {"amount", "country", "n", "__prediction__"}
    assert ch["amount"]["missing_rate"] == 0.25 and ch["country"]["categories"] == {"DE": 2, "FR": 1}
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(BaselineError, match="not a readable Parquet file"):
        build_profile(bad, "m")


# -------------------------------------------------------------------------------------- input errors
@pytest.mark.parametrize(
    ("name", "content", "kwargs", "expected"),
    [
        ("train.txt", "a\n1\n", {}, "unsupported input format"),
        ("missing.csv", None, {}, "input file not found"),
        ("empty.csv", "", {}, "empty CSV file"),
        ("dupe.csv", "a,a\n1,2\n", {}, "duplicate column names ['a']"),
        ("ragged.csv", "a,b\n1,2\n1,2,3\n", {}, "ragged.csv:3: 3 cells"),
        ("header-only.csv", "a,b\n", {}, "no rows for model 'm'"),
        ("p.csv", "a,b\n1,2\n", {"prediction_column": "score"}, "--prediction-column 'score' is not a column"),
        ("l.csv", "a,b\n1,2\n", {"label_column": "y"}, "--label-column 'y' is not a column"),
        ("bad.jsonl", '{"a": 1}\n{"a": \n', {}, "bad.jsonl:2: not valid JSON"),
        ("list.jsonl", "[1, 2]\n", {}, "list.jsonl:1: expected a JSON object per line, got list"),
        ("other.jsonl", '{"model": "x", "features": {"a": 1}}\n', {}, "no rows for model 'm' (1 events of other models skipped)"),
        ("nulls.jsonl", '{"a": null}\n{"a": [1]}\n', {}, "no column has a usable value"),
        ("latin1.csv", b"a\n\xe9\n", {}, "not UTF-8"),
        ("notgz.jsonl.gz", "plain text", {}, "not a readable gzip file"),
    ],
)
def test_input_errors(tmp_path, name, content, kwargs, expected):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(BaselineError) as info:
        build_profile(path, "m", **kwargs)
    assert expected in str(info.value)


# ---------------------------------------------------------------------------------------------- CLI
def test_cli_baseline_writes_a_profile(tmp_path, capsys, restore_logging):
    src = write_csv(tmp_path / "train.csv", ["amount", "country", "score", "label"], training_rows(500))
    out = tmp_path / "baseline.json"
    code = main(["baseline", "--input", str(src), "--model", "fraud-v3", "--out", str(out), "--prediction-column", "score", "--label-column", "label"])
    stdout, stderr = capsys.readouterr()
    assert code == 0, stderr
    doc = orjson.loads(out.read_bytes())
    assert doc["rows"] == 500 and {"amount", "country", "__prediction__", "__label__", "__error_rate__"} <= set(doc["channels"])
    assert f"baseline for model 'fraud-v3': 500 rows, {len(doc['channels'])} channels" in stdout and "country" in stdout
    assert "calibration: 500 labelled probabilities" in stdout
    assert not (tmp_path / "baseline.json.tmp").exists()


def test_cli_baseline_errors_exit_2(tmp_path, capsys, restore_logging):
    out = tmp_path / "b.json"
    assert main(["baseline", "--input", str(tmp_path / "nope.csv"), "--model", "m", "--out", str(out)]) == 2
    assert "input file not found" in capsys.readouterr().err and not out.exists()
    src = write_csv(tmp_path / "t.csv", ["a"], [[1]])
    assert main(["baseline", "--input", str(src), "--model", "m", "--out", str(out), "--label-column", "y"]) == 2
    assert "--label-column 'y'" in capsys.readouterr().err


def test_cli_baseline_unwritable_output_exits_1(tmp_path, capsys, restore_logging):
    src = write_csv(tmp_path / "t.csv", ["a"], [[1]])
    assert main(["baseline", "--input", str(src), "--model", "m", "--out", str(tmp_path / "no" / "dir" / "b.json")]) == 1
    assert "failed to write" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ load_baselines
@pytest.fixture
def profile_path(tmp_path) -> Path:
    src = write_csv(tmp_path / "train.csv", ["amount", "country", "score"], [r[:3] for r in training_rows(3000)])
    path = tmp_path / "baseline.json"
    write_profile(build_profile(src, "fraud-v3", prediction_column="score"), path)
    return path


def spec_with(baseline: str | None, **model) -> MonitorSpec:
    return MonitorSpec.model_validate({"models": {"fraud-v3": {"baseline": baseline, **model}, "plain": {}}})


def test_load_baselines(profile_path, tmp_path):
    refs = load_baselines(spec_with(str(profile_path)))
    assert set(refs) == {"fraud-v3"}
    assert set(refs["fraud-v3"]) == {"amount", "country", "__prediction__"}
    assert refs["fraud-v3"]["amount"].count == 3000
    # relative paths resolve against base_dir (the config file's folder)
    assert set(load_baselines(spec_with("baseline.json"), base_dir=tmp_path)) == {"fraud-v3"}
    assert load_baselines(MonitorSpec()) == {}


def corrupt(path: Path, mutate) -> Path:
    doc = json.loads(path.read_text())
    mutate(doc)
    out = path.with_name("corrupt.json")
    out.write_text(json.dumps(doc))
    return out


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d.update(schema_version=2), "schema_version is 2"),
        (lambda d: d.update(model="churn-v1"), "the profile was built for model 'churn-v1'"),
        (lambda d: d.update(channels={}), "'channels' must be a non-empty object"),
        (lambda d: d["channels"]["amount"].update(type="text"), "channels.amount: unknown channel type 'text'"),
        (lambda d: d["channels"]["amount"].pop("mean"), "channels.amount: missing field 'mean'"),
        (lambda d: d["channels"]["amount"].update(sample=[]), "channels.amount: 'sample' must be a non-empty list"),
        (lambda d: d["channels"]["amount"].update(sample=[1, "x"]), "channels.amount: 'sample' must hold finite numbers"),
        (lambda d: d["channels"]["amount"].update(std=-1), "channels.amount: std must be >= 0"),
        (lambda d: d["channels"]["amount"].update(missing_rate=1.5), "channels.amount: count must be >= 0 and rates within [0, 1]"),
        (lambda d: d["channels"]["country"].update(categories={"DE": -1}), "channels.country: category counts must be non-negative"),
        (lambda d: d["channels"].update(extra=[1]), "channels.extra: expected an object"),
    ],
)
def test_load_baselines_errors_name_model_path_and_problem(profile_path, mutate, expected):
    path = corrupt(profile_path, mutate)
    with pytest.raises(ConfigError) as info:
        load_baselines(spec_with(str(path)))
    msg = str(info.value)
    assert msg.startswith(f"models.fraud-v3.baseline: {path}: "), msg
    assert expected in msg, msg


@pytest.mark.parametrize(("content", "expected"), [(None, "file not found"), ("{", "not valid JSON"), ("[]", "expected a JSON object")])
def test_load_baselines_unreadable_files(tmp_path, content, expected):
    path = tmp_path / "b.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(BaselineError, match=f"models.fraud-v3.baseline: {path}: {expected}"):
        load_baselines(spec_with(str(path)))


def test_load_baselines_checks_configured_channel_types(profile_path):
    spec = spec_with(str(profile_path), channels={"amount": {"type": "categorical"}})
    with pytest.raises(BaselineError, match="channel 'amount' is numeric in the baseline but models.fraud-v3.channels.amount.type is categorical"):
        load_baselines(spec)


def test_reference_kind_baseline_needs_a_profile():
    spec = MonitorSpec.model_validate({"models": {"m": {"detection": {"reference": {"kind": "baseline"}}}}})
    with pytest.raises(BaselineError, match="models.m.baseline: reference.kind is 'baseline' but no baseline profile path is set"):
        load_baselines(spec)


# ------------------------------------------------------------------- a baseline per model version
def test_load_baselines_per_model_version(profile_path, tmp_path):
    spec = MonitorSpec.model_validate({"models": {"fraud-v3": {"baselines": {"2026-06": "baseline.json"}}}})
    loaded = load_baselines(spec, base_dir=tmp_path)["fraud-v3"]
    assert dict(loaded) == {}  # no model-wide baseline: channels a version's profile lacks start with a warm-up
    assert set(loaded.versions) == {"2026-06"} and loaded.versions["2026-06"]["amount"].count == 3000


@pytest.mark.parametrize(("content", "expected"), [(None, "file not found"), ("{", "not valid JSON")])
def test_a_missing_or_unreadable_version_baseline_fails_naming_the_field(profile_path, tmp_path, content, expected):
    path = tmp_path / "v2.json"
    if content is not None:
        path.write_text(content)
    spec = MonitorSpec.model_validate({"models": {"fraud-v3": {"baseline": str(profile_path), "baselines": {"v1": str(profile_path), "v2": str(path)}}}})
    with pytest.raises(BaselineError, match=f"models.fraud-v3.baselines.v2: {path}: {expected}"):
        load_baselines(spec)


def test_version_baselines_config_is_validated():
    import yaml

    with pytest.raises(ValueError, match="baselines"):
        MonitorSpec.model_validate({"models": {"m": {"baselines": {"v2": ""}}}})
    # an unquoted date or number in YAML is the version's text
    spec = MonitorSpec.model_validate({"models": {"m": yaml.safe_load("baselines: {2026-11-01: a.json, 3: b.json}")}})
    assert spec.models["m"].baselines == {"2026-11-01": "a.json", "3": "b.json"}


def test_a_labelled_probability_baseline_carries_performance_references_and_calibration(tmp_path):
    rows = training_rows(4000)
    profile = build_profile(write_csv(tmp_path / "t.csv", ["amount", "country", "score", "label"], rows), "m", "score", "label")
    ch = profile["channels"]
    labels = np.array([r[3] for r in rows])
    wrong = np.array([int(r[2] >= 0.5) != r[3] for r in rows])
    assert ch["__error_rate__"]["mean"] == pytest.approx(wrong.mean()) and ch["__error_rate__"]["count"] == 4000
    assert {"__recall__", "__precision__", "__log_loss__", "__roc_auc__", "__calibration__"} <= set(ch)
    cal = profile["calibration"]
    assert cal["bins"] == 100 and sum(cal["n"]) == 4000 and sum(cal["pos"]) == labels.sum()
    assert sum(cal["pos"][:70]) == 0 and cal["pos"][71:] == cal["n"][71:]  # label = score > 0.7
    path = tmp_path / "b.json"
    write_profile(profile, path)
    loaded = load_baselines(MonitorSpec.model_validate({"models": {"m": {"baseline": str(path), "estimate": {"enabled": True, "bins": 20}}}}))
    merged = loaded["m"].calibration
    assert merged.bins == 20 and merged.learned and sum(merged.n) == 4000 and merged.n[0] == sum(cal["n"][:5])
    with pytest.raises(BaselineError, match="models.m.baseline: .*estimate.bins 6 does not divide the profile's 100 calibration bins"):
        load_baselines(MonitorSpec.model_validate({"models": {"m": {"baseline": str(path), "estimate": {"enabled": True, "bins": 6}}}}))
    # without a label column: no calibration, no performance channel
    plain = build_profile(tmp_path / "t.csv", "m", "score")
    assert "calibration" not in plain and "__error_rate__" not in plain["channels"]


def test_check_config_shows_the_version_baselines(profile_path, tmp_path, capsys, restore_logging):
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text(f"models:\n  fraud-v3:\n    baseline: {profile_path}\n    baselines:\n      '2026-06': {profile_path}\n")
    assert main(["check-config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert f"reference of model_version '2026-06': baseline profile {profile_path}" in out
    labelled = tmp_path / "labelled.json"
    write_profile(build_profile(write_csv(tmp_path / "l.csv", ["amount", "country", "score", "label"], training_rows(500)), "fraud-v3", "score", "label"), labelled)
    cfg.write_text(f"models:\n  fraud-v3:\n    estimate: {{enabled: true}}\n    baselines:\n      '2026-06': {labelled}\n")
    assert main(["check-config", str(cfg)]) == 0
    assert "label-free estimates start calibrated from the baseline of 2026-06" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"models:\n  fraud-v3:\n    baselines:\n      '2026-06': {tmp_path / 'nope.json'}\n")
    assert main(["check-config", str(bad)]) == 2
    assert "models.fraud-v3.baselines.2026-06:" in capsys.readouterr().err


# ------------------------------------------------------------------------- training/serving skew
def serving_records(n: int, seed: int = SEED + 1) -> list[InputRecord]:
    """Serving traffic that differs from training from the very first event, and stays the same."""
    rng = np.random.default_rng(seed)
    amount = rng.normal(115, 15, n)  # +1 sd against training
    country = rng.choice(["DE", "FR", "IT", "US"], size=n, p=[0.4, 0.2, 0.2, 0.2])  # a category unseen in training
    score = rng.random(n)
    out = []
    for i in range(n):
        e = {"event_id": str(i), "model": "fraud-v3", "ts": T0 + 1000 * i,
             "features": {"amount": round(float(amount[i]), 4), "country": str(country[i])}, "prediction": round(float(score[i]), 4)}
        out.append(InputRecord(orjson.dumps(e), SourcePosition("inference-events", 0, i, None)))
    return out


def run(monitor: PartitionMonitor, records: list[InputRecord]) -> list:
    alerts = []
    for i in range(0, len(records), 500):
        alerts += monitor.process(records[i : i + 500]).alerts
    return alerts


def test_baseline_detects_training_serving_skew_from_the_first_window(profile_path):
    spec = spec_with(str(profile_path))
    records = serving_records(4000)
    monitor = PartitionMonitor(spec, 0, baselines=load_baselines(spec))
    with_baseline = run(monitor, records)
    firing = {(a.event.feature, a.event.detector): a for a in with_baseline if a.event.status == "firing"}
    assert {"amount", "country"} == {feature for feature, _ in firing}, sorted(firing)  # one page per channel
    agreed = {(name, d) for name, ch in monitor.models["fraud-v3"].channels.items() for d in ch.series.agreed}
    assert {("amount", "psi"), ("amount", "ks"), ("country", "chi2"), ("country", "unseen_category_rate")} <= agreed, sorted(agreed)
    # no warm-up: the first full window (1000 observations) is compared with training data, and the
    # second evaluation (min_consecutive=2, step 250) fires
    first = min(a.position.offset for a in firing.values())
    assert first <= 1249, f"first skew alert at offset {first}"
    for (channel, _), a in firing.items():
        assert a.event.reference.model_dump() == {"kind": "baseline", "count": 3000}, a.event
        assert channel in ("amount", "country")
    # the unchanged prediction is not flagged
    assert not any(k[0] == "__prediction__" for k in firing)
    # without the baseline the same traffic is its own reference: the skew is invisible
    assert run(PartitionMonitor(spec, 0), records) == []


def test_a_new_baseline_applies_to_partitions_restored_from_state(profile_path):
    spec = spec_with(str(profile_path))
    before = PartitionMonitor(spec, 0)  # started without the baseline: warming up
    run(before, serving_records(300))
    restored = PartitionMonitor.from_state_items(spec, 0, before.state_items(only_dirty=False), baselines=load_baselines(spec))
    ref = restored.models["fraud-v3"].channels["amount"].reference
    assert ref is not None and ref.kind == "baseline"
