"""FakeCluster: a WorkloadPve served over TLS on 127.0.0.1 from a background thread."""

from __future__ import annotations

import asyncio
import logging
import secrets
import tempfile
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

from fakepve import settle
from fakepve.certs import make_cert

from .pve import LOOPBACK_HOST, WorkloadPve

T = TypeVar("T")

logger = logging.getLogger(__name__)

# Seconds to wait for the server to start or stop, and the default for call().
TIMEOUT = 30.0


class FakeCluster:
    """A WorkloadPve listening on 127.0.0.1 with a port the system picks, served by its own event loop.

    The certificate is self-signed and written to a temporary directory. Clients verify the connection
    with ``ca_file`` as their only CA. Use the cluster as a context manager, or call ``stop()``.

    fakepve scales every simulated delay by ``pve.time_scale``: at the default 0, tasks end at once and
    ``slow_network`` adds no latency, so tests of slow links set ``time_scale`` to 1.
    """

    def __init__(
        self, *, user: str = "root@pam", password: str | None = None, time_scale: float = 0.0
    ) -> None:
        self._tempdir = tempfile.TemporaryDirectory(prefix="fakecluster-")
        certfile, keyfile, _der = make_cert(self._tempdir.name, name="fakecluster", hosts=(LOOPBACK_HOST,))
        self.ca_file: str = certfile
        self.password = password if password is not None else secrets.token_urlsafe(16)

        self.pve = WorkloadPve(user=user, password=self.password, host=LOOPBACK_HOST, port=0)
        # 0 finishes every task before its request returns.
        self.pve.time_scale = time_scale

        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="fakecluster", daemon=True)
        self._thread.start()
        self._stopped = False
        try:
            self.call(self.pve.start(certfile, keyfile), timeout=TIMEOUT)
        except BaseException:
            self._halt_loop()
            self._tempdir.cleanup()
            raise
        logger.info("fake cluster listening on %s", self.url)

    @property
    def url(self) -> str:
        """Base address, ``https://127.0.0.1:<port>``."""
        return str(self.pve.url)

    @property
    def host(self) -> str:
        """Address and port, ``127.0.0.1:<port>``."""
        return f"{LOOPBACK_HOST}:{self.pve.port}"

    def add_token(self, userid: str, token_name: str, secret: str) -> str:
        """Register an API token and return it in PVE's full form, ``user@realm!name=secret``."""
        if "@" not in userid or "!" in userid:
            raise ValueError(f"invalid userid {userid!r}: expected user@realm")
        if not token_name or any(char in token_name for char in "!=@") or not secret:
            raise ValueError(
                f"invalid token {token_name!r} for {userid}: expected a name without '!', '=' or '@'"
                " and a non-empty secret"
            )
        token_id = f"{userid}!{token_name}"
        self.pve.apitokens[token_id] = secret
        return f"{token_id}={secret}"

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = TIMEOUT) -> T:
        """Run a coroutine on the cluster's event loop and return its result, waiting ``timeout`` seconds."""
        if self._stopped:
            coro.close()
            raise RuntimeError("the fake cluster is stopped; start a new FakeCluster")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def stop(self) -> None:
        """Stop listening, end the event loop and delete the certificate. A second call does nothing."""
        if self._stopped:
            return
        try:
            self.call(self._shutdown(), timeout=TIMEOUT)
        finally:
            self._stopped = True
            self._halt_loop()
            self._tempdir.cleanup()
        logger.info("fake cluster on %s stopped", self.host)

    def __enter__(self) -> FakeCluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    async def _shutdown(self) -> None:
        await settle()
        await self.pve.stop()
        # Tasks that fakepve left running with a time_scale above 0 would otherwise die with the loop.
        pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def _halt_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(TIMEOUT)
        if self._thread.is_alive():
            logger.error("fake cluster event loop did not stop within %.0f s; leaving it open", TIMEOUT)
            return
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()
