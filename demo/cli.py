"""The command-line part of the demo: pvekit commands run as a user would type them."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from fakecluster import FakeCluster


class DemoFailedError(RuntimeError):
    """A demo command exited with a status other than 0."""


def show_cli(cluster: FakeCluster, token: str, stopped_vmid: int) -> None:
    """Run the main pvekit commands against the cluster, printing each command line and its output."""
    with tempfile.TemporaryDirectory(prefix="pvekit-demo-") as home:
        token_file = Path(home, "pve.token")
        token_file.write_text(token + "\n", encoding="utf-8")
        token_file.chmod(0o600)
        environment = dict(
            os.environ,
            PVE_HOST=cluster.host,
            PVE_TOKEN_FILE=str(token_file),
            PVE_CA_FILE=cluster.ca_file,
            XDG_CONFIG_HOME=home,
            COLUMNS="150",
        )
        print("\n== The pvekit command, with PVE_HOST, PVE_TOKEN_FILE and PVE_CA_FILE set")
        for arguments in (
            ["vms"],
            ["status", "100"],
            ["start", str(stopped_vmid), "--wait"],
            ["metrics", "100", "--interval", "1"],
            ["rrd", "102", "--chart"],
            ["top", "--once", "--interval", "1"],
        ):
            _run(arguments, environment)


def _run(arguments: list[str], environment: dict[str, str]) -> None:
    print(f"\n$ pvekit {shlex.join(arguments)}", flush=True)
    completed = subprocess.run([sys.executable, "-m", "pvekit", *arguments], env=environment, check=False, timeout=120)
    if completed.returncode != 0:
        raise DemoFailedError(f"pvekit {shlex.join(arguments)} exited with status {completed.returncode}")
