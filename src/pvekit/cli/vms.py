"""``pvekit vms``: list the VMs of the cluster."""

from __future__ import annotations

import click

from .app import EXIT_CODES_SHORT_HELP, App, ExitCode, abort, pass_app
from .output import (
    MISSING,
    duration,
    echo_json,
    guest_json,
    memory_usage,
    new_table,
    percent,
    plain,
    power_state_label,
    status_text,
)


@click.command(epilog=EXIT_CODES_SHORT_HELP)
@click.option("--node", metavar="NODE", help="Only VMs on this node (names are case-sensitive).")
@click.option("--status", type=click.Choice(["running", "stopped", "unknown"]), help="Only VMs with this status.")
@click.option("--tag", "tags", metavar="TAG", multiple=True, help="Only VMs with this tag; repeat to require several.")
@click.option("--pool", metavar="POOL", help="Only VMs in this resource pool.")
@click.option("--name", metavar="GLOB", help="Only VMs whose name matches this shell pattern, such as 'web*'.")
@click.option(
    "--output",
    "-o",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Output format; JSON is a list of VM objects.",
)
@pass_app
def vms(
    app: App,
    node: str | None,
    status: str | None,
    tags: tuple[str, ...],
    pool: str | None,
    name: str | None,
    output: str,
) -> None:
    """List the VMs of the cluster.

    One request lists the QEMU VMs of every node; containers are left out. Filters combine: a VM is listed
    when it matches all of them.

    \b
    Examples:
      pvekit vms
      pvekit vms --node pve1 --status running
      pvekit vms --tag prod --tag web --name 'web*' -o json
    """
    with app.client() as client:
        guests = client.vms.list(status=status, tags=tags, pool=pool, name=name)
        if node is not None:
            guests = [guest for guest in guests if guest.node == node]
            known = client.cluster.nodes() if not guests else [node]
            if node not in known:
                abort(f"node {node!r} not found; the cluster's nodes: {', '.join(known)}", ExitCode.NOT_FOUND)

    if output == "json":
        echo_json([guest_json(guest) for guest in guests])
        return

    table = new_table(
        "VMID",
        "NAME",
        "NODE",
        "STATUS",
        "CPU",
        "CPUS",
        "MEMORY",
        "UPTIME",
        "TAGS",
        right=("VMID", "CPU", "CPUS", "UPTIME"),
        wrap=("NAME", "MEMORY", "TAGS"),
    )
    for guest in guests:
        running = guest.status == "running"
        table.add_row(
            plain(guest.vmid),
            plain(guest.name or MISSING),
            plain(guest.node),
            status_text("template" if guest.template else power_state_label(guest.power_state, guest.status)),
            plain(percent(guest.cpu.ratio) if running else MISSING),
            plain(f"{guest.cpu.cpus:g}" if guest.cpu.cpus else MISSING),
            plain(memory_usage(guest.mem_bytes if running else None, guest.maxmem_bytes)),
            plain(duration(guest.uptime_seconds) if running else MISSING),
            plain(";".join(guest.tags)),
        )
    app.console.print(table)
    if not guests:
        app.err_console.print("No VMs match.")
    unreachable = sorted({guest.node for guest in guests if guest.status == "unknown"})
    if unreachable:
        app.err_console.print(
            f"Status unknown on {', '.join(unreachable)}: the node is down or out of quorum, "
            "so its VMs are listed without usage values.",
            style="yellow",
        )
