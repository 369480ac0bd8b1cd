"""The STARTTLS attacks, each through a man-in-the-middle in front of the real Dovecot.

Every attack of "Why TLS is better without STARTTLS" (USENIX Security 2021) that
applies to IMAP: STARTTLS stripped from the capabilities, STARTTLS refused with
BAD, a PREAUTH greeting, bytes injected after "OK Begin TLS", and state (fake
capabilities, an ALERT, a LIST) slipped in before TLS. The proxy records every
byte; each test asserts that the password never crossed in any form and that
the user got a clear error with exit status 4 -- from ``migrate`` and from
``mailadvisor test``. The proxy reaches Dovecot from 127.0.0.2, where Dovecot
refuses passwords before TLS (LOGINDISABLED), as a remote server would.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from advisor.cli import run
from advisor.connection.imap import ImapTarget, connect, login
from advisor.errors import TLSError
from advisor.exitcodes import ExitStatus
from advisor.plugins.types import Security
from advisor.stores.base import ReaderOptions
from advisor.stores.pop3 import Pop3Reader
from tests.harness.dovecot import Account, DovecotServer
from tests.harness.hostile_server import HostileServer, SmtpScript, server_context
from tests.harness.mailgen import generate, write_maildir
from tests.harness.mitm import Attack, StarttlsMitm, credential_forms, starttls_profile

PASSWORD = "Zx9!secret-canary-7Q"
PASSWORD_ENV = "MA_SECURITY_STARTTLS_PASSWORD"
ALERT = b"Your mailbox is suspended: call +1-555-0100 now"

ATTACKS = {
    "stripped": (Attack(strip_starttls=True), "does not offer STARTTLS"),
    "bad": (Attack(refuse_starttls=b"BAD"), "refused STARTTLS"),
    "preauth": (Attack(preauth=True), "PREAUTH"),
    "injected": (
        Attack(inject_after_ok=b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN]\r\n"),
        "sent data after agreeing to STARTTLS",
    ),
}


@pytest.fixture
def account(dovecot: DovecotServer) -> Account:
    return dovecot.add_user(password=PASSWORD)


@pytest.fixture
def password_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    yield PASSWORD_ENV


@pytest.fixture
def maildir(tmp_path: Path) -> Path:
    root = tmp_path / "Maildir"
    write_maildir(root, generate(3, sizes="small"))
    return root


def _mitm(dovecot: DovecotServer, attack: Attack) -> StarttlsMitm:
    return StarttlsMitm((dovecot.info.host, dovecot.info.imap_starttls_port), attack)


def _profile(
    tmp_path: Path, dovecot: DovecotServer, account: Account, port: int, source: Path
) -> Path:
    return starttls_profile(
        tmp_path,
        email=account.email,
        username=account.username,
        port=port,
        ca_file=dovecot.info.ca_file,
        password_env=PASSWORD_ENV,
        source=source,
    )


def _assert_no_credential(mitm: StarttlsMitm, account: Account) -> None:
    leaked = mitm.client_sent_any(credential_forms(account.username, PASSWORD))
    assert leaked == [], f"the password crossed in plaintext: {leaked}"
    assert b"LOGIN" not in bytes(mitm.from_client).upper()
    assert b"AUTHENTICATE" not in bytes(mitm.from_client).upper()


def test_honest_relay_migrates_and_the_server_is_strict_from_the_proxy(
    tmp_path: Path,
    dovecot: DovecotServer,
    account: Account,
    password_env: str,
    maildir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The baseline the attacks are measured against: the relay itself breaks nothing,
    # and Dovecot, reached from 127.0.0.2, refuses passwords before TLS.
    with _mitm(dovecot, Attack()) as mitm:
        profile = _profile(tmp_path, dovecot, account, mitm.port, maildir)
        status = run(["migrate", "--profile", str(profile), "--journal", str(tmp_path / "j")])
    out = capsys.readouterr()
    assert status == ExitStatus.OK, out.err
    assert mitm.tls_started >= 2  # the control connection and at least one upload worker
    assert b"LOGINDISABLED" in bytes(mitm.from_server)
    _assert_no_credential(mitm, account)


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_migrate_aborts_on_starttls_attack(
    name: str,
    tmp_path: Path,
    dovecot: DovecotServer,
    account: Account,
    password_env: str,
    maildir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    attack, message = ATTACKS[name]
    with _mitm(dovecot, attack) as mitm:
        profile = _profile(tmp_path, dovecot, account, mitm.port, maildir)
        status = run(["migrate", "--profile", str(profile), "--journal", str(tmp_path / "j")])
    out = capsys.readouterr()
    assert status == ExitStatus.CONNECT_FAILED
    assert message in out.err
    assert "Traceback" not in out.err
    assert mitm.connections == 1  # it gave up; it did not retry in plaintext
    _assert_no_credential(mitm, account)
    # Nothing the server (or the attacker) said before TLS is shown.
    assert "Dovecot" not in out.err and "Begin TLS" not in out.err


@pytest.mark.parametrize("from_connection", [1, 2])
@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_connection_test_fails_on_starttls_attack(
    name: str,
    from_connection: int,
    tmp_path: Path,
    dovecot: DovecotServer,
    account: Account,
    password_env: str,
    maildir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Connection 1 is the STARTTLS probe of `mailadvisor test`, connection 2 the session
    # that logs in: an attacker may leave the probe alone and strike the second.
    attack, message = ATTACKS[name]
    attack = dataclasses.replace(attack, from_connection=from_connection)
    with _mitm(dovecot, attack) as mitm:
        profile = _profile(tmp_path, dovecot, account, mitm.port, maildir)
        status = run(["test", "--profile", str(profile), "--json", "--timeout", "5"])
    out = capsys.readouterr()
    assert status == ExitStatus.CONNECT_FAILED, out.out
    results = {r["id"]: r for r in json.loads(out.out)["results"]}
    failed = "imap.starttls" if from_connection == 1 else "imap.capability"
    assert results[failed]["status"] == "fail", results[failed]
    if from_connection == 2:
        assert results["imap.starttls"]["status"] == "ok"
        assert message in results[failed]["detail"]
    assert results["imap.login"]["status"] == "skip"
    _assert_no_credential(mitm, account)
    assert PASSWORD not in out.out + out.err


def test_injection_in_a_separate_write_aborts_too(dovecot: DovecotServer, account: Account) -> None:
    # The injected bytes may sit in the kernel rather than in imaplib's buffer, or
    # arrive during the handshake: either way the connection must not go on.
    attack = Attack(inject_after_ok=b"* OK [CAPABILITY IMAP4rev1]\r\n", inject_separately=True)
    with _mitm(dovecot, attack) as mitm:
        target = ImapTarget(
            "localhost", mitm.port, Security.STARTTLS, dovecot.info.ca_file, timeout=5
        )
        with pytest.raises(TLSError) as caught:
            connect(target)
    assert caught.value.exit_status is ExitStatus.CONNECT_FAILED
    _assert_no_credential(mitm, account)


def test_state_from_before_tls_is_discarded(
    tmp_path: Path,
    dovecot: DovecotServer,
    account: Account,
    password_env: str,
    maildir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    info = dovecot.info
    # What the real server says after STARTTLS, seen through an honest relay.
    with _mitm(dovecot, Attack()) as honest:
        target = ImapTarget("localhost", honest.port, Security.STARTTLS, info.ca_file, timeout=10)
        client = connect(target)
        real = set(client.capabilities())
        client.shutdown()
    assert b"STARTTLS" not in real and b"LOGINDISABLED" not in real

    attack = Attack(
        add_capabilities=("X-INJECTED", "AUTH=PLAIN", "AUTH=ANONYMOUS"),
        before_ok=(
            b"* CAPABILITY IMAP4rev1 X-INJECTED AUTH=PLAIN\r\n"
            b"* OK [ALERT] " + ALERT + b"\r\n"
            b'* LIST () "/" Phished\r\n'
            b"* 99 EXISTS\r\n"
        ),
    )
    with _mitm(dovecot, attack) as mitm:
        target = ImapTarget("localhost", mitm.port, Security.STARTTLS, info.ca_file, timeout=10)
        client = connect(target)
        try:
            assert b"X-INJECTED" in bytes(mitm.to_client)  # the attack did reach the client
            assert set(client.capabilities()) == real
            assert client.welcome == b""  # the greeting came before TLS
            kept = client._imap.untagged_responses
            assert not {"ALERT", "LIST", "EXISTS", "OK", "CAPABILITY"} & set(kept), kept
            login(client, account.username, PASSWORD)
            names = {name for _flags, _delim, name in client.list_folders()}
            assert "Phished" not in names and "INBOX" in names
        finally:
            client.logout()

        profile = _profile(tmp_path, dovecot, account, mitm.port, maildir)
        status = run(["migrate", "--profile", str(profile), "--journal", str(tmp_path / "j")])
    out = capsys.readouterr()
    assert status == ExitStatus.OK, out.err
    assert ALERT.decode() not in out.out + out.err
    _assert_no_credential(mitm, account)


def test_plaintext_listener_with_starttls_never_sends_the_password(
    dovecot: DovecotServer,
) -> None:
    # No proxy needed: the plaintext listener does not offer STARTTLS at all.
    info = dovecot.info
    target = ImapTarget(
        info.imap_plain_host, info.imap_plain_port, Security.STARTTLS, info.ca_file, timeout=5
    )
    with pytest.raises(TLSError, match="does not offer STARTTLS") as caught:
        connect(target)
    assert caught.value.exit_status is ExitStatus.CONNECT_FAILED


# --- POP3 and SMTP ------------------------------------------------------------------

POP3_ATTACKS = {
    "stripped": (Attack(strip_starttls=True), "does not offer STARTTLS (STLS)"),
    "refused": (Attack(refuse_starttls=b"-ERR"), "refused STARTTLS (STLS)"),
    "injected": (Attack(inject_after_ok=b"+OK injected\r\n"), "sent data after agreeing"),
}


def _pop3_mitm(dovecot: DovecotServer, attack: Attack) -> StarttlsMitm:
    info = dovecot.info
    return StarttlsMitm((info.host, info.pop3_starttls_port), attack, protocol="pop3")


def _pop3_reader(dovecot: DovecotServer, account: Account, port: int) -> Pop3Reader:
    extra = {
        "host": "localhost",
        "port": str(port),
        "security": "starttls",
        "username": account.username,
        "ca_file": str(dovecot.info.ca_file),
        "timeout": "5",
    }
    return Pop3Reader(options=ReaderOptions(extra=extra), password=PASSWORD)


def _assert_no_pop3_credential(mitm: StarttlsMitm, account: Account) -> None:
    leaked = mitm.client_sent_any(credential_forms(account.username, PASSWORD))
    assert leaked == [], f"the password crossed in plaintext: {leaked}"
    sent = bytes(mitm.from_client).upper()
    assert b"USER " not in sent and b"PASS " not in sent and b"AUTH " not in sent


def test_pop3_reader_through_an_honest_relay(dovecot: DovecotServer, account: Account) -> None:
    with _pop3_mitm(dovecot, Attack()) as mitm:
        reader = _pop3_reader(dovecot, account, mitm.port)
        assert list(reader.messages()) == []  # logged in over TLS; the mailbox is empty
    assert mitm.tls_started == 1
    assert "USER" in reader.commands_sent and "PASS" in reader.commands_sent
    _assert_no_pop3_credential(mitm, account)  # they went inside TLS


@pytest.mark.parametrize("name", sorted(POP3_ATTACKS))
def test_pop3_reader_aborts_on_starttls_attack(
    name: str, dovecot: DovecotServer, account: Account
) -> None:
    attack, message = POP3_ATTACKS[name]
    with _pop3_mitm(dovecot, attack) as mitm:
        reader = _pop3_reader(dovecot, account, mitm.port)
        with pytest.raises(TLSError, match=re.escape(message)) as caught:
            list(reader.messages())
    assert caught.value.exit_status is ExitStatus.CONNECT_FAILED
    assert "USER" not in reader.commands_sent and "PASS" not in reader.commands_sent
    _assert_no_pop3_credential(mitm, account)


def _tls_profile(tmp_path: Path, dovecot: DovecotServer, account: Account, source: Path) -> Path:
    """IMAP straight to Dovecot over implicit TLS: the POP3/SMTP side is under test."""
    return starttls_profile(
        tmp_path,
        email=account.email,
        username=account.username,
        port=dovecot.info.imaps_port,
        ca_file=dovecot.info.ca_file,
        password_env=PASSWORD_ENV,
        source=source,
        security="tls",
    )


def _check_results(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, dict]:
    status = run(argv)
    out = capsys.readouterr()
    assert PASSWORD not in out.out + out.err
    return status, {r["id"]: r for r in json.loads(out.out)["results"]}


@pytest.mark.parametrize("from_connection", [1, 2])
@pytest.mark.parametrize("name", sorted(POP3_ATTACKS))
def test_connection_test_of_pop3_fails_on_starttls_attack(
    name: str,
    from_connection: int,
    tmp_path: Path,
    dovecot: DovecotServer,
    account: Account,
    password_env: str,
    maildir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    attack, message = POP3_ATTACKS[name]
    attack = dataclasses.replace(attack, from_connection=from_connection)
    profile = _tls_profile(tmp_path, dovecot, account, maildir)
    with _pop3_mitm(dovecot, attack) as mitm:
        pop3 = f"starttls://localhost:{mitm.port}"
        argv = ["test", "--profile", str(profile), "--pop3", pop3, "--json", "--timeout", "5"]
        status, results = _check_results(capsys, argv)
    assert status == ExitStatus.CONNECT_FAILED
    assert results["imap.login"]["status"] == "ok"  # the IMAP side is honest
    if from_connection == 1:
        assert results["pop3.starttls"]["status"] == "fail"
    else:  # the probe passed; the session that would log in was attacked
        assert results["pop3.starttls"]["status"] == "ok"
        assert results["pop3.login"]["status"] == "fail"
        assert message in results["pop3.login"]["detail"]
    _assert_no_pop3_credential(mitm, account)


SMTP_ATTACKS = {
    "strip": "does not offer STARTTLS",
    "refuse": "refused STARTTLS",
    "inject": "sent data after agreeing",
}


@pytest.mark.parametrize("from_connection", [1, 2])
@pytest.mark.parametrize("attack", sorted(SMTP_ATTACKS))
def test_connection_test_of_smtp_fails_on_starttls_attack(
    attack: str,
    from_connection: int,
    tmp_path: Path,
    dovecot: DovecotServer,
    account: Account,
    password_env: str,
    maildir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    script = SmtpScript(server_context(dovecot.tls), attack, from_connection)
    profile = _tls_profile(tmp_path, dovecot, account, maildir)
    with HostileServer(script) as smtp:
        argv = ["test", "--profile", str(profile), "--json", "--timeout", "5"]
        argv += ["--smtp", f"starttls://localhost:{smtp.port}"]
        status, results = _check_results(capsys, argv)
    assert status == ExitStatus.CONNECT_FAILED
    assert smtp.errors == []
    if from_connection == 1:
        assert results["smtp.starttls"]["status"] == "fail"
    else:
        assert results["smtp.starttls"]["status"] == "ok"
        assert results["smtp.ehlo"]["status"] == "fail"
        assert SMTP_ATTACKS[attack] in results["smtp.ehlo"]["detail"]
    assert script.received_after_tls == bytearray()  # nothing was said to it over "TLS"


def test_connection_test_of_smtp_through_an_honest_server(
    tmp_path: Path,
    dovecot: DovecotServer,
    account: Account,
    password_env: str,
    maildir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    script = SmtpScript(server_context(dovecot.tls))
    profile = _tls_profile(tmp_path, dovecot, account, maildir)
    with HostileServer(script) as smtp:
        argv = ["test", "--profile", str(profile), "--json", "--timeout", "5"]
        argv += ["--smtp", f"starttls://localhost:{smtp.port}"]
        status, results = _check_results(capsys, argv)
    assert status == ExitStatus.OK, results
    assert "AUTH PLAIN" in results["smtp.ehlo"]["detail"]  # learnt over TLS, not before
    assert b"EHLO" in bytes(script.received_after_tls).upper()  # asked again over TLS
