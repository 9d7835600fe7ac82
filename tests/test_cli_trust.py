"""Tests of ``pvekit trust`` and of the pins it stores: showing the certificate, confirming, writing the profile.

The fake cluster serves a self-signed certificate on 127.0.0.1, like a PVE node with its default
certificate, so the tests trust it the way a user trusts a node.
"""

from __future__ import annotations

import datetime
import os
import stat
import sys
from pathlib import Path

import pytest
from cli_support import free_loopback_port, parse_json, run, write_private
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fakecluster import FakeCluster, build_demo
from pvekit import CertificateInfo, fetch_certificate
from pvekit.cli import terminal
from pvekit.cli.trust import certificate_advice, describe_certificate

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

# A pin that no certificate of the fake has: the node's certificate "changed" since it was stored.
STALE_PIN = ":".join(["3C"] * 32)


@pytest.fixture
def demo(cluster: FakeCluster) -> FakeCluster:
    """The test's cluster with the demo's 3 nodes and 10 VMs."""
    build_demo(cluster)
    return cluster


@pytest.fixture
def presented(cluster: FakeCluster) -> str:
    """The SHA-256 fingerprint of the fake's certificate, AB:CD:... as PVE shows it."""
    return fetch_certificate(cluster.host, timeout=5).fingerprint_sha256


@pytest.fixture
def on_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make pvekit take standard input for a terminal, so that it prompts; CliRunner's input is what is typed."""
    monkeypatch.setattr(terminal, "stdin_is_terminal", lambda: True)


def config_file(home: Path) -> Path:
    return home / "pvekit" / "config.toml"


def write_config(home: Path, text: str, mode: int = 0o600) -> Path:
    path = config_file(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, text)
    os.chmod(path, mode)
    return path


def profiles(home: Path) -> dict[str, dict[str, object]]:
    document = tomllib.loads(config_file(home).read_text(encoding="utf-8"))
    return dict(document["profiles"])


def test_trust_yes_creates_private_config(demo: FakeCluster, token: str, presented: str, tmp_path: Path) -> None:
    result = run(["trust", demo.host, "--yes"], config_home=tmp_path)

    assert result.exit_code == 0, result.output
    assert f"Certificate of {demo.host}:" in result.stdout
    assert "subject:      CN=fakecluster" in result.stdout
    assert "issuer:       CN=fakecluster (self-signed)" in result.stdout
    assert "valid until:" in result.stdout
    assert f"SHA-256:      {presented}" in result.stdout
    assert "Node > System > Certificates" in result.stderr
    assert f"Stored the fingerprint in profile 'default' of {config_file(tmp_path)}" in result.stderr
    assert stat.S_IMODE(config_file(tmp_path).stat().st_mode) == 0o600
    assert profiles(tmp_path) == {"default": {"host": demo.host, "fingerprint": presented}}


def test_stored_pin_replaces_ca_file(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    run(["trust", demo.host, "--yes"], config_home=tmp_path)

    # No --host and no --ca-file: the profile's host and pin are all that is needed.
    result = run(["vms", "-o", "json"], config_home=tmp_path, env={"PVE_TOKEN": token})

    assert len(parse_json(result)) == 10


def test_trust_asks_on_terminal(demo: FakeCluster, presented: str, on_terminal: None, tmp_path: Path) -> None:
    declined = run(["trust", demo.host], config_home=tmp_path, stdin="n\n")

    assert declined.exit_code == 1
    assert f"Trust this certificate for profile 'default' in {config_file(tmp_path)}? [y/N]" in declined.stderr
    assert "Error: the fingerprint was not stored; the config file is unchanged" in declined.stderr
    assert not config_file(tmp_path).exists()

    accepted = run(["trust", demo.host], config_home=tmp_path, stdin="y\n")

    assert accepted.exit_code == 0, accepted.output
    assert profiles(tmp_path)["default"]["fingerprint"] == presented


def test_trust_without_terminal_needs_yes(demo: FakeCluster, tmp_path: Path) -> None:
    result = run(["trust", demo.host], config_home=tmp_path, stdin="y\n")

    assert result.exit_code == 1
    assert "standard input is not a terminal to ask on" in result.stderr
    assert f"then run pvekit trust {demo.host} --yes" in result.stderr
    assert not config_file(tmp_path).exists()


def test_trust_keeps_comments_and_other_profiles(demo: FakeCluster, presented: str, tmp_path: Path) -> None:
    original = (
        "# pvekit settings, kept by hand\n"
        "[profiles.default]\n"
        'token_file = "pve1.token"   # next to this file\n'
        'node = "pve1"\n'
        "\n"
        "[profiles.other]\n"
        'host = "pve9.example.com"\n'
        'ca_file = "/etc/pvekit/ca.pem"\n'
    )
    write_config(tmp_path, original, mode=0o640)

    result = run(["trust", demo.host, "--yes"], config_home=tmp_path)

    assert result.exit_code == 0, result.output
    text = config_file(tmp_path).read_text(encoding="utf-8")
    assert text.startswith("# pvekit settings, kept by hand\n")
    assert 'token_file = "pve1.token"   # next to this file\n' in text
    assert profiles(tmp_path) == {
        "default": {"token_file": "pve1.token", "node": "pve1", "host": demo.host, "fingerprint": presented},
        "other": {"host": "pve9.example.com", "ca_file": "/etc/pvekit/ca.pem"},
    }
    assert stat.S_IMODE(config_file(tmp_path).stat().st_mode) == 0o640


def test_trust_into_new_named_profile(demo: FakeCluster, presented: str, tmp_path: Path) -> None:
    write_config(tmp_path, '[profiles.default]\nhost = "pve1.example.com"\n')

    result = run(["--profile", "lab", "trust", demo.host, "--yes"], config_home=tmp_path)

    assert result.exit_code == 0, result.output
    assert profiles(tmp_path) == {
        "default": {"host": "pve1.example.com"},
        "lab": {"host": demo.host, "fingerprint": presented},
    }


def test_trust_host_from_profile(demo: FakeCluster, presented: str, tmp_path: Path) -> None:
    write_config(tmp_path, f'[profiles.default]\nhost = "{demo.host}"\n')

    result = run(["trust", "--yes"], config_home=tmp_path)

    assert result.exit_code == 0, result.output
    assert f"Certificate of {demo.host}:" in result.stdout
    assert profiles(tmp_path)["default"] == {"host": demo.host, "fingerprint": presented}


def test_trust_already_trusted_writes_nothing(demo: FakeCluster, presented: str, tmp_path: Path) -> None:
    path = write_config(tmp_path, f'[profiles.default]\nhost = "{demo.host}"\nfingerprint = "{presented.lower()}"\n')
    before = path.read_bytes()

    result = run(["trust"], config_home=tmp_path)

    assert result.exit_code == 0, result.output
    assert "This certificate is already trusted in profile 'default'" in result.stderr
    assert path.read_bytes() == before


def test_changed_certificate_not_replaced_without_yes(demo: FakeCluster, presented: str, tmp_path: Path) -> None:
    path = write_config(tmp_path, f'[profiles.default]\nhost = "{demo.host}"\nfingerprint = "{STALE_PIN}"\n')
    before = path.read_bytes()

    result = run(["trust"], config_home=tmp_path)

    assert result.exit_code == 1
    assert f"Warning: the certificate of {demo.host} changed since it was trusted in profile 'default'." in (
        result.stderr
    )
    assert f"trusted:    {STALE_PIN}" in result.stderr
    assert f"presented:  {presented}" in result.stderr
    assert "renewed, or someone between this host and the node" in result.stderr
    assert path.read_bytes() == before


def test_changed_certificate_asks_before_replacing(
    demo: FakeCluster, presented: str, on_terminal: None, tmp_path: Path
) -> None:
    path = write_config(tmp_path, f'[profiles.default]\nhost = "{demo.host}"\nfingerprint = "{STALE_PIN}"\n')
    before = path.read_bytes()

    declined = run(["trust"], config_home=tmp_path, stdin="\n")

    assert declined.exit_code == 1
    assert "Replace the trusted fingerprint in profile 'default'? [y/N]" in declined.stderr
    assert path.read_bytes() == before

    replaced = run(["trust"], config_home=tmp_path, stdin="y\n")

    assert replaced.exit_code == 0, replaced.output
    assert profiles(tmp_path)["default"] == {"host": demo.host, "fingerprint": presented}


def test_changed_certificate_replaced_with_yes(demo: FakeCluster, presented: str, tmp_path: Path) -> None:
    write_config(tmp_path, f'[profiles.default]\nhost = "{demo.host}"\nfingerprint = ["{STALE_PIN}"]\n')

    result = run(["trust", "--yes"], config_home=tmp_path)

    assert result.exit_code == 0, result.output
    assert "changed since it was trusted" in result.stderr
    assert profiles(tmp_path)["default"]["fingerprint"] == presented


def test_pin_replaces_verify_false(demo: FakeCluster, presented: str, tmp_path: Path) -> None:
    write_config(tmp_path, f'[profiles.default]\nhost = "{demo.host}"\nverify = false\n')

    result = run(["trust", "--yes"], config_home=tmp_path)

    assert result.exit_code == 0, result.output
    assert "removed verify = false, which the pin replaces" in result.stderr
    assert profiles(tmp_path)["default"] == {"host": demo.host, "fingerprint": presented}


def test_trust_rejects_profile_with_ca_file(demo: FakeCluster, tmp_path: Path) -> None:
    path = write_config(tmp_path, f'[profiles.default]\nhost = "{demo.host}"\nca_file = "ca.pem"\n')

    result = run(["trust", "--yes"], config_home=tmp_path)

    assert result.exit_code == 2
    assert f"profile 'default' in {path} verifies the node with ca_file" in result.stderr


def test_trust_rejects_profile_of_other_host(demo: FakeCluster, tmp_path: Path) -> None:
    path = write_config(tmp_path, '[profiles.default]\nhost = "pve1.example.com"\n')

    result = run(["trust", demo.host, "--yes"], config_home=tmp_path)

    assert result.exit_code == 2
    assert f"profile 'default' in {path} connects to pve1.example.com, not {demo.host}" in result.stderr
    assert f"pvekit --profile NAME trust {demo.host}" in result.stderr


def test_trust_same_host_in_another_form(demo: FakeCluster, presented: str, tmp_path: Path) -> None:
    write_config(tmp_path, f'[profiles.default]\nhost = "https://{demo.host}/"\n')

    result = run(["trust", demo.host, "--yes"], config_home=tmp_path)

    assert result.exit_code == 0, result.output
    assert profiles(tmp_path)["default"] == {"host": f"https://{demo.host}/", "fingerprint": presented}


def test_trust_without_host_is_usage_error(tmp_path: Path) -> None:
    result = run(["trust"], config_home=tmp_path)

    assert result.exit_code == 2
    assert "no host given; pass it as in pvekit trust pve1.example.com" in result.stderr


def test_trust_unreachable_host_exits_4(tmp_path: Path) -> None:
    port = free_loopback_port()

    result = run(["trust", f"127.0.0.1:{port}", "--yes", "--timeout", "2"], config_home=tmp_path)

    assert result.exit_code == 4
    assert f"connecting to 127.0.0.1:{port} failed" in result.stderr
    assert not config_file(tmp_path).exists()


def test_trust_json(demo: FakeCluster, presented: str, tmp_path: Path) -> None:
    write_config(tmp_path, f'[profiles.default]\nhost = "{demo.host}"\nfingerprint = "{STALE_PIN}"\n')

    result = run(["trust", "--yes", "-o", "json"], config_home=tmp_path)

    data = parse_json(result)
    assert data["host"] == demo.host
    assert data["profile"] == "default"
    assert data["subject"] == "CN=fakecluster"
    assert data["self_signed"] is True
    assert data["expired"] is False
    assert data["fingerprint_sha256"] == presented
    assert data["previously_trusted"] == [STALE_PIN]
    assert data["stored"] is True
    assert data["changed"] is True
    assert data["not_after"].endswith("Z")
    # The details for the person checking them go to standard error, next to the question.
    assert "SHA-256:" in result.stderr


def test_changed_certificate_later_exits_4(demo: FakeCluster, token: str, presented: str, tmp_path: Path) -> None:
    write_config(
        tmp_path,
        f'[profiles.default]\nhost = "{demo.host}"\nfingerprint = "{STALE_PIN}"\n\n'
        f'[profiles.lab]\nhost = "{demo.host}"\nfingerprint = "{STALE_PIN}"\n',
    )

    default = run(["vms"], config_home=tmp_path, env={"PVE_TOKEN": token})
    lab = run(["--profile", "lab", "vms"], config_home=tmp_path, env={"PVE_TOKEN": token})

    assert default.exit_code == 4
    assert f"Error: the certificate of {demo.host} changed since it was trusted" in default.stderr
    assert f"trusted:    {STALE_PIN}" in default.stderr
    assert f"presented:  {presented}" in default.stderr
    assert "Node > System > Certificates" in default.stderr
    assert f"run: pvekit trust {demo.host}" in default.stderr
    assert default.stdout == ""
    assert lab.exit_code == 4
    assert f"run: pvekit --profile lab trust {demo.host}" in lab.stderr


def test_changed_certificate_from_flag_names_flag(demo: FakeCluster, token: str, tmp_path: Path) -> None:
    result = run(
        ["--host", demo.host, "--fingerprint", STALE_PIN, "vms"], config_home=tmp_path, env={"PVE_TOKEN": token}
    )

    assert result.exit_code == 4
    assert "changed since it was trusted" in result.stderr
    assert "update --fingerprint" in result.stderr


def expired_certificate() -> CertificateInfo:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pve1.example.com")])
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Proxmox Virtual Environment")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(4711)
        .not_valid_before(now - datetime.timedelta(days=800))
        .not_valid_after(now - datetime.timedelta(days=70, hours=1))
        .sign(key, hashes.SHA256())
    )
    return CertificateInfo.from_der(certificate.public_bytes(serialization.Encoding.DER))


def test_expired_certificate_is_flagged() -> None:
    info = expired_certificate()
    now = datetime.datetime.now(datetime.timezone.utc)

    lines = describe_certificate(info, "pve1.example.com", now)
    advice = certificate_advice(info, now)

    assert "  issuer:       CN=Proxmox Virtual Environment" in lines
    assert any(line.startswith("  valid until:") and line.endswith("(EXPIRED 70 days ago)") for line in lines)
    assert any("this certificate has expired" in line for line in advice)


def test_trust_follows_symlinked_config(demo: FakeCluster, presented: str, tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "pvekit.toml"
    real.parent.mkdir()
    write_private(real, '[profiles.other]\nhost = "pve9.example.com"\n')
    config_file(tmp_path).parent.mkdir()
    config_file(tmp_path).symlink_to(real)

    result = run(["trust", demo.host, "--yes"], config_home=tmp_path)

    assert result.exit_code == 0, result.output
    assert config_file(tmp_path).is_symlink()
    assert f'fingerprint = "{presented}"' in real.read_text(encoding="utf-8")


def test_trust_warns_when_environment_overrides_pin(demo: FakeCluster, tmp_path: Path) -> None:
    result = run(
        ["trust", demo.host, "--yes"], config_home=tmp_path, env={"PVE_CA_FILE": demo.ca_file, "PVE_VERIFY": "1"}
    )

    assert result.exit_code == 0, result.output
    assert (
        "Warning: the environment sets PVE_CA_FILE; settings from the environment take precedence over the "
        "profile's pin" in result.stderr
    )
