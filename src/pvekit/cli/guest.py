"""``pvekit status``, ``pvekit config`` and ``pvekit ips``: one VM's status, configuration and addresses."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from .app import EXIT_CODES_SHORT_HELP, App, pass_app
from .options import node_option, output_option, vmid_argument
from .output import (
    MISSING,
    bytes_or_missing,
    config_json,
    duration,
    echo_json,
    key_value_table,
    memory_usage,
    network_json,
    new_table,
    percent,
    plain,
    power_state_label,
    select_interfaces,
    status_json,
    status_text,
)

if TYPE_CHECKING:
    from rich.text import Text


def _yes_no(value: bool | None) -> str:
    if value is None:
        return MISSING
    return "yes" if value else "no"


@click.command(epilog=EXIT_CODES_SHORT_HELP)
@vmid_argument
@node_option
@output_option("table", "json")
@pass_app
def status(app: App, vmid: int, node: str | None, output: str) -> None:
    """Show a VM's current status.

    Power state, uptime, CPU, memory, byte counters, HA state, lock and guest agent. The net and disk
    figures are bytes counted since the VM started; for rates use pvekit metrics --interval or pvekit rrd.

    \b
    Examples:
      pvekit status 100
      pvekit status 100 -o json
    """
    with app.client() as client:
        current = client.vms.status(vmid, node=app.default_node(node))

    if output == "json":
        echo_json(status_json(current))
        return

    running = current.status == "running"
    ha = current.ha_state if current.ha_managed else "not managed"
    rows: list[tuple[str, str | Text]] = [
        ("VMID", str(current.vmid)),
        ("Name", current.name or MISSING),
        ("Node", current.node),
        ("Status", status_text(current.status)),
        ("Power state", power_state_label(current.power_state, current.status)),
        ("Uptime", duration(current.uptime_seconds) if running else MISSING),
        ("CPU", f"{percent(current.cpu.ratio) if running else MISSING} of {current.cpu.cpus or 0:g} CPUs"),
        ("Memory", memory_usage(current.mem_bytes if running else None, current.maxmem_bytes)),
        ("Balloon", bytes_or_missing(current.balloon_bytes)),
        ("Net in (total)", bytes_or_missing(current.netin_bytes)),
        ("Net out (total)", bytes_or_missing(current.netout_bytes)),
        ("Disk read (total)", bytes_or_missing(current.diskread_bytes)),
        ("Disk written (total)", bytes_or_missing(current.diskwrite_bytes)),
        ("HA", ha or MISSING),
        ("Lock", current.lock or MISSING),
        ("Guest agent", _yes_no(current.agent_enabled)),
        ("QEMU", current.running_qemu or MISSING),
        ("PID", str(current.pid) if current.pid else MISSING),
        ("Tags", ";".join(current.tags) or MISSING),
    ]
    app.console.print(key_value_table(rows))

    if current.nics:
        table = new_table("NIC", "NET IN (TOTAL)", "NET OUT (TOTAL)", right=("NET IN (TOTAL)", "NET OUT (TOTAL)"))
        for name, counters in sorted(current.nics.items()):
            table.add_row(
                plain(name),
                plain(bytes_or_missing(counters.netin_bytes)),
                plain(bytes_or_missing(counters.netout_bytes)),
            )
        app.console.print()
        app.console.print(table)


@click.command(epilog=EXIT_CODES_SHORT_HELP)
@vmid_argument
@node_option
@click.option("--current", is_flag=True, help="Leave out changes pending until the next start.")
@output_option("table", "json")
@pass_app
def config(app: App, vmid: int, node: str | None, current: bool, output: str) -> None:
    """Show a VM's configuration.

    The common settings, the network devices and disks, then every key of the configuration.

    \b
    Examples:
      pvekit config 100
      pvekit config 100 --current -o json
    """
    with app.client() as client:
        settings = client.vms.config(vmid, node=app.default_node(node), current=current)

    if output == "json":
        echo_json(config_json(settings))
        return

    memory = f"{settings.memory_mib} MiB" if settings.memory_mib is not None else MISSING
    balloon = f"{settings.balloon_mib} MiB" if settings.balloon_mib is not None else MISSING
    rows: list[tuple[str, str | Text]] = [
        ("VMID", str(settings.vmid)),
        ("Node", settings.node),
        ("Name", settings.name or MISSING),
        ("Cores", str(settings.cores) if settings.cores is not None else MISSING),
        ("Sockets", str(settings.sockets) if settings.sockets is not None else MISSING),
        ("Memory", memory),
        ("Balloon minimum", balloon),
        ("Guest agent", _yes_no(settings.agent_enabled)),
        ("Start at boot", _yes_no(settings.onboot)),
        ("OS type", settings.ostype or MISSING),
        ("Boot order", settings.boot or MISSING),
        ("Tags", ";".join(settings.tags) or MISSING),
    ]
    app.console.print(key_value_table(rows))

    if settings.nets:
        nets = new_table("DEVICE", "MODEL", "MAC", "BRIDGE", "VLAN", "FIREWALL", title="Network devices")
        for net in settings.nets:
            nets.add_row(
                plain(net.key),
                plain(net.model or MISSING),
                plain(net.mac or MISSING),
                plain(net.bridge or MISSING),
                plain(net.vlan_tag if net.vlan_tag is not None else MISSING),
                plain(_yes_no(net.firewall)),
            )
        app.console.print()
        app.console.print(nets)

    if settings.disks:
        disks = new_table("DEVICE", "STORAGE", "VOLUME", "SIZE", "MEDIA", title="Disks", right=("SIZE",))
        for disk in settings.disks:
            disks.add_row(
                plain(disk.key),
                plain(disk.storage or MISSING),
                plain(disk.volume),
                plain(bytes_or_missing(disk.size_bytes)),
                plain(disk.media),
            )
        app.console.print()
        app.console.print(disks)

    raw = new_table("KEY", "VALUE", title="All keys")
    for key in sorted(settings.raw):
        raw.add_row(plain(key), plain(settings.raw[key]))
    app.console.print()
    app.console.print(raw)


@click.command(epilog=EXIT_CODES_SHORT_HELP)
@vmid_argument
@node_option
@click.option(
    "--all",
    "include_all",
    is_flag=True,
    help="Show everything the guest agent reported: every interface, even one without addresses, and "
    "link-local and loopback addresses.",
)
@output_option("table", "json")
@pass_app
def ips(app: App, vmid: int, node: str | None, include_all: bool, output: str) -> None:
    """List a VM's IP addresses (QEMU guest agent).

    By default only usable addresses are shown: no loopback and no link-local ones. The VM must run
    with the guest agent enabled (agent: 1) and qemu-guest-agent running inside it.

    \b
    Examples:
      pvekit ips 100
      pvekit ips 100 --all
      pvekit ips 100 -o json | jq -r .primary_address
    """
    with app.client() as client:
        network = client.agent.network(vmid, node=app.default_node(node))

    if output == "json":
        echo_json(network_json(network, include_all=include_all))
        return

    table = new_table("INTERFACE", "MAC", "ADDRESS", "FAMILY")
    for interface, addresses in select_interfaces(network, include_all=include_all):
        if not addresses:
            table.add_row(plain(interface.name), plain(interface.mac or MISSING), plain(MISSING), plain(MISSING))
        for address in addresses:
            text = address.address if address.zone is None else f"{address.address}%{address.zone}"
            if address.prefix is not None:
                text += f"/{address.prefix}"
            table.add_row(plain(interface.name), plain(interface.mac or MISSING), plain(text), plain(address.family))
    app.console.print(table)
    primary = network.primary_address()
    if primary is None:
        app.err_console.print(f"VM {vmid} has no usable address yet.")
