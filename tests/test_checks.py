"""``mailadvisor test`` and the checks library against the real Dovecot fixture.

POP3 is Dovecot's; SMTP submission is aiosmtpd on loopback with Dovecot's
certificate, so one ca_file covers every server, as for a self-hosted setup.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from advisor.checks import (
    CheckStatus,
    CheckTarget,
    parse_server_option,
    run_checks,
)
from advisor.cli import run
from advisor.discovery.dnslookup import DnsLookup
from advisor.errors import UsageError
from advisor.exitcodes import ExitStatus
from advisor.plugins.types import Endpoint, Protocol, Security
from advisor.profile import AuthConfig
from tests.harness.dovecot import Account, DovecotFactory, DovecotServer, find_free_ports
from tests.harness.netfakes import FakeInternet, ScriptedServer, SmtpServer, make_pki

# Any attempt to resolve or reach a non-loopback address fails the test.
pytestmark = pytest.mark.usefixtures("no_internet")

PASSWORD_ENV = "MAILADV_TEST_PASSWORD"
IMAP_IDS = [
    "imap.dns",
    "imap.tcp",
    "imap.tls",
    "imap.capability",
    "imap.auth",
    "imap.login",
    "imap.list",
    "imap.quota",
    "imap.appendlimit",
]
POP3_IDS = ["pop3.dns", "pop3.tcp", "pop3.tls", "pop3.login", "pop3.stat"]
SMTP_IDS = ["smtp.dns", "smtp.tcp", "smtp.tls", "smtp.ehlo", "smtp.login"]


@pytest.fixture(scope="module")
def smtp_tls(dovecot: DovecotServer) -> Iterator[SmtpServer]:
    tls = dovecot.tls
    with SmtpServer(
        tls.cert_file, tls.key_file, implicit_tls=True, logins=dovecot.check_password
    ) as server:
        yield server


@pytest.fixture(scope="module")
def smtp_starttls(dovecot: DovecotServer) -> Iterator[SmtpServer]:
    with SmtpServer(
        dovecot.tls.cert_file,
        dovecot.tls.key_file,
        implicit_tls=False,
        logins=dovecot.check_password,
    ) as server:
        yield server


def write_profile(
    path: Path,
    account: Account,
    *,
    host: str = "localhost",
    port: int,
    security: str = "tls",
    ca_file: Path | None,
    auth: str = f'password_env = "{PASSWORD_ENV}"',
) -> Path:
    ca = f'ca_file = "{ca_file}"\n' if ca_file else ""
    path.write_text(
        "version = 1\n"
        f'[account]\nemail = "{account.email}"\n'
        f'[server]\nhost = "{host}"\nport = {port}\nsecurity = "{security}"\n'
        f'username = "{account.username}"\n{ca}'
        f"[auth]\n{auth}\n",
        encoding="utf-8",
    )
    return path


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    status = run(["test", *args, "--json"])
    captured = capsys.readouterr()
    return status, json.loads(captured.out)


def statuses(report: dict) -> dict[str, str]:  # type: ignore[type-arg]
    return {r["id"]: r["status"] for r in report["results"]}


def by_id(report: dict, check: str) -> dict:  # type: ignore[type-arg]
    return next(r for r in report["results"] if r["id"] == check)


# --- everything works -------------------------------------------------------------------


def test_all_ok_on_implicit_tls(
    dovecot: DovecotServer,
    imap_account: Account,
    smtp_tls: SmtpServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    info = dovecot.info
    monkeypatch.setenv(PASSWORD_ENV, imap_account.password)
    profile = write_profile(
        tmp_path / "p.toml", imap_account, port=info.imaps_port, ca_file=info.ca_file
    )
    options = [
        "--profile",
        str(profile),
        "--pop3",
        f"tls://localhost:{info.pop3s_port}",
        "--smtp",
        f"tls://localhost:{smtp_tls.port}",
    ]
    status, report = run_json(capsys, *options)
    assert status == ExitStatus.OK, report
    assert list(statuses(report)) == IMAP_IDS + POP3_IDS + SMTP_IDS
    assert set(statuses(report).values()) == {"ok"}, report
    assert by_id(report, "imap.tls")["detail"].startswith("TLSv1.3; the certificate is valid for")
    assert "Sent = 'Sent'" in by_id(report, "imap.list")["detail"]
    assert "Trash = 'Trash'" in by_id(report, "imap.list")["detail"]
    assert "used of 1.0 GB" in by_id(report, "imap.quota")["detail"]
    assert "0 messages" in by_id(report, "pop3.stat")["detail"]
    assert "AUTH LOGIN PLAIN" in by_id(report, "smtp.ehlo")["detail"]
    assert report["source"] == "the profile's [server] table"

    # The same run for people: one line per check, each ticked.
    assert run(["test", *options]) == ExitStatus.OK
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line[:1] in "✓!✗-"]
    assert len(lines) == len(IMAP_IDS + POP3_IDS + SMTP_IDS)
    assert all(line.startswith("✓") for line in lines), out
    assert "Everything works." in out


def test_all_ok_with_starttls_everywhere(
    dovecot: DovecotServer,
    imap_account: Account,
    smtp_starttls: SmtpServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    info = dovecot.info
    monkeypatch.setenv(PASSWORD_ENV, imap_account.password)
    profile = write_profile(
        tmp_path / "p.toml",
        imap_account,
        port=info.imap_starttls_port,
        security="starttls",
        ca_file=info.ca_file,
    )
    status, report = run_json(
        capsys,
        "--profile",
        str(profile),
        "--pop3",
        f"starttls://localhost:{info.pop3_starttls_port}",
        "--smtp",
        f"starttls://localhost:{smtp_starttls.port}",
    )
    assert status == ExitStatus.OK, report
    results = statuses(report)
    assert set(results.values()) == {"ok"}, report
    for protocol in ("imap", "pop3", "smtp"):
        ids = list(results)
        # STARTTLS is checked, and before the TLS check.
        assert ids.index(f"{protocol}.starttls") == ids.index(f"{protocol}.tls") - 1
        assert "no fallback to plaintext" in by_id(report, f"{protocol}.starttls")["detail"]


def test_appendlimit_is_reported(
    dovecot_factory: DovecotFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = dovecot_factory(
        extra_config="protocol imap {\n  imap_capability = +APPENDLIMIT=35651584\n}\n"
    )
    account = server.add_user()
    monkeypatch.setenv(PASSWORD_ENV, account.password)
    target = CheckTarget(
        email=account.email,
        imap=Endpoint(Protocol.IMAP, "localhost", server.info.imaps_port, Security.TLS),
        auth=AuthConfig(password_env=PASSWORD_ENV),
        username=account.username,
        ca_file=server.info.ca_file,
        timeout=10,
    )
    report = run_checks(target)
    assert report.ok
    limit = next(r for r in report.results if r.id == "imap.appendlimit")
    assert limit.status is CheckStatus.OK and "34.0 MB" in limit.detail


# --- failures, their fixes and exit statuses --------------------------------------------


def test_wrong_password_fails_login_with_exit_3(
    dovecot: DovecotServer,
    imap_account: Account,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    info = dovecot.info
    wrong = "Wr0ng-Distinctive-Pa55word"
    monkeypatch.setenv(PASSWORD_ENV, wrong)
    profile = write_profile(
        tmp_path / "p.toml", imap_account, port=info.imaps_port, ca_file=info.ca_file
    )
    pop3 = f"tls://localhost:{info.pop3s_port}"
    status, report = run_json(capsys, "--profile", str(profile), "--pop3", pop3)
    assert status == ExitStatus.AUTH_FAILED
    login = by_id(report, "imap.login")
    assert login["status"] == "fail" and login["exit_status"] == ExitStatus.AUTH_FAILED
    assert imap_account.username in login["detail"]
    assert "password" in login["fix"]
    for later in ("imap.list", "imap.quota", "imap.appendlimit"):
        assert by_id(report, later)["status"] == "skip"
        assert "needs IMAP login" in by_id(report, later)["detail"]
    assert by_id(report, "pop3.login")["status"] == "fail"
    assert by_id(report, "pop3.stat")["status"] == "skip"

    assert run(["test", "--profile", str(profile), "--pop3", pop3]) == ExitStatus.AUTH_FAILED
    captured = capsys.readouterr()
    assert "✗ IMAP login" in captured.out and "fix: Check the user name" in captured.out
    for output in (captured.out, captured.err, json.dumps(report)):
        assert wrong not in output


def test_the_password_never_appears(
    dovecot: DovecotServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    secret = "Zq7-unMistakable-Secret-4417"
    account = dovecot.add_user(password=secret)
    info = dovecot.info
    monkeypatch.setenv(PASSWORD_ENV, secret)
    profile = write_profile(
        tmp_path / "p.toml", account, port=info.imap_starttls_port, security="starttls",
        ca_file=info.ca_file,
    )  # fmt: skip
    pop3 = f"tls://localhost:{info.pop3s_port}"
    assert run(["test", "--profile", str(profile), "--pop3", pop3]) == ExitStatus.OK
    assert run(["test", "--profile", str(profile), "--pop3", pop3, "--json"]) == ExitStatus.OK
    captured = capsys.readouterr()
    assert "logged in as" in captured.out
    assert secret not in captured.out + captured.err


def test_wrong_port_fails_tcp_with_exit_4(
    dovecot: DovecotServer,
    imap_account: Account,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, imap_account.password)
    (closed,) = find_free_ports("127.0.0.1")
    profile = write_profile(
        tmp_path / "p.toml", imap_account, port=closed, ca_file=dovecot.info.ca_file
    )
    status, report = run_json(capsys, "--profile", str(profile))
    assert status == ExitStatus.CONNECT_FAILED
    tcp = by_id(report, "imap.tcp")
    assert tcp["status"] == "fail" and "refused" in tcp["detail"]
    assert "993" in tcp["fix"] and "143" in tcp["fix"]
    assert by_id(report, "imap.dns")["status"] == "ok"
    assert {r["status"] for r in report["results"][2:]} == {"skip"}


def test_untrusted_certificate_fails_tls_with_a_fix_naming_ca_file(
    dovecot: DovecotServer,
    imap_account: Account,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, imap_account.password)
    profile = write_profile(
        tmp_path / "p.toml", imap_account, port=dovecot.info.imaps_port, ca_file=None
    )
    status, report = run_json(capsys, "--profile", str(profile))
    assert status == ExitStatus.CONNECT_FAILED
    tls = by_id(report, "imap.tls")
    assert tls["status"] == "fail" and "not trusted" in tls["detail"]
    assert "ca_file" in tls["fix"]
    assert by_id(report, "imap.login")["status"] == "skip"
    assert run(["test", "--profile", str(profile)]) == ExitStatus.CONNECT_FAILED
    out = capsys.readouterr().out
    assert "✗ IMAP TLS and certificate" in out and "ca_file" in out


def test_implicit_tls_on_a_starttls_port(
    dovecot: DovecotServer,
    imap_account: Account,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, imap_account.password)
    info = dovecot.info
    profile = write_profile(
        tmp_path / "p.toml", imap_account, port=info.imap_starttls_port, ca_file=info.ca_file
    )
    status, report = run_json(capsys, "--profile", str(profile))
    assert status == ExitStatus.CONNECT_FAILED
    tls = by_id(report, "imap.tls")
    assert "does not speak TLS" in tls["detail"] and 'security = "starttls"' in tls["fix"]


def test_starttls_not_offered_is_never_a_plaintext_login(
    dovecot: DovecotServer,
    imap_account: Account,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Dovecot's plaintext listener offers no STARTTLS (and would accept the password).
    monkeypatch.setenv(PASSWORD_ENV, imap_account.password)
    info = dovecot.info
    profile = write_profile(
        tmp_path / "p.toml",
        imap_account,
        host=info.imap_plain_host,
        port=info.imap_plain_port,
        security="starttls",
        ca_file=info.ca_file,
    )
    status, report = run_json(capsys, "--profile", str(profile))
    assert status == ExitStatus.CONNECT_FAILED
    starttls = by_id(report, "imap.starttls")
    assert starttls["status"] == "fail" and "does not offer STARTTLS" in starttls["detail"]
    assert 'security = "tls"' in starttls["fix"]
    assert by_id(report, "imap.login")["status"] == "skip"


IMAP_CAPS = b"* CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN\r\na1 OK done\r\n"


@pytest.mark.parametrize(
    ("protocol", "greeting", "replies", "expected"),
    [
        pytest.param(
            Protocol.IMAP,
            b"* PREAUTH welcome, you are logged in\r\n",
            {b"a1 CAPABILITY": IMAP_CAPS, b"a2 STARTTLS": b"a2 OK go\r\n"},
            "PREAUTH",
            id="imap-preauth",
        ),
        pytest.param(
            Protocol.IMAP,
            b"* OK ready\r\n",
            {b"a1 CAPABILITY": IMAP_CAPS, b"a2 STARTTLS": b"a2 BAD not now\r\n"},
            "refused STARTTLS",
            id="imap-bad-reply",
        ),
        pytest.param(
            Protocol.IMAP,
            b"* OK ready\r\n",
            {
                b"a1 CAPABILITY": IMAP_CAPS,
                b"a2 STARTTLS": b"a2 OK Begin TLS\r\n* OK [CAPABILITY IMAP4rev1] injected\r\n",
            },
            "sent data after agreeing to STARTTLS",
            id="imap-injection",
        ),
        pytest.param(
            Protocol.POP3,
            b"+OK ready\r\n",
            {b"CAPA": b"+OK\r\nUSER\r\nSASL PLAIN\r\n.\r\n"},
            "does not offer STARTTLS",
            id="pop3-stripped",
        ),
        pytest.param(
            Protocol.SMTP,
            b"220 mail.example.test ESMTP\r\n",
            {
                b"EHLO": b"250-mail.example.test\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n",
                b"STARTTLS": b"220 go ahead\r\n250 injected\r\n",
            },
            "sent data after agreeing to STARTTLS",
            id="smtp-injection",
        ),
    ],
)
def test_starttls_attacks_abort_before_any_password(
    protocol: Protocol,
    greeting: bytes,
    replies: dict[bytes, bytes],
    expected: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "Never-In-Clear-9321"
    monkeypatch.setenv(PASSWORD_ENV, secret)
    with ScriptedServer(greeting, replies) as hostile:
        endpoint = Endpoint(protocol, "127.0.0.1", hostile.port, Security.STARTTLS)
        target = CheckTarget(
            email="alex@example.test",
            imap=None,
            auth=AuthConfig(password_env=PASSWORD_ENV),
            timeout=5,
        )
        report = run_checks(replace(target, **{protocol.value: endpoint}))
    check = next(r for r in report.results if r.id == f"{protocol.value}.starttls")
    assert check.status is CheckStatus.FAIL and expected in check.detail
    assert report.exit_status is ExitStatus.CONNECT_FAILED
    assert {r.status for r in report.results[report.results.index(check) + 1 :]} == {
        CheckStatus.SKIP
    }
    assert secret.encode() not in hostile.received
    assert b"LOGIN" not in hostile.received.upper() and b"AUTH " not in hostile.received.upper()


def test_unreadable_secret_fails_login_with_exit_2(
    dovecot: DovecotServer,
    imap_account: Account,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    profile = write_profile(
        tmp_path / "p.toml",
        imap_account,
        port=dovecot.info.imaps_port,
        ca_file=dovecot.info.ca_file,
    )
    status, report = run_json(capsys, "--profile", str(profile))
    assert status == ExitStatus.USAGE
    login = by_id(report, "imap.login")
    assert login["status"] == "fail" and PASSWORD_ENV in login["detail"]
    assert "environment variable" in login["fix"]
    assert by_id(report, "imap.tls")["status"] == "ok"


def test_oauth2_against_a_server_without_it(
    dovecot: DovecotServer,
    imap_account: Account,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    profile = write_profile(
        tmp_path / "p.toml",
        imap_account,
        port=dovecot.info.imaps_port,
        ca_file=dovecot.info.ca_file,
        auth='method = "oauth2"\ntoken_command = "false"',
    )
    status, report = run_json(capsys, "--profile", str(profile))
    assert status == ExitStatus.AUTH_FAILED
    auth = by_id(report, "imap.auth")
    assert auth["status"] == "fail" and "not OAuth2" in auth["detail"]
    assert 'method = "password"' in auth["fix"]


def test_dns_failure_skips_everything_after_it(fake_internet: FakeInternet) -> None:
    target = CheckTarget(
        email="alex@example.test",
        imap=Endpoint(Protocol.IMAP, "imap.example.test", 993),
        auth=AuthConfig(password_env=PASSWORD_ENV),
    )
    report = run_checks(target, resolve=DnsLookup(fake_internet.options()).addresses)
    assert report.exit_status is ExitStatus.CONNECT_FAILED
    dns = report.results[0]
    assert dns.status is CheckStatus.FAIL and "does not resolve" in dns.detail
    assert "typos" in dns.fix
    assert [r.status for r in report.results[1:]] == [CheckStatus.SKIP] * (len(IMAP_IDS) - 1)
    assert "needs IMAP DNS" in report.results[1].detail


def test_certificate_close_to_expiry_is_a_warning(tmp_path: Path) -> None:
    soon = datetime.now(UTC) + timedelta(days=5)
    pki = make_pki(tmp_path / "pki", names=("localhost",), not_after=soon)
    logins = {("alex@example.test", "s3cret")}
    with SmtpServer(
        pki.cert_file, pki.key_file, implicit_tls=True, logins=lambda u, p: (u, p) in logins
    ) as smtp:
        target = CheckTarget(
            email="alex@example.test",
            imap=None,
            smtp=Endpoint(Protocol.SMTP, "localhost", smtp.port, Security.TLS),
            ca_file=pki.ca_file,
            timeout=10,
            secret=lambda: "s3cret",
        )
        seen: list[str] = []
        report = run_checks(target, on_result=lambda r: seen.append(r.id))
    assert seen == SMTP_IDS  # reported as they happen
    tls = next(r for r in report.results if r.id == "smtp.tls")
    assert tls.status is CheckStatus.WARN and "it expires in 4 days" in tls.detail
    assert "renewed" in tls.fix
    assert report.exit_status is ExitStatus.OK  # a warning still passes


# --- where the servers come from ------------------------------------------------------


def test_servers_from_discovery_are_checked_and_flagged(
    dovecot: DovecotServer,
    imap_account: Account,
    fake_internet: FakeInternet,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # No [server]: the generic plugin's discovery finds Dovecot through SRV records.
    info = dovecot.info
    fake_internet.dns.add_srv("_imaps._tcp.example.test", "localhost", info.imaps_port)
    fake_internet.dns.add_srv("_pop3s._tcp.example.test", "localhost", info.pop3s_port)
    monkeypatch.setenv("SSL_CERT_FILE", str(info.ca_file))  # the system's trust, for this test
    monkeypatch.setenv(PASSWORD_ENV, imap_account.password)
    account = dovecot.add_user(f"srv-{imap_account.username}@example.test")
    monkeypatch.setenv(PASSWORD_ENV, account.password)
    profile = tmp_path / "p.toml"
    profile.write_text(
        f'version = 1\n[account]\nemail = "{account.email}"\n'
        f'[auth]\npassword_env = "{PASSWORD_ENV}"\n'
    )
    status, report = run_json(capsys, "--profile", str(profile))
    assert status == ExitStatus.OK, report
    assert report["source"] == "the generic plugin (srv (_imaps._tcp.example.test))"
    dns = by_id(report, "imap.dns")
    assert dns["status"] == "warn" and "outside example.test" in dns["detail"]
    assert "[server]" in dns["fix"]
    assert by_id(report, "imap.login")["status"] == "ok"
    assert by_id(report, "pop3.stat")["status"] == "ok"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("tls://mail.example.test:995", ("mail.example.test", 995, Security.TLS)),
        ("starttls://mail.example.test", ("mail.example.test", 110, Security.STARTTLS)),
        ("mail.example.test:1995", ("mail.example.test", 1995, Security.TLS)),
        ("tls://[::1]:995", ("::1", 995, Security.TLS)),
    ],
)
def test_server_option(spec: str, expected: tuple[str, int, Security]) -> None:
    e = parse_server_option(Protocol.POP3, spec)
    assert (e.host, e.port, e.security) == expected


@pytest.mark.parametrize("spec", ["none://x:110", "ftp://x", "tls://:995", "tls://x:99999"])
def test_server_option_refuses(spec: str) -> None:
    with pytest.raises(UsageError, match="tls://HOST:PORT"):
        parse_server_option(Protocol.POP3, spec)


def test_bad_server_option_is_a_usage_error(
    dovecot: DovecotServer, imap_account: Account, tmp_path: Path
) -> None:
    profile = write_profile(
        tmp_path / "p.toml", imap_account, port=dovecot.info.imaps_port, ca_file=None
    )
    assert run(["test", "--profile", str(profile), "--smtp", "ftp://x"]) == ExitStatus.USAGE
