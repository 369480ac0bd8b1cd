"""EmlxReader: Apple Mail .emlx/.partial.emlx corpora and generated Mail folders."""

from __future__ import annotations

import base64
import binascii
import email
import plistlib
import re
import shutil
import tempfile
from datetime import UTC, datetime
from email.message import Message
from email.policy import compat32
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from advisor.stores.base import ANSWERED, DRAFT, FLAGGED, FORWARDED, SEEN, SourceMessage
from advisor.stores.emlx import EmlxReader, parse_emlx
from tests.harness.store_checks import assert_untouched, read_twice, tree_state

DATA = Path(__file__).parent / "data" / "emlx"
CONVERTER = DATA / "partial-emlx-converter"


def ts(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def read_one(path: Path) -> SourceMessage:
    (message,) = EmlxReader(path).messages()
    return message


def parts_by_filename(data: bytes) -> dict[str, Message]:
    msg = email.message_from_bytes(data, policy=compat32)
    return {p.get_filename(): p for p in msg.walk() if p.get_filename()}


# -- the corpora ----------------------------------------------------------------------


def test_plain_emlx_is_exactly_the_expected_eml() -> None:
    m = read_one(CONVERTER / "Messages" / "114862.emlx")
    assert m.data == (CONVERTER / "expected_114862.eml").read_bytes()
    # flags 8623750272: no read/answered/flagged/draft/forwarded/deleted bit set.
    assert (m.flags, m.deleted, m.partial, m.problems) == (frozenset(), False, False, ())
    assert m.received == ts(1516985072)


@pytest.mark.parametrize(
    ("name", "size", "received"),
    [
        ("mikez-plaintext.emlx", 497, 1581000000),
        ("mikez-richtext.emlx", 639, 1617036743),
        ("terhechte-2.emlx", 497, 1581000000),
        ("terhechte-3.emlx", 639, 1617036743),
    ],
)
def test_emlx_samples(name: str, size: int, received: int) -> None:
    raw = (DATA / name).read_bytes()
    m = read_one(DATA / name)
    start = raw.index(b"\n") + 1
    assert m.data == raw[start : start + size]
    assert m.flags == {SEEN, DRAFT}  # 8623489089: bits 0 (read) and 6 (draft)
    assert m.received == ts(received) and m.problems == ()


@pytest.mark.parametrize(
    ("name", "codes", "partial", "size"),
    [
        ("terhechte-broken1.emlx", ["truncated", "bad-flags"], True, 495),  # cut short
        ("terhechte-broken2.emlx", ["bad-emlx"], False, 471),  # no byte count
        ("terhechte-broken3.emlx", ["bad-emlx"], False, 497),  # count too large
        ("partial-emlx-converter/invalid.emlx", ["bad-emlx", "bad-flags"], False, 35),  # junk
    ],
)
def test_broken_files_are_reported_never_fatal(
    name: str, codes: list[str], partial: bool, size: int
) -> None:
    m = read_one(DATA / name)
    assert sorted(p.code for p in m.problems) == sorted(codes)
    assert (m.partial, len(m.data)) == (partial, size)
    assert b"<?xml" not in m.data and b"<plist" not in m.data


def test_whole_corpus_reads_without_error_and_changes_nothing() -> None:
    before = tree_state(DATA)
    messages = read_twice(lambda: EmlxReader(DATA))
    assert_untouched(DATA, before)
    assert len(messages) == 13
    assert {m.folder for m in messages} == {("INBOX",)}


def test_partial_rebuilt_like_the_original() -> None:
    m = read_one(CONVERTER / "Messages" / "114892.partial.emlx")
    assert (m.partial, m.problems) == (False, ())
    assert b"X-Apple-Content-Length" not in m.data
    ours = parts_by_filename(m.data)
    # The converter's expected result is the original message (CRLF, other header order).
    theirs = parts_by_filename((CONVERTER / "expected_114892.eml").read_bytes())
    attachments = CONVERTER / "Attachments" / "114892"
    files = {p.name: p.read_bytes() for p in attachments.rglob("*") if p.is_file()}
    assert set(ours) == set(theirs) == set(files) == {
        "short.txt", "original.doc", "text.txt", "image001.png",
    }  # fmt: skip
    for name, part in ours.items():
        original = theirs[name].get_payload(decode=True)
        assert part.get_payload(decode=True) == files[name]
        if part["Content-Transfer-Encoding"] == "base64":
            assert original == files[name]
            # Re-encoded exactly as the original: 76-character base64 lines.
            assert part.get_payload() == theirs[name].get_payload().replace("\r\n", "\n")
        else:  # text: the expected file has CRLF line ends
            assert original.replace(b"\r\n", b"\n") == files[name]
    # Everything else is byte for byte what Mail stored.
    stored = parse_emlx((CONVERTER / "Messages" / "114892.partial.emlx").read_bytes()).message
    rest = m.data
    for part in ours.values():
        rest = rest.replace(part.get_payload().encode(), b"", 1)
    assert rest == re.sub(rb"X-Apple-Content-Length: \d+\n", b"", stored)


@pytest.mark.parametrize(
    ("emlx_id", "filename"),
    [
        # RFC 2231 continuations in the header, the file named in one piece on disk.
        ("136153", "ReallyReallyReallyReallyReallyReallyReallyReallyReallyReallylong_filename.xls"),
        # NFD in the header (u + combining diaeresis), NFC on disk.
        ("207046", "Tübingen.pdf"),
    ],
)
def test_partial_attachment_names(emlx_id: str, filename: str) -> None:
    m = read_one(CONVERTER / "Messages" / f"{emlx_id}.partial.emlx")
    assert not m.partial and not any(p.code == "partial" for p in m.problems)
    (part,) = parts_by_filename(m.data).values()
    on_disk = next((CONVERTER / "Attachments" / emlx_id / "2").iterdir())
    assert on_disk.name == filename
    assert part.get_payload(decode=True) == on_disk.read_bytes()
    assert max(len(line) for line in part.get_payload().splitlines()) == 76


def test_missing_attachment_is_partial_not_lost(tmp_path: Path) -> None:
    tree = tmp_path / "Mailbox.mbox"
    shutil.copytree(CONVERTER, tree)
    shutil.rmtree(tree / "Attachments" / "136153")
    m = next(m for m in EmlxReader(tree).messages() if m.source_id.endswith("/136153"))
    assert m.partial and m.folder == ("Mailbox",)
    (problem,) = [p for p in m.problems if p.code == "partial"]
    assert "attachment 2 (ReallyReally" in problem.message
    stored = parse_emlx((tree / "Messages" / "136153.partial.emlx").read_bytes()).message
    assert m.data == stored  # as stored, nothing invented


# -- generated Apple Mail folders ---------------------------------------------------------


def mail_message(n: int, attachment: bytes | None = None, cte: str = "base64") -> bytes:
    """A message as Mail.app writes it: LF, a blank line before each boundary."""
    head = (
        f"From: Ann <ann@example.org>\nSubject: message {n}\n"
        f"Date: Tue, 0{n % 9 + 1} Jun 2021 08:00:00 +0200\nMime-Version: 1.0\n"
    )
    if attachment is None:
        return (head + "Content-Type: text/plain; charset=utf-8\n\nHello " + f"{n}\n").encode()
    if cte == "base64":
        body = base64.encodebytes(attachment).rstrip(b"\n")
    elif cte == "quoted-printable":
        body = binascii.b2a_qp(attachment, istext=True)
    else:
        body = attachment
    return (
        head.encode()
        + b'Content-Type: multipart/mixed; boundary="B"\n\n\n--B\n'
        + b"Content-Type: text/plain\n\nSee the file.\n\n--B\n"
        + f"Content-Transfer-Encoding: {cte}\n".encode()
        + f'Content-Disposition: attachment;\n\tfilename="file{n}.bin"\n'.encode()
        + b"Content-Type: application/octet-stream\n\n"
        + body
        + b"\n--B--\n"
    )


def strip_attachment(data: bytes, length: int) -> bytes:
    """What Mail keeps of a message whose attachment it saved apart: an empty body."""
    head, rest = data.split(b"Content-Type: application/octet-stream\n\n", 1)
    return (
        head
        + b"Content-Type: application/octet-stream\n"
        + f"X-Apple-Content-Length: {length}\n\n".encode()
        + rest[rest.index(b"\n--B--") :]
    )


def emlx(data: bytes, flags: int, received: int) -> bytes:
    plist = plistlib.dumps({"date-received": received, "flags": flags, "remote-id": "7"})
    return f"{len(data):<10}\n".encode() + data + plist


FLAG_CASES = [
    (0, set(), False),
    (1, {SEEN}, False),
    (1 | 2, {SEEN}, True),
    (4 | 16, {ANSWERED, FLAGGED}, False),
    (64 | 256, {DRAFT, FORWARDED}, False),
    (1 | 1 << 9 | 0x3F << 10 | 1 << 33 | 1 << 40, {SEEN}, False),  # redirected, counts, > 32 bits
]


def test_generated_mail_folders(tmp_path: Path) -> None:
    v10 = tmp_path / "Library" / "Mail" / "V10" / "5B1C2A3E-0000-4000-8000-000000000001"
    mailboxes = {
        ("INBOX",): v10 / "INBOX.mbox" / "6C2D-UUID" / "Data" / "1" / "Messages",
        ("Work",): v10 / "Work.mbox" / "7D3E-UUID" / "Data" / "Messages",
        ("Work", "Projects"): v10 / "Work.mbox/Projects.mbox/8E4F-UUID/Data/Messages",
    }  # fmt: skip
    expected: dict[str, tuple[object, ...]] = {}
    n = 0
    for folder, directory in mailboxes.items():
        directory.mkdir(parents=True)
        for flags, imap_flags, deleted in FLAG_CASES:
            n += 1
            data = mail_message(n)
            (directory / f"{n}.emlx").write_bytes(emlx(data, flags, 1600000000 + n))
            expected[f"{n}"] = (folder, data, imap_flags, deleted, ts(1600000000 + n))
    # Partial messages: the original comes back byte for byte, whatever the encoding.
    inbox = mailboxes[("INBOX",)]
    for cte in ("base64", "quoted-printable", "7bit"):
        n += 1
        blob = bytes(range(256)) * 40 if cte == "base64" else b"caf\xc3\xa9 " * 300 + b"\nend\n"
        original = mail_message(n, blob, cte)
        (inbox / f"{n}.partial.emlx").write_bytes(
            emlx(strip_attachment(original, len(blob)), 1, 1600000000 + n)
        )
        (inbox.parent / "Attachments" / str(n) / "2").mkdir(parents=True)
        (inbox.parent / "Attachments" / str(n) / "2" / f"file{n}.bin").write_bytes(blob)
        expected[f"{n}"] = (("INBOX",), original, {SEEN}, False, ts(1600000000 + n))
    before = tree_state(tmp_path)
    messages = read_twice(lambda: EmlxReader(tmp_path / "Library" / "Mail" / "V10"))
    assert_untouched(tmp_path, before)
    got = {
        m.source_id.rsplit("/", 1)[1]: (m.folder, m.data, m.flags, m.deleted, m.received)
        for m in messages
    }
    assert got == expected
    assert all(not m.partial and m.problems == () for m in messages)
    assert EmlxReader.detect(tmp_path / "Library" / "Mail")  # V10/<account>/INBOX.mbox
    assert [f.path for f in EmlxReader(tmp_path / "Library").folders()] == [
        ("INBOX",), ("Work",), ("Work", "Projects"),
    ]  # fmt: skip


def test_partial_keeps_its_identity_once_completed(tmp_path: Path) -> None:
    messages = tmp_path / "Box.mbox" / "Messages"
    messages.mkdir(parents=True)
    data = mail_message(1)
    (messages / "5.partial.emlx").write_bytes(emlx(data, 0, 1600000000))
    (before,) = EmlxReader(tmp_path).messages()
    (messages / "5.emlx").write_bytes(emlx(data, 1, 1600000000))
    (after,) = EmlxReader(tmp_path).messages()  # the complete file supersedes the partial
    assert before.source_id == after.source_id == "Box.mbox/Messages/5"
    assert (before.flags, after.flags) == (frozenset(), {SEEN})


def test_detect(tmp_path: Path) -> None:
    assert EmlxReader.detect(DATA) and EmlxReader.detect(CONVERTER)
    assert EmlxReader.detect(DATA / "mikez-plaintext.emlx")
    (tmp_path / "Inbox.mbox").mkdir()
    assert EmlxReader.detect(tmp_path) and EmlxReader.detect(tmp_path / "Inbox.mbox")
    assert not EmlxReader.detect(CONVERTER / "expected_114862.eml")
    assert not EmlxReader.detect(tmp_path / "Inbox.mbox" / "nothing")


# -- garbage ----------------------------------------------------------------------------

chunks = st.sampled_from([
    b"\n", b"\r\n", b"--B\n", b"--B--\n", b"X-Apple-Content-Length: 5\n", b"\n\n",
    b'Content-Type: multipart/mixed; boundary="B"\n', b"Content-Transfer-Encoding: base64\n",
    b"Content-Type: multipart/alternative; boundary=\"\n", b"<?xml version=\"1.0\"?>\n",
    b"<plist><dict><key>flags</key><integer>99999999999999999999</integer></dict></plist>",
    b"123  \n", b"\x00\xff", b"filename*0*=utf-8''%FF%FE; filename*1=x\n",
])  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(chunks, st.binary(max_size=40)), max_size=30))
def test_property_garbage_never_crashes(pieces: list[bytes]) -> None:
    data = b"".join(pieces)
    parsed = parse_emlx(data)
    assert parsed.message in data
    with tempfile.TemporaryDirectory() as tmp:
        messages = Path(tmp) / "Messages"
        messages.mkdir()
        (messages / "1.partial.emlx").write_bytes(data)
        (Path(tmp) / "Attachments" / "1" / "1").mkdir(parents=True)
        (Path(tmp) / "Attachments" / "1" / "1" / "x").write_bytes(b"attachment")
        (m,) = EmlxReader(Path(tmp)).messages()
        assert isinstance(m.data, bytes)
