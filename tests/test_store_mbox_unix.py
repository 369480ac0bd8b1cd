"""The Unix writers' bookkeeping in mbox files (advisor/stores/mbox/bookkeeping.py), in
small cases; tests/test_unix_mbox_writers.py runs the real programs."""

from __future__ import annotations

from pathlib import Path

from advisor.migration.plan import INBOX, FolderMapper, ServerLayout
from advisor.plugins.types import FolderRole
from advisor.profile import SourceKind
from advisor.stores import describe_store
from advisor.stores.base import FLAGGED, SEEN
from advisor.stores.mbox import MboxReader
from advisor.stores.mbox.bookkeeping import inbox_reason, strip_unix_fields, tree_layout

PSEUDO = (
    b"From MAILER-DAEMON Thu Dec  3 09:44:53 2026\n"
    b"Date: 03 Dec 2026 09:44:53 +0000\n"
    b"From: Mail System Internal Data <MAILER-DAEMON@vm>\n"
    b"Subject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA\n"
    b"Message-ID: <1796291093@vm>\n"
    b"X-IMAP: 1796291093 0000000002 work\n"
    b"Status: RO\n\n"
    b"This text is part of the internal format of your mail folder, and is not\n"
    b"a real message.\n\n"
)
REAL = (
    b"From a@example.test Wed May  1 09:30:00 2019 +0000\n"
    b"Subject: one\nStatus: RO\nX-Status: F\nX-Keywords: work\n  $Forwarded\n"
    b"X-UID: 1\nX-UIDL: 0001abc\nContent-Length: 27\n\n"
    b"X-UID: 7 stays: a body line\n\n"
)


def test_folder_data_record_is_left_out_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "saved-messages"
    path.write_bytes(PSEUDO + REAL)
    reader = MboxReader(path)
    [message] = list(reader.messages())
    assert reader.folder_data == 1
    assert [n.split(": ")[0] for n in reader.notes if "FOLDER INTERNAL DATA" in n] == [
        "saved-messages:0"
    ]
    assert message.flags == {SEEN, FLAGGED, "work", "$Forwarded"}
    # Only the seven fields Dovecot hides go; X-UIDL (POP3) and the body stay.
    assert message.data == b"Subject: one\nX-UIDL: 0001abc\n\nX-UID: 7 stays: a body line\n"
    assert message.source_id == f"saved-messages:{len(PSEUDO)}"


def test_a_first_message_with_x_imap_that_is_mail_is_kept(tmp_path: Path) -> None:
    # Only c-client's own record (envelope or subject say so) is folder data.
    mail = b"From a@example.test Wed May  1 09:30:00 2019\nSubject: hi\nX-IMAP: 1 0000000002\n\nx\n"
    path = tmp_path / "box"
    path.write_bytes(mail + b"\n" + PSEUDO)
    reader = MboxReader(path)
    got = list(reader.messages())
    assert got[0].data == b"Subject: hi\n\nx\n"
    assert len(got) == 2 and reader.folder_data == 0  # the record is not first: mail


def test_strip_unix_fields_crlf_folded_and_bad_keywords() -> None:
    data = b"X-Keywords: ok\r\n \\bad\r\nSubject: s\r\nx-status: A\r\n\r\nbody\r\n"
    block = data[: data.index(b"\r\n\r\n") + 2]
    fields = strip_unix_fields(data, block)
    assert fields.data == b"Subject: s\r\n\r\nbody\r\n"
    assert fields.keywords == {"ok"}
    assert [p.code for p in fields.problems] == ["bad-flags"]
    untouched = b"Subject: Status: report\n\nStatus: R\n"
    assert strip_unix_fields(untouched, b"Subject: Status: report\n").data is untouched


def test_inbox_reasons(tmp_path: Path) -> None:
    assert (
        inbox_reason(Path("/var/mail/bob"))
        == "the system mailbox (/var/mail/bob) is the user's inbox"
    )
    home = tmp_path / "home"
    home.mkdir()
    (home / "mbox").write_bytes(REAL)
    assert "~/mbox" in (inbox_reason(home / "mbox") or "")
    fetched = home / "fetched"
    fetched.write_bytes(
        b"From a Wed May  1 09:30:00 2019\nReceived: from pop.example.test\n"
        b"\tby here with POP3 (fetchmail-6.4.37)\n\tfor <me@here>; Wed, 1 May 2019\n"
        b"Subject: s\n\nx\n"
    )
    assert inbox_reason(fetched) == "fetchmail delivered into this file: it is the user's inbox"
    (home / "Saved").write_bytes(REAL)
    assert inbox_reason(home / "Saved") is None
    # The reader says so for a lone file, not for a file in a folder tree.
    assert [f.inbox_reason for f in MboxReader(fetched).folders()] == [inbox_reason(fetched)]
    assert {f.inbox_reason for f in MboxReader(home).folders()} == {None}


def test_folder_mapper_proposes_inbox_and_the_profile_wins() -> None:
    layout = ServerLayout("/", "")
    why = {("bob",): "the system mailbox (/var/mail/bob) is the user's inbox"}
    target = FolderMapper(layout, inboxes=why).target_for(("bob",))
    assert (target.name, target.role, target.reason) == (INBOX, FolderRole.INBOX, why[("bob",)])
    mapped = FolderMapper(layout, folder_map={"bob": "Old mail"}, inboxes=why)
    assert mapped.target_for(("bob",)).name == "Old mail"
    assert (
        FolderMapper(layout, target_prefix="Imported", inboxes=why).target_for(("bob",)).name
        == "Imported/bob"
    )


def test_layouts(tmp_path: Path) -> None:
    alpine = tmp_path / "alpine" / "mail"
    alpine.mkdir(parents=True)
    (alpine / "sent-mail").write_bytes(PSEUDO + REAL)
    (alpine / "projects").write_bytes(REAL)
    assert tree_layout(alpine) == "Alpine/Pine's ~/mail (c-client)"
    dovecot = tmp_path / "dovecot" / "mail"
    (dovecot / ".imap").mkdir(parents=True)
    (dovecot / "inbox").write_bytes(REAL)
    assert describe_store(SourceKind.MBOX, dovecot) == (
        "a folder tree of mbox files (Dovecot's mbox layout (~/mail with its .imap index))"
    )
    mutt = tmp_path / "mutt"
    (mutt / "Mail").mkdir(parents=True)
    (mutt / ".muttrc").write_text("set folder=~/Mail\n")
    (mutt / "Mail" / "lists").write_bytes(b"From a Wed May  1 09:30:00 2019\nS: 1\n\nx\n")
    assert describe_store(SourceKind.MBOX, mutt / "Mail") == (
        "a folder tree of mbox files (mutt's folder directory)"
    )
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "box").write_bytes(b"From a Wed May  1 09:30:00 2019\nS: 1\n\nx\n")
    assert describe_store(SourceKind.MBOX, plain) == "a folder tree of mbox files"
    assert describe_store(SourceKind.MBOX, plain / "box") == "an mbox file"
    assert describe_store(SourceKind.MBOX, alpine / "sent-mail") == (
        "an mbox file (kept by c-client/Dovecot)"
    )
