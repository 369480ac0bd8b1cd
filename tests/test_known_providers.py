"""The providers POP3 users are on, from the data file: advice, servers, sign-in, and the
one MX-aware resolver every command uses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from advisor.cli import run
from advisor.connection.account import resolve_account
from advisor.discovery import choose_provider
from advisor.plugins.manager import load_plugins
from advisor.profile import load_profile
from mailadvisor_providers import known
from tests.harness.netfakes import FakeInternet

PROVIDERS = sorted(known().values(), key=lambda p: p.key)


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    assert run([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("provider", PROVIDERS, ids=lambda p: p.key)
def test_advice_for_each_provider_gives_the_right_protocol_and_says_why(
    provider: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    email = f"someone@{provider.domains[0]}"
    # One device and mail kept off the server: POP3's home ground.
    advice = _json(capsys, "advise", "--devices", "1", "--keep-off-server", "--email", email)
    assert advice["provider"] == provider.key
    if provider.pop3 is None:
        assert advice["recommendation"] == "imap"
        assert "offers no POP3" in advice["constraint"]
    else:
        assert advice["recommendation"] == "pop3"
        assert advice["settings"]["endpoint"]["host"] == provider.pop3.host
    steps = " ".join(advice["steps"])
    if provider.toggle:
        assert provider.toggle in steps
    if provider.auth != "password":
        assert provider.auth_note in steps


def test_icloud_is_imap_only_with_the_local_part_as_user_name(
    capsys: pytest.CaptureFixture[str],
) -> None:
    found = _json(capsys, "detect", "someone@me.com", "--no-network")
    assert found["provider"] == "icloud"
    servers = {s["endpoint"]["protocol"]: s["endpoint"] for s in found["servers"]}
    assert set(servers) == {"imap", "smtp"}
    assert (servers["imap"]["host"], servers["imap"]["port"]) == ("imap.mail.me.com", 993)
    assert servers["imap"]["username"] == "someone"
    assert (servers["smtp"]["port"], servers["smtp"]["security"]) == (587, "starttls")


def test_custom_domains_are_recognised_by_their_mx_hosts() -> None:
    host = load_plugins(builtin_only=True)
    assert host.match_address("a@corp.example", ["mx01.mail.icloud.com."])[0].provider == "icloud"
    assert host.match_address("a@corp.example", ["mx.zoho.eu"])[0].provider == "zoho"
    # A look-alike is no match: it falls to the generic plugin.
    assert host.match_address("a@corp.example", ["evilzoho.com"])[0].provider == "generic"


def test_every_provider_row_is_complete() -> None:
    for p in PROVIDERS:
        assert p.domains and p.imap is not None and p.smtp is not None, p.key
        assert p.auth in ("password", "app-password", "bridge"), p.key
        assert p.auth_note, p.key
        assert p.imap.port in (993, 1143) and p.smtp.port in (465, 587, 1025), p.key


def test_one_resolver_sees_mx_hosts_for_migrate_test_and_detect(
    fake_internet: FakeInternet, tmp_path: Path
) -> None:
    """A Google Workspace domain is Gmail for `migrate` too, not only for `test`."""
    fake_internet.dns.add_mx("corp.example", "aspmx.l.google.com")
    host = load_plugins(builtin_only=True)
    choice = choose_provider("alex@corp.example", host)
    assert choice.provider == "gmail" and "aspmx.l.google.com" in choice.mx_hosts[0]
    profile = tmp_path / "p.toml"
    profile.write_text(
        'version = 1\n[account]\nemail = "alex@corp.example"\nprovider = "auto"\n'
        '[auth]\nmethod = "oauth2"\ntoken_command = "echo t"\n'
        '[source]\nkind = "maildir"\npath = "/nonexistent"\n'
    )
    access = resolve_account(load_profile(profile), host)
    assert access.provider == "gmail" and access.target.host == "imap.gmail.com"
