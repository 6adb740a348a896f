"""What every command shares: exit codes, config loading from flags, topic lists, the exit-code wrapper.

Exit codes: 0 ok, 2 usage or config error (the message names the flag or field), 1 runtime failure.

>>> split_topics(["a,b", "c", ",d,"])
['a', 'b', 'c', 'd']
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Iterable

import structlog

from stream_monitor.bridges.options import BridgeUsageError
from stream_monitor.config import AppConfig, ConfigError, load_config
from stream_monitor.ops.logs import LogFormat, configure_logging
from stream_monitor.replay.errors import ReplayError, ReplayUsageError

EXIT_OK, EXIT_RUNTIME, EXIT_USAGE = 0, 1, 2
FILE_COMMANDS = frozenset({"replay", "export"})  # commands that write output files: their own failure wording


def split_topics(values: Iterable[str]) -> list[str]:
    """Topic flags (repeatable, each comma-separated) as one list, empty names dropped."""
    return [t for v in values for t in v.split(",") if t]


def config_path(args: argparse.Namespace) -> str | None:
    """The config file: ``--config``, else ``STREAM_MONITOR_CONFIG``, else none."""
    return getattr(args, "config", None) or os.environ.get("STREAM_MONITOR_CONFIG")


def config_dir(args: argparse.Namespace) -> Path | None:
    """The directory relative paths in the config (baselines, secret files) are resolved against."""
    path = config_path(args)
    return Path(path).parent if path else None


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    o: dict[str, Any] = {}
    if getattr(args, "bootstrap_servers", None):
        o["kafka.bootstrap_servers"] = args.bootstrap_servers
    if getattr(args, "input_topic", None):
        o["kafka.input_topics"] = split_topics(args.input_topic)
    if getattr(args, "alerts_topic", None):
        o["kafka.alerts_topic"] = args.alerts_topic
    if getattr(args, "group_id", None):
        o["kafka.group_id"] = args.group_id
    if getattr(args, "metrics_port", None) is not None:
        o["metrics.port"] = args.metrics_port
    if getattr(args, "label_topic", None):
        o["kafka.label_topic"] = args.label_topic
    if getattr(args, "at_least_once", False):
        o["kafka.exactly_once"] = False
    if getattr(args, "log_level", None):
        o["log.level"] = args.log_level
    if getattr(args, "log_format", None):
        o["log.format"] = args.log_format
    return o


def default_log_format() -> LogFormat:
    """Console lines for a person at a terminal (stderr is a TTY), JSON lines for log collectors."""
    return "console" if sys.stderr.isatty() else "json"


def configure_logs(cfg: AppConfig) -> None:
    """Logging as the config says; a format nobody set (file, env, flag) follows :func:`default_log_format`."""
    fmt: LogFormat = cfg.log.format if "format" in cfg.log.model_fields_set else default_log_format()
    configure_logging(cfg.log.level, fmt)


def load_app_config(args: argparse.Namespace, extra: dict[str, Any] | None = None) -> AppConfig:
    """The validated config: the file (``config_path``), then the environment, then the flags, then ``extra``."""
    return load_config(config_path(args), overrides={**_overrides(args), **(extra or {})})


def _error(text: str) -> None:
    sys.stderr.write(text + "\n")


def run_command(command: str, run: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run one command and turn every failure into its exit code and a one-line message; never a traceback."""
    writes_files = command in FILE_COMMANDS
    try:
        return run(args)
    except ConfigError as exc:
        _error(f"stream-monitor: config error: {exc}")
        return EXIT_USAGE
    except ReplayUsageError as exc:
        _error(f"stream-monitor {command}: error: {exc}")
        return EXIT_USAGE
    except BridgeUsageError as exc:
        _error(f"stream-monitor {command}: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        if writes_files:
            _error(f"\nstream-monitor {command}: interrupted; no output written")
            return EXIT_RUNTIME
        return EXIT_OK
    except (ReplayError, OSError) as exc:
        if not writes_files:
            return _runtime_failure(command, exc)
        _error(f"stream-monitor {command}: failed: {exc}")
        return EXIT_RUNTIME
    except Exception as exc:  # noqa: BLE001 - the one place that turns failures into exit code 1
        if writes_files and type(exc).__module__.startswith("kafka"):
            _error(f"stream-monitor {command}: failed: Kafka: {exc!r}")
            return EXIT_RUNTIME
        return _runtime_failure(command, exc)


def _runtime_failure(command: str, exc: BaseException) -> int:
    structlog.get_logger("stream_monitor.commands").error("command_failed", command=command, error=repr(exc), exc_info=True)
    _error(f"stream-monitor {command}: {exc}")
    return EXIT_RUNTIME
