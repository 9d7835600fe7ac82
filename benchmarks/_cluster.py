"""The benchmark process's handle on the fake cluster running in its own process."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

# Seconds to wait for the server process to exit after ``stop``.
STOP_TIMEOUT_SECONDS = 30.0

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class ClusterInfo:
    """Connection details of the fake cluster: address, CA file, nodes and API token (left out of the repr)."""

    host: str
    ca_file: str
    nodes: tuple[str, ...]
    token: str = field(repr=False)

    @property
    def port(self) -> int:
        """The TCP port of ``host``, ``127.0.0.1:<port>``."""
        return int(self.host.rpartition(":")[2])

    @property
    def token_id(self) -> str:
        """The token's ``user@realm!name`` part."""
        return self.token.partition("=")[0]

    @property
    def token_secret(self) -> str:
        """The token's secret."""
        return self.token.partition("=")[2]


@dataclass(frozen=True)
class ServerStats:
    """Requests the fake recorded since the last reset, and the CPU seconds its process has used so far."""

    requests: int
    cpu_seconds: float


class ClusterProcess:
    """A fake cluster of running VMs in a child process, controlled over its stdin and stdout.

    Use it as a context manager; leaving it stops the child.
    """

    def __init__(self, vm_count: int) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks._server", "--vms", str(vm_count)],
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            ready = self._read_line()
        except BaseException:
            self.close()
            raise
        self.info = ClusterInfo(
            host=ready["host"], ca_file=ready["ca_file"], nodes=tuple(ready["nodes"]), token=ready["token"]
        )

    def set_latency(self, seconds: float) -> None:
        """Add ``seconds`` of latency to every response from now on."""
        self._command(f"latency {seconds!r}")

    def reset_requests(self) -> None:
        """Forget the requests the fake has recorded so far."""
        self._command("reset")

    def stats(self) -> ServerStats:
        """Return the requests recorded since the last reset and the server process's CPU time."""
        reply = self._command("stats")
        return ServerStats(requests=int(reply["requests"]), cpu_seconds=float(reply["cpu_seconds"]))

    def request_counts(self) -> dict[str, int]:
        """Return the requests recorded since the last reset, by ``METHOD path`` (query strings left out)."""
        reply = self._command("paths")
        return {str(key): int(count) for key, count in reply["paths"].items()}

    def close(self) -> None:
        """Ask the child to stop, and wait for it to exit."""
        stdin = self._process.stdin
        if stdin is not None and not stdin.closed:
            try:
                stdin.write("stop\n")
                stdin.close()
            except BrokenPipeError:
                pass
        try:
            self._process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            # Only the child this object started is killed.
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()

    def __enter__(self) -> ClusterProcess:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _command(self, line: str) -> dict[str, Any]:
        stdin = self._pipe(self._process.stdin)
        stdin.write(line + "\n")
        stdin.flush()
        reply = self._read_line()
        if not reply.get("ok"):
            raise RuntimeError(f"fake cluster rejected command {line!r}: {reply.get('error')}")
        return reply

    def _read_line(self) -> dict[str, Any]:
        line = self._pipe(self._process.stdout).readline()
        if not line:
            raise RuntimeError(
                f"fake cluster process exited with status {self._process.poll()} before replying; "
                "see its error output above"
            )
        reply: dict[str, Any] = json.loads(line)
        return reply

    def _pipe(self, stream: IO[str] | None) -> IO[str]:
        if stream is None:
            raise RuntimeError("fake cluster process has no pipe; it was started without stdin or stdout")
        return stream
