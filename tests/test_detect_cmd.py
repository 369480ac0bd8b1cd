"""``mailadvisor detect EMAIL`` against DNS and HTTPS servers on loopback."""

from __future__ import annotations

import json
import subprocess

import pytest

from advisor.cli import run
from advisor.exitcodes import ExitStatus
from tests.harness.netfakes import FakeInternet
from tests.test_discovery import FULL, config_xml

# Any attempt to resolve or reach a non-loopback address fails the test.
pytestmark = pytest.mark.usefixtures("no_internet")

EMAIL = "alex@example.test"


def detect_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:  # type: ignore[type-arg]
    assert run(["detect", *args, "--json"]) == ExitStatus.OK
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_generic_settings_with_their_origin(
    fake_internet: FakeInternet, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_internet.serve_autoconfig("example.test", FULL)
    assert run(["detect", EMAIL]) == ExitStatus.OK
    out = capsys.readouterr().out
    assert "provider generic (Any IMAP server)" in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    assert "imap.example.test:993" in lines["IMAP"] and "trusted" in lines["IMAP"]
    assert "from autoconfig https://autoconfig.example.test:" in lines["IMAP"]
    assert "pop.example.test:995" in lines["POP3"]
    assert "smtp.example.test:587" in lines["SMTP"] and "starttls" in lines["SMTP"]
    assert "Where mailadvisor looked:" in out
    assert "✓ autoconfig" in out and "· srv        _imaps._tcp.example.test: no SRV record" in out


def test_json_output(fake_internet: FakeInternet, capsys: pytest.CaptureFixture[str]) -> None:
    fake_internet.serve_autoconfig("example.test", FULL)
    fake_internet.dns.add_mx("example.test", "mx.example.test")
    result = detect_json(capsys, EMAIL)
    assert result["provider"] == "generic" and result["network"] is True
    assert result["mx_hosts"] == ["mx.example.test"]
    imap = result["servers"][0]
    assert imap["endpoint"] == {
        "protocol": "imap",
        "host": "imap.example.test",
        "port": 993,
        "security": "tls",
        "username": EMAIL,
    }
    assert imap["origin"] == "autoconfig" and imap["trusted"] is True
    assert imap["authentication"] == ["password-cleartext"]
    # The STARTTLS variant was found too, and kept as an alternative.
    assert [a["endpoint"]["port"] for a in result["alternatives"]] == [143]
    outcomes = {(a["origin"], a["via"]): a["outcome"] for a in result["attempts"]}
    assert outcomes[("srv", "_imaps._tcp.example.test")] == "none"
    assert outcomes[("mx", "mx.example.test")] == "skipped"  # in the user's own domain


def test_mx_hands_the_address_to_a_provider_plugin(
    fake_internet: FakeInternet, capsys: pytest.CaptureFixture[str]
) -> None:
    # A Workspace domain: the Gmail plugin claims it through its MX hosts.
    fake_internet.dns.add_mx("example.test", "aspmx.l.google.com")
    assert run(["detect", EMAIL]) == ExitStatus.OK
    out = capsys.readouterr().out
    assert "provider gmail" in out and "handled by Google (aspmx.l.google.com)" in out
    assert "other candidates: generic (0.1)" in out
    assert "imap.gmail.com:993" in out and "from plugin gmail" in out
    assert "Mail for example.test goes to aspmx.l.google.com" in out
    # The plugin knows the servers: nothing else was looked up.
    assert fake_internet.https.requests == []
    assert [q for q in fake_internet.dns.queries if q[1] != "MX"] == []


def test_untrusted_servers_are_flagged(
    fake_internet: FakeInternet, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_internet.dns.add_srv("_imaps._tcp.example.test", "imap.hoster.test", 993)
    assert run(["detect", EMAIL]) == ExitStatus.OK
    out = capsys.readouterr().out
    imap = next(line for line in out.splitlines() if line.startswith("  IMAP"))
    assert "confirm first" in imap and "from srv _imaps._tcp.example.test" in imap
    assert "Confirm first: imap.hoster.test is outside example.test" in out
    assert "RFC 7817" in out


def test_allow_http(fake_internet: FakeInternet, capsys: pytest.CaptureFixture[str]) -> None:
    fake_internet.add_host("autoconfig.example.test")
    fake_internet.add_host("ispdb.test")  # the network works
    fake_internet.http.route(
        "autoconfig.example.test",
        "/mail/config-v1.1.xml",
        config_xml(("incomingServer", "imap", "imap.example.test", 993, "SSL")),
    )
    assert detect_json(capsys, EMAIL)["servers"] == []
    assert fake_internet.http.requests == []
    result = detect_json(capsys, EMAIL, "--allow-http")
    assert result["servers"][0]["origin"] == "autoconfig"
    assert result["servers"][0]["via"].startswith("http://")


def test_no_network_looks_nothing_up(
    fake_internet: FakeInternet, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_internet.serve_autoconfig("example.test", FULL)
    assert run(["detect", EMAIL, "--no-network"]) == ExitStatus.OK
    out = capsys.readouterr().out
    assert fake_internet.dns.queries == [] and fake_internet.https.requests == []
    assert "imap.example.test:993" in out and "from guess" in out
    assert "Nothing was looked up (--no-network)." in out
    result = detect_json(capsys, "someone@gmail.com", "--no-network")
    assert result["provider"] == "gmail" and result["network"] is False
    assert [s["endpoint"]["host"] for s in result["servers"]] == [
        "imap.gmail.com",
        "pop.gmail.com",
        "smtp.gmail.com",
    ]


def test_nothing_found(fake_internet: FakeInternet, capsys: pytest.CaptureFixture[str]) -> None:
    fake_internet.add_host("ispdb.test")  # the network works; the domain has nothing
    assert run(["detect", EMAIL]) == ExitStatus.OK
    out = capsys.readouterr().out
    assert "No server found for example.test" in out and "[server]" in out
    assert "· guess      imap.example.test: does not resolve" in out


def test_not_an_address(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["detect", "not-an-address"]) == ExitStatus.USAGE
    assert "is not an email address" in capsys.readouterr().err


def test_console_script() -> None:
    done = subprocess.run(
        ["mailadvisor", "detect", "someone@gmail.com", "--no-network"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "imap.gmail.com:993" in done.stdout and "Traceback" not in done.stderr
