"""The ``pvekit`` console script: runs the command-line tool, or prints how to install its extra."""

from __future__ import annotations

import importlib.util
import sys
from typing import NoReturn

MISSING_EXTRA_MESSAGE = "pvekit's command-line tool needs its extra: pip install 'pvekit[cli]'"


def _cli_packages() -> tuple[str, ...]:
    packages = ("click", "rich", "plotext", "tomlkit")
    return packages if sys.version_info >= (3, 11) else (*packages, "tomli")


def _exit_missing_extra() -> NoReturn:
    sys.stderr.write(MISSING_EXTRA_MESSAGE + "\n")
    raise SystemExit(2)


def main() -> None:
    """Run the CLI; exit with status 2 and the install command when the ``cli`` extra is missing."""
    # Only the commands that draw import rich and plotext, so check for every package of the extra here,
    # before a command starts. find_spec looks a module up without importing it.
    if any(importlib.util.find_spec(name) is None for name in _cli_packages()):
        _exit_missing_extra()
    try:
        from .cli import main as run_cli
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] not in _cli_packages():
            raise
        _exit_missing_extra()
    run_cli()
