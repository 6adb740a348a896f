"""Structured logging setup (structlog). Library code only ever calls ``structlog.get_logger``.

The Kafka client (kafka-python) logs through the standard library: its warnings are rendered by
the same renderer onto the same stream, so a JSON log stays all JSON lines.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal, TextIO

import structlog

LogFormat = Literal["json", "console"]
CLIENT_LOGGERS = ("kafka",)  # standard-library loggers of our dependencies, WARNING and above
# kafka-python 3.x's IO loop warns whenever one of its tasks ran over 0.1 s ("blocking the event
# loop"): with judging on the main thread of a busy machine that is every few seconds, says nothing
# an operator can act on, and buried the demo's alerts. Its errors still come through.
QUIET_CLIENT_LOGGERS = {"kafka.net.selector": logging.ERROR}


class _StreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler writing to ``stream``, or to whatever ``sys.stderr`` is when a record comes."""

    def __init__(self, stream: TextIO | None) -> None:
        super().__init__(stream or sys.stderr)
        self._fixed = stream

    def emit(self, record: logging.LogRecord) -> None:
        """Write one record (to the current ``sys.stderr`` unless a stream was given)."""
        self.stream = self._fixed or sys.stderr
        super().emit(record)


def configure_logging(level: str = "INFO", fmt: LogFormat = "json", stream: TextIO | None = None) -> None:
    """Route structlog (and the Kafka client's warnings) to ``stream`` (stderr by default) as JSON lines or console text."""
    processors: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        # the current sys.stderr at each call, as the stdlib handler below: a stream replaced and
        # closed since (a test's capture, a daemon's redirect) must not break every later log line
        logger_factory=lambda *_: structlog.PrintLogger(stream or sys.stderr),
        cache_logger_on_first_use=False,
    )
    handler = _StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *processors],
        )
    )
    handler.setLevel(max(logging.WARNING, logging.getLevelName(level.upper())))
    handler.set_name("stream-monitor")
    for name, quiet in QUIET_CLIENT_LOGGERS.items():
        logging.getLogger(name).setLevel(quiet)
    for name in CLIENT_LOGGERS:
        client = logging.getLogger(name)
        for old in [h for h in client.handlers if h.get_name() == "stream-monitor"]:
            client.removeHandler(old)
        client.addHandler(handler)
