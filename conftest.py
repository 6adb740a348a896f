"""Root conftest: quiet structured logs for doctests and tests alike (stderr, warnings only)."""

from stream_monitor.ops.logs import configure_logging

configure_logging(level="WARNING", fmt="console")
