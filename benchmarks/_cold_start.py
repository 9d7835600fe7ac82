"""Benchmark 4: cold start of the ``pvekit`` CLI, whole-process time against a bare ``import httpx``."""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from ._cluster import ClusterProcess
from ._report import Check, Section, milliseconds, ratio

# Seconds one CLI run may take before it counts as failed.
RUN_TIMEOUT_SECONDS = 60.0
HELP_TARGET_RATIO = 1.5
BARE_IMPORT = "python -c 'import httpx'"
VMS_COMMAND = "pvekit vms --output json"

HEADERS = ("command", "runs", "median ms", "min ms", "max ms", "vs bare import")


def cli_script() -> Path | None:
    """Return the ``pvekit`` console script next to this Python, or None when the CLI is not installed."""
    script = Path(sys.executable).parent / "pvekit"
    if not script.exists() or importlib.util.find_spec("pvekit._entry") is None:
        return None
    return script


def child_environment(workdir: Path) -> dict[str, str]:
    """Return the environment for the timed processes, with bytecode cached and no pvekit settings.

    Without a bytecode cache every run would compile pvekit's sources again, which an installed package
    does not do, so PYTHONDONTWRITEBYTECODE is dropped and PYTHONPYCACHEPREFIX keeps the cache out of the
    repository. PVE_* and PVEKIT_* variables and the user's config file are left out, so that the command
    line alone chooses the cluster.
    """
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("PVE_", "PVEKIT_")) and name != "PYTHONDONTWRITEBYTECODE"
    }
    environment["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
    environment["XDG_CONFIG_HOME"] = str(workdir / "config")
    return environment


def run_once(command: Sequence[str], environment: Mapping[str, str], keep_output: bool) -> tuple[float, str]:
    """Run ``command`` and return its wall seconds and, with ``keep_output``, its standard output.

    Raises:
        RuntimeError: the command failed. The message has its exit status and the last line of its
            error output.
        subprocess.TimeoutExpired: the command ran longer than RUN_TIMEOUT_SECONDS.
    """
    started = time.perf_counter()
    completed = subprocess.run(
        command,
        env=environment,
        stdout=subprocess.PIPE if keep_output else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        # The last line is the exception or the CLI's own error message.
        last_line = (completed.stderr.strip().splitlines() or ["no error output"])[-1]
        raise RuntimeError(f"exit status {completed.returncode}: {last_line}")
    return elapsed, completed.stdout if keep_output else ""


def time_commands(
    commands: Mapping[str, Sequence[str]], environment: Mapping[str, str], runs: int, vm_count: int
) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Run each command once untimed, then all of them in turn ``runs`` times.

    The untimed run fills the caches, and its output of VMS_COMMAND is checked. Taking turns spreads
    other load on the machine over all commands alike. Returns the wall seconds of each command's timed
    runs, and the error of each command that failed, which is then left out of the later rounds.
    """
    failures: dict[str, str] = {}
    for name, command in commands.items():
        try:
            _, output = run_once(command, environment, keep_output=name == VMS_COMMAND)
            if name == VMS_COMMAND:
                check_vm_listing(output, vm_count)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            failures[name] = str(exc)

    timings: dict[str, list[float]] = {name: [] for name in commands if name not in failures}
    for _ in range(runs):
        for name in list(timings):
            try:
                elapsed, _ = run_once(commands[name], environment, keep_output=False)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                failures[name] = str(exc)
                del timings[name]
            else:
                timings[name].append(elapsed)
    return timings, failures


def check_vm_listing(output: str, vm_count: int) -> None:
    """Raise RuntimeError unless ``output`` is a JSON list of ``vm_count`` VMs."""
    try:
        listed = json.loads(output)
    except ValueError as exc:
        raise RuntimeError(f"output is not JSON ({exc})") from None
    if not isinstance(listed, list) or len(listed) != vm_count:
        raise RuntimeError(f"output is not a JSON list of {vm_count} VMs")


def timing_row(name: str, timings: Sequence[float], baseline: float) -> tuple[str, ...]:
    """Return one table row: runs, median, min, max and the median against the bare import's median."""
    middle = statistics.median(timings)
    return (
        name,
        str(len(timings)),
        milliseconds(middle),
        milliseconds(min(timings)),
        milliseconds(max(timings)),
        ratio(middle / baseline),
    )


def help_check(measured: str, met: bool | None) -> Check:
    """Return the check of the ``pvekit --help`` target."""
    return Check(
        name="CLI cold start",
        target=f"pvekit --help < {HELP_TARGET_RATIO}x bare import",
        measured=measured,
        met=met,
    )


def run(cluster: ClusterProcess, runs: int, vm_count: int) -> tuple[Section, list[Check]]:
    """Time ``python -c 'import httpx'``, ``pvekit --help`` and ``pvekit vms`` against the fake cluster."""
    section = Section(title="4. CLI cold start (whole process)", headers=HEADERS, text_columns=1)
    script = cli_script()
    if script is None:
        section.notes.append("skipped: pvekit CLI not installed")
        return section, [help_check("skipped: pvekit CLI not installed", None)]

    info = cluster.info
    with tempfile.TemporaryDirectory(prefix="pvekit-bench-") as workdir_name:
        workdir = Path(workdir_name)
        token_file = workdir / "token"
        # The CLI reads the whole token, user@realm!name=secret, from this file, which only its owner may read.
        token_file.touch(mode=0o600)
        token_file.write_text(info.token + "\n")
        environment = child_environment(workdir)

        # The connection options belong to the root command, before the subcommand.
        connection = ["--host", info.host, "--ca-file", info.ca_file, "--token-file", str(token_file)]
        commands = {
            BARE_IMPORT: [sys.executable, "-c", "import httpx"],
            "pvekit --help": [str(script), "--help"],
            VMS_COMMAND: [str(script), *connection, "vms", "--output", "json"],
        }
        timings, failures = time_commands(commands, environment, runs, vm_count)

    for name, error in failures.items():
        # The message may echo the command line, so the secret is masked.
        section.notes.append(f"{name} failed: {error.replace(info.token_secret, '***')}")
    if BARE_IMPORT not in timings:
        return section, [help_check("bare import failed", None)]
    baseline = statistics.median(timings[BARE_IMPORT])
    section.rows = [timing_row(name, values, baseline) for name, values in timings.items()]
    section.notes += [
        f"One untimed run of each first, then {runs} timed rounds in which the commands take turns.",
        "Bytecode is cached in a temporary directory.",
        f"pvekit vms lists the fake cluster's {vm_count} VMs. Its output is discarded, except the untimed run's,",
        "which is checked to be a JSON list of every VM.",
        "httpx's __init__ (0.29.0 here) imports its command-line module, and so click, rich and pygments when",
        "they are installed, as pvekit's cli extra does: the bare import's time includes them.",
    ]
    if "pvekit --help" not in timings:
        return section, [help_check("pvekit --help failed", None)]
    help_ratio = statistics.median(timings["pvekit --help"]) / baseline
    return section, [help_check(ratio(help_ratio), help_ratio < HELP_TARGET_RATIO)]
