"""Deployment artifacts are consistent with the code: compose, Dockerfile, k8s, Prometheus/Alertmanager.

No Docker engine or cluster exists here, so the checks are at the YAML/schema level, plus the real
validators where they exist (``promtool``, ``amtool``): every ``STREAM_MONITOR_*`` variable is one
the config or the bridge reads, every command parses with the real CLI parser, every config file
loads with :func:`load_config`, manifests carry probes, resources and a non-root security context.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from stream_monitor import demo_stream
from stream_monitor.commands import build_parser, main
from stream_monitor.bridges.options import BRIDGE_ENV
from stream_monitor.config import FLAG_ENV, load_config
from tests.integration.servers import require_binary

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
COMPOSE = ROOT / "docker-compose.yml"
K8S = DEPLOY / "k8s"
EXAMPLE = DEPLOY / "monitor.example.yaml"
CLI_ENV = {"STREAM_MONITOR_CONFIG"}  # read by the CLI itself (commands.common.load_app_config)
OUR_IMAGE = re.compile(r"(^|/)stream-monitor:\d+\.\d+\.\d+$")
_SUBST = re.compile(r"\$\{([A-Z0-9_]+)(?::?-([^}]*))?\}")


def _subst(value: Any) -> str:
    """Compose-style ${VAR:-default} -> default (what an empty environment gives)."""
    return _SUBST.sub(lambda m: m.group(2) or "", str(value))


def _env_problems(env: dict[str, str], where: str) -> list[str]:
    """Names no part of stream-monitor reads, and values load_config rejects."""
    problems = []
    for name in env:
        if not name.startswith("STREAM_MONITOR_"):
            continue
        short = name[len("STREAM_MONITOR_") :]
        if short in FLAG_ENV or name in BRIDGE_ENV or name in CLI_ENV:
            continue
        if "__" not in short:
            problems.append(f"{where}: {name} is neither a FLAG_ENV name, a bridge variable nor a SECTION__FIELD path")
            continue
        try:
            load_config(None, env={name: env[name]})
        except Exception as exc:  # noqa: BLE001 - collected for one readable failure
            problems.append(f"{where}: {name}: {exc}")
    return problems


# ------------------------------------------------------------------------------------ compose
@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _our_services(compose: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, svc in compose["services"].items():
        if svc.get("build", {}).get("dockerfile") == "deploy/Dockerfile":
            yield name, svc


def test_compose_has_the_whole_stack(compose):
    services = compose["services"]
    assert {"kafka", "producer", "monitor", "bridge", "prometheus", "alertmanager"} <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:")
    env = services["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller" and "CONTROLLER" in env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"  # transactions work on one node
    assert {n for n, _ in _our_services(compose)} == {"producer", "monitor", "bridge"}
    for name, svc in services.items():
        image = svc.get("image", "")
        assert image and not image.endswith(":latest") and ":" in image, f"{name}: pin the image tag ({image!r})"
    # the mounted files exist
    for name, svc in services.items():
        for volume in svc.get("volumes", []):
            host = volume.split(":", 1)[0]
            if host.startswith("./"):
                assert (ROOT / host).exists(), f"{name}: {host} does not exist"


def test_compose_env_names_are_real_settings(compose):
    problems = []
    for name, svc in _our_services(compose):
        env = {k: _subst(v) for k, v in (svc.get("environment") or {}).items()}
        problems += _env_problems(env, f"compose service {name}")
    assert not problems, "\n".join(problems)


def test_compose_commands_parse_with_the_real_cli(compose):
    parser = build_parser()
    for name, svc in _our_services(compose):
        command = [_subst(c) for c in svc["command"]]
        if svc.get("entrypoint"):
            assert svc["entrypoint"] == ["python", "-m", "stream_monitor.demo_stream"], name
            args = demo_stream.build_parser().parse_args(command)
            assert args.bootstrap_servers == "kafka:9092"
            continue
        args = parser.parse_args(command)
        assert args.command in ("run", "bridge"), name
    monitor = compose["services"]["monitor"]
    # the monitor's effective config: YAML file + the compose environment (env beats YAML)
    env = {k: _subst(v) for k, v in monitor["environment"].items()}
    cfg = load_config(EXAMPLE, env=env)
    assert cfg.kafka.bootstrap_servers == ["kafka:9092"] and cfg.metrics.host == "0.0.0.0" and cfg.metrics.port == 9108
    assert cfg.state.hmac_secret is not None


def test_prometheus_scrapes_the_compose_services(compose):
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {t for job in prom["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    monitor_port = compose["services"]["monitor"]["environment"]["STREAM_MONITOR_METRICS_PORT"]
    bridge_port = compose["services"]["bridge"]["environment"]["STREAM_MONITOR_BRIDGE_METRICS_PORT"]
    assert f"monitor:{monitor_port}" in targets and f"bridge:{bridge_port}" in targets
    bridge_cmd = compose["services"]["bridge"]["command"]
    assert bridge_cmd[bridge_cmd.index("--url") + 1] == "http://alertmanager:9093"
    assert prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]


def test_prometheus_config_and_rules_pass_promtool():
    promtool = require_binary("promtool")
    out = subprocess.run([promtool, "check", "config", "--syntax-only", str(DEPLOY / "prometheus" / "prometheus.yml")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    rules = sorted((DEPLOY / "prometheus" / "rules").glob("*.yml"))
    assert rules
    out = subprocess.run([promtool, "check", "rules", *map(str, rules)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_judging_behind_rule_fires_for_minutes_behind_and_not_for_a_second():
    promtool = require_binary("promtool")
    test_file = Path(__file__).parent / "data" / "prometheus" / "judging_behind_test.yml"
    out = subprocess.run([promtool, "test", "rules", test_file.name], capture_output=True, text=True, timeout=60, cwd=test_file.parent)
    assert out.returncode == 0, out.stdout + out.stderr


def test_alertmanager_configs_pass_amtool():
    amtool = require_binary("amtool")
    files = sorted((DEPLOY / "alertmanager").glob("*.yml"))
    assert len(files) >= 2
    out = subprocess.run([amtool, "check-config", *map(str, files)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_alertmanager_routes_group_partitions_together():
    for path in (DEPLOY / "alertmanager").glob("*.yml"):
        route = yaml.safe_load(path.read_text())["route"]
        assert "partition" not in route["group_by"] and {"alertname", "model", "feature"} <= set(route["group_by"]), path


# ------------------------------------------------------------------------------------ Dockerfile
def test_dockerfile_is_slim_pinned_non_root_with_healthcheck():
    text = (DEPLOY / "Dockerfile").read_text()
    froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert froms and all(re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", f) for f in froms), froms
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0"), users
    assert re.search(r"^HEALTHCHECK\s+.*CMD", text, re.M | re.S)
    assert re.search(r'^ENTRYPOINT \["stream-monitor"\]', text, re.M)
    assert re.search(r'^CMD \["run"\]', text, re.M)
    # the image's default env names are real settings
    env = dict(re.findall(r"(STREAM_MONITOR_[A-Z_]+)=(\S+)", text))
    assert not _env_problems(env, "Dockerfile")
    # what COPY takes is enough to build the package
    for src in re.findall(r"^COPY\s+(?!--from)(.+?)\s+\S+$", text, re.M):
        for item in src.split():
            assert (ROOT / item).exists(), item


# ------------------------------------------------------------------------------------ k8s
def _k8s_docs() -> list[tuple[Path, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((path, doc))
    return docs


def _deployments() -> list[tuple[Path, dict[str, Any]]]:
    return [(p, d) for p, d in _k8s_docs() if d["kind"] == "Deployment"]


def _our_containers(dep: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in dep["spec"]["template"]["spec"]["containers"] if OUR_IMAGE.search(c["image"])]


def test_k8s_manifests_parse_and_kustomization_lists_them():
    docs = _k8s_docs()
    for path, doc in docs:
        assert {"apiVersion", "kind"} <= set(doc), path
        if doc["kind"] != "Kustomization":
            assert doc["metadata"]["name"], path
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    for res in kust["resources"]:
        assert (K8S / res).exists(), res
    assert {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"} == set(kust["resources"])


def test_k8s_has_sidecar_and_standalone_deployments():
    deps = {d["metadata"]["name"]: d for _, d in _deployments()}
    sidecar = deps["fraud-model"]
    names = [c["name"] for c in sidecar["spec"]["template"]["spec"]["containers"]]
    assert "stream-monitor" in names and len(names) >= 2, "the monitor runs next to the model server"
    assert any(len(d["spec"]["template"]["spec"]["containers"]) == 1 and _our_containers(d) for d in deps.values() if d is not sidecar)


def test_k8s_containers_have_probes_resources_and_non_root():
    parser = build_parser()
    for path, dep in _deployments():
        pod = dep["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, path
        for c in pod["containers"]:
            where = f"{path.name}:{c['name']}"
            assert c["securityContext"]["allowPrivilegeEscalation"] is False, where
            assert c["securityContext"].get("runAsNonRoot", pod["securityContext"]["runAsNonRoot"]) is True, where
            assert {"requests", "limits"} <= set(c["resources"]) and "memory" in c["resources"]["limits"], where
            assert ":" in c["image"] and not c["image"].endswith(":latest"), where
        for c in _our_containers(dep):
            where = f"{path.name}:{c['name']}"
            assert c["livenessProbe"]["httpGet"]["path"] == "/healthz", where
            # a sidecar must never take model serving out of its Service: it gates on liveness only;
            # standalone monitors gate on /readyz (assigned, restored, checkpointing)
            sidecar = len(dep["spec"]["template"]["spec"]["containers"]) > 1
            assert c["readinessProbe"]["httpGet"]["path"] == ("/healthz" if sidecar else "/readyz"), where
            ports = {p["name"]: p["containerPort"] for p in c["ports"]}
            for probe in ("livenessProbe", "readinessProbe"):
                port = c[probe]["httpGet"]["port"]
                assert port in ports or port in ports.values(), f"{where}: {probe} port {port}"
            env = {e["name"]: e.get("value", "<from-ref>") for e in c.get("env", [])}
            problems = _env_problems({k: v for k, v in env.items() if v != "<from-ref>"}, where)
            problems += [p for p in _env_problems({k: "x" for k, v in env.items() if v == "<from-ref>"}, where) if "neither" in p]
            assert not problems, "\n".join(problems)
            assert env.get("STREAM_MONITOR_METRICS__HOST") == "0.0.0.0", f"{where}: probes need a non-loopback bind"
            metrics_port = int(env.get("STREAM_MONITOR_BRIDGE_METRICS_PORT") or env.get("STREAM_MONITOR_METRICS_PORT") or 9108)
            assert metrics_port in ports.values(), where
            ann = dep["spec"]["template"]["metadata"]["annotations"]
            assert ann["prometheus.io/scrape"] == "true" and int(ann["prometheus.io/port"]) == metrics_port, where
            args = parser.parse_args(c["args"])
            assert args.command in ("run", "bridge"), where
            assert pod.get("terminationGracePeriodSeconds", 30) >= 30, where


def test_k8s_secrets_come_from_the_secret_not_literals():
    names = {d["metadata"]["name"] for _, d in _k8s_docs() if d["kind"] == "Secret"}
    configmaps = {d["metadata"]["name"]: d for _, d in _k8s_docs() if d["kind"] == "ConfigMap"}
    for path, dep in _deployments():
        pod = dep["spec"]["template"]["spec"]
        for v in pod.get("volumes", []):
            if "secret" in v:
                assert v["secret"]["secretName"] in names, path
            if "configMap" in v:
                assert v["configMap"]["name"] in configmaps, path
        for c in _our_containers(dep):
            env = {e["name"]: e for e in c.get("env", [])}
            for name, e in env.items():
                if any(s in name for s in ("SECRET", "PASSWORD", "ROUTING_KEY")) and not name.endswith("_FILE"):
                    assert "valueFrom" in e and "secretKeyRef" in e["valueFrom"], f"{path.name}: {name} must come from a Secret"
    sidecar = next(d for _, d in _deployments() if d["metadata"]["name"] == "fraud-model")
    monitor = next(c for c in sidecar["spec"]["template"]["spec"]["containers"] if c["name"] == "stream-monitor")
    env = {e["name"]: e for e in monitor["env"]}
    assert env["STREAM_MONITOR_STATE_SECRET"]["valueFrom"]["secretKeyRef"]["name"] in names
    mounts = {m["mountPath"] for m in monitor["volumeMounts"]}
    assert str(Path(env["STREAM_MONITOR_KAFKA__SASL_PASSWORD_FILE"]["value"]).parent) in mounts


def test_k8s_configmap_config_loads(tmp_path: Path):
    (cm,) = [d for _, d in _k8s_docs() if d["kind"] == "ConfigMap"]
    data = yaml.safe_load(cm["data"]["monitor.yaml"])
    path = tmp_path / "monitor.yaml"
    path.write_text(cm["data"]["monitor.yaml"])
    cfg = load_config(path, env={})
    assert cfg.kafka.security_protocol == "SASL_SSL" and cfg.kafka.sasl_password is None and cfg.kafka.sasl_password_file
    assert cfg.metrics.host == "0.0.0.0"
    assert "password" not in str(data.get("kafka", {}).get("sasl_password", ""))


# ------------------------------------------------------------------------------------ example config
def test_example_config_loads_and_is_complete():
    cfg = load_config(EXAMPLE, env={})
    assert cfg.models, "the example should configure models"
    for name, model in cfg.models.items():
        assert {"team", "owner"} <= set(model.labels), name
        assert "runbook_url" in model.annotations, name
    channels = [ch for m in cfg.models.values() for ch in m.channels.values()]
    assert any(ch.range for ch in channels) and any(ch.detectors for ch in channels) and any(ch.detection for ch in channels)
    assert any(not ch.enabled for ch in channels)


def test_example_config_passes_check_config(capsys):
    import structlog

    saved = structlog.get_config()
    try:
        assert main(["check-config", str(EXAMPLE)]) == 0
    finally:
        structlog.configure(**saved)
    assert "config is valid" in capsys.readouterr().out
