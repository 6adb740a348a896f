"""Progress of a long replay or export: a one-line bar on a terminal, periodic log lines otherwise."""

from __future__ import annotations

import os
import sys
import time
from typing import Literal, TextIO

import structlog

from stream_monitor.core import events as ev


class Progress:
    """Progress of a long replay: a one-line bar on a terminal, periodic log lines otherwise.

    ``mode`` is ``bar`` (redrawn in place on ``stream``), ``log`` (a structlog event every
    ``interval_s``) or ``none``.

    >>> import io
    >>> out = io.StringIO()
    >>> p = Progress("bar", out, "replay", min_redraw_s=0)
    >>> p.update(1000, 1767225600000, 0.5)
    >>> "1,000 records" in out.getvalue() and "50%" in out.getvalue()
    True
    """

    def __init__(
        self,
        mode: Literal["bar", "log", "none"],
        stream: TextIO,
        label: str,
        interval_s: float = 10.0,
        min_redraw_s: float = 0.2,
    ) -> None:
        self.mode = mode
        self.stream = stream
        self.label = label
        self.interval_s = interval_s if mode == "log" else min_redraw_s
        self.started = time.monotonic()
        self._last = 0.0 if mode == "bar" else self.started
        self._drawn = False
        # progress lines are wanted even when the log level hides INFO: same processors, no level filter
        self._log = structlog.wrap_logger(
            structlog.PrintLogger(stream), processors=structlog.get_config()["processors"], wrapper_class=structlog.BoundLogger
        )

    def update(self, records: int, event_time_ms: int | None, fraction: float | None, force: bool = False) -> None:
        """Show progress (at most every ``interval_s`` unless ``force``)."""
        if self.mode == "none":
            return
        now = time.monotonic()
        if not force and now - self._last < self.interval_s:
            return
        self._last = now
        elapsed = max(1e-9, now - self.started)
        rate = records / elapsed
        eta = elapsed * (1 - fraction) / fraction if fraction and fraction > 0 else None
        when = ev.format_event_time(event_time_ms)[:19] + "Z" if event_time_ms is not None else "-"
        if self.mode == "log":
            self._log.info(
                f"{self.label}_progress",
                records=records,
                event_time=when,
                records_per_s=round(rate),
                percent=None if fraction is None else round(100 * fraction, 1),
                eta_s=None if eta is None else round(eta),
            )
            return
        width = 20
        bar = ""
        if fraction is not None:
            filled = int(round(width * fraction))
            bar = f" [{'#' * filled}{'.' * (width - filled)}] {100 * fraction:3.0f}%"
        tail = f"  ETA {_duration(eta)}" if eta is not None else ""
        line = f"{self.label}: {records:,} records  at {when}  {rate:,.0f} rec/s{bar}{tail}"
        cols = _columns(self.stream)
        self.stream.write("\r" + (line if cols is None else line[: max(10, cols - 1)]) + "\x1b[K")
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        """Clear the bar line."""
        if self.mode == "bar" and self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def _columns(stream: TextIO) -> int | None:
    """The width of the terminal ``stream`` writes to (None when it is not one: nothing to cut the line to)."""
    try:
        return os.get_terminal_size(stream.fileno()).columns if stream.isatty() else None
    except (AttributeError, OSError, ValueError):  # io.StringIO has no file descriptor
        return None


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def progress_mode(requested: str | None) -> Literal["bar", "log", "none"]:
    """``--progress``: ``auto`` is a bar on a terminal and log lines otherwise."""
    if requested in ("bar", "log", "none"):
        return requested  # type: ignore[return-value]
    return "bar" if sys.stderr.isatty() else "log"

