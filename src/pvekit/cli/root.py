"""The root ``pvekit`` command: connection options, logging, error handling, and the command list."""

from __future__ import annotations

import logging
from typing import Any

import click

from .. import __version__
from .._exceptions import PveError
from .app import EXIT_CODES_HELP, App, ExitCode, abort
from .config import ConnectionFlags

ROOT_EPILOG = (
    """\b
Settings are read from the flags above, then from the environment
(PVE_HOST, PVE_TOKEN, PVE_TOKEN_FILE, PVE_USER, PVE_PASSWORD_FILE,
PVE_PASSWORD, PVE_CA_FILE, PVE_FINGERPRINT, PVE_VERIFY=0, PVE_NODE,
PVE_READ_TIMEOUT, PVEKIT_PROFILE), then from the profile in
$XDG_CONFIG_HOME/pvekit/config.toml (default ~/.config/pvekit/config.toml).

\b
Credentials: an API token, or --user with a password. The password comes
from --password-file, PVE_PASSWORD_FILE, PVE_PASSWORD or the profile's
password_file, else pvekit prompts for it on the terminal. A user with TOTP
is asked for the code on the terminal; scripts pass --otp.

\b
Shell completion (bash; use zsh_source or fish_source for those shells):
  eval "$(_PVEKIT_COMPLETE=bash_source pvekit)"

"""
    + EXIT_CODES_HELP
)


# Log level of the library's messages shown for each count of -v.
VERBOSITY_LEVELS = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG}


class _ClickLogHandler(logging.Handler):
    """Writes the library's log records to the current standard error, as ``Level: message``."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            click.echo(f"{record.levelname.capitalize()}: {record.getMessage()}", err=True)
        except Exception:  # logging must never break the command
            self.handleError(record)


class PvekitGroup(click.Group):
    """The root group: turns pvekit's exceptions and Ctrl-C into an error message and exit status."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """List the commands in the order they were added: reads, power, tasks, then top."""
        return list(self.commands)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the subcommand; a PveError or Ctrl-C leaves through ``abort``."""
        try:
            return super().invoke(ctx)
        except PveError as exc:
            app = ctx.find_object(App)
            if app is None:
                abort(str(exc), ExitCode.FAILED)
            app.fail(exc)
        except KeyboardInterrupt:
            abort("interrupted", ExitCode.INTERRUPTED)


def _install_logging(ctx: click.Context, verbose: int) -> None:
    logger = logging.getLogger("pvekit")
    handler = _ClickLogHandler()
    handler.setLevel(VERBOSITY_LEVELS[min(verbose, 2)])
    logger.addHandler(handler)
    previous_level = logger.level
    if verbose:
        logger.setLevel(handler.level)

    def remove() -> None:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)

    ctx.call_on_close(remove)


@click.group(cls=PvekitGroup, epilog=ROOT_EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--host",
    metavar="HOST",
    help="PVE host: pve1.example.com, pve1.example.com:8006 or https://pve1.example.com:8006. [env: PVE_HOST]",
)
@click.option(
    "--token",
    metavar="TOKEN",
    help="API token user@realm!tokenid=secret. Warning: other users can see command lines, and shells keep "
    "them in history; prefer --token-file or PVE_TOKEN. [env: PVE_TOKEN]",
)
@click.option(
    "--token-file",
    metavar="PATH",
    help="Read the API token from this file, or from standard input with -. [env: PVE_TOKEN_FILE]",
)
@click.option(
    "--user",
    metavar="NAME@REALM",
    help="Log in as this PVE user with a password instead of a token, such as api@pve; without @REALM the "
    "realm is pam. [env: PVE_USER]",
)
@click.option(
    "--password-file",
    metavar="PATH",
    help="Read the password of --user from this file (its first line), or from standard input with -. "
    "Without it, PVE_PASSWORD_FILE, PVE_PASSWORD or a prompt on the terminal. [env: PVE_PASSWORD_FILE]",
)
@click.option(
    "--otp",
    metavar="CODE",
    help="TOTP code for a --user with two-factor login, for scripts; a code is valid for about 30 seconds. "
    "recovery:KEY sends a recovery key. On a terminal pvekit asks for the code instead.",
)
@click.option(
    "--ca-file",
    metavar="PATH",
    help="PEM file of the CA to trust, such as a copy of the cluster's /etc/pve/pve-root-ca.pem. [env: PVE_CA_FILE]",
)
@click.option(
    "--fingerprint",
    "fingerprints",
    metavar="SHA256",
    multiple=True,
    help="Pin the node's certificate by its SHA-256 fingerprint (AB:CD:..., as shown under "
    "Node > System > Certificates) instead of checking a CA; repeat while a certificate is replaced. "
    "pvekit trust HOST stores one in the profile. [env: PVE_FINGERPRINT]",
)
@click.option(
    "--insecure",
    is_flag=True,
    default=False,
    help="Do not verify the server's certificate; anyone on the network path can then read the token or "
    "password. [env: PVE_VERIFY=0]",
)
@click.option("--node", metavar="NODE", help="Default node for commands that act on one VM. [env: PVE_NODE]")
@click.option(
    "--read-timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Seconds to wait for each response from PVE. [env: PVE_READ_TIMEOUT; default: 30]",
)
@click.option(
    "--profile",
    metavar="NAME",
    help="Profile of the config file to read settings from. [env: PVEKIT_PROFILE; default: default]",
)
@click.option(
    "-v", "--verbose", count=True, help="Log more to standard error: -v for retries and waits, -vv for requests."
)
@click.version_option(__version__, "--version", prog_name="pvekit", message="%(prog)s %(version)s")
@click.pass_context
def cli(
    ctx: click.Context,
    host: str | None,
    token: str | None,
    token_file: str | None,
    user: str | None,
    password_file: str | None,
    otp: str | None,
    ca_file: str | None,
    fingerprints: tuple[str, ...],
    insecure: bool,
    node: str | None,
    read_timeout: float | None,
    profile: str | None,
    verbose: int,
) -> None:
    """Manage and monitor Proxmox VE virtual machines.

    \b
    Examples:
      pvekit --host pve1.example.com --token-file ~/.pve-token vms
      pvekit --host pve1.example.com --user admin@pve vms
      pvekit trust pve1.example.com
      pvekit --profile lab status 100
      pvekit start 100 101 102 --wait
      pvekit top --sort netin
    """
    flags = ConnectionFlags(
        host=host,
        token=token,
        token_file=token_file,
        user=user,
        password_file=password_file,
        otp=otp,
        ca_file=ca_file,
        fingerprints=fingerprints,
        insecure=insecure,
        node=node,
        profile=profile,
        read_timeout=read_timeout,
    )
    ctx.obj = App(flags)
    _install_logging(ctx, verbose)


def _register() -> None:
    from . import guest, metrics, power, rrd, task, top, trust, vms

    cli.add_command(vms.vms)
    cli.add_command(guest.status)
    cli.add_command(guest.config)
    cli.add_command(guest.ips)
    cli.add_command(metrics.metrics)
    cli.add_command(rrd.rrd)
    for command in power.COMMANDS:
        cli.add_command(command)
    cli.add_command(task.task)
    cli.add_command(top.top)
    cli.add_command(trust.trust)


_register()
