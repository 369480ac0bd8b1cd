"""MaildirReader on the shared Maildir++ corpus and on generated stores."""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from advisor.stores.base import ANSWERED, DRAFT, FLAGGED, FORWARDED, SEEN
from advisor.stores.maildir import MaildirReader, split_name
from advisor.stores.mh import MhReader
from tests.harness.mailgen import generate, write_maildir
from tests.harness.store_checks import assert_untouched, read_twice, tree_state, unprivileged

DATA = Path(__file__).parent / "data" / "maildir" / "mail-parser-maildir"


def ts(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def make_maildir(path: Path) -> Path:
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    return path


def message(subject: str, extra: str = "") -> bytes:
    return (
        f"From: a@example.org\nTo: b@example.org\nSubject: {subject}\n{extra}\nBody of {subject}.\n"
    ).encode()


# -- the shared corpus (stalwartlabs/mail-parser: real names, 2-byte placeholder contents) --


def test_corpus_folders_names_and_flags() -> None:
    messages = read_twice(lambda: MaildirReader(DATA))
    got = {
        (m.folder, m.source_id.rsplit("/", 1)[1]): (
            m.flags, m.deleted, m.received, {p.code for p in m.problems}
        )
        for m in messages
    }  # fmt: skip
    inbox, mine, nested = ("INBOX",), ("My Folder",), ("My Folder", "Nested Folder")
    assert got == {
        # cur/ ";2,STln": seen, trashed; l and n are keywords without a dovecot-keywords file.
        (inbox, "1491941793.M41850P8566V0000000000000015I0000000004F3030E_0.mx1.example.com"
                ",S=10956"): (frozenset({SEEN}), True, ts(1491941793), {"bad-flags"}),
        # new/ ";2,Sb": new/ is unseen whatever the name says; b has no name either.
        (inbox, "1234567890.M20046P2137.mailserver,S=4542,W=4642"):
            (frozenset(), False, ts(1234567890), {"bad-flags"}),
        (mine, "1035478339.27041_118.foo.org,S=1000,W=1030"):
            (frozenset({DRAFT, ANSWERED}), True, ts(1035478339), set()),
        (mine, "1276528487.M364837P9451.kurkku,S=1355,W=1394"):
            (frozenset(), False, ts(1276528487), set()),
        (nested, "1276533073.M242911P3632.kurkku"):
            (frozenset({FLAGGED, FORWARDED}), False, ts(1276533073), set()),
        # new/ ";2,RDF,": odd order and a trailing comma.
        (nested, "1035478339.27041_118.foo.org,S=1000,W=1030"):
            (frozenset({ANSWERED, DRAFT, FLAGGED}), False, ts(1035478339), set()),
    }  # fmt: skip
    files = sorted(p for p in DATA.rglob("*") if p.is_file())
    assert sorted(m.data for m in messages) == sorted(p.read_bytes() for p in files)
    assert [f.path for f in MaildirReader(DATA).folders()] == [inbox, mine, nested]


def test_dovecot_keywords_resolve_lower_case_letters(tmp_path: Path) -> None:
    root = tmp_path / "Maildir"
    shutil.copytree(DATA, root)
    (root / "dovecot-keywords").write_text("1 $Label1\n11 Junk\n")
    inbox = {m.source_id: m for m in MaildirReader(root).messages() if m.folder == ("INBOX",)}
    cur = next(m for k, m in inbox.items() if k.startswith("INBOX/1491941793"))
    new = next(m for k, m in inbox.items() if k.startswith("INBOX/1234567890"))
    assert cur.flags == {SEEN, "Junk"}
    # n (index 13) is not in the file: reported and dropped, the rest is kept.
    assert [p.message for p in cur.problems] == [
        "keyword letter 'n' has no name (not in dovecot-keywords); dropped"
    ]
    assert new.flags == {"$Label1"} and new.problems == ()


def test_reading_changes_nothing_in_the_corpus() -> None:
    before = tree_state(DATA)
    list(MaildirReader(DATA).messages())
    list(MaildirReader(DATA).folders())
    assert_untouched(DATA, before)


# -- generated stores -------------------------------------------------------------------


def test_generated_store_reads_back_byte_for_byte(tmp_path: Path) -> None:
    # The generator the migration benchmark uses: realistic sizes, Maildir++ folders.
    folders = [("INBOX",), ("Archive",), ("Archive", "2019"), ("Sent",)]
    written = write_maildir(tmp_path, generate(120, folders, seed=7), deleted=(3, 50))
    before = tree_state(tmp_path)
    read = read_twice(lambda: MaildirReader(tmp_path))
    assert_untouched(tmp_path, before)
    assert len(read) == len(written)
    got = sorted((m.folder, m.data, m.flags, m.received, m.deleted) for m in read)
    expected = sorted(
        (w.folder, w.data, w.flags, w.date, n in (3, 50)) for n, w in enumerate(written)
    )
    assert got == expected
    assert [f.path for f in MaildirReader(tmp_path).folders()] == [
        ("INBOX",), ("Archive",), ("Archive", "2019"), ("Sent",),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "flags", "deleted"),
    [
        ("1600000000.a.host:2,SRF", {SEEN, ANSWERED, FLAGGED}, False),
        ("1600000000.a.host;2,FRS", {SEEN, ANSWERED, FLAGGED}, False),
        ("1600000000.a.host!2,DT", {DRAFT}, True),
        ("1600000000.a.host:2,PS,", {FORWARDED, SEEN}, False),
        ("1600000000.a.host:2,SS,,", {SEEN}, False),
        ("1600000000.a.host:2,", set(), False),
        ("1600000000.a.host", set(), False),
        # A separator-like sequence inside the unique part: the last one counts.
        ("1600000000.a:2,x.host:2,F", {FLAGGED}, False),
    ],
)
def test_info_separators_and_flag_orders(
    tmp_path: Path, name: str, flags: set[str], deleted: bool
) -> None:
    root = make_maildir(tmp_path)
    (root / "cur" / name).write_bytes(b"Subject: x\n\nx\n")
    os.utime(root / "cur" / name, (1600000000, 1600000000))  # delivered then
    (m,) = MaildirReader(root).messages()
    assert (m.flags, m.deleted, m.problems) == (flags, deleted, ())
    assert m.source_id == "INBOX/" + split_name(name)[0]
    assert m.received == ts(1600000000)


def test_unknown_flag_letters_are_reported(tmp_path: Path) -> None:
    root = make_maildir(tmp_path)
    (root / "cur" / "1600000000.b.host:2,SX7").write_bytes(b"Subject: x\n\nx\n")
    (m,) = MaildirReader(root).messages()
    assert m.flags == {SEEN}
    assert [p.code for p in m.problems] == ["bad-flags", "bad-flags"]


def test_new_is_unseen_tmp_and_stray_entries_are_ignored_and_counted(tmp_path: Path) -> None:
    root = make_maildir(tmp_path)
    (root / "new" / "1600000001.n.host").write_bytes(message("new"))
    (root / "new" / "1600000002.n.host:2,S").write_bytes(message("new but S"))
    (root / "cur" / "1600000003.c.host:2,S").write_bytes(message("seen"))
    (root / "tmp" / "1600000004.t.host").write_bytes(message("in delivery"))
    (root / "cur" / ".hidden").write_bytes(message("hidden"))
    (root / "cur" / "subdir").mkdir()
    for bookkeeping in ("dovecot-uidlist", "dovecot.index", "maildirfolder", "subscriptions"):
        (root / bookkeeping).write_bytes(b"1 V1 N2\n")
    reader = MaildirReader(root)
    got = {m.data: m.flags for m in reader.messages()}
    assert got == {
        message("new"): frozenset(),
        message("new but S"): frozenset(),
        message("seen"): frozenset({SEEN}),
    }
    assert reader.ignored_files == 3  # tmp/ file, dot-file, sub-directory


def test_zero_byte_and_broken_entries_are_reported_not_dropped(tmp_path: Path) -> None:
    root = make_maildir(tmp_path)
    (root / "cur" / "1600000000.empty.host:2,S").write_bytes(b"")
    (root / "cur" / "1600000001.link.host:2,S").symlink_to(tmp_path / "gone")
    os.mkfifo(root / "cur" / "1600000002.fifo.host:2,S")
    (root / "cur" / "1600000003.ok.host:2,S").write_bytes(message("ok"))
    got = {m.source_id.split(".")[1]: m for m in MaildirReader(root).messages()}
    assert set(got) == {"empty", "link", "fifo", "ok"}
    for name in ("empty", "link", "fifo"):
        assert got[name].data == b"" and not got[name].readable, name
        assert got[name].flags == {SEEN}  # still known: the report can say what it was
    assert got["ok"].readable and got["ok"].data == message("ok")


def test_permission_denied_is_unreadable_not_a_crash() -> None:
    # Below /tmp, not pytest's 0700 tmp_path, so "nobody" can reach it.
    with tempfile.TemporaryDirectory() as tmp:
        root = make_maildir(Path(tmp) / "Maildir")
        for path in (Path(tmp), root, root / "cur", root / "new", root / "tmp"):
            path.chmod(0o755)
        secret = root / "cur" / "1600000000.secret.host:2,S"
        secret.write_bytes(message("secret"))
        secret.chmod(0o000)
        (root / "cur" / "1600000001.open.host:2,S").write_bytes(message("open"))
        (root / "cur" / "1600000001.open.host:2,S").chmod(0o644)
        with unprivileged():
            got = {m.source_id.split(".")[1]: m for m in MaildirReader(root).messages()}
        assert got["secret"].data == b""
        assert [p.code for p in got["secret"].problems] == ["unreadable"]
        assert "ermission denied" in got["secret"].problems[0].message
        assert got["open"].data == message("open")


def test_identity_survives_flag_changes_and_the_move_to_cur(tmp_path: Path) -> None:
    root = make_maildir(tmp_path)
    (root / "new" / "1600000000.a.host").write_bytes(message("a"))
    (root / "cur" / "1600000001.b.host:2,S").write_bytes(message("b"))
    before = {m.data: m.source_id for m in MaildirReader(root).messages()}
    # What a client does on reading and replying.
    (root / "new" / "1600000000.a.host").rename(root / "cur" / "1600000000.a.host:2,S")
    (root / "cur" / "1600000001.b.host:2,S").rename(root / "cur" / "1600000001.b.host:2,RS")
    after = {m.data: (m.source_id, m.flags) for m in MaildirReader(root).messages()}
    assert after == {
        message("a"): (before[message("a")], {SEEN}),
        message("b"): (before[message("b")], {SEEN, ANSWERED}),
    }


def test_a_client_moving_messages_while_we_read(tmp_path: Path) -> None:
    root = make_maildir(tmp_path)
    (root / "cur" / "1600000000.a.host:2,S").write_bytes(message("a"))
    (root / "cur" / "1600000001.b.host:2,S").write_bytes(message("b"))
    (root / "new" / "1600000002.c.host").write_bytes(message("c"))
    (root / "new" / "1600000003.d.host").write_bytes(message("d"))
    messages = MaildirReader(root).messages()
    first = next(messages)
    # Meanwhile the client flags b (a rename in cur/) and reads c (new/ -> cur/ with S).
    (root / "cur" / "1600000001.b.host:2,S").rename(root / "cur" / "1600000001.b.host:2,FS")
    (root / "new" / "1600000002.c.host").rename(root / "cur" / "1600000002.c.host:2,S")
    rest = list(messages)
    got = {m.data: m.flags for m in [first, *rest]}
    assert len(rest) == 3
    assert got == {
        message("a"): {SEEN},
        message("b"): {SEEN, FLAGGED},
        message("c"): {SEEN},
        message("d"): frozenset(),
    }
    assert all(m.readable for m in rest)


def test_received_date_falls_back_to_headers_then_mtime(tmp_path: Path) -> None:
    root = make_maildir(tmp_path)
    received = (
        "Received: from mx by mail; Tue, 02 Mar 2021 10:00:00 +0100\n"
        "Received: from a by mx; Tue, 02 Mar 2021 09:59:00 +0100\n"
        "Date: Mon, 01 Mar 2021 08:00:00 -0500\n"
    )
    (root / "cur" / "mbsync-1:2,S").write_bytes(message("r", received))
    (root / "cur" / "mbsync-2:2,S").write_bytes(
        message("d", "Date: Mon, 01 Mar 2021 08:00:00 -0500\n")
    )
    (root / "cur" / "mbsync-3:2,S").write_bytes(message("none"))
    (root / "cur" / "mbsync-4:2,S").write_bytes(message("delivered", received))
    # Times no delivery has: the DOS epoch of a broken copy, the future, the Unix epoch.
    os.utime(root / "cur" / "mbsync-1:2,S", (315532800, 315532800))
    os.utime(root / "cur" / "mbsync-2:2,S", (4102444800, 4102444800))
    os.utime(root / "cur" / "mbsync-3:2,S", (0, 0))
    os.utime(root / "cur" / "mbsync-4:2,S", (1500000000, 1500000000))
    got = {m.source_id: m for m in MaildirReader(root).messages()}
    assert got["INBOX/mbsync-1"].received == datetime.fromisoformat("2021-03-02T10:00:00+01:00")
    assert got["INBOX/mbsync-2"].received == datetime.fromisoformat("2021-03-01T08:00:00-05:00")
    # Nothing usable at all: the file time after all, said so.
    assert got["INBOX/mbsync-3"].received == ts(0)
    assert [p.code for p in got["INBOX/mbsync-3"].problems] == ["bad-date"]
    assert got["INBOX/mbsync-1"].received.tzinfo is not None
    # A plausible file time wins over the headers, as in Dovecot.
    assert got["INBOX/mbsync-4"].received == ts(1500000000)
    assert got["INBOX/mbsync-4"].problems == ()


def test_folder_layouts_maildirpp_kmail_and_fs(tmp_path: Path) -> None:
    # Maildir++ with modified UTF-7 names, a "&" and a name that is not valid mUTF-7.
    pp = make_maildir(tmp_path / "pp")
    for name in (".Entw&APw-rfe", ".Entw&APw-rfe.Tom &- Jerry", ".a&b"):
        make_maildir(pp / name)
        (pp / name / "cur" / "1600000000.x.host:2,S").write_bytes(message(name))
    assert [f.path for f in MaildirReader(pp).folders()] == [
        ("INBOX",), ("Entwürfe",), ("Entwürfe", "Tom & Jerry"), ("a&b",),
    ]  # fmt: skip
    # KMail: folders are maildirs, children of "inbox" in ".inbox.directory".
    kmail = tmp_path / "local-mail"
    for rel in (
        "inbox",
        "sent-mail",
        ".inbox.directory/lists",
        ".inbox.directory/.lists.directory/py",
    ):
        make_maildir(kmail / rel)
        (kmail / rel / "cur" / "1600000000.x.host:2,S").write_bytes(message(rel))
    assert MaildirReader.detect(kmail)
    assert [f.path for f in MaildirReader(kmail).folders()] == [
        ("inbox",), ("inbox", "lists"), ("inbox", "lists", "py"), ("sent-mail",),
    ]  # fmt: skip
    # Dovecot LAYOUT=fs: the root is INBOX, folders are plain directories, maybe nested.
    fs = make_maildir(tmp_path / "fs")
    make_maildir(fs / "Archive" / "2019")
    make_maildir(fs / "Sent")
    assert [f.path for f in MaildirReader(fs).folders()] == [
        ("INBOX",), ("Archive", "2019"), ("Sent",),
    ]  # fmt: skip
    messages = read_twice(lambda: MaildirReader(kmail))
    assert len(messages) == 4


def test_symlinked_folder_loops_are_read_once(tmp_path: Path) -> None:
    root = make_maildir(tmp_path / "Maildir")
    (root / "cur" / "1600000000.x.host:2,S").write_bytes(message("x"))
    (root / "loop").symlink_to(root)
    assert len(list(MaildirReader(root).messages())) == 1


def test_detect(tmp_path: Path) -> None:
    assert MaildirReader.detect(make_maildir(tmp_path / "md"))
    assert MaildirReader.detect(DATA)
    (tmp_path / "mh").mkdir()
    (tmp_path / "mh" / "1").write_bytes(message("1"))
    assert not MaildirReader.detect(tmp_path / "mh")
    assert MhReader.detect(tmp_path / "mh") and not MhReader.detect(tmp_path / "md")
    assert not MaildirReader.detect(tmp_path / "mh" / "1")
    assert not MaildirReader.detect(tmp_path / "missing")


# -- properties -------------------------------------------------------------------------

FLAG_LETTERS = "PRSTDF"
LETTER_FLAGS = {"P": FORWARDED, "R": ANSWERED, "S": SEEN, "D": DRAFT, "F": FLAGGED}
names = st.text(
    st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)), min_size=1
).filter(lambda n: n not in (".", "..") and len(n.encode()) < 200)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.binary(min_size=1, max_size=3000), st.text(FLAG_LETTERS), st.booleans()),
        max_size=12,
    )
)
def test_property_written_messages_read_back_identical(
    messages: list[tuple[bytes, str, bool]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = make_maildir(Path(tmp))
        expected = {}
        for n, (data, letters, in_new) in enumerate(messages):
            unique = f"{1600000000 + n}.M{n}P1.host"
            sub = "new" if in_new else "cur"
            info = "" if in_new else ":2," + "".join(sorted(set(letters)))
            (root / sub / (unique + info)).write_bytes(data)
            flags = {LETTER_FLAGS[c] for c in letters if c in LETTER_FLAGS and not in_new}
            expected["INBOX/" + unique] = (data, flags, "T" in letters and not in_new)
        got = {m.source_id: (m.data, m.flags, m.deleted) for m in MaildirReader(root).messages()}
        assert got == expected


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(names, st.binary(max_size=200)), max_size=10, unique_by=lambda t: t[0]))
def test_property_arbitrary_names_and_bytes_never_crash(files: list[tuple[str, bytes]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = make_maildir(Path(tmp))
        written = 0
        for name, data in files:
            try:
                (root / "cur" / name).write_bytes(data)
            except OSError:
                continue  # a name the file system refuses
            written += 1
        reader = MaildirReader(root)
        got = list(reader.messages())
        visible = [n for n in os.listdir(root / "cur") if not n.startswith(".")]
        assert len(got) == len(visible)
        assert len(got) + reader.ignored_files == written
