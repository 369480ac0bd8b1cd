"""The PST reader through libpff (libpff-python), against readpst on the same real files.

Windows and Mac users have no readpst, so libpff reads their .pst files; here both
readers exist, so every real .pst of the corpus is read through both and compared:
the same folders, messages, headers, bodies and read state. Then a migration through
libpff alone (readpst off PATH) into the real Dovecot, twice (exactly once).
"""

from __future__ import annotations

import email
import shutil
from collections.abc import Iterator
from email.message import Message
from email.policy import compat32
from pathlib import Path

import pytest

from advisor.errors import UsageError
from advisor.stores import pst
from advisor.stores.base import ANSWERED, FORWARDED, SEEN, ReaderOptions, SourceMessage
from advisor.stores.pst import PstReader, choose_pst_reader
from advisor.stores.scan import scan_store
from tests.harness.dovecot import Account, DovecotServer
from tests.harness.migrate_helpers import server_messages, write_profile
from tests.harness.scan_builders import CORPORA
from tests.harness.store_checks import assert_untouched, tree_state

DATA = Path(__file__).parent / "data" / "pst"
CORPUS = CORPORA / "pst"
TEST_PST = DATA / "tika-testPST.pst"  # 7 mails in the store's root, French folder names
BODY_TYPES = DATA / "tika-testPST_variousBodyTypes.pst"  # 4 mails in Inbox/tmp


def _real_psts() -> list[Path]:
    """Every .pst of tests/data and of the shared corpus (the same file once)."""
    found: dict[str, Path] = {}
    for directory in (DATA, CORPUS):
        for path in sorted(directory.glob("*.pst")) if directory.is_dir() else ():
            found.setdefault(path.read_bytes()[:512].hex() + str(path.stat().st_size), path)
    return list(found.values())


def _read(path: Path, backend: str, tmp: Path) -> tuple[list[SourceMessage], PstReader]:
    reader = PstReader(path, ReaderOptions(extra={"pst_reader": backend, "tmp_dir": str(tmp)}))
    return list(reader.messages()), reader


def _parsed(m: SourceMessage) -> Message:
    return email.message_from_bytes(m.data, policy=compat32)


def _text(msg: Message, subtype: str) -> str | None:
    """The first text/<subtype> part outside attached messages, as text, lines trimmed."""

    def parts(node: Message) -> Iterator[Message]:
        if node.get_content_type() == "message/rfc822":
            return
        if node.is_multipart():
            for child in node.get_payload():
                yield from parts(child)
        else:
            yield node

    for part in parts(msg):
        if part.get_content_type() == f"text/{subtype}" and not part.get_filename():
            raw = part.get_payload(decode=True)
            charset = part.get_content_charset() or "utf-8"
            text = raw.decode(charset, "replace") if isinstance(raw, bytes) else ""
            return "\n".join(line.rstrip() for line in text.splitlines()).strip()
    return None


def _parts(msg: Message) -> list[tuple[str, str | None]]:
    """(type, file name) of the leaf parts outside attached messages, in order; an
    attached message counts as one part."""
    out: list[tuple[str, str | None]] = []

    def walk(node: Message) -> None:
        if node.get_content_type() == "message/rfc822":
            out.append(("message/rfc822", None))
        elif node.is_multipart():
            for child in node.get_payload():
                walk(child)
        else:
            out.append((node.get_content_type(), node.get_filename()))

    walk(msg)
    return out


def _key(m: SourceMessage) -> tuple[tuple[str, ...], str]:
    msg = _parsed(m)
    return m.folder, str(msg["Message-ID"] or msg["Subject"])


def test_readers_agree_on_every_real_pst(tmp_path: Path) -> None:
    psts = _real_psts()
    assert len(psts) >= 4  # dist-list, passworded, variousBodyTypes, testPST
    for path in psts:
        before = tree_state(path.parent)
        by_readpst, _ = _read(path, "readpst", tmp_path)
        by_libpff, reader = _read(path, "libpff", tmp_path)
        assert_untouched(path.parent, before)
        assert list(tmp_path.iterdir()) == []
        assert reader.notes[0] == "Read with libpff, as asked."
        readpst = {_key(m): m for m in by_readpst}
        libpff = {_key(m): m for m in by_libpff}
        assert sorted(libpff) == sorted(readpst), path.name
        assert len(by_libpff) == len(libpff)  # every message once
        for key, theirs in readpst.items():
            ours = libpff[key]
            a, b = _parsed(theirs), _parsed(ours)
            for header in ("Subject", "Message-ID", "Date", "Received"):
                assert a.get_all(header) == b.get_all(header), (path.name, key, header)
            if a["Received"] is not None:  # both keep the delivered header as it is
                assert (a["To"], a["Cc"]) == (b["To"], b["Cc"]), key
            else:  # readpst writes the display names Outlook shows ('x@y'); libpff the address
                assert b["To"] and str(b["To"]) in str(a["To"]), key
            # libpff's rebuild keeps In-Reply-To for sent mail too; readpst's, not always.
            if a["In-Reply-To"] is not None:
                assert a["In-Reply-To"] == b["In-Reply-To"], key
            # Sent mail without delivered headers: readpst writes <MAILER-DAEMON>
            # for an Exchange sender, so only the display name can agree.
            assert str(b["From"]).split("<")[0].strip(' "') in str(a["From"]), key
            assert _text(a, "plain") == _text(b, "plain"), key
            # The same parts, but for an attached message: libpff puts a note there.
            placeholder = [
                ("message/rfc822", None) if (name or "").endswith("(not copied).txt") else (t, name)
                for t, name in _parts(b)
            ]
            assert _parts(a) == placeholder, key
            assert _text(a, "html") == _text(b, "html"), key
            assert (SEEN in ours.flags) == (SEEN in theirs.flags), key
            assert theirs.received is not None and ours.received is not None
            # readpst: the topmost Received: header; libpff: the delivery time.
            assert abs((ours.received - theirs.received).total_seconds()) <= 2, key
    # What only libpff keeps: the first message of variousBodyTypes was forwarded.
    by_libpff, _ = _read(BODY_TYPES, "libpff", tmp_path)
    assert [sorted(m.flags) for m in by_libpff] == [[FORWARDED, SEEN]] + [[SEEN]] * 3
    assert ANSWERED not in by_libpff[0].flags


def test_an_attached_message_survives_through_readpst_only(tmp_path: Path) -> None:
    by_readpst, _ = _read(TEST_PST, "readpst", tmp_path)
    by_libpff, _ = _read(TEST_PST, "libpff", tmp_path)
    assert {m.folder for m in by_libpff} == {("hong-thai.nguyen",)}  # the store's root
    theirs = next(m for m in by_readpst if _parsed(m)["Subject"] == "FW: First email")
    ours = next(m for m in by_libpff if _parsed(m)["Subject"] == "FW: First email")
    assert [p.get_content_type() for p in _parsed(theirs).walk()].count("message/rfc822") == 1
    assert "message/rfc822" not in [p.get_content_type() for p in _parsed(ours).walk()]
    assert [p.code for p in ours.problems] == ["attachment-lost"]
    assert "First email" in ours.problems[0].message and "readpst" in ours.problems[0].message
    # Built from the properties: Outlook kept no delivered header for sent mail.
    made = _parsed(ours)
    assert made["To"] == "lfcnassif@gmail.com"
    assert made["In-Reply-To"] == "<3148510c2360443396a78d35e0888de9@pf.gov.br>"
    assert ours.data.count(b"MIME-Version:") == 1
    others = [m for m in by_libpff if m is not ours]
    assert len(others) == 6 and all(m.problems == () for m in others)


def test_the_choice_of_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert shutil.which("readpst") and pst.libpff_available()
    monkeypatch.delenv(pst.PST_READER_ENV, raising=False)
    assert choose_pst_reader()[0] == "readpst"  # preferred where installed
    monkeypatch.setenv(pst.PST_READER_ENV, "libpff")
    assert choose_pst_reader() == ("libpff", "libpff, as asked")
    assert choose_pst_reader("readpst")[0] == "readpst"  # the reader's option wins
    monkeypatch.setenv(pst.PST_READER_ENV, "outlook")
    with pytest.raises(UsageError, match=r'must be "auto", "readpst" or "libpff"'):
        choose_pst_reader()
    monkeypatch.delenv(pst.PST_READER_ENV)
    monkeypatch.setenv("PATH", str(tmp_path))  # a machine without readpst: Windows, a Mac
    name, why = choose_pst_reader()
    assert name == "libpff" and "readpst is not installed" in why
    with pytest.raises(UsageError, match="readpst was asked for but is not installed"):
        choose_pst_reader("readpst")
    monkeypatch.setattr(pst, "libpff_available", lambda: False)  # and without libpff
    with pytest.raises(UsageError, match="pip install libpff-python") as excinfo:
        choose_pst_reader()
    assert "apt-get install pst-utils" in str(excinfo.value)


def test_scan_without_readpst_says_libpff_read_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    result = scan_store(PstReader(BODY_TYPES))
    assert result.totals.messages == 4
    assert result.notes[0].startswith("Read with libpff (readpst is not installed")
    assert [f.path for f in PstReader(BODY_TYPES).folders()] == [("Inbox", "tmp")]
    broken = tmp_path / "broken.pst"
    broken.write_bytes(BODY_TYPES.read_bytes()[:4096])
    with pytest.raises(UsageError, match=r"libpff cannot read .*broken\.pst"):
        list(PstReader(broken).messages())


@pytest.mark.slow
def test_migrate_through_libpff_exactly_once(
    tmp_path: Path,
    dovecot: DovecotServer,
    imap_account: Account,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json

    from advisor.cli import run

    source = tmp_path / "Outlook.pst"
    shutil.copyfile(TEST_PST, source)
    monkeypatch.setenv(pst.PST_READER_ENV, "libpff")  # as on a machine without readpst
    profile, _ = write_profile(tmp_path, dovecot, imap_account, source, kind="pst")
    journal = tmp_path / "j.sqlite"
    args = ["migrate", "--profile", str(profile), "--journal", str(journal), "--json"]
    assert run(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["uploaded"] == 7 and report["failed"] == 0 and report["verified"] is True
    assert "Read with libpff, as asked." in report["notes"]
    on_server = server_messages(dovecot, imap_account)["hong-thai.nguyen"]
    assert len(on_server) == 7
    assert all(b"\\Seen" in m[b"FLAGS"] for m in on_server)  # type: ignore[operator]
    sent = [m for m in on_server if b"Subject: FW: First email" in m[b"BODY[]"]]  # type: ignore[operator]
    assert len(sent) == 1 and b"(not copied).txt" in sent[0][b"BODY[]"]  # type: ignore[operator]
    assert run(args) == 0  # a second run uploads nothing
    again = json.loads(capsys.readouterr().out)
    assert again["uploaded"] == 0 and again["failed"] == 0
    assert len(server_messages(dovecot, imap_account)["hong-thai.nguyen"]) == 7
