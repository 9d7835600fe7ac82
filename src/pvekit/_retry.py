"""The retry policy: which failed requests are sent again, how often, and after what pause."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from ._exceptions import ApiError, InvalidInputError, PveConnectionError, PveError, PveTimeoutError, TransportError

# Statuses after which a GET is sent again: gateway trouble, and pveproxy
# failing to reach the node that owns the resource (595 connection setup, 596
# TLS or request errors between the nodes).
RETRY_STATUSES = frozenset({502, 503, 595, 596})


def is_outage(error: PveError) -> bool:
    """Tell whether a failed read looks like a passing outage: the connection, a timeout, or 502, 503, 595, 596.

    Waits go on polling after such a failure, once PVE has responded to the client before.
    """
    if isinstance(error, (PveConnectionError, PveTimeoutError)):
        return True
    return isinstance(error, ApiError) and error.status_code in RETRY_STATUSES


def describe_failure(error: PveError) -> str:
    """Describe a failed status read in a few words, for a wait's timeout message."""
    if isinstance(error, ApiError):
        return f"the last read failed with HTTP {error.status_code}: {error.message}"
    if isinstance(error, PveTimeoutError):
        return "the last read timed out"
    return "the connection failed at the last read"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When and how often a failed request is sent again; ``RetryPolicy.off()`` never retries.

    ``should_retry`` is the whole policy. In short: a GET is sent again after a
    connection failure (refused, reset, or closed by the server while idle) and
    after HTTP 502, 503, 595 and 596. A write (POST, PUT, DELETE) is sent again
    only when its connection failed before any byte of the request left, so
    PVE cannot have seen it. Timeouts are not retried: the server may still be
    working, and a second wait would double the caller's timeout. Pauses grow
    exponentially with jitter, and no retry starts after ``budget_seconds``
    since the first attempt, or after the caller's own deadline.

    Attributes:
        max_retries: how often one request is sent again, at most.
        backoff_seconds: the pause before the first retry; it doubles for each later one.
        max_backoff_seconds: the maximum pause.
        jitter: the share of each pause drawn at random (0 to 1), so clients
            that failed together do not retry together.
        budget_seconds: seconds after the first attempt past which no retry starts.
        statuses: HTTP statuses after which a GET is sent again.
    """

    max_retries: int = 3
    backoff_seconds: float = 0.25
    max_backoff_seconds: float = 4.0
    jitter: float = 0.5
    budget_seconds: float = 30.0
    statuses: frozenset[int] = RETRY_STATUSES
    # The random source of the jitter, returning a float in [0, 1); tests pass their own.
    random_source: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise InvalidInputError(f"max_retries {self.max_retries!r} must be a whole number, 0 or more")
        for name in ("backoff_seconds", "max_backoff_seconds", "budget_seconds"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value >= 0:
                raise InvalidInputError(f"{name} {value!r} must be a number of seconds, 0 or more")
        if not isinstance(self.jitter, (int, float)) or not 0 <= self.jitter <= 1:
            raise InvalidInputError(f"jitter {self.jitter!r} must be a share from 0 to 1")

    @classmethod
    def off(cls) -> RetryPolicy:
        """Return a policy that never sends a request again."""
        return cls(max_retries=0)

    def should_retry(
        self, method: str, attempt: int, outcome: int | TransportError, elapsed_seconds: float = 0.0
    ) -> bool:
        """Decide whether a request that failed is sent again.

        Args:
            method: the HTTP method.
            attempt: how many retries were already made (0 after the first failure).
            outcome: the HTTP status of an error response, or the TransportError raised.
            elapsed_seconds: seconds since the first attempt began.
        """
        if attempt >= self.max_retries or elapsed_seconds >= self.budget_seconds:
            return False
        if isinstance(outcome, TransportError):
            if not outcome.request_sent:
                # Nothing reached the server, so sending is safe whatever the method.
                return isinstance(outcome, PveConnectionError)
            return method == "GET" and isinstance(outcome, PveConnectionError)
        return method == "GET" and outcome in self.statuses

    def pause_seconds(self, attempt: int) -> float:
        """Return the pause before retry number ``attempt + 1``: exponential, capped, with jitter."""
        full = min(self.backoff_seconds * 2.0**attempt, self.max_backoff_seconds)
        return full * (1.0 - self.jitter * self.random_source())


DEFAULT_RETRY = RetryPolicy()
