"""The application config: one validated pydantic model, from YAML, environment and CLI flags.

Precedence: built-in defaults < YAML file < environment < command-line flags. Environment
variables are ``STREAM_MONITOR_<SECTION>__<FIELD>`` (e.g. ``STREAM_MONITOR_KAFKA__GROUP_ID``), plus
one short variable per CLI flag (``STREAM_MONITOR_BOOTSTRAP_SERVERS``, ``STREAM_MONITOR_INPUT_TOPIC``,
...). Errors name the field: ``kafka.commit_interval_ms: Input should be greater than 0``.

>>> cfg = load_config(None, env={"STREAM_MONITOR_GROUP_ID": "g1"}, overrides={"kafka.alerts_topic": "a"})
>>> cfg.kafka.group_id, cfg.kafka.alerts_topic, cfg.kafka.input_topics
('g1', 'a', ['inference-events'])
>>> load_config(None, overrides={"kafka.commit_interval_ms": 0})
Traceback (most recent call last):
...
stream_monitor.config.ConfigError: kafka.commit_interval_ms: Input should be greater than 0
"""

from __future__ import annotations

import importlib.util
import os
import socket
from pathlib import Path
from typing import Any, Literal, Mapping

import structlog
import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from stream_monitor.core.settings import describe_error
from stream_monitor.core.signing import SigningKeys
from stream_monitor.core.spec import MonitorSpec

ENV_PREFIX = "STREAM_MONITOR_"

# One environment variable per CLI flag.
FLAG_ENV: dict[str, str] = {
    "BOOTSTRAP_SERVERS": "kafka.bootstrap_servers",
    "INPUT_TOPIC": "kafka.input_topics",
    "ALERTS_TOPIC": "kafka.alerts_topic",
    "GROUP_ID": "kafka.group_id",
    "METRICS_PORT": "metrics.port",
    "LABEL_TOPIC": "kafka.label_topic",
    "DLQ_TOPIC": "kafka.dlq_topic",
    "STATE_SECRET": "state.hmac_secret",
    "INSTANCE": "instance",
    "LOG_LEVEL": "log.level",
    "LOG_FORMAT": "log.format",
}


class ConfigError(ValueError):
    """A config problem, worded for the person who wrote the config (names the field)."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KafkaSettings(_Section):
    """``kafka``: brokers, topics, group, exactly-once, timeouts and security."""

    bootstrap_servers: list[str] = ["127.0.0.1:9092"]
    input_topics: list[str] = Field(default=["inference-events"], min_length=1)
    label_topic: str | None = None
    alerts_topic: str = "drift-alerts"
    dlq_topic: str = "stream-monitor-dlq"
    group_id: str = "stream-monitor"
    changelog_topic: str | None = None  # default: "<group_id>-state-changelog"
    exactly_once: bool = True
    transactional_id: str | None = None  # default: "<group_id>-<instance>"
    commit_interval_ms: int = Field(default=250, gt=0, le=60_000)
    # sooner, when the open transaction holds records someone waits for and the inputs are read to their end
    min_commit_interval_ms: int = Field(default=50, gt=0, le=60_000)
    # how often a checkpoint writes the judged state (and moves the by-model offsets with it); judging's
    # dead letters commit with their state at once; the checkpoints between carry the inputs' offsets
    # and rows, and alerts and retraining events with the identities of those committed ahead of the
    # state (exactly-once, by-model topology). After a failure, judging is redone from the last state
    # written: at most this much more of it, never a duplicate or a loss.
    state_interval_ms: int = Field(default=2_000, gt=0, le=600_000)
    max_poll_records: int = Field(default=5000, gt=0)
    # how long a fetch may wait for 256 KiB (a monitor keeping up batches what arrives meanwhile): every
    # page waits for two fetches (the input's, the by-model topic's), so the latency knob; 10 ms takes
    # ~0.1-0.25 s off p50/p99 event->alert at 6,500 events/s for ~25-35 % more CPU at 500 events/s
    fetch_max_wait_ms: int = Field(default=40, ge=0, le=10_000)
    poll_timeout_ms: int = Field(default=100, ge=0)
    session_timeout_ms: int = Field(default=10_000, gt=0)
    transaction_timeout_ms: int = Field(default=60_000, gt=0)
    # bound on commit/abort/send_offsets; past it the producer is re-created (kafka-python has none)
    transaction_operation_timeout_ms: int = Field(default=30_000, gt=0)
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    create_topics: bool = True  # create missing output/changelog topics at start-up
    # how the producer compresses what the monitor writes (rows of the by-model topic, state, alerts,
    # dead letters), per record batch: the state is mostly numbers with repeated keys and takes about
    # half the bytes with lz4 (a third with zstd), at ~1 % of the CPU; consumers decompress it themselves
    compression_type: Literal["none", "gzip", "lz4", "zstd"] = "lz4"
    state_partitioning: Literal["input", "model"] = "model"
    """``model`` (default): input records are read (decoded, validated, dead-lettered) by whichever
    instance owns their input partition, and each model's validated rows go, in the same
    transaction, to the internal repartition topic keyed by model, where the model's owner judges
    them in event-time order: each model is judged once, whatever the input keys and partition
    counts. ``input``: state per input partition, no internal topic (only right when every model's
    events are produced keyed by model)."""
    # the last resort for an input partition whose reader is gone: silent this long (no rows, no
    # progress, no caught-up announcement) it stops holding back event-time order; readers announce
    # when they are caught up, so a slow or moving partition is waited for, not skipped
    idle_timeout_ms: int = Field(default=300_000, gt=0)
    # a caught-up input partition that has sent before holds event-time order at its latest time until
    # it has not grown for this long (wall clock, its high watermark as its reader saw it) before the
    # order goes on without it: records produced to it meanwhile (labels trickling in, rows of a reader
    # killed before its commit, a burst not fetched yet) are judged in order, not ``late``. A backlog
    # read to its end in longer than this has served it (its last rows are judged at once); the last
    # rows of a live input that stops wait this long; 0: at once
    caught_up_grace_ms: int = Field(default=5_000, ge=0)
    # a partition whose records are all stamped longer than the grace ago when it is assigned (a topic
    # produced before the monitor started, a finished backfill) has served its grace already: its last
    # rows are judged once it is read to its end. The stamps are the records' own (CreateTime: the
    # producer's clock); off for producers that stamp records with old times (event time, say)
    grace_from_record_timestamps: bool = True
    # By-model topology: while this instance owns every partition of the inputs and of the internal topic (one
    # instance, or the only one holding partitions) and the internal topic held nothing unread when they were
    # assigned, the rows it reads go straight to their model's judge here instead of through the internal topic (the
    # same rows, judged the same way; the input offsets then follow the rows still waiting for their turn, as with
    # state_partitioning: input). The next rebalance goes back to the internal topic. Limits: docs/architecture.md,
    # "Judged where read"; false: always through the internal topic
    judge_locally: bool = True
    # how often at most an input partition tells a by-model partition it got no rows how far it read
    progress_interval_ms: int = Field(default=50, gt=0)
    repartition_topic: str | None = None  # default: "<group_id>-by-model"
    repartition_partitions: int | None = Field(default=None, ge=1)  # default: input partition count
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    sasl_password_file: Path | None = None
    ssl_cafile: Path | None = None  # CA bundle (PEM) to verify the brokers; default: the system's
    ssl_certfile: Path | None = None  # client certificate (PEM) for mutual TLS
    ssl_keyfile: Path | None = None
    ssl_password: SecretStr | None = None  # password of an encrypted ssl_keyfile
    ssl_password_file: Path | None = None
    ssl_check_hostname: bool = True
    client_options: dict[str, Any] = Field(default_factory=dict)  # passed to kafka-python as is

    @model_validator(mode="after")
    def _security_complete(self) -> KafkaSettings:
        sasl = self.security_protocol.startswith("SASL")
        if sasl:
            if not self.sasl_username:
                raise ValueError(f"sasl_username is required with security_protocol {self.security_protocol}")
            if self.sasl_password is None and self.sasl_password_file is None:
                raise ValueError(
                    f"sasl_password or sasl_password_file is required with security_protocol {self.security_protocol}"
                )
        if self.sasl_password is not None and self.sasl_password_file is not None:
            raise ValueError("sasl_password and sasl_password_file are exclusive: set one")
        if self.ssl_password is not None and self.ssl_password_file is not None:
            raise ValueError("ssl_password and ssl_password_file are exclusive: set one")
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None) and self.ssl_keyfile is not None:
            raise ValueError("ssl_keyfile needs ssl_certfile")
        return self

    @field_validator("compression_type")
    @classmethod
    def _codec_installed(cls, value: str) -> str:
        needs = {"lz4": "lz4", "zstd": "zstandard"}.get(value)
        if needs is not None and importlib.util.find_spec(needs) is None:
            raise ValueError(f"{value} needs the {needs} package (pip install {needs}), or choose another: none, gzip, lz4, zstd")
        return value

    @field_validator("bootstrap_servers", "input_topics", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    def resolved_changelog_topic(self) -> str:
        """The changelog topic: ``changelog_topic`` or ``<group_id>-state-changelog``."""
        return self.changelog_topic or f"{self.group_id}-state-changelog"

    def resolved_repartition_topic(self) -> str:
        """The repartition topic: ``repartition_topic`` or ``<group_id>-by-model``."""
        return self.repartition_topic or f"{self.group_id}-by-model"

    def password(self) -> str | None:
        """The SASL password, from the setting or read from its file (trailing newline stripped)."""
        return _secret(self.sasl_password, self.sasl_password_file, "kafka.sasl_password_file")

    def ssl_key_password(self) -> str | None:
        """The password of an encrypted ``ssl_keyfile``, from the setting or its file."""
        return _secret(self.ssl_password, self.ssl_password_file, "kafka.ssl_password_file")

    def __repr_args__(self) -> Any:  # never show client_options values (they may carry secrets)
        for name, value in super().__repr_args__():
            yield name, ("{...}" if name == "client_options" and value else value)


def _secret(value: SecretStr | None, path: Path | None, field: str) -> str | None:
    if value is not None:
        return value.get_secret_value()
    if path is not None:
        try:
            return path.read_text().strip()
        except OSError as exc:  # the message names the file, never its content
            raise ConfigError(f"{field}: cannot read {path}: {exc.strerror or exc}") from None
    return None


MIN_SECRET_BYTES = 32
# Words that mark a value as a template to fill in, not a secret (deploy/k8s ships one of these).
PLACEHOLDER_MARKERS = ("replace", "change-me", "changeme", "change_me", "placeholder", "example", "dummy", "insecure", "demo-only")
# A random 32-byte secret (raw or hex) has far more distinct characters than this.
_MIN_DISTINCT = 10


def secret_problem(value: bytes) -> str | None:
    """Why ``value`` cannot sign state (empty, short, a placeholder), or None when it can.

    >>> secret_problem(b""), secret_problem(b"REPLACE-with-32-random-bytes-hex"), secret_problem(bytes(range(32)))
    ('is empty', 'looks like a placeholder (contains "replace"); use 32 or more random bytes, e.g. `openssl rand -hex 32`', None)
    """
    if not value:
        return "is empty"
    if len(value) < MIN_SECRET_BYTES:
        return f"is {len(value)} bytes; at least {MIN_SECRET_BYTES} random bytes are required, e.g. `openssl rand -hex 32`"
    lowered = value.lower()
    for marker in PLACEHOLDER_MARKERS:
        if marker.encode() in lowered:
            return f'looks like a placeholder (contains "{marker}"); use 32 or more random bytes, e.g. `openssl rand -hex 32`'
    if len(set(value)) < _MIN_DISTINCT:
        return "is not random (too few distinct characters); use e.g. `openssl rand -hex 32`"
    return None


class StateSettings(_Section):
    """``state``: the changelog state and the HMAC secrets that authenticate it.

    ``previous_hmac_secrets`` are accepted when reading state during a rotation; new records are
    always signed with ``hmac_secret`` (or ``hmac_secret_file``).
    """

    enabled: bool = True
    hmac_secret: SecretStr | None = None
    hmac_secret_file: Path | None = None
    previous_hmac_secrets: list[SecretStr] = Field(default_factory=list)

    @field_validator("previous_hmac_secrets", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    def signing_keys(self) -> SigningKeys:
        """The validated current and previous secrets; :class:`ConfigError` naming the field otherwise.

        A secret file readable by group or others is logged as a warning.
        """
        if self.hmac_secret is not None:
            field, current = "state.hmac_secret", self.hmac_secret.get_secret_value().encode()
        elif self.hmac_secret_file is not None:
            field, current = "state.hmac_secret_file", _read_secret_file(self.hmac_secret_file, "state.hmac_secret_file")
        else:
            raise ConfigError(
                "state.hmac_secret: required to run with state enabled (it authenticates the state read back from "
                "Kafka); set STREAM_MONITOR_STATE_SECRET or state.hmac_secret_file to 32 or more random bytes, "
                "e.g. `openssl rand -hex 32`"
            )
        problem = secret_problem(current)
        if problem:
            raise ConfigError(f"{field}: {problem}")
        previous = []
        for i, old in enumerate(self.previous_hmac_secrets):
            value = old.get_secret_value().encode()
            problem = secret_problem(value)
            if problem:
                raise ConfigError(f"state.previous_hmac_secrets.{i}: {problem}")
            previous.append(value)
        return SigningKeys(current, tuple(previous))


def _read_secret_file(path: Path, field: str) -> bytes:
    try:
        value = path.read_bytes().strip()
        mode = path.stat().st_mode
    except OSError as exc:  # the message names the file, never its content
        raise ConfigError(f"{field}: cannot read {path}: {exc.strerror or exc}") from None
    if mode & 0o077:
        structlog.get_logger("stream_monitor.config").warning(
            "secret_file_permissions",
            field=field,
            path=str(path),
            mode=oct(mode & 0o777),
            detail="readable by group or others; chmod 600 (or defaultMode 0400 in Kubernetes)",
        )
    return value


class MetricsSettings(_Section):
    """``metrics``: the HTTP server for /metrics, /healthz and /readyz, and series caps."""

    enabled: bool = True
    host: str = "127.0.0.1"  # 0.0.0.0 in a container, so kubelet probes and Prometheus reach it
    port: int = Field(default=9108, ge=0, le=65535)
    max_channel_series: int = Field(default=2000, ge=0)
    max_model_series: int = Field(default=500, ge=0)  # distinct model label values; later models export as __other__
    liveness_timeout_seconds: float = Field(default=300.0, gt=0)  # /healthz fails when the loop stalls this long
    readiness_checks_broker: bool = True  # /readyz also needs a bootstrap broker to accept TCP


class LogSettings(_Section):
    """``log``: level and format of the structured logs."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["json", "console"] = "json"

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class BridgeSettings(_Section):
    """``bridge``: what every bridge adds to its requests (the rest of a bridge's options are its flags).

    ``headers`` are sent with every POST, e.g. ``Authorization: "Bearer ${file:/run/secrets/token}"``;
    ``${file:PATH}`` and ``${env:NAME}`` take a secret from a file or a variable when the bridge
    starts (``stream_monitor.bridges.headers``). The values are never shown.
    """

    headers: dict[str, SecretStr] = Field(default_factory=dict)


class AppConfig(MonitorSpec):
    """Everything ``stream-monitor run`` needs: the core's :class:`MonitorSpec` plus the edges."""

    kafka: KafkaSettings = KafkaSettings()
    state: StateSettings = StateSettings()
    metrics: MetricsSettings = MetricsSettings()
    log: LogSettings = LogSettings()
    bridge: BridgeSettings = BridgeSettings()

    @model_validator(mode="after")
    def _groups_need_the_by_model_topic(self) -> AppConfig:
        if self.kafka.state_partitioning == "input":  # judging groups live on partitions of <group>-by-model
            for name, m in self.models.items():
                if m.judging_groups > 1:
                    raise ValueError(f"models.{name}.judging_groups: {m.judging_groups} needs kafka.state_partitioning: model")
        return self

    def monitor_spec(self) -> MonitorSpec:
        """The core's part of the config (without a label topic, no predictions are kept for a join)."""
        fields = {name: getattr(self, name) for name in MonitorSpec.model_fields}
        if not self.kafka.label_topic:
            # no label events will come to join: remembering every prediction for a join would
            # only grow the state and rewrite it at every checkpoint
            fields["label_join_max_pending"] = 0
        return MonitorSpec.model_construct(**fields)

    def transactional_id(self) -> str:
        """The producer's transactional id: ``kafka.transactional_id`` or ``<group_id>-<instance>``."""
        return self.kafka.transactional_id or f"{self.kafka.group_id}-{self.instance}"


def _set_path(data: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value


def _env_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    """Config paths set by ``STREAM_MONITOR_*`` variables."""
    out: dict[str, Any] = {}
    for key, raw in env.items():
        if not key.startswith(ENV_PREFIX):
            continue
        name = key[len(ENV_PREFIX) :]
        if name in FLAG_ENV:
            path = FLAG_ENV[name]
            out[path] = raw if path in RAW_ENV_PATHS else _env_value(raw)
        elif "__" in name:
            path = ".".join(p.lower() for p in name.split("__"))
            out[path] = raw if path in RAW_ENV_PATHS else _env_value(raw)
    return out


# Taken from the environment verbatim, never YAML-parsed: a password "123456", "yes" or "a: b"
# must stay that string (YAML would make it a number, a boolean or a mapping).
RAW_ENV_PATHS = frozenset(
    {
        "kafka.bootstrap_servers",
        "kafka.input_topics",
        "kafka.sasl_username",
        "kafka.sasl_password",
        "kafka.ssl_password",
        "state.hmac_secret",
        "state.previous_hmac_secrets",
    }
)


def _describe(exc: ValidationError) -> str:
    """Every problem on its own line, each naming its full field path."""
    lines = []
    for err in exc.errors(include_url=False):
        single = ValidationError.from_exception_data(exc.title, [err])  # type: ignore[list-item]
        lines.append(describe_error(single))
    return "\n".join(lines)


def load_config(
    path: str | Path | None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> AppConfig:
    """Load and validate the config. Raises :class:`ConfigError` naming the offending field."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        try:
            loaded = yaml.safe_load(p.read_text()) or {}
        except FileNotFoundError as exc:
            raise ConfigError(f"config file not found: {p}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: not valid YAML: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"{p}: the top level must be a mapping of sections, got {type(loaded).__name__}")
        data = loaded
    for source in (env_overrides(os.environ if env is None else env), dict(overrides or {})):
        for key, value in source.items():
            if value is not None:
                _set_path(data, key, value)
    data.setdefault("instance", _default_instance())
    try:
        from stream_monitor import __version__

        data.setdefault("version", __version__)
        return AppConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def _default_instance() -> str:
    return os.environ.get("HOSTNAME") or socket.gethostname() or "stream-monitor"
