"""Drive a pvekit operation with replayed responses, for PVE behaviour fakepve cannot produce."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pvekit._core import Gather, Operation, RawResponse, Send, Sleep
from pvekit._exceptions import TransportError


def response(
    status: int,
    body: Any = None,
    reason: str = "OK",
    raw: bytes | None = None,
    *,
    received_wall: float = 0.0,
    date: str | None = None,
) -> RawResponse:
    """Build a response as the runner would pass it; ``body`` is JSON-encoded unless ``raw`` is given.

    ``date`` is the Date header, and ``received_wall`` this machine's clock when the response arrived.
    """
    if raw is not None:
        content = raw
    elif body is None:
        content = b""
    else:
        content = json.dumps(body).encode()
    return RawResponse(
        status,
        reason,
        content,
        received_monotonic=0.0,
        received_wall=received_wall,
        elapsed_seconds=0.0,
        date=date,
    )


def drive(operation: Operation[Any], replies: Sequence[RawResponse | TransportError]) -> tuple[Any, list[Any]]:
    """Run the operation, returning the next reply for each Send; sleeps are recorded, not slept.

    Returns the result and the effects the operation yielded. Raises what the operation raises.
    """
    effects: list[Any] = []
    pending = list(replies)
    value: Any = None
    try:
        while True:
            effect = operation.send(value)
            effects.append(effect)
            if isinstance(effect, Send):
                if not pending:
                    raise AssertionError(f"unexpected request {effect.method} {effect.path}")
                value = pending.pop(0)
            elif isinstance(effect, Sleep):
                value = None
            elif isinstance(effect, Gather):
                raise AssertionError("scripted runs do not support Gather")
    except StopIteration as stop:
        return stop.value, effects


def sends(effects: Sequence[Any]) -> list[tuple[str, str]]:
    """Return (method, path) of every request among the effects."""
    return [(effect.method, effect.path) for effect in effects if isinstance(effect, Send)]
