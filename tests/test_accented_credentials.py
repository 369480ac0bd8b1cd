"""Passwords and user names beyond ASCII sign in everywhere, and are sent as given.

The real Dovecot fixture holds users whose passwords have umlauts and a euro sign,
one whose user name is an internationalised address (``josé.N@bücher.de``) and one
whose password is stored in NFD (``a`` + combining diaeresis): Dovecot compares bytes,
so that user signs in only if the password crosses unchanged, and its NFC twin is
refused. Through ``mailadvisor test`` (IMAP, POP3 and SMTP submission), ``migrate``,
``verify``, ``scan`` of a live POP3 source and the wizard, from each place a secret
comes from. A LOGIN-only hostile server that refuses 8-bit LOGIN gets the plain-words
error (exit 3), and one offering UTF8=ACCEPT gets ENABLE for an internationalised name.
"""

from __future__ import annotations

import json
import os
import secrets
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import keyring
import pytest

from advisor.checks import CheckStatus, CheckTarget, run_checks
from advisor.cli import run
from advisor.cli.wizard.flow import Wizard
from advisor.connection.imap import ImapTarget, SecureIMAPClient, imap_session
from advisor.errors import (
    AuthenticationError,
    ConnectError,
    CredentialCharactersError,
    ProtocolError,
    UsageError,
)
from advisor.exitcodes import ExitStatus
from advisor.migration import labels as gmail_labels
from advisor.migration.upload import Batch, PipelinedAppender, UploadJob, quote_mailbox
from advisor.plugins.manager import load_plugins
from advisor.plugins.types import Endpoint, Protocol, Security
from advisor.profile import AuthConfig
from advisor.secrets import KEYRING_SERVICE, resolve_secret
from advisor.stores.base import ReaderOptions
from advisor.stores.pop3 import Pop3Reader
from tests.harness.courier import CourierFactory
from tests.harness.dovecot import Account, DovecotServer
from tests.harness.hostile_server import HostileServer, LoginScript, server_context
from tests.harness.mailgen import crlf, generate, write_maildir
from tests.harness.migrate_helpers import body_counts, server_messages
from tests.harness.netfakes import SmtpServer
from tests.test_oauth_tokens import MemoryKeyring
from tests.test_wizard import CTRL_U, ENTER, ScriptedAsker, imap_questions

ENV = "MA_ACCENTED_PASSWORD"
UMLAUT = "pässwört€1"
NFD = unicodedata.normalize("NFD", "Pässwört€-nfd")
FOLDERS = [("INBOX",), ("Sent",)]


def _intl_name() -> str:
    return f"josé.{secrets.token_hex(3)}@bücher.de"


@pytest.fixture
def umlaut(dovecot: DovecotServer) -> Account:
    return dovecot.add_user(password=UMLAUT)


@pytest.fixture
def intl(dovecot: DovecotServer) -> Account:
    """An internationalised address as the user name, with a password beyond ASCII too."""
    return dovecot.add_user(_intl_name(), "clé-Ünïcødé€")


@pytest.fixture
def nfd(dovecot: DovecotServer) -> Account:
    account = dovecot.add_user(password=NFD)
    assert unicodedata.normalize("NFC", NFD) != NFD
    # The fixture's passwd-file holds the NFD bytes (written as UTF-8, not normalised).
    line = (dovecot.passwd_dir / account.username).read_bytes()
    assert b":{PLAIN}" + NFD.encode() + b":" in line
    return account


@pytest.fixture(params=["umlaut", "intl", "nfd"])
def account(request: pytest.FixtureRequest) -> Account:
    return request.getfixturevalue(str(request.param))  # type: ignore[no-any-return]


@pytest.fixture
def smtp(dovecot: DovecotServer) -> Iterator[SmtpServer]:
    """Submission that signs users in against Dovecot's own passdb, byte for byte."""
    with SmtpServer(
        dovecot.tls.cert_file,
        dovecot.tls.key_file,
        implicit_tls=True,
        logins=dovecot.check_password,
    ) as server:
        yield server


def profile(
    path: Path,
    dovecot: DovecotServer,
    account: Account,
    *,
    auth: str = f'password_env = "{ENV}"',
    source: str = "",
    port: int | None = None,
) -> Path:
    info = dovecot.info
    path.write_text(
        f"""version = 1
[account]
email = "{account.email}"
provider = "generic"
[server]
host = "{info.hostname}"
port = {port or info.imaps_port}
security = "tls"
username = "{account.username}"
ca_file = "{info.ca_file}"
[auth]
method = "password"
{auth}
{source}""",
        encoding="utf-8",
    )
    return path


def results(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, dict]]:  # type: ignore[type-arg]
    status = run(list(argv))
    out = capsys.readouterr().out
    return status, {r["id"]: r for r in json.loads(out)["results"]}


# --- the real server: every command, every protocol ------------------------------------


def test_connection_test_signs_in_over_imap_pop3_and_smtp(
    account: Account,
    dovecot: DovecotServer,
    smtp: SmtpServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(ENV, account.password)
    path = profile(tmp_path / "p.toml", dovecot, account)
    info = dovecot.info
    status, checks = results(
        capsys,
        "test",
        "--profile",
        str(path),
        "--pop3",
        f"tls://{info.hostname}:{info.pop3s_port}",
        "--smtp",
        f"tls://{info.hostname}:{smtp.port}",
        "--json",
    )
    assert status == ExitStatus.OK, checks
    assert {c["status"] for c in checks.values()} == {"ok"}, checks
    assert checks["imap.login"]["detail"].startswith(f"logged in as {account.username}")
    assert "(AUTH PLAIN)" in checks["pop3.login"]["detail"]
    assert "(AUTH PLAIN)" in checks["smtp.login"]["detail"]
    # SMTP got the user name as UTF-8 bytes through SASL PLAIN.
    assert smtp.auth.seen == [("PLAIN", account.username.encode())]


def test_the_nfd_password_is_sent_as_given_and_its_nfc_twin_is_refused(
    nfd: Account,
    dovecot: DovecotServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A password command printing the NFD bytes: the way a password manager hands it over.
    script = tmp_path / "pass"
    script.write_text('#!/bin/sh\nprintf "%s\\n" "$MA_NFD_SOURCE"\n')
    script.chmod(0o700)
    monkeypatch.setenv("MA_NFD_SOURCE", NFD)
    path = profile(tmp_path / "p.toml", dovecot, nfd, auth=f'password_command = "{script}"')
    assert resolve_secret(AuthConfig(password_command=str(script)), nfd.email) == NFD
    status, checks = results(capsys, "test", "--profile", str(path), "--json")
    assert status == ExitStatus.OK, checks

    nfc = unicodedata.normalize("NFC", NFD)
    monkeypatch.setenv("MA_NFD_SOURCE", nfc)
    status, checks = results(capsys, "test", "--profile", str(path), "--json")
    assert status == ExitStatus.AUTH_FAILED
    assert checks["imap.login"]["status"] == "fail"
    assert "refused the login" in checks["imap.login"]["detail"]
    assert nfc not in checks["imap.login"]["detail"] and NFD not in checks["imap.login"]["detail"]


def test_migrate_and_verify_with_accented_credentials(
    account: Account,
    dovecot: DovecotServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    maildir = tmp_path / "Maildir"
    write_maildir(maildir, list(generate(12, FOLDERS, seed=3, sizes="small")))
    monkeypatch.setenv(ENV, account.password)
    source = f'[source]\nkind = "maildir"\npath = "{maildir}"\n'
    path = profile(tmp_path / "p.toml", dovecot, account, source=source)
    journal = str(tmp_path / "journal")

    assert run(["migrate", "--profile", str(path), "--journal", journal, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["uploaded"] == 12
    assert sum(body_counts(dovecot, account).values()) == 12
    assert run(["verify", "--profile", str(path), "--json"]) == ExitStatus.OK
    capsys.readouterr()

    monkeypatch.setenv(ENV, account.password + "x")
    assert run(["migrate", "--profile", str(path), "--journal", journal]) == ExitStatus.AUTH_FAILED
    err = capsys.readouterr().err
    assert "refused the login" in err and "Traceback" not in err
    assert account.password not in err


def test_a_keyring_password_beyond_ascii_migrates(
    intl: Account, dovecot: DovecotServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    maildir = tmp_path / "Maildir"
    write_maildir(maildir, list(generate(3, sizes="small")))
    memory, previous = MemoryKeyring(), keyring.get_keyring()
    keyring.set_keyring(memory)
    try:
        keyring.set_password(KEYRING_SERVICE, intl.email, intl.password)
        source = f'[source]\nkind = "maildir"\npath = "{maildir}"\n'
        path = profile(tmp_path / "p.toml", dovecot, intl, auth="keyring = true", source=source)
        status = run(["migrate", "--profile", str(path), "--journal", str(tmp_path / "j")])
        assert status == ExitStatus.OK, capsys.readouterr()
    finally:
        keyring.set_keyring(previous)
    assert sum(body_counts(dovecot, intl).values()) == 3


def test_scan_of_a_live_pop3_account_with_accented_credentials(
    intl: Account,
    dovecot: DovecotServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    msgs = list(generate(4, [("INBOX",)], seed=8, sizes="small"))
    info = dovecot.info
    target = ImapTarget(info.hostname, info.imaps_port, ca_file=info.ca_file, timeout=10)
    with imap_session(target, intl.username, intl.password) as client:
        for m in msgs:
            client.append("INBOX", crlf(m.data))
    user = intl.username.replace("@", "%40")
    url = f"pop3s://{user}@{info.hostname}:{info.pop3s_port}"
    source = f'[source]\nkind = "pop3"\npath = "{url}"\n'
    monkeypatch.setenv(ENV, intl.password)
    path = profile(tmp_path / "p.toml", dovecot, intl, source=source)

    assert run(["scan", "--profile", str(path), "--json"]) == ExitStatus.OK
    (store,) = json.loads(capsys.readouterr().out)["stores"]
    assert store["scan"]["totals"]["messages"] == len(msgs)
    assert len(server_messages(dovecot, intl)["INBOX"]) == len(msgs)  # downloaded, kept

    reader = Pop3Reader(
        options=ReaderOptions(
            extra={
                "host": info.hostname,
                "port": str(info.pop3s_port),
                "username": intl.username,
                "ca_file": str(info.ca_file),
            }
        ),
        password=intl.password,
    )
    assert len(list(reader.messages())) == len(msgs)
    assert "AUTH" in reader.commands_sent and "PASS" not in reader.commands_sent

    monkeypatch.setenv(ENV, "wrông")
    assert run(["scan", "--profile", str(path)]) == ExitStatus.AUTH_FAILED
    err = capsys.readouterr().err
    assert "refused the login" in err and "Traceback" not in err


def test_the_wizard_takes_a_typed_password_beyond_ascii(
    intl: Account,
    dovecot: DovecotServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    home = tmp_path / "home"
    write_maildir(home / "Maildir", list(generate(5, FOLDERS, seed=2, sizes="small")))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("EMAIL", raising=False)
    # The user name is the address here, so the first login works (no retyping at the end).
    questions = imap_questions(intl, dovecot.info)[:-3]
    devices = [("device", ENTER), ("device", ENTER), ("device", ENTER)]  # two, then done
    asker = ScriptedAsker(
        [*questions, ("store", ENTER), ("migrate", ENTER), ("save", "n"), *devices]
    )
    wizard = Wizard(
        asker,
        plugins=load_plugins(builtin_only=True),
        home=home,
        spool_dirs=(),
        profile_dir=tmp_path / "profiles",
    )
    result = wizard.run()
    out = capsys.readouterr().out
    assert not asker.script
    assert result.status is ExitStatus.OK, out
    assert result.report is not None and result.report.uploaded == 5
    assert sum(body_counts(dovecot, intl).values()) == 5
    assert intl.password not in out


def test_the_pop3_wizard_takes_a_typed_nfd_password_as_typed(
    nfd: Account,
    dovecot: DovecotServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("EMAIL", raising=False)
    info = dovecot.info
    asker = ScriptedAsker(
        [
            ("devices", "1" + ENTER),
            ("webmail", ENTER),
            ("connectivity", "3" + ENTER),
            ("backups", "y"),
            ("keep_off_server", "y"),
            ("shared_mailbox", ENTER),
            ("email", nfd.email + ENTER),
            ("protocol", ENTER),  # the advice: POP3
            ("server_check", "2" + ENTER),
            ("server", f"{info.hostname}:{info.pop3s_port}" + ENTER),
            ("password", NFD + ENTER),  # typed key by key, combining marks included
            ("fix", ENTER),
            ("ca_file", str(info.ca_file) + ENTER),
            ("fix", ENTER),
            ("username", CTRL_U + nfd.username + ENTER),
            ("password", NFD + ENTER),
            ("save", "n"),
        ]
    )
    wizard = Wizard(
        asker,
        plugins=load_plugins(builtin_only=True),
        home=tmp_path / "home",
        spool_dirs=(),
        profile_dir=tmp_path / "profiles",
    )
    result = wizard.run()
    out = capsys.readouterr().out
    assert not asker.script
    assert result.status is ExitStatus.OK, out
    assert "Counting the mail waiting there" in out  # POP3 AUTH PLAIN and STAT passed
    assert NFD not in out


# --- where secrets come from: kept as given, or refused in plain words -----------------


def test_secrets_are_kept_exactly_and_undecodable_bytes_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, NFD)
    assert resolve_secret(AuthConfig(password_env=ENV), "a@example.test") == NFD

    # Spaces are part of a password; only the line ending goes.
    script = tmp_path / "spaces"
    script.write_text("#!/bin/sh\nprintf ' p\\303\\244ss wort \\r\\nsecond line\\n'\n")
    script.chmod(0o700)
    assert resolve_secret(AuthConfig(password_command=str(script)), "a") == " päss wort "

    # Latin-1 bytes (a password manager in another encoding): refused, not mangled.
    latin1 = tmp_path / "latin1"
    latin1.write_text("#!/bin/sh\nprintf 'p\\344ss\\n'\n")
    latin1.chmod(0o700)
    with pytest.raises(UsageError, match="not UTF-8") as caught:
        resolve_secret(AuthConfig(password_command=str(latin1)), "a")
    assert "p\\xe4ss" not in str(caught.value) and "päss" not in str(caught.value)

    os.environb[ENV.encode()] = b"p\xe4ss"  # monkeypatch restores ENV at the end
    with pytest.raises(UsageError, match=f"{ENV} holds bytes that are not UTF-8"):
        resolve_secret(AuthConfig(password_env=ENV), "a")


# --- servers that cannot take them -------------------------------------------------------


def test_courier_takes_an_accented_password_by_login_with_a_literal(
    courier_factory: CourierFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The real LOGIN-only server (Courier-IMAP 5.0 offers AUTH=PLAIN only over TLS)."""
    courier = courier_factory()
    account = courier.add_user(password=UMLAUT)
    maildir = tmp_path / "Maildir"
    write_maildir(maildir, list(generate(3, sizes="small")))
    monkeypatch.setenv(ENV, UMLAUT)
    info = courier.info
    path = tmp_path / "p.toml"
    path.write_text(
        f"""version = 1
[account]
email = "{account.email}"
provider = "generic"
[server]
host = "{info.host}"
port = {info.port}
security = "none"
allow_insecure = true
username = "{account.username}"
[auth]
method = "password"
password_env = "{ENV}"
[source]
kind = "maildir"
path = "{maildir}"
""",
        encoding="utf-8",
    )
    status, checks = results(capsys, "test", "--profile", str(path), "--json")
    assert status == ExitStatus.OK, checks
    assert checks["imap.login"]["status"] == "ok", checks["imap.login"]
    assert "AUTH=PLAIN" not in checks["imap.auth"]["detail"]
    assert run(["migrate", "--profile", str(path), "--journal", str(tmp_path / "j")]) == 0
    monkeypatch.setenv(ENV, "wröng-€")
    assert run(["migrate", "--profile", str(path), "--journal", str(tmp_path / "j")]) == 3
    err = " ".join(capsys.readouterr().err.split())
    assert "characters outside ASCII" in err and "app password" in err
    assert "Traceback" not in err and "wröng-€" not in err


@pytest.mark.parametrize("refusal", ["no", "bad", "bad-first"])
def test_a_login_only_server_refusing_8bit_gets_plain_words_and_exit_3(
    refusal: str,
    dovecot: DovecotServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    maildir = tmp_path / "Maildir"
    write_maildir(maildir, list(generate(2, sizes="small")))
    script = LoginScript(capabilities="IMAP4rev1", login=refusal)  # no SASL at all
    victim = Account("victim", UMLAUT, "victim@example.test")
    monkeypatch.setenv(ENV, UMLAUT)
    with HostileServer(script, tls=server_context(dovecot.tls)) as server:
        source = f'[source]\nkind = "maildir"\npath = "{maildir}"\n'
        path = profile(tmp_path / "p.toml", dovecot, victim, source=source, port=server.port)
        path.write_text(path.read_text().replace(dovecot.info.hostname, "localhost"))
        status = run(["migrate", "--profile", str(path), "--journal", str(tmp_path / "j")])
        err = capsys.readouterr().err
        test_status, checks = results(capsys, "test", "--profile", str(path), "--json")
    assert status == ExitStatus.AUTH_FAILED == 3, err
    assert "Traceback" not in err and UMLAUT not in err
    said = " ".join(err.split())
    assert "characters outside ASCII" in said and "app password" in said
    assert "ASCII letters, digits and punctuation" in said
    assert test_status == ExitStatus.AUTH_FAILED
    assert "app password" in checks["imap.login"]["fix"]
    assert server.errors == []
    # LOGIN was used, the user name quoted and the password a UTF-8 literal; a server
    # that refuses the literal before its go-ahead never gets the password at all.
    first = script.credentials[0]
    if refusal == "bad-first":
        assert first == [b"victim"]
    else:
        assert first == [b"victim", UMLAUT.encode()]


def test_a_login_only_server_that_takes_utf8_literals_signs_in(
    dovecot: DovecotServer,
) -> None:
    script = LoginScript(capabilities="IMAP4rev1", login="ok")
    name = _intl_name()
    with HostileServer(script, tls=server_context(dovecot.tls)) as server:
        target = ImapTarget("localhost", server.port, ca_file=dovecot.info.ca_file, timeout=10)
        with imap_session(target, name, UMLAUT) as client:
            assert client.list_folders()
    assert script.credentials == [[name.encode(), UMLAUT.encode()]]
    assert b"ENABLE" not in script.commands  # not offered: not asked


def test_a_hang_up_during_an_8bit_login_is_a_connection_error_in_its_words(
    dovecot: DovecotServer,
) -> None:
    script = LoginScript(capabilities="IMAP4rev1", login="bye")
    with HostileServer(script, tls=server_context(dovecot.tls)) as server:
        target = ImapTarget("localhost", server.port, ca_file=dovecot.info.ca_file, timeout=10)
        too_many = "Too many simultaneous connections"
        with (
            pytest.raises(ConnectError, match=too_many) as caught,
            imap_session(target, "victim", UMLAUT),
        ):
            pass
    assert not isinstance(caught.value, AuthenticationError)
    assert caught.value.exit_status is ExitStatus.CONNECT_FAILED


def test_a_refused_smtp_login_beyond_ascii_says_what_to_do(
    umlaut: Account, dovecot: DovecotServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    tls = dovecot.tls
    with SmtpServer(tls.cert_file, tls.key_file, implicit_tls=True) as smtp:  # takes nobody
        target = CheckTarget(
            email=umlaut.email,
            imap=None,
            smtp=Endpoint(Protocol.SMTP, "localhost", smtp.port, Security.TLS),
            username=umlaut.username,
            ca_file=dovecot.info.ca_file,
            timeout=10,
            secret=lambda: umlaut.password,
        )
        report = run_checks(target)
    login = next(r for r in report.results if r.id == "smtp.login")
    assert login.status is CheckStatus.FAIL and report.exit_status is ExitStatus.AUTH_FAILED
    assert "refused the login" in login.detail and "app password" in login.detail
    assert umlaut.password not in login.detail
    assert smtp.auth.seen == [("PLAIN", umlaut.username.encode())]


@pytest.mark.parametrize("sasl_ir", [True, False])
def test_sasl_plain_carries_utf8_and_utf8_accept_is_enabled_for_an_international_name(
    sasl_ir: bool, dovecot: DovecotServer
) -> None:
    caps = "IMAP4rev1 AUTH=PLAIN ENABLE UTF8=ACCEPT" + (" SASL-IR" if sasl_ir else "")
    script = LoginScript(capabilities=caps)
    name = _intl_name()
    with HostileServer(script, tls=server_context(dovecot.tls)) as server:
        target = ImapTarget("localhost", server.port, ca_file=dovecot.info.ca_file, timeout=10)
        with imap_session(target, name, NFD) as client:
            assert isinstance(client, SecureIMAPClient) and client.utf8_enabled
            names = [folder for _flags, _sep, folder in client.list_folders()]
            with pytest.raises(ProtocolError, match="control character"):
                client.select_folder("Bücher\r\nA1 DELETE INBOX")  # never sent
    assert script.credentials == [[b"", name.encode(), NFD.encode()]]
    assert b"LOGIN" not in script.commands and b"ENABLE" in script.commands
    assert names == ["INBOX", "Bücher"]  # UTF-8 on the wire, read as such


@pytest.mark.parametrize("literal_plus", [True, False])
def test_after_enable_uploads_go_in_utf8(literal_plus: bool, dovecot: DovecotServer) -> None:
    caps = "IMAP4rev1 AUTH=PLAIN SASL-IR ENABLE UTF8=ACCEPT" + (" LITERAL+" if literal_plus else "")
    script = LoginScript(capabilities=caps)
    when = datetime(2021, 3, 1, tzinfo=UTC)
    eai = "From: josé@bücher.de\r\nSubject: Grüße\r\n\r\nhi\r\n".encode()
    latin1 = b"From: a@example.test\r\nSubject: Gr\xfc\xdfe\r\n\r\nhi\r\n"
    jobs = [
        UploadJob(f"k{n}", "Bücher", data, (), when, None, f"h{n}")
        for n, data in enumerate([eai, latin1])
    ]
    with HostileServer(script, tls=server_context(dovecot.tls)) as server:
        target = ImapTarget("localhost", server.port, ca_file=dovecot.info.ca_file, timeout=10)
        with imap_session(target, _intl_name(), UMLAUT) as client:
            appender = PipelinedAppender(client)
            for job in jobs:
                appender.send(Batch("Bücher", [job]))
                assert appender.read_answer()[1] == b"OK"
    assert server.errors == []
    eai_line, latin1_line = script.append_lines
    # The folder in raw UTF-8, not modified UTF-7; UTF-8 headers in the UTF8 item
    # (RFC 6855 4); raw Latin-1 headers, which are no UTF-8, as a plain literal.
    assert eai_line.startswith('MA1 APPEND "Bücher" () '.encode())
    assert b" UTF8 (~{%d" % len(eai) in eai_line
    assert b"UTF8" not in latin1_line and b" {%d" % len(latin1) in latin1_line
    # Without ENABLE the same names go in modified UTF-7, as before.
    assert quote_mailbox("Bücher") == b'"B&APw-cher"'
    assert gmail_labels.wire("Bücher", utf8=True) == '"Bücher"'.encode()
    assert gmail_labels.parse("Bücher".encode(), utf8=True) == "Bücher"


def test_a_refused_enable_leaves_the_session_in_modified_utf7(dovecot: DovecotServer) -> None:
    caps = "IMAP4rev1 AUTH=PLAIN SASL-IR ENABLE UTF8=ACCEPT"
    script = LoginScript(capabilities=caps, refuse_enable=True)
    with HostileServer(script, tls=server_context(dovecot.tls)) as server:
        target = ImapTarget("localhost", server.port, ca_file=dovecot.info.ca_file, timeout=10)
        with imap_session(target, _intl_name(), UMLAUT) as client:
            assert not client.utf8_enabled
            assert client.list_folders()  # the session goes on
    assert b"ENABLE" in script.commands and server.errors == []


def test_an_ascii_user_name_does_not_enable_utf8(dovecot: DovecotServer) -> None:
    script = LoginScript(capabilities="IMAP4rev1 AUTH=PLAIN SASL-IR ENABLE UTF8=ACCEPT")
    with HostileServer(script, tls=server_context(dovecot.tls)) as server:
        target = ImapTarget("localhost", server.port, ca_file=dovecot.info.ca_file, timeout=10)
        with imap_session(target, "alex", UMLAUT) as client:
            assert not client.utf8_enabled
    assert b"ENABLE" not in script.commands and b"AUTHENTICATE" in script.commands


def test_refusals_name_the_user_never_the_password(dovecot: DovecotServer, umlaut: Account) -> None:
    info = dovecot.info
    target = ImapTarget(info.hostname, info.imaps_port, ca_file=info.ca_file, timeout=10)
    with (
        pytest.raises(AuthenticationError) as caught,
        imap_session(target, umlaut.username, "wrông€"),
    ):
        pass
    assert not isinstance(caught.value, CredentialCharactersError)  # SASL PLAIN was offered
    assert umlaut.username in str(caught.value) and "wrông€" not in str(caught.value)
    assert caught.value.exit_status is ExitStatus.AUTH_FAILED
