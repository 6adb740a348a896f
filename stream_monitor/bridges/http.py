"""One JSON POST to a receiver, classified as accepted, retry or rejected; and the retry backoff.

Only a receiver that says *this request is malformed* (400, 422) rejects an alert: every other
answer (3xx, 401, 403, 404, 429, 5xx, ...), a network error or the deadline means the receiver or
our own setup is wrong, so the alert is retried and never counted as delivered. A POST never
follows a redirect, and ``timeout_s`` bounds the whole request, however slowly the receiver answers.
"""

from __future__ import annotations

import http.client
import random
import socket
import ssl
import threading
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Outcome = Literal["accepted", "retry", "rejected"]
REJECTING_STATUSES = frozenset({400, 422})  # "this request is malformed": a fault of this one alert
MAX_DETAIL = 500  # characters of a receiver's answer kept for the log


@dataclass(frozen=True)
class HttpResult:
    """The outcome of one POST: accepted, retry or rejected, with the status and a detail for the log."""

    outcome: Outcome
    status: int | None
    detail: str
    retry_after_s: float | None = None


def classify_status(status: int) -> Outcome:
    """2xx accepted; 400 and 422 reject this alert; anything else (3xx, other 4xx, 5xx) is retried.

    >>> [classify_status(s) for s in (200, 202, 301, 400, 401, 404, 408, 422, 429, 500, 503)]
    ['accepted', 'accepted', 'retry', 'rejected', 'retry', 'retry', 'retry', 'rejected', 'retry', 'retry', 'retry']
    """
    if 200 <= status < 300:
        return "accepted"
    if status in REJECTING_STATUSES:
        return "rejected"
    return "retry"


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # HTTP-date form: fall back to our own backoff


def redact_url(url: str) -> str:
    """``url`` without user information, for logs.

    >>> redact_url("https://user:pw@am.example:9093/x"), redact_url("http://am:9093")
    ('https://am.example:9093/x', 'http://am:9093')
    """
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every secret replaced, including a secret cut short at the end of ``text``.

    >>> redact('{"routing_key": "abcdef123456", "x": 1}', ("abcdef123456",))
    '{"routing_key": "[redacted]", "x": 1}'
    >>> redact('... {"routing_key": "abcdef12', ("abcdef123456",))
    '... {"routing_key": "[redacted]'
    """
    for secret in secrets:
        if not secret:
            continue
        text = text.replace(secret, "[redacted]")
        for n in range(len(secret) - 1, 3, -1):  # a prefix of 4+ characters left at the cut
            if text.endswith(secret[:n]):
                text = text[:-n] + "[redacted]"
                break
    return text


def _connection(url: str, timeout_s: float) -> tuple[http.client.HTTPConnection, str]:
    """A connection for ``url`` (through the environment's proxy, as urllib would) and the request target."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {redact_url(url)}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and urllib.request.proxy_bypass(parts.hostname):
        proxy = None
    cls: type[http.client.HTTPConnection] = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    kwargs = {"context": ssl.create_default_context()} if parts.scheme == "https" else {}
    if not proxy:
        return cls(parts.hostname, port, timeout=timeout_s, **kwargs), target  # type: ignore[arg-type]
    via = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    if parts.scheme == "https":
        conn = cls(via.hostname or "", via.port or 80, timeout=timeout_s, **kwargs)  # type: ignore[arg-type]
        conn.set_tunnel(parts.hostname, port)
        return conn, target
    return http.client.HTTPConnection(via.hostname or "", via.port or 80, timeout=timeout_s), urllib.parse.urlunsplit(parts._replace(fragment=""))


class _Deadline:
    """Shuts the request's socket down when the deadline passes, waking any blocked read or write."""

    def __init__(self, timeout_s: float) -> None:
        self.expired = threading.Event()
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._timer = threading.Timer(timeout_s, self._abort)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket | None) -> None:
        """The connected socket (kept here: a response that closes the connection takes it from the connection)."""
        with self._lock:
            self._sock = sock
            if self.expired.is_set():
                raise TimeoutError

    def _abort(self) -> None:
        with self._lock:
            self.expired.set()
            if self._sock is not None:
                try:
                    self._sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cancel(self) -> None:
        """The request is over."""
        self._timer.cancel()


def post_json(url: str, body: bytes, timeout_s: float, user_agent: str, headers: Mapping[str, str] | None = None) -> HttpResult:
    """POST a JSON body within ``timeout_s`` in all; never raises for HTTP or network errors (they become a result).

    ``headers`` are sent too (validated beforehand by ``bridges.headers``; they may replace the User-Agent).
    """
    try:
        conn, target = _connection(url, timeout_s)
    except ValueError as exc:
        return HttpResult("retry", None, f"ValueError: {exc}")
    deadline = _Deadline(timeout_s)
    try:
        conn.connect()
        deadline.watch(conn.sock)
        sent = {"Content-Type": "application/json", "User-Agent": user_agent}
        for name, value in (headers or {}).items():
            for old in [k for k in sent if k.lower() == name.lower()]:
                del sent[old]
            sent[name] = value
        conn.request("POST", target, body=body, headers=sent)
        response = conn.getresponse()
        status = response.status
        text = response.read(2048 if not 200 <= status < 300 else 65536)
        if deadline.expired.is_set():
            raise TimeoutError
        detail = "ok" if 200 <= status < 300 else text.decode("utf-8", "replace").strip()[:MAX_DETAIL] or (response.reason or str(status))
        return HttpResult(classify_status(status), status, detail, _retry_after(response.getheader("Retry-After")))
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if deadline.expired.is_set() or isinstance(exc, TimeoutError):
            return HttpResult("retry", None, f"no complete answer within the {timeout_s:g} s deadline")
        return HttpResult("retry", None, f"{exc.__class__.__name__}: {exc}")
    finally:
        deadline.cancel()
        conn.close()


class Backoff:
    """Exponential backoff with equal jitter: delay d doubles from ``initial`` to ``maximum``."""

    def __init__(self, initial_s: float, maximum_s: float, rng: random.Random | None = None) -> None:
        self.initial_s = initial_s
        self.maximum_s = maximum_s
        self.rng = rng or random.Random()
        self.attempt = 0

    def next_delay(self, retry_after_s: float | None = None) -> float:
        """The next delay in seconds (at least ``retry_after_s`` up to the maximum)."""
        base = min(self.maximum_s, self.initial_s * (2**self.attempt))
        self.attempt += 1
        delay = base / 2 + self.rng.uniform(0, base / 2)
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, self.maximum_s))
        return delay

    def reset(self) -> None:
        """Start again from the initial delay."""
        self.attempt = 0

