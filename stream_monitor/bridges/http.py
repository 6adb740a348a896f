"""One JSON POST to a receiver, classified as accepted, retry or rejected; and the retry backoff."""

from __future__ import annotations

import random
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Literal

Outcome = Literal["accepted", "retry", "rejected"]


@dataclass(frozen=True)
class HttpResult:
    """The outcome of one POST: accepted, retry or rejected, with the status and a detail for the log."""

    outcome: Outcome
    status: int | None
    detail: str
    retry_after_s: float | None = None


def classify_status(status: int) -> Outcome:
    """2xx accepted; 408, 429 and 5xx retried; any other status is a permanent rejection.

    >>> [classify_status(s) for s in (200, 202, 400, 404, 408, 429, 500, 503)]
    ['accepted', 'accepted', 'rejected', 'rejected', 'retry', 'retry', 'retry', 'retry']
    """
    if 200 <= status < 300:
        return "accepted"
    if status in (408, 429) or status >= 500:
        return "retry"
    return "rejected"


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # HTTP-date form: fall back to our own backoff


def post_json(url: str, body: bytes, timeout_s: float, user_agent: str) -> HttpResult:
    """POST a JSON body; never raises for HTTP or network errors (they become a result)."""
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", "User-Agent": user_agent}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - URL is operator config
            response.read(65536)
            status = int(response.status)
            return HttpResult(classify_status(status), status, "ok")
    except urllib.error.HTTPError as exc:
        try:
            text = exc.read(2048).decode("utf-8", "replace").strip()
        except Exception:  # noqa: BLE001 - the body is only for the log
            text = ""
        return HttpResult(classify_status(exc.code), exc.code, text[:500] or str(exc.reason), _retry_after(exc.headers.get("Retry-After")))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return HttpResult("retry", None, f"{exc.__class__.__name__}: {reason}")


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

