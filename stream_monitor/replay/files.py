"""Replay's files: atomic writes of output files, and signed state files (``--state-out/--state-from``)."""

from __future__ import annotations

import base64
import gzip
import os
import uuid
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, cast

import orjson

from stream_monitor.core.monitor import PartitionMonitor
from stream_monitor.core.signing import SigningKeys, StateAuthError, sign_state, verify_state
from stream_monitor.replay.errors import ReplayError

STATE_FILE_KIND = "stream-monitor-replay-state"
STATE_FILE_FORMAT = 1

STATE_FILE_CONTEXT = b"replay-state-file"  # signatures of state files never verify as changelog records


def atomic_write(path: Path, parts: Iterable[bytes], compress: bool = False) -> int:
    """Write to a temporary file next to ``path`` and rename it into place. Returns lines written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    n = 0
    try:
        with open(tmp, "wb") as raw:
            out: IO[bytes] = (
                cast(IO[bytes], gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6)) if compress else raw
            )
            try:
                for part in parts:
                    out.write(part)
                    n += 1
            finally:
                if compress:
                    out.close()
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return n


def lines(payloads: Iterable[bytes]) -> Iterator[bytes]:
    """Each payload followed by a newline."""
    for payload in payloads:
        yield payload + b"\n"


def write_state_file(path: Path, monitors: dict[int, PartitionMonitor], keys: SigningKeys | bytes, meta: dict[str, Any] | None = None) -> int:
    """Write every partition's state, signed (HMAC-SHA256). Returns the number of bytes."""
    partitions = {
        str(p): {k: base64.b64encode(v).decode("ascii") for k, v in sorted(m.state_items(only_dirty=False).items())}
        for p, m in sorted(monitors.items())
    }
    payload = orjson.dumps(
        {"kind": STATE_FILE_KIND, "format": STATE_FILE_FORMAT, "meta": meta or {}, "partitions": partitions},
        option=orjson.OPT_SORT_KEYS,
    )
    blob = sign_state(payload, keys, STATE_FILE_CONTEXT)
    atomic_write(path, [blob])
    return len(blob)


def read_state_file(path: Path, keys: SigningKeys | bytes) -> tuple[dict[int, dict[str, bytes]], dict[str, Any]]:
    """Verify and decode a state file: (items per partition, meta). Nothing is unpickled here.

    Raises :class:`ReplayError` when the signature does not verify (wrong secret, or the file was
    changed) or the file is not a replay state file.
    """
    try:
        blob = Path(path).read_bytes()
    except OSError as exc:
        raise ReplayError(f"--state-from {path}: {exc.strerror or exc}") from None
    try:
        payload = verify_state(blob, keys, STATE_FILE_CONTEXT)
    except StateAuthError as exc:
        raise ReplayError(
            f"--state-from {path}: {exc}; refusing to load it. The file must be written by replay --state-out "
            "with the same state secret (state.hmac_secret / STREAM_MONITOR_STATE_SECRET)."
        ) from None
    try:
        doc = orjson.loads(payload)
        if doc.get("kind") != STATE_FILE_KIND or doc.get("format") != STATE_FILE_FORMAT:
            raise ValueError(f"kind {doc.get('kind')!r} format {doc.get('format')!r}")
        items = {int(p): {k: base64.b64decode(v) for k, v in part.items()} for p, part in doc["partitions"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ReplayError(f"--state-from {path}: not a replay state file ({exc})") from None
    return items, doc.get("meta") or {}

