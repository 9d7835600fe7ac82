"""Tests of password (ticket) login in the command-line tool: where the password comes from, prompts and TOTP.

The fake is LoginPve (tests/login_pve.py), which also runs PVE 7's two-factor steps. CliRunner's input
types the answers to the prompts, with pvekit's terminal check patched to report a terminal. One test runs
pvekit in a real pseudo-terminal to check that the password and the code are not echoed.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import parse_json, run, write_private

from fakecluster import FakeCluster, build_demo
from pvekit.cli import terminal
from tests.login_pve import RECOVERY_KEY, TOTP_CODE, LoginPve, login_cluster

PASSWORD = "s3cret&pass%word"
WRONG_PASSWORD = "not-the-password-41"
TOKEN_SECRET = "00000000-0000-0000-0000-0000000000b7"
# Seconds to wait for pvekit in a pseudo-terminal to print a prompt or exit.
PTY_TIMEOUT_SECONDS = 30.0


@pytest.fixture
def login(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeCluster, LoginPve]]:
    """A LoginPve cluster with the demo's VMs whose root@pam has PASSWORD."""
    with login_cluster(monkeypatch, PASSWORD) as (cluster, pve):
        build_demo(cluster)
        yield cluster, pve


@pytest.fixture
def on_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make pvekit take standard input for a terminal, so that it prompts; CliRunner's input is what is typed."""
    monkeypatch.setattr(terminal, "stdin_is_terminal", lambda: True)


def base_args(cluster: FakeCluster) -> list[str]:
    return ["--host", cluster.host, "--ca-file", cluster.ca_file]


def test_password_from_environment(login: tuple[FakeCluster, LoginPve], tmp_path: Path) -> None:
    cluster, pve = login

    result = run(
        [*base_args(cluster), "vms", "-o", "json"],
        config_home=tmp_path,
        env={"PVE_USER": "root@pam", "PVE_PASSWORD": PASSWORD},
    )

    assert len(parse_json(result)) == 10
    assert pve.logins == ["password"]


def test_user_without_realm_is_pam(login: tuple[FakeCluster, LoginPve], tmp_path: Path) -> None:
    cluster, _ = login

    result = run(
        [*base_args(cluster), "--user", "root", "vms", "-o", "json"],
        config_home=tmp_path,
        env={"PVE_PASSWORD": PASSWORD},
    )

    assert len(parse_json(result)) == 10


def test_password_file_first_line(login: tuple[FakeCluster, LoginPve], tmp_path: Path) -> None:
    cluster, _ = login
    password_file = write_private(tmp_path / "pve.password", PASSWORD + "\n")

    result = run(
        [*base_args(cluster), "--user", "root@pam", "--password-file", str(password_file), "vms", "-o", "json"],
        config_home=tmp_path,
    )

    assert len(parse_json(result)) == 10
    assert "Warning" not in result.stderr


def test_readable_password_file_warns(login: tuple[FakeCluster, LoginPve], tmp_path: Path) -> None:
    cluster, _ = login
    password_file = tmp_path / "pve.password"
    password_file.write_text(PASSWORD, encoding="utf-8")
    os.chmod(password_file, 0o644)

    result = run(
        [*base_args(cluster), "--user", "root@pam", "vms", "-o", "json"],
        config_home=tmp_path,
        env={"PVE_PASSWORD_FILE": str(password_file)},
    )

    assert result.exit_code == 0, result.output
    assert f"Warning: {password_file} contains a password and other users can read it" in result.stderr
    assert f"chmod 600 {password_file}" in result.stderr


def test_password_from_standard_input(login: tuple[FakeCluster, LoginPve], tmp_path: Path) -> None:
    cluster, _ = login

    result = run(
        [*base_args(cluster), "--user", "root@pam", "--password-file", "-", "vms", "-o", "json"],
        config_home=tmp_path,
        stdin=PASSWORD + "\n",
    )

    assert len(parse_json(result)) == 10


def test_password_prompt_on_terminal(login: tuple[FakeCluster, LoginPve], on_terminal: None, tmp_path: Path) -> None:
    cluster, _ = login

    result = run(
        [*base_args(cluster), "--user", "root@pam", "vms", "-o", "json"], config_home=tmp_path, stdin=PASSWORD + "\n"
    )

    assert result.exit_code == 0, result.output
    assert "Password for root@pam: " in result.stderr
    assert PASSWORD not in result.output


def test_no_password_without_terminal(login: tuple[FakeCluster, LoginPve], tmp_path: Path) -> None:
    cluster, pve = login

    result = run([*base_args(cluster), "--user", "root@pam", "vms"], config_home=tmp_path)

    assert result.exit_code == 2
    assert "no password given for root@pam, and standard input is not a terminal to ask for it" in result.stderr
    assert "--password-file PATH (or - for standard input), set PVE_PASSWORD_FILE or PVE_PASSWORD" in result.stderr
    assert pve.logins == []


def test_wrong_password_exits_3(login: tuple[FakeCluster, LoginPve], tmp_path: Path) -> None:
    cluster, _ = login

    result = run(
        [*base_args(cluster), "--user", "root@pam", "vms"], config_home=tmp_path, env={"PVE_PASSWORD": WRONG_PASSWORD}
    )

    assert result.exit_code == 3
    assert "Error: PVE rejected the password of root@pam" in result.stderr
    assert "check the user name, the realm after '@' (pam, pve, ...) and the password" in result.stderr
    assert "(user from --user, password from PVE_PASSWORD)" in result.stderr
    assert WRONG_PASSWORD not in result.output


def test_profile_user_and_password_file(login: tuple[FakeCluster, LoginPve], tmp_path: Path) -> None:
    cluster, _ = login
    directory = tmp_path / "pvekit"
    directory.mkdir()
    write_private(directory / "root.password", PASSWORD + "\n")
    write_private(
        directory / "config.toml",
        f'[profiles.default]\nhost = "{cluster.host}"\nca_file = "{cluster.ca_file}"\n'
        'user = "root@pam"\npassword_file = "root.password"\n',
    )

    result = run(["vms", "-o", "json"], config_home=tmp_path)

    assert len(parse_json(result)) == 10


def test_token_and_user_at_same_level_conflict(login: tuple[FakeCluster, LoginPve], tmp_path: Path) -> None:
    cluster, _ = login
    token = cluster.add_token("root@pam", "cli", TOKEN_SECRET)
    token_file = write_private(tmp_path / "pve.token", token)

    flags = run(
        [*base_args(cluster), "--token-file", str(token_file), "--user", "root@pam", "vms"], config_home=tmp_path
    )
    environment = run(
        [*base_args(cluster), "vms"], config_home=tmp_path, env={"PVE_TOKEN": token, "PVE_USER": "root@pam"}
    )

    assert flags.exit_code == 2
    assert "--token-file and --user exclude each other: an API token needs no user and password" in flags.stderr
    assert environment.exit_code == 2
    assert "PVE_TOKEN and PVE_USER exclude each other" in environment.stderr
    assert TOKEN_SECRET not in flags.output + environment.output


def test_higher_level_decides_credentials(login: tuple[FakeCluster, LoginPve], tmp_path: Path) -> None:
    cluster, pve = login
    token = cluster.add_token("root@pam", "cli", TOKEN_SECRET)

    by_flag = run(
        [*base_args(cluster), "--user", "root@pam", "vms", "-o", "json"],
        config_home=tmp_path,
        env={"PVE_TOKEN": token, "PVE_PASSWORD": PASSWORD},
    )
    logins_after_flag = list(pve.logins)
    by_environment = run(
        [*base_args(cluster), "vms", "-o", "json"],
        config_home=tmp_path,
        env={"PVE_TOKEN": token, "PVE_PASSWORD": PASSWORD},
    )

    assert len(parse_json(by_flag)) == 10
    assert logins_after_flag == ["password"]
    assert len(parse_json(by_environment)) == 10
    assert pve.logins == ["password"]


def test_password_file_with_token_is_usage_error(login: tuple[FakeCluster, LoginPve], tmp_path: Path) -> None:
    cluster, _ = login
    token = cluster.add_token("root@pam", "cli", TOKEN_SECRET)

    result = run([*base_args(cluster), "--password-file", "-", "vms"], config_home=tmp_path, env={"PVE_TOKEN": token})

    assert result.exit_code == 2
    assert "--password-file is for a login with user and password, but the API token from PVE_TOKEN is used" in (
        result.stderr
    )


def test_token_id_as_user_is_rejected(login: tuple[FakeCluster, LoginPve], tmp_path: Path) -> None:
    cluster, _ = login

    result = run([*base_args(cluster), "vms"], config_home=tmp_path, env={"PVE_USER": f"root@pam!cli={TOKEN_SECRET}"})

    assert result.exit_code == 2
    assert "the user 'root@pam!...' from PVE_USER is an API token id" in result.stderr
    assert TOKEN_SECRET not in result.output


def test_power_action_with_password(login: tuple[FakeCluster, LoginPve], tmp_path: Path) -> None:
    cluster, pve = login

    result = run(
        [*base_args(cluster), "--user", "root@pam", "start", "106", "--wait", "-o", "json"],
        config_home=tmp_path,
        env={"PVE_PASSWORD": PASSWORD},
    )

    outcome = parse_json(result)[0]
    assert outcome["succeeded"] is True
    assert any(seen.csrf for seen in pve.requests_to("/nodes/pve1/qemu/106/status/start"))


def test_totp_prompt_on_terminal(login: tuple[FakeCluster, LoginPve], on_terminal: None, tmp_path: Path) -> None:
    cluster, pve = login
    pve.tfa = True

    result = run(
        [*base_args(cluster), "--user", "root@pam", "start", "106", "--wait", "-o", "json"],
        config_home=tmp_path,
        env={"PVE_PASSWORD": PASSWORD},
        stdin=TOTP_CODE + "\n",
    )

    assert parse_json(result)[0]["succeeded"] is True
    assert "TOTP code for root@pam (or recovery:KEY): " in result.stderr
    assert pve.logins == ["challenge", "tfa"]


def test_recovery_key_at_prompt(login: tuple[FakeCluster, LoginPve], on_terminal: None, tmp_path: Path) -> None:
    cluster, pve = login
    pve.tfa = True

    result = run(
        [*base_args(cluster), "--user", "root@pam", "vms", "-o", "json"],
        config_home=tmp_path,
        env={"PVE_PASSWORD": PASSWORD},
        stdin=f"recovery:{RECOVERY_KEY}\n",
    )

    assert len(parse_json(result)) == 10
    assert RECOVERY_KEY not in result.output


def test_totp_without_terminal_names_otp(login: tuple[FakeCluster, LoginPve], tmp_path: Path) -> None:
    cluster, pve = login
    pve.tfa = True

    result = run(
        [*base_args(cluster), "--user", "root@pam", "vms"], config_home=tmp_path, env={"PVE_PASSWORD": PASSWORD}
    )

    assert result.exit_code == 3
    assert "the login of root@pam on" in result.stderr
    assert "needs a second factor (PVE offers: recovery, totp)" in result.stderr
    assert "pass --otp CODE with the current TOTP code, which is valid for about 30 seconds" in result.stderr
    assert result.stdout == ""


def test_otp_flag_for_scripts(login: tuple[FakeCluster, LoginPve], tmp_path: Path) -> None:
    cluster, pve = login
    pve.tfa = True

    result = run(
        [*base_args(cluster), "--user", "root@pam", "--otp", TOTP_CODE, "vms", "-o", "json"],
        config_home=tmp_path,
        env={"PVE_PASSWORD": PASSWORD},
    )

    assert len(parse_json(result)) == 10
    assert pve.logins == ["challenge", "tfa"]


def test_wrong_otp_exits_3(login: tuple[FakeCluster, LoginPve], tmp_path: Path) -> None:
    cluster, pve = login
    pve.tfa = True

    result = run(
        [*base_args(cluster), "--user", "root@pam", "--otp", "000000", "vms"],
        config_home=tmp_path,
        env={"PVE_PASSWORD": PASSWORD},
    )

    assert result.exit_code == 3
    assert "PVE rejected the second factor of root@pam" in result.stderr
    assert "check that the code is current" in result.stderr


def read_until(descriptor: int, expected: bytes, seen: bytearray) -> None:
    """Read from the pseudo-terminal into ``seen`` until ``expected`` appears, or fail after a timeout."""
    deadline = time.monotonic() + PTY_TIMEOUT_SECONDS
    while expected not in seen:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"{expected!r} did not appear; the terminal shows {bytes(seen)!r}"
        ready, _, _ = select.select([descriptor], [], [], remaining)
        if ready:
            try:
                chunk = os.read(descriptor, 4096)
            except OSError:  # the child closed the terminal
                chunk = b""
            assert chunk, f"{expected!r} did not appear before pvekit exited; the terminal shows {bytes(seen)!r}"
            seen += chunk


def test_prompts_hide_input_in_real_terminal(login: tuple[FakeCluster, LoginPve], tmp_path: Path) -> None:
    cluster, pve = login
    pve.tfa = True
    controller, child_end = pty.openpty()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PVE_", "PVEKIT_"))}
    env["XDG_CONFIG_HOME"] = str(tmp_path)
    env["COLUMNS"] = "200"

    process = subprocess.Popen(
        [sys.executable, "-m", "pvekit", *base_args(cluster), "--user", "root@pam", "vms", "-o", "json"],
        stdin=child_end,
        stdout=child_end,
        stderr=child_end,
        env=env,
        close_fds=True,
    )
    os.close(child_end)
    seen = bytearray()
    try:
        read_until(controller, b"Password for root@pam: ", seen)
        os.write(controller, PASSWORD.encode() + b"\r")
        read_until(controller, b"TOTP code for root@pam (or recovery:KEY): ", seen)
        os.write(controller, TOTP_CODE.encode() + b"\r")
        read_until(controller, b"]", seen)
        assert process.wait(PTY_TIMEOUT_SECONDS) == 0, bytes(seen)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(controller)

    assert b'"name": "web01"' in seen
    assert PASSWORD.encode() not in seen
    assert TOTP_CODE.encode() not in seen
