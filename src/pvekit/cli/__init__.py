"""The ``pvekit`` command-line tool, installed with ``pip install 'pvekit[cli]'``.

One module per command group. The root command in ``root`` creates the App (``app``) with the settings,
the consoles and the client factories. Every failure leaves through ``app.abort``.
"""

from __future__ import annotations

from .root import cli

__all__ = ["cli", "main"]


def main() -> None:
    """Run the command-line tool with the program name ``pvekit``, whatever way it was started."""
    cli.main(prog_name="pvekit", complete_var="_PVEKIT_COMPLETE")
