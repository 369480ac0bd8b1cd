"""Uploads without LITERAL+ and MULTIAPPEND (Courier), and how they go on the wire.

A Dovecot advertising Courier-IMAP's capabilities makes the client use
synchronising literals, one message per APPEND: every message must still arrive
once and byte for byte, and so into the real Courier. On the wire, every IMAP
connection has Nagle switched off (TCP_NODELAY), and a command, its literal and its
closing CRLF are not sent one write each: that cost two delayed-ACK stalls (about
40 ms each) per message.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import imapclient
import pytest

from advisor.cli import run
from advisor.connection.account import resolve_account
from advisor.connection.imap import ImapTarget, connect, login
from advisor.migration.upload import PipelinedAppender
from advisor.plugins.manager import load_plugins
from advisor.plugins.types import Security
from advisor.profile import load_profile
from tests.harness.courier import CourierFactory
from tests.harness.dovecot import (
    COURIER_CAPABILITIES,
    Account,
    DovecotFactory,
    DovecotServer,
    capability_config,
    find_free_ports,
)
from tests.harness.mailgen import GeneratedMessage, crlf, generate, write_maildir
from tests.harness.migrate_helpers import body_counts, server_messages, write_profile
from tests.harness.record_proxy import TlsRecordProxy

LATENCY_PROXY = Path(__file__).resolve().parent.parent / "bench" / "latency_proxy.py"
LITERAL_PLUS_ONLY = "IMAP4rev1 UIDPLUS CHILDREN NAMESPACE LITERAL+"
FOLDERS = [("INBOX",), ("Sent",), ("Work", "Projects")]


def _migrate(
    profile: Path, journal: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, dict]:
    status = run(
        ["migrate", "--profile", str(profile), "--journal", str(journal), "--json", *extra]
    )
    return status, json.loads(capsys.readouterr().out)


@pytest.fixture
def courier_like(dovecot_factory: DovecotFactory) -> DovecotServer:
    return dovecot_factory(extra_config=capability_config(COURIER_CAPABILITIES))


def test_the_server_really_hides_literal_plus_and_multiappend(
    courier_like: DovecotServer,
) -> None:
    account = courier_like.add_user()
    info = courier_like.info
    client = connect(ImapTarget(info.hostname, info.imaps_port, ca_file=info.ca_file))
    login(client, account.username, account.password)
    appender = PipelinedAppender(client)
    try:
        caps = {c.upper() for c in client.capabilities()}
        assert b"MULTIAPPEND" not in caps and b"LITERAL-" not in caps
        assert not appender.literal_plus and not appender.literal_minus
    finally:
        appender.close()


def test_migrates_every_message_once_with_exact_bytes_without_literal_plus(
    tmp_path: Path, courier_like: DovecotServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # Realistic sizes: some messages are larger than one write (256 KB) and one TLS record.
    msgs = write_maildir(tmp_path / "Maildir", list(generate(60, FOLDERS, seed=11)))
    assert max(len(m.data) for m in msgs) > 256 * 1024
    account = courier_like.add_user()
    profile, _ = write_profile(tmp_path, courier_like, account, tmp_path / "Maildir")
    journal = tmp_path / "j.sqlite"
    status, report = _migrate(profile, journal, capsys)
    assert status == 0, report
    assert report["uploaded"] == len(msgs) and report["failed"] == 0
    assert report["verified"] is True

    on_server = server_messages(courier_like, account)
    names = {("INBOX",): "INBOX", ("Sent",): "Sent", ("Work", "Projects"): "Work/Projects"}
    for folder, name in names.items():
        want = sorted(crlf(m.data) for m in msgs if m.folder == folder)
        got = sorted(m[b"BODY[]"] for m in on_server[name])  # type: ignore[misc]
        assert got == want, name
    # A second run finds everything there and adds nothing.
    status, again = _migrate(profile, journal, capsys)
    assert status == 0 and again["uploaded"] == 0 and again["already_done"] == len(msgs)
    counts = body_counts(courier_like, account)
    assert sum(counts.values()) == len(msgs) and max(counts.values()) == 1


@pytest.mark.parametrize("security", [Security.TLS, Security.STARTTLS, Security.NONE])
def test_every_imap_connection_switches_nagle_off(
    security: Security, dovecot: DovecotServer, imap_account: Account, tmp_path: Path
) -> None:
    info = dovecot.info
    host, port = {
        Security.TLS: (info.hostname, info.imaps_port),
        Security.STARTTLS: (info.hostname, info.imap_starttls_port),
        Security.NONE: (info.imap_plain_host, info.imap_plain_port),
    }[security]
    target = ImapTarget(host, port, security, ca_file=info.ca_file, allow_insecure=True)
    client = connect(target)
    try:
        sock = client._imap.sock  # after STARTTLS: the TLS socket that replaced the plain one
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        client.shutdown()
    # The connections a migration opens (control and upload) come from the account.
    profile, _ = write_profile(tmp_path, dovecot, imap_account, tmp_path)
    access = resolve_account(load_profile(profile), load_plugins())
    opened = access.open()
    try:
        assert opened._imap.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        opened.logout()


def _one_folder_store(root: Path, count: int) -> list[GeneratedMessage]:
    return write_maildir(root, list(generate(count, [("INBOX",)], seed=5, sizes="small")))


@pytest.mark.parametrize(
    "capabilities", [COURIER_CAPABILITIES, LITERAL_PLUS_ONLY], ids=["sync", "literal-plus"]
)
def test_a_command_and_its_literal_share_one_write(
    capabilities: str,
    tmp_path: Path,
    dovecot_factory: DovecotFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """One APPEND per message: about one write each, never one per piece (3 each)."""
    server = dovecot_factory(extra_config=capability_config(capabilities))
    count = 30
    msgs = _one_folder_store(tmp_path / "Maildir", count)
    assert all(len(m.data) < 4000 for m in msgs)  # every write fits one TLS record
    account = server.add_user()
    profile, _ = write_profile(tmp_path, server, account, tmp_path / "Maildir")
    with TlsRecordProxy((server.info.host, server.info.imaps_port)) as proxy:
        profile.write_text(
            profile.read_text().replace(f"port = {server.info.imaps_port}", f"port = {proxy.port}")
        )
        status, report = _migrate(profile, tmp_path / "j.sqlite", capsys, "--connections", "1")
        assert status == 0, report
        assert report["uploaded"] == count
    writes = [c.application_records for c in proxy.connections]
    # The upload connection carried the messages; the control connection lists and verifies.
    upload = max(proxy.connections, key=lambda c: c.client_bytes).application_records
    # Handshake, LOGIN, CAPABILITY, LOGOUT: a few writes beside the messages' own.
    assert upload <= count + 6, writes
    if capabilities == COURIER_CAPABILITIES:
        # Each synchronising literal needs the server's go-ahead: at least a write each.
        assert upload >= count, writes
    assert sum(body_counts(server, account).values()) == count


def test_multiappend_batches_go_in_few_large_writes(
    tmp_path: Path,
    dovecot: DovecotServer,
    imap_account: Account,
    capsys: pytest.CaptureFixture[str],
) -> None:
    count = 30
    msgs = _one_folder_store(tmp_path / "Maildir", count)
    total = sum(len(crlf(m.data)) for m in msgs)
    profile, _ = write_profile(tmp_path, dovecot, imap_account, tmp_path / "Maildir")
    with TlsRecordProxy((dovecot.info.host, dovecot.info.imaps_port)) as proxy:
        profile.write_text(
            profile.read_text().replace(f"port = {dovecot.info.imaps_port}", f"port = {proxy.port}")
        )
        status, report = _migrate(profile, tmp_path / "j.sqlite", capsys, "--connections", "1")
        assert status == 0, report
    writes = [c.application_records for c in proxy.connections]
    upload = max(proxy.connections, key=lambda c: c.client_bytes).application_records
    # One MULTIAPPEND: TLS records of 16 KB each, plus the session's few commands.
    assert upload <= total // 16384 + 1 + 6, writes
    assert sum(body_counts(dovecot, imap_account).values()) == count


def test_into_courier_every_message_once_over_one_connection_on_a_fast_link(
    tmp_path: Path, courier_factory: CourierFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    server = courier_factory()
    msgs = write_maildir(tmp_path / "Maildir", list(generate(40, FOLDERS, seed=3)))
    account = server.add_user()
    profile = tmp_path / "courier.toml"
    profile.write_text(
        f'version = 1\n[account]\nemail = "{account.email}"\nprovider = "generic"\n'
        f'[server]\nhost = "{server.info.host}"\nport = {server.info.port}\n'
        f'username = "{account.username}"\nsecurity = "none"\nallow_insecure = true\n'
        f'[auth]\npassword_env = "MA_COURIER_PASSWORD"\n'
        f'[source]\nkind = "maildir"\npath = "{tmp_path / "Maildir"}"\n'
    )
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MA_COURIER_PASSWORD", account.password)
        status, report = _migrate(profile, tmp_path / "j.sqlite", capsys)
        assert status == 0, report
        assert report["uploaded"] == len(msgs) and report["verified"] is True
        # Parallel APPENDs into one Courier folder wait a second for its lock each time.
        assert report["connections"] == 1
        assert any("Courier-IMAP" in note for note in report["notes"])
        status, forced = _migrate(profile, tmp_path / "k.sqlite", capsys, "--connections", "3")
        assert status == 0 and forced["connections"] == 3 and forced["uploaded"] == 0

    client = imapclient.IMAPClient(server.info.host, port=server.info.port, ssl=False)
    client.login(account.username, account.password)
    got = []
    for flags, _delim, name in client.list_folders():
        if {b"\\NOSELECT", b"\\NONEXISTENT"} & {f.upper() for f in flags}:
            continue  # INBOX.Work above INBOX.Work.Projects: only a level of the hierarchy
        client.select_folder(name, readonly=True)
        uids = client.search("ALL")
        got += [d[b"BODY[]"] for d in client.fetch(uids, ["BODY.PEEK[]"]).values()]
    client.logout()
    assert sorted(got) == sorted(crlf(m.data) for m in msgs)


def test_into_courier_over_a_slow_link_parallel_connections_pay_off(
    tmp_path: Path, courier_factory: CourierFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """10 ms each way: round trips dominate, folder-lock collisions are rare."""
    server = courier_factory()
    msgs = write_maildir(tmp_path / "Maildir", list(generate(20, FOLDERS, seed=4, sizes="small")))
    account = server.add_user()
    (port,) = find_free_ports("127.0.0.1")
    proxy = subprocess.Popen(
        [
            sys.executable,
            str(LATENCY_PROXY),
            str(port),
            server.info.host,
            str(server.info.port),
            "10",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert proxy.stdout is not None and proxy.stdout.readline().strip() == b"ready"
        profile = tmp_path / "courier.toml"
        profile.write_text(
            f'version = 1\n[account]\nemail = "{account.email}"\nprovider = "generic"\n'
            f'[server]\nhost = "127.0.0.1"\nport = {port}\n'
            f'username = "{account.username}"\nsecurity = "none"\nallow_insecure = true\n'
            f'[auth]\npassword_env = "MA_COURIER_PASSWORD"\n'
            f'[source]\nkind = "maildir"\npath = "{tmp_path / "Maildir"}"\n'
        )
        with pytest.MonkeyPatch.context() as env:
            env.setenv("MA_COURIER_PASSWORD", account.password)
            status, report = _migrate(profile, tmp_path / "j.sqlite", capsys)
    finally:
        proxy.terminate()
        proxy.wait()
        if proxy.stdout is not None:
            proxy.stdout.close()
    assert status == 0, report
    assert report["uploaded"] == len(msgs) and report["verified"] is True
    assert report["connections"] == 4
    assert not any("Courier-IMAP" in note for note in report["notes"])
