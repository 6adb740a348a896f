"""`stream-monitor check-config`: channels no baseline or sample contains are warnings; chi-square and rates read as alerts read them."""

from __future__ import annotations

import csv
import textwrap
from pathlib import Path

import orjson
import pytest

from stream_monitor.baseline import build_profile, write_profile
from stream_monitor.commands import main
from stream_monitor.core.stats import chi2_critical_value

CONFIG = """
    models:
      credit:
        baseline: {baseline}
        channels:
          income: {{type: numeric}}
          incme: {{type: numeric}}
          region: {{type: categorical}}
          __prediction__: {{detectors: [psi]}}
      churn:
        channels:
          tenure: {{type: numeric}}
"""
REGIONS = ["north", "south", "east", "west", "centre"]


pytestmark = pytest.mark.usefixtures("isolated_cli")


def _setup(tmp_path: Path, baseline: bool = True) -> Path:
    data = tmp_path / "train.csv"
    with open(data, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["income", "region"])
        w.writerows([[1000 + i, REGIONS[i % len(REGIONS)]] for i in range(200)])
    if baseline:
        write_profile(build_profile(data, "credit"), tmp_path / "credit.json")
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text(textwrap.dedent(CONFIG.format(baseline="credit.json" if baseline else "null")))
    return cfg


def _check(capsys, *args: str) -> str:
    code = main(["check-config", *args])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def _warnings(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("WARNING:")]


def test_a_channel_no_baseline_contains_is_a_warning_naming_it(tmp_path, capsys):
    out = _check(capsys, str(_setup(tmp_path)))
    warnings = _warnings(out)
    typo = [w for w in warnings if "models.credit.channels.incme" in w]
    assert typo and "did you mean 'income'" in typo[0], warnings
    assert not [w for w in warnings if ".income:" in w or ".region:" in w or "__prediction__" in w], warnings
    # churn has no baseline and no sample: said so, not guessed
    assert any("'churn' not checked" in w and "--sample" in w for w in warnings), warnings


def test_sample_records_are_checked_too(tmp_path, capsys):
    cfg = _setup(tmp_path, baseline=False)
    sample = tmp_path / "sample.jsonl"
    events = [
        {"model": "credit", "ts": 1_767_225_600_000, "features": {"income": 1200.0, "region": "north"}, "prediction": 0.1},
        {"model": "churn", "ts": 1_767_225_600_000, "features": {"tenure": 12}},
    ]
    sample.write_bytes(b"\n".join(orjson.dumps(e) for e in events) + b"\n{not json\n")
    warnings = _warnings(_check(capsys, str(cfg), "--sample", str(sample)))
    assert [w for w in warnings if "channels." in w] == [w for w in warnings if "models.credit.channels.incme" in w]
    assert len([w for w in warnings if "channels.incme" in w]) == 1
    assert any("1 of 3 records are not valid inference events" in w for w in warnings), warnings
    assert not any("not checked" in w for w in warnings), warnings


def test_missing_sample_file_exits_2(tmp_path, capsys):
    assert main(["check-config", str(_setup(tmp_path)), "--sample", str(tmp_path / "nope.jsonl")]) == 2
    assert "--sample" in capsys.readouterr().err


def test_chi_square_is_shown_with_its_critical_value(tmp_path, capsys):
    out = _check(capsys, str(_setup(tmp_path)))
    # with a baseline the number of categories is known: the exact critical value alerts will show
    expected = chi2_critical_value(1e-6, len(REGIONS) - 1)
    region = next(line for line in out.splitlines() if line.strip().startswith("region (categorical):"))
    assert f"chi2>{expected:.4g} (p<=1e-06, {len(REGIONS)} baseline categories)" in region, region
    # the defaults table lists critical values by number of categories
    assert f"{chi2_critical_value(1e-6, 1):.1f} (2)" in out and "chi2>1e-06" not in out


def test_rate_thresholds_read_as_excess_over_the_reference(tmp_path, capsys):
    out = _check(capsys, str(_setup(tmp_path)))
    income = next(line for line in out.splitlines() if line.strip().startswith("income (numeric):"))
    assert "missing_rate>ref+0.05" in income and "out_of_range_rate>ref+0.05" in income, income
    assert "missing_rate           excess over reference > 0.05" in out
    assert "minus the reference's share" in out


def test_a_shared_input_format_is_described_and_its_sample_read_with_it(tmp_path, capsys):
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text(textwrap.dedent("""
        kafka: {input_topics: [logs]}
        input_formats:
          logs: {kind: mapping, model_name: churn, features: payload.inputs, prediction: payload.scroe}
        models:
          churn:
            channels:
              tenure: {type: numeric}
              tenrue: {type: numeric}
    """))
    sample = tmp_path / "sample.jsonl"
    sample.write_bytes(b'{"payload": {"inputs": {"tenure": 3, "plan": "pro"}, "score": 0.2}}\n')
    out = _check(capsys, str(cfg), "--sample", str(sample))
    assert "input logs: custom JSON" in out
    assert "sample's first record: 1 event: model churn, features" in out
    assert "WARNING: prediction: nothing at payload.scroe in the sample" in out
    assert any("models.churn.channels.tenrue" in w and "did you mean 'tenure'" in w for w in _warnings(out)), out


def test_estimates_without_an_slo_or_on_a_regressor_are_warnings(tmp_path, capsys):
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text(textwrap.dedent("""
        models:
          clf: {estimate: {enabled: true}}
          guarded: {estimate: {enabled: true}, slo: {error_rate: {max: 0.2}}}
          eta: {task: regression, estimate: {enabled: true}}
    """))
    warnings = _warnings(_check(capsys, str(cfg)))
    assert any("models.clf.estimate.enabled: no accuracy, error_rate, precision or cost SLO" in w for w in warnings), warnings
    assert any("models.eta.estimate.enabled has no effect" in w for w in warnings), warnings
    assert not [w for w in warnings if "models.guarded" in w], warnings


def test_retraining_is_explained_when_enabled(tmp_path, capsys):
    cfg = _setup(tmp_path)
    assert "retraining events" not in _check(capsys, str(cfg))
    cfg.write_text(cfg.read_text() + "retraining:\n  enabled: true\n  topic: retrain-me\n  drift_persists_seconds: null\n")
    line = next(x for x in _check(capsys, str(cfg)).splitlines() if "retraining events" in x)
    assert "-> retrain-me" in line and "on performance at once" in line and "never on drift" in line
