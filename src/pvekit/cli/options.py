"""Click options and arguments that several commands share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

# PVE's VMID range.
VMID_TYPE = click.IntRange(100, 999_999_999)


def output_option(*formats: str) -> Callable[[F], F]:
    """Add ``--output/-o`` with the given formats; the first is the default."""
    choices = formats or ("table", "json")
    return click.option(
        "--output",
        "-o",
        type=click.Choice(choices),
        default=choices[0],
        show_default=True,
        help="Output format. JSON is stable for scripts: see the pvekit documentation for its shape.",
    )


def vmid_argument(function: F) -> F:
    """Add the VMID argument (100 to 999999999)."""
    return click.argument("vmid", type=VMID_TYPE, metavar="VMID")(function)


def node_option(function: F) -> F:
    """Add ``--node`` for a command that acts on one VM."""
    return click.option(
        "--node",
        metavar="NODE",
        default=None,
        help="Node the VM is on, which saves looking it up. Default: the global --node, PVE_NODE or the profile, "
        "else the cluster is asked.",
    )(function)
