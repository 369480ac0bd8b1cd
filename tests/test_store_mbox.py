"""The mbox reader on Thunderbird's own sample files and on generated edge cases."""

from __future__ import annotations

import os
import tempfile
import tracemalloc
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from advisor.errors import UsageError
from advisor.stores.base import ANSWERED, DRAFT, FLAGGED, FORWARDED, SEEN, ReaderOptions
from advisor.stores.mbox import (
    MboxEntry,
    MboxReader,
    entry_header_block,
    fromsearch,
    header_block,
    iter_mbox,
    parse_envelope_date,
    strip_mozilla_headers,
)
from tests.harness.store_checks import assert_untouched, read_twice, tree_state, unprivileged
from tests.harness.thunderbird_gen import mboxrd, offsets

DATA = Path(__file__).parent / "data"
MBOX = DATA / "mbox"
TB = DATA / "thunderbird"


def entries(path: Path, **kwargs: object) -> list[MboxEntry]:
    return list(iter_mbox(path, **kwargs))  # type: ignore[arg-type]


def write(tmp_path: Path, data: bytes, name: str = "mbox") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# -- Thunderbird's sample files -----------------------------------------------------------


def test_unquoted_from_line_does_not_split_a_message() -> None:
    raw = (MBOX / "mbox_unquoted").read_bytes()
    found = entries(MBOX / "mbox_unquoted")
    assert [e.offset for e in found] == [0, 294]
    assert [e.envelope for e in found] == [b"From ", b"From "]
    # Everything between the two separators except the mbox's blank line, byte for byte.
    assert found[0].data == raw[6:293]
    assert b"like this:\nFrom \nThis could cause problems" in found[0].data
    assert found[1].data == raw[300:]
    assert found[1].data.endswith(b"This is the second body.\n")


def test_mboxrd_loses_exactly_one_quote_level() -> None:
    found = entries(MBOX / "mbox_mboxrd")
    assert len(found) == 2
    assert found[0].data == (
        b"From: Author <author@example.com>\nTo: Recipient <recipient@example.com>\n"
        b"Subject: Sample message 1\n\nThis is the body.\nFrom (should be escaped).\n"
        b"There are 3 lines.\n"
    )
    assert found[0].envelope == b"From MAILER-DAEMON Fri Jul  8 12:08:34 2011"
    kept = entries(MBOX / "mbox_mboxrd", unquote=False)
    assert b"\n>From (should be escaped).\n" in kept[0].data


def test_space_quoted_from_lines_stay_as_stored() -> None:
    raw = (MBOX / "mbox_modern").read_bytes()
    found = entries(MBOX / "mbox_modern")
    assert [e.offset for e in found] == [0, 359]
    assert found[0].data == raw[32:358]
    assert b"\n From \n From - Fri Aug 24 11:55:47 2018\n" in found[0].data


def test_file_without_leading_from_line_is_one_message() -> None:
    raw = (MBOX / "bugmail1").read_bytes()
    (only,) = entries(MBOX / "bugmail1")
    assert only.offset == 0 and only.envelope is None
    assert only.data == raw  # a file with no separator at all is kept whole
    assert [p.code for p in only.problems] == ["no-separator"]


def test_crlf_file_keeps_crlf_and_gives_three_messages() -> None:
    raw = (TB / "panorama-migration-crlf-mbox").read_bytes()
    found = entries(TB / "panorama-migration-crlf-mbox")
    assert [e.offset for e in found] == [0, 587, 1143]
    # Sizes as Thunderbird's own index records them (0x242 and 0x177).
    assert [len(e.data) for e in found] == [0x242, 547, 0x177]
    assert found[0].data == raw[7:585] and found[2].data == raw[1150:1525]
    for entry in found:
        assert entry.data.endswith(b".\r\n")
        assert b"\n" not in entry.data.replace(b"\r\n", b"")


def test_mail_without_from_header() -> None:
    (message,) = MboxReader(MBOX / "mail-without-from").messages()
    assert message.received == datetime(2015, 4, 26, 21, 30, 59)
    assert message.data.startswith(b"Subject: mail with no from\n")
    assert message.data.endswith(b"This mail has no from address.\n")
    assert not message.problems and message.flags == frozenset()


def test_readme_is_not_an_mbox() -> None:
    assert not MboxReader.detect(TB / "readme.txt")


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("mail-without-from", 1),
        ("movemailspool", 3),
        ("message_with_from_line.eml", 1),
        ("invalid_mozilla_keys.eml", 1),
        ("mailformed_recipients.eml", 1),
    ],
)
def test_other_samples(name: str, count: int) -> None:
    found = entries(MBOX / name)
    assert len(found) == count
    raw = (MBOX / name).read_bytes()
    if found[0].envelope is None:
        assert found[0].data == raw
    else:
        assert found[0].data == raw[raw.index(b"\n") + 1 : found[0].end]


def test_movemailspool_messages_and_flags() -> None:
    got = list(MboxReader(MBOX / "movemailspool").messages())
    assert [m.source_id for m in got] == [
        "movemailspool:0",
        "movemailspool:2679",
        "movemailspool:3737",
    ]
    assert got[0].flags == {SEEN, "$label4"}
    assert got[1].flags == frozenset()
    assert got[2].flags == {SEEN}
    assert all(
        b"X-Mozilla-" not in m.data.split(b"\n\n")[0].replace(b"X-Mozilla-Draft", b"") for m in got
    )
    assert b"X-Mozilla-Draft-Info: internal/draft;" in got[1].data  # not bookkeeping: kept
    assert got[0].received == datetime(2007, 10, 2, 0, 26, 47)  # naive: local time


def test_bugmail1_flags_and_stripped_headers() -> None:
    raw = (MBOX / "bugmail1").read_bytes()
    (message,) = MboxReader(MBOX / "bugmail1").messages()
    assert message.flags == {SEEN, "$label4"}
    expected = raw.replace(b"X-Mozilla-Status: 0001\n", b"").replace(
        b"X-Mozilla-Status2: 00000000\n", b""
    )
    expected = expected.replace(b"X-Mozilla-Keys: $label4" + b" " * 73 + b"\n", b"")
    assert message.data == expected and len(message.data) == len(raw) - 148
    assert [p.code for p in message.problems] == ["no-separator"]
    assert "bugmail1:0" in message.problems[0].message
    # No envelope date: the topmost Received: field gives the arrival time, with its zone.
    assert message.received == datetime(
        2008, 5, 7, 15, 55, 21, tzinfo=timezone(-timedelta(hours=6))
    )


def test_folded_blank_mozilla_keys_are_stripped() -> None:
    (message,) = MboxReader(MBOX / "invalid_mozilla_keys.eml").messages()
    assert message.data == (
        b"Date: Tue, 21 Jan 2012 11:44:20 +0000\r\n\r\n"
        b"This mail has invalid X-Mozilla-Keys header.\r\n"
    )
    assert message.flags == frozenset()


def test_corpus_reads_are_stable_and_leave_files_untouched(tmp_path: Path) -> None:
    for sample in sorted(MBOX.iterdir()):
        (tmp_path / sample.name).write_bytes(sample.read_bytes())
    before = tree_state(tmp_path)
    got = read_twice(lambda: MboxReader(tmp_path))
    assert_untouched(tmp_path, before)
    # Directory mode reads only files that start like an mbox.
    assert {m.folder for m in got} == {
        ("mail-without-from",),
        ("mbox_mboxrd",),
        ("mbox_modern",),
        ("mbox_unquoted",),
        ("movemailspool",),
    }
    assert len(got) == 1 + 2 + 2 + 2 + 3


@pytest.mark.parametrize("block", [1, 2, 3, 7, 64, 4096])
@pytest.mark.parametrize(
    "path",
    [
        *(MBOX / n for n in ("mbox_unquoted", "mbox_mboxrd", "mbox_modern", "bugmail1")),
        *(MBOX / n for n in ("movemailspool", "message_with_from_line.eml")),
        TB / "panorama-migration-crlf-mbox",
    ],
    ids=lambda p: p.name,
)
def test_block_boundaries_do_not_change_the_result(path: Path, block: int) -> None:
    assert entries(path, block_size=block) == entries(path)
    # A tiny window: messages are not kept while their end is sought, but read again.
    assert entries(path, block_size=block, window=32) == entries(path)


# -- generated edge cases -----------------------------------------------------------------------

A = b"From: a@example.com\nSubject: one\n\nbody one\n"
B = b"From: b@example.com\nSubject: two\n\nbody two\n"


def test_zero_byte_file_has_no_messages(tmp_path: Path) -> None:
    assert entries(write(tmp_path, b"")) == []
    assert list(MboxReader(write(tmp_path, b"", "empty")).messages()) == []


def test_over_quoted_from_lines_lose_one_level(tmp_path: Path) -> None:
    body = b"Subject: q\n\n>From a\n>>From b\n>>>From c\nFrom d\n>From e\n"
    path = write(tmp_path, mboxrd([body, A]))
    assert b"\n>>>>From c\n" in path.read_bytes()
    found = entries(path)
    assert [e.data for e in found] == [body, A]


def test_content_length_that_lies_is_ignored(tmp_path: Path) -> None:
    lies = [b"3", b"5000", b"40", b"17"]
    messages = [
        b"Subject: cl " + n + b"\nContent-Length: " + n + b"\n\nline one\nline two\n" for n in lies
    ]
    found = entries(write(tmp_path, mboxrd([*messages, B])))
    assert [e.data for e in found] == [*messages, B]
    assert all(not e.problems for e in found)


def test_true_content_length_keeps_unquoted_from_lines_inside(tmp_path: Path) -> None:
    # mboxcl2: nothing is quoted, Content-Length says where the message ends.
    inner = b"From x@example.com Tue Jan  2 13:45:00 2024\nSubject: inner\nTo: y\n\ntext\n"
    body = b"see the attached mbox:\n\n" + inner
    message = b"Subject: outer\nContent-Length: %d\n\n" % len(body) + body
    data = (
        b"From a@b Tue Jan  2 13:45:00 2024\n"
        + message
        + b"\n"
        + b"From c@d Tue Jan  2 13:46:00 2024\n"
        + B
    )
    found = entries(write(tmp_path, data))
    assert [e.data for e in found] == [message, B]
    assert [p.code for p in found[0].problems] == ["content-length"]
    # Without the header the same file splits at the inner separator.
    plain = data.replace(b"Content-Length: %d\n" % len(body), b"")
    assert len(entries(write(tmp_path, plain, "plain"))) == 3


def test_content_length_pointing_at_end_of_file(tmp_path: Path) -> None:
    body = b"From here on, text.\n\nFrom x Tue Jan  2 13:45:00 2024\nA: b\nC: d\n"
    message = b"Subject: s\nContent-Length: %d\n\n" % len(body) + body
    found = entries(write(tmp_path, b"From - Tue Jan 02 13:45:00 2024\n" + message + b"\n"))
    assert [e.data for e in found] == [message]


def test_bare_cr_file_is_read_with_cr_line_endings(tmp_path: Path) -> None:
    one = b"Subject: mac\r\rclassic\r>From the past\r"
    two = b"Subject: two\r\rsecond\r"
    data = (
        b"From - Tue Jan 02 13:45:00 2024\r"
        + one
        + b"\r"
        + b"From - Tue Jan 02 13:46:00 2024\r"
        + two
    )
    found = entries(write(tmp_path, data))
    assert [e.data for e in found] == [one.replace(b">From", b"From"), two]


def test_bare_cr_inside_lf_lines_is_kept(tmp_path: Path) -> None:
    body = b"Subject: cr\n\nhalf\rline\nFrom\rnot a separator\n"
    assert [e.data for e in entries(write(tmp_path, mboxrd([body, A])))] == [body, A]


def test_mixed_line_endings(tmp_path: Path) -> None:
    crlf = b"Subject: crlf\r\n\r\nbody\r\n"
    data = (
        b"From - Tue Jan 02 13:45:00 2024\r\n"
        + crlf
        + b"\r\n"
        + b"From - Tue Jan 02 13:45:00 2024\n"
        + A
        + b"\n"
    )
    data += b"From - Tue Jan 02 13:45:00 2024\n" + B + b"\r\n"  # blank line of another kind
    assert [e.data for e in entries(write(tmp_path, data))] == [crlf, A, B]


def test_missing_final_newline(tmp_path: Path) -> None:
    data = mboxrd([A]) + b"From - Tue Jan 02 13:45:00 2024\nSubject: last\n\nno newline"
    found = entries(write(tmp_path, data))
    assert [e.data for e in found] == [A, b"Subject: last\n\nno newline"]
    assert found[-1].end == len(data)


def test_nul_bytes_and_long_lines_are_kept(tmp_path: Path) -> None:
    weird = b"Subject: nul\x00here\n\n" + b"x" * 100_000 + b"\n\x00\x00\n"
    assert [e.data for e in entries(write(tmp_path, mboxrd([weird, A])))] == [weird, A]


def test_no_blank_line_after_headers(tmp_path: Path) -> None:
    headers_only = b"Subject: headers only\nX-Thing: 1\n"
    data = mboxrd([headers_only, A])
    assert [e.data for e in entries(write(tmp_path, data))] == [headers_only, A]
    (message, _) = MboxReader(tmp_path / "mbox").messages()
    assert message.data == headers_only


def test_non_ascii_envelope_lines(tmp_path: Path) -> None:
    envelopes = [
        "From jörg@bücher.example Tue Jan  2 13:45:00 2024".encode(),
        "From 山田@例え.jp Wed Jan  3 08:00:00 2024".encode(),
        b"From \xe9t\xe9@latin1.example Thu Jan  4 09:00:00 2024",
    ]
    found = entries(write(tmp_path, mboxrd([A, B, A], envelopes)))
    assert [e.envelope for e in found] == envelopes
    assert [parse_envelope_date(e.envelope or b"") for e in found] == [
        datetime(2024, 1, 2, 13, 45),
        datetime(2024, 1, 3, 8, 0),
        datetime(2024, 1, 4, 9, 0),
    ]


def test_from_line_rules(tmp_path: Path) -> None:
    # After a blank line, no date, but headers follow: a separator (Thunderbird's rule).
    # No blank line, no date: a body line even though a header-like line follows.
    # No blank line but a full envelope date and headers: a separator.
    # After a blank line with a date, no headers at all: a message without headers.
    # After a blank line, no date, a single header then body text: not a separator.
    data = (
        b"From \nSubject: 1\n\nbody\nFrom me\nSubject: still body\n"
        b"Dear: sir\n\nFrom the desk of Jo:\nDear: Sir\nthanks\n\n"
        b"From \nSubject: 2\n\ntext\n"
        b"From x@y Tue Jan  2 13:45:00 2024\nSubject: 3\n\nthree\n\n"
        b"From x@y Tue Jan  2 13:45:00 2024\nno headers here\n"
    )
    found = entries(write(tmp_path, data))
    assert [e.data for e in found] == [
        b"Subject: 1\n\nbody\nFrom me\nSubject: still body\nDear: sir\n\n"
        b"From the desk of Jo:\nDear: Sir\nthanks\n",
        b"Subject: 2\n\ntext\n",
        b"Subject: 3\n\nthree\n",
        b"no headers here\n",
    ]


def test_preamble_of_blank_lines_and_empty_messages(tmp_path: Path) -> None:
    data = b"\n\r\n" + b"From - Tue Jan 02 13:45:00 2024\n\n" + mboxrd([A])
    found = entries(write(tmp_path, data))
    assert [e.data for e in found] == [b"", A]
    assert [p.code for p in found[0].problems] == ["empty"]
    assert found[0].offset == 3


def test_status_and_x_status_flags(tmp_path: Path) -> None:
    messages = [
        b"Status: RO\nX-Status: AF\nSubject: 1\n\nx\n",
        b"Status: O\nX-Status: DT\nSubject: 2\n\nx\n",
        b"Subject: 3\n\nx\n",
    ]
    got = list(MboxReader(write(tmp_path, mboxrd(messages))).messages())
    assert [m.flags for m in got] == [{SEEN, ANSWERED, FLAGGED}, {DRAFT}, frozenset()]
    assert [m.deleted for m in got] == [False, True, False]
    # Bookkeeping, hidden by Dovecot's mbox driver too: not part of the message.
    assert [m.data for m in got] == [b"Subject: 1\n\nx\n", b"Subject: 2\n\nx\n", messages[2]]


def test_mozilla_status_bits(tmp_path: Path) -> None:
    messages = [
        b"X-Mozilla-Status: 1007\nX-Mozilla-Status2: 04800000\n"
        b"X-Mozilla-Keys: $label1 work\nS: 1\n\nx\n",
        b"X-Mozilla-Status: 0008\nS: 2\n\nx\n",
        b"X-Mozilla-Status: 0401\nS: 3\n\nx\n",
        b"X-Mozilla-Status: zz\nStatus: R\nS: 4\n\nx\n",
    ]
    got = list(MboxReader(write(tmp_path, mboxrd(messages))).messages())
    assert got[0].flags == {
        SEEN,
        ANSWERED,
        FLAGGED,
        FORWARDED,
        "$MDNSent",
        "$label2",
        "$label1",
        "work",
    }
    assert got[1].deleted and not got[0].deleted
    assert got[2].partial and got[2].flags == {SEEN}
    assert [p.code for p in got[2].problems] == ["partial"]
    assert [p.code for p in got[3].problems] == ["bad-flags"]
    assert [m.data for m in got] == [
        b"S: 1\n\nx\n",
        b"S: 2\n\nx\n",
        b"S: 3\n\nx\n",
        b"S: 4\n\nx\n",
    ]


def test_mozilla_headers_stripped_only_in_the_header_block() -> None:
    message = (
        b"X-Mozilla-Status: 0001\r\nX-Mozilla-Status2: 00000000\r\n"
        b"X-Mozilla-Keys: a\r\n   b\r\nX-Mozilla-Draft-Info: keep\r\nX-Mozilla-Statusx: keep\r\n"
        b"Subject: s\r\n\r\nX-Mozilla-Status: 0001\r\n"
    )
    assert strip_mozilla_headers(message) == (
        b"X-Mozilla-Draft-Info: keep\r\nX-Mozilla-Statusx: keep\r\n"
        b"Subject: s\r\n\r\nX-Mozilla-Status: 0001\r\n"
    )
    untouched = b"Subject: s\n\nX-Mozilla-Status: 0001\n"
    assert strip_mozilla_headers(untouched) is untouched


def test_template_and_raw_8bit_headers(tmp_path: Path) -> None:
    template = b"X-Mozilla-Status: 0000\nX-Mozilla-Status2: 01000000\nSubject: t\n\nx\n"
    raw = "Subject: Grüße aus Köln\nFrom: Jürgen <j@example.com>\n\nä\n".encode("latin-1")
    got = list(MboxReader(write(tmp_path, mboxrd([template, raw]))).messages())
    assert got[0].flags == frozenset() and not got[0].deleted and not got[0].problems
    assert got[0].data == b"Subject: t\n\nx\n" and got[1].data == raw


def test_a_writer_appending_meanwhile(tmp_path: Path) -> None:
    path = write(tmp_path, mboxrd([A, B]))
    reading = iter_mbox(path, block_size=16)
    first = next(reading)
    with open(path, "ab") as out:
        out.write(mboxrd([A]))
    rest = list(reading)
    assert first.data == A and [e.data for e in rest][:1] == [B]
    assert all(e.data in (A, B) for e in rest)


def test_received_dates(tmp_path: Path) -> None:
    envelopes = [
        b"From a@b Sat Jan  3 01:05:34 1996 +0100",
        b"From a@b Tue Jan  2 13:45:00 UTC 2024",
        b"From a@b Fri Feb 30 13:45:00 2024",  # no such day: fall back to the headers
        b"From ",
    ]
    messages = [
        A,
        A,
        b"Date: Tue, 2 Jan 2024 10:00:00 -0500\nSubject: d\n\nx\n",
        b"Subject: none\n\nx\n",
    ]
    got = list(MboxReader(write(tmp_path, mboxrd(messages, envelopes))).messages())
    assert [m.received for m in got] == [
        datetime(1996, 1, 3, 1, 5, 34, tzinfo=timezone(timedelta(hours=1))),
        datetime(2024, 1, 2, 13, 45, tzinfo=UTC),
        datetime(2024, 1, 2, 10, 0, tzinfo=timezone(timedelta(hours=-5))),
        None,
    ]


def test_source_ids_are_offsets_and_stable(tmp_path: Path) -> None:
    data = mboxrd([A, B, A])
    path = write(tmp_path, data, "Inbox.mbox")
    got = read_twice(lambda: MboxReader(path))
    assert [m.source_id for m in got] == [f"Inbox.mbox:{o}" for o in offsets(data)]
    assert {m.folder for m in got} == {("Inbox",)}


def test_quoting_option(tmp_path: Path) -> None:
    path = write(tmp_path, mboxrd([b"S: 1\n\n>From x\n"]))
    (kept,) = MboxReader(path, ReaderOptions(extra={"mbox_quoting": "none"})).messages()
    assert kept.data == b"S: 1\n\n>>From x\n"
    with pytest.raises(UsageError, match="mbox_quoting"):
        MboxReader(path, ReaderOptions(extra={"mbox_quoting": "mboxo"}))


def test_directory_tree(tmp_path: Path) -> None:
    (tmp_path / "lists" / "python").mkdir(parents=True)
    write(tmp_path, mboxrd([A]), "inbox")
    write(tmp_path, mboxrd([B]), "Archive")
    write(tmp_path / "lists", mboxrd([A, B]), "python-dev.mbox")
    (tmp_path / "Archive.sbd").mkdir()
    write(tmp_path / "Archive.sbd", mboxrd([A]), "2019")
    write(tmp_path, b"not mail\n", "notes.txt")
    write(tmp_path, b"", ".hidden")
    (tmp_path / "maildir" / "cur").mkdir(parents=True)
    write(tmp_path / "maildir" / "cur", mboxrd([A]), "1.eml")
    assert MboxReader.detect(tmp_path) and MboxReader.detect(tmp_path / "inbox")
    assert not MboxReader.detect(tmp_path / "notes.txt")
    reader = MboxReader(tmp_path)
    assert [f.path for f in reader.folders()] == [
        ("Archive",),
        ("Archive", "2019"),
        ("inbox",),
        ("lists", "python-dev"),
    ]
    assert [(m.folder, m.source_id) for m in reader.messages()] == [
        (("Archive",), "Archive:0"),
        (("Archive", "2019"), "Archive.sbd/2019:0"),
        (("inbox",), "inbox:0"),
        (("lists", "python-dev"), "lists/python-dev.mbox:0"),
        (("lists", "python-dev"), f"lists/python-dev.mbox:{offsets(mboxrd([A, B]))[1]}"),
    ]


def test_unreadable_file_is_reported_not_raised() -> None:
    # Below /tmp, not pytest's 0700 tmp_path, so "nobody" can reach it.
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        root.chmod(0o755)
        write(root, mboxrd([A]), "open").chmod(0o644)
        write(root, mboxrd([B]), "secret").chmod(0o000)
        with unprivileged():
            got = list(MboxReader(root).messages())
            (alone,) = MboxReader(root / "secret").messages()
    assert [(m.source_id, m.readable) for m in got] == [("open:0", True), ("secret:0", False)]
    assert got[1].data == b"" and alone.data == b"" and alone.source_id == "secret:0"
    assert "ermission denied" in got[1].problems[0].message


def test_a_tree_reports_what_it_does_not_read() -> None:
    """In a directory of mbox files, nothing is skipped without a note; an empty file is
    an empty folder and a directory that cannot be listed is an unreadable entry."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        root.chmod(0o755)
        write(root, mboxrd([A]), "inbox")
        write(root, b"", "empty")
        write(root, b"shopping list\n", "notes.txt")
        write(root, mboxrd([B]), ".hidden-mail")
        write(root, b"binary summary", "inbox.ev-summary")
        for sub in ("cur", "new", "tmp"):
            (root / "a-maildir" / sub).mkdir(parents=True)
        (root / "closed").mkdir()
        write(root / "closed", mboxrd([B]), "inside")
        (root / "closed").chmod(0o000)
        os.mkfifo(root / "pipe")
        reader = MboxReader(root)
        with unprivileged():
            folders = [f.path for f in reader.folders()]
            got = list(reader.messages())
        (root / "closed").chmod(0o755)
    assert folders == [("closed",), ("empty",), ("inbox",)]
    assert [(m.folder, m.readable) for m in got] == [(("closed",), False), (("inbox",), True)]
    assert "cannot be read" in got[0].problems[0].message
    notes = {Path(n.split(": ", 1)[0]).name: n.split(": ", 1)[1] for n in reader.notes}
    assert set(notes) == {"notes.txt", ".hidden-mail", "a-maildir", "pipe"}
    assert "--kind maildir" in notes["a-maildir"] and "From " in notes["notes.txt"]


# -- properties ------------------------------------------------------------------------------

LINE = st.one_of(
    st.sampled_from(
        [b"From ", b"From x", b">From y", b">>From z", b"From: q", b"", b" From ", b">"]
    ),
    st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b"")),
)


@st.composite
def message(draw: st.DrawFn) -> bytes:
    eol = draw(st.sampled_from([b"\n", b"\r\n"]))
    headers = draw(st.lists(st.sampled_from([b"Subject: s", b"To: t", b"X-A: b"]), min_size=1))
    body = draw(st.lists(LINE, max_size=12))
    return eol.join(headers) + eol + eol + b"".join(line + eol for line in body)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    messages=st.lists(message(), max_size=6),
    block=st.sampled_from([1, 5, 64, 1 << 20]),
    window=st.sampled_from([24, 100, 1 << 20]),
)
def test_mboxrd_round_trip(tmp_path: Path, messages: list[bytes], block: int, window: int) -> None:
    path = write(tmp_path, mboxrd(messages), "rt")
    found = list(iter_mbox(path, block_size=block, window=window))
    assert [e.data for e in found] == messages
    assert all(entry_header_block(e) == header_block(e.data) for e in found)
    assert [e.offset for e in found] == (offsets(mboxrd(messages)) if messages else [])


@st.composite
def thunderbird_message(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """(stored message, the bookkeeping lines it carries)."""
    eol = draw(st.sampled_from([b"\n", b"\r\n"]))
    headers = draw(st.lists(st.sampled_from([b"Subject: s", b"To: t", b"X-A: b"]), min_size=1))
    marks = draw(
        st.lists(
            st.sampled_from(
                [
                    b"X-Mozilla-Status: 0001",
                    b"X-Mozilla-Status2: 00000000",
                    b"X-Mozilla-Keys: $label1" + b" " * 40,
                    b"x-mozilla-keys: a" + eol + b"  b",
                ]
            ),
            max_size=3,
            unique=True,
        )
    )
    lines = list(headers)
    for mark in marks:
        lines.insert(draw(st.integers(0, len(lines))), mark)
    body = draw(st.lists(LINE, max_size=6))
    message = eol.join(lines) + eol + eol + b"".join(line + eol for line in body)
    return message, b"".join(line + eol for line in lines if line in marks)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(messages=st.lists(thunderbird_message(), max_size=5), window=st.sampled_from([24, 1 << 20]))
def test_bookkeeping_cut_while_copying(
    tmp_path: Path, messages: list[tuple[bytes, bytes]], window: int
) -> None:
    path = write(tmp_path, mboxrd([m for m, _ in messages]), "tb")
    found = list(iter_mbox(path, window=window, block_size=7, strip_mozilla=True))
    assert [e.data for e in found] == [strip_mozilla_headers(m) for m, _ in messages]
    assert [e.removed for e in found] == [r for _, r in messages]
    assert all(entry_header_block(e) == header_block(e.data) for e in found)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    chunks=st.lists(
        st.one_of(
            st.binary(max_size=60),
            st.sampled_from(
                [
                    b"\nFrom ",
                    b"\n\nFrom x Tue Jan  2 13:45:00 2024\n",
                    b"A: b\n",
                    b"\r",
                    b"\n",
                    b"Content-Length: 5\n",
                    b"\n\n",
                    b">From ",
                ]
            ),
        ),
        max_size=40,
    ),
    block=st.sampled_from([1, 3, 1 << 20]),
    window=st.sampled_from([16, 1 << 20]),
)
def test_garbage_never_crashes(
    tmp_path: Path, chunks: list[bytes], block: int, window: int
) -> None:
    data = b"".join(chunks)
    path = write(tmp_path, data, "garbage")
    found = list(iter_mbox(path, block_size=block, window=window))
    assert found == list(iter_mbox(path))
    previous_end = 0
    for entry in found:
        assert previous_end <= entry.offset < entry.end <= len(data) or entry.data == b""
        assert len(entry.data) <= entry.end - entry.offset
        previous_end = entry.end
    assert list(MboxReader(path).messages()) is not None


# -- memory ------------------------------------------------------------------------------------


def test_memory_stays_bounded(tmp_path: Path) -> None:
    """Reading a ~50 MB mbox keeps only the current message (plus a block) in memory."""
    chunk = b"".join(
        b"From - Tue Jan 02 13:45:00 2024\nSubject: %d\nFrom: a@b\n\n" % i
        + b"line of body text, quite ordinary\n" * 300
        + b"\n"
        for i in range(100)
    )
    big = b"From - Tue Jan 02 13:45:00 2024\nSubject: big\n\n" + b"y" * 3_000_000 + b"\n\n"
    path = tmp_path / "big.mbox"
    with open(path, "wb") as out:
        for i in range(50):
            out.write(chunk)
            if i == 25:
                out.write(big)
    assert os.path.getsize(path) > 50_000_000
    count = largest = 0
    tracemalloc.start()
    try:
        for message in MboxReader(path).messages():
            count += 1
            largest = max(largest, len(message.data))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 50 * 100 + 1
    assert largest == 3_000_015
    assert peak < 5_000_000 + largest, peak


# -- the separator search of large files, in a helper process ---------------------------------


@pytest.fixture
def helper_for_small_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the helper search files of a few KB (it normally starts at 64 MB), and leave
    the first 4 KB to the reader, as it leaves the first 32 MB."""
    monkeypatch.setattr(fromsearch, "PARALLEL_MIN", 0)
    monkeypatch.setattr(fromsearch, "HEAD", 4096)
    monkeypatch.setattr(fromsearch, "_cores", lambda: 2)


def _tricky_mbox() -> bytes:
    """Separators on both sides of the helper's starting point, quoted lines, a large
    message the reader skips over, Thunderbird bookkeeping, a Content-Length."""
    big = b"Subject: big\n\n" + b"0123456789abcdef\n" * 2000 + b">From inside big\n"
    thunderbird = b"X-Mozilla-Status: 0001\nSubject: tb\n\n>>From twice\nFrom once\n"
    counted = b"Subject: cl\nContent-Length: 9\n\nFrom x\nx\n"
    plain = [
        b"Subject: %d\n\nbody %d\nFrom the middle of a line? no: From \n" % (i, i)
        for i in range(60)
    ]
    return mboxrd([*plain[:30], big, thunderbird, counted, *plain[30:]])


@pytest.mark.usefixtures("helper_for_small_files")
@pytest.mark.parametrize(("block", "window"), [(1 << 19, 1 << 22), (512, 4096), (7, 64)])
def test_helper_search_gives_the_same_messages(tmp_path: Path, block: int, window: int) -> None:
    path = write(tmp_path, _tricky_mbox())
    started = []
    real_start = fromsearch.HitFeed.start.__func__  # type: ignore[attr-defined]

    def start(cls: type[fromsearch.HitFeed], fd: int, size: int) -> fromsearch.HitFeed | None:
        feed = real_start(cls, fd, size)
        started.append(feed)
        return feed

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fromsearch.HitFeed, "start", classmethod(start))
        found = entries(path, block_size=block, window=window, strip_mozilla=True)
    alone = entries(path, block_size=block, window=window, strip_mozilla=True, parallel=False)
    assert started and started[0] is not None and started[0].proc is None  # ran, was reaped
    assert found == alone
    assert len(found) == 63 and found[30].data.endswith(b"From inside big\n")


@pytest.mark.usefixtures("helper_for_small_files")
@pytest.mark.parametrize(
    "child",
    [
        "import sys; sys.stdout.buffer.write(b'not the helper at all, just text')",
        "import sys; sys.exit(3)",
        # The right greeting, the first true offset, then it dies before it is done.
        "import sys; from array import array; "
        "sys.stdout.buffer.write(MAGIC + array('q', [FIRST]).tobytes())",
        # Offsets that go backwards: not to be trusted.
        "import sys; from array import array; "
        "sys.stdout.buffer.write(MAGIC + array('q', [9000, 5000, -1 - 6000]).tobytes())",
    ],
    ids=["garbage", "exits", "dies", "disorder"],
)
def test_a_helper_that_fails_is_replaced_by_our_own_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, child: str
) -> None:
    data = _tricky_mbox()
    path = write(tmp_path, data)
    child = child.replace("FIRST", str(data.index(b"From ", 4096)))
    monkeypatch.setattr(fromsearch, "_CHILD", f"MAGIC = {fromsearch.MAGIC!r}\n{child}\n")
    assert entries(path, strip_mozilla=True) == entries(path, strip_mozilla=True, parallel=False)


@pytest.mark.usefixtures("helper_for_small_files")
def test_stopping_early_stops_the_helper(tmp_path: Path) -> None:
    path = write(tmp_path, _tricky_mbox() * 20)
    reading = iter_mbox(path)
    next(reading)
    reading.close()  # the helper is killed and reaped: no ResourceWarning, no zombie
    assert len(list(iter_mbox(path))) == 63 * 20


def test_a_large_message_with_bookkeeping_mid_header_is_not_copied_twice(
    tmp_path: Path,
) -> None:
    """Cutting X-Mozilla lines out of the middle of a 30 MB message's header builds the
    result in place: memory holds the message once, not the stored copy and the result."""
    header = (
        b"Received: from a by b; Tue, 2 Jan 2024 13:45:00 +0000\nFrom: a@b\n"
        b"X-Mozilla-Status: 0001\nX-Mozilla-Status2: 00000000\nSubject: video\n\n"
    )
    body = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx\n" * (
        30_000_000 // 73
    )
    path = tmp_path / "big.mbox"
    with open(path, "wb") as out:
        out.write(b"From - Tue Jan 02 13:45:00 2024\n" + header)
        out.write(body)
        out.write(b"\nFrom - Tue Jan 02 13:46:00 2024\n" + A)
    del body
    tracemalloc.start()
    try:
        first, second = MboxReader(path).messages()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    size = len(first.data)
    assert size == os.path.getsize(path) - 32 - 50 - 1 - 33 - len(A)
    assert first.data.startswith(b"Received: from a by b") and b"X-Mozilla" not in first.data
    assert first.flags == {SEEN} and second.data == A
    assert peak < size + 5_000_000, peak
