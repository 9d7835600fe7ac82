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
    OutcomeUnknownError,
    PermissionDeniedError,
    ProxyError,
    PveError,
    PveTimeoutError,
    TLSError,
    TransportError,
    TwoFactorRequiredError,
    VmNotFoundError,
)
from . import terminal
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
    # A power action was sent but its response was lost, and no task of it was found.
    OUTCOME_UNKNOWN = 6
    # 128 + SIGINT, as shells report a program that Ctrl-C ended.
    INTERRUPTED = 130


EXIT_CODES_HELP = """\b
Exit status:
  0    success
  1    the operation or task failed
  2    usage error: invalid option or value, missing settings, or a value PVE rejected (HTTP 400)
  3    authentication or permission failure (HTTP 401, 403)
  4    connection or TLS failure, a changed certificate, or a node PVE cannot reach (HTTP 595 to 599)
  5    not found: VM, node or task
  6    outcome unknown: an action was sent but its response was lost; check the VM's tasks
  130  interrupted by Ctrl-C"""

# The epilog of every subcommand.
EXIT_CODES_SHORT_HELP = (
    "Exit status: 0 success, 1 failed, 2 usage error, 3 authentication or permission, 4 connection or TLS, "
    "5 not found, 6 outcome unknown (details: pvekit --help)."
)


def abort(message: str, code: int = ExitCode.FAILED) -> NoReturn:
    """Print ``Error: message`` to standard error and exit with ``code``; every failure exits here."""
    click.echo(f"Error: {message}", err=True)
    raise click.exceptions.Exit(int(code))


def exit_code_for(exc: BaseException) -> ExitCode:
    """Return the exit status for an exception pvekit raised."""
    if isinstance(exc, (AuthenticationError, PermissionDeniedError)):
        return ExitCode.AUTHENTICATION
    if isinstance(exc, OutcomeUnknownError):
        return ExitCode.OUTCOME_UNKNOWN
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
                prompt = terminal.ask_hidden if terminal.stdin_is_terminal() else None
                self._settings = resolve_settings(
                    self.flags, self.environ, read_stdin=_read_stdin, warn=self.warn, prompt=prompt
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
            "verify": settings.verify,
            "ca_file": settings.ca_file,
        }
        if settings.user is None:
            arguments["token"] = settings.token
        else:
            arguments["user"] = settings.user
            arguments["password"] = settings.password
            if settings.otp is not None:
                arguments["otp"] = settings.otp
            elif terminal.stdin_is_terminal():
                # pvekit prompts at every login that receives a second-factor challenge, because a TOTP code
                # is valid for about 30 seconds.
                arguments["otp_callback"] = self._ask_second_factor
        if settings.fingerprints:
            arguments["fingerprint"] = settings.fingerprints
        if settings.read_timeout is not None:
            arguments["read_timeout"] = settings.read_timeout
        return arguments

    async def log_in_before_display(self, client: AsyncClient) -> None:
        """Log in now when the login may ask for a TOTP code, so that the prompt comes before any spinner."""
        if self.settings.user is None or self.settings.otp is not None or not terminal.stdin_is_terminal():
            return
        # NOTE: the library has no public login call, so the cheapest request that any user may send
        # (the node list) logs in.
        await client.cluster.nodes()

    def _ask_second_factor(self) -> str:
        user = self.settings.user or "the user"
        return terminal.ask_hidden(f"TOTP code for {user} (or recovery:KEY)")

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
        """Return an error message with the next step; it never contains a secret."""
        settings = self._settings
        host = settings.host if settings else "the host"
        if isinstance(exc, AuthenticationError):
            return self._describe_rejected_login(exc, host)

        if isinstance(exc, PermissionDeniedError):
            if settings is not None and settings.user is not None:
                return (
                    f"{exc}; give the user {settings.user} a role with that privilege on that path "
                    "(Datacenter > Permissions)"
                )
            return (
                f"{exc}; give the token {self._token_id()} a role with that privilege on that path "
                "(Datacenter > Permissions); a privilege-separated token needs the role itself"
            )

        # Only a read timeout: a connect timeout (nothing sent yet) is not helped by a longer read.
        if isinstance(exc, PveTimeoutError) and exc.request_sent:
            return (
                f"{exc}. In pvekit, the read timeout is --read-timeout SECONDS "
                "(or PVE_READ_TIMEOUT, or read_timeout in the profile)"
            )

        if isinstance(exc, CertificateFingerprintMismatch):
            return self._describe_changed_certificate(exc, host)
        if isinstance(exc, TLSError):
            return (
                f"{exc}. In pvekit, these are --ca-file PATH and --fingerprint SHA256 (or PVE_CA_FILE, "
                f"PVE_FINGERPRINT), and pvekit trust {host} shows the node's certificate and pins it"
            )

        # An ApiError without a path was raised by pvekit itself (a VM missing from the cluster listing),
        # so the HTTP status in its text would mislead.
        text = exc.message if isinstance(exc, ApiError) and not exc.path else str(exc)
        if isinstance(exc, VmNotFoundError) and exc.node and settings and settings.node == exc.node:
            return f"{text} (the node {exc.node!r} comes from {settings.sources.get('node', 'the settings')})"
        return text

    def _describe_rejected_login(self, exc: AuthenticationError, host: str) -> str:
        from .._ticket import TICKET_PATH

        settings = self._settings
        if settings is None or settings.user is None:
            return (
                f"PVE on {host} rejected the API token {self._token_id()} (HTTP 401); check the token id "
                "and secret, and that the token exists, is enabled and has not expired"
            )
        if isinstance(exc, TwoFactorRequiredError):
            offered = f" (PVE offers: {', '.join(exc.factors)})" if exc.factors else ""
            if settings.otp is not None:
                return (
                    f"a second login of {exc.userid} on {host} needs a second factor{offered}, and the --otp "
                    "code served the first login already; run the command again with a current code, or "
                    "without --otp on a terminal so that pvekit prompts for each code"
                )
            return (
                f"the login of {exc.userid} on {host} needs a second factor{offered}, and standard input is not "
                "a terminal to ask for it; pass --otp CODE with the current TOTP code, which is valid for about "
                "30 seconds, or --otp recovery:KEY. An API token needs no second factor"
            )
        if exc.path == TICKET_PATH:
            sources = settings.sources
            origin = f"user from {sources.get('user')}, password from {sources.get('password')}"
            return f"{exc.message} ({origin})"
        return f"{exc} (HTTP 401 for the user {settings.user})"

    def _describe_changed_certificate(self, exc: CertificateFingerprintMismatch, host: str) -> str:
        settings = self._settings
        trusted = " or ".join(exc.expected)
        source = settings.sources.get("fingerprint", "") if settings else ""
        if source.startswith("profile "):
            option = f"--profile {settings.profile} " if settings and settings.profile_named else ""
            update = f"run: pvekit {option}trust {host}"
        else:
            update = f"update {source or 'the pinned fingerprint'}"
        return (
            f"the certificate of {host} changed since it was trusted, so pvekit sent no request.\n"
            f"  trusted:    {trusted}\n"
            f"  presented:  {exc.presented}\n"
            "It was renewed, or someone between this host and the node presents their own certificate. "
            f"Check the fingerprint under Node > System > Certificates in the PVE web interface (or "
            f"`pvenode cert info` on the node). Only when it matches the presented one, {update}"
        )

    def _token_id(self) -> str:
        from .._auth import ApiToken

        settings = self._settings
        if settings is None or settings.token is None:
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


def _read_stdin() -> str:
    return sys.stdin.read()


pass_app = click.make_pass_decorator(App)
