"""Discovery on Windows- and macOS-shaped machines, checked on this Linux machine.

Two halves: the Windows known folders as pure Windows paths (drive letters, UNC shares,
backslashes, non-ASCII user names), and whole Windows/macOS homes written to disk with
their environment (APPDATA, LOCALAPPDATA, USERPROFILE, OneDrive) pointing into them, so
discovery and the readers that confirm each store run for real.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import pytest

from advisor.profile import SourceKind
from advisor.stores.discover import discover_stores
from advisor.stores.thunderbird import ThunderbirdReader
from advisor.stores.windows_places import host_path, pst_path_from_registry, windows_folders
from tests.harness.scan_builders import (
    TbMessage,
    copy_pst,
    message,
    utc,
    write_apple_mail,
    write_eml_tree,
    write_thunderbird_profile,
)

WHEN = utc(2022, 3, 4)
W = PureWindowsPath


def test_known_folders_from_a_redirected_windows_environment() -> None:
    environ = {
        "USERPROFILE": r"C:\Users\Zoë Łukasiewicz",
        "APPDATA": r"\\fileserver\profiles$\Zoë Łukasiewicz\AppData\Roaming",  # redirected
        "LOCALAPPDATA": r"D:\Local\Zoë",
        "OneDrive": r"C:\Users\Zoë Łukasiewicz\OneDrive - Contoso",
    }
    folders = windows_folders(PurePosixPath("/ignored"), environ)
    assert folders.thunderbird() == W(
        r"\\fileserver\profiles$\Zoë Łukasiewicz\AppData\Roaming\Thunderbird"
    )
    assert folders.thunderbird().drive == r"\\fileserver\profiles$"
    assert [(str(p), shown) for p, shown in folders.outlook()] == [
        (
            r"C:\Users\Zoë Łukasiewicz\OneDrive - Contoso\Documents\Outlook Files",
            r"OneDrive - Contoso\Documents\Outlook Files",
        ),
        (r"C:\Users\Zoë Łukasiewicz\Documents\Outlook Files", r"Documents\Outlook Files"),
        (r"C:\Users\Zoë Łukasiewicz\My Documents\Outlook Files", r"My Documents\Outlook Files"),
        (r"D:\Local\Zoë\Microsoft\Outlook", r"%LOCALAPPDATA%\Microsoft\Outlook"),
        (
            r"\\fileserver\profiles$\Zoë Łukasiewicz\AppData\Roaming\Microsoft\Outlook",
            r"%APPDATA%\Microsoft\Outlook",
        ),
        (
            r"C:\Users\Zoë Łukasiewicz\Local Settings\Application Data\Microsoft\Outlook",
            r"Local Settings\Application Data\Microsoft\Outlook (Windows XP)",
        ),
    ]
    assert folders.windows_live_mail() == W(r"D:\Local\Zoë\Microsoft\Windows Live Mail")
    assert folders.windows_mail() == W(r"D:\Local\Zoë\Microsoft\Windows Mail\Local Folders")
    # A real Windows path is not a path on this machine: listing it finds nothing.
    assert host_path(W(r"C:\Users\Zoë\x.pst")) == Path("C:/Users/Zoë/x.pst")


def test_known_folders_default_below_the_home_and_ignore_broken_values() -> None:
    folders = windows_folders(
        W(r"C:\Users\Bob"), {"APPDATA": "relative\\nonsense", "LOCALAPPDATA": " ", "OneDrive": ""}
    )
    assert folders.appdata == W(r"C:\Users\Bob\AppData\Roaming")
    assert folders.localappdata == W(r"C:\Users\Bob\AppData\Local")
    assert folders.documents == (W(r"C:\Users\Bob\Documents"), W(r"C:\Users\Bob\My Documents"))
    # Windows paths compare without regard to case: the same folder is listed once.
    shouting = windows_folders(W("c:/users/bob"), {"OneDrive": r"C:\USERS\BOB"})
    assert shouting.documents == (W(r"C:\USERS\BOB\Documents"), W(r"C:\USERS\BOB\My Documents"))


def test_pst_paths_from_outlook_profile_registry_values() -> None:
    value = "E:\\Mail\\Ärchiv 2019.pst\0".encode("utf-16-le")
    assert pst_path_from_registry(value) == W(r"E:\Mail\Ärchiv 2019.pst")
    unc = r"\\nas\mail\zoë\outlook.pst"
    assert pst_path_from_registry(unc.encode("utf-16-le") + b"\0\0") == W(unc)
    assert pst_path_from_registry("relative.pst") is None
    assert pst_path_from_registry(b"\xff\xfe\x00") is None  # not UTF-16 text
    assert pst_path_from_registry("C:\\notes.txt") is None


def _windows_tb_profile(data_dir: Path) -> Path:
    """Thunderbird's Windows layout: profiles.ini beside Profiles\\<salt>.<name>\\."""
    profile = write_thunderbird_profile(
        data_dir / "Profiles", {("Inbox",): [TbMessage(message("tb", WHEN), WHEN)]}
    ).profile
    (data_dir / "Profiles" / "profiles.ini").unlink()
    data_dir.joinpath("profiles.ini").write_text(
        "[Install6F193CCC56814779]\r\nDefault=Profiles/abcd1234.default-release\r\nLocked=1\r\n"
        "\r\n[Profile0]\r\nName=default-release\r\nIsRelative=1\r\n"
        "Path=Profiles/abcd1234.default-release\r\n\r\n[General]\r\nStartWithLastProfile=1\r\n",
        encoding="utf-8",
    )
    return profile


def test_windows_machine_with_redirected_known_folders(tmp_path: Path) -> None:
    # C:\Users\Zoë Łukasiewicz with AppData\Roaming on a "share" and LOCALAPPDATA on "D:".
    home = tmp_path / "C" / "Users" / "Zoë Łukasiewicz"
    home.mkdir(parents=True)
    roaming = tmp_path / "fileserver" / "profiles$" / "Zoë Łukasiewicz" / "AppData" / "Roaming"
    local = tmp_path / "D" / "Local" / "Zoë"
    onedrive = home / "OneDrive - Contoso"
    environ = {
        "USERPROFILE": str(home),
        "APPDATA": str(roaming),
        "LOCALAPPDATA": str(local),
        "OneDrive": str(onedrive),
    }
    tb = _windows_tb_profile(roaming / "Thunderbird")
    store_tb = _windows_tb_profile(
        local / "Packages/MozillaThunderbird.MZLA_h5892qc0xkpca/LocalCache/Roaming/Thunderbird"
    )
    pst = copy_pst(onedrive / "Documents" / "Outlook Files" / "zoë@example.org.pst")
    old_pst = copy_pst(local / "Microsoft" / "Outlook" / "Archive.PST")
    named = copy_pst(tmp_path / "E" / "Mail" / "Ärchiv 2019.pst")
    wlm = write_eml_tree(
        local / "Microsoft" / "Windows Live Mail",
        {"Storage Folders/Inbox/a.eml": message("wlm", WHEN)},
    )
    vista = write_eml_tree(
        local / "Microsoft" / "Windows Mail" / "Local Folders",
        {"Inbox/b.eml": message("vista", WHEN)},
    )
    oe = local / "Identities" / "{9B2A3C4D-0000-4000-8000-00000000000A}"
    (oe / "Microsoft" / "Outlook Express").mkdir(parents=True)
    (oe / "Microsoft" / "Outlook Express" / "Inbox.dbx").write_bytes(b"\xcf\xad\x12\xfe")
    registry = [str(named).encode("utf-16-le") + b"\0\0", str(pst)]  # named twice: once

    found = discover_stores(
        home, platform="win32", spool_dirs=(), environ=environ, outlook_registry=registry
    )
    assert [(s.client, s.kind, s.path) for s in found.stores] == [
        ("Thunderbird", SourceKind.THUNDERBIRD, tb),
        ("Thunderbird", SourceKind.THUNDERBIRD, store_tb),
        ("Outlook", SourceKind.PST, named),
        ("Outlook", SourceKind.PST, pst),
        ("Outlook", SourceKind.PST, old_pst),
        ("Windows Live Mail", SourceKind.EML, wlm),
        ("Windows Mail", SourceKind.EML, vista),
    ]
    reasons = [s.reason for s in found.stores]
    assert reasons[0] == "Thunderbird profile 'default-release', the default one"
    assert reasons[1] == "Thunderbird (Microsoft Store) profile 'default-release', the default one"
    assert reasons[2] == "named in Outlook's profile"
    assert reasons[4] == r"Outlook data file in %LOCALAPPDATA%\Microsoft\Outlook"
    assert [w for w in found.warnings if "Outlook Express" in w] == [
        f"Outlook Express mail in {oe / 'Microsoft' / 'Outlook Express'} (.dbx files) cannot "
        "be read by mailadvisor: import it into Windows Live Mail or Thunderbird, then scan that"
    ]
    # The Thunderbird profile found through %APPDATA% reads like any other.
    messages = list(ThunderbirdReader(tb).messages())
    assert [m.folder for m in messages] == [("Local Folders", "Inbox")]
    # Without that environment only the home's own (empty) AppData is looked at.
    assert discover_stores(home, platform="win32", spool_dirs=()).stores == []


def test_macos_machine(tmp_path: Path) -> None:
    home = tmp_path / "Users" / "zoë"
    profile = write_thunderbird_profile(
        home / "Library/Thunderbird/Profiles",
        {("Inbox",): [TbMessage(message("tb", WHEN), WHEN)]},
    ).profile
    (home / "Library/Thunderbird/Profiles/profiles.ini").rename(
        home / "Library/Thunderbird/profiles.ini"
    )
    ini = home / "Library/Thunderbird/profiles.ini"
    ini.write_text(ini.read_text().replace("Path=", "Path=Profiles/"))
    v10 = write_apple_mail(home, 10, {"INBOX": [message("new", WHEN)]})
    v2 = write_apple_mail(home, 2, {"INBOX": [message("old", WHEN)]})
    # Windows' folders are not looked for on a Mac, even if such variables were set.
    write_eml_tree(home / "elsewhere/Microsoft/Windows Live Mail", {"a.eml": message("x", WHEN)})
    found = discover_stores(
        home, platform="darwin", spool_dirs=(), environ={"LOCALAPPDATA": str(home / "elsewhere")}
    )
    account = "5B1C2A3E-0000-4000-8000-000000000001"
    assert [(s.client, s.kind, s.path) for s in found.stores] == [
        ("Thunderbird", SourceKind.THUNDERBIRD, profile),
        ("Apple Mail", SourceKind.EMLX, v10 / account),
        ("Apple Mail", SourceKind.EMLX, v2 / account),
    ]
    assert "data version 2 (an older version Mail left behind)" in found.stores[2].reason


def test_macos_privacy_protection_is_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # macOS refuses ~/Library/Mail to a terminal without Full Disk Access (EPERM). That
    # cannot happen here (we run as root), so os.scandir answers as macOS does.
    home = tmp_path / "Users" / "zoë"
    write_apple_mail(home, 10, {"INBOX": [message("new", WHEN)]})
    protected = home / "Library" / "Mail"
    real_scandir, real_iterdir = os.scandir, Path.iterdir

    def refuse(path: Any) -> None:
        if Path(path) == protected or protected in Path(path).parents:
            raise PermissionError(1, "Operation not permitted", str(path))

    def scandir(path: Any = ".") -> Any:
        refuse(path)
        return real_scandir(path)

    def iterdir(self: Path) -> Any:
        refuse(self)
        return real_iterdir(self)

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(Path, "iterdir", iterdir)
    found = discover_stores(home, platform="darwin", spool_dirs=())
    assert found.stores == []
    assert found.warnings == [
        f"macOS did not let mailadvisor look into {protected} (Apple Mail's folder): give the "
        "terminal app Full Disk Access (System Settings, Privacy & Security, Full Disk "
        "Access), open a new terminal window and run mailadvisor again"
    ]
