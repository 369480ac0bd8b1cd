"""The same-account switch: POP3 left the mail on the server, then ``migrate`` into that account.

Real programs (getmail6, mpop, fetchmail + procmail) download from the suite's Dovecot
over POP3 with leave-on-server; a Thunderbird profile is laid out exactly as its POP3
code writes one (X-Account-Key, X-UIDL and X-Mozilla headers, .msf rows). The user then
moves, flags and deletes mail locally (as mutt or Thunderbird do it on disk), and
``migrate`` into the same account must leave every message once, in the folder the user
chose, with the local flags; a second run changes nothing; verify agrees.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from advisor.cli import run
from advisor.migration import same_account
from advisor.migration.server_index import normalise
from advisor.stores.mbox import iter_mbox
from tests.harness import thunderbird_gen
from tests.harness.dovecot import Account, DovecotServer
from tests.harness.migrate_helpers import connect, server_messages, write_profile
from tests.harness.pop_fetchers import RUNNERS, deliver, pop3_messages, pop3_uidls

COUNT = 12
NO_ID = {3, 7}
"""Messages without a Message-ID: found by content alone."""
NO_FINAL_EOL = 5
"""Stored by Dovecot without a final line break; POP3 (and so the local copy) has one."""
ARCHIVED, FLAGGED, DELETED, READ, ONLY_LOCAL = 2, 3, 4, 1, 11
PURGED = 6
"""Deleted and purged locally (the file is gone): only the program's UIDL file knows."""
UIDL_DELETED = {"getmail6": 1, "fetchmail": 0, "mpop": 0}
"""Purged messages found by UIDL: getmail's oldmail file names the POP3 port; mpop's and
fetchmail's files do not, and nothing listens on 995 here (the pass is skipped, noted)."""


def original(n: int) -> bytes:
    lines = [
        f"From: Sender {n} <s{n}@example.test>",
        "To: user@example.test",
        f"Subject: message {n}",
        "Date: Wed, 01 May 2019 09:30:00 +0000",
    ]
    if n not in NO_ID:
        lines.append(f"Message-ID: <same-{n}@example.test>")
    body = f"Hello {n}.\r\nFrom the start of a line.\r\n\r\nBye.".encode()
    data = "\r\n".join(lines).encode() + b"\r\n\r\n" + body
    return data if n == NO_FINAL_EOL else data + b"\r\n"


def migrate(profile: Path, journal: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> dict:
    status = run(
        ["migrate", "--profile", str(profile), "--journal", str(journal), "--json", *extra]
    )
    report = json.loads(capsys.readouterr().out)
    assert status == 0, report
    return report


def verify(profile: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> dict:
    status = run(["verify", "--profile", str(profile), "--json", *extra])
    report = json.loads(capsys.readouterr().out)
    assert status == 0, report
    return report


def number_of(body: bytes) -> int:
    match = re.search(rb"^Subject: message (\d+)", body, re.M)
    assert match, body[:200]
    return int(match.group(1))


def by_folder(server: DovecotServer, account: Account) -> dict[str, dict[int, set[str]]]:
    """Folder -> message number -> flags; fails on a message stored twice anywhere."""
    out: dict[str, dict[int, set[str]]] = {}
    seen: Counter[int] = Counter()
    for name, messages in server_messages(server, account).items():
        for m in messages:
            n = number_of(bytes(m[b"BODY[]"]))  # type: ignore[arg-type]
            seen[n] += 1
            flags = {f.decode() for f in m[b"FLAGS"]} - {"\\Recent"}  # type: ignore[attr-defined]
            out.setdefault(name, {})[n] = flags
    assert all(count == 1 for count in seen.values()), seen
    return out


def _maildir_files(maildir: Path) -> dict[int, Path]:
    return {number_of(p.read_bytes()): p for p in (maildir / "new").iterdir()}


def act_like_mutt(maildir: Path) -> None:
    """What a user does in mutt: read one, archive one, flag one, delete one (not purged)."""
    files = _maildir_files(maildir)
    cur = maildir / "cur"
    files[READ].rename(cur / (files[READ].name + ":2,S"))
    files[FLAGGED].rename(cur / (files[FLAGGED].name + ":2,FS"))
    files[DELETED].rename(cur / (files[DELETED].name + ":2,ST"))
    archive = maildir / ".Archive"
    for sub in ("cur", "new", "tmp"):
        (archive / sub).mkdir(parents=True)
    files[ARCHIVED].rename(archive / "cur" / (files[ARCHIVED].name + ":2,S"))
    files[PURGED].unlink()


def expunge_on_server(server: DovecotServer, account: Account, n: int) -> None:
    """The server lost one message the program had downloaded: it exists only locally."""
    with connect(server, account) as client:
        client.select_folder("INBOX")
        uids = client.search(["SUBJECT", f"message {n}"])
        client.delete_messages(uids)
        client.expunge()


@pytest.mark.parametrize("program", sorted(RUNNERS))
def test_fetched_with_leave_on_server_then_migrated_into_the_same_account(
    program: str,
    tmp_path: Path,
    dovecot: DovecotServer,
    imap_account: Account,
    capsys: pytest.CaptureFixture[str],
) -> None:
    deliver(dovecot, imap_account, [original(n) for n in range(COUNT)])
    work = tmp_path / program
    work.mkdir()
    store = RUNNERS[program](dovecot, imap_account, work)
    kind = "mbox" if store.is_file() else "maildir"
    if kind == "maildir":
        act_like_mutt(store)
    expunge_on_server(dovecot, imap_account, ONLY_LOCAL)
    profile, _ = write_profile(tmp_path, dovecot, imap_account, store, kind=kind)
    journal = tmp_path / "j.sqlite"

    plan = migrate(profile, journal, capsys, "--dry-run")
    assert plan["same_account"] is not None, plan
    live = COUNT - (2 if kind == "maildir" else 0)  # the deleted ones are left out
    assert plan["same_account"]["matched"] == live - 1
    assert sum(f["to_upload"] for f in plan["folders"]) == 1  # only the local-only one

    report = migrate(profile, journal, capsys)
    same = report["same_account"]
    assert report["uploaded"] == 1 and report["failed"] == 0, report
    assert report["verified"] is True, report
    assert same["matched"] == live - 1
    on_server = by_folder(dovecot, imap_account)
    inbox = on_server["INBOX"]
    assert set(inbox) | set(on_server.get("Archive", {})) == set(range(COUNT))
    if kind == "maildir":
        assert same["moved"] == 1 and set(on_server["Archive"]) == {ARCHIVED}
        assert on_server["Archive"][ARCHIVED] == {"\\Seen"}
        assert inbox[READ] == {"\\Seen"} and inbox[FLAGGED] == {"\\Flagged", "\\Seen"}
        # Deleted locally, still on the server: reported, left alone unless asked.
        assert same["deleted_on_server"] == 1 + UIDL_DELETED[program]
        assert DELETED in inbox and PURGED in inbox
        unread = set(range(COUNT)) - {READ, FLAGGED, ARCHIVED, DELETED, PURGED}
    else:
        unread = set(range(COUNT))  # mbox without Status: headers: nothing read
    assert {n: inbox[n] for n in unread if inbox.get(n)} == {}
    # The only upload is the local copy, byte for byte, with the program's trace lines.
    stored = {
        number_of(bytes(m[b"BODY[]"])): bytes(m[b"BODY[]"])
        for m in server_messages(dovecot, imap_account)["INBOX"]
    }  # type: ignore[arg-type]
    assert b"with POP3" in stored[ONLY_LOCAL].split(b"\r\n\r\n", 1)[0]
    assert b"with POP3" not in stored[0]  # the server's original stays as it was sent

    again = migrate(profile, journal, capsys)
    assert again["uploaded"] == 0 and again["already_done"] == live
    assert by_folder(dovecot, imap_account) == on_server
    # A lost journal: the server alone shows what is there.
    fresh = migrate(profile, tmp_path / "lost.sqlite", capsys)
    assert fresh["uploaded"] == 0 and fresh["found_on_server"] == live
    assert by_folder(dovecot, imap_account) == on_server

    checked = verify(profile, capsys)
    assert checked["missing"] == [] and checked["doubled"] == []
    content = verify(profile, capsys, "--content")
    assert content["missing"] == [] and content["doubled"] == [] and content["altered"] == []

    if kind == "maildir":
        trashed = migrate(profile, tmp_path / "trash.sqlite", capsys, "--trash-deleted")
        assert trashed["same_account"]["trashed"] == 1 + UIDL_DELETED[program]
        after = by_folder(dovecot, imap_account)
        assert DELETED not in after["INBOX"] and DELETED in after["Trash"]
        assert (PURGED in after["Trash"]) == bool(UIDL_DELETED[program])


# --- Thunderbird ---------------------------------------------------------------------------


TB_PREFS = """// Mozilla User Preferences
user_pref("mail.account.account1.server", "server1");
user_pref("mail.account.account2.server", "server2");
user_pref("mail.accountmanager.accounts", "account2,account1");
user_pref("mail.server.server1.directory-rel", "[ProfD]Mail/Local Folders");
user_pref("mail.server.server1.hostname", "Local Folders");
user_pref("mail.server.server1.type", "none");
user_pref("mail.server.server2.directory-rel", "[ProfD]Mail/{host}");
user_pref("mail.server.server2.hostname", "{host}");
user_pref("mail.server.server2.leave_on_server", true);
user_pref("mail.server.server2.port", {port});
user_pref("mail.server.server2.type", "pop3");
user_pref("mail.server.server2.userName", "{user}");
"""


def _edit_on_disk(server: DovecotServer, account: Account, old: bytes, new: bytes) -> None:
    """Change a stored message in place, as a server-side filter or repair might."""
    [path] = [
        p for p in server.maildir_of(account).rglob("*") if p.is_file() and old in p.read_bytes()
    ]
    path.write_bytes(path.read_bytes().replace(old, new))


def thunderbird_copy(data: bytes, uidl: str, status: int) -> bytes:
    """A POP3 download as Thunderbird stores it: its five headers first, native line ends."""
    head = (
        f"X-Account-Key: account2\nX-UIDL: {uidl}\nX-Mozilla-Status: {status:04x}\n"
        f"X-Mozilla-Status2: 00000000\nX-Mozilla-Keys: {' ' * 80}\n"
    ).encode()
    lf = data.replace(b"\r\n", b"\n")
    return head + lf


def write_tb_folder(path: Path, messages: list[tuple[bytes, int]]) -> None:
    data = thunderbird_gen.mboxrd([m for m, _ in messages])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    rows = [
        thunderbird_gen.Row(start, flags=status)
        for (_, status), start in zip(messages, thunderbird_gen.offsets(data), strict=True)
        if not status & 0x0008
    ]
    path.with_name(path.name + ".msf").write_bytes(thunderbird_gen.msf(rows, folder_size=len(data)))


def test_thunderbird_pop3_account_into_the_same_account(
    tmp_path: Path,
    dovecot: DovecotServer,
    imap_account: Account,
    capsys: pytest.CaptureFixture[str],
) -> None:
    deliver(dovecot, imap_account, [original(n) for n in range(COUNT)])
    downloaded = pop3_messages(dovecot, imap_account)  # what Thunderbird's POP3 got
    uidls = pop3_uidls(dovecot, imap_account)
    info = dovecot.info
    profile_dir = tmp_path / "tb" / "abcd.default-release"
    account_dir = profile_dir / "Mail" / info.hostname
    (profile_dir / "Mail" / "Local Folders").mkdir(parents=True)
    (profile_dir / "prefs.js").write_text(
        TB_PREFS.format(host=info.hostname, port=info.pop3s_port, user=imap_account.username)
    )
    (account_dir).mkdir(parents=True)
    (account_dir / "popstate.dat").write_text(
        "# POP3 State File\n# This is a generated file!  Do not edit.\n\n"
        f"*{info.hostname} {imap_account.username}\n"
        + "".join(f"k {u} 1700000000\n" for u in uidls)
    )
    inbox, archived = [], []
    for n, (data, uidl) in enumerate(zip(downloaded, uidls, strict=True)):
        status = {READ: 0x0001, FLAGGED: 0x0005, DELETED: 0x0009, ARCHIVED: 0x0001}.get(n, 0)
        copy = thunderbird_copy(data, uidl, status)
        if n != PURGED:  # deleted and compacted away: only popstate.dat remembers it
            (archived if n == ARCHIVED else inbox).append((copy, status))
    write_tb_folder(account_dir / "Inbox", inbox)
    write_tb_folder(account_dir / "Archives", archived)
    expunge_on_server(dovecot, imap_account, ONLY_LOCAL)
    # Changed on the server since the download (same size): only X-UIDL still says it is
    # the same message.
    _edit_on_disk(dovecot, imap_account, b"Hello 8.", b"Hallo 8.")
    profile, _ = write_profile(tmp_path, dovecot, imap_account, profile_dir, kind="thunderbird")
    journal = tmp_path / "j.sqlite"

    # Said up front, in the words the wizard shows too (the same report and renderer).
    assert run(["migrate", "--profile", str(profile), "--journal", str(journal), "--dry-run"]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "Your Thunderbird downloaded this mail from this account" in said, said
    assert (
        f"{COUNT - 3} messages are still on the server: they will be matched, not uploaded" in said
    )
    assert "2 messages you deleted in Thunderbird are still in the server's INBOX" in said
    plan = migrate(profile, journal, capsys, "--dry-run")
    assert plan["same_account"]["program"] == "Thunderbird"
    assert plan["same_account"]["matched"] == COUNT - 3 and plan["same_account"]["to_move"] == 1
    assert plan["same_account"]["deleted_on_server"] == 2

    report = migrate(profile, journal, capsys)
    assert report["uploaded"] == 1 and report["verified"] is True
    assert report["same_account"]["moved"] == 1
    assert report["same_account"]["deleted_on_server"] == 2  # one by .msf, one by popstate
    on_server = by_folder(dovecot, imap_account)
    assert on_server["Archive"] == {ARCHIVED: {"\\Seen"}}
    assert on_server["INBOX"][FLAGGED] == {"\\Seen", "\\Flagged"}
    assert on_server["INBOX"][READ] == {"\\Seen"} and on_server["INBOX"][0] == set()
    assert DELETED in on_server["INBOX"]  # reported, not touched

    again = migrate(profile, journal, capsys)
    assert again["uploaded"] == 0 and by_folder(dovecot, imap_account) == on_server
    assert PURGED in on_server["INBOX"] and 8 in on_server["INBOX"]
    checked = verify(profile, capsys, "--content")
    assert checked["missing"] == [] and checked["doubled"] == []
    assert [a["subject"] for a in checked["altered"]] == ["message 8"]  # changed on the server


# --- the identity itself, per program ------------------------------------------------------


def test_each_program_downloads_the_same_normalised_message(
    tmp_path: Path, dovecot: DovecotServer, imap_account: Account
) -> None:
    """Every real program's copy normalises to the server's own bytes, whatever it added."""
    deliver(dovecot, imap_account, [original(n) for n in range(4)] + [original(NO_FINAL_EOL)])
    on_server = [bytes(m[b"BODY[]"]) for m in server_messages(dovecot, imap_account)["INBOX"]]  # type: ignore[arg-type]
    want = Counter(normalise(m) for m in on_server)
    for program, runner in sorted(RUNNERS.items()):
        work = tmp_path / program
        work.mkdir()
        store = runner(dovecot, imap_account, work)
        if store.is_file():
            copies = [e.data for e in iter_mbox(store, parallel=False)]
        else:
            copies = [p.read_bytes() for p in sorted((store / "new").iterdir())]
        assert all(c not in on_server for c in copies), program  # it did add lines
        assert Counter(normalise(c) for c in copies) == want, program


def test_move_without_the_move_extension_expunges_exactly_those(
    dovecot: DovecotServer, imap_account: Account
) -> None:
    """COPY + STORE \\Deleted + UID EXPUNGE: another message marked \\Deleted stays."""
    deliver(dovecot, imap_account, [original(n) for n in range(3)])
    with connect(dovecot, imap_account) as client:
        client.select_folder("INBOX")
        uids = sorted(client.search("ALL"))
        client.add_flags([uids[2]], ["\\Deleted"])  # someone else's pending deletion
        refused = same_account._move(client, uids[:1], "Archive", frozenset())
        assert refused is not None and "neither MOVE nor UIDPLUS" in refused
        assert same_account._move(client, uids[:2], "Archive", frozenset({"UIDPLUS"})) is None
        assert sorted(client.search("ALL")) == [uids[2]]
    on_server = by_folder(dovecot, imap_account)
    assert set(on_server["Archive"]) == {0, 1} and set(on_server["INBOX"]) == {2}
    assert all("\\Deleted" not in flags for flags in on_server["Archive"].values())
