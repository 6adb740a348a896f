"""Extra HTTP headers on the bridges' requests (an auth header for a webhook): parsed, resolved, validated.

A header is ``Name: value``. A value may take a secret from a file or an environment variable, so
the secret itself never sits in a command line (a process list) or a config file:
``Authorization: Bearer ${file:/var/run/secrets/runner/token}``, ``X-Api-Key: ${env:RUNNER_KEY}``.
Only ``${file:PATH}`` and ``${env:NAME}`` are replaced; a file's content loses its surrounding
whitespace (the trailing newline). A relative path in the config file is relative to that file.

Headers come from the config's ``bridge.headers`` and from ``--header`` (repeatable); a flag
replaces a configured header of the same name (names are case-insensitive). Everything is checked
at start-up: a name that is not an HTTP token, a value with a line break (CR/LF: a header
injection) or another control character, an empty value, an unset variable or an unreadable file
raises :class:`HeaderError` naming the header and where it came from, never its value. The values
are secrets for the logs: :func:`resolve_headers` returns them (and what was read from files and
variables) for the bridge to redact from every log line.

>>> resolve_headers({"X-Team": "risk"}, ["Authorization: Bearer ${env:TOKEN}"], env={"TOKEN": "s3cr3t-t0ken"})
({'X-Team': 'risk', 'Authorization': 'Bearer s3cr3t-t0ken'}, ('Bearer s3cr3t-t0ken', 's3cr3t-t0ken', 'risk'))
>>> resolve_headers({}, ["X-Hook: a\\r\\nX-Admin: 1"])
Traceback (most recent call last):
...
stream_monitor.bridges.headers.HeaderError: --header 'X-Hook': the value contains a line break (CR or LF)
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")  # an HTTP field name
REFERENCE = re.compile(r"\$\{(file|env):([^}]*)\}")
# Set by the bridge itself: another value would break the request's framing or its JSON body.
RESERVED = frozenset({"content-type", "content-length", "host", "transfer-encoding", "connection"})
MIN_REDACTED = 4  # shorter values are not secrets, and redacting them would garble every log line


class HeaderError(ValueError):
    """A bad header (the message names the header and its source, never its value)."""


def parse_header(text: str, field: str = "--header") -> tuple[str, str]:
    """``"Name: value"`` -> (name, raw value); the value is resolved later.

    >>> parse_header("Authorization: Bearer ${file:token}")
    ('Authorization', 'Bearer ${file:token}')
    """
    name, sep, value = text.partition(":")
    name = name.strip()
    if not sep or not name:
        raise HeaderError(f"{field} must be 'Name: value' (e.g. 'Authorization: Bearer ${{file:/path/to/token}}')")
    return name, value.strip()


def _read(path_text: str, field: str, base_dir: Path | None) -> str:
    path = Path(path_text.strip())
    if not path_text.strip():
        raise HeaderError(f"{field}: ${{file:}} needs a path")
    if base_dir is not None and not path.is_absolute():
        path = base_dir / path
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:  # the message names the file, never its content
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else exc
        raise HeaderError(f"{field}: cannot read {path}: {reason}") from None


def resolve_value(raw: str, field: str, env: Mapping[str, str], base_dir: Path | None = None) -> tuple[str, list[str]]:
    """``raw`` with its ``${file:..}`` / ``${env:..}`` references replaced, and what they brought in."""
    found: list[str] = []

    def substitute(match: re.Match[str]) -> str:
        kind, ref = match.group(1), match.group(2)
        if kind == "env":
            if not ref.strip():
                raise HeaderError(f"{field}: ${{env:}} needs a variable name")
            value = env.get(ref.strip())
            if value is None:
                raise HeaderError(f"{field}: environment variable {ref.strip()} is not set")
            value = value.strip()
        else:
            value = _read(ref, field, base_dir)
        found.append(value)
        return value

    return REFERENCE.sub(substitute, raw).strip(), found


def check_name(name: str, field: str) -> None:
    """Raise :class:`HeaderError` for a name that is not an HTTP token or that the bridge sets itself."""
    if not TOKEN.match(name):
        raise HeaderError(f"{field}: not a valid header name (letters, digits and !#$%&'*+-.^_`|~ only)")
    if name.lower() in RESERVED:
        raise HeaderError(f"{field}: set by the bridge itself, cannot be replaced")


def check_value(value: str, field: str) -> None:
    """Raise :class:`HeaderError` for a value that is empty or would break (or inject into) the request."""
    if not value:
        raise HeaderError(f"{field}: the value is empty")
    if "\r" in value or "\n" in value:
        raise HeaderError(f"{field}: the value contains a line break (CR or LF)")
    if any((ord(c) < 32 and c != "\t") or ord(c) == 127 for c in value):
        raise HeaderError(f"{field}: the value contains a control character")
    if any(ord(c) > 255 for c in value):
        raise HeaderError(f"{field}: the value has characters outside Latin-1 (HTTP sends header values as bytes)")


def resolve_headers(
    configured: Mapping[str, str], flags: Sequence[str], env: Mapping[str, str] | None = None, base_dir: Path | None = None
) -> tuple[dict[str, str], tuple[str, ...]]:
    """The headers to send (config first, flags replace by name) and the strings to redact from logs.

    ``base_dir`` resolves relative ``${file:..}`` paths of the configured headers; a flag's are
    relative to the working directory.
    """
    environ = os.environ if env is None else env
    entries = [(name, raw, f"bridge.headers.{name}", base_dir) for name, raw in configured.items()]
    for text in flags:
        name, raw = parse_header(text)
        entries.append((name, raw, f"--header {name!r}", None))
    headers: dict[str, str] = {}
    secrets: set[str] = set()
    for name, raw, field, where in entries:
        check_name(name, field)
        value, brought = resolve_value(raw, field, environ, where)
        check_value(value, field)
        for old in [k for k in headers if k.lower() == name.lower()]:
            del headers[old]
        headers[name] = value
        secrets.update(s for s in (value, *brought) if len(s) >= MIN_REDACTED)
    return headers, tuple(sorted(secrets, key=lambda s: (-len(s), s)))
