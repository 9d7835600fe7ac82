"""Planted secrets never show: every command, with DEBUG logging and JSON output, succeeding and failing.

A known token secret and a known password are planted on the fake, and the tickets and CSRF tokens it
issues are collected. Every byte that pvekit writes to standard output and standard error, and the config
file that ``pvekit trust`` writes, is then searched for each of them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from cli_support import free_loopback_port, parse_json, run
from click.testing import Result

from fakecluster import FakeCluster, build_demo
from tests.login_pve import TOTP_CODE, LoginPve, login_cluster

PLANTED_SECRET = "5ec4e7ed-7a11-4c0d-9e55-0f1a47ed5ec4"
WRONG_SECRET = "dead5ec4-0000-4bad-8bad-0000dead5ec4"
# It contains characters that form encoding changes (&, %, [, ], =), so the encoded forms are searched for too.
PLANTED_PASSWORD = "Pl4nted&pass%w[rd]=x"
WRONG_PASSWORD = "Wr0ng&planted%pw"
STALE_PIN = ":".join(["3C"] * 32)


class Runs:
    """Runs pvekit against one cluster and keeps every output, to search them all at the end."""

    def __init__(self, cluster: FakeCluster, home: Path, env: dict[str, str], credentials: Sequence[str]) -> None:
        self.cluster = cluster
        self.home = home
        self.env = env
        self.credentials = list(credentials)
        self.outputs: list[tuple[str, bytes]] = []

    def __call__(
        self, *args: str, code: int = 0, connection: Sequence[str] | None = None, env: dict[str, str] | None = None
    ) -> Result:
        """Run ``pvekit -vv [connection] [credentials] ARGS`` and check its exit status."""
        if connection is None:
            connection = ["--host", self.cluster.host, "--ca-file", self.cluster.ca_file]
        command = ["-vv", *connection, *self.credentials, *args]
        result = run(command, config_home=self.home, env={**self.env, **(env or {})})
        self.outputs.append((" ".join(command), result.stdout_bytes + result.stderr_bytes))
        assert result.exit_code == code, (command, result.output)
        return result


@pytest.fixture
def planted(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeCluster, LoginPve]]:
    """A LoginPve cluster with the demo's VMs, root@pam's planted password and a token with the planted secret."""
    with login_cluster(monkeypatch, PLANTED_PASSWORD) as (cluster, pve):
        build_demo(cluster)
        cluster.add_token("root@pam", "planted", PLANTED_SECRET)
        yield cluster, pve


def run_every_command(runs: Runs) -> None:
    """Run every command once, with JSON output where it has one, and the task commands on a real task."""
    runs("vms", "-o", "json")
    runs("status", "100", "-o", "json")
    runs("config", "100", "-o", "json")
    runs("ips", "107", "-o", "json")
    runs("metrics", "100", "-o", "json")
    runs("metrics", "100", "--interval", "0.1", "-o", "json")
    runs("rrd", "100", "-o", "json")
    runs("rrd", "100", "-o", "csv")
    started = parse_json(runs("start", "106", "--wait", "--follow", "-o", "json"))
    upid = started[0]["upid"]
    runs("task", "status", upid, "-o", "json")
    runs("task", "log", upid, "-o", "json")
    runs("task", "wait", upid, "--follow", "-o", "json")
    runs("task", "stop", upid)
    runs("suspend", "100", "--wait", "-o", "json")
    runs("resume", "100", "--wait", "-o", "json")
    runs("reboot", "101", "-o", "json")
    runs("reset", "102", "-o", "json")
    runs("shutdown", "109", "--force-stop", "--timeout", "5", "--wait", "-o", "json")
    runs("stop", "106", "--wait", "-o", "json")
    runs("top", "--once", "--interval", "0.1", "-o", "json")
    runs("top", "--once", "--interval", "0.1")
    runs("status", "100")

    # Failing runs: a missing VM, a task that fails, a host nothing listens on, and a changed certificate.
    runs("status", "999", "-o", "json", code=5)
    runs("start", "100", "--wait", "-o", "json", code=1)
    runs("vms", connection=["--host", f"127.0.0.1:{free_loopback_port()}", "--ca-file", runs.cluster.ca_file], code=4)
    runs("vms", "-o", "json", connection=["--host", runs.cluster.host, "--fingerprint", STALE_PIN], code=4)


def session_secrets(pve: LoginPve) -> list[str]:
    """Return every ticket and CSRF token the fake issued, whole and by their random parts."""
    values = set(pve.issued)
    for ticket, session in pve.tickets.items():
        values.update((ticket, str(session["csrf"])))
    parts = set()
    for value in values:
        # A ticket ends in '::<signature>', a CSRF token in ':<random part>'.
        parts.add(value.rpartition(":")[2])
    return sorted(values | parts)


def password_forms(password: str) -> list[str]:
    """Return the password as typed and as form encoding writes it."""
    return [password, quote_plus(password), quote(password, safe="")]


def find_secrets(outputs: Sequence[tuple[str, bytes]], secrets: Sequence[str]) -> list[str]:
    """Return a line for each secret found in an output; an empty list when none shows."""
    found = []
    for command, output in outputs:
        for secret in secrets:
            if secret.encode() in output:
                found.append(f"{secret!r} in the output of: pvekit {command}")
    return found


def test_token_secret_never_shown(planted: tuple[FakeCluster, LoginPve], tmp_path: Path) -> None:
    cluster, _ = planted
    token = f"root@pam!planted={PLANTED_SECRET}"
    runs = Runs(cluster, tmp_path, {"PVE_TOKEN": token}, [])

    run_every_command(runs)
    runs("vms", env={"PVE_TOKEN": f"root@pam!planted={WRONG_SECRET}"}, code=3)
    runs("vms", env={"PVE_TOKEN": f"root@pam:planted={PLANTED_SECRET}"}, code=2)
    runs("--token", f"root@pam!planted={PLANTED_SECRET}!x", "vms", env={"PVE_TOKEN": ""}, code=2)

    assert find_secrets(runs.outputs, [PLANTED_SECRET, WRONG_SECRET]) == []


def test_password_and_tickets_never_shown(planted: tuple[FakeCluster, LoginPve], tmp_path: Path) -> None:
    cluster, pve = planted
    runs = Runs(cluster, tmp_path, {"PVE_PASSWORD": PLANTED_PASSWORD}, ["--user", "root@pam"])

    run_every_command(runs)
    runs("vms", env={"PVE_PASSWORD": WRONG_PASSWORD}, code=3)
    pve.tfa = True
    runs("vms", "-o", "json", code=3)
    runs("--otp", "999999", "vms", "-o", "json", code=3)
    runs("--otp", TOTP_CODE, "vms", "-o", "json")

    secrets = [*password_forms(PLANTED_PASSWORD), *password_forms(WRONG_PASSWORD), *session_secrets(pve)]
    assert len(pve.tickets) >= 20
    assert find_secrets(runs.outputs, secrets) == []


def test_login_errors_name_the_fix_without_secrets(planted: tuple[FakeCluster, LoginPve], tmp_path: Path) -> None:
    cluster, pve = planted
    runs = Runs(cluster, tmp_path, {}, ["--user", "root@pam"])

    wrong = runs("vms", env={"PVE_PASSWORD": WRONG_PASSWORD}, code=3)
    pve.tfa = True
    second_factor = runs("vms", env={"PVE_PASSWORD": PLANTED_PASSWORD}, code=3)

    assert "PVE rejected the password of root@pam" in wrong.stderr
    assert "(user from --user, password from PVE_PASSWORD)" in wrong.stderr
    assert "needs a second factor (PVE offers: recovery, totp)" in second_factor.stderr
    assert "pass --otp CODE" in second_factor.stderr
    assert find_secrets(runs.outputs, [*password_forms(PLANTED_PASSWORD), *password_forms(WRONG_PASSWORD)]) == []


def test_trust_writes_no_secret(planted: tuple[FakeCluster, LoginPve], tmp_path: Path) -> None:
    cluster, pve = planted
    token = f"root@pam!planted={PLANTED_SECRET}"
    env = {"PVE_TOKEN": token, "PVE_PASSWORD": PLANTED_PASSWORD, "PVE_USER": ""}
    runs = Runs(cluster, tmp_path, env, [])

    trusted = parse_json(runs("trust", cluster.host, "--yes", "-o", "json", connection=[]))
    runs("vms", "-o", "json", connection=[])
    runs("--user", "root@pam", "vms", "-o", "json", connection=[], env={"PVE_TOKEN": ""})
    config = (tmp_path / "pvekit" / "config.toml").read_bytes()

    assert trusted["fingerprint_sha256"].encode() in config
    secrets = [PLANTED_SECRET, *password_forms(PLANTED_PASSWORD), *session_secrets(pve)]
    assert find_secrets([("(the config file)", config), *runs.outputs], secrets) == []
