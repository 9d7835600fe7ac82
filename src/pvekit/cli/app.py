"""The application object on the root command: settings, consoles, client factories and the one exit path."""

from __future__ import annotations

import enum
import os
import sys
from typing import TYPE_CHECKING, Any, NoReturn

import click

from .._exceptions import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    CertificateFingerprintMismatch,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    ProxyError,
    PveError,
    TLSError,
    TransportError,
    VmNotFoundError,
)
from .config import ConfigError, ConnectionFlags, Settings, resolve_settings

if TYPE_CHECKING:
    from rich.console import Console

    from .. import AsyncClient, Client

# Width of tables written to a pipe or file when COLUMNS is unset, so that rows do not wrap at 80 columns.
PIPE_WIDTH = 200


class ExitCode(enum.IntEnum):
    """The exit statuses of ``pvekit``, as documented in ``pvekit --help``."""

    OK = 0
    FAILED = 1
    USAGE = 2
    AUTHENTICATION = 3
    CONNECTION = 4
    NOT_FOUND = 5
    # 128 + SIGINT, as shells report a program that Ctrl-C ended.
    INTERRUPTED = 130


EXIT_CODES_HELP = """\b
Exit status:
  0    success
  1    the operation or task failed
  2    usage error: invalid option or value, or missing settings
  3    authentication or permission failure (HTTP 401, 403)
  4    connection or TLS failure, or a node that PVE cannot reach
  5    not found: VM or node
  130  interrupted by Ctrl-C"""

# The epilog of every subcommand.
EXIT_CODES_SHORT_HELP = (
    "Exit status: 0 success, 1 failed, 2 usage error, 3 authentication or permission, 4 connection or TLS, "
    "5 not found (details: pvekit --help)."
)


def abort(message: str, code: int = ExitCode.FAILED) -> NoReturn:
    """Print ``Error: message`` to standard error and exit with ``code``; every failure exits here."""
    click.echo(f"Error: {message}", err=True)
    raise click.exceptions.Exit(int(code))


def exit_code_for(exc: BaseException) -> ExitCode:
    """Return the exit status for an exception pvekit raised."""
    if isinstance(exc, (AuthenticationError, PermissionDeniedError)):
        return ExitCode.AUTHENTICATION
    if isinstance(exc, (TransportError, ProxyError)):
        return ExitCode.CONNECTION
    if isinstance(exc, NotFoundError):
        return ExitCode.NOT_FOUND
    if isinstance(exc, (InvalidInputError, BadRequestError)):
        return ExitCode.USAGE
    return ExitCode.FAILED


class App:
    """State shared by every command: the connection flags, lazily resolved settings, consoles and clients.

    Settings are resolved on the first client request, so ``--help`` and usage errors need no host or token.
    """

    def __init__(self, flags: ConnectionFlags, *, environ: dict[str, str] | None = None) -> None:
        self.flags = flags
        self.environ = dict(os.environ) if environ is None else environ
        self._settings: Settings | None = None
        self._console: Console | None = None
        self._err_console: Console | None = None

    # ------------------------------------------------------------ settings and clients

    @property
    def settings(self) -> Settings:
        """The resolved connection settings; a missing or invalid one aborts with exit status 2."""
        if self._settings is None:
            try:
                self._settings = resolve_settings(
                    self.flags, self.environ, read_stdin=_read_token_from_stdin, warn=self.warn
                )
            except ConfigError as exc:
                abort(str(exc), ExitCode.USAGE)
        return self._settings

    def default_node(self, node: str | None) -> str | None:
        """Return the node given to a command, else the ``node`` setting (flag, PVE_NODE or profile)."""
        if node is not None:
            return node
        return self.settings.node

    def client(self) -> Client:
        """Build a blocking client from the settings; invalid settings abort with exit status 2."""
        from .._client import Client

        arguments = self._client_arguments()
        try:
            return Client(**arguments)
        except InvalidInputError as exc:
            self._invalid_settings(exc)

    def async_client(self, concurrency: int | None = None) -> AsyncClient:
        """Build an asyncio client from the settings; invalid settings abort with exit status 2."""
        from .._async_client import AsyncClient

        arguments = self._client_arguments()
        if concurrency is not None:
            arguments["concurrency"] = concurrency
        try:
            return AsyncClient(**arguments)
        except InvalidInputError as exc:
            self._invalid_settings(exc)

    def _client_arguments(self) -> dict[str, Any]:
        settings = self.settings
        arguments: dict[str, Any] = {
            "host": settings.host,
            "token": settings.token,
            "verify": settings.verify,
            "ca_file": settings.ca_file,
        }
        if settings.fingerprints:
            arguments["fingerprint"] = settings.fingerprints
        return arguments

    def _invalid_settings(self, exc: InvalidInputError) -> NoReturn:
        abort(f"{exc} (settings from {self._describe_sources()})", ExitCode.USAGE)

    def _describe_sources(self) -> str:
        settings = self._settings
        if settings is None:
            return "the defaults"
        return ", ".join(f"{name}: {source}" for name, source in settings.sources.items())

    # ------------------------------------------------------------ errors

    def fail(self, exc: PveError) -> NoReturn:
        """Abort with the message and exit status that fit a pvekit exception."""
        abort(self.describe(exc), exit_code_for(exc))

    def describe(self, exc: PveError) -> str:
        """Return an error message with the next step; it never contains the token's secret."""
        settings = self._settings
        host = settings.host if settings else "the host"
        if isinstance(exc, AuthenticationError):
            return (
                f"PVE on {host} rejected the API token {self._token_id()} (HTTP 401); check the token id "
                "and secret, and that the token exists, is enabled and has not expired"
            )
        if isinstance(exc, PermissionDeniedError):
            return (
                f"{exc}; give the token {self._token_id()} a role with that privilege on that path "
                "(Datacenter > Permissions); a privilege-separated token needs the role itself"
            )
        if isinstance(exc, ProxyError):
            return f"{exc}; check that the node is online and in the cluster (pvecm status)"
        if isinstance(exc, TLSError) and not isinstance(exc, CertificateFingerprintMismatch):
            return (
                f"{exc}. In pvekit, these are --ca-file PATH and --fingerprint SHA256 (or PVE_CA_FILE, PVE_FINGERPRINT)"
            )
        # An ApiError without a path was raised by pvekit itself (a VM missing from the cluster listing),
        # so the HTTP status in its text would mislead.
        text = exc.message if isinstance(exc, ApiError) and not exc.path else str(exc)
        if isinstance(exc, VmNotFoundError) and exc.node and settings and settings.node == exc.node:
            return f"{text} (the node {exc.node!r} comes from {settings.sources.get('node', 'the settings')})"
        return text

    def _token_id(self) -> str:
        from .._auth import ApiToken

        settings = self._settings
        if settings is None:
            return "(unknown)"
        try:
            return ApiToken.parse(settings.token).token_id
        except InvalidInputError:
            return "(malformed)"

    # ------------------------------------------------------------ output

    @property
    def console(self) -> Console:
        """The rich console for data, on standard output; it interprets no markup."""
        if self._console is None:
            self._console = make_console(stderr=False)
        return self._console

    @property
    def err_console(self) -> Console:
        """The rich console for progress, on standard error; it interprets no markup."""
        if self._err_console is None:
            self._err_console = make_console(stderr=True)
        return self._err_console

    def warn(self, message: str) -> None:
        """Print ``Warning: message`` to standard error."""
        click.echo(f"Warning: {message}", err=True)


def make_console(*, stderr: bool) -> Console:
    """Create a rich console that treats every string as plain text (no markup, emoji or highlighting)."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    width = None
    if not stream.isatty() and not os.environ.get("COLUMNS"):
        width = PIPE_WIDTH
    return Console(file=stream, width=width, markup=False, emoji=False, highlight=False, soft_wrap=False)


def _read_token_from_stdin() -> str:
    if sys.stdin.isatty():
        value: str = click.prompt("API token", hide_input=True, err=True)
        return value
    return sys.stdin.read()


pass_app = click.make_pass_decorator(App)
