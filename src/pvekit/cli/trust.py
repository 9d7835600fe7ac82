"""``pvekit trust``: show a node's certificate and pin its fingerprint in a profile, as SSH's known hosts.

Reading the certificate takes a TCP connection and a TLS handshake, with no HTTP request and no
credentials. The fingerprint is stored only after a person confirms it, or with ``--yes``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .._exceptions import InvalidInputError, TLSError
from .._tls import format_fingerprint, normalize_fingerprint
from . import terminal
from .app import EXIT_CODES_SHORT_HELP, App, ExitCode, abort, pass_app
from .config import FALSE_WORDS, ConfigError, config_path, load_profile, selected_profile, split_fingerprints
from .output import echo_json, iso_time
from .pins import store_fingerprint

if TYPE_CHECKING:
    from .._certificate import CertificateInfo
    from .._connection import Endpoint

# Seconds for connecting and for the TLS handshake; the library's default for fetch_certificate.
DEFAULT_TIMEOUT_SECONDS = 10.0

# The places in PVE that show a node's certificate fingerprint, for the person who compares it.
WHERE_PVE_SHOWS_IT = (
    "Node > System > Certificates in the PVE web interface, or `pvenode cert info` on the node (Fingerprint (sha256))"
)


@dataclass(frozen=True)
class TrustTarget:
    """Host to trust, the profile that gets its pin, and that profile's current keys and pins."""

    host: str
    profile: str
    profile_named: bool
    config_file: Path
    # The profile's keys as the config file has them; empty when the profile does not exist yet.
    current: dict[str, Any]
    # Pins that the profile contains now, as 64 lower-case hex digits.
    pins: tuple[str, ...]

    @property
    def command(self) -> str:
        """The command a user runs to trust this host again into the same profile."""
        option = f"--profile {self.profile} " if self.profile_named else ""
        return f"pvekit {option}trust {self.host}"


@click.command(epilog=EXIT_CODES_SHORT_HELP)
@click.argument("host", required=False, metavar="[HOST]")
@click.option(
    "--yes",
    "-y",
    is_flag=True,
    help="Store the fingerprint without asking, even when it replaces a different one. Compare it with "
    "the one PVE shows first.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_TIMEOUT_SECONDS,
    show_default=True,
    metavar="SECONDS",
    help="Seconds for connecting and for the TLS handshake.",
)
@click.option(
    "--output",
    "-o",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="json prints the certificate and the outcome as one object; the details for checking it and the "
    "question go to standard error.",
)
@pass_app
def trust(app: App, host: str | None, yes: bool, timeout: float, output: str) -> None:
    """Pin a node's certificate after showing it.

    pvekit connects without sending credentials, shows the certificate's subject, issuer, validity and
    SHA-256 fingerprint, and prompts for whether to trust it. Compare the fingerprint with the one under Node >
    System > Certificates in the PVE web interface (or `pvenode cert info` on the node) before you answer.
    pvekit then stores it as the fingerprint of the profile (--profile, PVEKIT_PROFILE or default) in the
    config file, and writes HOST as the profile's host when the profile has none. From then on, commands
    with that profile accept only this certificate, and stop with exit status 4 when the node presents
    another one.

    HOST defaults to --host, PVE_HOST or the profile's host. When the profile already pins a different
    fingerprint, pvekit says that the certificate changed, shows both fingerprints, and asks before
    replacing the pin. Without a terminal to ask on, pass --yes. A fingerprint that is not confirmed is not
    stored, and the exit status is 1.

    \b
    Examples:
      pvekit trust pve1.example.com
      pvekit --profile lab trust pve-lab.example.com:8006
      pvekit trust pve1.example.com --yes -o json
    """
    from .._certificate import fetch_certificate

    target = _target(app, host)
    details_to_stderr = output == "json"
    try:
        info = fetch_certificate(target.host, timeout)
    except TLSError as exc:
        abort(str(exc), ExitCode.CONNECTION)
    except InvalidInputError as exc:
        abort(f"{exc} (the host {target.host!r})", ExitCode.USAGE)

    presented = normalize_fingerprint(info.fingerprint_sha256)
    now = datetime.now(timezone.utc)
    for line in describe_certificate(info, target.host, now):
        click.echo(line, err=details_to_stderr)
    for line in certificate_advice(info, now):
        click.echo(line, err=True)

    already = presented in target.pins
    changed = bool(target.pins) and not already
    if already:
        click.echo(
            f"This certificate is already trusted in profile {target.profile!r} of {target.config_file}.", err=True
        )
    else:
        if changed:
            click.echo("\n".join(changed_warning(target, info)), err=True)
        _confirm_or_abort(target, changed=changed, yes=yes)
        _store(app, target, info)

    if output == "json":
        echo_json(_trust_json(info, target, now, already_trusted=already, changed=changed))


def describe_certificate(info: CertificateInfo, host: str, now: datetime) -> list[str]:
    """Return the lines that show a certificate to a person deciding whether to trust it."""
    issuer = f"{info.issuer} (self-signed)" if info.self_signed else info.issuer
    lines = [
        f"Certificate of {host}:",
        f"  subject:      {info.subject}",
        f"  issuer:       {issuer}",
        f"  valid from:   {_utc(info.not_before)}",
        f"  valid until:  {_utc(info.not_after)}{_validity_note(info, now)}",
    ]
    if info.subject_alt_names:
        lines.append(f"  names:        {', '.join(info.subject_alt_names)}")
    lines.append(f"  SHA-256:      {info.fingerprint_sha256}")
    return lines


def certificate_advice(info: CertificateInfo, now: datetime) -> list[str]:
    """Return what to check before trusting the certificate, with a warning when it is outside its validity."""
    lines = [f"Compare the SHA-256 fingerprint with the one shown under {WHERE_PVE_SHOWS_IT}."]
    if info.not_after < now:
        lines.append(
            "Warning: this certificate has expired. A pin accepts it all the same, so renew the certificate "
            "on the node first and trust the new one."
        )
    elif info.not_before > now:
        lines.append("Warning: this certificate is not valid yet; check the clocks of this host and the node.")
    return lines


def changed_warning(target: TrustTarget, info: CertificateInfo) -> list[str]:
    """Return the warning shown when the profile pins a different fingerprint than the node presents."""
    trusted = " or ".join(format_fingerprint(pin) for pin in target.pins)
    return [
        f"Warning: the certificate of {target.host} changed since it was trusted in profile {target.profile!r}.",
        f"  trusted:    {trusted}",
        f"  presented:  {info.fingerprint_sha256}",
        "It was renewed, or someone between this host and the node presents their own certificate. Replace the "
        "pin only when the presented fingerprint is the one PVE shows.",
    ]


def _target(app: App, host: str | None) -> TrustTarget:
    flags, environ = app.flags, app.environ
    path = config_path(environ)
    profile, named = selected_profile(flags, environ)
    try:
        current = load_profile(path, profile, required=False)
        stored = current.get("fingerprint")
        stored_pins = tuple(normalize_fingerprint(pin) for pin in split_fingerprints(stored)) if stored else ()
    except ConfigError as exc:
        abort(str(exc), ExitCode.USAGE)
    except InvalidInputError as exc:
        abort(f"{exc} (the fingerprint of profile {profile!r} in {path})", ExitCode.USAGE)

    chosen = host or flags.host or environ.get("PVE_HOST") or current.get("host")
    if not chosen or not str(chosen).strip():
        abort("no host given; pass it as in pvekit trust pve1.example.com", ExitCode.USAGE)
    chosen = str(chosen).strip()
    endpoint = _endpoint(chosen)

    profile_host = current.get("host")
    if profile_host and _endpoint(str(profile_host)) != endpoint:
        abort(
            f"profile {profile!r} in {path} connects to {profile_host}, not {chosen}; a pin belongs to one "
            f"node, so store it in a profile of its own: pvekit --profile NAME trust {chosen}",
            ExitCode.USAGE,
        )
    if current.get("ca_file"):
        abort(
            f"profile {profile!r} in {path} verifies the node with ca_file, and a pin replaces that check; "
            "remove ca_file from the profile first if the pin should take its place",
            ExitCode.USAGE,
        )
    return TrustTarget(chosen, profile, named, path, current, stored_pins)


def _endpoint(host: str) -> Endpoint:
    from .._connection import parse_host

    try:
        return parse_host(host)
    except InvalidInputError as exc:
        abort(str(exc), ExitCode.USAGE)


def _confirm_or_abort(target: TrustTarget, *, changed: bool, yes: bool) -> None:
    if yes:
        return
    if not terminal.stdin_is_terminal():
        abort(
            "the fingerprint was not stored because standard input is not a terminal to ask on; compare it "
            f"with the one PVE shows, then run {target.command} --yes",
            ExitCode.FAILED,
        )
    question = (
        f"Replace the trusted fingerprint in profile {target.profile!r}?"
        if changed
        else f"Trust this certificate for profile {target.profile!r} in {target.config_file}?"
    )
    if not terminal.confirm(question):
        abort("the fingerprint was not stored; the config file is unchanged", ExitCode.FAILED)


def _store(app: App, target: TrustTarget, info: CertificateInfo) -> None:
    new_host = None if target.current.get("host") else target.host
    drop_verify = target.current.get("verify") is False
    try:
        written = store_fingerprint(
            target.config_file, target.profile, info.fingerprint_sha256, host=new_host, drop_verify=drop_verify
        )
    except ConfigError as exc:
        abort(str(exc), ExitCode.USAGE)

    notes = []
    if new_host is not None:
        notes.append(f"host = {new_host!r}")
    if drop_verify:
        notes.append("removed verify = false, which the pin replaces")
    extra = f" ({'; '.join(notes)})" if notes else ""
    click.echo(f"Stored the fingerprint in profile {target.profile!r} of {written}{extra}.", err=True)
    overriding = [name for name in ("PVE_FINGERPRINT", "PVE_CA_FILE") if app.environ.get(name)]
    if app.environ.get("PVE_VERIFY", "").strip().lower() in FALSE_WORDS:
        overriding.append("PVE_VERIFY")
    if overriding:
        app.warn(
            f"the environment sets {', '.join(overriding)}; settings from the environment take precedence over "
            "the profile's pin"
        )


def _trust_json(
    info: CertificateInfo, target: TrustTarget, now: datetime, *, already_trusted: bool, changed: bool
) -> dict[str, Any]:
    return {
        "host": target.host,
        "profile": target.profile,
        "config_file": str(target.config_file),
        "subject": info.subject,
        "issuer": info.issuer,
        "self_signed": info.self_signed,
        "not_before": iso_time(info.not_before),
        "not_after": iso_time(info.not_after),
        "expired": info.not_after < now,
        "subject_alt_names": list(info.subject_alt_names),
        "fingerprint_sha256": info.fingerprint_sha256,
        "previously_trusted": [format_fingerprint(pin) for pin in target.pins],
        "already_trusted": already_trusted,
        "stored": not already_trusted,
        "changed": changed,
    }


def _utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _validity_note(info: CertificateInfo, now: datetime) -> str:
    if info.not_after < now:
        return f"  (EXPIRED {_days(now - info.not_after)} ago)"
    if info.not_before > now:
        return "  (NOT VALID YET)"
    return f"  ({_days(info.not_after - now)} left)"


def _days(delta: timedelta) -> str:
    if delta.days < 1:
        return "less than a day"
    return "1 day" if delta.days == 1 else f"{delta.days} days"
