"""The one seam through which pvekit reads clocks and sleeps, so tests can control time."""

from __future__ import annotations

import asyncio
import time


class Clock:
    """Monotonic time, wall-clock time and sleeping.

    Pass a subclass as ``clock=`` to a client to control time in tests.
    """

    def monotonic(self) -> float:
        """Return seconds from an arbitrary start that never go backwards."""
        return time.monotonic()

    def wall(self) -> float:
        """Return the current Unix time in seconds."""
        return time.time()

    def sleep(self, seconds: float) -> None:
        """Block for ``seconds``."""
        time.sleep(seconds)

    async def async_sleep(self, seconds: float) -> None:
        """Suspend the current coroutine for ``seconds``."""
        await asyncio.sleep(seconds)
