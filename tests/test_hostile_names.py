"""Folder and file names that are not UTF-8 (issue 13, points 1 and 2), on the real Dovecot.

Older Linux mail programs wrote Maildir++ folder names in the user's legacy encoding:
``.Café`` in Latin-1 is the byte 0xE9, which is not UTF-8.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from advisor.cli import run
from advisor.stores.fsnames import decode_name, printable
from tests.harness.dovecot import Account, DovecotServer
from tests.harness.migrate_helpers import server_messages, write_profile

ROOT = Path(__file__).resolve().parent.parent


def _msg(subject: str) -> bytes:
    return (
        f"From: a@example.org\nTo: b@example.org\nSubject: {subject}\n"
        f"Message-ID: <{subject}@example.org>\nDate: Mon, 1 Jan 2024 10:00:00 +0000\n\n"
        f"{subject} body\n"
    ).encode()


def _put(path: bytes, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as out:
        out.write(data)


@pytest.fixture
def latin1_maildir(tmp_path: Path) -> Path:
    top = os.fsencode(tmp_path / "Maildir")
    for folder in (b"", b".Caf\xe9", b".Good", b".Bad\x81\x9d"):
        for sub in (b"cur", b"new", b"tmp"):
            os.makedirs(os.path.join(top, folder, sub), exist_ok=True)
    _put(os.path.join(top, b"cur", b"1700000000.M1P1.host:2,S"), _msg("inbox"))
    # A file name with a Latin-1 byte too (its host part), in the Latin-1 folder.
    _put(os.path.join(top, b".Caf\xe9", b"cur", b"1700000001.M2P2.h\xf4te:2,S"), _msg("cafe"))
    _put(os.path.join(top, b".Good", b"cur", b"1700000002.M3P3.host:2,"), _msg("good"))
    _put(os.path.join(top, b".Bad\x81\x9d", b"new", b"1700000003.M4P4.host"), _msg("bad"))
    return tmp_path / "Maildir"


def test_decode_name_order() -> None:
    assert decode_name("Café".encode()) == ("Café", None)
    assert decode_name(b"Caf\xe9") == ("Café", "Latin-1")
    text, how = decode_name(b"Bad\x81\x9d")  # C1 controls in Latin-1: not a name
    assert text == "Bad\\x81\\x9d" and how is not None and "stand-in" in how
    assert printable(os.fsdecode(b"h\xf4te")) == "h\\xf4te"


def test_migrate_latin1_maildir_into_dovecot(
    tmp_path: Path,
    dovecot: DovecotServer,
    imap_account: Account,
    latin1_maildir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    profile, _ = write_profile(tmp_path, dovecot, imap_account, latin1_maildir)
    args = ["migrate", "--profile", str(profile), "--journal", str(tmp_path / "j.sqlite")]
    status = run([*args, "--json"])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    report = json.loads(captured.out)
    assert status == 0, report
    assert report["uploaded"] == 4 and report["failed"] == 0
    on_server = server_messages(dovecot, imap_account)
    subjects = {
        name: sorted(m[b"BODY[]"].split(b"Subject: ")[1].split(b"\r\n")[0] for m in msgs)  # type: ignore[union-attr]
        for name, msgs in on_server.items()
    }
    assert subjects["INBOX"] == [b"inbox"]
    assert subjects["Café"] == [b"cafe"]  # decoded as Latin-1, as the old client wrote it
    assert subjects["Good"] == [b"good"]
    assert subjects["Bad\\x81\\x9d"] == [b"bad"]  # a visible stand-in, never a crash
    notes = " ".join(report["notes"])
    assert "read as Latin-1, '.Café'" in notes and "stand-in" in notes
    # A second run finds everything done: the stand-ins and ids are stable.
    assert run([*args, "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["uploaded"] == 0 and again["already_done"] == 4


def test_scan_json_is_valid_utf8(latin1_maildir: Path, tmp_path: Path) -> None:
    # A C locale, where Python writes undecodable names back out as raw bytes.
    env = dict(
        os.environ, PYTHONPATH=str(ROOT), LC_ALL="C", PYTHONIOENCODING="utf-8:surrogateescape"
    )
    done = subprocess.run(
        [sys.executable, "-m", "advisor", "scan", "--json", str(latin1_maildir)],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    text = done.stdout.decode("utf-8")  # strict: raises on a raw byte
    assert "\\udc" not in text  # no lone surrogate escaped either
    report = json.loads(text)
    names = json.dumps(report, ensure_ascii=False)
    assert "Café" in names and "Bad\\\\x81\\\\x9d" in names
    # Where a path is not UTF-8, its exact bytes are given as well (hex).
    assert os.fsencode(latin1_maildir / ".Caf\udce9").hex() in text


def test_mbox_tree_mh_and_eml_folder_names_are_decoded_too(tmp_path: Path) -> None:
    from advisor.profile import SourceKind
    from advisor.stores import open_store

    mbox = b"From a@example.org Mon Jan  1 00:00:00 2024\n" + _msg("m")
    top = os.fsencode(tmp_path / "mail")
    _put(os.path.join(top, b"Caf\xe9"), mbox)
    _put(os.path.join(top, b"Sub\xe9.sbd", b"deep"), mbox)
    _put(os.path.join(top, b"inbox"), mbox)
    mh = os.fsencode(tmp_path / "Mail" / "inbox")
    _put(os.path.join(mh, b"1"), _msg("a"))
    _put(os.path.join(mh, b"f\xe9", b"1"), _msg("b"))
    emls = os.fsencode(tmp_path / "emls")
    _put(os.path.join(emls, b"a.eml"), _msg("a"))
    _put(os.path.join(emls, b"sub\xe9", b"b\xe9.eml"), _msg("b"))
    for kind, path, want in (
        (SourceKind.MBOX, tmp_path / "mail", {("Café",), ("Subé", "deep"), ("inbox",)}),
        (SourceKind.MH, tmp_path / "Mail" / "inbox", {("INBOX",), ("fé",)}),
        (SourceKind.EML, tmp_path / "emls", {("INBOX",), ("subé",)}),
    ):
        reader = open_store(kind, path)
        folders = {m.folder for m in reader.messages()}
        assert folders == want, kind
        assert any("read as Latin-1" in n for n in reader.notes), reader.notes
