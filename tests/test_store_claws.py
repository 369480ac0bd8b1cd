"""Claws Mail and Sylpheed MH stores: flags from .claws_mark / .sylpheed_mark."""

from __future__ import annotations

import json
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from advisor.cli import run
from advisor.stores.base import ANSWERED, FLAGGED, FORWARDED, SEEN
from advisor.stores.claws_marks import LABEL_KEYWORDS, color_label, parse_marks
from advisor.stores.mh import MhReader
from tests.harness.claws_gen import ClawsMessage, write_mailbox
from tests.harness.dovecot import Account, DovecotServer
from tests.harness.mailgen import crlf
from tests.harness.migrate_helpers import server_messages, write_profile
from tests.harness.store_checks import assert_untouched, tree_state

NEW, UNREAD, MARKED, DELETED, REPLIED, FORWARD = 1, 2, 4, 8, 16, 32
SPAM = 1 << 13
TAGS = {1: "work", 2: "unused", 3: "to do"}
T0 = datetime(2022, 2, 2, 9, 0, tzinfo=UTC)


def label(n: int) -> int:
    """The flag bits of colour label ``n`` as Claws stores them (MSG_COLORLABEL_TO_FLAGS)."""
    return ((n & 7) << 7) | ((n & 8) << 3)


def inbox() -> list[ClawsMessage]:
    at = [T0 + timedelta(hours=n) for n in range(8)]
    return [
        ClawsMessage(1, "new", at[0], NEW | UNREAD),
        ClawsMessage(2, "read", at[1], 0, tags=(1, 3)),
        ClawsMessage(3, "replied and marked", at[2], REPLIED | MARKED),
        ClawsMessage(5, "forwarded pink", at[3], FORWARD | label(3)),  # a gap in numbering
        ClawsMessage(6, "steel blue", at[4], UNREAD | label(12)),
        ClawsMessage(7, "spam", at[5], SPAM),
        ClawsMessage(8, "deleted", at[6], DELETED),
        ClawsMessage(9, "never shown", at[7], None),
    ]


EXPECTED = {
    "new": (frozenset(), False),
    "read": (frozenset({SEEN, "work", "to_do"}), False),  # tags "work" and "to do"
    "replied and marked": (frozenset({SEEN, ANSWERED, FLAGGED}), False),
    "forwarded pink": (frozenset({SEEN, FORWARDED, "Pink"}), False),
    "steel blue": (frozenset({"SteelBlue"}), False),
    "spam": (frozenset({SEEN, "$Junk"}), False),
    "deleted": (frozenset({SEEN}), True),  # read, then marked for deletion
    "never shown": (frozenset(), False),
}


def subject(data: bytes) -> str:
    return data.split(b"Subject: ")[1].split(b"\n")[0].decode().rstrip("\r")


def test_claws_marks_decide_the_flags(tmp_path: Path) -> None:
    root = write_mailbox(tmp_path / "Mail", {"inbox": inbox(), "work": []}, tag_names=TAGS)
    assert (root / "inbox" / ".mh_sequences").read_bytes() == b""
    before = tree_state(root)
    got = {subject(m.data): (m.flags, m.deleted) for m in MhReader(root).messages()}
    assert got == EXPECTED
    received = sorted(m.received for m in MhReader(root).messages())  # type: ignore[type-var]
    assert received == [T0 + timedelta(hours=n) for n in range(8)]
    assert_untouched(root, before)


def test_sylpheed_marks_have_seven_labels(tmp_path: Path) -> None:
    messages = [
        ClawsMessage(1, "sky", T0, label(4)),
        # Bit 6 is Claws' fourth label bit; Sylpheed has no such bit: label 5 stays 5.
        ClawsMessage(2, "blue", T0, label(5) | (1 << 6)),
    ]
    root = write_mailbox(tmp_path / "Mail", {"inbox": messages}, sylpheed=True)
    assert (root / "inbox" / ".sylpheed_mark").is_file()
    got = {subject(m.data): m.flags for m in MhReader(root).messages()}
    assert got == {"sky": {SEEN, "SkyBlue"}, "blue": {SEEN, "Blue"}}


def test_label_numbers_round_trip() -> None:
    for n in range(16):
        assert color_label(label(n), claws=True) == n
    assert len(LABEL_KEYWORDS) == 15


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "too short"),
        (struct.pack("<I", 3), "version 3"),
        (struct.pack("<III", 2, 1, 0) + b"\x01\x00", "ends inside a record"),
    ],
)
def test_odd_mark_files_are_reported(data: bytes, problem: str) -> None:
    marks, problems = parse_marks(data, True, Path("inbox/.claws_mark"))
    assert problem in problems[0].message
    if problem == "ends inside a record":
        assert marks is not None and marks[1].seen


def test_big_endian_mark_file(tmp_path: Path) -> None:
    marks, problems = parse_marks(struct.pack(">III", 2, 4, REPLIED), True, Path("x"))
    assert problems == [] and marks is not None
    assert marks[4].flags == {ANSWERED} and marks[4].seen


def test_claws_store_migrates_with_its_flags_and_labels(
    tmp_path: Path,
    dovecot: DovecotServer,
    imap_account: Account,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = write_mailbox(tmp_path / "Mail", {"inbox": inbox(), "work": inbox()[:2]}, tag_names=TAGS)
    profile, _ = write_profile(tmp_path, dovecot, imap_account, root, kind="mh")
    journal = tmp_path / "j.sqlite"
    for attempt in range(3):  # twice, then once more after the journal is lost
        if attempt == 2:
            journal.unlink()
        status = run(["migrate", "--profile", str(profile), "--journal", str(journal), "--json"])
        report = json.loads(capsys.readouterr().out)
        assert status == 0, report
        assert report["uploaded"] == (9 if attempt == 0 else 0)
        assert report["skipped_deleted"] == 1  # marked for deletion in Claws: not moved
    got = server_messages(dovecot, imap_account)
    by_subject = {subject(bytes(m[b"BODY[]"])): m for m in got["INBOX"]}  # type: ignore[arg-type]
    assert set(by_subject) == set(EXPECTED) - {"deleted"}
    files = {m.subject: m for m in inbox()}
    for name, m in by_subject.items():
        flags = {f.decode() for f in m[b"FLAGS"]}  # type: ignore[union-attr]
        assert flags - {"\\Recent"} == set(EXPECTED[name][0]), name
        assert m[b"BODY[]"] == crlf(files[name].data())
        assert m[b"INTERNALDATE"].astimezone(UTC) == files[name].received  # type: ignore[union-attr]
    assert len(got["work"]) == 2


def test_tags_without_tagsrc_keep_their_ids(tmp_path: Path) -> None:
    root = write_mailbox(tmp_path / "Mail", {"inbox": inbox()})  # no ~/.claws-mail/tagsrc
    got = {subject(m.data): m for m in MhReader(root).messages()}
    assert got["read"].flags == {SEEN, "ClawsTag1", "ClawsTag3"}
    assert any("no tagsrc" in p.message for p in got["read"].problems)
