"""Tests of the private Dovecot fixture itself: they talk to the real server."""

from __future__ import annotations

import imaplib
import poplib
import socket
import ssl
from email.message import EmailMessage

import imapclient
import pytest
from imapclient.exceptions import LoginError
from imapclient.imapclient import SENT

from tests.harness.dovecot import (
    GMAIL_SPECIAL_USE,
    INSTALL_HINT,
    OUTLOOK_SPECIAL_USE,
    Account,
    DovecotError,
    DovecotFactory,
    DovecotMissingError,
    DovecotServer,
    process_group_alive,
)

TIMEOUT = 5.0
#: A loopback address other than the server's, so Dovecot does not trust the client.
FOREIGN_SOURCE = "127.0.0.2"


class SourceBoundIMAP4(imaplib.IMAP4):
    """imaplib client connecting from a chosen local address (IMAPClient cannot)."""

    def __init__(self, host: str, port: int, source: str) -> None:
        self._source = source
        super().__init__(host, port, timeout=TIMEOUT)

    # imaplib's (private but stable since 3.9) hook for opening the connection.
    def _create_socket(self, timeout: float | None) -> socket.socket:
        return socket.create_connection(
            (self.host, self.port), timeout, source_address=(self._source, 0)
        )


def imaps_client(server: DovecotServer, host: str | None = None) -> imapclient.IMAPClient:
    """Return a verifying implicit-TLS IMAPClient (hostname check against ``host``)."""
    info = server.info
    return imapclient.IMAPClient(
        host or info.hostname,
        port=info.imaps_port,
        ssl=True,
        ssl_context=info.ssl_context(),
        timeout=TIMEOUT,
    )


def message(subject: str) -> bytes:
    """Return a small RFC 5322 message."""
    msg = EmailMessage()
    msg["From"] = "sender@example.test"
    msg["To"] = "rcpt@example.test"
    msg["Subject"] = subject
    msg.set_content("hello\n")
    return msg.as_bytes()


# -- TLS and listeners -------------------------------------------------------------------


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_implicit_tls_login_verifies_certificate(
    dovecot: DovecotServer, imap_account: Account, host: str
) -> None:
    ctx = dovecot.info.ssl_context()
    assert ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED
    with imaps_client(dovecot, host) as client:
        client.login(imap_account.username, imap_account.password)
        assert client.select_folder("INBOX")[b"EXISTS"] == 0


def test_starttls_login_verifies_certificate(dovecot: DovecotServer, imap_account: Account) -> None:
    info = dovecot.info
    with imapclient.IMAPClient(
        info.hostname, port=info.imap_starttls_port, ssl=False, timeout=TIMEOUT
    ) as client:
        client.starttls(info.ssl_context())
        client.login(imap_account.username, imap_account.password)
        assert client.list_folders()


def test_unknown_ca_and_wrong_hostname_are_rejected(dovecot: DovecotServer) -> None:
    info = dovecot.info
    # The system trust store does not know the throwaway CA.
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
        imapclient.IMAPClient(
            info.hostname,
            port=info.imaps_port,
            ssl=True,
            ssl_context=ssl.create_default_context(),
            timeout=TIMEOUT,
        )
    # The right CA but a name the certificate does not carry.
    with (
        socket.create_connection((info.host, info.imaps_port), TIMEOUT) as raw,
        pytest.raises(ssl.SSLCertVerificationError, match=r"[Hh]ostname mismatch"),
    ):
        info.ssl_context().wrap_socket(raw, server_hostname="imap.example.test")


def test_starttls_port_refuses_plaintext_login_from_foreign_address(
    dovecot: DovecotServer, imap_account: Account
) -> None:
    info = dovecot.info
    imap = SourceBoundIMAP4(info.hostname, info.imap_starttls_port, FOREIGN_SOURCE)
    try:
        assert imap.sock.getsockname()[0] == FOREIGN_SOURCE
        assert "LOGINDISABLED" in imap.capabilities
        with pytest.raises(imaplib.IMAP4.error, match="PRIVACYREQUIRED"):
            imap.login(imap_account.username, imap_account.password)
        imap.starttls(info.ssl_context())
        assert "LOGINDISABLED" not in imap.capabilities
        typ, _ = imap.login(imap_account.username, imap_account.password)
        assert typ == "OK"
    finally:
        imap.logout()


def test_plaintext_port_allows_login_without_tls(
    dovecot: DovecotServer, imap_account: Account
) -> None:
    info = dovecot.info
    # From a foreign address, so the permission comes from the config, not from
    # Dovecot's "client address == server address" shortcut.
    imap = SourceBoundIMAP4(info.imap_plain_host, info.imap_plain_port, FOREIGN_SOURCE)
    try:
        assert "STARTTLS" not in imap.capabilities
        assert "LOGINDISABLED" not in imap.capabilities
        typ, _ = imap.login(imap_account.username, imap_account.password)
        assert typ == "OK"
    finally:
        imap.logout()
    with imapclient.IMAPClient(
        info.imap_plain_host, port=info.imap_plain_port, ssl=False, timeout=TIMEOUT
    ) as client:
        client.login(imap_account.username, imap_account.password)
        assert not client.has_capability("STARTTLS")


def pop3_stat(
    pop: poplib.POP3, account: Account, starttls: ssl.SSLContext | None = None
) -> tuple[int, int]:
    """Optionally STLS, log in, return STAT and always QUIT."""
    try:
        if starttls is not None:
            pop.stls(context=starttls)
        pop.user(account.username)
        pop.pass_(account.password)
        return pop.stat()
    finally:
        pop.quit()


def test_pop3_over_tls_and_starttls(dovecot: DovecotServer, imap_account: Account) -> None:
    info = dovecot.info
    implicit = poplib.POP3_SSL(
        info.hostname, info.pop3s_port, context=info.ssl_context(), timeout=TIMEOUT
    )
    assert pop3_stat(implicit, imap_account) == (0, 0)
    plain = poplib.POP3(info.hostname, info.pop3_starttls_port, timeout=TIMEOUT)
    assert pop3_stat(plain, imap_account, starttls=info.ssl_context()) == (0, 0)


# -- server features ---------------------------------------------------------------------


def test_capabilities_and_quota(dovecot: DovecotServer, imap_account: Account) -> None:
    with imaps_client(dovecot) as client:
        client.login(imap_account.username, imap_account.password)
        capabilities = set(client.capabilities())
        # Dovecot 2.3 implements neither APPENDLIMIT nor CREATE-SPECIAL-USE, so they
        # are not required here; the advisor must cope without them.
        wanted = {b"UIDPLUS", b"LITERAL+", b"MULTIAPPEND", b"SPECIAL-USE", b"QUOTA"}
        assert wanted | {b"NAMESPACE", b"MOVE", b"IDLE"} <= capabilities
        _, quotas = client.get_quota_root("INBOX")
        assert [(q.resource, q.limit) for q in quotas] == [("STORAGE", 1024 * 1024)]


def test_default_variant_folders(dovecot: DovecotServer, imap_account: Account) -> None:
    with imaps_client(dovecot) as client:
        client.login(imap_account.username, imap_account.password)
        folders = {name: (flags, delim) for flags, delim, name in client.list_folders()}
        assert client.namespace().personal == (("", "/"),)
    for name in ("Sent", "Drafts", "Trash", "Junk", "Archive"):
        flags, delimiter = folders[name]
        assert f"\\{name}".encode() in flags
        assert delimiter == b"/"
    # LAYOUT=fs: a folder name may contain "." although the separator is "/".
    with imaps_client(dovecot) as client:
        client.login(imap_account.username, imap_account.password)
        client.create_folder("Projects/v1.2")
        assert client.folder_exists("Projects/v1.2")
    assert (dovecot.maildir_of(imap_account) / "Projects" / "v1.2" / "cur").is_dir()


def test_dot_separator_with_inbox_prefix(dovecot_factory: DovecotFactory) -> None:
    server = dovecot_factory(separator=".", prefix="INBOX.")
    assert (server.info.separator, server.info.prefix) == (".", "INBOX.")
    account = server.add_user()
    with imaps_client(server) as client:
        client.login(account.username, account.password)
        assert client.namespace().personal == (("INBOX.", "."),)
        folders = {name: (flags, delim) for flags, delim, name in client.list_folders()}
    assert {"INBOX", "INBOX.Sent", "INBOX.Trash"} <= folders.keys()
    assert {delim for _, delim in folders.values()} == {b"."}
    assert b"\\Sent" in folders["INBOX.Sent"][0]


def test_gmail_and_outlook_special_use(dovecot_factory: DovecotFactory) -> None:
    gmail = dovecot_factory(special_use=GMAIL_SPECIAL_USE)
    account = gmail.add_user()
    with imaps_client(gmail) as client:
        client.login(account.username, account.password)
        folders = {name: flags for flags, _, name in client.list_folders()}
        assert client.find_special_folder(SENT) == "[Gmail]/Sent Mail"
        subscribed = {name for _, _, name in client.list_sub_folders()}
    assert b"\\Sent" in folders["[Gmail]/Sent Mail"]
    assert b"\\All" in folders["[Gmail]/All Mail"]
    assert set(GMAIL_SPECIAL_USE) <= subscribed

    outlook = dovecot_factory(special_use=OUTLOOK_SPECIAL_USE)
    assert outlook is not gmail and dovecot_factory(special_use=GMAIL_SPECIAL_USE) is gmail
    account = outlook.add_user()
    with imaps_client(outlook) as client:
        client.login(account.username, account.password)
        folders = {name: flags for flags, _, name in client.list_folders()}
    assert b"\\Trash" in folders["Deleted Items"]
    assert set(folders["Calendar"]) <= {b"\\HasNoChildren", b"\\HasChildren"}


# -- users -------------------------------------------------------------------------------


def test_runtime_users_are_independent(dovecot: DovecotServer) -> None:
    alice, bob = dovecot.add_user(), dovecot.add_user(password="s3cret with spaces")
    assert alice.username != bob.username
    assert bob.email == f"{bob.username}@example.test"
    with imaps_client(dovecot) as client:
        client.login(alice.username, alice.password)
        client.append("INBOX", message("for alice"))
    with imaps_client(dovecot) as client:
        client.login(bob.username, bob.password)
        assert client.select_folder("INBOX")[b"EXISTS"] == 0
    with imaps_client(dovecot) as client, pytest.raises(LoginError):
        client.login(bob.username, alice.password)
    for account, count in ((alice, 1), (bob, 0)):
        status = dovecot.doveadm("mailbox", "status", "-u", account.username, "messages", "INBOX")
        assert f"messages={count}" in status.stdout.split()
    assert len(list((dovecot.maildir_of(alice) / "new").iterdir())) == 1
    with pytest.raises(ValueError, match="already exists"):
        dovecot.add_user(alice.username)


# -- life cycle --------------------------------------------------------------------------


def test_stop_leaves_no_process(dovecot_factory: DovecotFactory) -> None:
    server = dovecot_factory.spawn()
    pid = server.pid
    assert pid is not None and server.running
    server.stop()
    assert not server.running and not process_group_alive(pid)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((server.info.host, server.info.imaps_port), TIMEOUT).close()


def test_bad_config_fails_with_log_tail(dovecot_factory: DovecotFactory) -> None:
    with pytest.raises(DovecotError, match=r"(?s)exited.*Unknown setting: no_such_setting"):
        dovecot_factory.spawn(extra_config="no_such_setting = 1")


def test_missing_dovecot_fails_with_install_hint() -> None:
    with pytest.raises(DovecotMissingError) as excinfo:
        DovecotFactory(dovecot_bin="/nonexistent/dovecot")
    assert "apt-get install dovecot-imapd dovecot-pop3d" in str(excinfo.value)
    assert INSTALL_HINT in str(excinfo.value)
