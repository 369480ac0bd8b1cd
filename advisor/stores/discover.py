"""Finding the mail stores of the mail programs installed on this machine.

Every location is taken relative to a ``home`` directory (the user's by default) and, on
Windows, the known folders of the environment (APPDATA, LOCALAPPDATA, USERPROFILE,
OneDrive: :mod:`advisor.stores.windows_places`), so the same code finds a Linux, macOS or
Windows layout in a test's fake tree. Discovery only looks: it lists directories and
reads a few bytes and small config files; it never opens a store for writing.

What it knows (see ../shared/reference/local-stores.md):

- Thunderbird: every profile in profiles.ini (Linux, snap, flatpak; macOS
  ``~/Library/Thunderbird``; Windows ``%APPDATA%\\Thunderbird`` and the Microsoft Store
  app's folder in ``%LOCALAPPDATA%\\Packages``).
- Evolution 3: ``~/.local/share/evolution/mail/local`` (Maildir; also its flatpak);
  Evolution 2: ``~/.evolution/mail/local`` (mbox files with ``.sbd`` children).
- KMail: ``~/.local/share/local-mail`` (Maildir; also its flatpak and the KDE 4 place).
- Apple Mail: each account folder of ``~/Library/Mail/V*/`` (.emlx files).
- Outlook: the .pst files its mail profiles name in the registry, and ``*.pst`` in
  ``Documents\\Outlook Files`` (also OneDrive's Documents), ``%LOCALAPPDATA%`` and
  ``%APPDATA%\\Microsoft\\Outlook`` (and their Windows XP names).
  Windows Live Mail and Vista's Windows Mail: their ``.eml`` trees; Outlook Express:
  only a warning (.dbx files are not read).
- Claws Mail and Sylpheed: the MH mailboxes named in their ``folderlist.xml``; nmh: the
  ``Path:`` of ``~/.mh_profile``; mutt and the rest: ``~/Mail``, ``~/mail``, ``~/Maildir``,
  ``~/mbox``; and the system mailbox ``/var/mail/$USER``.
"""

from __future__ import annotations

import getpass
import os
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from advisor.platform_compat import outlook_registry_pst_values
from advisor.profile import SourceKind
from advisor.stores import KIND_DESCRIPTIONS, READERS, ReaderUnavailable, candidate_kinds
from advisor.stores.thunderbird import read_profiles_ini, thunderbird_data_dirs
from advisor.stores.windows_places import (
    WindowsFolders,
    host_path,
    pst_path_from_registry,
    windows_folders,
)

__all__ = ["DEFAULT_SPOOL_DIRS", "DiscoveredStore", "Discovery", "discover_stores"]

DEFAULT_SPOOL_DIRS: tuple[Path, ...] = (Path("/var/mail"), Path("/var/spool/mail"))
"""Where local delivery keeps each user's system mailbox (an mbox named after the user)."""


@dataclass(frozen=True)
class DiscoveredStore:
    """A mail store that an installed client left on this machine."""

    kind: SourceKind
    path: Path
    client: str
    """The mail program it belongs to ("Thunderbird", "Evolution", ...)."""
    reason: str
    """Why it was picked, in a few words, for the user."""


@dataclass
class Discovery:
    """What :func:`discover_stores` found, and what it could not make sense of."""

    home: Path
    stores: list[DiscoveredStore] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Candidate:
    """A place a client keeps mail, before a reader confirms what is there."""

    client: str
    path: Path
    kinds: tuple[SourceKind, ...]
    """The kinds expected there, best first; any other recognised kind is accepted too."""
    reason: str


def discover_stores(
    home: Path | None = None,
    *,
    platform: str | None = None,
    user: str | None = None,
    spool_dirs: Sequence[Path] | None = None,
    environ: Mapping[str, str] | None = None,
    outlook_registry: Iterable[bytes | str] | None = None,
) -> Discovery:
    """Find the stores of installed mail clients below ``home`` (and the system mailbox).

    ``platform`` (a ``sys.platform`` value) chooses where Thunderbird's profiles.ini is
    looked for; every other client's places are checked on every platform, because they
    cannot be confused and a home copied from another machine is still worth finding.
    ``environ`` gives Windows' known folders (APPDATA, LOCALAPPDATA, USERPROFILE,
    OneDrive; see :mod:`advisor.stores.windows_places`), and ``outlook_registry`` the
    .pst paths of Outlook's mail profiles (raw registry values or strings). Both default
    to this machine's (environment, registry) only when ``home`` is not given, so a test
    home is searched alone. ``user`` and ``spool_dirs`` locate the system mailbox
    (``/var/mail/$USER``); pass ``spool_dirs=()`` to leave it out. Results are in client
    order, each path once.
    """
    given = home.expanduser() if home is not None else None
    home = given or Path.home()
    platform = platform or sys.platform
    windows = _is_windows(platform)
    if environ is None or not windows:
        environ = os.environ if given is None and windows else {}
    if outlook_registry is None:
        outlook_registry = outlook_registry_pst_values() if given is None and windows else ()
    folders = windows_folders(home, environ)
    found = Discovery(home=home)
    seen: set[str] = set()

    def add(store: DiscoveredStore) -> None:
        key = os.path.realpath(store.path)
        if key not in seen:
            seen.add(key)
            found.stores.append(store)

    for store in _thunderbird(_thunderbird_dirs(home, platform, folders), home, found.warnings):
        add(store)
    if spool_dirs is None:
        spool_dirs = DEFAULT_SPOOL_DIRS
    _outlook_express(folders, found.warnings)
    _mac_privacy(home, found.warnings)
    candidates = _candidates(home, user, spool_dirs, folders, outlook_registry)
    for candidate in candidates:
        if os.path.realpath(candidate.path) in seen:
            continue
        confirmed = _confirm(candidate, home, found.warnings)
        if confirmed is not None:
            add(confirmed)
    return found


def _is_windows(platform: str) -> bool:
    return platform.lower().startswith(("win", "cygwin", "msys"))


def _thunderbird_dirs(home: Path, platform: str, folders: WindowsFolders) -> list[tuple[str, Path]]:
    """(variant, directory holding profiles.ini) of each Thunderbird installation."""
    if not _is_windows(platform):
        return thunderbird_data_dirs(home, platform)
    dirs = [("windows", host_path(folders.thunderbird()))]
    # The Microsoft Store's Thunderbird keeps its data inside its package's folder.
    for package in sorted(_listdir(host_path(folders.store_packages()))):
        if "thunderbird" in package.name.lower():
            dirs.append(("windows-store", package / "LocalCache" / "Roaming" / "Thunderbird"))
    return dirs


def _thunderbird(
    data_dirs: list[tuple[str, Path]], home: Path, warnings: list[str]
) -> Iterator[DiscoveredStore]:
    profiles = [
        profile
        for variant, data_dir in data_dirs
        if data_dir.is_dir()
        for profile in read_profiles_ini(data_dir, variant)
    ]
    for profile in profiles:
        if not profile.exists:
            warnings.append(
                f"Thunderbird's profiles.ini in {_shown(profile.data_dir, home)} lists profile "
                f"{profile.name!r} at {profile.path}, but it is not there (a disk not mounted?)"
            )
            continue
        where = {
            "snap": " (snap)",
            "flatpak": " (flatpak)",
            "windows-store": " (Microsoft Store)",
        }.get(profile.variant, "")
        default = ", the default one" if profile.is_default else ""
        yield DiscoveredStore(
            kind=SourceKind.THUNDERBIRD,
            path=profile.path,
            client="Thunderbird",
            reason=f"Thunderbird{where} profile {profile.name!r}{default}",
        )


def _candidates(
    home: Path,
    user: str | None,
    spool_dirs: Sequence[Path],
    folders: WindowsFolders,
    outlook_registry: Iterable[bytes | str],
) -> Iterator[_Candidate]:
    """Every place a known client keeps mail, in the order results are listed."""
    maildir = (SourceKind.MAILDIR,)
    yield from (
        _Candidate("Evolution", home / rel, maildir, "Evolution's local folders (Maildir)")
        for rel in (
            ".local/share/evolution/mail/local",
            ".var/app/org.gnome.Evolution/data/evolution/mail/local",
        )
    )
    yield _Candidate(
        "Evolution",
        home / ".evolution/mail/local",
        (SourceKind.MBOX, SourceKind.THUNDERBIRD),
        "Evolution 2's local folders (mbox)",
    )
    yield from (
        _Candidate("KMail", home / rel, maildir, "KMail's local folders (Maildir)")
        for rel in (
            ".local/share/local-mail",
            ".var/app/org.kde.kmail2/data/local-mail",
            ".kde/share/apps/kmail/mail",
            ".kde4/share/apps/kmail/mail",
        )
    )
    yield from _apple_mail(home)
    yield from _outlook(folders, outlook_registry)
    yield _Candidate(
        "Windows Live Mail",
        host_path(folders.windows_live_mail()),
        (SourceKind.EML,),
        "Windows Live Mail's .eml folders",
    )
    yield _Candidate(
        "Windows Mail",
        host_path(folders.windows_mail()),
        (SourceKind.EML,),
        "Windows Mail's .eml folders (Windows Vista)",
    )
    for client, config in (("Claws Mail", ".claws-mail"), ("Sylpheed", ".sylpheed-2.0")):
        yield from _folderlist_mailboxes(home, client, home / config / "folderlist.xml")
    nmh = _mh_profile_path(home)
    if nmh is not None:
        yield _Candidate("nmh", nmh, (SourceKind.MH,), "the mail folder named in ~/.mh_profile")
    any_of = (SourceKind.MH, SourceKind.MAILDIR, SourceKind.MBOX)
    yield _Candidate("mutt/Claws Mail/Sylpheed", home / "Mail", any_of, "the usual ~/Mail folder")
    yield _Candidate("mutt/pine", home / "mail", any_of, "the usual ~/mail folder")
    yield _Candidate("mutt", home / "Maildir", maildir, "the usual ~/Maildir")
    yield _Candidate("mutt", home / "mbox", (SourceKind.MBOX,), "mutt's ~/mbox of read mail")
    user = user or _current_user()
    if user:
        for spool in spool_dirs:
            yield _Candidate(
                "system mailbox",
                spool / user,
                (SourceKind.MBOX,),
                f"where this machine delivers {user}'s new mail",
            )


def _apple_mail(home: Path) -> Iterator[_Candidate]:
    """Each account folder of ``~/Library/Mail/V<n>``, newest version first.

    One store per account (a UUID folder, ``POP-user@host`` in old versions, ``Mailboxes``
    for On My Mac): every account has its own INBOX, and reading the whole ``V<n>`` as one
    store would pour them into one folder. Mail leaves older versions behind on upgrade.
    """
    root = home / "Library" / "Mail"
    versions: list[tuple[int, Path]] = []
    for entry in _listdir(root):
        match = re.fullmatch(r"V(\d+)", entry.name)
        if match and entry.is_dir():
            versions.append((int(match.group(1)), entry))
    versions.sort(reverse=True)
    for i, (number, version_dir) in enumerate(versions):
        note = " (an older version Mail left behind)" if i else ""
        for account in sorted(_listdir(version_dir)):
            if account.is_dir() and any(
                child.name.endswith((".mbox", ".imapmbox")) for child in _listdir(account)
            ):
                what = (
                    "On My Mac mailboxes"
                    if account.name == "Mailboxes"
                    else f"account {account.name}"
                )
                yield _Candidate(
                    "Apple Mail",
                    account,
                    (SourceKind.EMLX,),
                    f"Apple Mail {what}, data version {number}{note}",
                )


def _outlook(
    folders: WindowsFolders, registry_values: Iterable[bytes | str]
) -> Iterator[_Candidate]:
    """Outlook data files: the .pst files Outlook's mail profiles name (registry), then
    ``*.pst`` (any case) where Outlook puts them by default."""
    for value in registry_values:
        named = pst_path_from_registry(value)
        if named is not None and named.suffix.lower() == ".pst":
            path = host_path(named)
            if path.is_file():
                yield _Candidate("Outlook", path, (SourceKind.PST,), "named in Outlook's profile")
    for directory, shown in folders.outlook():
        for entry in sorted(_listdir(host_path(directory))):
            if entry.name.lower().endswith(".pst") and entry.is_file():
                yield _Candidate(
                    "Outlook", entry, (SourceKind.PST,), f"Outlook data file in {shown}"
                )


def _mac_privacy(home: Path, warnings: list[str]) -> None:
    """macOS keeps ~/Library/Mail from programs without Full Disk Access (EPERM): say
    how to allow it, instead of silently finding no Apple Mail."""
    root = home / "Library" / "Mail"
    try:
        with os.scandir(root):
            pass
    except PermissionError:
        warnings.append(
            f"macOS did not let mailadvisor look into {root} (Apple Mail's folder): give "
            "the terminal app Full Disk Access (System Settings, Privacy & Security, Full "
            "Disk Access), open a new terminal window and run mailadvisor again"
        )
    except OSError:
        pass


def _outlook_express(folders: WindowsFolders, warnings: list[str]) -> None:
    """Outlook Express's .dbx files cannot be read: say so, and what to do instead."""
    for identities in folders.identities():
        for identity in sorted(_listdir(host_path(identities))):
            store = identity / "Microsoft" / "Outlook Express"
            if any(e.name.lower().endswith(".dbx") for e in _listdir(store)):
                warnings.append(
                    f"Outlook Express mail in {store} (.dbx files) cannot be read by "
                    "mailadvisor: import it into Windows Live Mail or Thunderbird, then "
                    "scan that"
                )


def _folderlist_mailboxes(home: Path, client: str, config: Path) -> Iterator[_Candidate]:
    """The MH mailboxes Claws Mail / Sylpheed list in folderlist.xml (paths relative to home)."""
    if not config.is_file():
        return
    try:
        with config.open("rb") as f:
            tree = ET.parse(f)
    except (OSError, ET.ParseError):
        return
    for node in tree.getroot().iter("folder"):
        if node.get("type") != "mh" or not node.get("path"):
            continue
        path = Path(node.get("path", "")).expanduser()
        name = node.get("name") or path.name
        yield _Candidate(
            client,
            path if path.is_absolute() else home / path,
            (SourceKind.MH,),
            f"{client} mailbox {name!r} (from {config.parent.name}/folderlist.xml)",
        )


def _mh_profile_path(home: Path) -> Path | None:
    """The ``Path:`` entry of nmh's ``~/.mh_profile`` (relative to home), if any."""
    try:
        with (home / ".mh_profile").open("rb") as f:
            text = f.read(65536).decode("utf-8", "replace")
    except OSError:
        return None
    match = re.search(r"^path:[ \t]*(\S.*?)[ \t]*$", text, re.I | re.M)
    if not match:
        return None
    path = Path(match.group(1)).expanduser()
    return path if path.is_absolute() else home / path


def _confirm(candidate: _Candidate, home: Path, warnings: list[str]) -> DiscoveredStore | None:
    """The candidate as a store, with the kind a reader recognises there; None if nothing is."""
    path = candidate.path
    try:
        if not path.exists() or _is_empty(path):
            return None
    except OSError:
        return None
    unavailable: list[SourceKind] = []
    for kind in candidate.kinds:
        try:
            if READERS[kind].detect(path):
                return DiscoveredStore(kind, path, candidate.client, candidate.reason)
        except ReaderUnavailable:
            unavailable.append(kind)
        except OSError:
            continue
    others = candidate_kinds(path)
    if others:
        kind = others[0]
        reason = f"{candidate.reason}; it holds {KIND_DESCRIPTIONS[kind]}"
        return DiscoveredStore(kind, path, candidate.client, reason)
    if unavailable:
        # Listed anyway: scanning it will say why the reader cannot be loaded.
        return DiscoveredStore(unavailable[0], path, candidate.client, candidate.reason)
    warnings.append(
        f"{_shown(path, home)} ({candidate.reason}) holds no mail store mailadvisor "
        "recognises; scan it with --kind if you know what it is"
    )
    return None


def _is_empty(path: Path) -> bool:
    """A zero-byte file or a directory with nothing in it: nothing to report."""
    if path.is_dir():
        with os.scandir(path) as entries:
            return next(entries, None) is None
    return path.stat().st_size == 0


def _listdir(path: Path) -> list[Path]:
    try:
        return list(path.iterdir())
    except OSError:
        return []


def _shown(path: Path, home: Path) -> str:
    try:
        return "~/" + path.relative_to(home).as_posix()
    except ValueError:
        return str(path)


def _current_user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None
