"""load_config: errors name the field, env overrides, precedence; `stream-monitor check-config`."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import structlog
import yaml

from stream_monitor.commands import build_parser, main
from stream_monitor.commands.common import load_app_config
from stream_monitor.config import ConfigError, env_overrides, load_config


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """No STREAM_MONITOR_* variable from the outside world leaks into these tests."""
    for key in list(os.environ):
        if key.startswith("STREAM_MONITOR_"):
            monkeypatch.delenv(key)


@pytest.fixture
def restore_logging():
    """main() reconfigures structlog onto the (captured) stderr; put the old config back after."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def write(tmp_path: Path, text: str, name: str = "monitor.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def error_of(**kw) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(kw.pop("path", None), env=kw.pop("env", {}), overrides=kw.pop("overrides", None))
    return str(info.value)


GOOD_YAML = """
    instance: mon-1
    labels: {env: prod}
    kafka:
      bootstrap_servers: "k1:9092,k2:9092"
      group_id: yaml-group
      alerts_topic: yaml-alerts
      commit_interval_ms: 300
    defaults:
      window: {size: 2000, step: 500}
      detector_params:
        psi: {threshold: 0.25}
    models:
      fraud-v3:
        labels: {team: risk-ml, owner: alice}
        annotations: {runbook_url: "https://runbooks.example/fraud"}
        channels:
          amount: {type: numeric, range: [0, 10000], detectors: [psi, ks, missing_rate, out_of_range_rate]}
          country: {type: categorical}
          debug_blob: {enabled: false}
"""


# ---------------------------------------------------------------------------------------- loading
def test_good_yaml_loads(tmp_path):
    cfg = load_config(write(tmp_path, GOOD_YAML), env={})
    assert cfg.kafka.bootstrap_servers == ["k1:9092", "k2:9092"]
    assert (cfg.kafka.group_id, cfg.kafka.alerts_topic, cfg.kafka.commit_interval_ms) == ("yaml-group", "yaml-alerts", 300)
    assert cfg.instance == "mon-1"
    s = cfg.channel_settings("fraud-v3", "amount", "numeric")
    assert s.params("out_of_range_rate").range == (0.0, 10000.0)
    assert s.detectors_for("numeric") == ("psi", "ks", "missing_rate", "out_of_range_rate")
    assert s.params("psi").threshold == 0.25 and s.window.size == 2000
    spec = cfg.monitor_spec()
    assert spec.models["fraud-v3"].labels == {"team": "risk-ml", "owner": "alice"}


def test_no_file_gives_the_zero_config_defaults():
    cfg = load_config(None, env={})
    assert cfg.models == {} and cfg.discover_models
    assert cfg.kafka.input_topics == ["inference-events"] and cfg.kafka.alerts_topic == "drift-alerts"
    assert cfg.kafka.progress_interval_ms == 50


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("kafka: [1, 2\n", "not valid YAML"),
        ("- just\n- a list\n", "the top level must be a mapping"),
    ],
)
def test_unreadable_files(tmp_path, text, expected):
    assert expected in error_of(path=write(tmp_path, text))


def test_missing_file(tmp_path):
    assert "config file not found" in error_of(path=tmp_path / "nope.yaml")


# ------------------------------------------------------------------------------ errors name the field
@pytest.mark.parametrize(
    ("overrides", "field", "detail"),
    [
        ({"kafka.commit_interval_ms": 0}, "kafka.commit_interval_ms", "greater than 0"),
        ({"kafka.commit_interval_ms": "soon"}, "kafka.commit_interval_ms", "valid integer"),
        ({"kafka.progress_interval_ms": 0}, "kafka.progress_interval_ms", "greater than 0"),
        ({"kafka.bogus": 1}, "kafka.bogus", "Extra inputs"),
        ({"kafka.auto_offset_reset": "middle"}, "kafka.auto_offset_reset", "earliest"),
        ({"metrics.port": 70000}, "metrics.port", "65535"),
        ({"models.m.channels.x.range": [5, 1]}, "models.m.channels.x", "range must be [low, high] with low < high"),
        ({"models.m.channels.x.range": [1]}, "models.m.channels.x.range", "Field required"),
        ({"models.m.channels.x.type": "text"}, "models.m.channels.x.type", "'numeric' or 'categorical'"),
        ({"models.m.channels.x.detectors": ["foo"]}, "models.m.channels.x", "unknown detector 'foo'"),
        ({"models.m.channels.x": {"type": "numeric", "detectors": ["chi2"]}}, "models.m.channels.x", "unknown detector 'chi2'"),
        ({"defaults.numeric_detectors": ["foo"]}, "defaults", "numeric_detectors: unknown detector 'foo'"),
        ({"defaults.detector_params": {"foo": {}}}, "defaults", "unknown detector 'foo'"),
        ({"models.m.detection": {"detector_params": {"foo": {}}}}, "models.m.detection", "unknown detector 'foo'"),
        ({"defaults.window": {"size": 100, "step": 200}}, "defaults.window", "step (200) must not exceed size (100)"),
        ({"models.m.detection": {"window": {"size": 100, "step": 200}}}, "models.m.detection", "step (200) must not exceed size (100)"),
        ({"defaults.lifecycle.min_consecutive": 0}, "defaults.lifecycle.min_consecutive", "greater than or equal to 1"),
        ({"label_join_window_seconds": 0}, "label_join_window_seconds", "greater than 0"),
    ],
)
def test_errors_name_the_field(overrides, field, detail):
    msg = error_of(overrides=overrides)
    assert msg.startswith(field), msg
    assert detail in msg, msg


def test_yaml_errors_name_the_field(tmp_path):
    text = GOOD_YAML.replace("range: [0, 10000]", "range: [10000, 0]")
    msg = error_of(path=write(tmp_path, text))
    assert msg.startswith("models.fraud-v3.channels.amount") and "range" in msg


@pytest.mark.parametrize(
    "overrides",
    [
        {"models.m.channels.x.detectors": ["foo"]},
        {"models.m.detection": {"window": {"size": 100, "step": 200}}},
    ],
)
def test_nested_settings_errors_are_one_clean_line(overrides):
    msg = error_of(overrides=overrides)
    assert "\n" not in msg and "validation error for" not in msg and "errors.pydantic.dev" not in msg, msg


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"defaults.detector_params": {"psi": {"thresold": 1}}}, "defaults.detector_params.psi.thresold"),
        ({"models.m.detection": {"detector_params": {"psi": {"threshold": "x"}}}}, "models.m.detection.detector_params.psi.threshold"),
    ],
)
def test_detector_param_errors_name_the_full_path(overrides, field):
    assert error_of(overrides=overrides).startswith(field)


# ------------------------------------------------------------------------------ environment and precedence
def test_env_overrides_section_and_flag_variables():
    env = {
        "STREAM_MONITOR_KAFKA__COMMIT_INTERVAL_MS": "500",
        "STREAM_MONITOR_KAFKA__EXACTLY_ONCE": "false",
        "STREAM_MONITOR_DEFAULTS__WINDOW__SIZE": "2000",
        "STREAM_MONITOR_BOOTSTRAP_SERVERS": "a:1,b:2",
        "STREAM_MONITOR_INPUT_TOPIC": "t1,t2",
        "STREAM_MONITOR_METRICS_PORT": "0",
        "STREAM_MONITOR_STATE_SECRET": "123",  # kept as text, never YAML-parsed into a number
        "STREAM_MONITOR_CONFIG": "/not/a/section",  # read by the CLI, not a config path
        "OTHER_VAR": "x",
    }
    cfg = load_config(None, env=env)
    assert cfg.kafka.commit_interval_ms == 500 and cfg.kafka.exactly_once is False
    assert cfg.defaults.window.size == 2000
    assert cfg.kafka.bootstrap_servers == ["a:1", "b:2"] and cfg.kafka.input_topics == ["t1", "t2"]
    assert cfg.metrics.port == 0
    assert cfg.state.hmac_secret.get_secret_value() == "123"


@pytest.mark.parametrize("var", ["STREAM_MONITOR_KAFKA__GROUP_ID", "STREAM_MONITOR_GROUP_ID"])
def test_group_id_from_either_env_variable(var):
    assert load_config(None, env={var: "g-env"}).kafka.group_id == "g-env"
    assert env_overrides({var: "g-env"}) == {"kafka.group_id": "g-env"}


def test_env_errors_name_the_field():
    assert error_of(env={"STREAM_MONITOR_KAFKA__COMMIT_INTERVAL_MS": "-1"}).startswith("kafka.commit_interval_ms")


def test_the_producer_compresses_with_lz4_by_default_and_a_codec_without_its_package_fails_naming_the_field(monkeypatch):
    import importlib.util

    from stream_monitor.runtime.clients import producer

    assert load_config(None).kafka.compression_type == "lz4"
    assert load_config(None, overrides={"kafka.compression_type": "none"}).kafka.compression_type == "none"
    assert error_of(overrides={"kafka.compression_type": "snappy"}).startswith("kafka.compression_type")
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "zstandard" else find_spec(name, *a))
    error = error_of(overrides={"kafka.compression_type": "zstd"})
    assert error.startswith("kafka.compression_type") and "pip install zstandard" in error
    from stream_monitor.runtime import clients

    made: list[dict] = []
    monkeypatch.setattr(clients, "KafkaProducer", lambda **opts: made.append(opts))
    producer(load_config(None).kafka, "t", None)
    producer(load_config(None, overrides={"kafka.compression_type": "none"}).kafka, "t", None)
    assert [m["compression_type"] for m in made] == ["lz4", None]  # what kafka-python compresses each record batch with


def test_precedence_defaults_yaml_env_cli(tmp_path):
    path = write(tmp_path, GOOD_YAML)
    env = {"STREAM_MONITOR_GROUP_ID": "env-group", "STREAM_MONITOR_KAFKA__COMMIT_INTERVAL_MS": "400"}
    cfg = load_config(path, env=env, overrides={"kafka.group_id": "cli-group"})
    assert cfg.kafka.group_id == "cli-group"  # CLI beats env and YAML
    assert cfg.kafka.commit_interval_ms == 400  # env beats YAML
    assert cfg.kafka.alerts_topic == "yaml-alerts"  # YAML beats defaults
    assert cfg.kafka.dlq_topic == "stream-monitor-dlq"  # defaults
    cfg = load_config(path, env=env)
    assert cfg.kafka.group_id == "env-group"
    # a None override (flag not given) does not clobber lower layers
    assert load_config(path, env={}, overrides={"kafka.group_id": None}).kafka.group_id == "yaml-group"


def test_cli_flags_over_env_over_yaml(tmp_path, monkeypatch):
    path = write(tmp_path, GOOD_YAML)
    monkeypatch.setenv("STREAM_MONITOR_ALERTS_TOPIC", "env-alerts")
    monkeypatch.setenv("STREAM_MONITOR_GROUP_ID", "env-group")
    args = build_parser().parse_args(["run", "--config", str(path), "--group-id", "cli-group", "--input-topic", "a,b", "--input-topic", "c"])
    cfg = load_app_config(args)
    assert cfg.kafka.group_id == "cli-group"
    assert cfg.kafka.alerts_topic == "env-alerts"
    assert cfg.kafka.input_topics == ["a", "b", "c"]
    assert cfg.kafka.commit_interval_ms == 300
    # the config path itself can come from the environment
    monkeypatch.setenv("STREAM_MONITOR_CONFIG", str(path))
    assert load_app_config(build_parser().parse_args(["run"])).instance == "mon-1"


# -------------------------------------------------------------------------------------- check-config
def test_check_config_good_file_exits_0_and_explains(tmp_path, capsys, restore_logging):
    code = main(["check-config", str(write(tmp_path, GOOD_YAML))])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.startswith("config is valid.")
    assert "k1:9092, k2:9092" in out and "yaml-group" in out
    assert "model fraud-v3: env=prod, team=risk-ml, owner=alice" in out
    assert "amount (numeric): psi>0.25, ks>0.12, missing_rate>ref+0.05, out_of_range_rate>ref+0.05" in out
    assert "debug_blob: ignored" in out


def test_check_config_bad_file_exits_2_naming_the_field(tmp_path, capsys, restore_logging):
    path = write(tmp_path, GOOD_YAML.replace("commit_interval_ms: 300", "commit_interval_ms: 0"))
    code = main(["check-config", str(path)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert "kafka.commit_interval_ms" in err and "greater than 0" in err


def test_check_config_unknown_detector_exits_2(tmp_path, capsys, restore_logging):
    path = write(tmp_path, GOOD_YAML.replace("detectors: [psi, ks,", "detectors: [psi, kolmogorov,"))
    assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "models.fraud-v3.channels.amount" in err and "unknown detector 'kolmogorov'" in err


def test_check_config_missing_file_exits_2(tmp_path, capsys, restore_logging):
    assert main(["check-config", str(tmp_path / "missing.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err


def test_usage_error_exits_2(capsys, restore_logging):
    with pytest.raises(SystemExit) as info:
        main(["check-config"])
    assert info.value.code == 2
    assert "usage:" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ state secret
REPO_ROOT = Path(__file__).resolve().parents[1]
K8S_PLACEHOLDER = yaml.safe_load((REPO_ROOT / "deploy" / "k8s" / "secret.example.yaml").read_text())["stringData"]["state-secret"]
GOOD_SECRET = "3f9a1c77e2b04d5e8a6b19c0d2f4e6a81b3c5d7e9f0a2b4c6d8e0f1a3b5c7d9e"


def run_monitor(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """``stream-monitor run`` against a port nothing listens on: it must stop before any connection."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STREAM_MONITOR_")}
    cmd = [sys.executable, "-m", "stream_monitor", "--log-format", "json", "run", "--bootstrap-servers", "127.0.0.1:9", "--metrics-port", "0", *args]
    return subprocess.run(cmd, env={**clean, **env}, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)


def test_run_without_a_state_secret_exits_2_naming_the_field():
    proc = run_monitor({})
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "state.hmac_secret" in proc.stderr


@pytest.mark.parametrize(
    "secret",
    ["", "short-secret", K8S_PLACEHOLDER, "change-me-change-me-change-me-change-me", "a" * 64],
    ids=["empty", "short", "k8s-placeholder", "change-me", "not-random"],
)
def test_run_refuses_an_empty_short_or_placeholder_secret(secret):
    proc = run_monitor({"STREAM_MONITOR_STATE_SECRET": secret})
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "state.hmac_secret:" in proc.stderr
    if secret:
        assert secret not in proc.stderr  # the message never repeats the secret


def test_run_with_a_missing_secret_file_exits_2_naming_the_field(tmp_path):
    proc = run_monitor({"STREAM_MONITOR_STATE__HMAC_SECRET_FILE": str(tmp_path / "absent")})
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "state.hmac_secret_file" in proc.stderr and "Traceback" not in proc.stderr


def test_a_good_secret_passes_and_state_disabled_needs_none():
    keys = load_config(None, env={"STREAM_MONITOR_STATE_SECRET": GOOD_SECRET}).state.signing_keys()
    assert keys.current == GOOD_SECRET.encode() and keys.previous == ()
    assert load_config(None, env={}, overrides={"state.enabled": False}).state.enabled is False


def test_secret_file_readable_by_others_is_warned_about(tmp_path, capsys, restore_logging):
    from stream_monitor.ops.logs import configure_logging

    configure_logging("WARNING", "json")
    path = tmp_path / "state-secret"
    path.write_text(GOOD_SECRET + "\n")
    path.chmod(0o600)
    cfg = load_config(None, env={}, overrides={"state.hmac_secret_file": str(path)})
    assert cfg.state.signing_keys().current == GOOD_SECRET.encode()
    assert "secret_file_permissions" not in capsys.readouterr().err
    path.chmod(0o644)
    cfg.state.signing_keys()
    err = capsys.readouterr().err
    assert "secret_file_permissions" in err and GOOD_SECRET not in err


def test_previous_secrets_for_a_rotation_come_from_env_as_a_list():
    other = GOOD_SECRET[::-1]
    env = {"STREAM_MONITOR_STATE_SECRET": GOOD_SECRET, "STREAM_MONITOR_STATE__PREVIOUS_HMAC_SECRETS": f"{other}, {other.upper()}"}
    keys = load_config(None, env=env).state.signing_keys()
    assert keys.previous == (other.encode(), other.upper().encode())
    env["STREAM_MONITOR_STATE__PREVIOUS_HMAC_SECRETS"] = "too-short"
    with pytest.raises(ConfigError, match=r"state\.previous_hmac_secrets\.0: is 9 bytes"):
        load_config(None, env=env).state.signing_keys()
