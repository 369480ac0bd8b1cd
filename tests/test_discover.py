"""Finding installed clients' stores in fake Linux, macOS and Windows home trees.

The homes hold real stores (written by tests/harness/scan_builders.py) where each client keeps
them, so discovery is checked together with the readers that confirm each kind.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from advisor.cli import run
from advisor.exitcodes import ExitStatus
from advisor.profile import SourceKind
from advisor.stores.discover import DiscoveredStore, discover_stores
from tests.harness.scan_builders import (
    MaildirMessage,
    TbMessage,
    copy_pst,
    make_maildir,
    message,
    snapshot,
    utc,
    write_apple_mail,
    write_eml_tree,
    write_maildir,
    write_mbox,
    write_mh,
    write_thunderbird_profile,
)

WHEN = utc(2021, 6, 1)


def _tb(root: Path, name: str = "default-release") -> Path:
    profile = write_thunderbird_profile(
        root, {("Inbox",): [TbMessage(message("tb", WHEN), WHEN)]}, name
    )
    return profile.profile


def _maildir(path: Path) -> Path:
    return write_maildir(path, [MaildirMessage((), message("md", WHEN), WHEN, "S")])


def _mbox(path: Path) -> Path:
    return write_mbox(path, [(WHEN, message("mbox", WHEN))])


def _found(home: Path, **kwargs: object) -> list[tuple[str, SourceKind, str]]:
    """(client, kind, path relative to home) of everything discovered."""
    found = discover_stores(home, **kwargs)  # type: ignore[arg-type]
    return [(s.client, s.kind, _rel(s.path, home)) for s in found.stores]


def _rel(path: Path, home: Path) -> str:
    try:
        return path.relative_to(home).as_posix()
    except ValueError:
        return str(path)


def test_linux_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    spool = tmp_path / "var-mail"
    tb = _tb(home / ".thunderbird")
    snap = _tb(home / "snap/thunderbird/common/.thunderbird", "snap-profile")
    _maildir(home / ".local/share/evolution/mail/local")
    _mbox(home / ".evolution/mail/local/Inbox")  # Evolution 2: mbox files
    kmail = home / ".local/share/local-mail"
    _maildir(kmail / "inbox")
    make_maildir(kmail / "sent-mail")
    write_mh(home / "Mail" / "inbox", {1: message("mh", WHEN)}, "unseen: 1\n")
    _mbox(home / "mbox")
    _mbox(spool / "jo")
    (home / "Maildir").mkdir()  # empty: nothing to report

    found = discover_stores(home, platform="linux", user="jo", spool_dirs=[spool])
    assert [(s.client, s.kind, _rel(s.path, home)) for s in found.stores] == [
        ("Thunderbird", SourceKind.THUNDERBIRD, _rel(tb, home)),
        ("Thunderbird", SourceKind.THUNDERBIRD, _rel(snap, home)),
        ("Evolution", SourceKind.MAILDIR, ".local/share/evolution/mail/local"),
        ("Evolution", SourceKind.MBOX, ".evolution/mail/local"),
        ("KMail", SourceKind.MAILDIR, ".local/share/local-mail"),
        ("mutt/Claws Mail/Sylpheed", SourceKind.MH, "Mail"),
        ("mutt", SourceKind.MBOX, "mbox"),
        ("system mailbox", SourceKind.MBOX, str(spool / "jo")),
    ]
    assert found.warnings == []
    reasons = {s.path: s.reason for s in found.stores}
    assert reasons[tb] == "Thunderbird profile 'default-release', the default one"
    assert reasons[snap] == "Thunderbird (snap) profile 'snap-profile', the default one"
    assert reasons[spool / "jo"] == "where this machine delivers jo's new mail"


def test_macos_home(tmp_path: Path) -> None:
    home = tmp_path
    tb = _tb(home / "Library/Thunderbird")
    v10 = write_apple_mail(home, 10, {"INBOX": [message("a", WHEN)], "Sent": [message("b", WHEN)]})
    v9 = write_apple_mail(home, 9, {"INBOX": [message("c", WHEN)]})
    (home / "Library/Mail/V10/MailData").mkdir(exist_ok=True)
    account10 = next(p for p in v10.iterdir() if p.name != "MailData")
    account9 = next(p for p in v9.iterdir() if p.name != "MailData")

    found = discover_stores(home, platform="darwin", spool_dirs=())
    assert [(s.client, s.kind, s.path) for s in found.stores] == [
        ("Thunderbird", SourceKind.THUNDERBIRD, tb),
        ("Apple Mail", SourceKind.EMLX, account10),
        ("Apple Mail", SourceKind.EMLX, account9),
    ]
    assert "data version 10" in found.stores[1].reason
    assert "older version" in found.stores[2].reason
    # Linux places are not where a Mac keeps Thunderbird.
    assert discover_stores(home, platform="linux", spool_dirs=()).stores[0].client == "Apple Mail"


def test_windows_home(tmp_path: Path) -> None:
    home = tmp_path
    tb = _tb(home / "AppData/Roaming/Thunderbird")
    outlook = copy_pst(home / "Documents/Outlook Files/Outlook.pst")
    archive = copy_pst(home / "AppData/Local/Microsoft/Outlook/Archive.PST")
    (home / "AppData/Local/Microsoft/Outlook/Outlook.ost").write_bytes(b"not ours")
    (home / "Documents/Outlook Files/notes.txt").write_text("not mail")
    wlm = write_eml_tree(
        home / "AppData/Local/Microsoft/Windows Live Mail",
        {"Storage Folders/Inbox/a.eml": message("wlm", WHEN)},
    )

    found = discover_stores(home, platform="win32", spool_dirs=())
    assert [(s.client, s.kind, s.path) for s in found.stores] == [
        ("Thunderbird", SourceKind.THUNDERBIRD, tb),
        ("Outlook", SourceKind.PST, outlook),
        ("Outlook", SourceKind.PST, archive),
        ("Windows Live Mail", SourceKind.EML, wlm),
    ]
    assert found.stores[1].reason == "Outlook data file in Documents\\Outlook Files"


def test_claws_sylpheed_and_nmh_say_where_their_mail_is(tmp_path: Path) -> None:
    home = tmp_path
    write_mh(home / "ClawsMail" / "inbox", {1: message("claws", WHEN)})
    (home / ".claws-mail").mkdir()
    (home / ".claws-mail/folderlist.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<folderlist>\n'
        '<folder type="mh" name="Mailbox" path="ClawsMail" sort="0">'
        '<folderitem type="inbox" name="inbox" path="inbox"/></folder>\n'
        '<folder type="news" name="news" path="News"/>\n</folderlist>\n'
    )
    write_mh(home / "Sylpheed", {3: message("sylpheed", WHEN)})
    (home / ".sylpheed-2.0").mkdir()
    (home / ".sylpheed-2.0/folderlist.xml").write_text(
        f'<folderlist><folder type="mh" name="Mail" path="{home / "Sylpheed"}"/></folderlist>'
    )
    write_mh(home / "nmh-mail" / "inbox", {1: message("nmh", WHEN)}, "unseen: 1\n")
    (home / ".mh_profile").write_text("Path: nmh-mail\nEditor: vi\n")

    found = discover_stores(home, platform="linux", spool_dirs=())
    assert [(s.client, s.kind, _rel(s.path, home)) for s in found.stores] == [
        ("Claws Mail", SourceKind.MH, "ClawsMail"),
        ("Sylpheed", SourceKind.MH, "Sylpheed"),
        ("nmh", SourceKind.MH, "nmh-mail"),
    ]
    assert (
        found.stores[0].reason == "Claws Mail mailbox 'Mailbox' (from .claws-mail/folderlist.xml)"
    )


def test_mutt_mail_folder_kind_is_what_is_there(tmp_path: Path) -> None:
    home = tmp_path
    _mbox(home / "Mail" / "saved-messages")  # mutt's ~/Mail full of mbox files
    _maildir(home / "mail")  # a Maildir at ~/mail
    found = discover_stores(home, platform="linux", spool_dirs=())
    assert [(s.kind, _rel(s.path, home)) for s in found.stores] == [
        (SourceKind.MBOX, "Mail"),
        (SourceKind.MAILDIR, "mail"),
    ]


def test_unrecognised_places_are_warnings_not_stores(tmp_path: Path) -> None:
    home = tmp_path
    (home / "Mail").mkdir()
    (home / "Mail" / "README").write_text("my notes, not mail\n")
    (home / ".local/share/evolution/mail/local").mkdir(parents=True)  # empty: silent
    (home / ".thunderbird").mkdir()
    (home / ".thunderbird/profiles.ini").write_text(
        "[Profile0]\nName=gone\nIsRelative=0\nPath=/media/usb/thunderbird-profile\n"
    )
    found = discover_stores(home, platform="linux", spool_dirs=())
    assert found.stores == []
    assert len(found.warnings) == 2
    assert (
        "profile 'gone' at /media/usb/thunderbird-profile, but it is not there" in found.warnings[0]
    )
    assert found.warnings[1] == (
        "~/Mail (the usual ~/Mail folder) holds no mail store mailadvisor recognises; "
        "scan it with --kind if you know what it is"
    )


def test_each_store_is_listed_once(tmp_path: Path) -> None:
    home = tmp_path
    local = _maildir(home / ".local/share/evolution/mail/local")
    (home / "Maildir").symlink_to(local)  # the same Maildir under two names
    found = discover_stores(home, platform="linux", spool_dirs=())
    assert found.stores == [
        DiscoveredStore(
            SourceKind.MAILDIR, local, "Evolution", "Evolution's local folders (Maildir)"
        )
    ]


def test_empty_home_finds_nothing(tmp_path: Path) -> None:
    for platform in ("linux", "darwin", "win32"):
        found = discover_stores(tmp_path, platform=platform, spool_dirs=())
        assert (found.stores, found.warnings) == ([], [])


# --- the command without PATH ---------------------------------------------------------------


def _fake_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


def _in_home(report: dict[str, object], home: Path) -> list[dict[str, object]]:
    """The stores below the fake home (the machine's own /var/mail may add one)."""
    stores = report["stores"]
    assert isinstance(stores, list)
    return [s for s in stores if str(s["path"]).startswith(str(home))]


def test_scan_without_path_scans_what_discovery_finds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = _fake_home(tmp_path, monkeypatch)
    _tb(home / ".thunderbird")
    _maildir(home / ".local/share/local-mail")
    (home / "Mail").mkdir()
    (home / "Mail" / "README").write_text("not mail\n")
    before = snapshot(home)

    assert run(["scan", "--json"]) == ExitStatus.OK
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    stores = _in_home(report, home)
    assert [(s["client"], s["kind"], s["scan"]["totals"]["messages"]) for s in stores] == [
        ("Thunderbird", "thunderbird", 1),
        ("KMail", "maildir", 1),
    ]
    assert report["home"] == str(home)
    assert any("~/Mail" in w for w in report["warnings"])
    assert "warning: ~/Mail" in captured.err

    assert run(["scan"]) == ExitStatus.OK
    out = capsys.readouterr().out
    assert "(Thunderbird profile 'default-release', the default one)" in out
    assert "(KMail's local folders (Maildir))" in out

    assert run(["scan", "--json", "--kind", "maildir"]) == ExitStatus.OK
    kinds = {s["kind"] for s in json.loads(capsys.readouterr().out)["stores"]}
    assert kinds == {"maildir"}
    assert snapshot(home) == before  # discovery and scanning wrote nothing


def test_scan_without_path_reports_a_store_it_cannot_read_and_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = _fake_home(tmp_path, monkeypatch)
    profile = _tb(home / ".thunderbird")
    (profile / "lock").symlink_to(f"127.0.0.1:+{os.getpid()}")  # Thunderbird is running
    _maildir(home / ".local/share/local-mail")

    assert run(["scan", "--json"]) == ExitStatus.INCOMPLETE
    captured = capsys.readouterr()
    stores = _in_home(json.loads(captured.out), home)
    assert stores[0]["scan"] is None and "Thunderbird is using this profile" in stores[0]["error"]
    assert stores[1]["scan"]["totals"]["messages"] == 1
    assert f"warning: {profile} was not scanned" in captured.err

    assert run(["scan"]) == ExitStatus.INCOMPLETE
    assert "not scanned: Thunderbird is using this profile" in capsys.readouterr().out
    assert run(["scan", "--ignore-lock", "--kind", "thunderbird"]) == ExitStatus.OK


def test_scan_without_path_on_an_empty_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = _fake_home(tmp_path, monkeypatch)
    assert run(["scan", "--kind", "thunderbird"]) == ExitStatus.OK
    out = capsys.readouterr().out
    assert out.strip() == (
        f"No thunderbird mail stores of installed mail programs were found in {home}. "
        "Give the path of one: mailadvisor scan PATH"
    )
