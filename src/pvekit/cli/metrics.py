"""``pvekit metrics``: a VM's usage and byte counters, and with ``--interval`` its sampled rates."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from .app import EXIT_CODES_SHORT_HELP, App, pass_app
from .options import node_option, output_option, vmid_argument
from .output import (
    MISSING,
    bytes_or_missing,
    duration,
    echo_json,
    key_value_table,
    memory_usage,
    percent,
    power_state_label,
    rate_or_missing,
    rates_json,
    snapshot_json,
    status_text,
)

if TYPE_CHECKING:
    from rich.text import Text

    from .. import MetricsSnapshot, Rates


@click.command(epilog=EXIT_CODES_SHORT_HELP)
@vmid_argument
@node_option
@click.option(
    "--interval",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Sample twice, this many seconds apart, and show bytes per second.",
)
@output_option("table", "json")
@pass_app
def metrics(app: App, vmid: int, node: str | None, interval: float | None, output: str) -> None:
    """Show a VM's usage, counters or sampled rates.

    Without --interval: CPU, memory and the net and disk byte counters. PVE counts net and disk bytes since
    the VM started. With --interval, pvekit reads them twice and divides the difference by the time between
    the two responses. A stopped VM, or one that restarted or migrated in between, has no rate (shown as -),
    never a negative or made-up one.

    \b
    Examples:
      pvekit metrics 100
      pvekit metrics 100 --interval 5
      pvekit metrics 100 --interval 2 -o json
    """
    with app.client() as client:
        if interval is None:
            snapshot = client.metrics.snapshot(vmid, node=app.default_node(node))
            rates = None
        else:
            rates = client.metrics.rates(vmid, interval, node=app.default_node(node))
            snapshot = rates.snapshot

    if output == "json":
        echo_json(snapshot_json(snapshot) if rates is None else rates_json(rates))
        return

    app.console.print(key_value_table(_rows(snapshot, rates)))


def _rows(snapshot: MetricsSnapshot, rates: Rates | None) -> list[tuple[str, str | Text]]:
    running = snapshot.status == "running"
    cpus = f" of {snapshot.cpu.cpus:g} CPUs" if snapshot.cpu.cpus else ""
    rows: list[tuple[str, str | Text]] = [
        ("VM", f"{snapshot.vmid} ({snapshot.name})" if snapshot.name else str(snapshot.vmid)),
        ("Node", snapshot.node),
        ("Status", status_text(power_state_label(snapshot.power_state, snapshot.status))),
        ("Uptime", duration(snapshot.uptime_seconds) if running else MISSING),
        ("CPU", percent(snapshot.cpu.ratio) + cpus if running else MISSING),
        ("Memory", memory_usage(snapshot.mem_bytes, snapshot.maxmem_bytes)),
    ]
    labels = {"netin": "Net in", "netout": "Net out", "diskread": "Disk read", "diskwrite": "Disk write"}
    if rates is None:
        rows += [(f"{label} (total)", bytes_or_missing(snapshot.counters.get(name))) for name, label in labels.items()]
        return rows

    measured = f"{rates.interval_seconds:.2f} s" if rates.interval_seconds is not None else MISSING
    rows.append(("Measured over", measured))
    rows += [(label, rate_or_missing(rates.get(name))) for name, label in labels.items()]
    if rates.reset:
        rows.append(("Note", "counters were reset in this interval (restart or migration), so there is no rate"))
    elif not running:
        rows.append(("Note", "the VM is not running, so there is no rate"))
    return rows
