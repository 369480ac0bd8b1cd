"""The private Cyrus and Courier servers start and behave as reference/real-servers.md says."""

from __future__ import annotations

import imaplib
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.harness.courier import CourierFactory
from tests.harness.cyrus import CyrusFactory
from tests.harness.migrate_helpers import AnyServer

# kind -> (NAMESPACE personal part, capabilities present, capabilities absent)
EXPECTED = {
    "cyrus": (
        b'(("INBOX." "."))',
        {"CREATE-SPECIAL-USE", "SPECIAL-USE", "LITERAL+", "MULTIAPPEND", "QUOTA", "AUTH=PLAIN"},
        set(),
    ),
    "cyrus-upstream": (
        b'(("" "/"))',
        {"CREATE-SPECIAL-USE", "SPECIAL-USE", "LITERAL+", "MULTIAPPEND", "QUOTA", "AUTH=PLAIN"},
        set(),
    ),
    "courier": (
        b'(("INBOX." "."))',
        {"IMAP4REV1", "NAMESPACE", "QUOTA", "UIDPLUS"},
        {"SPECIAL-USE", "CREATE-SPECIAL-USE", "LITERAL+", "MULTIAPPEND", "AUTH=PLAIN", "STARTTLS"},
    ),
}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_server_starts_logs_in_and_shows_its_namespace(
    kind: str, imap_server: Callable[[str], AnyServer]
) -> None:
    server = imap_server(kind)
    namespace, present, absent = EXPECTED[kind]
    account = server.add_user()
    client = imaplib.IMAP4(server.info.host, server.info.port, timeout=30)
    try:
        capabilities = set(client.capabilities)
        assert present <= capabilities
        assert not absent & capabilities
        client.login(account.username, account.password)
        status, data = client.namespace()
        assert status == "OK" and data[0] is not None
        assert data[0].startswith(namespace)  # type: ignore[union-attr]
        status, listed = client.list()
        assert status == "OK"
        names = b"\n".join(line for line in listed if isinstance(line, bytes))
        prefix = server.info.prefix.encode()
        sent = prefix + b"Sent"
        assert sent in names
        if "SPECIAL-USE" in present:
            assert b"\\sent" in names.lower()
        if kind != "courier":  # Courier's imaplogin sleeps 5 s after a failure
            # A wrong password is refused: the user database is really consulted.
            other = imaplib.IMAP4(server.info.host, server.info.port, timeout=30)
            with pytest.raises(imaplib.IMAP4.error):
                other.login(account.username, account.password + "x")
            other.shutdown()
    finally:
        client.logout()


def test_courier_refuses_existing_folder_without_alreadyexists(
    imap_server: Callable[[str], AnyServer],
) -> None:
    server = imap_server("courier")
    account = server.add_user()
    client = imaplib.IMAP4(server.info.host, server.info.port, timeout=30)
    client.login(account.username, account.password)
    try:
        status, data = client.create("INBOX.Sent")
        assert status == "NO"
        assert b"ALREADYEXISTS" not in data[0]  # type: ignore[operator]
    finally:
        client.logout()


def test_cyrus_creates_special_use_folder(imap_server: Callable[[str], AnyServer]) -> None:
    server = imap_server("cyrus")
    account = server.add_user()
    client = imaplib.IMAP4(server.info.host, server.info.port, timeout=30)
    client.login(account.username, account.password)
    try:
        status, _ = client._simple_command("CREATE", "INBOX.Archive", "(USE (\\Archive))")
        assert status == "OK"
        status, listed = client.list('""', "INBOX.Archive")
        assert status == "OK" and b"\\Archive" in listed[0]  # type: ignore[operator]
    finally:
        client.logout()


def test_stop_leaves_no_process_and_logs_are_kept(tmp_path: Path) -> None:
    archive = tmp_path / "logs"
    cyrus = CyrusFactory(log_archive=archive)
    courier = CourierFactory(log_archive=archive)
    try:
        servers: list[AnyServer] = [cyrus("upstream"), courier()]
        namespaces = [server._ns.namespace_id() for server in servers]  # type: ignore[union-attr]
        assert all(namespaces)
        for server in servers:
            server.add_user()
    finally:
        cyrus.close()
        courier.close()
    left = [pid for pid in os.listdir("/proc") if pid.isdigit() and _mount_ns(pid) in namespaces]
    assert left == []
    logs = sorted(p.name for p in archive.iterdir())
    assert "cyrus1-cyrus.log" in logs and "courier1.log" in logs
    assert b"User logged in" in (archive / "cyrus1-cyrus.log").read_bytes()
    assert b"LOGIN, user=user1" in (archive / "courier1.log").read_bytes()


def _mount_ns(pid: str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None
