"""``pvekit rrd``: a VM's RRD history as a table, CSV or JSON, with a chart in the terminal."""

from __future__ import annotations

import csv
import io
import os
import shutil
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from .._rrd import CONSOLIDATION_FUNCTIONS, TIMEFRAMES
from .app import EXIT_CODES_SHORT_HELP, App, pass_app
from .chart import render_rrd_chart
from .options import node_option, output_option, vmid_argument
from .output import (
    RRD_FIELDS,
    bytes_or_missing,
    echo_json,
    local_time,
    new_table,
    percent,
    plain,
    rate_or_missing,
    rrd_point_json,
)

if TYPE_CHECKING:
    from .._rrd import RrdPoint

# Chart height in rows: the terminal's height within these bounds, so that each of the three panels keeps
# room for its legend.
CHART_MIN_HEIGHT = 36
CHART_MAX_HEIGHT = 60


@click.command(epilog=EXIT_CODES_SHORT_HELP)
@vmid_argument
@node_option
@click.option(
    "--timeframe",
    type=click.Choice(TIMEFRAMES),
    default="hour",
    show_default=True,
    help="Time span of the series; decade needs PVE 9.",
)
@click.option(
    "--cf",
    type=click.Choice(CONSOLIDATION_FUNCTIONS, case_sensitive=False),
    default="AVERAGE",
    show_default=True,
    help="How PVE consolidated each point: the average or the maximum over its step.",
)
@output_option("table", "csv", "json")
@click.option(
    "--chart/--no-chart",
    default=None,
    help="Draw the rates and CPU over time after the table. Default: only when standard output is a terminal.",
)
@pass_app
def rrd(app: App, vmid: int, node: str | None, timeframe: str, cf: str, output: str, chart: bool | None) -> None:
    """Show a VM's RRD history as a table and chart.

    The history contains CPU, memory, and net and disk rates in bytes per second. Each point is PVE's
    average (or with --cf MAX, maximum) over its step, such as one minute for the hour timeframe.
    Points without values (the VM was off) stay empty, never 0. Table and chart times are local; CSV
    and JSON times are UTC.

    \b
    Examples:
      pvekit rrd 100
      pvekit rrd 100 --timeframe day --cf MAX
      pvekit rrd 100 --timeframe week -o csv > web01-week.csv
    """
    with app.client() as client:
        points = client.rrd.series(vmid, timeframe, cf, node=app.default_node(node))

    if output == "json":
        echo_json({"vmid": vmid, "timeframe": timeframe, "cf": cf, "points": [rrd_point_json(p) for p in points]})
        return
    if output == "csv":
        click.echo(_csv(points), nl=False)
        return

    table = new_table(
        "TIME",
        "CPU",
        "MEMORY",
        "NET IN",
        "NET OUT",
        "DISK READ",
        "DISK WRITE",
        right=("CPU", "MEMORY", "NET IN", "NET OUT", "DISK READ", "DISK WRITE"),
    )
    for point in points:
        table.add_row(
            plain(local_time(point.time)),
            plain(percent(point.cpu)),
            plain(bytes_or_missing(point.mem_bytes)),
            plain(rate_or_missing(point.netin_per_second)),
            plain(rate_or_missing(point.netout_per_second)),
            plain(rate_or_missing(point.diskread_per_second)),
            plain(rate_or_missing(point.diskwrite_per_second)),
        )
    app.console.print(table)

    if chart is None:
        chart = sys.stdout.isatty()
    if chart:
        _print_chart(app, points, f"VM {vmid}, {timeframe}, {cf}")


def _print_chart(app: App, points: Sequence[RrdPoint], title: str) -> None:
    columns, lines = shutil.get_terminal_size((100, 40))
    height = max(CHART_MIN_HEIGHT, min(CHART_MAX_HEIGHT, lines - 2))
    color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    # plotext 6 sizes its panels from the LINES variable, not from plot_size, when standard output is not
    # a terminal, so the chart gets the height computed here for the time it is drawn.
    saved = os.environ.get("LINES")
    os.environ["LINES"] = str(height + 2)
    try:
        text = render_rrd_chart(points, title=title, width=columns, height=height, color=color)
    finally:
        if saved is None:
            del os.environ["LINES"]
        else:
            os.environ["LINES"] = saved
    if text is None:
        app.err_console.print("No RRD point has values yet, so there is no chart.")
        return
    click.echo(text)


def _csv(points: Sequence[RrdPoint]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(RRD_FIELDS)
    for point in points:
        row = rrd_point_json(point)
        writer.writerow(["" if row[name] is None else row[name] for name in RRD_FIELDS])
    return buffer.getvalue()
