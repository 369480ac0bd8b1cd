"""Pop3Reader against the real Dovecot fixture's POP3 listeners: download only."""

from __future__ import annotations

import poplib
import time
from datetime import datetime

import pytest

from advisor.connection.imap import ImapTarget, imap_session, tls_context
from advisor.errors import AuthenticationError, TLSError, UsageError
from advisor.plugins.types import Security
from advisor.stores.base import ReaderOptions
from advisor.stores.pop3 import _POP3SSL, Pop3Reader
from tests.harness.dovecot import Account, DovecotServer

TIMEOUT = 10

MESSAGES = [
    b"Received: from mx by pop.example.test; Tue, 02 Mar 2021 10:00:00 +0100\r\n"
    b"From: a@example.test\r\nSubject: plain\r\nDate: Mon, 01 Mar 2021 08:00:00 -0500\r\n"
    b"\r\nHello.\r\n",
    # Dot-stuffing: lines that start with dots, a lone dot, a dot before CR LF.
    b"From: a@example.test\r\nSubject: dots\r\n\r\n.\r\n..\r\n.leading\r\n..two\r\n...\r\nend.\r\n",
    # A line far over poplib's 2048-byte limit, and 8-bit bytes.
    b"From: a@example.test\r\nSubject: long\r\nX-Raw: caf\xc3\xa9\r\n\r\n" + b"y" * 5000 + b"\r\n",
    # Stored with bare LF: POP3 hands it out with CRLF.
    b"From: a@example.test\nSubject: lf\nDate: Wed, 03 Mar 2021 12:00:00 +0000\n\nline\n",
]


def crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


@pytest.fixture
def mailbox(dovecot: DovecotServer, imap_account: Account) -> Account:
    """A fresh account whose INBOX holds MESSAGES (delivered with IMAP APPEND)."""
    info = dovecot.info
    target = ImapTarget(info.hostname, info.imaps_port, ca_file=info.ca_file, timeout=TIMEOUT)
    with imap_session(target, imap_account.username, imap_account.password) as client:
        for data in MESSAGES:
            client.append("INBOX", data)
    return imap_account


def options(dovecot: DovecotServer, account: Account, **extra: str) -> ReaderOptions:
    info = dovecot.info
    base = {
        "host": info.hostname,
        "port": str(info.pop3s_port),
        "username": account.username,
        "ca_file": str(info.ca_file),
        "timeout": str(TIMEOUT),
    }
    return ReaderOptions(extra={**base, **extra})


def server_state(dovecot: DovecotServer, account: Account) -> tuple[tuple[int, int], list[bytes]]:
    """(STAT, UIDL lines) seen by an independent POP3 session."""
    info = dovecot.info
    pop = poplib.POP3_SSL(info.hostname, info.pop3s_port, context=info.ssl_context(), timeout=10)
    try:
        pop.user(account.username)
        pop.pass_(account.password)
        return pop.stat(), pop.uidl()[1]
    finally:
        pop.quit()


def logout_lines(dovecot: DovecotServer, account: Account) -> list[str]:
    """Dovecot's POP3 logout lines for the account ("... del=0/4, ...")."""
    for _ in range(50):  # the log line is written as the session ends
        lines = [
            line
            for line in dovecot.log_tail(400).splitlines()
            if f"pop3({account.username})" in line and "del=" in line
        ]
        if lines:
            return lines
        time.sleep(0.05)
    return []


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_download_only_exact_bytes_and_uidl(
    dovecot: DovecotServer, mailbox: Account, security: str
) -> None:
    port = dovecot.info.pop3s_port if security == "tls" else dovecot.info.pop3_starttls_port
    before = server_state(dovecot, mailbox)
    assert before[0][0] == len(MESSAGES)
    reader = Pop3Reader(
        options=options(dovecot, mailbox, security=security, port=str(port)),
        password=mailbox.password,
    )
    messages = list(reader.messages())
    again = [m.source_id for m in Pop3Reader(
        options=options(dovecot, mailbox, security=security, port=str(port)),
        password=mailbox.password,
    ).messages()]  # fmt: skip
    assert [m.data for m in messages] == [crlf(d) for d in MESSAGES]
    assert [m.source_id.encode() for m in messages] == [u.split()[1] for u in before[1]]
    assert again == [m.source_id for m in messages]
    assert {m.folder for m in messages} == {("INBOX",)}
    assert all(m.flags == frozenset() and m.problems == () for m in messages[:1])
    assert messages[0].received == datetime.fromisoformat("2021-03-02T10:00:00+01:00")
    # Nothing deleted: same count and UIDLs, no DELE sent, and Dovecot agrees (del=0).
    assert server_state(dovecot, mailbox) == before
    assert "DELE" not in reader.commands_sent
    assert reader.commands_sent[-len(MESSAGES) - 1 :] == ["RETR"] * len(MESSAGES) + ["QUIT"]
    if security == "starttls":
        assert "STLS" in reader.commands_sent
    logouts = logout_lines(dovecot, mailbox)
    assert logouts and all(f"del=0/{len(MESSAGES)}" in line for line in logouts)


def test_plaintext_needs_allow_insecure(dovecot: DovecotServer, mailbox: Account) -> None:
    port = str(dovecot.info.pop3_starttls_port)
    with pytest.raises(UsageError, match="allow_insecure"):
        Pop3Reader(options=options(dovecot, mailbox, security="none", port=port), password="x")
    reader = Pop3Reader(
        options=options(dovecot, mailbox, security="none", port=port, allow_insecure="true"),
        password=mailbox.password,
    )
    assert len(list(reader.messages())) == len(MESSAGES)
    assert "STLS" not in reader.commands_sent


def test_untrusted_certificate_is_refused(dovecot: DovecotServer, mailbox: Account) -> None:
    opts = options(dovecot, mailbox)
    del opts.extra["ca_file"]
    with pytest.raises(TLSError, match="not trusted"):
        list(Pop3Reader(options=opts, password=mailbox.password).messages())


def test_wrong_password_never_shows_the_password(dovecot: DovecotServer, mailbox: Account) -> None:
    secret = "Wrong-Secret-4711"
    reader = Pop3Reader(options=options(dovecot, mailbox), password=secret)
    with pytest.raises(AuthenticationError) as info:
        list(reader.messages())
    assert secret not in str(info.value) and secret not in repr(reader)
    assert mailbox.username in str(info.value)


def test_password_is_refused_in_options(dovecot: DovecotServer, mailbox: Account) -> None:
    opts = options(dovecot, mailbox, password=mailbox.password)
    with pytest.raises(UsageError, match="must not be put in the reader options"):
        Pop3Reader(options=opts, password=mailbox.password)


def test_the_client_object_refuses_dele(dovecot: DovecotServer, mailbox: Account) -> None:
    info = dovecot.info
    client = _POP3SSL(info.hostname, info.pop3s_port, TIMEOUT, tls_context(info.ca_file))
    try:
        client.user(mailbox.username)
        client.pass_(mailbox.password)
        with pytest.raises(RuntimeError, match="never sends DELE"):
            client.dele(1)
    finally:
        client.quit()
    assert server_state(dovecot, mailbox)[0][0] == len(MESSAGES)


def test_folders_and_detect(dovecot: DovecotServer, mailbox: Account) -> None:
    reader = Pop3Reader(options=options(dovecot, mailbox), password=mailbox.password)
    assert [f.path for f in reader.folders()] == [("INBOX",)]
    assert reader.security is Security.TLS
    assert not Pop3Reader.detect(dovecot.maildir_of(mailbox))


def test_single_messages_by_uidl_and_nothing_deleted(
    dovecot: DovecotServer, mailbox: Account
) -> None:
    before = server_state(dovecot, mailbox)
    uidls = [line.split()[1].decode() for line in before[1]]
    reader = Pop3Reader(options=options(dovecot, mailbox), password=mailbox.password)
    with reader.by_uidl() as retrieve:
        second = retrieve(uidls[1])
        assert retrieve("no-such-uidl") is None
    assert second == crlf(MESSAGES[1])  # the dot-stuffed one, unstuffed
    assert set(reader.commands_sent) <= {"CAPA", "USER", "PASS", "UIDL", "RETR", "QUIT"}
    assert reader.commands_sent.count("RETR") == 1
    assert server_state(dovecot, mailbox) == before
