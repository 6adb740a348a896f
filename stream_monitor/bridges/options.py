"""The bridge's options: flags, then environment variables, validated into :class:`BridgeOptions`."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from stream_monitor.bridges.headers import HeaderError, resolve_headers
from stream_monitor.bridges.mapping import PAGERDUTY_EVENTS_URL, label_name
from stream_monitor.config import AppConfig


# Environment variables of the bridge (flags win). Not config-file settings: a bridge is
# configured by its command line, except the extra headers (``bridge.headers``, shared by every
# bridge); the Kafka connection comes from the usual config/env.
BRIDGE_ENV: dict[str, str] = {
    "STREAM_MONITOR_BRIDGE_URL": "--url",
    "STREAM_MONITOR_BRIDGE_GROUP_ID": "--group-id",
    "STREAM_MONITOR_BRIDGE_RESEND_INTERVAL": "--resend-interval",
    "STREAM_MONITOR_BRIDGE_GENERATOR_URL": "--generator-url",
    "STREAM_MONITOR_BRIDGE_LABELS": "--label (comma-separated K=V)",
    "STREAM_MONITOR_BRIDGE_METRICS_PORT": "--metrics-port",
    "STREAM_MONITOR_PAGERDUTY_ROUTING_KEY": "--routing-key",
    "STREAM_MONITOR_PAGERDUTY_ROUTING_KEY_FILE": "--routing-key-file",
}


@dataclass(frozen=True)
class BridgeOptions:
    """Everything a bridge needs to know, validated (the routing key and header values are never shown).

    ``secrets`` are what the extra headers' values took from files and environment variables; the
    sinks redact them, the headers' values and the routing key from every log line.
    """

    target: Literal["alertmanager", "pagerduty", "retraining"]
    urls: tuple[str, ...]
    group_id: str
    resend_interval_s: float = 60.0
    generator_url: str | None = None
    extra_labels: Mapping[str, str] = field(default_factory=dict)
    routing_key: str | None = field(default=None, repr=False)
    retry_initial_s: float = 0.5
    retry_max_s: float = 30.0
    request_timeout_s: float = 10.0
    epoch_s: float = 60.0  # longest stretch of retries before going back to poll (group liveness)
    max_batch: int = 200
    metrics_port: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    secrets: tuple[str, ...] = field(default=(), repr=False)


class BridgeUsageError(ValueError):
    """A missing or bad bridge option (exit code 2)."""


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def parse_labels(values: Sequence[str]) -> dict[str, str]:
    """``["team=risk", "env=prod,tier=1"]`` -> labels (names sanitised).

    >>> parse_labels(["team=risk", "env=prod, tier=1"])
    {'team': 'risk', 'env': 'prod', 'tier': '1'}
    """
    out: dict[str, str] = {}
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            key, sep, val = part.partition("=")
            if not sep or not key.strip():
                raise BridgeUsageError(f"--label must be K=V, got {part!r}")
            out[label_name(key.strip())] = val.strip()
    return out


def extra_headers(args: argparse.Namespace, cfg: AppConfig, base_dir: Path | None = None) -> tuple[dict[str, str], tuple[str, ...]]:
    """``bridge.headers`` then ``--header``, resolved and validated, and the strings to redact; never shows a value."""
    configured = {name: value.get_secret_value() for name, value in cfg.bridge.headers.items()}
    try:
        return resolve_headers(configured, getattr(args, "header", None) or [], base_dir=base_dir)
    except HeaderError as exc:
        raise BridgeUsageError(str(exc)) from None


def options_from_args(args: argparse.Namespace, cfg: AppConfig, base_dir: Path | None = None) -> BridgeOptions:
    """Options from the flags, then ``BRIDGE_ENV``, then the config; raises :class:`BridgeUsageError` naming the flag.

    ``base_dir`` is the config file's directory (relative ``${file:..}`` paths in ``bridge.headers``).
    """
    target = args.target
    url_text = getattr(args, "url", None) or _env("STREAM_MONITOR_BRIDGE_URL")
    if target == "alertmanager":
        if not url_text:
            raise BridgeUsageError("bridge alertmanager needs --url (or STREAM_MONITOR_BRIDGE_URL), e.g. http://alertmanager:9093")
        urls = tuple(u.strip().rstrip("/") for u in url_text.split(",") if u.strip())
    elif target == "retraining":
        if not url_text:
            raise BridgeUsageError("bridge retraining needs --url (or STREAM_MONITOR_BRIDGE_URL): the webhook that receives retraining events")
        if not cfg.retraining.enabled:
            raise BridgeUsageError("bridge retraining: retraining.enabled is false in the config, so no retraining events are published")
        urls = (url_text.strip(),)
    else:
        urls = (url_text or PAGERDUTY_EVENTS_URL,)
    routing_key = None
    if target == "pagerduty":
        routing_key = getattr(args, "routing_key", None) or _env("STREAM_MONITOR_PAGERDUTY_ROUTING_KEY")
        key_file = getattr(args, "routing_key_file", None) or _env("STREAM_MONITOR_PAGERDUTY_ROUTING_KEY_FILE")
        if routing_key and key_file:
            raise BridgeUsageError("give the PagerDuty routing key once: --routing-key or --routing-key-file")
        if key_file:
            try:
                routing_key = Path(key_file).read_text().strip()
            except OSError as exc:
                raise BridgeUsageError(f"--routing-key-file: cannot read {key_file}: {exc.strerror or exc}") from None
        if not routing_key:
            raise BridgeUsageError(
                "bridge pagerduty needs a routing key: --routing-key-file, --routing-key or STREAM_MONITOR_PAGERDUTY_ROUTING_KEY(_FILE)"
            )
    resend = getattr(args, "resend_interval", None)
    if resend is None:
        resend = float(_env("STREAM_MONITOR_BRIDGE_RESEND_INTERVAL") or 60.0)
    if resend <= 0:
        raise BridgeUsageError(f"--resend-interval must be > 0, got {resend}")
    labels = parse_labels([_env("STREAM_MONITOR_BRIDGE_LABELS") or "", *(getattr(args, "label", None) or [])])
    group = getattr(args, "group_id", None) or _env("STREAM_MONITOR_BRIDGE_GROUP_ID") or f"{cfg.kafka.group_id}-bridge-{target}"
    metrics_port = getattr(args, "metrics_port", None)
    if metrics_port is None and _env("STREAM_MONITOR_BRIDGE_METRICS_PORT"):
        metrics_port = int(_env("STREAM_MONITOR_BRIDGE_METRICS_PORT") or 0)
    retry_initial = getattr(args, "retry_initial", None) or 0.5
    retry_max = getattr(args, "retry_max", None) or 30.0
    if retry_initial <= 0 or retry_max < retry_initial:
        raise BridgeUsageError("need 0 < --retry-initial <= --retry-max")
    headers, header_secrets = extra_headers(args, cfg, base_dir)
    return BridgeOptions(
        target=target,
        urls=urls,
        group_id=group,
        resend_interval_s=float(resend),
        generator_url=getattr(args, "generator_url", None) or _env("STREAM_MONITOR_BRIDGE_GENERATOR_URL"),
        extra_labels=labels,
        routing_key=routing_key,
        retry_initial_s=float(retry_initial),
        retry_max_s=float(retry_max),
        request_timeout_s=float(getattr(args, "timeout", None) or 10.0),
        metrics_port=metrics_port,
        headers=headers,
        secrets=header_secrets,
    )

