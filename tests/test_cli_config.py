"""Tests of the command-line settings: flags, then environment, then a profile of the TOML config file."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from pvekit.cli.config import ConfigError, ConnectionFlags, Settings, config_path, resolve_settings

TOKEN = "automation@pve!ci=00000000-0000-0000-0000-00000000c0de"
OTHER_TOKEN = "other@pve!ci=00000000-0000-0000-0000-00000000beef"
FINGERPRINT = ":".join(["AB"] * 32)


def resolve(
    flags: ConnectionFlags | None = None,
    environ: dict[str, str] | None = None,
    *,
    home: Path,
    stdin: str = "",
    prompt: Callable[[str], str] | None = None,
) -> tuple[Settings, list[str]]:
    """Resolve settings with the config directory ``home/pvekit``; return them with the warnings printed."""
    warnings: list[str] = []
    env = {"XDG_CONFIG_HOME": str(home), **(environ or {})}
    settings = resolve_settings(
        flags or ConnectionFlags(), env, read_stdin=lambda: stdin, warn=warnings.append, prompt=prompt
    )
    return settings, warnings


def write_config(home: Path, text: str, mode: int = 0o600) -> Path:
    path = home / "pvekit" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    os.chmod(path, mode)
    return path


def test_config_path_follows_xdg_config_home(tmp_path: Path) -> None:
    assert config_path({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "pvekit" / "config.toml"


def test_config_path_ignores_relative_xdg() -> None:
    expected = Path.home() / ".config" / "pvekit" / "config.toml"
    assert config_path({"XDG_CONFIG_HOME": "relative/dir"}) == expected
    assert config_path({}) == expected


def test_flags_win_over_environment_and_profile(tmp_path: Path) -> None:
    write_config(tmp_path, f'[profiles.default]\nhost = "pve3.example.com"\ntoken = "{OTHER_TOKEN}"\nnode = "pve3"\n')
    flags = ConnectionFlags(host="pve1.example.com", token=TOKEN, node="pve1")
    env = {"PVE_HOST": "pve2.example.com", "PVE_TOKEN": OTHER_TOKEN, "PVE_NODE": "pve2"}

    settings, _ = resolve(flags, env, home=tmp_path)

    assert settings.host == "pve1.example.com"
    assert settings.token == TOKEN
    assert settings.node == "pve1"
    assert settings.sources["host"] == "--host"
    assert settings.sources["token"] == "--token"


def test_environment_wins_over_profile(tmp_path: Path) -> None:
    write_config(tmp_path, f'[profiles.default]\nhost = "pve3.example.com"\ntoken = "{OTHER_TOKEN}"\n')

    settings, _ = resolve(environ={"PVE_HOST": "pve2.example.com", "PVE_TOKEN": TOKEN}, home=tmp_path)

    assert settings.host == "pve2.example.com"
    assert settings.token == TOKEN
    assert settings.sources["host"] == "PVE_HOST"


def test_default_profile_fills_in_missing_settings(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        f'[profiles.default]\nhost = "pve1.example.com:8006"\ntoken = "{TOKEN}"\nca_file = "/etc/pvekit/ca.pem"\n'
        'node = "pve1"\n',
    )

    settings, _ = resolve(home=tmp_path)

    assert settings.host == "pve1.example.com:8006"
    assert settings.token == TOKEN
    assert settings.ca_file == "/etc/pvekit/ca.pem"
    assert settings.verify is True
    assert settings.node == "pve1"
    assert settings.sources["host"] == f"profile 'default' in {path}"


def test_named_profile_from_flag_or_environment(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        f'[profiles.default]\nhost = "pve1.example.com"\ntoken = "{TOKEN}"\n'
        f'[profiles.lab]\nhost = "lab.example.com"\ntoken = "{OTHER_TOKEN}"\nverify = false\n',
    )

    by_flag, _ = resolve(ConnectionFlags(profile="lab"), home=tmp_path)
    by_environment, _ = resolve(environ={"PVEKIT_PROFILE": "lab"}, home=tmp_path)

    assert by_flag.host == "lab.example.com"
    assert by_flag.verify is False
    assert by_environment.host == "lab.example.com"


def test_missing_profile_lists_known_ones(tmp_path: Path) -> None:
    write_config(tmp_path, f'[profiles.default]\nhost = "pve1.example.com"\ntoken = "{TOKEN}"\n')

    with pytest.raises(ConfigError, match=r"profile 'prod' not found in .*config.toml; profiles there: default"):
        resolve(ConnectionFlags(profile="prod"), home=tmp_path)


def test_named_profile_without_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"profile 'lab' not found: the config file .* does not exist"):
        resolve(ConnectionFlags(profile="lab"), home=tmp_path)


def test_unknown_profile_key_is_rejected(tmp_path: Path) -> None:
    write_config(tmp_path, '[profiles.default]\nhost = "pve1.example.com"\nhostname = "typo"\n')

    with pytest.raises(ConfigError, match=r"unknown key 'hostname'; valid keys: host, token"):
        resolve(home=tmp_path)


def test_wrongly_typed_profile_value_is_rejected(tmp_path: Path) -> None:
    write_config(tmp_path, '[profiles.default]\nhost = "pve1.example.com"\nverify = "no"\n')

    with pytest.raises(ConfigError, match=r"verify in profile 'default' .* must be true or false"):
        resolve(home=tmp_path)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[profiles.default\nhost = 1\n")

    with pytest.raises(ConfigError, match=rf"the config file {path} is not valid TOML"):
        resolve(home=tmp_path)


def test_missing_host_says_where_to_set_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no PVE host given; pass --host pve1.example.com, set PVE_HOST"):
        resolve(environ={"PVE_TOKEN": TOKEN}, home=tmp_path)


def test_missing_credentials_say_where_to_set_them(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no credentials given; pass --token-file PATH .* or --user NAME@REALM"):
        resolve(environ={"PVE_HOST": "pve1.example.com"}, home=tmp_path)


def test_token_and_token_file_conflict(tmp_path: Path) -> None:
    flags = ConnectionFlags(host="pve1.example.com", token=TOKEN, token_file="token.txt")

    with pytest.raises(ConfigError, match="--token and --token-file exclude each other"):
        resolve(flags, home=tmp_path)


def test_token_file_is_read_and_stripped(tmp_path: Path) -> None:
    token_file = tmp_path / "token.txt"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")

    settings, _ = resolve(ConnectionFlags(host="pve1.example.com", token_file=str(token_file)), home=tmp_path)

    assert settings.token == TOKEN
    assert settings.sources["token"] == "--token-file"


def test_token_file_dash_reads_standard_input(tmp_path: Path) -> None:
    settings, _ = resolve(ConnectionFlags(host="pve1.example.com", token_file="-"), home=tmp_path, stdin=f"{TOKEN}\n")

    assert settings.token == TOKEN


def test_token_file_from_environment(tmp_path: Path) -> None:
    token_file = tmp_path / "token.txt"
    token_file.write_text(TOKEN, encoding="utf-8")

    settings, _ = resolve(environ={"PVE_HOST": "pve1.example.com", "PVE_TOKEN_FILE": str(token_file)}, home=tmp_path)

    assert settings.token == TOKEN


def test_profile_token_file_relative_to_config(tmp_path: Path) -> None:
    write_config(tmp_path, '[profiles.default]\nhost = "pve1.example.com"\ntoken_file = "pve.token"\n')
    (tmp_path / "pvekit" / "pve.token").write_text(TOKEN, encoding="utf-8")

    settings, _ = resolve(home=tmp_path)

    assert settings.token == TOKEN


def test_missing_token_file_names_path_and_source(tmp_path: Path) -> None:
    missing = tmp_path / "absent.token"

    with pytest.raises(ConfigError, match=rf"cannot read the token file {missing} \(from --token-file\)"):
        resolve(ConnectionFlags(host="pve1.example.com", token_file=str(missing)), home=tmp_path)


def test_empty_token_file_is_rejected(tmp_path: Path) -> None:
    token_file = tmp_path / "empty.token"
    token_file.write_text("\n", encoding="utf-8")

    with pytest.raises(ConfigError, match="contains no API token"):
        resolve(ConnectionFlags(host="pve1.example.com", token_file=str(token_file)), home=tmp_path)


def test_token_in_world_readable_config_warns(tmp_path: Path) -> None:
    path = write_config(tmp_path, f'[profiles.default]\nhost = "pve1.example.com"\ntoken = "{TOKEN}"\n', 0o644)

    _, warnings = resolve(home=tmp_path)

    assert len(warnings) == 1
    assert f"chmod 600 {path}" in warnings[0]
    assert "c0de" not in warnings[0]


def test_token_in_private_config_does_not_warn(tmp_path: Path) -> None:
    write_config(tmp_path, f'[profiles.default]\nhost = "pve1.example.com"\ntoken = "{TOKEN}"\n', 0o600)

    _, warnings = resolve(home=tmp_path)

    assert warnings == []


@pytest.mark.parametrize("value", ["0", "false", "FALSE", "no", "off"])
def test_pve_verify_false_words_turn_verification_off(tmp_path: Path, value: str) -> None:
    env = {"PVE_HOST": "pve1.example.com", "PVE_TOKEN": TOKEN, "PVE_VERIFY": value}

    settings, _ = resolve(environ=env, home=tmp_path)

    assert settings.verify is False
    assert settings.sources["verify"] == "PVE_VERIFY"


def test_invalid_pve_verify_is_rejected(tmp_path: Path) -> None:
    env = {"PVE_HOST": "pve1.example.com", "PVE_TOKEN": TOKEN, "PVE_VERIFY": "maybe"}

    with pytest.raises(ConfigError, match=r"PVE_VERIFY='maybe' is invalid"):
        resolve(environ=env, home=tmp_path)


def test_insecure_flag_overrides_ca_file_from_environment(tmp_path: Path) -> None:
    flags = ConnectionFlags(host="pve1.example.com", token=TOKEN, insecure=True)

    settings, _ = resolve(flags, {"PVE_CA_FILE": "/etc/pvekit/ca.pem"}, home=tmp_path)

    assert settings.verify is False
    assert settings.ca_file is None


def test_ca_file_flag_overrides_verify_false_from_profile(tmp_path: Path) -> None:
    write_config(tmp_path, f'[profiles.default]\nhost = "pve1.example.com"\ntoken = "{TOKEN}"\nverify = false\n')

    settings, _ = resolve(ConnectionFlags(ca_file="~/ca.pem"), home=tmp_path)

    assert settings.verify is True
    assert settings.ca_file == os.path.expanduser("~/ca.pem")


def test_ca_file_and_insecure_conflict(tmp_path: Path) -> None:
    flags = ConnectionFlags(host="pve1.example.com", token=TOKEN, ca_file="ca.pem", insecure=True)

    with pytest.raises(ConfigError, match="--insecure and --ca-file exclude each other"):
        resolve(flags, home=tmp_path)


def test_fingerprint_from_environment_replaces_profile_ca_file(tmp_path: Path) -> None:
    write_config(tmp_path, f'[profiles.default]\nhost = "pve1.example.com"\ntoken = "{TOKEN}"\nca_file = "ca.pem"\n')

    settings, _ = resolve(environ={"PVE_FINGERPRINT": FINGERPRINT}, home=tmp_path)

    assert settings.fingerprints == (FINGERPRINT,)
    assert settings.ca_file is None
    assert settings.sources["fingerprint"] == "PVE_FINGERPRINT"


def test_several_fingerprints_for_rotation(tmp_path: Path) -> None:
    second = ":".join(["CD"] * 32)
    env = {"PVE_HOST": "pve1.example.com", "PVE_TOKEN": TOKEN, "PVE_FINGERPRINT": f"{FINGERPRINT}, {second}"}

    settings, _ = resolve(environ=env, home=tmp_path)

    assert settings.fingerprints == (FINGERPRINT, second)


def test_settings_repr_hides_the_token(tmp_path: Path) -> None:
    settings, _ = resolve(ConnectionFlags(host="pve1.example.com", token=TOKEN), home=tmp_path)

    assert "c0de" not in repr(settings)


# ------------------------------------------------------------------ password login


PASSWORD = " spaced pass&word "


def test_password_file_first_line_keeps_spaces(tmp_path: Path) -> None:
    password_file = tmp_path / "pve.password"
    password_file.write_text(f"{PASSWORD}\r\nsecond line\n", encoding="utf-8")
    os.chmod(password_file, 0o600)
    flags = ConnectionFlags(host="pve1.example.com", user="api@pve", password_file=str(password_file))

    settings, warnings = resolve(flags, home=tmp_path)

    assert settings.token is None
    assert settings.user == "api@pve"
    assert settings.password == PASSWORD
    assert settings.sources["password"] == "--password-file"
    assert warnings == []


def test_password_prompt_shows_user(tmp_path: Path) -> None:
    labels: list[str] = []

    def prompt(label: str) -> str:
        labels.append(label)
        return PASSWORD

    settings, _ = resolve(ConnectionFlags(host="pve1.example.com", user="root"), home=tmp_path, prompt=prompt)

    assert labels == ["Password for root@pam"]
    assert settings.password == PASSWORD
    assert settings.sources["password"] == "the password prompt"


def test_password_variable_and_file_conflict(tmp_path: Path) -> None:
    env = {"PVE_HOST": "pve1.example.com", "PVE_USER": "api@pve", "PVE_PASSWORD": "x", "PVE_PASSWORD_FILE": "f"}

    with pytest.raises(ConfigError, match="PVE_PASSWORD_FILE and PVE_PASSWORD exclude each other"):
        resolve(environ=env, home=tmp_path)


def test_empty_password_is_rejected(tmp_path: Path) -> None:
    flags = ConnectionFlags(host="pve1.example.com", user="api@pve", password_file="-")

    with pytest.raises(ConfigError, match=r"the password from standard input \(from --password-file\) is empty"):
        resolve(flags, home=tmp_path, stdin="\n")


def test_profile_token_and_user_conflict(tmp_path: Path) -> None:
    path = write_config(tmp_path, f'[profiles.default]\nhost = "pve1.example.com"\ntoken = "{TOKEN}"\nuser = "a@pve"\n')

    with pytest.raises(ConfigError, match="exclude each other: an API token needs no user and password") as raised:
        resolve(home=tmp_path)

    assert str(raised.value).startswith(f"token and user in profile 'default' in {path} exclude each other")
    assert "c0de" not in str(raised.value)


def test_settings_repr_hides_the_password(tmp_path: Path) -> None:
    flags = ConnectionFlags(host="pve1.example.com", user="api@pve", otp="123456")

    settings, _ = resolve(flags, {"PVE_PASSWORD": PASSWORD}, home=tmp_path)

    assert PASSWORD not in repr(settings)
    assert "123456" not in repr(settings)
    assert settings.otp == "123456"
