"""Writing a pinned certificate fingerprint into a profile of the config file, for ``pvekit trust``.

The file is edited with tomlkit, which keeps the comments, order and layout of what the user wrote. It is
replaced in one step (a temporary file in the same directory, then a rename), so a failure leaves the old
file whole. A new file gets mode 0600, and an existing one keeps its mode.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import ConfigError

if TYPE_CHECKING:
    from tomlkit import TOMLDocument

NEW_FILE_MODE = 0o600
NEW_DIRECTORY_MODE = 0o700


def store_fingerprint(
    path: Path, profile: str, fingerprint: str, *, host: str | None = None, drop_verify: bool = False
) -> Path:
    """Set ``fingerprint`` in ``[profiles.PROFILE]`` of the config file and return the file written.

    Creates the file, the ``profiles`` table and the profile when they are missing, and keeps every other
    profile and key. ``host`` is written too when given. ``drop_verify`` removes ``verify``, which a pin
    replaces. A symbolic link is followed, so the file it points to is updated.

    Raises:
        ConfigError: the file cannot be read, parsed or written, or ``profiles`` is not a table.
    """
    target = path.resolve()
    document, mode = _read_document(target)

    profiles = document.get("profiles")
    if profiles is None:
        profiles = _tomlkit().table(is_super_table=True)
        document["profiles"] = profiles
    elif not isinstance(profiles, dict):
        raise ConfigError(f"'profiles' in {target} must be a table of [profiles.NAME] tables")

    table = profiles.get(profile)
    if table is None:
        table = _tomlkit().table()
        profiles[profile] = table
    elif not isinstance(table, dict):
        raise ConfigError(f"profile {profile!r} in {target} must be a table: [profiles.{profile}]")

    if host is not None:
        table["host"] = host
    table["fingerprint"] = fingerprint
    if drop_verify and "verify" in table:
        del table["verify"]

    _write_replacing(target, _tomlkit().dumps(document), mode)
    return target


def _tomlkit() -> Any:
    try:
        import tomlkit
    except ImportError:
        raise ConfigError(
            "writing the config file needs tomlkit, which comes with the cli extra: pip install 'pvekit[cli]'"
        ) from None
    return tomlkit


def _read_document(path: Path) -> tuple[TOMLDocument, int]:
    """Parse the file, or start an empty document; return it with the mode the written file gets."""
    tomlkit = _tomlkit()
    try:
        text = path.read_text(encoding="utf-8")
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return tomlkit.document(), NEW_FILE_MODE
    except UnicodeDecodeError:
        raise ConfigError(f"the config file {path} is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc.strerror}") from None

    try:
        document: TOMLDocument = tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as exc:
        raise ConfigError(f"the config file {path} is not valid TOML: {exc}") from None
    return document, mode


def _write_replacing(path: Path, text: str, mode: int) -> None:
    """Write ``text`` to a new file beside ``path`` with ``mode``, then rename it over ``path``."""
    try:
        path.parent.mkdir(mode=NEW_DIRECTORY_MODE, parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise ConfigError(f"cannot write the config file {path}: {exc.strerror}") from None

    try:
        # mkstemp creates the file with mode 0600, so no other user can read it while it is written.
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise ConfigError(f"cannot write the config file {path}: {exc.strerror}") from None
