"""PstReader through the real readpst on public PST samples."""

from __future__ import annotations

import email
import os
import shutil
import subprocess
from datetime import UTC, datetime
from email.policy import compat32
from pathlib import Path

import pytest

from advisor.errors import UsageError
from advisor.stores import pst
from advisor.stores.base import SEEN, ReaderOptions
from advisor.stores.pst import PstReader, strip_read_status
from tests.harness.store_checks import assert_untouched, read_twice, tree_state

DATA = Path(__file__).parent / "data" / "pst"
BODY_TYPES = DATA / "tika-testPST_variousBodyTypes.pst"  # 4 mails in Inbox/tmp
DIST_LIST = DATA / "java-libpst-dist-list.pst"  # a contact and a distribution list, no mail
PASSWORDED = DATA / "java-libpst-passworded.pst"  # PST password set; contacts only


def reader(path: Path, tmp: Path) -> PstReader:
    return PstReader(path, ReaderOptions(extra={"tmp_dir": str(tmp)}))


def test_mail_folders_and_messages(tmp_path: Path) -> None:
    before = tree_state(DATA)
    messages = read_twice(lambda: reader(BODY_TYPES, tmp_path))
    assert_untouched(DATA, before)
    assert list(tmp_path.iterdir()) == []  # the temporary copy is gone
    assert [m.source_id for m in messages] == [
        f"Outlook Data File/Inbox/tmp/{n}" for n in (1, 2, 3, 4)
    ]
    assert {m.folder for m in messages} == {("Inbox", "tmp")}
    assert [f.path for f in reader(BODY_TYPES, tmp_path).folders()] == [("Inbox", "tmp")]
    subjects = [email.message_from_bytes(m.data, policy=compat32)["Subject"] for m in messages]
    assert subjects == ["original email"] + ["FW: original email"] * 3
    # All four are read in the PST; readpst's Status line is gone from the message.
    assert all(m.flags == {SEEN} and b"\nStatus: RO\n" not in m.data for m in messages)
    # Received dates from the topmost Received: header (19:26:04), not Date: (19:26:03).
    assert messages[0].received == datetime(2017, 8, 30, 19, 26, 4, tzinfo=UTC)
    assert all(m.problems == () and not m.deleted and not m.partial for m in messages)


def test_bytes_are_readpsts_output_minus_its_status_line(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(
        ["readpst", "-q", "-D", "-j", "0", "-te", "-e", "-o", str(out), str(BODY_TYPES)],
        check=True,
        capture_output=True,
    )
    files = sorted((out / "Outlook Data File" / "Inbox" / "tmp").glob("*.eml"))
    expected = [f.read_bytes().replace(b"\nStatus: RO\n", b"\n", 1) for f in files]
    work = tmp_path / "work"
    work.mkdir()
    assert [m.data for m in reader(BODY_TYPES, work).messages()] == expected


@pytest.mark.parametrize("pst", [DIST_LIST, PASSWORDED])
def test_files_without_mail_yield_nothing(tmp_path: Path, pst: Path) -> None:
    # The passworded file reads like any other: a PST password is not encryption.
    assert PstReader.detect(pst)
    assert list(reader(pst, tmp_path).messages()) == []
    assert list(reader(pst, tmp_path).folders()) == []  # contacts/calendar are not mail
    assert list(tmp_path.iterdir()) == []


def test_temporary_copy_is_removed_when_the_caller_stops_early(tmp_path: Path) -> None:
    messages = reader(BODY_TYPES, tmp_path).messages()
    next(messages)
    assert len(list(tmp_path.iterdir())) == 1  # readpst's output, while we read
    messages.close()
    assert list(tmp_path.iterdir()) == []


def test_corrupt_file_is_a_clear_error_and_leaves_nothing(tmp_path: Path) -> None:
    broken = tmp_path / "broken.pst"
    broken.write_bytes(BODY_TYPES.read_bytes()[:4096])  # the header, then nothing
    work = tmp_path / "work"
    work.mkdir()
    assert PstReader.detect(broken)
    with pytest.raises(UsageError, match=r"readpst cannot read .*broken\.pst"):
        list(reader(broken, work).messages())
    assert list(work.iterdir()) == []


def test_missing_readers_name_the_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH without readpst...
    monkeypatch.setattr(pst, "libpff_available", lambda: False)  # ... and no libpff
    with pytest.raises(UsageError, match="apt-get install pst-utils") as excinfo:
        list(PstReader(BODY_TYPES).messages())
    assert "pip install libpff-python" in str(excinfo.value)


def test_strip_read_status() -> None:
    assert strip_read_status(b"Subject: a\nStatus: RO\nX: 1\n\nStatus: RO\n") == (
        b"Subject: a\nX: 1\n\nStatus: RO\n",
        True,
    )
    # Only the last one in the header is readpst's; an unread message has none.
    assert strip_read_status(b"Status: RO\nA: b\nStatus: RO\n\nbody\n") == (
        b"Status: RO\nA: b\n\nbody\n",
        True,
    )
    assert strip_read_status(b"Subject: a\n\nStatus: RO\n") == (
        b"Subject: a\n\nStatus: RO\n",
        False,
    )


def test_detect_and_notes(tmp_path: Path) -> None:
    assert PstReader.detect(BODY_TYPES)
    fake = tmp_path / "fake.pst"
    fake.write_bytes(b"not a pst")
    assert not PstReader.detect(fake) and not PstReader.detect(tmp_path)
    notes = " ".join(PstReader.metadata_notes)
    for fact in ("not MIME", "Read/unread", "replied", "Received:", "password"):
        assert fact in notes
    assert shutil.which("readpst"), "pst-utils must be installed (scripts/test installs it)"


def test_a_scan_runs_readpst_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """folders() keeps its extraction for messages(); close() removes an unread one."""
    from advisor.stores.scan import scan_store

    real = shutil.which("readpst")
    assert real is not None
    shims = tmp_path / "bin"
    shims.mkdir()
    log = tmp_path / "runs.log"
    shim = shims / "readpst"  # the real readpst, counting its runs
    shim.write_text(f'#!/bin/sh\necho run >> "{log}"\nexec "{real}" "$@"\n')
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{shims}:{os.environ['PATH']}")
    work = tmp_path / "work"
    work.mkdir()

    result = scan_store(reader(BODY_TYPES, work))
    assert result.totals.messages == 4
    assert log.read_text().count("run") == 1
    assert list(work.iterdir()) == []

    listed = reader(BODY_TYPES, work)
    assert [f.path for f in listed.folders()] == [("Inbox", "tmp")]
    assert len(list(work.iterdir())) == 1  # kept for messages()
    listed.close()
    assert list(work.iterdir()) == []
    assert len(list(listed.messages())) == 4  # reading after close extracts again
    assert log.read_text().count("run") == 3 and list(work.iterdir()) == []
