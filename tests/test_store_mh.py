"""MhReader on generated MH trees (nmh layout with .mh_sequences)."""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from advisor.stores.base import ANSWERED, FLAGGED, SEEN
from advisor.stores.mh import MhReader, Sequence, parse_sequences
from tests.harness.store_checks import assert_untouched, read_twice, tree_state

WHEN = datetime(2020, 5, 17, 9, 30, tzinfo=UTC)


def message(n: int, folder: str, *, crlf: bool = False) -> bytes:
    text = (
        f"Received: from mx by mail.example.org; Sun, 17 May 2020 0{n % 10}:30:00 +0000\n"
        f"From: a@example.org\nSubject: {folder} #{n}\nDate: Sat, 16 May 2020 12:00:00 +0200\n"
        f"\nBody {n}\n"
    ).encode()
    return text.replace(b"\n", b"\r\n") if crlf else text


def build_tree(root: Path) -> dict[tuple[tuple[str, ...], int], tuple[bytes, set[str]]]:
    """An nmh tree: inbox with gaps and sequences, nested folders; returns what was written."""
    rng = random.Random(5)
    expected: dict[tuple[tuple[str, ...], int], tuple[bytes, set[str]]] = {}
    layout = {
        ("inbox",): ([1, 2, 3, 5, 8, 9, 10, 11, 12, 40], "unseen: 1-3 8 10-12\nreplied: 5 9\n"
                     "flagged: 40\ncur: 12\n"),
        ("work",): ([1, 2], "replied: 1-2\n"),  # no unseen sequence: all seen
        ("work", "2019"): ([7], None),  # no .mh_sequences at all: all seen
        ("lists", "python"): ([], "unseen:\n"),  # an empty folder is still a folder
    }  # fmt: skip
    for folder, (numbers, sequences) in layout.items():
        directory = root.joinpath(*folder)
        directory.mkdir(parents=True, exist_ok=True)
        if sequences is not None:
            (directory / ".mh_sequences").write_text(sequences)
        seqs, _ = parse_sequences(sequences or "")
        for n in numbers:
            data = message(n, "/".join(folder), crlf=rng.random() < 0.3)
            (directory / str(n)).write_bytes(data)
            flags = set()
            if "unseen" not in seqs or n not in seqs["unseen"]:
                flags.add(SEEN)
            if "replied" in seqs and n in seqs["replied"]:
                flags.add(ANSWERED)
            if "flagged" in seqs and n in seqs["flagged"]:
                flags.add(FLAGGED)
            expected[folder, n] = (data, flags)
    # Not messages: MUA bookkeeping, editor leftovers, an xmh cache.
    for junk in ("inbox/.xmhcache", "inbox/12~", "inbox/notes.txt", "inbox/.claws_mark"):
        (root / junk).write_bytes(b"junk\n")
    return expected


def test_generated_tree_byte_for_byte(tmp_path: Path) -> None:
    expected = build_tree(tmp_path)
    before = tree_state(tmp_path)
    messages = read_twice(lambda: MhReader(tmp_path))
    assert_untouched(tmp_path, before)
    got = {(m.folder, int(m.source_id.rsplit("/", 1)[1])): (m.data, m.flags) for m in messages}
    assert got == expected
    # Numeric order within a folder (8 before 10, 10 before 40), folders depth first.
    assert [m.source_id for m in messages][:10] == [
        f"inbox/{n}" for n in (1, 2, 3, 5, 8, 9, 10, 11, 12, 40)
    ]
    assert [f.path for f in MhReader(tmp_path).folders()] == [
        ("inbox",), ("lists",), ("lists", "python"), ("work",), ("work", "2019"),
    ]  # fmt: skip
    inbox_5 = next(m for m in messages if m.source_id == "inbox/5")
    assert inbox_5.received == datetime(2020, 5, 17, 5, 30, tzinfo=UTC)


def test_messages_in_the_root_are_the_inbox(tmp_path: Path) -> None:
    (tmp_path / "1").write_bytes(message(1, "root"))
    (tmp_path / ".mh_sequences").write_text("unseen: 1\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "3").write_bytes(message(3, "sub"))
    got = {m.source_id: (m.folder, m.flags) for m in MhReader(tmp_path).messages()}
    assert got == {"/1": (("INBOX",), frozenset()), "sub/3": (("sub",), {SEEN})}


def test_removed_messages_are_reported_deleted(tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "1").write_bytes(message(1, "inbox"))
    (tmp_path / "inbox" / ",1").write_bytes(message(101, "inbox"))  # rmm'd, then 1 reused
    (tmp_path / "inbox" / "#2").write_bytes(message(2, "inbox"))
    got = {m.source_id: m.deleted for m in read_twice(lambda: MhReader(tmp_path))}
    assert got == {"inbox/1": False, "inbox/,1": True, "inbox/#2": True}


def test_sequence_ranges() -> None:
    seqs, problems = parse_sequences(
        "unseen: 1-5 8 10-12\nReplied: 3\n  7\nflagged: 2-x 9\nbroken line\n"
    )
    assert [n for n in range(15) if n in seqs["unseen"]] == [1, 2, 3, 4, 5, 8, 10, 11, 12]
    assert [n for n in range(15) if n in seqs["replied"]] == [3, 7]  # continuation line
    assert [n for n in range(15) if n in seqs["flagged"]] == [9]
    assert [p.code for p in problems] == ["bad-flags", "bad-flags"]
    big = Sequence([(1, 10**9)])
    assert 10**9 in big and 0 not in big and 10**9 + 1 not in big


def test_bad_sequences_file_is_reported_on_the_folder_messages(tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "1").write_bytes(message(1, "inbox"))
    (tmp_path / "inbox" / ".mh_sequences").write_text("unseen: one\n")
    (m,) = MhReader(tmp_path).messages()
    assert m.flags == {SEEN}
    assert [p.code for p in m.problems] == ["bad-flags"]


def test_dates_fall_back_to_date_then_mtime(tmp_path: Path) -> None:
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "1").write_bytes(b"Date: Sat, 16 May 2020 12:00:00 +0200\n\nx\n")
    (tmp_path / "f" / "2").write_bytes(b"Subject: no date\n\nx\n")
    (tmp_path / "f" / "3").write_bytes(b"Date: 31 Feb 1850 99:99\n\nabsurd\n")
    for n in (2, 3):
        os.utime(tmp_path / "f" / str(n), (1400000000, 1400000000))
    got = {m.source_id: m for m in MhReader(tmp_path).messages()}
    assert got["f/1"].received == datetime.fromisoformat("2020-05-16T12:00:00+02:00")
    for n in (2, 3):
        assert got[f"f/{n}"].received == datetime.fromtimestamp(1400000000, UTC)
        assert [p.code for p in got[f"f/{n}"].problems] == ["bad-date"]


def test_empty_and_broken_files_are_reported(tmp_path: Path) -> None:
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "1").write_bytes(b"")
    (tmp_path / "f" / "2").symlink_to(tmp_path / "nowhere")
    (tmp_path / "f" / "3").write_bytes(message(3, "f"))
    got = {m.source_id: m for m in MhReader(tmp_path).messages()}
    assert not got["f/1"].readable and not got["f/2"].readable and got["f/3"].readable


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({".mh_sequences": b""}, True),
        ({"1": b"x", "2": b"y"}, True),
        ({"inbox/1": b"x"}, True),  # an MH root: folders below
        ({"a.eml": b"x", "1": b"y"}, False),
        ({"notes.txt": b"x"}, False),
        ({"cur/1": b"x", "new/2": b"x"}, False),  # a Maildir
    ],
)
def test_detect(tmp_path: Path, files: dict[str, bytes], expected: bool) -> None:
    for rel, data in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    assert MhReader.detect(tmp_path) is expected
