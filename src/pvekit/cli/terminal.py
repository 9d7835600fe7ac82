"""Questions on the terminal: hidden input for passwords and codes, and yes/no confirmations.

Prompts go to standard error, so they never mix with data on standard output. Commands prompt only when
standard input is a terminal. In scripts the value must come from a flag, a file or a variable instead.
"""

from __future__ import annotations

import sys

import click


def stdin_is_terminal() -> bool:
    """Return True when standard input is a terminal that a person can answer a prompt on."""
    return sys.stdin.isatty()


def ask_hidden(label: str) -> str:
    """Prompt on the terminal without echoing the input, and return what was typed."""
    value: str = click.prompt(label, hide_input=True, err=True)
    return value


def confirm(question: str) -> bool:
    """Ask a yes/no question whose default is no; end of input counts as no."""
    try:
        return click.confirm(question, default=False, err=True)
    except click.Abort:
        click.echo(err=True)
        return False
