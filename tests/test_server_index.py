"""The one server index: what fetchers add and servers change, per program and per server.

The fetchers' header formats are the ones the real programs wrote in the suite
(tests/test_same_account.py runs getmail6, mpop and fetchmail against Dovecot); the
server variants are the changes real servers make (shared/reference/real-servers.md):
Courier adds a final CRLF, Cyrus' munge8bit replaces raw 8-bit header bytes with X
(same size), some servers drop trailing blanks.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from advisor.cli import run
from advisor.migration.content_check import ContentSample
from advisor.migration.pop3_state import map_to_imap, states_in
from advisor.migration.server_index import FETCHERS, Identity, ServerIndex, find_trace, normalise
from tests.harness.dovecot import Account, DovecotServer
from tests.harness.migrate_helpers import connect, write_profile

ORIGINAL = (
    b"Return-Path: <s@example.test>\r\n"
    b"Received: from mx.example.test by mail.example.test with ESMTP id 1; "
    b"Wed, 01 May 2019 09:30:00 +0000\r\n"
    b"From: Sender <s@example.test>\r\nTo: me@example.test\r\nSubject: hello\r\n"
    b"Message-ID: <orig@example.test>\r\nDate: Wed, 01 May 2019 09:30:00 +0000\r\n\r\n"
    b"Hello.\r\nFrom the start of a line.\r\n"
)

# Exactly what each program put on top in the suite's runs (host names aside).
PREPENDED = {
    "getmail6": (
        b"Return-Path: <s@example.test>\nDelivered-To: me@example.test\n"
        b"Received: from pop.example.test (192.0.2.1:995) by laptop with POP3-SSL\n"
        b"  getmail6 msgid:000000016b1139cf; 03 Dec 2026 09:43:43 -0000\n"
    ),
    "mpop": (
        b"Received: from pop.example.test (pop.example.test [192.0.2.1])\n"
        b"\tby laptop (mpop-1.4.18) with POP3\n\tfor <me>; Thu, 03 Dec 2026 09:43:43 +0000\n"
    ),
    "fetchmail": (
        b"Received: from pop.example.test [192.0.2.1]\n\tby laptop with POP3 (fetchmail-6.4.37)\n"
        b"\tfor <me@localhost> (single-drop); Thu, 03 Dec 2026 09:43:43 +0000 (UTC)\n"
    ),
    "thunderbird": (
        b"X-Account-Key: account2\nX-UIDL: 000000016b1139cf\nX-Mozilla-Status: 0001\n"
        b"X-Mozilla-Status2: 00000000\nX-Mozilla-Keys:" + b" " * 80 + b"\n"
    ),
}


def lf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n")


def test_every_fetcher_in_the_table_has_a_test() -> None:
    assert {f.program for f in FETCHERS} == set(PREPENDED)


@pytest.mark.parametrize("program", sorted(PREPENDED))
def test_a_fetchers_lines_are_seen_through(program: str) -> None:
    copy = PREPENDED[program] + lf(ORIGINAL)  # stored with native line ends
    trace = find_trace(lf(copy).split(b"\n\n")[0] + b"\n")
    assert trace.programs == (program,)
    assert normalise(copy) == normalise(ORIGINAL)
    local = Identity.of(copy.replace(b"\n", b"\r\n"))
    server = Identity.of(ORIGINAL)
    assert local.digest == server.digest and local.exact != server.exact
    assert local.bare_size == len(ORIGINAL) and local.fits(len(ORIGINAL))
    assert local.bare_exact == server.exact  # the rest is the server's original, byte for byte
    if program in ("getmail6", "thunderbird"):
        assert trace.uidl == "000000016b1139cf"  # the POP3 UIDL the program kept


def test_getmail_without_its_optional_fields_and_two_fetchers_stacked() -> None:
    received_only = PREPENDED["getmail6"].split(b"Received:", 1)[1]
    copy = b"Received:" + received_only + PREPENDED["mpop"] + lf(ORIGINAL)
    assert find_trace(lf(copy)).programs == ("getmail6", "mpop")
    assert normalise(copy) == normalise(ORIGINAL)


def test_lines_that_are_not_a_fetchers_are_part_of_the_message() -> None:
    # A Return-Path with no getmail Received under it, an ordinary Received line, and a
    # fetcher's line below the top: all stay, so the message is another one.
    for extra in (
        b"Return-Path: <other@example.test>\n",
        b"Received: from a by b with ESMTP; Wed, 01 May 2019 09:30:00 +0000\n",
        b"X-Spam: yes\n" + PREPENDED["mpop"],
    ):
        assert normalise(extra + lf(ORIGINAL)) != normalise(ORIGINAL), extra
    other = ORIGINAL.replace(b"Hello.", b"Hullo.")
    assert Identity.of(other).digest != Identity.of(ORIGINAL).digest


def test_what_servers_change_is_seen_through() -> None:
    no_eol = ORIGINAL.rstrip(b"\r\n")
    courier = no_eol + b"\r\n"  # Courier adds the final CRLF
    assert Identity.of(no_eol).fits(len(courier)) and normalise(no_eol) == normalise(courier)
    eight_bit = ORIGINAL.replace(b"Subject: hello", "Subject: héllo".encode("latin-1"))
    munged = eight_bit.replace("é".encode("latin-1"), b"X")  # Cyrus munge8bit
    assert len(munged) == len(eight_bit) and normalise(munged) == normalise(eight_bit)
    blanks = ORIGINAL.replace(b"Hello.\r\n", b"Hello.  \r\n")
    assert normalise(blanks) == normalise(ORIGINAL) and Identity.of(blanks).fits(len(ORIGINAL))
    quoted = ORIGINAL.replace(b"\r\nFrom the", b"\r\n>From the")  # mboxo quoting left in
    assert normalise(quoted) == normalise(ORIGINAL)
    assert not Identity.of(ORIGINAL).fits(len(ORIGINAL) + 40)


def _append(client: object, folder: str, data: bytes) -> None:
    client.append(folder, data)  # type: ignore[attr-defined]


def test_index_finds_stored_variants_on_a_real_server(
    dovecot: DovecotServer, imap_account: Account
) -> None:
    """Message-ID picks the candidates, the normalised hash decides, each claimed once."""
    no_eol = ORIGINAL.rstrip(b"\r\n")
    twin = ORIGINAL.replace(b"Hello.", b"Other.")  # same Message-ID, other content
    nameless = ORIGINAL.replace(b"Message-ID: <orig@example.test>\r\n", b"")
    with connect(dovecot, imap_account) as client:
        for data in (twin, no_eol + b"\r\n", nameless + b"\r\n"):  # as Courier stores them
            _append(client, "INBOX", data)
        client.select_folder("INBOX", readonly=True)
        index = ServerIndex.read(client, "INBOX", lambda: None)
        assert len(index) == 3
        found = index.find(Identity.of(no_eol))
        assert found is not None and found.size == len(no_eol) + 2
        assert index.find(Identity.of(no_eol)) is None  # claimed: one copy stands for one
        assert index.find(Identity.of(nameless)) is not None  # no Message-ID: content alone
        assert index.find(Identity.of(ORIGINAL.replace(b"Hello.", b"Third."))) is None
        assert index.bodies_fetched == 3  # sizes and headers first; bodies only to decide


def test_a_lost_journal_finds_the_servers_changed_copy_and_uploads_nothing(
    tmp_path: Path,
    dovecot: DovecotServer,
    imap_account: Account,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 10.4 on Dovecot: the server holds the messages with a final CRLF added (as
    Courier stores them); the local ones lack it. Re-runs must not upload a copy."""
    locals_ = [ORIGINAL.replace(b"orig@", f"m{n}@".encode()).rstrip(b"\r\n") for n in range(4)]
    with connect(dovecot, imap_account) as client:
        for data in locals_:
            _append(client, "INBOX", data + b"\r\n")
    root = _maildir_with(tmp_path / "Maildir", locals_)
    profile, _ = write_profile(tmp_path, dovecot, imap_account, root)
    for journal in ("a.sqlite", "a.sqlite", "b.sqlite"):
        status = run(
            ["migrate", "--profile", str(profile), "--journal", str(tmp_path / journal), "--json"]
        )
        report = json.loads(capsys.readouterr().out)
        assert status == 0 and report["uploaded"] == 0 and report["verified"] is True, report
    status = run(["verify", "--profile", str(profile), "--json"])
    checked = json.loads(capsys.readouterr().out)
    assert status == 0 and checked["missing"] == [] and checked["doubled"] == []
    status = run(["verify", "--profile", str(profile), "--json", "--content"])
    content = json.loads(capsys.readouterr().out)
    assert status == 0 and len(content["altered"]) == 4
    assert all(a["change"] == "a final line break was added" for a in content["altered"])


def _maildir_with(root: Path, messages: list[bytes]) -> Path:
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for n, data in enumerate(messages):
        (root / "cur" / f"155670{n:04d}.M{n}P1.host,S={len(data)}:2,S").write_bytes(data)
    return root


def _munge_on_disk(server: DovecotServer, account: Account, needle: bytes) -> None:
    """Do to the stored file what Cyrus' munge8bit does: 8-bit header bytes -> X."""
    hits = [
        p for p in server.maildir_of(account).rglob("*") if p.is_file() and needle in p.read_bytes()
    ]
    assert len(hits) == 1, hits
    data = hits[0].read_bytes()
    head, sep, body = data.partition(b"\r\n\r\n")
    hits[0].write_bytes(bytes(b if b < 0x80 else 0x58 for b in head) + sep + body)


def test_verify_content_names_what_the_server_altered(
    tmp_path: Path,
    dovecot: DovecotServer,
    imap_account: Account,
    capsys: pytest.CaptureFixture[str],
) -> None:
    eight_bit = ORIGINAL.replace(b"Subject: hello", "Subject: grüße".encode("latin-1"))
    plain = ORIGINAL.replace(b"orig@", b"plain@")
    root = _maildir_with(tmp_path / "Maildir", [eight_bit, plain])
    profile, _ = write_profile(tmp_path, dovecot, imap_account, root)
    status = run(["migrate", "--profile", str(profile), "--journal", str(tmp_path / "j"), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert status == 0 and report["uploaded"] == 2 and report["altered"] == []
    assert report["content_checked"] == 2  # the closing check looked at the content
    _munge_on_disk(dovecot, imap_account, b"gr\xfc\xdfe")
    status = run(["verify", "--profile", str(profile), "--json"])
    quick = json.loads(capsys.readouterr().out)
    assert status == 0 and quick["missing"] == []  # Message-ID and size cannot see it
    status = run(["verify", "--profile", str(profile), "--json", "--content"])
    content = json.loads(capsys.readouterr().out)
    assert content["missing"] == [] and content["doubled"] == []
    [altered] = content["altered"]
    assert altered["target"] == "INBOX" and "8-bit header bytes were replaced" in altered["change"]
    run(["verify", "--profile", str(profile), "--content"])
    assert "changed by the server" in capsys.readouterr().out


def test_the_closing_checks_sample_names_an_altered_upload(
    dovecot: DovecotServer, imap_account: Account
) -> None:
    eight_bit = ORIGINAL.replace(b"Subject: hello", "Subject: grüße".encode("latin-1"))
    sample = ContentSample(per_folder=0)
    sample.offer("k1", "Inbox", "INBOX", "id-1", "grüße", eight_bit)  # risky: always kept
    with connect(dovecot, imap_account) as client:
        response = client.append("INBOX", eight_bit)
        uid = int(response.split(b"APPENDUID ")[1].split(b" ")[1].rstrip(b"]"))
        _munge_on_disk(dovecot, imap_account, b"gr\xfc\xdfe")
        checked, altered = sample.check(
            client, {"k1": uid}.get, lambda name: client.select_folder(name, readonly=True)
        )
    assert checked == 1 and [a.source_id for a in altered] == ["id-1"]
    assert "8-bit header bytes were replaced" in altered[0].change


def test_program_state_files(tmp_path: Path) -> None:
    """The UIDL files as the real programs wrote them in the suite's runs."""
    (tmp_path / "popstate.dat").write_text(
        "# POP3 State File\n# This is a generated file!  Do not edit.\n\n"
        "*pop.example.test jo\nk 000000016b1139cf 1700000000\nd 000000026b1139cf 1700000001\n"
    )
    (tmp_path / "oldmail-pop.example.test-995-jo").write_bytes(
        b"000000026b1139cf\x001796291023\n000000016b1139cf\x001796291023\n"
    )
    (tmp_path / "uidls").write_text(
        "# This file was generated by mpop version 1.4.18.\n#\n"
        " 2 pop.example.test jo\n000000016b1139cf\n000000026b1139cf\n"
    )
    (tmp_path / ".fetchids").write_text(
        "jo@pop.example.test 000000016b1139cf\njo@pop.example.test 000000026b1139cf\n"
    )
    states = states_in([tmp_path])
    assert sorted(s.program for s in states) == ["Thunderbird", "fetchmail", "getmail", "mpop"]
    for state in states:
        assert (state.host, state.user) == ("pop.example.test", "jo"), state
        assert state.uidls == {"000000016b1139cf", "000000026b1139cf"}, state
    assert next(s.port for s in states if s.program == "getmail") == 995
    # The POP3 maildrop is INBOX only when the sizes agree one for one.
    assert map_to_imap([("a", 10), ("b", 20)], [(7, 10), (9, 20)]) == {"a": 7, "b": 9}
    assert map_to_imap([("a", 10), ("b", 20)], [(7, 10), (9, 21)]) is None
    assert map_to_imap([("a", 10)], [(7, 10), (9, 20)]) is None
