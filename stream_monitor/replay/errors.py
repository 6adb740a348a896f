"""The two ways a replay or export fails: a runtime failure (exit 1) or a bad flag value (exit 2)."""

from __future__ import annotations


class ReplayError(RuntimeError):
    """Replay cannot complete (broker, file or state problem): exit code 1."""


class ReplayUsageError(ValueError):
    """A flag value is wrong (the message names the flag): exit code 2."""

