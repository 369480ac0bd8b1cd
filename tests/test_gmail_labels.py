"""Gmail: a message kept in several local folders is stored once, with one label per folder.

Gmail cannot run here; ``tests/harness/fake_gmail.py`` plays it on loopback (over TLS with a
throwaway CA), with Gmail's label semantics. Dovecot, which has no labels, shows that
without X-GM-EXT-1 nothing changes.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from advisor.cli import run
from advisor.migration.journal import Entry, MigrationJournal, Status
from advisor.migration.labels import label_for, parse, shareable, wire
from advisor.plugins.manager import load_plugins
from advisor.stores.maildir import MaildirReader
from tests.harness.dovecot import DovecotFactory, TlsFiles, make_tls_files
from tests.harness.fake_gmail import (
    ALL_MAIL,
    GMAIL_LIKE_CAPABILITIES,
    FakeGmail,
    GmailState,
    label_name,
    tokenize,
)
from tests.harness.mailgen import GeneratedMessage, crlf, generate, make_message, write_maildir
from tests.harness.migrate_helpers import server_messages, write_profile

EMAIL = "pat@gmail.test"
PASSWORD = "app-pass word-1"
ODD = 'Reçus & "Belege" \\ 2020'
"""A folder name with non-ASCII, an ampersand, quotes, a backslash and spaces."""
LABEL_OF = {
    ("INBOX",): "\\Inbox",
    ("Sent",): "\\Sent",
    ("Drafts",): "\\Draft",
    ("Trash",): "\\Trash",
    ("Work",): "Work",
    ("Receipts",): "Receipts",
    ("2019",): "2019",
    (ODD,): ODD,
    ("Work", "Projects"): "Work/Projects",
}
_vars = itertools.count()


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("gmail-tls"))


@pytest.fixture
def gmail(tls: TlsFiles) -> Iterator[FakeGmail]:
    with FakeGmail({EMAIL: PASSWORD}, tls) as server:
        yield server
    assert server.state.errors == []


def profile_for(
    tmp_path: Path, server: FakeGmail, tls: TlsFiles, source: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    var = f"MA_GMAIL_TEST_{next(_vars)}"
    monkeypatch.setenv(var, PASSWORD)
    path = tmp_path / "gmail.toml"
    path.write_text(
        f"""version = 1
[account]
email = "{EMAIL}"
provider = "gmail"
[server]
host = "127.0.0.1"
port = {server.port}
security = "tls"
ca_file = "{tls.ca_file}"
[auth]
method = "password"
password_env = "{var}"
[source]
kind = "maildir"
path = "{source}"
"""
    )
    return path


def migrate(
    profile: Path, journal: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, dict[str, Any]]:
    status = run(
        ["migrate", "--profile", str(profile), "--journal", str(journal), "--json", *extra]
    )
    return status, json.loads(capsys.readouterr().out)


def sha(data: bytes) -> str:
    return hashlib.sha256(crlf(data)).hexdigest()


def copies(
    msgs: list[GeneratedMessage], picks: list[tuple[int, tuple[str, ...], frozenset[str] | None]]
) -> list[GeneratedMessage]:
    """Copies of ``msgs[i]`` into other folders (with other flags when given)."""
    return [
        replace(msgs[i], folder=folder, flags=msgs[i].flags if flags is None else flags)
        for i, folder, flags in picks
    ]


def expected_labels(messages: list[GeneratedMessage]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for m in messages:
        out.setdefault(sha(m.data), set()).add(LABEL_OF[m.folder])
    return out


def stored_labels(state: GmailState) -> dict[str, set[str]]:
    return {hashlib.sha256(m.data).hexdigest(): set(m.labels) for m in state.messages.values()}


def first_folders(root: Path) -> dict[str, tuple[str, ...]]:
    """The folder the reader meets each content in first."""
    first: dict[str, tuple[str, ...]] = {}
    for msg in MaildirReader(root).messages():
        first.setdefault(sha(msg.data), msg.folder)
    return first


@pytest.fixture
def store(tmp_path: Path) -> tuple[Path, list[GeneratedMessage]]:
    """Mail kept in several folders, as POP3 users' filters and copies leave it."""
    base = list(
        generate(
            30,
            [("INBOX",), ("Work",), ("Receipts",), ("Sent",), ("2019",), (ODD,)],
            seed=11,
            sizes="small",
            without_message_id=0.15,
        )
    )
    inbox = [i for i, m in enumerate(base) if m.folder == ("INBOX",)]
    work = [i for i, m in enumerate(base) if m.folder == ("Work",)]
    assert any(base[i].message_id is None for i in inbox + work)
    flagged = frozenset({"\\Seen", "\\Flagged"})
    extra = copies(
        base,
        [
            (inbox[0], ("Work",), flagged),  # starred in one folder: starred in Gmail
            (inbox[0], ("Receipts",), None),
            (inbox[1], ("Work",), None),
            (inbox[2], (ODD,), None),
            (inbox[2], ("2019",), None),
            (inbox[3], ("Sent",), None),  # sent to oneself
            (work[0], (ODD,), None),
            (work[1], ("Work",), None),  # the same message twice in one folder
            # Trash never shares a message: its own APPEND (which Gmail then merges).
            (next(i for i in work[2:] if base[i].message_id), ("Trash",), None),
            *[(i, ("Receipts",), None) for i in inbox[4:7]],
        ],
    )
    # Over 4 KB: with LITERAL- (as Gmail offers) its literal must wait for the go-ahead.
    data, mid = make_message(random.Random(4), 99, 40_000, base[0].date)
    big = GeneratedMessage(("INBOX",), data, base[0].date, frozenset({"\\Seen"}), mid)
    root = tmp_path / "Maildir"
    return root, write_maildir(root, [*base, *extra, big, replace(big, folder=("Receipts",))])


@pytest.mark.parametrize("capabilities", ["brief", "gmail-like"])
def test_each_message_once_with_a_label_per_folder(
    tmp_path: Path,
    tls: TlsFiles,
    store: tuple[Path, list[GeneratedMessage]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    capabilities: str,
) -> None:
    root, msgs = store
    server = FakeGmail({EMAIL: PASSWORD}, tls)
    if capabilities == "gmail-like":
        server.capabilities = GMAIL_LIKE_CAPABILITIES  # LITERAL-, no MULTIAPPEND
    state = server.state
    try:
        profile = profile_for(tmp_path, server, tls, root, monkeypatch)
        journal = tmp_path / "j.sqlite"
        want = expected_labels(msgs)
        contents = len(want)
        trash_twins = sum(1 for m in msgs if m.folder == ("Trash",))
        assert contents < len(msgs)

        # The plan says what would become a label, and changes nothing.
        status, plan = migrate(profile, journal, capsys, "--dry-run")
        assert status == 0, plan
        assert sum(f["to_label"] for f in plan["folders"]) == len(msgs) - contents - trash_twins
        assert sum(f["to_upload"] for f in plan["folders"]) == contents + trash_twins
        assert state.appends() == [] and state.label_stores() == []

        status, report = migrate(profile, journal, capsys)
        assert status == 0, report
        assert report["verified"] is True and report["failed"] == 0
        assert report["uploaded"] == contents + trash_twins
        assert report["labelled"] == len(msgs) - contents - trash_twins
        assert sum(f["labelled"] for f in report["folders"]) == report["labelled"]

        # One stored message per content, carrying every folder's label.
        assert stored_labels(state) == want
        assert len(state.messages) == contents
        # Uploaded once, into the first folder met (Trash aside); never into All Mail.
        appended = Counter(digest for _, _, digest in (e for e in state.log if e[0] == "APPEND"))
        first = first_folders(root)
        target: dict[tuple[str, ...], str] = {
            ("Sent",): "[Gmail]/Sent Mail",
            ("Trash",): "[Gmail]/Trash",
            ("INBOX",): "INBOX",
        }
        for digest, folder in first.items():
            trash = ("Trash", digest) in {(m.folder[0], sha(m.data)) for m in msgs}
            assert appended[digest] == 1 + trash
            name = target.get(folder, "/".join(folder))
            assert ("APPEND", name, digest) in state.log
        assert ALL_MAIL not in state.appends()
        assert (state.sync_literals > 0) is (capabilities == "gmail-like")
        assert not any("\\Trash" in entry for entry in state.label_stores())
        # Sent mail is in Gmail's Sent label, the folder that carries \Sent.
        sent = {sha(m.data) for m in msgs if m.folder == ("Sent",)}
        in_sent = {hashlib.sha256(m.data).hexdigest() for m in state.folder("[Gmail]/Sent Mail")}
        assert in_sent == sent
        # Flags of every copy end on the one message: starred in Work is starred.
        (star,) = [d for d, labels in want.items() if {"\\Inbox", "Work", "Receipts"} <= labels]
        assert {m.folder for m in msgs if sha(m.data) == star and "\\Flagged" in m.flags} == {
            ("Work",)
        }
        (starred,) = [
            m for m in state.messages.values() if hashlib.sha256(m.data).hexdigest() == star
        ]
        assert "\\Flagged" in starred.flags
        # The odd name reached Gmail intact (modified UTF-7 and quoting both ways).
        assert len(state.folder(ODD)) == sum(m.folder == (ODD,) for m in msgs)

        # A re-run uploads nothing and labels nothing.
        log_size = len(state.log)
        status, again = migrate(profile, journal, capsys)
        assert status == 0 and again["verified"] is True
        assert again["uploaded"] == 0 and again["labelled"] == 0
        assert again["already_done"] == len(msgs)
        assert [e for e in state.log[log_size:] if e[0] in ("APPEND", "STORE")] == []

        # A lost journal: everything is found on the server, nothing is duplicated.
        status, fresh = migrate(profile, tmp_path / "new.sqlite", capsys)
        assert status == 0 and fresh["verified"] is True, fresh
        # Gmail keeps one of the two identical messages in Work: the second counts as it.
        assert fresh["uploaded"] == 0 and fresh["labelled"] == 1
        assert fresh["found_on_server"] == len(msgs) - 1
        assert [e for e in state.log[log_size:] if e[0] in ("APPEND", "STORE")] == []
        assert stored_labels(state) == want
    finally:
        server.close()
    assert state.errors == []


def test_human_report_counts_labels(
    tmp_path: Path,
    tls: TlsFiles,
    gmail: FakeGmail,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = list(generate(4, [("INBOX",)], seed=3, sizes="small"))
    root = tmp_path / "Maildir"
    write_maildir(root, base + copies(base, [(0, ("Work",), None), (1, ("Work",), None)]))
    profile = profile_for(tmp_path, gmail, tls, root, monkeypatch)
    args = ["migrate", "--profile", str(profile), "--journal", str(tmp_path / "j.sqlite")]
    assert run([*args, "--dry-run"]) == 0
    assert "2 messages would not be uploaded again" in capsys.readouterr().out
    assert run(args) == 0
    out = capsys.readouterr().out
    assert "0 + 2 as label" in out and "2 messages were not uploaded again" in out


def test_copies_found_in_a_later_run_become_labels_on_the_earlier_upload(
    tmp_path: Path,
    tls: TlsFiles,
    gmail: FakeGmail,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = list(generate(8, [("INBOX",)], seed=5, sizes="small"))
    root = tmp_path / "Maildir"
    write_maildir(root, base)
    profile = profile_for(tmp_path, gmail, tls, root, monkeypatch)
    journal = tmp_path / "j.sqlite"
    assert migrate(profile, journal, capsys)[0] == 0
    state = gmail.state
    assert len(state.messages) == 8
    # The user files copies later (the reader sees new files): labels on the stored ones.
    later = copies(
        base, [(0, ("Work",), None), (1, ("Work", "Projects"), None), (2, ("Work",), None)]
    )
    write_maildir(root, base + later)
    before = len(state.log)
    status, report = migrate(profile, journal, capsys)
    assert status == 0 and report["verified"] is True, report
    assert report["uploaded"] == 0 and report["labelled"] == 3
    assert [e[0] for e in state.log[before:] if e[0] == "APPEND"] == []
    stores = [e for e in state.label_stores() if e in state.log[before:]]
    assert stores and all(e[1] == "INBOX" for e in stores)  # on the INBOX uids
    assert stored_labels(state) == expected_labels(base + later)
    with MigrationJournal(journal) as jnl:
        counts = jnl.counts()
    assert counts == {Status.UPLOADED: 8, Status.LABELLED: 3}


def test_changed_uidvalidity_means_uploading_instead(
    tmp_path: Path,
    tls: TlsFiles,
    gmail: FakeGmail,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = list(generate(6, [("INBOX",)], seed=6, sizes="small"))
    root = tmp_path / "Maildir"
    write_maildir(root, base)
    profile = profile_for(tmp_path, gmail, tls, root, monkeypatch)
    journal = tmp_path / "j.sqlite"
    assert migrate(profile, journal, capsys)[0] == 0
    gmail.state.renumber("INBOX")  # the journal's UIDs mean nothing now
    later = copies(base, [(0, ("Work",), None), (3, ("Work",), None)])
    write_maildir(root, base + later)
    before = len(gmail.state.log)
    status, report = migrate(profile, journal, capsys)
    assert status == 0 and report["verified"] is True, report
    assert report["uploaded"] == 2 and report["labelled"] == 0
    assert [e for e in gmail.state.log[before:] if e[0] == "STORE"] == []
    # Gmail takes the identical upload as a label: still one message each.
    assert stored_labels(gmail.state) == expected_labels(base + later)


def test_a_label_that_cannot_be_set_is_reported_and_uploaded_next_run(
    tmp_path: Path,
    tls: TlsFiles,
    gmail: FakeGmail,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = list(generate(5, [("INBOX",)], seed=7, sizes="small"))
    root = tmp_path / "Maildir"
    write_maildir(root, base)
    profile = profile_for(tmp_path, gmail, tls, root, monkeypatch)
    journal = tmp_path / "j.sqlite"
    assert migrate(profile, journal, capsys)[0] == 0
    gone = next(m for m in gmail.state.messages.values() if m.data == crlf(base[2].data))
    gmail.state.delete(gone)  # deleted in the web interface since
    write_maildir(root, base + copies(base, [(2, ("Work",), None), (4, ("Work",), None)]))
    status, report = migrate(profile, journal, capsys)
    assert status == 1, report
    assert report["labelled"] == 1 and report["uploaded"] == 0
    (failure,) = report["failures"]
    assert "the next run uploads it" in failure["reason"]
    # Verification found the INBOX copy gone and stopped counting it as done...
    assert report["missing_after_verify"] == 1
    # ...so the next run uploads it again, and labels the Work copy on it.
    status, again = migrate(profile, journal, capsys)
    assert status == 0, again
    assert again["uploaded"] == 1 and again["labelled"] == 1 and again["failures"] == []
    restored = [m for m in gmail.state.messages.values() if m.data == crlf(base[2].data)]
    assert len(restored) == 1 and "Work" in restored[0].labels and len(restored[0].labels) == 2


def test_refused_first_copy_the_held_twin_is_uploaded_and_labelled_next_run(
    tmp_path: Path,
    tls: TlsFiles,
    gmail: FakeGmail,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = list(generate(6, [("INBOX",)], seed=8, sizes="small"))
    root = tmp_path / "Maildir"
    write_maildir(root, base + copies(base, [(1, ("Work",), None)]))
    refused = crlf(base[1].data)
    gmail.state.refuse = lambda folder, data: folder == "INBOX" and data == refused
    profile = profile_for(tmp_path, gmail, tls, root, monkeypatch)
    journal = tmp_path / "j.sqlite"
    status, report = migrate(profile, journal, capsys)
    assert status == 1 and report["failed"] == 1, report
    assert "refused" in report["failures"][0]["reason"]
    assert report["uploaded"] == 6  # five in INBOX, and the Work copy after all
    (twin,) = [m for m in gmail.state.messages.values() if m.data == refused]
    assert twin.labels == {"Work"}
    # The account takes it again: the INBOX copy becomes a label, not an upload.
    gmail.state.refuse = None
    status, again = migrate(profile, journal, capsys)
    assert status == 0 and again["verified"] is True, json.dumps(again)
    assert again["uploaded"] == 0 and again["labelled"] == 1
    assert twin.labels == {"Work", "\\Inbox"}
    assert len(gmail.state.messages) == 6


def test_without_x_gm_ext_1_every_folder_gets_its_copy(
    tmp_path: Path,
    dovecot_factory: DovecotFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The gmail rule against a server without labels (Dovecot laid out like Gmail)."""
    server = dovecot_factory(
        special_use={
            "[Gmail]/Sent Mail": "\\Sent",
            "[Gmail]/All Mail": "\\All",
            "[Gmail]/Trash": "\\Trash",
        }
    )
    account = server.add_user()
    base = list(generate(6, [("INBOX",)], seed=9, sizes="small"))
    root = tmp_path / "Maildir"
    write_maildir(root, base + copies(base, [(0, ("Work",), None), (1, ("Sent",), None)]))
    profile, _ = write_profile(tmp_path, server, account, root, provider="gmail")
    status, report = migrate(profile, tmp_path / "j.sqlite", capsys)
    assert status == 0, report
    assert report["uploaded"] == 8 and report["labelled"] == 0
    assert any("X-GM-EXT-1" in note for note in report["notes"])
    on_server = server_messages(server, account)
    assert len(on_server["INBOX"]) == 6
    assert len(on_server["Work"]) == len(on_server["[Gmail]/Sent Mail"]) == 1
    assert on_server["[Gmail]/All Mail"] == []


def test_only_the_gmail_plugin_asks_for_labels() -> None:
    plugins = load_plugins()
    assert plugins.upload_rules("gmail").labels_for_copies is True
    for provider in ("outlook", "generic", "nobody"):
        assert plugins.upload_rules(provider).labels_for_copies is False


@pytest.mark.parametrize(
    "name",
    ["Work", "Old mail", 'say "hi"', "back\\slash", "Reçus", "日本語", "a&b", "2019", "[x]", "(p)"],
)
def test_label_wire_form_round_trips(name: str) -> None:
    sent = wire(name)
    assert sent.isascii() and sent.startswith(b'"') and sent.endswith(b'"')
    (group,) = tokenize([b"(" + sent + b")"])
    assert isinstance(group, list) and len(group) == 1
    token = group[0]
    assert label_name(token) == name  # what Gmail reads
    assert parse(sent[1:-1].replace(b'\\"', b'"').replace(b"\\\\", b"\\")) == name


def test_label_wire_form_is_one_string_whatever_the_name() -> None:
    assert b"\r" not in wire("evil\r\nA1 LOGOUT") and b"\n" not in wire("x\ny")
    assert wire('a") (b') == b'"a\\") (b"'


def test_system_labels_by_attribute_not_by_name() -> None:
    assert label_for("INBOX") == wire("\\Inbox").decode() == "\\Inbox"
    assert label_for("[Gmail]/E-mails enviados", {"\\HasNoChildren", "\\Sent"}) == "\\Sent"
    assert label_for("[Gmail]/Entwürfe", {"\\Drafts"}) == "\\Draft"
    assert label_for("[Gmail]/Bin", {"\\Trash"}) == "\\Trash"
    assert label_for("[Gmail]/Spam", {"\\Junk"}) == "\\Spam"
    assert label_for("[Gmail]/Alle Nachrichten", {"\\All"}) is None
    assert label_for("Sent") == "Sent"  # a user folder named Sent is a user label
    assert shareable("\\Inbox") and shareable("Work") and shareable("\\Sent")
    assert not shareable("\\Trash") and not shareable("\\Spam") and not shareable(None)
    assert not shareable("\\Looks-like-a-system-label")
    assert parse(b"\\inbox") == "\\Inbox" and parse(2019) == "2019"


def test_journal_counts_a_labelled_content_once_per_folder(tmp_path: Path) -> None:
    with MigrationJournal(tmp_path / "j.sqlite") as jnl:
        jnl.record(Entry("s:1", "INBOX", "<a@x>", 10, "h1", Status.UPLOADED, 7, 3))
        jnl.record(Entry("s:2", "Work", "<a@x>", 10, "h1", Status.LABELLED))
        jnl.record(Entry("s:3", "Work", "<a@x>", 10, "h1", Status.LABELLED))
        jnl.record(Entry("s:4", "INBOX", "<a@x>", 10, "h1", Status.LABELLED))
        jnl.record(Entry("s:5", "Work", "<b@x>", 12, "h2", Status.UPLOADED, 8, 1))
        jnl.record(Entry("s:6", "Work", "<b@x>", 12, "h2", Status.UPLOADED, 8, 2))
        assert jnl.done_keys("INBOX") == Counter({("<a@x>", 10): 1})
        assert jnl.done_keys("Work") == Counter({("<a@x>", 10): 1, ("<b@x>", 12): 2})
        assert [e.folder for e in jnl.done_with_hash("h1")] == ["INBOX", "Work", "Work", "INBOX"]
        entry = jnl.entry("s:1")
        assert entry is not None and (entry.uid, entry.uidvalidity) == (3, 7)
    assert os.stat(tmp_path / "j.sqlite").st_mode & 0o077 == 0
