"""A Thunderbird 115+ profile into the real Dovecot: hashed folder names, junk keywords,
dates without a usable index, and headers-only stubs (left out, or taken in full from
the POP3 account that left them on its server, here the suite's Dovecot POP3)."""

from __future__ import annotations

import json
import os
import poplib
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from advisor.cli import run
from tests.harness.dovecot import Account, DovecotServer
from tests.harness.mailgen import crlf
from tests.harness.migrate_helpers import connect, server_messages, write_profile
from tests.harness.tb115_gen import Tb115Folder, Tb115Message, write_tb115_profile

T0 = datetime(2021, 4, 5, 6, 7, 8, tzinfo=UTC)
RESTORED = datetime(2019, 2, 3, 4, 5, 6, tzinfo=UTC)


def big_message(n: int) -> bytes:
    return (
        f"Received: from mx.example.org by pop.example.org; {format_datetime(T0)}\n"
        f"From: big@example.org\nTo: me@example.test\nSubject: big {n}\n"
        f"Message-ID: <big-{n}@example.org>\nDate: {format_datetime(T0)}\n\n"
        + f"line {n} of a large attachment\n"
        * 2000
    ).encode()


def pop3_uidls(server: DovecotServer, account: Account) -> list[str]:
    info = server.info
    pop = poplib.POP3_SSL(info.hostname, info.pop3s_port, context=info.ssl_context(), timeout=10)
    try:
        pop.user(account.username)
        pop.pass_(account.password)
        return [line.split()[1].decode() for line in pop.uidl()[1]]
    finally:
        pop.quit()


def profile_with_stubs(tmp: Path, server: DovecotServer, old: Account) -> tuple[Path, list[bytes]]:
    """The old provider's POP3 mailbox keeps the full messages (leave on server); the
    Thunderbird profile has headers-only stubs of them, with their UIDLs."""
    full = [big_message(1), big_message(2)]
    with connect(server, old) as client:
        for data in full:
            client.append("INBOX", crlf(data))
    uidls = pop3_uidls(server, old)
    info = server.info
    pop_dir = "pop.old.example"
    prefs = (
        'user_pref("mail.account.account2.server", "server2");\n'
        f'user_pref("mail.server.server2.directory-rel", "[ProfD]Mail/{pop_dir}");\n'
        f'user_pref("mail.server.server2.hostname", "{info.hostname}");\n'
        f'user_pref("mail.server.server2.port", {info.pop3s_port});\n'
        'user_pref("mail.server.server2.socketType", 3);\n'
        f'user_pref("mail.server.server2.userName", "{old.username}");\n'
        'user_pref("mail.server.server2.leave_on_server", true);\n'
        'user_pref("mail.server.server2.type", "pop3");\n'
    )
    stubs = [
        Tb115Message(f"big {n}", T0, partial_uidl=uidls[n - 1], raw=data)
        for n, data in enumerate(full, start=1)
    ]
    local = [
        Tb115Folder("Q18e2cfdc9", "Q1/Q2 report", [Tb115Message("q report", T0)]),
        Tb115Folder("8d3e0f7a", "  spaced  ", [Tb115Message("spaced", T0)]),
        Tb115Folder(
            "Junk",
            "Junk",
            [
                Tb115Message("spam", T0, junkscore="100"),
                Tb115Message("false alarm", T0 + timedelta(hours=1), junkscore="0"),
            ],
        ),
        # Restored mail files: no .msf; Thunderbird shows the Received: date.
        Tb115Folder("Restored", "Restored", [Tb115Message("restored", RESTORED)], index=False),
    ]
    pop_inbox = [Tb115Folder("Inbox", "Inbox", [*stubs, Tb115Message("small", T0)])]
    profile = tmp / "abcd.default-release"
    write_tb115_profile(profile, {"Local Folders": local, pop_dir: pop_inbox}, prefs=prefs)
    return profile, full


def migrate(
    profile: Path, journal: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, dict[str, Any]]:
    status = run(
        ["migrate", "--profile", str(profile), "--journal", str(journal), "--json", *extra]
    )
    return status, json.loads(capsys.readouterr().out)


def subjects(messages: list[dict[bytes, object]]) -> dict[str, dict[bytes, object]]:
    out = {}
    for m in messages:
        data = bytes(m[b"BODY[]"])  # type: ignore[arg-type]
        out[data.split(b"Subject: ")[1].split(b"\r\n")[0].decode()] = m
    return out


def test_thunderbird_115_profile_into_dovecot(
    tmp_path: Path,
    dovecot: DovecotServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    old, new = dovecot.add_user(), dovecot.add_user()
    tb_profile, full = profile_with_stubs(tmp_path, dovecot, old)
    profile, _ = write_profile(tmp_path, dovecot, new, tb_profile, kind="thunderbird")
    journal = tmp_path / "j.sqlite"

    status, report = migrate(profile, journal, capsys)
    assert status == 0, report
    assert report["uploaded"] == 6  # 8 messages, the 2 headers-only stubs left out
    partial = report["partial_messages"]
    assert [(p["subject"], p["recovered"], p["on_server"]) for p in partial] == [
        ("big 1", False, True),
        ("big 2", False, True),
    ]
    assert all(p["account"].startswith("pop3s://") and p["uidl"] for p in partial)
    got = server_messages(dovecot, new)
    names = sorted(got)
    # The real names, not the hashed file names ("/" inside a name becomes its look-alike
    # U+2215; the mapper trims the spaces around a name, which servers refuse).
    assert "Q1\u2215Q2 report" in names and "spaced" in names, names
    assert not any("8e2cfdc9" in n or "8d3e0f7a" in n for n in names), names
    inbox = subjects(got["INBOX"])
    assert set(inbox) == {"small"}  # no stub was uploaded
    junk = subjects(got["Junk"])
    assert b"$Junk" in junk["spam"][b"FLAGS"]  # type: ignore[operator]
    assert b"$NotJunk" in junk["false alarm"][b"FLAGS"]  # type: ignore[operator]
    restored = subjects(got["Restored"])["restored"]
    assert restored[b"INTERNALDATE"].astimezone(UTC) == RESTORED  # type: ignore[union-attr]

    # The user asks for the full messages from the old POP3 account.
    os.environ["MA_TEST_POP3_PASSWORD"] = old.password
    extra = ("--partial-from-pop3", "--pop3-password-env", "MA_TEST_POP3_PASSWORD")
    status, report = migrate(profile, journal, capsys, *extra)
    assert status == 0, report
    assert report["uploaded"] == 2
    assert [p["recovered"] for p in report["partial_messages"]] == [True, True]
    inbox = subjects(server_messages(dovecot, new)["INBOX"])
    assert set(inbox) == {"small", "big 1", "big 2"}
    for n, data in enumerate(full, start=1):
        m = inbox[f"big {n}"]
        assert m[b"BODY[]"] == crlf(data)  # the full message, byte for byte
        assert m[b"INTERNALDATE"].astimezone(UTC) == T0  # type: ignore[union-attr]
        assert b"\\Seen" in m[b"FLAGS"]  # type: ignore[operator]
    # Again, and after the journal is lost: nothing twice.
    for lose_journal in (False, True):
        if lose_journal:
            journal.unlink()
        status, report = migrate(profile, journal, capsys, *extra)
        assert status == 0 and report["uploaded"] == 0, report
    assert sum(len(v) for v in server_messages(dovecot, new).values()) == 8
    status = run(["verify", "--profile", str(profile), "--json"])
    checked = json.loads(capsys.readouterr().out)
    assert status == 0, checked
    assert checked["checked"] == 6 and checked["skipped_partial"] == 2


def test_include_partial_uploads_the_stubs_as_they_are(
    tmp_path: Path, dovecot: DovecotServer, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = dovecot.add_user(), dovecot.add_user()
    tb_profile, _ = profile_with_stubs(tmp_path, dovecot, old)
    profile, _ = write_profile(tmp_path, dovecot, new, tb_profile, kind="thunderbird")
    status, report = migrate(profile, tmp_path / "j.sqlite", capsys, "--include-partial")
    assert status == 0 and report["uploaded"] == 8 and report["partial_messages"] == []
    inbox = subjects(server_messages(dovecot, new)["INBOX"])
    assert b"only its headers were downloaded" in bytes(inbox["big 1"][b"BODY[]"])  # type: ignore[arg-type]


def test_the_report_says_where_the_full_messages_are(
    tmp_path: Path, dovecot: DovecotServer, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = dovecot.add_user(), dovecot.add_user()
    tb_profile, _ = profile_with_stubs(tmp_path, dovecot, old)
    profile, _ = write_profile(tmp_path, dovecot, new, tb_profile, kind="thunderbird")
    journal = tmp_path / "j.sqlite"
    status = run(["migrate", "--profile", str(profile), "--journal", str(journal)])
    text = " ".join(capsys.readouterr().out.split())
    assert status == 0
    assert text.count("partial, not migrated") == 2
    assert "2 messages were downloaded only partly (headers only)" in text
    assert f"pop3s://{old.username}@" in text and "--partial-from-pop3" in text


def test_a_refused_pop3_login_leaves_the_stubs_listed_and_the_run_goes_on(
    tmp_path: Path, dovecot: DovecotServer, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = dovecot.add_user(), dovecot.add_user()
    tb_profile, _ = profile_with_stubs(tmp_path, dovecot, old)
    profile, _ = write_profile(tmp_path, dovecot, new, tb_profile, kind="thunderbird")
    os.environ["MA_TEST_POP3_WRONG"] = "not-the-password"
    extra = ("--partial-from-pop3", "--pop3-password-env", "MA_TEST_POP3_WRONG")
    status, report = migrate(profile, tmp_path / "j.sqlite", capsys, *extra)
    assert status == 0 and report["uploaded"] == 6, report
    notes = [p["note"] for p in report["partial_messages"]]
    assert len(notes) == 2 and all("refused the login" in n for n in notes), notes
    assert "not-the-password" not in json.dumps(report)


def test_the_dry_run_plan_says_the_full_copies_would_be_taken(
    tmp_path: Path, dovecot: DovecotServer, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = dovecot.add_user(), dovecot.add_user()
    tb_profile, _ = profile_with_stubs(tmp_path, dovecot, old)
    profile, _ = write_profile(tmp_path, dovecot, new, tb_profile, kind="thunderbird")
    os.environ["MA_TEST_POP3_PASSWORD"] = old.password
    extra = ("--dry-run", "--partial-from-pop3", "--pop3-password-env", "MA_TEST_POP3_PASSWORD")
    status, report = migrate(profile, tmp_path / "j.sqlite", capsys, *extra)
    assert status == 0, report
    notes = [(p["recovered"], p["note"]) for p in report["partial_messages"]]
    assert notes == [(False, "a real run takes it from its POP3 account")] * 2
    assert sum(len(v) for v in server_messages(dovecot, new).values()) == 0
