"""The most common real case: a Thunderbird profile's POP3 mail into IMAP folders."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from advisor.cli import run
from tests.harness.dovecot import DovecotFactory
from tests.harness.mailgen import crlf
from tests.harness.migrate_helpers import server_messages, write_profile
from tests.harness.scan_builders import TbMessage, write_thunderbird_profile

START = datetime(2019, 5, 1, 9, 30, tzinfo=UTC)


def tb(n: int, status: int = 0x0001) -> TbMessage:
    data = (
        f"From: a{n}@example.test\nTo: me@example.test\nSubject: message {n}\n"
        f"Message-ID: <tb-{n}@example.test>\nDate: Wed, 01 May 2019 09:30:00 +0000\n\n"
        f"Body of {n}\nFrom the start of a line, quoted in the mbox.\n"
    ).encode()
    return TbMessage(data, START + timedelta(hours=n), status)


@pytest.mark.parametrize("variant", [{}, {"separator": ".", "prefix": "INBOX."}])
def test_thunderbird_profile_into_imap(
    tmp_path: Path,
    dovecot_factory: DovecotFactory,
    variant: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    folders = {
        ("Inbox",): [tb(1), tb(2, 0x0000), tb(3, 0x0005), tb(4, 0x0009)],  # 4: deleted
        ("Sent",): [tb(5), tb(6, 0x0003)],
        ("Archives", "2019"): [tb(7), tb(8)],
        ("Receipts v1.2",): [tb(9)],
    }
    profile_tree = write_thunderbird_profile(tmp_path / "tb", folders)
    (profile_tree.local_folders / "Inbox.msf.bak").write_bytes(b"not mail")
    server = dovecot_factory(**variant)
    account = server.add_user()
    profile, _ = write_profile(tmp_path, server, account, profile_tree.profile, kind="thunderbird")
    status = run(
        ["migrate", "--profile", str(profile), "--journal", str(tmp_path / "j.sqlite"), "--json"]
    )
    report = json.loads(capsys.readouterr().out)
    assert status == 0, report
    assert report["uploaded"] == 8 and report["skipped_deleted"] == 1
    prefix = variant.get("prefix", "")
    sep = variant.get("separator", "/")
    got = server_messages(server, account)
    expected = {
        "INBOX": [1, 2, 3],
        f"{prefix}Sent": [5, 6],
        # Sub-folders follow their special folder: Archives -> Archive (issue 10, point 6).
        f"{prefix}Archive{sep}2019": [7, 8],
        # "." is the delimiter on the second server: a look-alike keeps one level.
        f"{prefix}Receipts v1" + ("\u2024" if sep == "." else ".") + "2": [9],
    }
    by_body = {
        crlf(m.data): n
        for n, m in enumerate([m for msgs in folders.values() for m in msgs], start=1)
    }
    for name, numbers in expected.items():
        assert sorted(by_body[bytes(m[b"BODY[]"])] for m in got[name]) == numbers, name
    flags = {by_body[bytes(m[b"BODY[]"])]: set(m[b"FLAGS"]) for m in got["INBOX"]}
    assert b"\\Seen" in flags[1] and b"\\Seen" not in flags[2]
    assert {b"\\Seen", b"\\Flagged"} <= flags[3]
    # INTERNALDATE is the arrival time Thunderbird kept (its .msf), not the Date: header.
    for ms in got.values():
        for m in ms:
            n = by_body[bytes(m[b"BODY[]"])]
            assert m[b"INTERNALDATE"].astimezone(UTC) == START + timedelta(hours=n)
    sent = {by_body[bytes(m[b"BODY[]"])]: set(m[b"FLAGS"]) for m in got[f"{prefix}Sent"]}
    assert b"\\Answered" in sent[6]
    # Thunderbird's bookkeeping headers never reach the server.
    assert all(b"X-Mozilla" not in bytes(m[b"BODY[]"]) for ms in got.values() for m in ms)
    # What the reader left out is said in the report.
    assert any("Inbox.msf.bak" in note for note in report["notes"])
