"""The registry, detection, ``scan_store`` and ``mailadvisor scan``, with the real readers.

Stores are built in tmp_path by tests/harness/scan_builders.py (what a client would write) or
come from /work/shared/corpora; expectations are computed from what was generated.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

import advisor.stores
import advisor.stores.scan as scan_module
from advisor.cli import run
from advisor.cli.scan_cmd import _DelayedProgress
from advisor.errors import UsageError
from advisor.exitcodes import ExitStatus
from advisor.profile import SourceKind
from advisor.stores import (
    DETECTION_ORDER,
    READERS,
    ReaderUnavailable,
    _ReaderRegistry,
    candidate_kinds,
    detect_kind,
    open_store,
    other_kinds,
)
from advisor.stores.scan import FolderScan, ScanProgress, ScanTarget, scan_store
from tests.harness.scan_builders import (
    CORPORA,
    MaildirMessage,
    TbMessage,
    copy_pst,
    emlx_bytes,
    make_maildir,
    message,
    snapshot,
    utc,
    write_apple_mail,
    write_eml_tree,
    write_maildir,
    write_mbox,
    write_mh,
    write_thunderbird_profile,
)

# --- detection -------------------------------------------------------------------------


def _mbox_file(tmp: Path) -> Path:
    return write_mbox(tmp / "inbox", [(utc(2021, 1, 1), message("a", utc(2021, 1, 1)))])


def _mbox_dir(tmp: Path) -> Path:
    write_mbox(tmp / "mail" / "saved", [(utc(2021, 1, 1), message("a", utc(2021, 1, 1)))])
    write_mbox(tmp / "mail" / "sent", [(utc(2021, 1, 2), message("b", utc(2021, 1, 2)))])
    return tmp / "mail"


def _maildir(tmp: Path) -> Path:
    return write_maildir(
        tmp / "Maildir", [MaildirMessage((), message("a", utc(2021, 1, 1)), utc(2021, 1, 1))]
    )


def _kmail_dir(tmp: Path) -> Path:
    root = tmp / "local-mail"
    for name in ("inbox", "sent-mail"):
        make_maildir(root / name)
    (root / "inbox" / "cur" / "1609502400.R1.host:2,S").write_bytes(message("a", utc(2021, 1, 1)))
    return root


def _mh(tmp: Path) -> Path:
    return write_mh(
        tmp / "inbox",
        {1: message("a", utc(2021, 1, 1)), 3: message("b", utc(2021, 1, 2))},
        "unseen: 3\n",
    )


def _eml_file(tmp: Path) -> Path:
    return write_eml_tree(tmp, {"saved.eml": message("a", utc(2021, 1, 1))}) / "saved.eml"


def _eml_tree(tmp: Path) -> Path:
    return write_eml_tree(
        tmp / "wlm",
        {
            "Inbox/a.eml": message("a", utc(2021, 1, 1)),
            "Sent Items/b.eml": message("b", utc(2021, 1, 2)),
        },
    )


def _eml_with_from_line(tmp: Path) -> Path:
    """A saved message that starts with a From_ line: an mbox reader would take it too."""
    path = tmp / "saved.eml"
    path.write_bytes(
        b"From alice@example.org Fri Jan  1 12:00:00 2021\n" + message("a", utc(2021, 1, 1))
    )
    return path


def _emlx_file(tmp: Path) -> Path:
    path = tmp / "1.emlx"
    path.write_bytes(emlx_bytes(message("a", utc(2021, 1, 1)), received=utc(2021, 1, 1)))
    return path


def _apple_mail(tmp: Path) -> Path:
    """One account of an Apple Mail V10 tree (discovery gives one store per account)."""
    root = write_apple_mail(tmp, 10, {"INBOX": [message("a", utc(2021, 1, 1))]})
    return next(p for p in root.iterdir() if p.name != "MailData")


def _pst(tmp: Path) -> Path:
    return copy_pst(tmp / "Outlook.pst")


def _corpus(rel: str) -> Callable[[Path], Path]:
    return lambda tmp: CORPORA / rel


DETECTED: list[tuple[str, Callable[[Path], Path], SourceKind]] = [
    ("mbox file", _mbox_file, SourceKind.MBOX),
    ("folder of mbox files", _mbox_dir, SourceKind.MBOX),
    ("Maildir++", _maildir, SourceKind.MAILDIR),
    ("folder of Maildirs (KMail)", _kmail_dir, SourceKind.MAILDIR),
    ("MH folder", _mh, SourceKind.MH),
    (".eml file", _eml_file, SourceKind.EML),
    (".eml file starting with From_", _eml_with_from_line, SourceKind.EML),
    (".eml tree", _eml_tree, SourceKind.EML),
    (".emlx file", _emlx_file, SourceKind.EMLX),
    ("Apple Mail V10 account", _apple_mail, SourceKind.EMLX),
    ("PST", _pst, SourceKind.PST),
    ("corpus mbox_unquoted", _corpus("thunderbird/mbox_unquoted"), SourceKind.MBOX),
    (
        "corpus mbox with .msf",
        _corpus("thunderbird/panorama-migration-crlf-mbox"),
        SourceKind.THUNDERBIRD,
    ),
    ("corpus Maildir++", _corpus("maildir/mail-parser-maildir"), SourceKind.MAILDIR),
    ("corpus malformed .eml", _corpus("broken/dovecot-malformed"), SourceKind.EML),
    ("corpus .emlx", _corpus("emlx/mikez-plaintext.emlx"), SourceKind.EMLX),
    ("corpus Apple Messages", _corpus("emlx/partial-emlx-converter/Messages"), SourceKind.EMLX),
    ("corpus passworded PST", _corpus("pst/java-libpst-passworded.pst"), SourceKind.PST),
]


@pytest.mark.parametrize(("build", "kind"), [d[1:] for d in DETECTED], ids=[d[0] for d in DETECTED])
def test_detect_kind(tmp_path: Path, build: Callable[[Path], Path], kind: SourceKind) -> None:
    path = build(tmp_path)
    assert detect_kind(path) is kind
    reader = open_store(SourceKind.AUTO, path)
    assert reader.kind == kind.value and reader.path == path
    assert isinstance(open_store(kind, path), READERS[kind])


def test_a_file_that_is_eml_and_mbox_is_read_as_one_eml(tmp_path: Path) -> None:
    path = _eml_with_from_line(tmp_path)
    assert candidate_kinds(path) == [SourceKind.EML, SourceKind.MBOX]
    # Both readers would give the same single message: nothing is left unread.
    assert other_kinds(path, SourceKind.EML) == [SourceKind.MBOX]


def test_a_folder_with_two_kinds_of_store_names_the_other(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _mbox_dir(tmp_path)
    make_maildir(root / "maildir-folder")
    (root / "maildir-folder" / "new" / "1609502400.R1.host").write_bytes(
        message("c", utc(2021, 1, 1))
    )
    assert candidate_kinds(root) == [SourceKind.MAILDIR, SourceKind.MBOX]
    assert detect_kind(root) is SourceKind.MAILDIR
    assert other_kinds(root, SourceKind.MAILDIR) == [SourceKind.MBOX]

    assert run(["scan", str(root)]) == ExitStatus.OK
    out = capsys.readouterr().out
    assert "also here: an mbox file" in out and "--kind mbox" in out
    assert run(["scan", "--json", str(root)]) == ExitStatus.OK
    store = json.loads(capsys.readouterr().out)["stores"][0]
    assert store["kind"] == "maildir" and store["also"] == ["mbox"]
    assert store["scan"]["totals"]["messages"] == 1
    # --kind reads the other half.
    assert run(["scan", "--json", "--kind", "mbox", str(root)]) == ExitStatus.OK
    store = json.loads(capsys.readouterr().out)["stores"][0]
    assert store["kind"] == "mbox" and store["scan"]["totals"]["messages"] == 2


def test_detection_order_is_every_path_kind_once() -> None:
    assert sorted(DETECTION_ORDER) == sorted(
        k for k in SourceKind if k not in (SourceKind.AUTO, SourceKind.POP3)
    )
    assert set(READERS) == {k for k in SourceKind if k is not SourceKind.AUTO}


def test_not_a_store_is_a_clear_usage_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("shopping list\n")
    with pytest.raises(UsageError, match="not a mail store mailadvisor recognises") as exc:
        detect_kind(tmp_path)
    assert "--kind" in str(exc.value) and "several stores" in str(exc.value)
    with pytest.raises(UsageError, match="no such file or directory"):
        detect_kind(tmp_path / "missing")


def test_open_store_refuses_a_path_of_another_kind(tmp_path: Path) -> None:
    maildir = _maildir(tmp_path)
    with pytest.raises(UsageError) as exc:
        open_store(SourceKind.MBOX, maildir)
    assert str(exc.value) == (
        f"{maildir}: does not look like an mbox file; it looks like a Maildir (cur/ new/ tmp/) "
        "(--kind maildir)"
    )
    with pytest.raises(
        UsageError, match=r"\.pst file; it looks like an mbox file \(--kind mbox\)$"
    ):
        open_store(SourceKind.PST, _mbox_file(tmp_path))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match=r"does not look like an Outlook \.pst file$"):
        open_store(SourceKind.PST, tmp_path / "empty")
    with pytest.raises(UsageError, match="no such file or directory"):
        open_store(SourceKind.MAILDIR, tmp_path / "nowhere")
    with pytest.raises(UsageError, match="POP3 account has no path"):
        open_store(SourceKind.POP3, tmp_path)


def test_explicit_mbox_kind_reads_a_file_without_a_leading_from_line(tmp_path: Path) -> None:
    bugmail = CORPORA / "thunderbird" / "bugmail1"  # one message, no From_ line at all
    with pytest.raises(UsageError, match="not a mail store"):
        detect_kind(bugmail)
    result = scan_store(open_store(SourceKind.MBOX, bugmail))
    assert result.totals.messages == 1
    # ...but not a directory, which no mbox reader could take for a file.
    (tmp_path / "notes.txt").write_text("no mail\n")
    with pytest.raises(UsageError, match="does not look like an mbox file"):
        open_store(SourceKind.MBOX, tmp_path)


def test_registry_imports_lazily_and_isolates_a_missing_dependency(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real reader module whose optional dependency is not installed.
    (tmp_path / "needs_missing_dep.py").write_text(
        "import mailadvisor_test_missing_dependency  # noqa: F401\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = _ReaderRegistry(
        {
            SourceKind.PST: ("needs_missing_dep", "PstReader"),
            SourceKind.MBOX: ("advisor.stores.mbox", "MboxReader"),
        }
    )
    assert SourceKind.PST in registry and list(registry) == [SourceKind.PST, SourceKind.MBOX]
    assert "needs_missing_dep" not in sys.modules  # membership and iteration import nothing
    with pytest.raises(ReaderUnavailable) as exc:
        registry[SourceKind.PST]
    assert "mailadvisor_test_missing_dependency" in str(exc.value)
    assert exc.value.exit_status == ExitStatus.USAGE

    monkeypatch.setattr(advisor.stores, "READERS", registry)
    monkeypatch.setattr(advisor.stores, "DETECTION_ORDER", (SourceKind.PST, SourceKind.MBOX))
    assert detect_kind(_mbox_file(tmp_path)) is SourceKind.MBOX  # the others still work
    (tmp_path / "plain.txt").write_text("hello\n")
    with pytest.raises(UsageError, match="Not checked: the pst reader cannot be loaded"):
        detect_kind(tmp_path / "plain.txt")
    with pytest.raises(ReaderUnavailable):
        open_store(SourceKind.PST, tmp_path / "plain.txt")


# --- scan_store ------------------------------------------------------------------------


def _node(root: FolderScan, *path: str) -> FolderScan:
    for node in root.walk():
        if node.path == path:
            return node
    raise AssertionError(f"no folder {path}: {[n.path for n in root.walk()]}")


def _maildir_store(tmp: Path) -> tuple[Path, list[MaildirMessage]]:
    msgs = [
        MaildirMessage((), message("hello", utc(2023, 1, 2)), utc(2023, 1, 2), "S"),
        MaildirMessage((), message("gone", utc(2023, 3, 4), "x" * 5000), utc(2023, 3, 4), "ST"),
        MaildirMessage((), message("fresh", utc(2023, 2, 1)), utc(2023, 2, 1), new=True),
        MaildirMessage(("Archive",), message("old", utc(2020, 5, 6)), utc(2020, 5, 6), "RS"),
        MaildirMessage(("Archive", "2019"), message("summer", utc(2019, 7, 8)), utc(2019, 7, 8)),
        MaildirMessage(
            ("Archive", "2019"),
            message("winter", utc(2019, 12, 31, 23)),
            utc(2019, 12, 31, 23),
            "FS",
        ),
    ]
    root = write_maildir(tmp / "Maildir", msgs)
    make_maildir(root / ".Empty")
    # A zero-byte file: counted, reported unreadable, never dropped.
    empty_file = root / ".Archive.2019" / "cur" / "1560000000.M99P99.testhost:2,S"
    empty_file.write_bytes(b"")
    os.utime(empty_file, (1560000000, 1560000000))  # its delivery time, like the others
    return root, msgs


def test_scan_maildir_counts_sizes_dates_and_deleted(tmp_path: Path) -> None:
    root, msgs = _maildir_store(tmp_path)
    result = scan_store(open_store(SourceKind.AUTO, root))

    def size(folder: tuple[str, ...]) -> int:
        return sum(len(m.data) for m in msgs if m.folder == folder)

    inbox = _node(result.root, "INBOX")
    assert (inbox.messages, inbox.bytes, inbox.deleted) == (3, size(()), 1)
    assert (inbox.first_received, inbox.last_received) == (utc(2023, 1, 2), utc(2023, 3, 4))
    archive = _node(result.root, "Archive")
    assert (archive.messages, archive.bytes, archive.deleted) == (1, size(("Archive",)), 0)
    y2019 = _node(result.root, "Archive", "2019")
    assert (y2019.messages, y2019.bytes, y2019.unreadable) == (3, size(("Archive", "2019")), 1)
    assert y2019.first_received == datetime_from(1560000000)
    assert y2019.last_received == utc(2019, 12, 31, 23)
    assert y2019.problems == {"unreadable": 1}
    assert y2019 in archive.children  # a tree, not a list
    empty = _node(result.root, "Empty")
    assert (empty.messages, empty.bytes, empty.first_received, empty.listed) == (0, 0, None, True)

    t = result.totals
    assert (t.messages, t.bytes, t.deleted, t.partial, t.unreadable, t.undated) == (
        7,
        sum(len(m.data) for m in msgs),
        1,
        0,
        1,
        0,
    )
    assert (t.first_received, t.last_received) == (datetime_from(1560000000), utc(2023, 3, 4))
    assert result.folders == 4 and result.kind == "maildir" and result.path == root
    assert [(p.folder, p.code) for p in result.problem_examples] == [
        (("Archive", "2019"), "unreadable")
    ]
    assert any("file names" in n for n in result.metadata_notes)  # what survives, from the reader


def datetime_from(stamp: int) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(stamp, UTC)


def test_scan_mbox_tree_with_naive_and_aware_dates(tmp_path: Path) -> None:
    """mbox folders nest through .sbd; envelope dates without a zone still order correctly
    against zoned ones, and the range is what was written."""
    root = tmp_path / "mail"
    write_mbox(
        root / "Inbox",
        [
            (utc(2022, 6, 1), message("a", utc(2022, 6, 1))),
            (utc(2022, 1, 1), message("b", utc(2022, 1, 1))),
        ],
    )
    write_mbox(root / "Projects.sbd" / "Alpha", [(utc(2018, 3, 3), message("c", utc(2018, 3, 3)))])
    write_mbox(root / "Projects", [])
    result = scan_store(open_store(SourceKind.AUTO, root))
    inbox = _node(result.root, "Inbox")
    assert inbox.messages == 2
    assert inbox.first_received is not None and inbox.last_received is not None
    assert inbox.first_received.date().isoformat() == "2022-01-01"
    assert inbox.last_received.date().isoformat() == "2022-06-01"
    alpha = _node(result.root, "Projects", "Alpha")
    assert alpha.messages == 1
    assert result.totals.first_received == alpha.first_received
    assert result.totals.last_received == inbox.last_received


def test_scan_progress_reports_bytes_of_single_file_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _mbox_dir(tmp_path)
    monkeypatch.setattr(scan_module, "PROGRESS_INTERVAL", 0.0)
    events: list[ScanProgress] = []
    result = scan_store(open_store(SourceKind.MBOX, root), events.append)
    file_bytes = sum(p.stat().st_size for p in root.iterdir())
    assert [e.messages for e in events] == [1, 2, 2]
    assert all(e.bytes_total == file_bytes and e.folders_total == 2 for e in events)
    assert events[-1].done and events[-1].folders_done == 2
    assert events[-1].bytes == result.totals.bytes
    # A Maildir's folders are directories: no byte total, progress counts folders.
    events.clear()
    scan_store(open_store(SourceKind.MAILDIR, _maildir(tmp_path)), events.append)
    assert events[-1].bytes_total is None and events[-1].done


def test_scan_does_not_hold_messages(tmp_path: Path) -> None:
    """Memory does not grow with the store: doubling an mbox from 12 to 23 MB (of 100 kB
    messages) leaves the scan's peak Python memory where it was, give or take a message."""
    body = ("0123456789abcdef" * 4 + "\n") * 1500  # ~100 kB per message

    def peak_for(count: int) -> int:
        path = write_mbox(
            tmp_path / f"mbox{count}",
            [(utc(2020, 1, 1), message(f"m{i}", utc(2020, 1, 1), body)) for i in range(count)],
        )
        assert path.stat().st_size > count * 97_000
        tracemalloc.start()
        try:
            result = scan_store(open_store(SourceKind.MBOX, path))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert result.totals.messages == count
        return peak

    small, large = peak_for(120), peak_for(240)
    assert large < small + 3_000_000, f"peak {small} -> {large} bytes"


def test_scan_emlx_and_eml_problems_are_counted_not_dropped() -> None:
    result = scan_store(open_store(SourceKind.AUTO, CORPORA / "emlx"))
    assert result.totals.messages == 12
    assert result.totals.partial == 1
    # Every problem the reader reported is counted, and (below the cap) listed with its place.
    assert sum(result.totals.problems.values()) == len(result.problem_examples) >= 5
    assert {"truncated", "bad-emlx"} <= set(result.totals.problems)
    assert all(p.folder == ("INBOX",) and p.source_id for p in result.problem_examples)
    broken = scan_store(open_store(SourceKind.EML, CORPORA / "broken" / "dovecot-malformed"))
    assert broken.totals.messages == 23  # every file, however malformed


# --- Thunderbird ----------------------------------------------------------------------------


def _thunderbird(tmp: Path) -> Any:
    return write_thunderbird_profile(
        tmp / ".thunderbird",
        {
            ("Inbox",): [
                TbMessage(message("hello", utc(2022, 1, 5)), utc(2022, 1, 5)),
                TbMessage(
                    message("deleted", utc(2022, 2, 5), "x" * 999 + "\n"), utc(2022, 2, 5), 0x0009
                ),
                TbMessage(message("headers only", utc(2022, 3, 5)), utc(2022, 3, 5), 0x0401),
            ],
            ("Archives", "2019"): [TbMessage(message("old", utc(2019, 1, 5)), utc(2019, 1, 5))],
        },
    )


def test_detect_thunderbird_at_every_level(tmp_path: Path) -> None:
    tb = _thunderbird(tmp_path)
    for path in (tb.profile, tb.profile / "Mail", tb.local_folders, tb.local_folders / "Inbox"):
        assert detect_kind(path) is SourceKind.THUNDERBIRD, path
    # Local Folders are mbox files (and "2019" looks like an MH message number), but the
    # Thunderbird reader reads all of it: nothing else to point out.
    assert SourceKind.MBOX in candidate_kinds(tb.local_folders)
    assert other_kinds(tb.local_folders, SourceKind.THUNDERBIRD) == []


def test_detect_thunderbird_without_summaries(tmp_path: Path) -> None:
    """A profile copied without its .msf files is still Thunderbird at every level, and a
    folder named "2019" in Archives.sbd does not make Local Folders an MH folder."""
    tb = write_thunderbird_profile(
        tmp_path / ".thunderbird",
        {
            ("Inbox",): [TbMessage(message("hello", utc(2022, 1, 5)), utc(2022, 1, 5))],
            ("Archives", "2019"): [TbMessage(message("old", utc(2019, 1, 5)), utc(2019, 1, 5))],
        },
        index=False,
    )
    assert not list(tb.local_folders.glob("*.msf"))
    archives = tb.local_folders / "Archives.sbd"
    for path in (tb.profile, tb.profile / "Mail", tb.local_folders, archives):
        assert detect_kind(path) is SourceKind.THUNDERBIRD, path
        assert SourceKind.MH not in candidate_kinds(path), path
    assert other_kinds(tb.local_folders, SourceKind.THUNDERBIRD) == []
    result = scan_store(open_store(SourceKind.AUTO, tb.profile / "Mail"))
    assert result.totals.messages == 2
    assert _node(result.root, "Local Folders", "Archives", "2019").messages == 1
    # Without X-Mozilla headers, a Name + Name.sbd pair is Thunderbird's mark on its own.
    plain = tmp_path / "plain"
    write_mbox(plain / "Inbox", [(utc(2020, 1, 1), message("a", utc(2020, 1, 1)))])
    write_mbox(plain / "Inbox.sbd" / "2020", [(utc(2020, 1, 2), message("b", utc(2020, 1, 2)))])
    assert detect_kind(plain) is SourceKind.THUNDERBIRD
    assert SourceKind.MH not in candidate_kinds(plain)
    assert SourceKind.MH not in candidate_kinds(plain / "Inbox.sbd")


def test_mh_refuses_mbox_folder_trees_but_keeps_real_mh(tmp_path: Path) -> None:
    mh = tmp_path / "Mail"
    mh.mkdir()
    (mh / "1").write_bytes(message("mh message", utc(2021, 1, 1)))
    (mh / "2").write_bytes(message("another", utc(2021, 1, 2)))
    assert detect_kind(mh) is SourceKind.MH
    (mh / "work.sbd").mkdir()  # a folder tree nesting the Thunderbird way is not MH
    assert SourceKind.MH not in candidate_kinds(mh)
    numbered = tmp_path / "numbered"
    write_mbox(numbered / "2019", [(utc(2019, 1, 1), message("a", utc(2019, 1, 1)))])
    assert SourceKind.MH not in candidate_kinds(numbered)  # an mbox file named 2019
    assert detect_kind(numbered) is SourceKind.MBOX


def test_scan_thunderbird_profile(tmp_path: Path) -> None:
    tb = _thunderbird(tmp_path)
    result = scan_store(open_store(SourceKind.AUTO, tb.profile))
    inbox = _node(result.root, "Local Folders", "Inbox")
    sent = tb.folders[("Inbox",)]
    # Sizes are the messages without the From_ line and X-Mozilla headers.
    assert (inbox.messages, inbox.bytes) == (3, sum(len(m.data) for m in sent))
    assert (inbox.deleted, inbox.partial, inbox.unreadable) == (1, 1, 0)
    assert (inbox.first_received, inbox.last_received) == (utc(2022, 1, 5), utc(2022, 3, 5))
    assert inbox.problems == {"partial": 1}
    y2019 = _node(result.root, "Local Folders", "Archives", "2019")
    assert (y2019.messages, y2019.first_received) == (1, utc(2019, 1, 5))
    archives = _node(result.root, "Local Folders", "Archives")
    assert (archives.messages, archives.listed) == (0, True)
    assert not _node(result.root, "Local Folders").listed  # the account, not a folder
    t = result.totals
    assert (t.messages, t.deleted, t.partial) == (4, 1, 1)
    assert (t.first_received, t.last_received) == (utc(2019, 1, 5), utc(2022, 3, 5))
    assert result.folders == 3  # Inbox, Archives, Archives/2019; not the account


def _lock(profile: Path) -> None:
    """Thunderbird's Linux lock: a symlink to IP:+PID of a live process (this one)."""
    (profile / "lock").symlink_to(f"127.0.0.1:+{os.getpid()}")


def test_locked_profile_is_refused_unless_ignore_lock(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tb = _thunderbird(tmp_path)
    _lock(tb.profile)
    assert run(["scan", str(tb.profile)]) == ExitStatus.USAGE
    captured = capsys.readouterr()
    assert "Thunderbird is using this profile" in captured.err and "--ignore-lock" in captured.err
    assert captured.out == "" and "Traceback" not in captured.err
    assert run(["scan", "--json", "--ignore-lock", str(tb.profile)]) == ExitStatus.OK
    report = json.loads(capsys.readouterr().out)
    assert report["stores"][0]["scan"]["totals"]["messages"] == 4


# --- the command ----------------------------------------------------------------------------


def _folders(tree: dict[str, Any]) -> dict[tuple[str, ...], dict[str, Any]]:
    out = {tuple(tree["path"]): tree}
    for child in tree["children"]:
        out.update(_folders(child))
    return out


def test_scan_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, msgs = _maildir_store(tmp_path)
    assert run(["scan", str(root), "--json"]) == ExitStatus.OK
    captured = capsys.readouterr()
    assert captured.err == ""
    report = json.loads(captured.out)
    (store,) = report["stores"]
    assert (store["kind"], store["path"], store["error"], store["also"]) == (
        "maildir",
        str(root),
        None,
        [],
    )
    scan = store["scan"]
    folders = _folders(scan["root"])
    assert folders[("INBOX",)]["messages"] == 3 and folders[("INBOX",)]["deleted"] == 1
    assert folders[("INBOX",)]["first_received"] == "2023-01-02T12:00:00+00:00"
    assert folders[("INBOX",)]["last_received"] == "2023-03-04T12:00:00+00:00"
    assert folders[("Archive", "2019")]["unreadable"] == 1
    assert folders[("Empty",)]["messages"] == 0
    assert scan["totals"]["messages"] == 7
    assert scan["totals"]["bytes"] == sum(len(m.data) for m in msgs)
    assert scan["problem_examples"][0]["code"] == "unreadable"


def test_scan_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = _maildir_store(tmp_path)
    assert run(["scan", str(root)]) == ExitStatus.OK
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f"{root}: a Maildir (cur/ new/ tmp/)"
    header = next(line for line in lines if line.startswith("folder"))
    assert header.split() == ["folder", "messages", "size", "received", "deleted", "unreadable"]
    inbox = next(line for line in lines if line.startswith("INBOX"))
    assert inbox.split()[:2] == ["INBOX", "3"] and "2023-01-02 - 2023-03-04" in inbox
    assert any(line.startswith("  2019 ") for line in lines)  # indented under Archive
    assert "7 messages in 4 folders" in out
    assert "1 deleted (they stay deleted" in out and "1 unreadable" in out
    assert "zero-byte file" in out


def test_scan_nonexistent_path_is_exit_2_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-store"
    assert run(["scan", str(missing)]) == ExitStatus.USAGE
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == f"error: {missing}: no such file or directory"
    assert run(["scan", "--kind", "pst", str(_maildir(tmp_path))]) == ExitStatus.USAGE
    assert "does not look like an Outlook .pst file" in capsys.readouterr().err
    assert run(["scan", "--kind", "pop3"]) == ExitStatus.USAGE
    assert run(["scan", "--kind", "nonsense", str(tmp_path)]) == ExitStatus.USAGE
    assert "Traceback" not in capsys.readouterr().err


def test_problems_are_all_counted_and_examples_capped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_maildir(tmp_path / "Maildir")
    extra = scan_module.MAX_PROBLEM_EXAMPLES + 5
    for i in range(extra):
        (root / "cur" / f"{1600000000 + i}.M{i}P1.host:2,S").write_bytes(b"")
    result = scan_store(open_store(SourceKind.MAILDIR, root))
    assert result.totals.unreadable == result.totals.problems["unreadable"] == extra
    assert len(result.problem_examples) == scan_module.MAX_PROBLEM_EXAMPLES
    assert run(["scan", str(root)]) == ExitStatus.OK
    out = capsys.readouterr().out
    assert f"... and {extra - 10} more (--json lists up to 100)" in out
    assert out.count("zero-byte file") == 10


def test_scan_help_teaches(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["scan", "--help"]) == ExitStatus.OK
    out = " ".join(capsys.readouterr().out.split())
    for words in ("Without PATH", "Thunderbird", "--ignore-lock", "--kind", "Exit status"):
        assert words in out
    assert run(["--help"]) == ExitStatus.OK
    assert "scan" in capsys.readouterr().out


def test_progress_bar_only_on_a_terminal_and_after_a_moment(tmp_path: Path) -> None:
    reader_path = _mbox_dir(tmp_path)
    target = ScanTarget(SourceKind.MBOX, reader_path)
    quiet = Console(file=io.StringIO(), force_terminal=False)
    assert _DelayedProgress(quiet, delay=0).callback(target) is None

    slow = Console(file=io.StringIO(), force_terminal=True)
    with _DelayedProgress(slow, delay=3600) as bar:
        scan_store(open_store(SourceKind.MBOX, reader_path), bar.callback(target))
        assert bar.progress is None  # a quick scan shows no bar at all
    assert slow.file.getvalue() == ""  # type: ignore[attr-defined]


def test_progress_bar_spins_while_a_reader_is_silent(tmp_path: Path) -> None:
    first = ScanTarget(SourceKind.MBOX, _mbox_dir(tmp_path))
    second = ScanTarget(SourceKind.MAILDIR, _maildir(tmp_path))
    buffer = io.StringIO()
    terminal = Console(file=buffer, force_terminal=True, width=100)
    with _DelayedProgress(terminal, delay=0) as bar:
        callback = bar.callback(first)
        assert callback is not None
        deadline = time.monotonic() + 10
        while not bar.tasks and time.monotonic() < deadline:
            time.sleep(0.01)  # the timer shows the bar before any message is read
        assert bar.progress is not None
        (task,) = bar.progress.tasks
        assert task.total is None and task.description == first.path.name  # a spinner
        scan_store(open_store(SourceKind.MBOX, first.path), callback)
        task = bar.progress.tasks[0]
        assert task.total == sum(p.stat().st_size for p in first.path.iterdir())
        assert task.completed == task.total and task.fields["messages"] == 2
        # The next store gets its own line, counted in folders (a Maildir has no file size).
        scan_store(open_store(SourceKind.MAILDIR, second.path), bar.callback(second))
        task = bar.progress.tasks[1]
        assert (task.total, task.completed, task.fields["messages"]) == (1, 1, 1)
    assert bar.progress is None and "messages" in buffer.getvalue()


# --- sources are never written ---------------------------------------------------------------


def _every_kind(root: Path) -> list[Path]:
    return [
        _thunderbird(root / "tb").profile,
        _mbox_file(root / "m1"),
        _mbox_dir(root / "m2"),
        _maildir_store(root / "md")[0],
        _mh(root / "mh"),
        _eml_tree(root / "eml"),
        _apple_mail(root / "apple"),
        _pst(root / "pst"),
    ]


@pytest.mark.slow  # three fresh `mailadvisor` processes: about 4 s
def test_scan_never_writes_to_the_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "source"
    stores = _every_kind(source)
    _lock(stores[0])  # a running Thunderbird: refused, and then read anyway
    before = snapshot(source)
    for store in stores:
        assert run(["scan", "--ignore-lock", str(store)]) == ExitStatus.OK
        assert run(["scan", "--ignore-lock", "--json", str(store)]) == ExitStatus.OK
    assert run(["scan", str(stores[0])]) == ExitStatus.USAGE
    capsys.readouterr()
    # The installed command, as a user runs it, in a fresh interpreter that may write bytecode.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    # Thunderbird, Maildir, and the PST (readpst writes: into a temporary directory).
    for store in (stores[0], stores[3], stores[-1]):
        done = subprocess.run(
            ["mailadvisor", "scan", "--ignore-lock", "--json", str(store)],
            capture_output=True,
            text=True,
            env=env,
            cwd=store if store.is_dir() else store.parent,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        (scanned,) = json.loads(done.stdout)["stores"]
        assert scanned["error"] is None and scanned["scan"]["kind"] == scanned["kind"]
    after = snapshot(source)
    assert after.keys() == before.keys(), "files were created or removed in the source"
    changed = [p for p in before if before[p] != after[p]]
    assert changed == []


# --- a profile's source, a live POP3 account included ------------------------------------


def test_scan_profile_of_a_live_pop3_account(
    tmp_path: Path,
    dovecot: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``scan --profile`` downloads (never deletes) the account the profile's [source]
    names and counts it like any store; a refused login is exit 3, without the password."""
    from tests.harness.mailgen import crlf, generate
    from tests.harness.migrate_helpers import connect, server_messages, write_profile

    msgs = list(generate(6, [("INBOX",)], seed=5, sizes="small"))
    old = dovecot.add_user()
    with connect(dovecot, old) as client:
        for m in msgs:
            client.append("INBOX", crlf(m.data))
    profile, env = write_profile(tmp_path, dovecot, old, tmp_path)
    url = f"pop3s://{old.username}@{dovecot.info.hostname}:{dovecot.info.pop3s_port}"
    text = profile.read_text().replace('kind = "maildir"', 'kind = "pop3"')
    profile.write_text(text.replace(f'path = "{tmp_path}"', f'path = "{url}"'))
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    assert run(["scan", "--profile", str(profile), "--json"]) == ExitStatus.OK
    (store,) = json.loads(capsys.readouterr().out)["stores"]
    assert (store["kind"], store["source"]) == ("pop3", url)
    totals = store["scan"]["totals"]
    assert totals["messages"] == len(msgs)
    assert totals["bytes"] == sum(len(crlf(m.data)) for m in msgs)
    assert totals["first_received"] == min(m.date for m in msgs).isoformat()
    assert [c["path"] for c in store["scan"]["root"]["children"]] == [["INBOX"]]
    assert len(server_messages(dovecot, old)["INBOX"]) == len(msgs)  # nothing deleted

    assert run(["scan", "--profile", str(profile)]) == ExitStatus.OK
    out = capsys.readouterr().out
    assert url in out and f"{len(msgs)} messages in 1 folder" in out

    for name in env:
        monkeypatch.setenv(name, "wrong-1")
    assert run(["scan", "--profile", str(profile)]) == ExitStatus.AUTH_FAILED
    err = capsys.readouterr().err
    assert "refused the login" in err and old.password not in err


def test_scan_profile_of_a_store_on_disk(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, msgs = _maildir_store(tmp_path)
    profile = tmp_path / "p.toml"
    profile.write_text(
        'version = 1\n[account]\nemail = "a@example.org"\n[auth]\npassword_env = "NOPE"\n'
        f'[source]\nkind = "auto"\npath = "{root}"\n'
    )
    assert run(["scan", "--profile", str(profile), "--json"]) == ExitStatus.OK
    (store,) = json.loads(capsys.readouterr().out)["stores"]
    assert (store["kind"], store["source"]) == ("maildir", str(root))
    assert store["scan"]["totals"]["messages"] == len(msgs) + 1  # and the zero-byte file
    assert run(["scan", str(root), "--profile", str(profile)]) == ExitStatus.USAGE
    assert "not both" in capsys.readouterr().err


# --- folders that cannot be listed --------------------------------------------------------


def test_a_folder_that_cannot_be_listed_is_counted_by_every_reader() -> None:
    """A sub-folder nobody may open may hold mail: each reader reports it as unreadable
    (and the scan counts it) instead of passing it over in silence."""
    from advisor.stores.eml import EmlReader
    from advisor.stores.emlx import EmlxReader
    from advisor.stores.maildir import MaildirReader
    from advisor.stores.mh import MhReader
    from tests.harness.store_checks import unprivileged

    body = message("hidden", utc(2021, 5, 6))
    with tempfile.TemporaryDirectory() as tmp:  # not pytest's 0700 tmp_path: "nobody" reads
        root = Path(tmp)
        root.chmod(0o755)
        mh = root / "mh"
        (mh / "sub").mkdir(parents=True)
        for folder in (mh, mh / "sub"):
            (folder / "1").write_bytes(body)
        eml = root / "eml"
        (eml / "sub").mkdir(parents=True)
        for folder in (eml, eml / "sub"):
            (folder / "a.eml").write_bytes(body)
        maildir = write_maildir(
            root / "maildir",
            [MaildirMessage(folder, body, utc(2021, 5, 6), "S") for folder in ((), ("Sub",))],
        )
        apple = root / "Mail" / "V10"
        for box in ("INBOX.mbox", "Sub.mbox"):
            (apple / box / "Messages").mkdir(parents=True)
            (apple / box / "Messages" / "1.emlx").write_bytes(emlx_bytes(body))
        closed = [mh / "sub", eml / "sub", maildir / ".Sub", apple / "Sub.mbox" / "Messages"]
        for path in closed:
            path.chmod(0)
        try:
            with unprivileged():
                results = {
                    kind: scan_store(reader(path))
                    for kind, reader, path in (
                        ("mh", MhReader, mh),
                        ("eml", EmlReader, eml),
                        ("maildir", MaildirReader, maildir),
                        ("emlx", EmlxReader, root / "Mail"),
                    )
                }
        finally:
            for path in closed:
                path.chmod(0o755)
    for kind, result in results.items():
        assert (result.totals.messages, result.totals.unreadable) == (2, 1), kind
        (example,) = [e for e in result.problem_examples if e.code == "unreadable"]
        assert "cannot be listed" in example.message, (kind, example)
        assert example.folder[-1].lower() == "sub", (kind, example)
