"""EmlReader on Dovecot's malformed-message corpus and on a generated Windows Live Mail tree."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from advisor.stores.eml import EmlReader
from tests.harness.store_checks import assert_untouched, read_twice, tree_state

MALFORMED = Path(__file__).parent / "data" / "eml" / "dovecot-malformed"


def wlm_message(n: int, subject: str) -> bytes:
    """Windows Live Mail writes CRLF; some of these have 8-bit headers and long lines."""
    lines = [
        f"Received: from mx by pop.example.net; Mon, 0{n % 9 + 1} Feb 2015 10:00:00 +0100",
        "From: =?utf-8?q?J=C3=BCrgen?= <j@example.net>",
        f"Subject: {subject}",
        "Date: Sun, 01 Feb 2015 23:00:00 +0100",
        "X-Raw: caf\xe9",
        "",
        "x" * 1500,
        "",
    ]  # fmt: skip
    return "\r\n".join(lines).encode("latin-1")


def test_malformed_corpus_reads_every_file_exactly() -> None:
    before = tree_state(MALFORMED)
    messages = read_twice(lambda: EmlReader(MALFORMED))
    assert_untouched(MALFORMED, before)
    files = sorted(MALFORMED.glob("*.eml"))
    assert len(files) == 23
    assert [m.source_id for m in messages] == [f"/{f.name}" for f in files]
    assert [m.data for m in messages] == [f.read_bytes() for f in files]
    assert {m.folder for m in messages} == {("INBOX",)}
    assert all(m.flags == frozenset() and not m.deleted for m in messages)


def test_generated_live_mail_tree(tmp_path: Path) -> None:
    account = tmp_path / "pop.example.net"
    layout = {
        "Inbox/1A2B3C.eml": wlm_message(1, "one"),
        "Inbox/10.eml": wlm_message(2, "ten"),
        "Inbox/9.eml": wlm_message(3, "nine"),
        "Inbox/Family/UPPER.EML": wlm_message(4, "upper-case suffix"),
        "Sent Items/sent.eml": wlm_message(5, "sent"),
        "Deleted Items/gone.eml": wlm_message(6, "in the trash folder"),
        "Inbox/.hidden.eml": b"not a message\r\n",
        ".cache/x.eml": b"not a message\r\n",
        "Inbox/Mail.MSMessageStore": b"database\r\n",
        "Inbox/readme.txt": b"text\r\n",
    }
    for rel, data in layout.items():
        (account / rel).parent.mkdir(parents=True, exist_ok=True)
        (account / rel).write_bytes(data)
    before = tree_state(account)
    messages = read_twice(lambda: EmlReader(account))
    assert_untouched(account, before)
    got = [(m.folder, m.source_id, m.data) for m in messages]
    assert got == [
        (("Deleted Items",), "Deleted Items/gone.eml", layout["Deleted Items/gone.eml"]),
        (("Inbox",), "Inbox/9.eml", layout["Inbox/9.eml"]),
        (("Inbox",), "Inbox/10.eml", layout["Inbox/10.eml"]),
        (("Inbox",), "Inbox/1A2B3C.eml", layout["Inbox/1A2B3C.eml"]),
        (("Inbox", "Family"), "Inbox/Family/UPPER.EML", layout["Inbox/Family/UPPER.EML"]),
        (("Sent Items",), "Sent Items/sent.eml", layout["Sent Items/sent.eml"]),
    ]
    assert messages[1].received == datetime(2015, 2, 4, 9, 0, tzinfo=UTC)
    assert all(m.flags == frozenset() for m in messages)
    assert any("No flags" in note for note in EmlReader.metadata_notes)


def test_single_file_and_unreadable_entries(tmp_path: Path) -> None:
    one = tmp_path / "saved.eml"
    one.write_bytes(wlm_message(1, "saved"))
    assert EmlReader.detect(one)
    (m,) = read_twice(lambda: EmlReader(one))
    assert (m.folder, m.data) == (("INBOX",), one.read_bytes())
    (tmp_path / "empty.eml").write_bytes(b"")
    (tmp_path / "link.eml").symlink_to(tmp_path / "missing.eml")
    got = {m.source_id: m.readable for m in EmlReader(tmp_path).messages()}
    assert got == {"/empty.eml": False, "/link.eml": False, "/saved.eml": True}


def test_detect(tmp_path: Path) -> None:
    assert EmlReader.detect(MALFORMED)
    (tmp_path / "a" / "b").mkdir(parents=True)
    assert not EmlReader.detect(tmp_path)
    (tmp_path / "a" / "b" / "m.eml").write_bytes(b"Subject: x\r\n\r\n")
    assert EmlReader.detect(tmp_path)  # found a few levels down
    assert not EmlReader.detect(tmp_path / "a" / "b" / "m.emlx")
    (tmp_path / "x.emlx").write_bytes(b"1\nx")
    assert not EmlReader.detect(tmp_path / "x.emlx")
