"""Maildir received dates after the real mutt moved the mail, and after a bulk copy.

The store is first laid out as a delivery agent writes it (name timestamp = mtime =
the time of the Received: header it added); then Debian's mutt moves every message to
another folder, exactly as a user does: the moved files get new names carrying the
time of the move, and mutt sets their mtime back to the received time.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from advisor.cli import run
from advisor.stores.maildir import MaildirReader, name_date
from tests.harness.dovecot import Account, DovecotServer
from tests.harness.mailgen import crlf
from tests.harness.migrate_helpers import server_messages, write_profile
from tests.harness.mutt_driver import run_mutt

DELIVERED = [datetime(2019, 3, 1, 8, 0, tzinfo=UTC) + timedelta(days=10 * n) for n in range(4)]


def deliver(root: Path) -> list[bytes]:
    """INBOX as procmail/maildrop leave it: cur/ files named by their delivery time,
    with that mtime, each with the Received: header the last hop added."""
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
        (root / ".Archive" / sub).mkdir(parents=True, exist_ok=True)
    (root / ".Archive" / "maildirfolder").write_bytes(b"")
    bodies = []
    for n, when in enumerate(DELIVERED):
        data = (
            f"Received: from mx.example.org by pop.example.org; {format_datetime(when)}\n"
            f"Date: {format_datetime(when - timedelta(minutes=5))}\n"
            f"From: sender{n}@example.org\nTo: me@example.org\n"
            f"Subject: delivered {n}\nMessage-ID: <mutt-{n}@example.org>\n\nBody {n}\n"
        ).encode()
        stamp = int(when.timestamp())
        path = root / "cur" / f"{stamp}.M{n}P{100 + n}.pop:2,S"
        path.write_bytes(data)
        os.utime(path, (stamp, stamp))
        bodies.append(data)
    return bodies


def mutt_move_all(root: Path) -> None:
    """Tag every message, save the tagged ones to =.Archive (mutt's move), sync, quit."""
    run_mutt(
        root,
        "<tag-pattern>~A<enter><tag-prefix><save-message>=.Archive<enter><sync-mailbox><quit>",
        f"set folder={root}",
        "set mbox_type=Maildir delete=yes confirmappend=no confirmcreate=no quit=yes",
    )


def test_mutt_move_keeps_the_received_time_in_the_mtime(tmp_path: Path) -> None:
    root = tmp_path / "Maildir"
    deliver(root)
    before = time.time()
    mutt_move_all(root)
    moved = sorted((root / ".Archive" / "cur").iterdir())
    assert len(moved) == len(DELIVERED) and not list((root / "cur").iterdir())
    # What mutt did: a new name with the time of the move, the mtime set to Received:.
    for path in moved:
        assert name_date(path.name).timestamp() >= int(before) - 1  # type: ignore[union-attr]
    assert sorted(int(p.stat().st_mtime) for p in moved) == [int(d.timestamp()) for d in DELIVERED]
    got = sorted(m.received for m in MaildirReader(root).messages())  # type: ignore[type-var]
    assert got == DELIVERED


def test_bulk_copy_without_times_falls_back_to_the_names(tmp_path: Path) -> None:
    source = tmp_path / "old"
    deliver(source)
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(source), str(copy)], check=True)  # no -p: mtimes are now
    mtimes = [p.stat().st_mtime for p in (copy / "cur").iterdir()]
    assert min(mtimes) > DELIVERED[-1].timestamp() + 86400
    got = sorted(m.received for m in MaildirReader(copy).messages())  # type: ignore[type-var]
    assert got == DELIVERED


def test_mutt_moved_store_migrates_with_its_received_dates(
    tmp_path: Path,
    dovecot: DovecotServer,
    imap_account: Account,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = tmp_path / "Maildir"
    bodies = deliver(root)
    mutt_move_all(root)
    on_disk = {p.read_bytes() for p in (root / ".Archive" / "cur").iterdir()}
    profile, _ = write_profile(tmp_path, dovecot, imap_account, root)
    journal = tmp_path / "j.sqlite"
    for attempt in range(3):  # twice, then once more after the journal is lost
        if attempt == 2:
            journal.unlink()
        status = run(["migrate", "--profile", str(profile), "--journal", str(journal), "--json"])
        report = json.loads(capsys.readouterr().out)
        assert status == 0, report
        assert report["uploaded"] == (len(bodies) if attempt == 0 else 0)
    got = server_messages(dovecot, imap_account)["Archive"]
    assert {bytes(m[b"BODY[]"]) for m in got} == {crlf(b) for b in on_disk}  # type: ignore[arg-type]
    assert sorted(m[b"INTERNALDATE"].astimezone(UTC) for m in got) == DELIVERED  # type: ignore[union-attr]
    assert all(b"\\Seen" in m[b"FLAGS"] for m in got)  # type: ignore[operator]


def test_mutt_copy_from_an_mbox_dates_by_the_from_line(tmp_path: Path) -> None:
    """The common way mail reaches a Maildir: mutt saving from the spool mbox. The new
    files are named by the time of the copy; mutt sets their mtime to the From_ line's
    delivery time (read as local time: mutt runs in UTC here)."""
    root = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True)
        (root / ".Saved" / sub).mkdir(parents=True)
    spool = tmp_path / "spool"
    spool.write_bytes(
        b"From alice@example.org Mon Jan  8 10:00:00 2018\nFrom: alice@example.org\n"
        b"Subject: one\nMessage-ID: <one@example.org>\n\nbody one\n\n"
        b"From bob@example.org Tue Feb 13 11:30:00 2018\nFrom: bob@example.org\n"
        b"Subject: two\nMessage-ID: <two@example.org>\n\nbody two\n"
    )
    run_mutt(
        spool,
        "<tag-pattern>~A<enter><tag-prefix><copy-message>=.Saved<enter><quit>",
        f"set folder={root}",
        "set mbox_type=Maildir confirmappend=no confirmcreate=no quit=yes",
    )
    assert len(list((root / ".Saved" / "new").iterdir())) == 2  # still unread: new/
    got = sorted(
        (m.received, m.flags)
        for m in MaildirReader(root).messages()  # type: ignore[type-var]
    )
    assert got == [
        (datetime(2018, 1, 8, 10, 0, tzinfo=UTC), frozenset()),
        (datetime(2018, 2, 13, 11, 30, tzinfo=UTC), frozenset()),
    ]
