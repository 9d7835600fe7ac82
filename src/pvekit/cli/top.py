"""``pvekit top``: a live table of every guest's CPU, memory and net and disk rates.

Each refresh is one ``/cluster/resources`` request, whatever the number of guests, through the library's
cluster-wide sampler. The full-screen view draws only the rows that fit the terminal.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from .._exceptions import PveError
from .app import EXIT_CODES_SHORT_HELP, App, pass_app
from .output import (
    MISSING,
    bytes_or_missing,
    echo_json,
    iso_time,
    percent,
    plain,
    power_state_label,
    rate_or_missing,
    rates_json,
    status_text,
)

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table
    from rich.text import Text

    from .. import ClusterRates, ClusterSampler, Rates

DEFAULT_INTERVAL_SECONDS = 2.0
# Sort orders: the key of each, and whether larger values come first.
SORT_ORDERS: dict[str, tuple[Callable[[Rates], Any], bool]] = {
    "cpu": (lambda r: r.snapshot.cpu.ratio, True),
    "mem": (lambda r: r.snapshot.mem_bytes, True),
    "netin": (lambda r: r.netin_per_second, True),
    "netout": (lambda r: r.netout_per_second, True),
    "diskread": (lambda r: r.diskread_per_second, True),
    "diskwrite": (lambda r: r.diskwrite_per_second, True),
    "name": (lambda r: (r.name or "").lower(), False),
}
# Keys of the live view that change the sort order.
SORT_KEYS = {"c": "cpu", "m": "mem", "i": "netin", "o": "netout", "r": "diskread", "w": "diskwrite", "n": "name"}
QUIT_KEYS = frozenset({"q", "Q"})
FOOTER = "q quit   sort: c cpu  m memory  i net in  o net out  r disk read  w disk write  n name"
HEADERS = ("VMID", "NAME", "NODE", "TYPE", "STATUS", "CPU", "MEMORY", "NET IN", "NET OUT", "DISK READ", "DISK WRITE")
RIGHT_ALIGNED = frozenset({"VMID", "CPU", "MEMORY", "NET IN", "NET OUT", "DISK READ", "DISK WRITE"})


def sort_rates(rates: ClusterRates, order: str, node: str | None) -> list[Rates]:
    """Return the guests of ``node`` (all when None) in the sort order; guests without a value come last."""
    key, descending = SORT_ORDERS[order]
    rows = [row for row in rates if node is None or row.node == node]
    rows.sort(key=lambda row: row.vmid)
    present = [row for row in rows if key(row) is not None]
    absent = [row for row in rows if key(row) is None]
    present.sort(key=key, reverse=descending)
    return present + absent


# Columns left out, first to last, when every column cannot fit the screen's width.
NARROW_DROP_ORDER = ("TYPE", "NODE", "DISK READ", "DISK WRITE", "NET OUT")
# The width below which NAME is cut with an ellipsis rather than another column left out.
NAME_MIN_WIDTH = 10
# Between two columns: the padding of one space on each side of a cell and the box's blank separator.
COLUMN_GAP = 3


def _row_cells(row: Rates) -> list[Text]:
    snapshot = row.snapshot
    running = snapshot.status == "running"
    return [
        plain(row.vmid),
        plain(row.name or MISSING),
        plain(row.node),
        plain(row.kind),
        status_text(power_state_label(snapshot.power_state, snapshot.status)),
        plain(percent(snapshot.cpu.ratio) if running else MISSING),
        plain(_memory_cell(snapshot.mem_bytes, snapshot.maxmem_bytes) if running else MISSING),
        plain(rate_or_missing(row.netin_per_second)),
        plain(rate_or_missing(row.netout_per_second)),
        plain(rate_or_missing(row.diskread_per_second)),
        plain(rate_or_missing(row.diskwrite_per_second)),
    ]


def _memory_cell(used: float | None, total: float | None) -> str:
    """Format memory use as ``256.00 MiB (50%)``: the total is left out, so that more columns fit."""
    if used is None:
        return MISSING
    share = f" ({used / total * 100:.0f}%)" if total else ""
    return f"{bytes_or_missing(used)}{share}"


def fit_columns(cells: Sequence[Sequence[Text]], width: int | None) -> tuple[list[str], dict[str, int]]:
    """Choose the columns that fit ``width`` (all when None) and the width of each.

    Columns are left out in NARROW_DROP_ORDER until the rest fit with NAME at least
    NAME_MIN_WIDTH wide. Every column but NAME gets its content's width, and NAME gets
    the rest, up to its own content's. So from about 70 columns on, no number is cut to
    an ellipsis; below that the remaining columns are cut too.
    """
    widths = {
        header: max([len(header), *(row[index].cell_len for row in cells)]) for index, header in enumerate(HEADERS)
    }
    columns = list(HEADERS)
    if width is None:
        return columns, widths

    def others() -> int:
        return sum(widths[header] for header in columns if header != "NAME") + COLUMN_GAP * (len(columns) - 1)

    for header in NARROW_DROP_ORDER:
        if others() + min(widths["NAME"], NAME_MIN_WIDTH) <= width:
            break
        columns.remove(header)
    widths["NAME"] = max(min(widths["NAME"], width - others()), NAME_MIN_WIDTH)
    return columns, widths


def build_table(
    rows: Sequence[Rates], *, fill_width: bool = False, width: int | None = None
) -> tuple[Table, list[str]]:
    """Build the table of guests, one line per guest, with the columns that fit ``width`` (all when None).

    ``fill_width`` stretches it to the screen's width. Returns the table and the columns left out.
    """
    from rich import box
    from rich.table import Table

    cells = [_row_cells(row) for row in rows]
    columns, widths = fit_columns(cells, width)
    table = Table(box=box.SIMPLE_HEAD, header_style="bold reverse", pad_edge=False, show_edge=False, expand=fill_width)
    for header in columns:
        # Every column but NAME keeps its content whole. Without a width NAME takes what is left, and
        # with one fit_columns has set NAME's width too.
        flexible = header == "NAME" and width is None
        table.add_column(
            header,
            justify="right" if header in RIGHT_ALIGNED else "left",
            no_wrap=True,
            overflow="ellipsis",
            ratio=2 if flexible else None,
            min_width=None if flexible else widths[header],
            max_width=widths[header] if header == "NAME" and not flexible else None,
        )
    indexes = [HEADERS.index(header) for header in columns]
    for row_cells in cells:
        table.add_row(*(row_cells[index] for index in indexes))
    return table, [header for header in HEADERS if header not in columns]


def summary_line(rates: ClusterRates, order: str, node: str | None, host: str, interval: float) -> str:
    """Return the first line of a screen: host, guest counts, sort order and time."""
    rows = [row for row in rates if node is None or row.node == node]
    running = sum(1 for row in rows if row.snapshot.status == "running")
    where = f" on {node}" if node else ""
    clock = rates.received_at.astimezone().strftime("%H:%M:%S")
    return (
        f"pvekit top - {host} - {len(rows)} guests{where}, {running} running - sort: {order} - "
        f"every {interval:g} s - {clock}"
    )


def offline_note(rates: ClusterRates) -> str:
    """Name the nodes whose guests have status unknown, which is why those guests show no rates."""
    return f"offline nodes, their guests have no rates: {', '.join(rates.offline_nodes)}"


def render_screen(
    rates: ClusterRates,
    *,
    order: str,
    node: str | None,
    host: str,
    interval: float,
    height: int,
    problem: str | None,
    width: int | None = None,
) -> RenderableType:
    """Build one full screen: summary, warnings, as many guest rows as fit ``height``, and the key help.

    Columns that do not fit ``width`` are left out, and the key help names them.
    """
    from rich.console import Group
    from rich.text import Text

    parts: list[RenderableType] = [Text(summary_line(rates, order, node, host, interval), style="bold")]
    if rates.offline_nodes:
        parts.append(Text(offline_note(rates), style="yellow"))
    if problem:
        parts.append(Text(f"refresh failed, retrying: {problem}", style="red"))

    rows = sort_rates(rates, order, node)
    # The summary and warnings, the table's header and its rule, and the footer take the other lines.
    fitting = max(height - len(parts) - 3, 0)
    visible_rows = rows[:fitting]
    table, hidden = build_table(visible_rows, fill_width=True, width=width)
    parts.append(table)
    more = f"   showing {len(visible_rows)} of {len(rows)}" if len(visible_rows) < len(rows) else ""
    narrow = f"   too narrow for {', '.join(hidden)}" if hidden else ""
    parts.append(Text(FOOTER + more + narrow, style="dim"))
    return Group(*parts)


@click.command(epilog=EXIT_CODES_SHORT_HELP)
@click.option(
    "--interval",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_INTERVAL_SECONDS,
    show_default=True,
    metavar="SECONDS",
    help="Seconds between refreshes; each costs one request.",
)
@click.option(
    "--sort",
    "order",
    type=click.Choice(list(SORT_ORDERS)),
    default="cpu",
    show_default=True,
    help="Sort order; keys change it in the live view.",
)
@click.option("--node", metavar="NODE", help="Only guests on this node.")
@click.option("--once", is_flag=True, help="Print one table of every guest, from two samples, and exit.")
@click.option("--iterations", type=click.IntRange(min=1), metavar="N", help="Exit after N refreshes.")
@click.option(
    "--output",
    "-o",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="json prints one object per refresh, each on its own line, instead of the live view.",
)
@pass_app
def top(
    app: App, interval: float, order: str, node: str | None, once: bool, iterations: int | None, output: str
) -> None:
    """Show a live table of every guest's usage.

    The table shows each VM's and container's CPU, memory and net and disk rates. The view fills the
    terminal and ends with q or Ctrl-C. Keys change the sort order: c cpu, m memory, i net in, o net out, r
    disk read, w disk write, n name. When standard output is not a terminal, or with --once or -o json,
    pvekit prints one table (or JSON line) of every guest per refresh instead.

    \b
    Examples:
      pvekit top
      pvekit top --sort netin --node pve1 --interval 5
      pvekit top --once
      pvekit top -o json --iterations 10 --interval 60 >> rates.jsonl
    """
    if once:
        iterations = 1
    live = not once and output == "table" and sys.stdout.isatty()

    with app.client() as client:
        sampler = client.metrics.sampler(interval)
        # Ctrl-C is the usual way to leave top, so it ends the command quietly with exit status 0.
        with contextlib.suppress(KeyboardInterrupt):
            if live:
                _run_live(app, sampler, order=order, node=node, iterations=iterations)
            else:
                _print_refreshes(
                    app, sampler, order=order, node=node, iterations=iterations, output=output, once=once
                )


def _print_refreshes(
    app: App,
    sampler: ClusterSampler,
    *,
    order: str,
    node: str | None,
    iterations: int | None,
    output: str,
    once: bool = False,
) -> None:
    def report(exc: PveError) -> None:
        _report_failed_refresh(sampler, exc)

    # --once prints one table or nothing, so its failure is the command's.
    for rates in _refreshes(sampler, iterations, None if once else report):
        if output == "json":
            echo_json(_top_json(rates, order, node), compact=True)
            continue
        app.console.print(plain(summary_line(rates, order, node, app.settings.host, sampler.interval)))
        table, hidden = build_table(sort_rates(rates, order, node), width=app.console.width)
        app.console.print(table)
        if hidden:
            click.echo(f"Too narrow for {', '.join(hidden)}; widen the terminal or use -o json.", err=True)
        if rates.offline_nodes:
            app.err_console.print(offline_note(rates), style="yellow")


def _top_json(rates: ClusterRates, order: str, node: str | None) -> dict[str, Any]:
    return {
        "received_at": iso_time(rates.received_at),
        "sort": order,
        "node": node,
        "offline_nodes": list(rates.offline_nodes),
        "guests": [rates_json(row) for row in sort_rates(rates, order, node)],
    }


def _refreshes(
    sampler: ClusterSampler, iterations: int | None, report: Callable[[PveError], None] | None
) -> Iterator[ClusterRates]:
    """Yield the rates of each refresh: a baseline sample first, then one sample per interval.

    Once PVE has responded, a sample that fails as in an outage is passed to
    ``report`` and counts as a refresh. The next sample comes one interval later,
    and a failed baseline is taken again. Without ``report`` every failure raises.
    """
    count = 0
    have_baseline = False
    while iterations is None or count < iterations:
        if have_baseline or count:
            time.sleep(sampler.interval)
        try:
            rates = sampler.sample()
        except PveError as exc:
            if report is None or not sampler._client._session.rides_out(exc):
                raise
            report(exc)
            count += 1
            continue
        if have_baseline:
            count += 1
            yield rates
        have_baseline = True


def _first_sample(sampler: ClusterSampler) -> ClusterRates:
    """Take the live view's first sample, again after each interval while PVE has an outage."""
    while True:
        try:
            return sampler.sample()
        except PveError as exc:
            if not sampler._client._session.rides_out(exc):
                raise
            _report_failed_refresh(sampler, exc)
            time.sleep(sampler.interval)


def _report_failed_refresh(sampler: ClusterSampler, exc: PveError) -> None:
    # click.echo, not the console, so that a long message stays on one line for logs and grep.
    click.echo(f"Refresh failed, trying again in {sampler.interval:g} s: {exc}", err=True)


def _run_live(app: App, sampler: ClusterSampler, *, order: str, node: str | None, iterations: int | None) -> None:
    from rich.live import Live

    # NOTE: a resized terminal is redrawn at the next refresh or key press, not at once.
    console = app.console
    host = app.settings.host
    rates = _first_sample(sampler)
    problem: str | None = None

    def draw(live: Live) -> None:
        screen = render_screen(
            rates,
            order=order,
            node=node,
            host=host,
            interval=sampler.interval,
            height=console.size.height,
            problem=problem,
            width=console.size.width,
        )
        live.update(screen, refresh=True)

    refreshes = 0
    with (
        cbreak_keys() as read_key,
        Live(
            console=console,
            screen=True,
            auto_refresh=False,
            redirect_stdout=False,
            redirect_stderr=False,
            vertical_overflow="crop",
        ) as live,
    ):
        draw(live)
        due = time.monotonic() + sampler.interval
        while iterations is None or refreshes < iterations:
            remaining = due - time.monotonic()
            if remaining > 0:
                key = read_key(remaining)
                if key in QUIT_KEYS:
                    return
                if key in SORT_KEYS:
                    order = SORT_KEYS[key]
                    draw(live)
                continue
            try:
                rates = sampler.sample()
                problem = None
            except PveError as exc:
                if not sampler._client._session.rides_out(exc):
                    raise
                # Keep the last rates on screen and try again at the next interval. The library has already
                # retried the request.
                problem = str(exc)
            refreshes += 1
            due = time.monotonic() + sampler.interval
            draw(live)


@contextmanager
def cbreak_keys() -> Iterator[Callable[[float], str | None]]:
    """Put the terminal on standard input in cbreak mode and yield a function that reads one key press.

    The function waits at most the given seconds and returns None when no key came. cbreak mode keeps
    Ctrl-C working. The terminal's previous mode is restored on exit, whatever ends the block. When
    standard input is not a terminal, the function only waits.
    """
    stdin = sys.stdin
    # Windows has no termios, so keys are not read there and Ctrl-C ends the view.
    if sys.platform == "win32" or not stdin.isatty():
        yield _wait_only
        return

    import termios
    import tty

    descriptor = stdin.fileno()
    saved = termios.tcgetattr(descriptor)
    try:
        tty.setcbreak(descriptor)

        def read_key(timeout: float) -> str | None:
            ready, _, _ = select.select([descriptor], [], [], max(timeout, 0.0))
            if not ready:
                return None
            data = os.read(descriptor, 64).decode("utf-8", errors="ignore")
            # Arrow and function keys arrive as escape sequences, which no binding uses.
            if not data or data.startswith("\x1b"):
                return None
            return data[-1]

        yield read_key
    finally:
        termios.tcsetattr(descriptor, termios.TCSADRAIN, saved)


def _wait_only(timeout: float) -> None:
    time.sleep(max(timeout, 0.0))
