"""Helpers for the command-line tests: run ``pvekit`` with click's CliRunner against a fake cluster.

Every run gets an environment without PVE_* variables and a config directory of its own, so the
settings of the machine running the tests never leak in.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from fakecluster import FakeCluster
from pvekit.cli import cli

# Variables that pvekit reads; the tests set them explicitly or not at all.
SETTINGS_VARIABLES = (
    "PVE_HOST",
    "PVE_TOKEN",
    "PVE_TOKEN_FILE",
    "PVE_USER",
    "PVE_PASSWORD",
    "PVE_PASSWORD_FILE",
    "PVE_CA_FILE",
    "PVE_FINGERPRINT",
    "PVE_VERIFY",
    "PVE_NODE",
    "PVE_READ_TIMEOUT",
    "PVEKIT_PROFILE",
    "NO_COLOR",
    # Terminal sizes, so tables have the same width everywhere.
    "COLUMNS",
    "LINES",
)


def clean_env(config_home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str | None]:
    """Return CliRunner environment overrides: no pvekit settings, the config directory under ``config_home``."""
    env: dict[str, str | None] = dict.fromkeys(SETTINGS_VARIABLES)
    env["XDG_CONFIG_HOME"] = str(config_home)
    env.update(extra or {})
    return env


def run(
    args: Sequence[str],
    *,
    config_home: Path,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
) -> Result:
    """Run pvekit with ``args``; exceptions other than SystemExit propagate and fail the test."""
    runner = CliRunner(catch_exceptions=False)
    return runner.invoke(cli, list(args), env=clean_env(config_home, env), input=stdin, prog_name="pvekit")


def connection_args(cluster: FakeCluster) -> list[str]:
    """Return the flags that reach the fake cluster, verifying its certificate with its own CA file."""
    return ["--host", cluster.host, "--ca-file", cluster.ca_file]


def run_on(
    cluster: FakeCluster, token: str, args: Sequence[str], *, config_home: Path, stdin: str | None = None
) -> Result:
    """Run a pvekit command against ``cluster``, with the token in PVE_TOKEN."""
    return run([*connection_args(cluster), *args], config_home=config_home, env={"PVE_TOKEN": token}, stdin=stdin)


def parse_json(result: Result) -> Any:
    """Parse the command's standard output as JSON, showing the output when it is not JSON."""
    assert result.exit_code == 0, result.output
    try:
        return json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"not JSON: {result.stdout!r}") from exc


def free_loopback_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on: the system picks it, and the socket is closed."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def write_private(path: Path, text: str) -> Path:
    """Write a file that only its owner may read, as a token file should be."""
    path.write_text(text, encoding="utf-8")
    os.chmod(path, 0o600)
    return path
