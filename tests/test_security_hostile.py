"""Hostile servers: mailadvisor gives up with a clear error, and its memory stays bounded.

A fake IMAP server on loopback (over TLS with the fixture's certificate) plays
along until the command it attacks, then announces a 4 GB literal, sends a line
that never ends, or floods 100,000 untagged responses. Both connection kinds are
attacked: the control connection (imapclient/imaplib, bounded by
:class:`advisor.connection.imap.ImapLimits`) and the upload connection
(:class:`advisor.migration.upload.PipelinedAppender`). Memory is measured with tracemalloc
around the whole run. Also here: servers that offer only TLS 1.1, or a
certificate for another name, are refused, where a lax client would connect.
"""

from __future__ import annotations

import socket
import ssl
import time
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from advisor.cli import run
from advisor.connection.imap import ImapTarget, connect, login
from advisor.errors import ProtocolError, TLSError
from advisor.exitcodes import ExitStatus
from advisor.migration.upload import (
    MAX_UNTAGGED,
    Batch,
    PipelinedAppender,
    ProtocolViolation,
    UploadJob,
)
from tests.harness.dovecot import DovecotServer
from tests.harness.hostile_server import (
    Attack,
    HostileServer,
    ImapScript,
    Peer,
    endless_line,
    huge_literal,
    server_context,
    untagged_flood,
)
from tests.harness.mailgen import generate, write_maildir
from tests.harness.mitm import starttls_profile

PASSWORD_ENV = "MA_SECURITY_HOSTILE_PASSWORD"
MEMORY_LIMIT = 50 * 1024 * 1024

ATTACKS: dict[str, tuple[Attack, str]] = {
    "4 GB literal": (huge_literal, "announced a literal of 4,294,967,296 bytes"),
    "endless line": (endless_line, "sent a line longer than"),
    "100,000 untagged": (untagged_flood, "untagged responses"),
}
UPLOAD_ATTACKS: dict[str, tuple[Attack, str]] = {
    "4 GB literal": (
        lambda peer, tag: huge_literal(peer, tag),
        "announced a 4,294,967,296-byte literal",
    ),
    "endless line": (endless_line, "over-long or unterminated line"),
    "100,000 untagged": (untagged_flood, f"more than {MAX_UNTAGGED} untagged"),
}


@pytest.fixture
def password_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv(PASSWORD_ENV, "not-a-real-password")
    yield PASSWORD_ENV


@pytest.fixture
def tls(dovecot: DovecotServer) -> ssl.SSLContext:
    return server_context(dovecot.tls)


def _peak_growth(action: Callable[[], object]) -> tuple[object, int, float]:
    """Run ``action`` under tracemalloc: its result, peak bytes above the start, seconds."""
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        began = time.monotonic()
        result = action()
        elapsed = time.monotonic() - began
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak - start, elapsed


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_migrate_gives_up_on_a_hostile_control_connection(
    name: str,
    tmp_path: Path,
    dovecot: DovecotServer,
    tls: ssl.SSLContext,
    password_env: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    attack, message = ATTACKS[name]
    root = tmp_path / "Maildir"
    write_maildir(root, generate(2, sizes="small"))
    script = ImapScript("LIST", attack)
    with HostileServer(script, tls=tls) as server:
        profile = starttls_profile(
            tmp_path,
            email="victim@example.test",
            username="victim",
            port=server.port,
            ca_file=dovecot.info.ca_file,
            password_env=password_env,
            source=root,
            security="tls",
        )
        status, growth, seconds = _peak_growth(
            lambda: run(["migrate", "--profile", str(profile), "--journal", str(tmp_path / "j")])
        )
    err = capsys.readouterr().err
    assert status == ExitStatus.CONNECT_FAILED, err
    assert message in err and "hostile server" in err
    assert "Traceback" not in err
    assert script.commands.count(b"LIST") == 1  # it gave up, it did not ask again
    assert growth < MEMORY_LIMIT, f"{growth / 1e6:.1f} MB"
    assert seconds < 20
    assert server.errors == []


def test_limits_hold_from_the_first_byte(dovecot: DovecotServer, tls: ssl.SSLContext) -> None:
    # The CAPABILITY imaplib asks for before login is bounded too.
    with HostileServer(ImapScript("CAPABILITY", huge_literal), tls=tls) as server:
        target = ImapTarget("localhost", server.port, ca_file=dovecot.info.ca_file, timeout=10)
        with pytest.raises(ProtocolError, match="4,294,967,296") as caught:
            connect(target)
    assert caught.value.exit_status is ExitStatus.CONNECT_FAILED


def _job(n: int) -> UploadJob:
    data = b"From: a@example.test\r\nSubject: %d\r\n\r\nhello\r\n" % n
    when = datetime(2020, 1, 1, tzinfo=UTC)
    return UploadJob(f"k{n}", "INBOX", data, ("\\Seen",), when, None, f"h{n}")


@pytest.mark.parametrize("name", sorted(UPLOAD_ATTACKS))
def test_upload_connection_gives_up_on_a_hostile_server(
    name: str, dovecot: DovecotServer, tls: ssl.SSLContext
) -> None:
    attack, message = UPLOAD_ATTACKS[name]
    with HostileServer(ImapScript("APPEND", attack), tls=tls) as server:
        target = ImapTarget("localhost", server.port, ca_file=dovecot.info.ca_file, timeout=10)
        client = connect(target)
        login(client, "victim", "not-a-real-password")
        appender = PipelinedAppender(client)

        def upload() -> str:
            appender.send(Batch("INBOX", [_job(1), _job(2)]))
            try:
                appender.read_answer()
            except ProtocolViolation as exc:
                return str(exc)
            return "no error"

        try:
            said, growth, seconds = _peak_growth(upload)
        finally:
            appender.close()
    assert message in str(said)
    assert growth < MEMORY_LIMIT, f"{growth / 1e6:.1f} MB"
    assert seconds < 20


def _serve_honestly(peer: Peer) -> None:
    ImapScript("NEVER", huge_literal)(peer)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # ssl.TLSVersion.TLSv1_1 itself
def test_a_server_with_only_tls_1_1_is_refused(dovecot: DovecotServer) -> None:
    old = server_context(dovecot.tls, only=ssl.TLSVersion.TLSv1_1, weak=True)
    with HostileServer(_serve_honestly, tls=old) as server:
        # A lax client gets through: the server really speaks TLS 1.1.
        lax = ssl.create_default_context(cafile=str(dovecot.info.ca_file))
        lax.set_ciphers("DEFAULT:@SECLEVEL=0")
        lax.minimum_version = ssl.TLSVersion.TLSv1_1
        with (
            socket.create_connection(("localhost", server.port), timeout=10) as raw,
            lax.wrap_socket(raw, server_hostname="localhost") as sock,
        ):
            assert sock.version() == "TLSv1.1"
        target = ImapTarget("localhost", server.port, ca_file=dovecot.info.ca_file, timeout=10)
        with pytest.raises(TLSError) as caught:
            connect(target)
    assert caught.value.exit_status is ExitStatus.CONNECT_FAILED


def test_a_certificate_for_another_name_is_refused(dovecot: DovecotServer) -> None:
    # The fixture's certificate names localhost, 127.0.0.1 and 127.0.0.2, not 127.0.0.4.
    tls = server_context(dovecot.tls)
    with HostileServer(_serve_honestly, tls=tls, host="127.0.0.4") as server:
        chain_only = ssl.create_default_context(cafile=str(dovecot.info.ca_file))
        chain_only.check_hostname = False  # the chain itself is fine
        with (
            socket.create_connection(("127.0.0.4", server.port), timeout=10) as raw,
            chain_only.wrap_socket(raw) as sock,
        ):
            assert sock.getpeercert() is not None
        target = ImapTarget("127.0.0.4", server.port, ca_file=dovecot.info.ca_file, timeout=10)
        with pytest.raises(TLSError, match="for another name"):
            connect(target)
