"""Thunderbird profiles: Mork summaries, folders, flags, deletions, locks and discovery."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from advisor.errors import SourceLockedError, UsageError
from advisor.stores.base import ANSWERED, FLAGGED, FORWARDED, SEEN, ReaderOptions
from advisor.stores.thunderbird import (
    NOT_MAIL,
    SkippedEntry,
    ThunderbirdReader,
    find_thunderbird_profiles,
    folder_display_name,
    load_index,
    mail_roots,
    profile_lock,
    read_profiles_ini,
)
from advisor.stores.thunderbird.mork import MorkError, parse_mork, read_mork
from tests.harness.store_checks import assert_untouched, read_twice, tree_state, unprivileged
from tests.harness.thunderbird_gen import (
    PREFS,
    Expected,
    GenMessage,
    ProfileBuilder,
    Row,
    mboxrd,
    msf,
    offsets,
    stored_copy,
)

TB = Path(__file__).parent / "data" / "thunderbird"
MSGS = "ns:msg:db:row:scope:msgs:all"
INFO = "ns:msg:db:row:scope:dbfolderinfo:all"


def copy_corpus(tmp_path: Path, *names: str) -> Path:
    for name in names:
        shutil.copyfile(TB / name, tmp_path / name)
    return tmp_path


# -- Mork --------------------------------------------------------------------------------------


def test_mork_old_summary_row_id_is_the_offset() -> None:
    document = read_mork(TB / "bugmail-1.msf")
    (table,) = document.tables_of_kind("ns:msg:db:table:kind:msgs")
    assert list(table.rows) == [(MSGS, 0)]
    row = document.rows[(MSGS, 0)]
    assert row["flags"] == b"1" and row["keywords"] == b"$label4"
    assert row["subject"] == b"[Bug 397009] A filter will let me tag, but not untag"
    assert "storeToken" not in row and "msgOffset" not in row
    info = document.rows[(INFO, 1)]
    assert int(info["folderSize"], 16) == (TB / "bugmail-1").stat().st_size == 2679
    # The committed group cut the folder-info row and wrote it again with a sort order.
    assert info["sortType"] == b"12" and info["sortOrder"] == b"1"


def test_mork_store_tokens_and_escapes() -> None:
    document = read_mork(TB / "panorama-migration-crlf-mbox.msf")
    (table,) = document.tables_of_kind("ns:msg:db:table:kind:msgs")
    assert list(table.rows) == [(MSGS, 1), (MSGS, 3)]  # the deleted message has no row
    first, third = document.rows[(MSGS, 1)], document.rows[(MSGS, 3)]
    assert (first["storeToken"], third["storeToken"]) == (b"0", b"1143")
    assert first["keywords"] == b"$label5" and first["size"] == b"242"
    assert third["sender_name"] == '0|"Zoë Yundt" <zoe.yundt@invalid>'.encode()
    assert first["recipients"] == b"=?UTF-8?Q?Rene=CC=81e_Alsom?= <renee.alsom@invalid>"


def test_mork_hashed_folder_name_and_groups() -> None:
    document = read_mork(TB / "hashedFolder.msf")
    assert document.rows[(INFO, 1)]["folderName"].decode() == "test τ"
    (table,) = document.tables_of_kind("ns:msg:db:table:kind:msgs")
    assert table.rows == {}


def test_mork_group_adds_cells_to_an_existing_row() -> None:
    document = read_mork(TB / "love.msf")
    row = document.rows[(MSGS, 1)]
    assert row["gloda-id"] == b"c1"  # written by a later committed transaction
    assert row["storeToken"] == b"0" and row["subject"] == b"=?UTF-8?Q?=E2=9D=A4_from_homer?="


def test_mork_line_continuations_and_escaped_parentheses() -> None:
    document = read_mork(TB / "withjson.msf")
    info = document.rows[(INFO, 1)]
    states = json.loads(info["columnStates"])
    assert states["selectCol"] == {"visible": False, "ordinal": 0}
    assert len(states) == 27
    row = document.rows[(MSGS, 0x43)]
    assert row["ccList"].endswith(b'(MitteleuropXische Sommerzeit)"')


def test_mork_column_filter_keeps_only_what_is_asked() -> None:
    document = read_mork(TB / "panorama-migration-crlf-mbox.msf", ["flags", "storeToken"])
    assert document.rows[(MSGS, 3)] == {"flags": b"0", "storeToken": b"1143"}
    assert document.rows[(MSGS, 1)] == {"flags": b"1", "storeToken": b"0"}


def test_mork_transactions_and_cuts() -> None:
    data = msf(
        [Row(0, flags=1), Row(10, flags=2), Row(20, flags=3), Row(30, flags=4)],
        folder_size=40,
        committed_cuts=[2],
        aborted_cuts=[3],
        unfinished_cut=4,
    )
    extra = (
        b"@$${40{@\n[-3:^80(^81=9)]\n{1:^80 -[1] }\n@$$}40}@\n"  # row rewritten, row 1 cut
        b"@$${41{@\n[4:^80 -(^81=4)(^8A=new subject)]\n@$$}41}@\n"  # a cell removed
    )
    document = parse_mork(data.replace(b"@$${30{@", extra + b"@$${30{@"))
    (table,) = document.tables_of_kind("ns:msg:db:table:kind:msgs")
    assert list(table.rows) == [(MSGS, 3), (MSGS, 4)]
    assert document.rows[(MSGS, 3)] == {"flags": b"9"}
    assert "flags" not in document.rows[(MSGS, 4)]
    assert document.rows[(MSGS, 4)]["subject"] == b"new subject"


def test_mork_literal_names_comments_and_table_cut() -> None:
    data = (
        b'// <!-- <mdb:mork:z v="1.4"/> -->\n/* a C comment */\n'
        b"< <(a=c)> (80=ns:msg:db:row:scope:msgs:all)(81=ns:msg:db:table:kind:msgs)>\n"
        b"{1:^80 {(k^81:c)} [5(flags=a)(storeToken=$31$32)] 6 }\n"
        b"{-1:^80 {(k^81:c)} [7(flags=1)] }\n"
    )
    document = parse_mork(data)
    (table,) = document.tables_of_kind("ns:msg:db:table:kind:msgs")
    assert list(table.rows) == [(MSGS, 7)]
    assert document.rows[(MSGS, 5)] == {"flags": b"a", "storeToken": b"12"}


@pytest.mark.parametrize("data", [b"", b"From - Tue Jan 02 13:45:00 2024\n", b"\x00" * 100])
def test_not_mork(data: bytes) -> None:
    with pytest.raises(MorkError):
        parse_mork(data)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=20),
            st.sampled_from(
                [
                    b"<",
                    b">",
                    b"(",
                    b")",
                    b"[",
                    b"]",
                    b"{",
                    b"}",
                    b"^80",
                    b"=",
                    b"\\",
                    b"$",
                    b"@$${1{@",
                    b"@$$}1}@",
                    b"@$$}~~}@",
                    b"-",
                    b":",
                    b"(a=c)",
                    b"//",
                    b"/*",
                ]
            ),
        ),
        max_size=60,
    )
)
def test_mork_garbage_never_crashes(chunks: list[bytes]) -> None:
    data = b'// <!-- <mdb:mork:z v="1.4"/> -->\n' + b"".join(chunks)
    document = parse_mork(data)
    assert all(isinstance(v, bytes) for row in document.rows.values() for v in row.values())


# -- the corpus pairs ------------------------------------------------------------------------


def test_old_summary_flags_come_from_the_index(tmp_path: Path) -> None:
    root = copy_corpus(tmp_path, "bugmail-1", "bugmail-1.msf")
    assert ThunderbirdReader.detect(root / "bugmail-1")
    (message,) = read_twice(lambda: ThunderbirdReader(root / "bugmail-1"))
    raw = (TB / "bugmail-1").read_bytes()
    assert message.source_id == "bugmail-1:0" and message.folder == ("bugmail-1",)
    assert message.flags == {SEEN, "$label4"}
    assert not message.deleted and not message.problems
    # This old .msf records no dateReceived: the topmost Received:, not the From_ line
    # (Tue Oct 02 00:26:47 2007, when Thunderbird wrote the message).
    mdt = timezone(-timedelta(hours=6))
    assert message.received == datetime(2008, 5, 7, 15, 55, 21, tzinfo=mdt)
    assert b"X-Mozilla" not in message.data
    assert len(message.data) == len(raw) - 32 - 1 - 23 - 28 - 97


def test_index_is_the_authority_on_deletion(tmp_path: Path) -> None:
    root = copy_corpus(tmp_path, "panorama-migration-crlf-mbox", "panorama-migration-crlf-mbox.msf")
    reader = ThunderbirdReader(root / "panorama-migration-crlf-mbox")
    got = list(reader.messages())
    assert [m.source_id.rsplit(":", 1)[1] for m in got] == ["0", "587", "1143"]
    assert [m.deleted for m in got] == [False, True, False]
    assert [p.code for p in got[1].problems] == ["not-in-index"]
    assert got[0].flags == {SEEN, "$label5"} and got[2].flags == frozenset()
    assert got[0].received == datetime(2000, 7, 1, 23, 6, tzinfo=UTC)
    assert got[2].received == datetime(2022, 9, 13, 5, 40, tzinfo=UTC)
    assert [len(m.data) for m in got] == [0x242, 547, 0x177]
    assert reader.notes == []


def test_stale_index_falls_back_to_the_status_bits(tmp_path: Path) -> None:
    root = copy_corpus(tmp_path, "panorama-migration-crlf-mbox", "panorama-migration-crlf-mbox.msf")
    with open(root / "panorama-migration-crlf-mbox", "ab") as mbox:
        mbox.write(b"From \r\nSubject: new\r\nX-Mozilla-Status: 0008\r\n\r\nlate\r\n")
    reader = ThunderbirdReader(root / "panorama-migration-crlf-mbox")
    got = list(reader.messages())
    assert [m.deleted for m in got] == [False, False, False, True]
    assert got[0].flags == frozenset()  # without a usable index only the headers count
    assert len(reader.notes) == 1 and "out of date" in reader.notes[0]


def test_index_whose_offsets_do_not_fit_is_not_trusted(tmp_path: Path) -> None:
    account = tmp_path / "Local Folders"
    account.mkdir()
    data = mboxrd([msg(1), stored_copy(GenMessage(msg(2), status=0x0008)), msg(3)])
    (account / "Inbox").write_bytes(data)
    # Right size, but its offsets (from before a compaction, say) miss the messages.
    (account / "Inbox.msf").write_bytes(msf([Row(1), Row(offsets(data)[2] + 3)], len(data)))
    reader = ThunderbirdReader(account)
    got = list(reader.messages())
    assert [m.deleted for m in got] == [False, True, False]  # the bits decide instead
    assert "lists a message at byte 1, where none starts" in reader.notes[0]


def test_hashed_folder_name_comes_from_the_index(tmp_path: Path) -> None:
    account = tmp_path / "Local Folders"
    account.mkdir()
    shutil.copyfile(TB / "hashedFolder.msf", account / "1ad41a64.msf")
    (account / "1ad41a64").write_bytes(mboxrd([b"Subject: s\n\nbody\n"]))
    reader = ThunderbirdReader(account)
    assert [f.path for f in reader.folders()] == [("test τ",)]
    (message,) = reader.messages()
    assert message.folder == ("test τ",) and message.source_id == "1ad41a64:0"
    assert any("does not record the folder's size" in note for note in reader.notes)


@pytest.mark.parametrize(
    ("file_name", "index_name", "shown"),
    [
        ("Inbox", None, "Inbox"),
        ("1ad41a64", "test τ", "test τ"),
        ("I%2FO stuff", None, "I/O stuff"),
        ("caf%C3%A9", None, "café"),
        ("100%", None, "100%"),
        ("50%OFF", None, "50%OFF"),
        ("bad%FF", None, "bad%FF"),
    ],
)
def test_folder_display_names(file_name: str, index_name: str | None, shown: str) -> None:
    assert folder_display_name(file_name, index_name) == shown


# -- a generated profile -------------------------------------------------------------------

WHEN = datetime(2021, 6, 1, 12, 0, tzinfo=UTC)
ENVELOPE_DATE = datetime(2024, 1, 2, 13, 45)


def msg(n: int, eol: bytes = b"\n", extra: bytes = b"") -> bytes:
    return (
        b"From: sender%d@example.com" % n
        + eol
        + b"Subject: message %d" % n
        + eol
        + eol
        + b"body of %d" % n
        + eol
        + extra
    )


def build_profile(home: Path) -> tuple[Path, list[Expected]]:
    data_dir = home / ".thunderbird"
    profile = data_dir / "abcd1234.default-release"
    builder = ProfileBuilder(profile)
    exp = builder.expected
    (profile / "prefs.js").parent.mkdir(parents=True)
    (profile / "prefs.js").write_text(PREFS)
    (data_dir / "profiles.ini").write_text(
        "[Profile0]\nName=default-release\nIsRelative=1\nPath=abcd1234.default-release\n\n"
        "[Install4F96D1932A9F858E]\nDefault=abcd1234.default-release\nLocked=1\n\n"
        "[General]\nStartWithLastProfile=1\nVersion=2\n"
    )
    local = profile / "Mail" / "Local Folders"
    lf = "Local Folders"

    inbox = [
        GenMessage(
            msg(1),
            status=0x0001,
            row_flags=0x1001,
            row_keywords="$label1 Work",
            row_received=WHEN,
            keys="$label3",
        ),
        GenMessage(msg(2), status=0x0008, row=False),
        GenMessage(msg(3), status=0x0009),
        GenMessage(msg(4), status=0x0000, row=False),
        GenMessage(msg(5), status=0x0401),
        GenMessage(msg(6, b"\r\n", b"From the start\r\n>From quoted\r\n"), status=0x0002),
        GenMessage(msg(7), row_flags=0x0004),
    ]
    builder.folder(local, "Inbox", (lf, "Inbox"), inbox)
    exp += [
        Expected(
            (lf, "Inbox"), msg(1), frozenset({SEEN, FORWARDED, "$label1", "Work"}), received=WHEN
        ),
        Expected((lf, "Inbox"), msg(2), frozenset(), deleted=True),
        Expected((lf, "Inbox"), msg(3), frozenset({SEEN})),
        Expected(
            (lf, "Inbox"), msg(4), frozenset(), deleted=True, problems=frozenset({"not-in-index"})
        ),
        Expected(
            (lf, "Inbox"), msg(5), frozenset({SEEN}), partial=True, problems=frozenset({"partial"})
        ),
        Expected(
            (lf, "Inbox"),
            msg(6, b"\r\n", b"From the start\r\n>From quoted\r\n"),
            frozenset({ANSWERED}),
        ),
        Expected((lf, "Inbox"), msg(7), frozenset({FLAGGED})),
    ]
    builder.folder(local, "Trash", (lf, "Trash"), [GenMessage(msg(8), status=0x0001)])
    exp.append(Expected((lf, "Trash"), msg(8), frozenset({SEEN})))
    builder.folder(local, "Unsent Messages", (lf, "Unsent Messages"), [])
    builder.folder(local, "Archives", (lf, "Archives"), [])
    builder.folder(
        local / "Archives.sbd",
        "2019",
        (lf, "Archives", "2019"),
        [GenMessage(msg(9), status=0x0008), GenMessage(msg(10), status=0x1000)],
        index="none",
    )
    exp += [
        Expected((lf, "Archives", "2019"), msg(9), frozenset(), deleted=True),
        Expected((lf, "Archives", "2019"), msg(10), frozenset({FORWARDED})),
    ]
    builder.folder(local, "1ad41a64", (lf, "test τ"), [GenMessage(msg(11))], folder_name="test τ")
    exp.append(Expected((lf, "test τ"), msg(11), frozenset()))
    builder.folder(local, "I%2FO stuff", (lf, "I/O stuff"), [GenMessage(msg(12))], index="none")
    exp.append(Expected((lf, "I/O stuff"), msg(12), frozenset()))
    for name, content in (
        ("msgFilterRules.dat", b'version="9"\n'),
        ("filterlog.html", b"<html></html>"),
        ("nstmp", b"From - half a compaction\n"),
        ("notes.txt", b"not mail at all\n"),
    ):
        (local / name).write_bytes(content)
    (local / "Inbox.sbd.bak").mkdir()
    (local / "random-dir").mkdir()

    pop = profile / "Mail" / "pop.example.com"
    builder.folder(
        pop,
        "Inbox",
        ("pop.example.com", "Inbox"),
        [GenMessage(msg(13), status=0x0008), GenMessage(msg(14), status=0x0001, row=False)],
        index="stale",
    )
    (pop / "popstate.dat").write_bytes(b"# POP3 State File\n")
    exp += [
        Expected(("pop.example.com", "Inbox"), msg(13), frozenset(), deleted=True),
        Expected(("pop.example.com", "Inbox"), msg(14), frozenset({SEEN})),
    ]

    store = profile / "Mail" / "maildir.example.com" / "Inbox"
    for sub in ("cur", "new", "tmp"):
        (store / sub).mkdir(parents=True)
    (store / "cur" / "1.eml").write_bytes(stored_copy(GenMessage(msg(15), status=0x0001)))
    (store / "cur" / "2.eml").write_bytes(stored_copy(GenMessage(msg(16), status=0x0008)))
    (store / "tmp" / "3.eml").write_bytes(msg(17))
    (store.parent / "Inbox.msf").write_bytes(msf([Row("1.eml", flags=0x0005)]))
    for name in ("1.eml", "2.eml"):  # no date anywhere else: the file's time counts
        os.utime(store / "cur" / name, (WHEN.timestamp(), WHEN.timestamp() + 60))
    later = datetime(2021, 6, 1, 12, 1, tzinfo=UTC)
    exp += [
        Expected(
            ("maildir.example.com", "Inbox"), msg(15), frozenset({SEEN, FLAGGED}), received=later
        ),
        Expected(
            ("maildir.example.com", "Inbox"), msg(16), frozenset(), deleted=True, received=later
        ),
    ]

    feeds = profile / "Mail" / "Feeds"
    feeds.mkdir()
    (feeds / "feeds.json").write_text("[]")
    (feeds / "News").write_bytes(mboxrd([msg(18)]))
    imap = profile / "ImapMail" / "imap.example.com"
    imap.mkdir(parents=True)
    (imap / "INBOX").write_bytes(mboxrd([msg(19)]))
    (imap / "INBOX.msf").write_bytes(msf([Row(0)]))
    for item in exp:
        if item.received is None:
            item.received = ENVELOPE_DATE
    return profile, exp


def test_generated_profile_reads_back_exactly(tmp_path: Path) -> None:
    profile, expected = build_profile(tmp_path)
    before = tree_state(tmp_path)
    assert ThunderbirdReader.detect(profile)
    reader = ThunderbirdReader(profile)
    got = read_twice(lambda: ThunderbirdReader(profile))
    assert_untouched(tmp_path, before)
    folders = [f.path for f in reader.folders()]
    assert folders == [
        ("Local Folders", "test τ"),
        ("Local Folders", "Archives"),
        ("Local Folders", "Archives", "2019"),
        ("Local Folders", "I/O stuff"),
        ("Local Folders", "Inbox"),
        ("Local Folders", "Trash"),
        ("Local Folders", "Unsent Messages"),
        ("pop.example.com", "Inbox"),
        ("maildir.example.com", "Inbox"),
    ]
    actual = [
        Expected(
            m.folder,
            m.data,
            m.flags,
            m.deleted,
            m.partial,
            frozenset(p.code for p in m.problems),
            m.received,
        )
        for m in got
    ]
    # Folders come in file-name order, each folder's messages in file order.
    assert actual == sorted(expected, key=lambda e: folders.index(e.folder))
    inbox = offsets((profile / "Mail" / "Local Folders" / "Inbox").read_bytes())
    in_inbox = [m.source_id for m in got if m.folder == ("Local Folders", "Inbox")]
    assert in_inbox == [f"Mail/Local Folders/Inbox:{o}" for o in inbox]
    assert got[-2].source_id == "Mail/maildir.example.com/Inbox/cur/1.eml"
    list(reader.messages())
    assert any("pop.example.com/Inbox" in n and "out of date" in n for n in reader.notes)
    assert any(
        n.endswith("notes.txt: not a mail folder (no .msf, does not start like mail)")
        for n in reader.notes
    )


def test_account_and_mail_directories(tmp_path: Path) -> None:
    profile, expected = build_profile(tmp_path)
    mail = profile / "Mail"
    assert ThunderbirdReader.detect(mail) and ThunderbirdReader.detect(mail / "Local Folders")
    in_mail = {m.folder for m in ThunderbirdReader(mail).messages()}
    assert ("pop.example.com", "Inbox") in in_mail and ("Feeds", "News") not in in_mail
    local = list(ThunderbirdReader(mail / "Local Folders").messages())
    in_local = sorted(
        (e.folder[1:] for e in expected if e.folder[0] == "Local Folders"),
        key=lambda f: [m.folder for m in local].index(f),
    )
    assert [m.folder for m in local] == in_local
    assert local[0].source_id == "1ad41a64:0"


def test_mail_roots_follow_prefs(tmp_path: Path) -> None:
    profile, _ = build_profile(tmp_path)
    elsewhere = tmp_path / "disk" / "My Mail"
    elsewhere.mkdir(parents=True)
    with open(profile / "prefs.js", "a") as prefs:
        prefs.write(f'user_pref("mail.server.server9.directory", "{elsewhere}");\n')
        prefs.write('user_pref("mail.server.server9.type", "pop3");\n')
    roots = mail_roots(profile)
    assert [(r.name, r.server_type) for r in roots] == [
        ("My Mail", "pop3"),
        ("Local Folders", "none"),
        ("pop.example.com", "pop3"),
        ("maildir.example.com", "unknown"),
    ]


def test_not_a_thunderbird_store(tmp_path: Path) -> None:
    (tmp_path / "plain.mbox").write_bytes(mboxrd([msg(1)]))
    assert not ThunderbirdReader.detect(tmp_path / "plain.mbox")
    assert not ThunderbirdReader.detect(tmp_path)
    assert not ThunderbirdReader.detect(tmp_path / "missing")
    with pytest.raises(UsageError):
        list(ThunderbirdReader(tmp_path).folders())


def test_unreadable_index_is_a_note_not_an_error(tmp_path: Path) -> None:
    account = tmp_path / "Local Folders"
    account.mkdir()
    (account / "Inbox").write_bytes(mboxrd([stored_copy(GenMessage(msg(1), status=0x0008))]))
    (account / "Inbox.msf").write_bytes(b"garbage, not mork")
    reader = ThunderbirdReader(account)
    (message,) = reader.messages()
    assert message.deleted and message.data == msg(1)
    assert "cannot be read" in reader.notes[0]
    index = load_index(account / "Inbox.msf", 10)
    assert not index.usable and index.live == {}


# -- the lock ----------------------------------------------------------------------------------


def test_live_lock_link_refuses_unless_asked(tmp_path: Path) -> None:
    profile, _ = build_profile(tmp_path)
    os.symlink(f"127.0.1.1:+{os.getpid()}", profile / "lock")
    before = tree_state(tmp_path)
    state = profile_lock(profile)
    assert state.held and state.pid == os.getpid()
    with pytest.raises(SourceLockedError, match="--ignore-lock"):
        list(ThunderbirdReader(profile).messages())
    # Reading a folder inside the profile is refused too.
    with pytest.raises(SourceLockedError):
        list(ThunderbirdReader(profile / "Mail" / "Local Folders").messages())
    assert len(list(ThunderbirdReader(profile, ReaderOptions(ignore_lock=True)).messages())) == 16
    assert_untouched(tmp_path, before)


def test_stale_lock_link_is_ignored(tmp_path: Path) -> None:
    profile, _ = build_profile(tmp_path)
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        check=True,
        text=True,
    )
    os.symlink(f"127.0.1.1:+{int(child.stdout)}", profile / "lock")
    (profile / ".parentlock").write_bytes(b"")
    assert not profile_lock(profile).held
    assert len(list(ThunderbirdReader(profile).messages())) == 16


def test_parentlock_held_by_another_process(tmp_path: Path) -> None:
    profile, _ = build_profile(tmp_path)
    parentlock = profile / ".parentlock"
    parentlock.write_bytes(b"")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys\n"
            f"f = open({str(parentlock)!r}, 'r+b')\n"
            "fcntl.lockf(f, fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\n"
            "sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        before = tree_state(tmp_path)
        state = profile_lock(profile)
        assert state.held and state.pid == holder.pid and state.lock_file == parentlock
        with pytest.raises(SourceLockedError, match=f"process {holder.pid}"):
            list(ThunderbirdReader(profile).messages())
        assert_untouched(tmp_path, before)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)
        assert holder.stdout is not None
        holder.stdout.close()
    assert not profile_lock(profile).held


# -- discovery -----------------------------------------------------------------------------------


def make_profile(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "prefs.js").write_text("// prefs\n")
    return path


def test_linux_snap_and_flatpak_profiles(tmp_path: Path) -> None:
    home = tmp_path / "home"
    plain = home / ".thunderbird"
    make_profile(plain / "aaaa.default")
    make_profile(plain / "bbbb.work")
    outside = make_profile(tmp_path / "disk" / "cccc.archive")
    (plain / "profiles.ini").write_text(
        "\ufeff[General]\nStartWithLastProfile=1\n\n"
        "[Profile0]\nName=default\nIsRelative=1\nPath=aaaa.default\nDefault=1\n\n"
        "[Profile1]\nName=work\nIsRelative=1\nPath=bbbb.work\n\n"
        f"[Profile2]\nName=archive\nIsRelative=0\nPath={outside}\n\n"
        "[Profile3]\nName=gone\nIsRelative=1\nPath=dddd.gone\n\n"
        "[Install1234]\nDefault=bbbb.work\nLocked=1\n"
    )
    snap = home / "snap/thunderbird/common/.thunderbird"
    make_profile(snap / "eeee.default")
    (snap / "profiles.ini").write_text(
        "[Profile0]\nName=snappy\nIsRelative=1\nPath=eeee.default\nDefault=1\n"
    )
    flatpak = home / ".var/app/org.mozilla.Thunderbird/.thunderbird"
    make_profile(flatpak / "ffff.default")
    (flatpak / "profiles.ini").write_text("[Profile0]\nName=flat\nPath=ffff.default\n")
    found = find_thunderbird_profiles(home=home, platform="linux")
    assert [(p.name, p.variant, p.is_default, p.exists) for p in found] == [
        ("default", "linux", False, True),
        ("work", "linux", True, True),  # the install's default wins over Default=1
        ("archive", "linux", False, True),
        ("gone", "linux", False, False),
        ("snappy", "snap", True, True),
        ("flat", "flatpak", False, True),
    ]
    assert found[2].path == outside and found[0].path == plain / "aaaa.default"


def test_macos_and_windows_profiles(tmp_path: Path) -> None:
    mac_home = tmp_path / "mac"
    mac = mac_home / "Library" / "Thunderbird"
    make_profile(mac / "Profiles" / "x1.default-release")
    (mac / "profiles.ini").write_text(
        "[Profile0]\nName=default-release\nIsRelative=1\nPath=Profiles/x1.default-release\nDefault=1\n"
    )
    (found,) = find_thunderbird_profiles(home=mac_home, platform="darwin")
    assert found.variant == "macos" and found.path == mac / "Profiles" / "x1.default-release"
    assert find_thunderbird_profiles(home=mac_home, platform="linux") == []

    win_home = tmp_path / "win"
    win = win_home / "AppData" / "Roaming" / "Thunderbird"
    make_profile(win / "Profiles" / "y2.default")
    (win / "profiles.ini").write_text(
        "[Profile0]\r\nName=default\r\nIsRelative=1\r\nPath=Profiles\\y2.default\r\n\r\n"
        "[Install308046B0AF4A39CB]\r\nDefault=Profiles/y2.default\r\n"
    )
    (found,) = find_thunderbird_profiles(home=win_home, platform="win32")
    assert found.variant == "windows" and found.is_default
    assert found.path == win / "Profiles" / "y2.default"


def test_broken_profiles_ini_falls_back_to_a_scan(tmp_path: Path) -> None:
    data_dir = tmp_path / ".thunderbird"
    make_profile(data_dir / "zzzz.default")
    (data_dir / "profiles.ini").write_bytes(b"[Profile0\nthis is = not\x00 ini [[[")
    (found,) = read_profiles_ini(data_dir)
    assert found.path == data_dir / "zzzz.default"
    assert find_thunderbird_profiles(home=tmp_path / "nobody", platform="linux") == []


def test_data_directory_reads_its_default_profile(tmp_path: Path) -> None:
    profile, expected = build_profile(tmp_path)
    data_dir = profile.parent
    assert ThunderbirdReader.detect(data_dir)
    got = list(ThunderbirdReader(data_dir).messages())
    assert len(got) == len(expected) and got[0].source_id.startswith("Mail/Local Folders/")
    make_profile(data_dir / "second")
    (data_dir / "profiles.ini").write_text(
        "[Profile0]\nName=one\nPath=abcd1234.default-release\n\n[Profile1]\nName=two\nPath=second\n"
    )
    assert ThunderbirdReader.detect(data_dir)
    with pytest.raises(UsageError, match=r"several Thunderbird profiles.*one .*two "):
        list(ThunderbirdReader(data_dir).messages())


def test_awkward_folder_names(tmp_path: Path) -> None:
    account = tmp_path / "Local Folders"
    names = ["Inbox", "inbox", "Ärger & Co.", "📧 post", "a.b", "Sent.sbd"]
    for name in names[:-1]:
        account.mkdir(exist_ok=True)
        (account / name).write_bytes(mboxrd([msg(len(name))]))
        (account / (name + ".msf")).write_bytes(msf([], folder_size=0))
    (account / "Sent.sbd").mkdir()
    (account / "Sent.sbd" / "2020").write_bytes(mboxrd([msg(1)]))
    shutil.copyfile(TB / "readme.txt", account / "readme.txt")
    reader = ThunderbirdReader(account)
    assert [f.path for f in reader.folders()] == [
        ("Inbox",),
        ("a.b",),
        ("inbox",),
        ("Ärger & Co.",),
        ("📧 post",),
        ("Sent",),
        ("Sent", "2020"),
    ]
    got = list(reader.messages())
    assert len(got) == 6 and all(not m.deleted for m in got[:5])  # size 0 in the index: stale
    assert reader.skipped == [SkippedEntry(account / "readme.txt", NOT_MAIL)]


def test_unreadable_folder_is_reported() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        account = Path(tmp) / "Local Folders"
        account.mkdir()
        for path in (Path(tmp), account):
            path.chmod(0o755)
        (account / "Inbox").write_bytes(mboxrd([msg(1)]))
        (account / "Inbox.msf").write_bytes(msf([Row(0)], folder_size=1))
        (account / "Inbox").chmod(0o000)
        (account / "Inbox.msf").chmod(0o644)
        with unprivileged():
            (message,) = ThunderbirdReader(account).messages()
    assert not message.readable and message.folder == ("Inbox",)
    assert message.source_id == "Inbox:0"


# -- nothing is skipped without a word ------------------------------------------------------


def test_subfolders_of_an_empty_parent_without_index_are_read(tmp_path: Path) -> None:
    """Thunderbird creates a parent folder as an empty file; without its .msf (a profile
    copied without summaries, a rebuilt index) its Name.sbd children must still be read."""
    from tests.harness.scan_builders import TbMessage, message, utc, write_thunderbird_profile

    inbox = TbMessage(message("in the inbox", utc(2024, 1, 2)), utc(2024, 1, 2))
    old = TbMessage(message("archived", utc(2019, 3, 4)), utc(2019, 3, 4))
    deep = TbMessage(message("deeper", utc(2018, 5, 6)), utc(2018, 5, 6))
    tb = write_thunderbird_profile(
        tmp_path,
        {("Inbox",): [inbox], ("Archives", "2019"): [old], ("Archives", "2018", "Q2"): [deep]},
        index=False,
    )
    reader = ThunderbirdReader(tb.profile)
    got = {m.folder: m.data for m in reader.messages()}
    assert got == {
        ("Local Folders", "Inbox"): inbox.data,
        ("Local Folders", "Archives", "2019"): old.data,
        ("Local Folders", "Archives", "2018", "Q2"): deep.data,
    }
    assert [f.path for f in reader.folders()] == [
        ("Local Folders", "Archives"),
        ("Local Folders", "Archives", "2018"),
        ("Local Folders", "Archives", "2018", "Q2"),
        ("Local Folders", "Archives", "2019"),
        ("Local Folders", "Inbox"),
    ]
    assert reader.notes == [] and reader.skipped == []


def test_every_entry_not_read_is_reported_with_its_reason() -> None:
    """The walk's audit: an entry is read as a folder, is Thunderbird's own bookkeeping,
    or is named in ``notes``/``skipped`` with why; mail behind it is never dropped."""
    with tempfile.TemporaryDirectory() as tmp:
        account = Path(tmp) / "Local Folders"
        account.mkdir()
        Path(tmp).chmod(0o755)
        account.chmod(0o755)
        (account / "Inbox").write_bytes(mboxrd([msg(1)]))
        size = len(mboxrd([msg(1)]))  # bookkeeping, read with its folder: no note
        (account / "Inbox.msf").write_bytes(msf([Row(0)], folder_size=size))
        (account / "popstate.dat").write_bytes(b"# POP3 State File\n")
        # A parent that is neither empty nor mail-like, without .msf: still a folder,
        # because it has sub-folders; its content is reported, not dropped.
        (account / "Odd").write_bytes(b"\x00garbage without a From line\n")
        (account / "Odd.sbd").mkdir()
        (account / "Odd.sbd" / "Child").write_bytes(mboxrd([msg(2)]))
        # A sub-folder directory whose parent is a directory Thunderbird did not make.
        (account / "Stray").mkdir()
        (account / "Stray.sbd").mkdir()
        (account / "Stray.sbd" / "Kept").write_bytes(mboxrd([msg(3)]))
        # A sub-folder directory nobody may list.
        (account / "Locked.sbd").mkdir()
        (account / "Locked.sbd" / "Hidden").write_bytes(mboxrd([msg(4)]))
        (account / "Locked.sbd").chmod(0o000)
        # A maildir-store folder nobody may enter: it may hold mail, so it is unreadable.
        for sub in ("cur", "new", "tmp"):
            (account / "Sealed" / sub).mkdir(parents=True)
        (account / "Sealed").chmod(0o000)
        skipped_entries = {
            "nstmp": b"From - a compaction in progress\n",
            ".hidden": b"From - something\n",
            "Inbox.bak": b"From - an old copy\n",
            "notes.txt": b"not mail\n",
        }
        for name, content in skipped_entries.items():
            (account / name).write_bytes(content)
        (account / "random-dir").mkdir()
        (account / "dangling").symlink_to(account / "nowhere")
        os.mkfifo(account / "a-pipe")
        with unprivileged():
            reader = ThunderbirdReader(account)
            got = list(reader.messages())
        (account / "Locked.sbd").chmod(0o755)
        (account / "Sealed").chmod(0o755)
    by_folder = {m.folder: m for m in got}
    assert by_folder[("Inbox",)].data == msg(1)
    assert by_folder[("Odd", "Child")].data == msg(2)
    assert by_folder[("Stray", "Kept")].data == msg(3)
    odd = by_folder[("Odd",)]
    assert odd.data == b"\x00garbage without a From line\n"
    assert {p.code for p in odd.problems} == {"no-separator"}
    locked = by_folder[("Locked",)]
    assert not locked.readable and "cannot be listed" in locked.problems[0].message
    sealed = by_folder[("Sealed",)]
    assert not sealed.readable and "cannot be examined" in sealed.problems[0].message
    assert len(got) == 6
    reasons = {entry.path.name: entry.reason for entry in reader.skipped}
    assert set(reasons) == {*skipped_entries, "random-dir", "dangling", "a-pipe", "Stray"}
    assert "compaction" in reasons["nstmp"] and "hidden" in reasons[".hidden"]
    assert "backup" in reasons["Inbox.bak"] and reasons["notes.txt"] == NOT_MAIL
    assert "not a regular file" in reasons["a-pipe"] and "not a folder" in reasons["Stray"]
    assert sorted(reader.notes) == sorted(f"{e.path}: {e.reason}" for e in reader.skipped)


def test_a_single_folder_names_the_sub_folders_it_leaves_out(tmp_path: Path) -> None:
    data = mboxrd([msg(1)])
    (tmp_path / "Archives").write_bytes(data)
    (tmp_path / "Archives.msf").write_bytes(msf([Row(0)], folder_size=len(data)))
    (tmp_path / "Archives.sbd").mkdir()
    (tmp_path / "Archives.sbd" / "2019").write_bytes(mboxrd([msg(2)]))
    reader = ThunderbirdReader(tmp_path / "Archives")
    assert [m.data for m in reader.messages()] == [msg(1)]
    (note,) = reader.notes
    assert note.startswith(str(tmp_path / "Archives.sbd")) and "sub-folders" in note
