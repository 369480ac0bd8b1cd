"""mbox stores as the real Unix programs write them, migrated into Dovecot.

The stores come from Dovecot's own mbox driver (fed over IMAP), c-client (uw-mailutils'
``mailutil copy``, Alpine's and Pine's library) and GNU mailutils (``movemail`` against the
suite's POP3). Every migrated message is compared with what Dovecot's mbox driver shows of
the same file: bytes, flags, keywords, INTERNALDATE.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from advisor.cli import run
from advisor.stores.mbox import MboxReader
from tests.harness.dovecot import MBOX_LOCATION, Account, DovecotFactory, DovecotServer
from tests.harness.migrate_helpers import connect, server_messages, write_profile
from tests.harness.store_checks import assert_untouched, tree_state
from tests.harness.unix_writers import cclient_copy, dovecot_view, movemail, normalised

START = datetime(2021, 3, 1, 8, 0, tzinfo=UTC)
BOOKKEEPING = (b"X-IMAP", b"X-UID:", b"X-Keywords:", b"Status:", b"X-Status:", b"Content-Length")


def message(n: int, body: bytes = b"") -> bytes:
    return (
        f"From: sender{n}@example.test\r\nTo: me@example.test\r\nSubject: message {n}\r\n"
        f"Message-ID: <unix-{n}@example.test>\r\nDate: Mon, 01 Mar 2021 08:00:00 +0000\r\n\r\n"
        f"Body of {n}.\r\n"
    ).encode() + body


# A body line starting with "From " and one starting with ">From ": mbox quoting at work.
QUOTING = b"From the start of a line.\r\n>From a quoted line.\r\n"
FEED = {
    "INBOX": [
        (message(1, QUOTING), [b"\\Seen", b"projectx", b"$Forwarded"]),
        (message(2), [b"\\Flagged"]),
        (message(3), []),
    ],
    "Work": [(message(4), [b"\\Seen", b"\\Answered", b"projectx"]), (message(5), [b"\\Draft"])],
    "Lists/Python": [(message(6, QUOTING), [b"\\Seen"])],
}


@pytest.fixture(scope="module")
def mbox_server(dovecot_factory: DovecotFactory) -> DovecotServer:
    """A Dovecot keeping its users' mail in mbox files (~/mail, INBOX ~/mail/inbox)."""
    return dovecot_factory(mail_location=MBOX_LOCATION)


def feed(server: DovecotServer, account: Account, *, emptied: bool = False) -> None:
    """APPEND every message of :data:`FEED` with its flags and an arrival time; with
    ``emptied``, also a folder whose only message is expunged (Dovecot then writes
    c-client's folder-data record into it)."""
    with connect(server, account) as client:
        n = 0
        for folder, messages in FEED.items():
            if folder != "INBOX":
                client.create_folder(folder)
            for data, flags in messages:
                n += 1
                client.append(folder, data, flags=flags, msg_time=START + timedelta(hours=n))
        if emptied:
            client.create_folder("Emptied")
            client.append("Emptied", message(99), flags=[b"projectx"])
            client.select_folder("Emptied")
            client.delete_messages(client.search("ALL"))
            client.expunge()


def run_migrate(
    tmp_path: Path, server: DovecotServer, account: Account, source: Path, capsys
) -> list[dict]:
    profile, _ = write_profile(tmp_path, server, account, source, kind="mbox")
    journal = tmp_path / f"journal-{account.username}.sqlite"
    reports = []
    for _ in range(2):  # twice in a row: the second run adds nothing
        status = run(["migrate", "--profile", str(profile), "--journal", str(journal), "--json"])
        report = json.loads(capsys.readouterr().out)
        assert status == 0, report
        reports.append(report)
    return reports


def assert_same_as_dovecot(
    migrated: dict[str, list[dict[bytes, object]]],
    expected: dict[str, list[dict[bytes, object]]],
    folders: dict[str, str],
) -> None:
    """Folder by folder (source name -> server name), the migrated messages equal what
    Dovecot's mbox driver showed: bytes, flags and keywords, INTERNALDATE."""
    for source, target in folders.items():
        want, got = normalised(expected[source]), normalised(migrated[target])
        assert got == want, (source, target)
    for messages in migrated.values():
        for m in messages:
            body = bytes(m[b"BODY[]"])  # type: ignore[call-overload]
            head = body.split(b"\r\n\r\n", 1)[0]
            assert not any(field in head for field in BOOKKEEPING), head
            assert b"FOLDER INTERNAL DATA" not in body


def test_dovecot_mbox_store_migrates_as_dovecot_shows_it(
    tmp_path: Path,
    mbox_server: DovecotServer,
    dovecot: DovecotServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    owner = mbox_server.add_user()
    feed(mbox_server, owner, emptied=True)
    shown = {}
    with connect(mbox_server, owner) as client:
        for folder in [*FEED, "Emptied"]:
            client.select_folder(folder, readonly=True)
            fetched = client.fetch(client.search("ALL"), ["FLAGS", "INTERNALDATE", "BODY.PEEK[]"])
            shown[folder] = [m for _, m in sorted(fetched.items())]
    # The files Dovecot wrote are the source (a copy: Dovecot may rewrite its own).
    source = tmp_path / "mail"
    shutil.copytree(mbox_server.home_of(owner) / "mail", source)
    inbox = (source / "inbox").read_bytes()
    assert b"X-IMAPbase:" in inbox and b"X-Keywords: projectx $Forwarded" in inbox
    assert b"FOLDER INTERNAL DATA" in (source / "Emptied").read_bytes()
    assert shown["Emptied"] == []
    before = tree_state(source)

    status = run(["scan", str(source)])
    text = capsys.readouterr().out
    assert status == 0
    assert "a folder tree of mbox files (Dovecot's mbox layout" in text
    assert "1 folder-data record(s) of c-client" in text

    target = dovecot.add_user()
    first, second = run_migrate(tmp_path, dovecot, target, source, capsys)
    assert first["uploaded"] == 6 and second["uploaded"] == 0
    assert any(n.startswith("Emptied:0: c-client's folder-data") for n in first["notes"])
    migrated = server_messages(dovecot, target)
    assert sum(len(m) for m in migrated.values()) == 6 and migrated["Emptied"] == []
    assert_same_as_dovecot(
        migrated, shown, {"INBOX": "INBOX", "Work": "Work", "Lists/Python": "Lists/Python"}
    )
    # Dovecot keeps a body line ">From " as it is: so does the migrated copy.
    assert b"\r\n>From a quoted line." in bytes(
        normalised(migrated["INBOX"])[b"<unix-1@example.test>"][0]
    )  # type: ignore[arg-type]
    assert_untouched(source, before)


def test_cclient_mbox_folder_data_is_left_out(
    tmp_path: Path,
    mbox_server: DovecotServer,
    dovecot: DovecotServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # c-client copies a Dovecot mbox into a new mailbox of its own, as Alpine saves
    # messages into ~/mail/saved-messages (it keeps the flags, not the keywords).
    owner = mbox_server.add_user()
    feed(mbox_server, owner)
    with connect(mbox_server, owner) as client:
        client.select_folder("INBOX")  # let Dovecot write its headers
    copied = cclient_copy((mbox_server.home_of(owner) / "mail" / "inbox").read_bytes())
    assert copied.startswith(b"From MAILER-DAEMON ")
    assert b"DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA" in copied
    assert b"\nX-UID: 1\n" in copied and b"\nX-Status: F\n" in copied
    assert b"\n>From the start of a line." in copied  # c-client quotes, never unquotes
    source = tmp_path / "mail"
    source.mkdir()
    (source / "saved-messages").write_bytes(copied)
    shown = dovecot_view(mbox_server, {"saved-messages": copied})
    assert len(shown["saved-messages"]) == 3  # Dovecot hides the folder data too

    reader = MboxReader(source)
    messages = list(reader.messages())
    assert len(messages) == 3 and reader.folder_data == 1
    assert any("FOLDER INTERNAL DATA" in note for note in reader.notes)

    status = run(["scan", "--json", str(source)])
    scanned = json.loads(capsys.readouterr().out)
    assert status == 0
    store = scanned["stores"][0]
    assert store["description"] == "a folder tree of mbox files (Alpine/Pine's ~/mail (c-client))"
    assert store["scan"]["totals"]["messages"] == 3 and store["scan"]["folder_data"] == 1

    target = dovecot.add_user()
    first, second = run_migrate(tmp_path, dovecot, target, source, capsys)
    assert first["uploaded"] == 3 and second["uploaded"] == 0 and first["failed"] == 0
    assert any("FOLDER INTERNAL DATA" in note for note in first["notes"])
    migrated = server_messages(dovecot, target)
    assert_same_as_dovecot(migrated, shown, {"saved-messages": "saved-messages"})
    flags = {k: v[1] for k, v in normalised(migrated["saved-messages"]).items()}
    assert flags[b"<unix-1@example.test>"] == {b"\\Seen"}
    assert flags[b"<unix-2@example.test>"] == {b"\\Flagged"}


def test_movemail_target_is_the_inbox(
    tmp_path: Path,
    mbox_server: DovecotServer,
    dovecot: DovecotServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pop_account = dovecot.add_user()
    with connect(dovecot, pop_account) as client:
        for n in (7, 8, 9):
            body = QUOTING if n == 8 else b""
            client.append("INBOX", message(n, body), msg_time=START + timedelta(hours=n))
        client.select_folder("INBOX", readonly=True)
        fetched = client.fetch(client.search("ALL"), ["BODY.PEEK[]"])
        originals = {m[b"BODY[]"] for m in fetched.values()}
    incoming = tmp_path / "incoming"
    movemail(dovecot, pop_account.username, pop_account.password, incoming)
    stored = incoming.read_bytes()
    assert b"X-IMAPbase:" in stored and b"\n>From the start" in stored  # mboxrd
    assert pop_account.password.encode() not in stored

    # The plan proposes INBOX for the file movemail delivers into, and says why.
    target = dovecot.add_user()
    profile, _ = write_profile(tmp_path, dovecot, target, incoming, kind="mbox")
    status = run(["migrate", "--profile", str(profile), "--dry-run"])
    plan = capsys.readouterr().out
    assert status == 0
    assert "incoming goes to INBOX: GNU mailutils (movemail) delivered into this file" in plan

    first, second = run_migrate(tmp_path, dovecot, target, incoming, capsys)
    assert first["uploaded"] == 3 and second["uploaded"] == 0
    assert [f["target"] for f in first["folders"]] == ["INBOX"]
    migrated = server_messages(dovecot, target)
    # Byte for byte the messages the POP3 server handed out, mboxrd quoting undone.
    assert {bytes(m[b"BODY[]"]) for m in migrated["INBOX"]} == originals  # type: ignore[call-overload]
    # What Dovecot's mbox driver shows of the same file: equal, except that Dovecot
    # leaves mboxrd's ">" on (mailutils, the writer, takes it off, as we do).
    shown = normalised(dovecot_view(mbox_server, {"incoming": stored})["incoming"])
    got = normalised(migrated["INBOX"])
    assert got.keys() == shown.keys()
    for key, (body, flags, when) in shown.items():
        unquoted = bytes(body).replace(b"\r\n>From ", b"\r\nFrom ").replace(b">>From", b">From")  # type: ignore[arg-type]
        assert got[key] == (unquoted, flags, when), key

    # A folder mapping in the profile still wins.
    other = dovecot.add_user()
    profile, _ = write_profile(
        tmp_path,
        dovecot,
        other,
        incoming,
        kind="mbox",
        migration='folder_map = { incoming = "Fetched" }',
    )
    status = run(["migrate", "--profile", str(profile), "--dry-run", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert status == 0 and [f["target"] for f in report["folders"]] == ["Fetched"]
