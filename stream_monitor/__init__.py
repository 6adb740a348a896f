"""stream-monitor: a Kafka-native sidecar that watches deployed ML models for drift."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("stream-monitor")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+src"
