"""Each provider plugin's migration rules, against a real Dovecot laid out like that provider.

Outlook: "Sent Items", "Deleted Items", "Junk Email", "Drafts", "Archive" with their
special-use attributes, plus Calendar and Contacts folders that are not mail and
must never receive any. Gmail: the ``[Gmail]/`` tree, where sent mail belongs in
``\\Sent`` and nothing is uploaded into ``[Gmail]/All Mail``. The profiles name
the provider, so the built-in plugin's folder policy and upload rules apply,
while the profile's ``[server]`` table points at the local fixture.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from advisor.cli import run
from tests.harness.dovecot import (
    GMAIL_SPECIAL_USE,
    OUTLOOK_SPECIAL_USE,
    Account,
    DovecotFactory,
    DovecotServer,
)
from tests.harness.mailgen import GeneratedMessage, crlf, generate, write_maildir
from tests.harness.migrate_helpers import server_messages, write_profile


def _migrate(profile: Path, journal: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    status = run(["migrate", "--profile", str(profile), "--journal", str(journal), "--json"])
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert status == 0, report
    assert report["failed"] == 0
    return report


def _open_every_folder(server: DovecotServer, account: Account) -> set[str]:
    """Open each of the provider's folders once, before the migration; returns their names.

    The fixture's folders are ``auto = subscribe``: Dovecot 2.3 creates one on first
    access, and doing that for the first time from several of the migration's parallel
    connections at once can deadlock its list-index locks (a Dovecot panic, seen about
    once in ten runs). A real provider's folders already exist, which this restores.
    """
    return set(server_messages(server, account))


def _bodies(messages: list[dict[bytes, Any]]) -> Counter[bytes]:
    return Counter(m[b"BODY[]"] for m in messages)


def _expect(msgs: list[GeneratedMessage], folder: tuple[str, ...]) -> Counter[bytes]:
    return Counter(crlf(m.data) for m in msgs if m.folder == folder)


def _assert_layout(
    msgs: list[GeneratedMessage],
    on_server: dict[str, list[dict[bytes, Any]]],
    targets: dict[tuple[str, ...], str],
    empty: set[str],
) -> None:
    """Every local folder's messages are in its target exactly once, with their flags;
    the ``empty`` folders got nothing, and no message exists twice on the server."""
    for folder, name in targets.items():
        assert _bodies(on_server[name]) == _expect(msgs, folder), f"{folder} -> {name}"
        want_flags = {crlf(m.data): set(m.flags) for m in msgs if m.folder == folder}
        for got in on_server[name]:
            flags = {f.decode() for f in got[b"FLAGS"]} - {"\\Recent"}
            assert flags == want_flags[got[b"BODY[]"]], name
    for name in empty:
        assert on_server[name] == [], name
    everywhere = Counter(m[b"BODY[]"] for ms in on_server.values() for m in ms)
    assert set(everywhere.values()) == {1}
    assert sum(everywhere.values()) == len(msgs)


OUTLOOK_FOLDERS = [("INBOX",), ("Sent",), ("Trash",), ("Junk",), ("Calendar",), ("Work",)]


def test_outlook_layout(
    tmp_path: Path, dovecot_factory: DovecotFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    server = dovecot_factory(special_use=OUTLOOK_SPECIAL_USE)
    account = server.add_user()
    root = tmp_path / "Maildir"
    msgs = write_maildir(root, list(generate(60, OUTLOOK_FOLDERS, seed=21, sizes="small")))
    flagged = [m for m in msgs if "\\Flagged" in m.flags]
    assert flagged and len(flagged) < len(msgs)  # the seed gives both kinds
    assert any(m.folder == ("Calendar",) for m in msgs)
    assert _open_every_folder(server, account) >= {"Sent Items", "Calendar", "Contacts"}
    profile, _ = write_profile(tmp_path, server, account, root, provider="outlook")

    report = _migrate(profile, tmp_path / "j.sqlite", capsys)
    assert report["uploaded"] == len(msgs)

    on_server = server_messages(server, account)
    _assert_layout(
        msgs,
        on_server,
        {
            ("INBOX",): "INBOX",
            ("Sent",): "Sent Items",
            ("Trash",): "Deleted Items",
            ("Junk",): "Junk Email",
            # A local folder that happens to be called Calendar is mail: it must not
            # land in the server's calendar, which Outlook would not show as mail.
            ("Calendar",): "Calendar (imported)",
            ("Work",): "Work",
        },
        empty={"Calendar", "Contacts", "Drafts", "Archive"},
    )
    # No folder was created under the generic names next to Outlook's own.
    assert not {"Sent", "Trash", "Junk"} & on_server.keys()
    # The flagged ones carry \Flagged on the server (set again with STORE after APPEND).
    assert sum(b"\\Flagged" in m[b"FLAGS"] for ms in on_server.values() for m in ms) == len(flagged)


GMAIL_FOLDERS = [("INBOX",), ("Sent",), ("Trash",), ("Junk",), ("Work",)]


def test_gmail_layout(
    tmp_path: Path, dovecot_factory: DovecotFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    server = dovecot_factory(special_use=GMAIL_SPECIAL_USE)
    account = server.add_user()
    root = tmp_path / "Maildir"
    msgs = write_maildir(root, list(generate(50, GMAIL_FOLDERS, seed=22, sizes="small")))
    assert _open_every_folder(server, account) >= {"[Gmail]/Sent Mail", "[Gmail]/All Mail"}
    profile, _ = write_profile(tmp_path, server, account, root, provider="gmail")

    report = _migrate(profile, tmp_path / "j.sqlite", capsys)
    assert report["uploaded"] == len(msgs)

    on_server = server_messages(server, account)
    _assert_layout(
        msgs,
        on_server,
        {
            ("INBOX",): "INBOX",
            ("Sent",): "[Gmail]/Sent Mail",
            ("Trash",): "[Gmail]/Trash",
            ("Junk",): "[Gmail]/Spam",
            ("Work",): "Work",
        },
        # All Mail would archive the messages without a label: never a target.
        empty={"[Gmail]/All Mail", "[Gmail]/Drafts"},
    )
    assert not {"Sent", "Trash", "Junk"} & on_server.keys()
