"""Connection settings for the command-line tool: flags, then environment, then a profile in a TOML file.

Each setting is taken from the first of these sources that gives it:

1. command-line flags (``--host``, ``--token``, ``--token-file``, ``--user``, ``--password-file``,
   ``--ca-file``, ``--fingerprint``, ``--insecure``, ``--node``, ``--read-timeout``);
2. environment variables (``PVE_HOST``, ``PVE_TOKEN``, ``PVE_TOKEN_FILE``, ``PVE_USER``,
   ``PVE_PASSWORD_FILE``, ``PVE_PASSWORD``, ``PVE_CA_FILE``, ``PVE_FINGERPRINT``, ``PVE_VERIFY``,
   ``PVE_NODE``, ``PVE_READ_TIMEOUT``);
3. the profile ``[profiles.NAME]`` of ``config.toml`` in the user's config directory, where NAME is
   ``--profile``, ``PVEKIT_PROFILE`` or ``default``.

The credentials are an API token or a user with a password. The first level that gives ``token``,
``token_file`` or ``user`` decides which, and a token and a user at the same level are an error.

Settings remember where they came from, so an error can name the flag, variable or file to fix.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._exceptions import InvalidInputError

CONFIG_FILE_NAME = "config.toml"
DEFAULT_PROFILE = "default"
PROFILE_KEYS = (
    "host",
    "token",
    "token_file",
    "user",
    "password_file",
    "ca_file",
    "verify",
    "node",
    "fingerprint",
    "read_timeout",
)
# Source label of a password typed at pvekit's prompt on the terminal.
PROMPT_SOURCE = "the password prompt"
# Values of PVE_VERIFY that turn certificate verification off, and those that keep it on.
FALSE_WORDS = frozenset({"0", "false", "no", "off"})
_TRUE_WORDS = frozenset({"1", "true", "yes", "on"})


class ConfigError(Exception):
    """A connection setting is missing or invalid; the message names its source and the fix."""


@dataclass(frozen=True)
class ConnectionFlags:
    """The connection options given on the command line; None where a flag was not given."""

    host: str | None = None
    token: str | None = field(default=None, repr=False)
    token_file: str | None = None
    user: str | None = None
    password_file: str | None = None
    otp: str | None = field(default=None, repr=False)
    ca_file: str | None = None
    fingerprints: tuple[str, ...] = ()
    insecure: bool = False
    node: str | None = None
    profile: str | None = None
    read_timeout: float | None = None


@dataclass(frozen=True)
class Settings:
    """Resolved connection settings; ``sources`` maps each setting's name to where it came from.

    Either ``token`` is set, or ``user`` and ``password`` are (with ``otp`` when given).
    """

    host: str
    token: str | None = field(repr=False)
    verify: bool
    ca_file: str | None
    node: str | None
    # SHA-256 fingerprints of the node's certificate that are pinned in place of CA verification.
    fingerprints: tuple[str, ...]
    sources: Mapping[str, str]
    # The profile of the config file that was read, and whether --profile or PVEKIT_PROFILE named it.
    profile: str = DEFAULT_PROFILE
    profile_named: bool = False
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    # The one-time code from --otp, for the first login that requests a second factor.
    otp: str | None = field(default=None, repr=False)
    # Seconds to wait for each response; None keeps the library's default.
    read_timeout: float | None = None


def config_path(environ: Mapping[str, str]) -> Path:
    """Return the config file's path: ``$XDG_CONFIG_HOME/pvekit/config.toml``, else ``~/.config/pvekit/...``."""
    base = environ.get("XDG_CONFIG_HOME", "")
    # The XDG base directory specification treats a relative path as invalid, to be ignored.
    directory = Path(base) if base and os.path.isabs(base) else Path.home() / ".config"
    return directory / "pvekit" / CONFIG_FILE_NAME


def selected_profile(flags: ConnectionFlags, environ: Mapping[str, str]) -> tuple[str, bool]:
    """Return the name of the profile to read, and whether ``--profile`` or ``PVEKIT_PROFILE`` named it."""
    named = flags.profile or environ.get("PVEKIT_PROFILE")
    return named or DEFAULT_PROFILE, bool(named)


def load_profile(path: Path, name: str, *, required: bool) -> dict[str, Any]:
    """Read the table ``[profiles.NAME]`` of the config file; an empty dict when absent and not required.

    Raises:
        ConfigError: the file is not valid TOML, the profile is missing while ``required``, or a key or
            value in the profile is invalid.
    """
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        if required:
            raise ConfigError(
                f"profile {name!r} not found: the config file {path} does not exist; "
                f"create it with a [profiles.{name}] table"
            ) from None
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc.strerror}") from None

    document = _parse_toml(content, path)
    profiles = document.get("profiles", {})
    if not isinstance(profiles, dict):
        raise ConfigError(f"'profiles' in {path} must be a table of [profiles.NAME] tables")
    profile = profiles.get(name)
    if profile is None:
        if required:
            known = ", ".join(sorted(profiles)) or "none"
            raise ConfigError(f"profile {name!r} not found in {path}; profiles there: {known}")
        return {}
    if not isinstance(profile, dict):
        raise ConfigError(f"profile {name!r} in {path} must be a table: [profiles.{name}]")

    unknown = sorted(set(profile) - set(PROFILE_KEYS))
    if unknown:
        raise ConfigError(
            f"profile {name!r} in {path} has unknown key {unknown[0]!r}; valid keys: {', '.join(PROFILE_KEYS)}"
        )
    for key, value in profile.items():
        if key == "verify":
            valid, kind = isinstance(value, bool), "true or false"
        elif key == "fingerprint":
            valid = isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))
            kind = "a string or a list of strings"
        elif key == "read_timeout":
            valid = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
            kind = "a positive number of seconds"
        else:
            valid, kind = isinstance(value, str), "a string"
        if not valid:
            raise ConfigError(f"{key} in profile {name!r} of {path} must be {kind}")
    return dict(profile)


def _parse_toml(content: bytes, path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python 3.10 only
        import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

    try:
        text = content.decode("utf-8")
        document: dict[str, Any] = tomllib.loads(text)
    except UnicodeDecodeError:
        raise ConfigError(f"the config file {path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"the config file {path} is not valid TOML: {exc}") from None
    return document


# One source of settings: the label of each setting (a flag, variable or profile) and its value.
Level = tuple[dict[str, str], dict[str, Any]]


def resolve_settings(
    flags: ConnectionFlags,
    environ: Mapping[str, str],
    *,
    read_stdin: Callable[[], str],
    warn: Callable[[str], None],
    prompt: Callable[[str], str] | None = None,
) -> Settings:
    """Combine flags, environment and profile into the settings of one connection.

    ``read_stdin`` returns all of standard input, for a token or password file ``-``. ``prompt`` reads
    hidden input from the terminal after showing its label, and is None when standard input is not a
    terminal. ``warn`` prints a warning.

    Raises:
        ConfigError: a setting is missing or invalid, or a token or password file cannot be read.
    """
    path = config_path(environ)
    profile_name, named = selected_profile(flags, environ)
    profile = load_profile(path, profile_name, required=named)
    profile_source = f"profile {profile_name!r} in {path}"
    # Highest priority first: the first level that gives a setting wins.
    levels: list[Level] = [
        _flag_level(flags),
        _environment_level(environ),
        (dict.fromkeys(profile, profile_source), profile),
    ]
    sources: dict[str, str] = {}

    host_entry = _pick(levels, "host")
    if host_entry is None or not str(host_entry[1]).strip():
        raise ConfigError(
            "no PVE host given; pass --host pve1.example.com, set PVE_HOST, "
            f"or add host to [profiles.{profile_name}] in {path}"
        )
    sources["host"] = host_entry[2]

    credentials = _resolve_credentials(levels, flags, path, profile_name, sources, read_stdin=read_stdin, prompt=prompt)
    if sources.get("token") == profile_source and credentials.entry_key == "token":
        _warn_if_readable_by_others(path, warn)
    if credentials.password_file is not None:
        _warn_if_readable_by_others(credentials.password_file, warn, what="a password")

    verify, ca_file, fingerprints = _resolve_tls(levels, sources)

    node_entry = _pick(levels, "node")
    if node_entry is not None:
        sources["node"] = node_entry[2]
    timeout_entry = _pick(levels, "read_timeout")
    if timeout_entry is not None:
        sources["read_timeout"] = timeout_entry[2]

    return Settings(
        host=str(host_entry[1]).strip(),
        token=credentials.token,
        verify=verify,
        ca_file=ca_file,
        node=str(node_entry[1]) if node_entry else None,
        fingerprints=fingerprints,
        sources=sources,
        profile=profile_name,
        profile_named=named,
        user=credentials.user,
        password=credentials.password,
        otp=flags.otp,
        read_timeout=float(timeout_entry[1]) if timeout_entry else None,
    )


@dataclass(frozen=True)
class _Credentials:
    """An API token, or a user and password, with the key and file they were read from."""

    token: str | None = field(default=None, repr=False)
    entry_key: str | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    password_file: Path | None = None


def _resolve_credentials(
    levels: list[Level],
    flags: ConnectionFlags,
    config_file: Path,
    profile_name: str,
    sources: dict[str, str],
    *,
    read_stdin: Callable[[], str],
    prompt: Callable[[str], str] | None,
) -> _Credentials:
    """Pick the API token or the user of the first level that gives one, and read the token or password."""
    where = f"[profiles.{profile_name}] in {config_file}"
    for labels, values in levels:
        if values.get("user") is None:
            continue
        for token_key in ("token", "token_file"):
            if values.get(token_key) is None:
                continue
            token_label, user_label = labels[token_key], labels["user"]
            # A profile labels every key with the same source, so the message names the keys instead.
            if token_label == user_label:
                both = f"{token_key} and user in {token_label}"
            else:
                both = f"{token_label} and {user_label}"
            raise ConfigError(
                f"{both} exclude each other: an API token needs no user and password; give only one of them"
            )

    entry = _pick(levels, "token", "token_file", "user")
    if entry is None:
        raise ConfigError(
            "no credentials given; pass --token-file PATH (or - for standard input) for an API token, or "
            "--user NAME@REALM to log in with a password. They can also come from PVE_TOKEN, PVE_TOKEN_FILE "
            f"or PVE_USER, or from token_file or user in {where}"
        )
    key, value, source = entry

    if key != "user":
        for flag, given in (("--password-file", flags.password_file), ("--otp", flags.otp)):
            if given is not None:
                raise ConfigError(
                    f"{flag} is for a login with user and password, but the API token from {source} is used; "
                    "pass --user NAME@REALM too, or leave out " + flag
                )
        sources["token"] = source
        return _Credentials(token=_read_token(entry, config_file.parent, read_stdin, prompt), entry_key=key)

    user = _check_user(str(value), source)
    sources["user"] = source
    password, password_file = _read_password(
        levels, user, config_file, where, sources, read_stdin=read_stdin, prompt=prompt
    )
    return _Credentials(user=user, password=password, password_file=password_file)


def _check_user(text: str, source: str) -> str:
    """Return the user as given; reject an API token id and a malformed user@realm."""
    from .._ticket import login_userid

    user = text.strip()
    if "!" in user:
        # Only what precedes '!' is shown: a whole token string would carry its secret.
        owner = user.partition("!")[0]
        raise ConfigError(
            f"the user {owner + '!...'!r} from {source} is an API token id; pass the token with --token-file "
            "or PVE_TOKEN instead, which needs no password"
        )
    try:
        login_userid(user)
    except InvalidInputError as exc:
        raise ConfigError(f"{exc} (from {source})") from None
    return user


def _read_password(
    levels: list[Level],
    user: str,
    config_file: Path,
    where: str,
    sources: dict[str, str],
    *,
    read_stdin: Callable[[], str],
    prompt: Callable[[str], str] | None,
) -> tuple[str, Path | None]:
    """Return the password of ``user`` and the file it came from (None for a variable, stdin or the prompt)."""
    from .._ticket import login_userid

    userid = login_userid(user)
    entry = _pick(levels, "password_file", "password")
    if entry is None:
        if prompt is None:
            raise ConfigError(
                f"no password given for {userid}, and standard input is not a terminal to ask for it; pass "
                "--password-file PATH (or - for standard input), set PVE_PASSWORD_FILE or PVE_PASSWORD, "
                f"or add password_file to {where}"
            )
        sources["password"] = PROMPT_SOURCE
        return _non_empty_password(prompt(f"Password for {userid}"), PROMPT_SOURCE), None

    key, value, source = entry
    sources["password"] = source
    if key == "password":
        return _non_empty_password(str(value), source), None
    if value == "-":
        if prompt is not None:
            return _non_empty_password(prompt(f"Password for {userid}"), f"the password prompt (from {source})"), None
        return _non_empty_password(_first_line(read_stdin()), f"standard input (from {source})"), None

    path = Path(os.path.expanduser(str(value)))
    if not path.is_absolute() and source.startswith("profile "):
        # A relative password_file in the config file is relative to that file's directory.
        path = config_file.parent / path
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the password file {path} (from {source}): {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"the password file {path} (from {source}) is not UTF-8 text") from None
    return _non_empty_password(_first_line(text), f"the password file {path} (from {source})"), path


def _first_line(text: str) -> str:
    """Return the first line without its line break; spaces are part of a password and stay."""
    return text.split("\n", 1)[0].removesuffix("\r")


def _non_empty_password(password: str, where: str) -> str:
    if not password:
        raise ConfigError(f"the password from {where} is empty")
    return password


def _pick(levels: list[Level], *keys: str) -> tuple[str, Any, str] | None:
    """Return (key, value, source) of the first level that gives one of ``keys``; two at one level are an error."""
    for labels, values in levels:
        given = [key for key in keys if values.get(key) is not None]
        if len(given) > 1:
            raise ConfigError(f"{labels[given[0]]} and {labels[given[1]]} exclude each other; give only one")
        if given:
            return given[0], values[given[0]], labels[given[0]]
    return None


def _read_token(
    entry: tuple[str, Any, str],
    config_dir: Path,
    read_stdin: Callable[[], str],
    prompt: Callable[[str], str] | None,
) -> str:
    key, value, source = entry
    if key == "token_file":
        return _read_token_file(str(value), source, config_dir, read_stdin, prompt)
    token = str(value).strip()
    if not token:
        raise ConfigError(f"the API token from {source} is empty")
    return token


def _flag_level(flags: ConnectionFlags) -> Level:
    values: dict[str, Any] = {
        "host": flags.host,
        "token": flags.token,
        "token_file": flags.token_file,
        "user": flags.user,
        "password_file": flags.password_file,
        "ca_file": flags.ca_file,
        "fingerprint": list(flags.fingerprints) or None,
        "verify": False if flags.insecure else None,
        "node": flags.node,
        "read_timeout": flags.read_timeout,
    }
    labels = {
        "host": "--host",
        "token": "--token",
        "token_file": "--token-file",
        "user": "--user",
        "password_file": "--password-file",
        "ca_file": "--ca-file",
        "fingerprint": "--fingerprint",
        "verify": "--insecure",
        "node": "--node",
        "read_timeout": "--read-timeout",
    }
    return labels, values


def _environment_level(environ: Mapping[str, str]) -> Level:
    names = {
        "host": "PVE_HOST",
        "token": "PVE_TOKEN",
        "token_file": "PVE_TOKEN_FILE",
        "user": "PVE_USER",
        "password_file": "PVE_PASSWORD_FILE",
        "password": "PVE_PASSWORD",
        "ca_file": "PVE_CA_FILE",
        "verify": "PVE_VERIFY",
        "node": "PVE_NODE",
        "fingerprint": "PVE_FINGERPRINT",
        "read_timeout": "PVE_READ_TIMEOUT",
    }
    # An empty variable counts as unset, as in most shells' ${VAR:-default}.
    values: dict[str, Any] = {key: environ.get(name) or None for key, name in names.items()}
    if values["verify"] is not None:
        values["verify"] = _parse_verify(values["verify"])
    if values["read_timeout"] is not None:
        values["read_timeout"] = _parse_seconds(values["read_timeout"], "PVE_READ_TIMEOUT")
    return names, values


def _parse_seconds(text: str, name: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0 or seconds == float("inf"):
        raise ConfigError(f"{name}={text!r} is invalid; use a positive number of seconds, such as 60")
    return seconds


def _parse_verify(text: str) -> bool:
    word = text.strip().lower()
    if word in FALSE_WORDS:
        return False
    if word in _TRUE_WORDS:
        return True
    raise ConfigError(f"PVE_VERIFY={text!r} is invalid; use 0 or false to turn verification off, 1 or true to keep it")


def _resolve_tls(levels: list[Level], sources: dict[str, str]) -> tuple[bool, str | None, tuple[str, ...]]:
    """Return (verify, ca_file, fingerprints).

    Turning verification off, a CA file and pinned fingerprints exclude each other. The one given at the
    highest level wins, and two of them at the same level are an error. ``verify`` true only confirms the
    default.
    """
    found: dict[str, tuple[int, Any, str]] = {}
    for rank, (labels, values) in enumerate(levels):
        if "insecure" not in found and values.get("verify") is False:
            found["insecure"] = (rank, False, labels["verify"])
        for key in ("ca_file", "fingerprint"):
            if key not in found and values.get(key):
                found[key] = (rank, values[key], labels[key])
    for labels, values in levels:
        if values.get("verify") is True:
            sources["verify"] = labels["verify"]
            break

    if not found:
        return True, None, ()
    best = min(rank for rank, _, _ in found.values())
    winners = [key for key, (rank, _, _) in found.items() if rank == best]
    if len(winners) > 1:
        first, second = (found[key][2] for key in winners[:2])
        raise ConfigError(
            f"{first} and {second} exclude each other: verification is either off, against a CA file, "
            "or against pinned fingerprints; drop one of them"
        )

    mode = winners[0]
    _, value, source = found[mode]
    if mode == "insecure":
        sources["verify"] = source
        return False, None, ()
    if mode == "ca_file":
        sources["ca_file"] = source
        return True, os.path.expanduser(str(value)), ()
    sources["fingerprint"] = source
    return True, None, split_fingerprints(value)


def split_fingerprints(value: Any) -> tuple[str, ...]:
    """Split fingerprints given as a list, or as text separated by commas or white space (for rotation)."""
    entries = value if isinstance(value, list) else str(value).replace(",", " ").split()
    return tuple(str(entry).strip() for entry in entries if str(entry).strip())


def _read_token_file(
    name: str, source: str, config_dir: Path, read_stdin: Callable[[], str], prompt: Callable[[str], str] | None
) -> str:
    if name == "-":
        text = prompt("API token") if prompt is not None else read_stdin()
        where = "standard input"
    else:
        path = Path(os.path.expanduser(name))
        if not path.is_absolute() and source.startswith("profile "):
            # A relative token_file in the config file is relative to that file's directory.
            path = config_dir / path
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read the token file {path} (from {source}): {exc.strerror}") from None
        where = f"the token file {path}"
    token = text.strip()
    if not token:
        raise ConfigError(f"{where} (from {source}) contains no API token; expected user@realm!tokenid=secret")
    return token


def _warn_if_readable_by_others(path: Path, warn: Callable[[str], None], *, what: str = "an API token") -> None:
    if os.name != "posix":
        return
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if not mode & (stat.S_IRGRP | stat.S_IROTH):
        return
    advice = f"run chmod 600 {path}"
    if what == "an API token":
        advice += ", or move the token to a token_file"
    warn(f"{path} contains {what} and other users can read it; {advice}")
