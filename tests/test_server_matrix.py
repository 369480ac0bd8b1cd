"""Migrations where the server matters, on Dovecot, Cyrus (both namespaces) and Courier.

Each test runs once per kind in ``SERVER_KINDS`` (the ``matrix_server`` fixture), on the
session's shared server of that kind, with a fresh user.
"""

from __future__ import annotations

import imaplib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from advisor.cli import run
from advisor.migration.journal import MigrationJournal
from advisor.migration.plan import FolderTarget, ServerLayout
from advisor.migration.server_folders import ServerFolders, read_layout
from tests.harness.dovecot import DovecotServer
from tests.harness.mailgen import GeneratedMessage, crlf, generate, write_maildir
from tests.harness.migrate_helpers import (
    AnyServer,
    body_counts,
    connect,
    server_messages,
    write_profile,
)
from tests.harness.scan_builders import TbMessage, write_thunderbird_profile

# Local folders -> server folder (below the personal prefix, "/" standing for the separator).
LAYOUT = {
    ("INBOX",): "INBOX",
    ("Sent",): "Sent",
    # Two local folders, one server folder (created once; Courier says a plain NO twice).
    ("Junk",): "Junk",
    ("Spam",): "Junk",
    # A special folder and its sub-folder: one tree (Cyrus: CREATE ... (USE (\Archive))).
    ("Archives",): "Archive",
    ("Archives", "2019"): "Archive/2019",
    # INBOX is case-insensitive: the server's INBOX/Sub (INBOX.Sub under INBOX.).
    ("Inbox", "Sub"): "INBOX/Sub",
    ("Projects", "Deep"): "Projects/Deep",
}


def _server_name(server: AnyServer, name: str) -> str:
    sep, prefix = server.info.separator, server.info.prefix
    if name == "INBOX":
        return name
    if name.startswith("INBOX/"):
        rest = name[len("INBOX/") :].replace("/", sep)
        return prefix + rest if prefix.upper() == "INBOX" + sep else "INBOX" + sep + rest
    return prefix + name.replace("/", sep)


def _messages(count: int, seed: int) -> list[GeneratedMessage]:
    # Courier adds a final CRLF to a message without one (issue 10, point 4, is the
    # identity fix for that); these all end with a line break, so they stay byte-exact.
    msgs = list(generate(count, list(LAYOUT), seed=seed, sizes="small", without_message_id=0.1))
    assert all(m.data.endswith(b"\n") for m in msgs)
    return msgs


def _migrate(
    profile: Path, journal: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, dict[str, Any]]:
    status = run(
        ["migrate", "--profile", str(profile), "--journal", str(journal), "--json", *extra]
    )
    return status, json.loads(capsys.readouterr().out)


def test_folder_layout_rerun_and_lost_journal(
    tmp_path: Path, matrix_server: AnyServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server = matrix_server
    source = tmp_path / "Maildir"
    msgs = write_maildir(source, _messages(80, seed=21))
    account = server.add_user()
    profile, _ = write_profile(tmp_path, server, account, source)
    journal = tmp_path / "journal.sqlite"

    status, report = _migrate(profile, journal, capsys)
    assert status == 0, report
    assert report["uploaded"] == len(msgs) and report["failed"] == 0
    assert report["verified"] is True
    got = server_messages(server, account)
    for folder, name in LAYOUT.items():
        want = sorted(crlf(m.data) for m in msgs if m.folder == folder)
        assert want, folder
        where = _server_name(server, name)
        have = [bytes(m[b"BODY[]"]) for m in got[where]]
        assert all(w in have for w in want), (folder, where)
    assert sorted(bytes(m[b"BODY[]"]) for ms in got.values() for m in ms) == sorted(
        crlf(m.data) for m in msgs
    )
    # Flags arrived too.
    by_body = {crlf(m.data): m for m in msgs}
    for ms in got.values():
        for m in ms:
            sent = by_body[bytes(m[b"BODY[]"])].flags
            assert {f.encode() for f in sent} <= set(m[b"FLAGS"])
    # The report says which folders this run created (and only those).
    created = {f["source"]: f["created"] for f in report["folders"]}
    assert created["Archives/2019"] is True and created["Projects/Deep"] is True
    assert created["INBOX"] is False and created["Sent"] is False
    archive = _server_name(server, "Archive")
    with connect(server, account) as client:
        listed = {name: flags for flags, _d, name in client.list_folders()}
    if isinstance(server, DovecotServer):
        assert created["Archives"] is False  # the server's \Archive folder
    else:
        assert created["Archives"] is True
    if server.kind == "cyrus":  # CREATE-SPECIAL-USE: created with its role
        assert b"\\Archive" in listed[archive]

    # Again: nothing new.
    status, again = _migrate(profile, journal, capsys)
    assert status == 0, again
    assert again["uploaded"] == 0 and again["already_done"] == len(msgs)
    assert not any(f["created"] for f in again["folders"])

    # Journal lost: the server-side check finds every message.
    for leftover in tmp_path.glob("journal.sqlite*"):
        leftover.unlink()
    status, lost = _migrate(profile, journal, capsys)
    assert status == 0, lost
    assert lost["uploaded"] == 0 and lost["found_on_server"] == len(msgs)
    counts = body_counts(server, account)
    assert set(counts.values()) == {1} and len(counts) == len(msgs)


def _journal_rows(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            return int(db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_kill_9_then_lost_journal_gives_every_message_once(
    tmp_path: Path, matrix_server: AnyServer
) -> None:
    server = matrix_server
    source = tmp_path / "Maildir"
    msgs = write_maildir(source, _messages(160, seed=22))
    account = server.add_user()
    profile, env = write_profile(tmp_path, server, account, source)
    journal = tmp_path / "journal.sqlite"
    cmd = [sys.executable, "-m", "advisor", "migrate", "--profile", str(profile),
           "--journal", str(journal), "--json", "--batch-size", "7",
           "--connections", "3"]  # fmt: skip
    full_env = {**os.environ, **env}
    killed_at = []
    for threshold in (15, 70):
        proc = subprocess.Popen(
            cmd, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if _journal_rows(journal) >= threshold:
                break
            time.sleep(0.005)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed_at.append(_journal_rows(journal))
        proc.wait()
        counts = body_counts(server, account)
        assert max(counts.values(), default=0) == 1, "a killed run must never leave duplicates"
    assert killed_at, "the run was never killed mid-way: the test proved nothing"
    for leftover in tmp_path.glob("journal.sqlite*"):
        leftover.unlink()
    done = subprocess.run(cmd, env=full_env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["verified"] is True
    counts = body_counts(server, account)
    assert sorted(counts) == sorted(crlf(m.data) for m in msgs)
    assert set(counts.values()) == {1}


def test_create_of_a_folder_another_client_made_meanwhile_goes_on(
    tmp_path: Path, matrix_server: AnyServer
) -> None:
    """After any NO to CREATE the name is LISTed: an existing folder is used, not refused."""
    server = matrix_server
    account = server.add_user()
    name = _server_name(server, "Made meanwhile")
    with connect(server, account) as control, MigrationJournal(tmp_path / "j.sqlite") as jnl:
        layout = read_layout(control)
        assert not layout.has(name)
        with connect(server, account) as other:
            other.create_folder(name)  # after our LIST, before our CREATE
        notes: list[str] = []
        folders = ServerFolders(control, layout, jnl, notes)
        target = folders.ensure(FolderTarget(name, None, False, "test"))
        assert target.name == name
        assert folders.refused == {} and name not in folders.created
        # Case of INBOX as a path's first level does not matter either.
        sub = _server_name(server, "INBOX/Sub2")
        other_layout = read_layout(control)
        control.create_folder(sub)
        spelled = "Inbox" + sub[len("INBOX") :]
        again = ServerFolders(control, other_layout, jnl, notes)
        assert again.ensure(FolderTarget(spelled, None, False, "test")).name == spelled
        assert again.refused == {}


def test_a_bug_inside_the_run_ends_with_the_report_and_status_70(
    tmp_path: Path,
    dovecot: DovecotServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = tmp_path / "Maildir"
    write_maildir(source, list(generate(5, [("INBOX",), ("New folder",)], seed=23, sizes="small")))
    account = dovecot.add_user()
    profile, _ = write_profile(tmp_path, dovecot, account, source)

    def broken(self: object, target: object) -> object:
        raise TypeError("create() takes 2 positional arguments but 3 were given")

    monkeypatch.setattr(ServerFolders, "ensure", broken)
    report_file = tmp_path / "report.json"
    status = run(["migrate", "--profile", str(profile), "--journal", str(tmp_path / "j.sqlite"),
                  "--report", str(report_file)])  # fmt: skip
    err = capsys.readouterr().err
    assert status == 70
    assert "internal error" in err and "TypeError" in err and "Traceback" not in err
    report = json.loads(report_file.read_text())
    assert report["internal_error"].startswith("TypeError: create() takes")
    assert report["stopped_early"] and report["uploaded"] == 0


def test_refused_character_gets_its_lookalike_and_keeps_it(
    tmp_path: Path, dovecot_factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Dovecot with Maildir++ on disk and "/" as separator refuses "." in names."""
    server: DovecotServer = dovecot_factory(maildir_plus_plus=True)
    account = server.add_user()
    with connect(server, account) as client, pytest.raises(imaplib.IMAP4.error, match="CANNOT"):
        client.create_folder("v1.2 notes")  # the server really refuses it
    folders = [("Inbox",), ("v1.2 notes",), ("v1.2 notes", "old"), ("Archives", "2.0")]
    msgs = list(generate(12, folders, seed=24, sizes="small"))
    tree = write_thunderbird_profile(
        tmp_path / "tb",
        {f: [TbMessage(m.data, m.date) for m in msgs if m.folder == f] for f in folders},
    )
    profile, _ = write_profile(tmp_path, server, account, tree.profile, kind="thunderbird")
    journal = tmp_path / "journal.sqlite"
    status, report = _migrate(profile, journal, capsys)
    assert status == 0, report
    assert report["uploaded"] == len(msgs) and report["failed"] == 0
    dot = "\u2024"
    targets = {f["source"]: f["target"] for f in report["folders"]}
    targets = {k.removeprefix("Local Folders/"): v for k, v in targets.items()}
    assert targets.keys() == {"Inbox", "v1.2 notes", "v1.2 notes/old", "Archives", "Archives/2.0"}
    assert targets["v1.2 notes"] == f"v1{dot}2 notes"
    assert targets["v1.2 notes/old"] == f"v1{dot}2 notes/old"
    assert targets["Archives/2.0"] == f"Archive/2{dot}0"
    assert any("v1.2 notes" in n and f"v1{dot}2 notes" in n for n in report["notes"])
    with MigrationJournal(journal) as jnl:
        assert jnl.folder_renames()["v1.2 notes"] == f"v1{dot}2 notes"
    got = server_messages(server, account)
    assert len(got[f"v1{dot}2 notes"]) == sum(m.folder == ("v1.2 notes",) for m in msgs)

    status, again = _migrate(profile, journal, capsys)
    assert status == 0 and again["uploaded"] == 0 and again["already_done"] == len(msgs)
    # verify (no journal) finds the renamed folders by their look-alike names.
    assert run(["verify", "--profile", str(profile), "--json"]) == 0
    checked = json.loads(capsys.readouterr().out)
    assert f"v1{dot}2 notes/old" in {f["target"] for f in checked["folders"]}
    for leftover in tmp_path.glob("journal.sqlite*"):
        leftover.unlink()
    status, lost = _migrate(profile, journal, capsys)
    assert status == 0 and lost["uploaded"] == 0 and lost["found_on_server"] == len(msgs)
    assert set(body_counts(server, account).values()) == {1}


def test_layout_is_read_from_each_server(matrix_server: AnyServer) -> None:
    server = matrix_server
    account = server.add_user()
    with connect(server, account) as client:
        layout: ServerLayout = read_layout(client)
    assert layout.delimiter == server.info.separator
    assert layout.prefix == server.info.prefix
    assert ("MULTIAPPEND" in layout.capabilities) is (server.kind != "courier")
