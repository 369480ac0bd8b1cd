"""Thunderbird profiles: finding them, and reading the mail POP3 accounts left in them.

Layout (see ``shared/reference/local-stores.md``): a profile's POP3 and Local
Folders mail lives in ``Mail/<account>/`` (or wherever ``prefs.js`` points an
account's ``directory``). Each folder is an mbox file ``Name`` with its Mork
summary ``Name.msf``; its sub-folders live in ``Name.sbd/``. A folder in
Thunderbird's maildir store is a directory ``Name/`` with ``cur/`` (and
``tmp/``, ignored). IMAP caches (``ImapMail/``), news and feeds are not read.

What is trusted, in order:

* the ``.msf`` index, when it is readable and current (its recorded folder
  size equals the mbox's size): it has a row for every live message, keyed by
  the message's offset in the mbox. A message with no row is one the user
  deleted (``deleted=True``), even if its X-Mozilla-Status lacks the expunged
  bit (0x0008); a message with a row is alive even if the bit is set (the bit
  goes stale, as ImportExportTools NG's authors found). Flags, tags and the
  arrival date come from the row.
* otherwise the message's own X-Mozilla-Status/-Status2/-Keys headers, and the
  expunged bit decides ``deleted``.

Thunderbird's three bookkeeping headers are removed from the message bytes.
Reading never writes: the lock check only reads the lock's target and asks the
kernel whether a lock is held (``F_GETLK``).
"""

from __future__ import annotations

import configparser
import contextlib
import json
import os
import re
import sys
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from advisor.errors import SourceLockedError, UsageError
from advisor.platform_compat import fcntl_lock_holder, held_open_elsewhere, pid_alive
from advisor.stores.base import Problem, ReaderOptions, SourceFolder, SourceMessage, StoreReader
from advisor.stores.mbox import (
    PARTIAL_PROBLEM,
    MboxEntry,
    entry_header_block,
    interpret_headers,
    iter_mbox,
    quoting_option,
    unreadable_message,
)
from advisor.stores.mork import MorkError, read_mork
from advisor.stores.tb_foldercache import FolderNames
from advisor.stores.tb_index import (
    FOLDER_INFO_KIND,
    FolderIndex,
    load_index,
    misplaced_offset,
    row_flags,
    timestamp,
)

# -- discovery -----------------------------------------------------------------------------

LINUX_DATA_DIRS = (
    ("linux", Path(".thunderbird")),
    ("snap", Path("snap/thunderbird/common/.thunderbird")),
    ("flatpak", Path(".var/app/org.mozilla.Thunderbird/.thunderbird")),
)
MACOS_DATA_DIR = Path("Library/Thunderbird")
WINDOWS_DATA_DIR = Path("AppData/Roaming/Thunderbird")


@dataclass(frozen=True)
class ThunderbirdProfile:
    """A profile listed in a Thunderbird ``profiles.ini`` (or found next to it)."""

    name: str
    path: Path
    """The profile directory (holding prefs.js and Mail/)."""
    data_dir: Path
    """The Thunderbird directory holding profiles.ini."""
    variant: str
    """Which installation: "linux", "snap", "flatpak", "macos" or "windows"."""
    is_default: bool = False
    """The profile Thunderbird opens by default (an [Install...] Default, else Default=1)."""
    exists: bool = True
    """False when profiles.ini names a directory that is not there (an unmounted disk...)."""


def _normalize_platform(platform: str | None) -> str:
    value = (platform or sys.platform).lower()
    if value.startswith(("win", "cygwin", "msys")):
        return "windows"
    if value in ("darwin", "macos", "mac", "osx"):
        return "macos"
    return "linux"


def thunderbird_data_dirs(
    home: Path | None = None, platform: str | None = None
) -> list[tuple[str, Path]]:
    """Where Thunderbird keeps profiles.ini on ``platform``, as (variant, directory).

    ``home`` defaults to the user's home; on Windows without ``home`` the
    ``APPDATA`` environment variable is used when set.
    """
    kind = _normalize_platform(platform)
    if kind == "windows":
        appdata = os.environ.get("APPDATA") if home is None else None
        base = (
            Path(appdata) / "Thunderbird" if appdata else (home or Path.home()) / WINDOWS_DATA_DIR
        )
        return [("windows", base)]
    root = home or Path.home()
    if kind == "macos":
        return [("macos", root / MACOS_DATA_DIR)]
    return [(variant, root / relative) for variant, relative in LINUX_DATA_DIRS]


def _read_ini(path: Path) -> configparser.RawConfigParser | None:
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        with open(path, "rb") as stream:
            text = stream.read(1 << 20).decode("utf-8-sig", "replace")
        parser.read_string(text, source=str(path))
    except (OSError, configparser.Error):
        return None
    return parser


def _profile_path(data_dir: Path, value: str, relative: bool) -> Path:
    if relative:
        return data_dir.joinpath(*[part for part in re.split(r"[/\\]", value) if part])
    return Path(value)


def read_profiles_ini(data_dir: Path, variant: str = "linux") -> list[ThunderbirdProfile]:
    """The profiles of one Thunderbird data directory.

    Relative (``IsRelative=1``) and absolute paths are both understood; the
    default is the profile an ``[Install...]`` section names, else the one with
    ``Default=1``. Without a readable profiles.ini, sub-directories holding a
    ``prefs.js`` are listed instead (a copied or half-broken setup).
    """
    parser = _read_ini(data_dir / "profiles.ini")
    if parser is None:
        return _profiles_by_scan(data_dir, variant)
    install_defaults = {
        parser.get(section, "Default").replace("\\", "/").lower()
        for section in parser.sections()
        if section.startswith("Install") and parser.has_option(section, "Default")
    }
    profiles = []
    for section in parser.sections():
        if not section.startswith("Profile") or not parser.has_option(section, "Path"):
            continue
        value = parser.get(section, "Path")
        relative = parser.get(section, "IsRelative", fallback="1").strip() == "1"
        path = _profile_path(data_dir, value, relative)
        if install_defaults:
            default = value.replace("\\", "/").lower() in install_defaults
        else:
            default = parser.get(section, "Default", fallback="0").strip() == "1"
        profiles.append(
            ThunderbirdProfile(
                name=parser.get(section, "Name", fallback=path.name),
                path=path,
                data_dir=data_dir,
                variant=variant,
                is_default=default,
                exists=(path / "prefs.js").is_file() or (path / "Mail").is_dir(),
            )
        )
    return profiles


def _profiles_by_scan(data_dir: Path, variant: str) -> list[ThunderbirdProfile]:
    found = []
    for parent in (data_dir, data_dir / "Profiles"):
        with contextlib.suppress(OSError):
            for child in sorted(parent.iterdir()):
                if child.is_dir() and (child / "prefs.js").is_file():
                    found.append(ThunderbirdProfile(child.name, child, data_dir, variant))
    return found


def find_thunderbird_profiles(
    home: Path | None = None, platform: str | None = None
) -> list[ThunderbirdProfile]:
    """Every Thunderbird profile of the user: Linux (plain, snap and flatpak), macOS or
    Windows locations, from their profiles.ini files; ``home`` and ``platform``
    (a ``sys.platform`` value) make this testable with a fake home directory."""
    profiles: list[ThunderbirdProfile] = []
    seen: set[Path] = set()
    for variant, data_dir in thunderbird_data_dirs(home, platform):
        if not data_dir.is_dir():
            continue
        for profile in read_profiles_ini(data_dir, variant):
            key = Path(os.path.realpath(profile.path))
            if key not in seen:
                seen.add(key)
                profiles.append(profile)
    return profiles


# -- the profile lock -------------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileLock:
    """Whether a running Thunderbird holds the profile."""

    held: bool
    lock_file: Path | None = None
    pid: int | None = None
    detail: str = ""


def profile_lock(profile_dir: Path) -> ProfileLock:
    """Is ``profile_dir`` in use by a running Thunderbird? Checked without writing:

    * ``lock`` (Linux): a symbolic link to ``IP:+PID``; held while that process lives
      (a link left by a crash, whose process is gone, is stale);
    * ``.parentlock`` (Linux, macOS): held while a process has an fcntl lock on it;
    * ``parent.lock`` (Windows): held while another process keeps it open exclusively
      (only testable on Windows).
    """
    link = profile_dir / "lock"
    if link.is_symlink():
        with contextlib.suppress(OSError):
            target = os.readlink(link)
            match = re.search(r":\+?(\d+)$", target)
            if match:
                pid = int(match.group(1))
                if pid_alive(pid):
                    return ProfileLock(True, link, pid, f"{link} points to live process {pid}")
    parentlock = profile_dir / ".parentlock"
    if parentlock.is_file():
        holder = fcntl_lock_holder(parentlock)
        if holder is not None:
            return ProfileLock(True, parentlock, holder or None, f"process {holder} locks it")
    windows_lock = profile_dir / "parent.lock"
    if windows_lock.is_file() and held_open_elsewhere(windows_lock):
        return ProfileLock(True, windows_lock, None, "another program holds it open")
    return ProfileLock(False)


def _find_profile_dir(path: Path) -> Path | None:
    """The profile directory holding ``path`` (itself or an ancestor), if any."""
    candidate = path if path.is_dir() else path.parent
    for directory in (candidate, *list(candidate.parents)[:5]):
        if (directory / "prefs.js").is_file() or any(
            (directory / name).exists() or (directory / name).is_symlink()
            for name in ("lock", ".parentlock", "parent.lock")
        ):
            return directory
    return None


# -- prefs.js: where each account keeps its mail ---------------------------------------------

_PREF = re.compile(
    r'user_pref\(\s*"((?:[^"\\]|\\.)*)"\s*,\s*("(?:[^"\\]|\\.)*"|true|false|-?\d+)\s*\)\s*;'
)
_SERVER_PREF = re.compile(r"mail\.server\.([A-Za-z0-9_]+)\.(.+)")
_MAILDIR_STORE = "maildirstore"
_MAIL_SERVER_TYPES = ("none", "pop3", "movemail")


def _pref_value(raw: str) -> str:
    if raw.startswith('"'):
        try:
            value = json.loads(raw.replace("\\'", "'"))
        except ValueError:
            return raw[1:-1]
        return str(value)
    return raw


def read_prefs(profile_dir: Path) -> dict[str, str]:
    """The ``user_pref`` settings of a profile's prefs.js (missing file: empty)."""
    try:
        with open(profile_dir / "prefs.js", "rb") as stream:
            text = stream.read(16 << 20).decode("utf-8", "replace")
    except OSError:
        return {}
    return {match.group(1): _pref_value(match.group(2)) for match in _PREF.finditer(text)}


@dataclass(frozen=True)
class MailRoot:
    """One account's mail directory."""

    name: str
    """The first element of its folders' paths: the directory's name ("Local Folders")."""
    path: Path
    server_type: str = "unknown"
    """prefs.js type: "none" (Local Folders), "pop3", "movemail"; "unknown" without prefs."""
    maildir: bool = False
    """The account uses Thunderbird's maildir store instead of mbox files."""


def mail_roots(profile_dir: Path) -> list[MailRoot]:
    """The POP3 / Local Folders mail directories of a profile.

    From prefs.js (``mail.server.*.directory-rel`` / ``directory``, which may lie
    outside the profile), plus any other directory in ``Mail/`` (an account
    removed from the settings still has its mail on disk). Feed (RSS) accounts
    are left out.
    """
    prefs = read_prefs(profile_dir)
    servers: dict[str, dict[str, str]] = {}
    for key, value in prefs.items():
        match = _SERVER_PREF.fullmatch(key)
        if match:
            servers.setdefault(match.group(1), {})[match.group(2)] = value
    roots: list[MailRoot] = []
    seen: set[str] = set()
    excluded: set[str] = set()

    def add(path: Path, server_type: str, maildir: bool) -> None:
        real = os.path.realpath(path)
        if real in seen or real in excluded or not path.is_dir():
            return
        seen.add(real)
        roots.append(MailRoot(path.name, path, server_type, maildir))

    for server in sorted(servers.values(), key=lambda s: s.get("directory-rel", "")):
        server_type = server.get("type", "unknown")
        path = _server_directory(profile_dir, server)
        if path is None:
            continue
        if server_type not in _MAIL_SERVER_TYPES:
            excluded.add(os.path.realpath(path))
            continue
        add(path, server_type, _MAILDIR_STORE in server.get("storeContractID", ""))
    with contextlib.suppress(OSError):
        for child in sorted((profile_dir / "Mail").iterdir()):
            if child.is_dir() and not _is_feed_account(child):
                add(child, "unknown", False)
    # Names must be unique: they become the first level of folder paths.
    taken: dict[str, int] = {}
    unique = []
    for root in roots:
        count = taken.get(root.name, 0) + 1
        taken[root.name] = count
        name = root.name if count == 1 else f"{root.name} ({count})"
        unique.append(MailRoot(name, root.path, root.server_type, root.maildir))
    return unique


def _server_directory(profile_dir: Path, server: dict[str, str]) -> Path | None:
    relative = server.get("directory-rel", "")
    if relative.startswith("[ProfD]"):
        path = profile_dir.joinpath(*[p for p in re.split(r"[/\\]", relative[7:]) if p])
        if path.is_dir():
            return path
    absolute = server.get("directory", "")
    if absolute and Path(absolute).is_absolute():
        return Path(absolute)
    return None


def _is_feed_account(directory: Path) -> bool:
    return any(
        (directory / name).exists()
        for name in ("feeds.json", "feeds.rdf", "feeditems.json", "feeditems.rdf")
    )


# -- folders -------------------------------------------------------------------------------

# Thunderbird's own bookkeeping files in an account directory: known, never mail.
_BOOKKEEPING_NAMES = frozenset(
    {
        "popstate.dat",
        "msgfilterrules.dat",
        "filterlog.html",
        "junklog.html",
        "rules.dat",
        "virtualfolders.dat",
        "feeds.json",
        "feeditems.json",
        "feeds.rdf",
        "feeditems.rdf",
        "folders.json",
        "foldertree.json",
        "folders.rdf",
        "panacea.dat",
        ".ds_store",
        "thumbs.db",
        "desktop.ini",
    }
)
# Summaries (read with their folder), Spotlight / Windows Search copies of messages
# (duplicates of mail stored in the folders), Evolution 2 summaries.
_BOOKKEEPING_SUFFIXES = (".msf", ".mozmsgs", ".ev-summary", ".ev-summary-meta", ".cmeta")
# Files that are not folders but may hold copies of mail: skipped, and said so.
_LEFTOVER_SUFFIXES = (".compact-temp", ".tmp", ".bak", ".html", ".dat")
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
_HEADER_START = re.compile(rb"[\x21-\x39\x3b-\x7e]+:")

NOT_MAIL = "not a mail folder (no .msf, does not start like mail)"


@dataclass(frozen=True)
class ThunderbirdFolder:
    """A folder found on disk."""

    path: tuple[str, ...]
    location: Path
    """The mbox file, or the folder's maildir directory, or its .sbd (container only)."""
    msf: Path | None
    store: str
    """"mbox", "maildir", "none" (a folder that only holds sub-folders), or "unreadable"
    (a directory that cannot be listed: its mail is reported as unreadable)."""
    error: str = ""
    """Why an "unreadable" folder cannot be read ("" for the others)."""


@dataclass(frozen=True)
class SkippedEntry:
    """A file or directory in an account's mail directory that was not read, and why."""

    path: Path
    reason: str


def folder_display_name(file_name: str, index_name: str | None) -> str:
    """A folder's real name: the .msf's folderName when recorded (old Thunderbird hashed
    awkward names to 8 hex digits), else the file name with %XX escapes decoded when
    they decode to UTF-8 (newer Thunderbird percent-encodes characters such as /)."""
    if index_name:
        return index_name
    if _PERCENT.search(file_name):
        try:
            raw = re.sub(
                r"%([0-9A-Fa-f]{2})",
                lambda m: chr(int(m.group(1), 16)),
                file_name,
            )
            return raw.encode("latin-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            return file_name
    return file_name


def _folder_name_from_msf(msf: Path) -> str | None:
    try:
        document = read_mork(msf, ("folderName",))
    except (OSError, MorkError):
        return None
    for table in document.tables_of_kind(FOLDER_INFO_KIND):
        for key in table.rows:
            name = document.rows.get(key, {}).get("folderName")
            if name:
                return name.decode("utf-8", "replace")
    return None


def _looks_like_mail(path: Path) -> bool | None:
    """Does the file start like mail (a From_ line or a header field)? None when it
    cannot be opened (it is then read as a folder, so that it is reported unreadable);
    an empty file is an empty folder, which is mail-like too."""
    try:
        with open(path, "rb") as stream:
            head = stream.read(256)
    except OSError:
        return None
    return not head or head.startswith(b"From ") or _HEADER_START.match(head) is not None


NameFromIndex = Callable[[Path | None, Path, str], "str | None"]
"""(summary file if any, folder location, store) -> the folder's recorded name."""


def _name_from_msf(msf: Path | None, location: Path, store: str) -> str | None:
    del location, store
    return _folder_name_from_msf(msf) if msf else None


def _skip_reason(name: str, is_dir: bool) -> str | None:
    """Why an entry is not a folder by its name alone; "" for Thunderbird's own files
    (never mail, not worth a note); None when its name does not decide."""
    lower = name.lower()
    if lower in _BOOKKEEPING_NAMES or lower.endswith(_BOOKKEEPING_SUFFIXES):
        return ""
    if lower.startswith("nstmp") or lower.endswith(".compact-temp"):
        return "left over from an interrupted compaction (a partial copy of a folder)"
    if name.startswith("."):
        return "a hidden " + ("directory" if is_dir else "file") + " (Thunderbird makes none)"
    if lower.endswith(_LEFTOVER_SUFFIXES):
        return "a temporary, backup or log file, not a folder"
    return None


def walk_mail_root(
    directory: Path,
    parent: tuple[str, ...] = (),
    skipped: list[SkippedEntry] | None = None,
    name_of: NameFromIndex = _name_from_msf,
) -> Iterator[ThunderbirdFolder]:
    """Every folder under an account directory, parents before children.

    Nothing is left out without a word: every entry that is not read as a folder and is
    not one of Thunderbird's own bookkeeping files (summaries, popstate.dat, filter
    rules...) is appended to ``skipped`` with the reason. A folder file is read when it
    has a ``.msf``, starts like mail, is empty (Thunderbird creates parent folders
    empty), has sub-folders (``Name.sbd``) or cannot be opened (it is then reported
    unreadable); every ``Name.sbd`` is walked, whatever became of ``Name``. A directory
    that cannot be listed is yielded as an "unreadable" folder. ``name_of`` reads a
    folder's recorded name from its .msf (the reader passes one that keeps the whole
    index, so that each summary is parsed once).
    """
    try:
        entries = sorted(directory.iterdir(), key=lambda p: p.name)
    except OSError as exc:
        reason = f"the directory cannot be listed: {exc.strerror or exc}"
        yield ThunderbirdFolder(parent, directory, None, "unreadable", reason)
        return

    def note(entry: Path, reason: str) -> None:
        if skipped is not None and reason:
            skipped.append(SkippedEntry(entry, reason))

    names = {entry.name for entry in entries}
    walked: set[str] = set()
    for entry in entries:
        name = entry.name
        if name.endswith(".sbd") and len(name) > 4:
            if not _is_dir(entry):
                note(entry, "a file named like a sub-folder directory (.sbd)")
            continue  # walked with its folder, or below
        try:
            store, reason = _classify(entry, names)
        except OSError as exc:  # it cannot even be examined: it may hold mail
            store, reason = "unreadable", f"it cannot be examined: {exc.strerror or exc}"
        if store is None:
            note(entry, reason)
            continue
        summary = entry.with_name(name + ".msf") if name + ".msf" in names else None
        recorded = name_of(summary, entry, store) if store != "unreadable" else None
        path = (*parent, folder_display_name(name, recorded))
        yield ThunderbirdFolder(path, entry, summary, store, reason)
        children = entry.with_name(name + ".sbd")
        if name + ".sbd" in names and _is_dir(children):
            walked.add(children.name)
            yield from walk_mail_root(children, path, skipped, name_of)
    # Every other Name.sbd: its Name is missing, or is no folder; its sub-folders count.
    for entry in entries:
        name = entry.name
        if name.endswith(".sbd") and len(name) > 4 and name not in walked and _is_dir(entry):
            base = name[:-4]
            summary = entry.with_name(base + ".msf") if base + ".msf" in names else None
            recorded = name_of(summary, entry, "none")
            path = (*parent, folder_display_name(base, recorded))
            yield ThunderbirdFolder(path, entry, summary, "none")
            yield from walk_mail_root(entry, path, skipped, name_of)


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False


def _classify(entry: Path, names: set[str]) -> tuple[str | None, str]:
    """(store, "") for an entry of an account directory that is a folder: "mbox" or
    "maildir"; (None, why) for one that is not (why is "" for Thunderbird's own files)."""
    name = entry.name
    is_dir = entry.is_dir()
    reason = _skip_reason(name, is_dir)
    if reason is not None:
        return None, reason
    if is_dir:
        if (entry / "cur").is_dir() or (entry / "new").is_dir():
            return "maildir", ""
        return None, (
            "a directory that is not a folder (Thunderbird nests folders only in "
            "Name.sbd, and a maildir folder has cur/ and new/)"
        )
    if entry.is_file():
        summarised = name + ".msf" in names or name + ".sbd" in names
        if summarised or _looks_like_mail(entry) is not False:
            return "mbox", ""
        return None, NOT_MAIL
    return None, "not a regular file (a broken link, a pipe or a device)"


# -- the reader ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    """What the reader's path turned out to be, and the directories to read."""

    kind: str
    """"profile", "mail" (a Mail/ directory), "account" (one account's mail), "folder",
    or "profiles" (a directory with profiles.ini whose profile to read is unclear)."""
    roots: tuple[MailRoot, ...]
    base: Path
    """Source ids are relative to this directory."""
    profile: Path | None = None
    """The profile whose lock guards these files, when there is one."""
    choices: tuple[ThunderbirdProfile, ...] = ()


_ACCOUNT_MARKS = ("popstate.dat", "msgFilterRules.dat")
_EVOLUTION_MARKS = (".ev-summary", ".ev-summary-meta", ".cmeta")
_MOZILLA_PROBES = 20
"""How many mbox files detection opens looking for X-Mozilla-Status."""


def _is_account_dir(path: Path) -> bool:
    """One account's mail directory (Local Folders, a POP account): it has .msf summaries
    or Thunderbird's POP files; or, without them (a profile copied without summaries),
    it nests folders as ``Name`` + ``Name.sbd``, or its mbox files carry X-Mozilla-Status.
    Evolution 2 nests the same way, but leaves its own summaries: that is an mbox tree."""
    try:
        children = sorted(path.iterdir(), key=lambda p: p.name)
    except OSError:
        return False
    names = {child.name for child in children}
    if any(name.endswith(".msf") or name in _ACCOUNT_MARKS for name in names):
        return True
    if any(name.endswith(_EVOLUTION_MARKS) for name in names):
        return False
    if any(name.endswith(".sbd") and name[:-4] in names and _is_dir(path / name) for name in names):
        return True
    probed = 0
    for child in children:
        if probed >= _MOZILLA_PROBES:
            break
        if child.name.startswith(".") or not child.is_file():
            continue
        probed += 1
        if _has_mozilla_status(child):
            return True
    return False


def _has_mozilla_status(path: Path) -> bool:
    """An mbox file whose first message's header carries X-Mozilla-Status."""
    try:
        with open(path, "rb") as stream:
            head = stream.read(4096)
    except OSError:
        return False
    if not head.startswith(b"From "):
        return False
    end = head.find(b"\n\n")
    return b"\nX-Mozilla-Status:" in (head if end < 0 else head[:end])


def _profile_layout(profile: Path) -> _Layout:
    return _Layout("profile", tuple(mail_roots(profile)), profile, profile)


def _layout(path: Path) -> _Layout | None:
    if path.is_file():
        if path.with_name(path.name + ".msf").is_file():
            root = (MailRoot(path.name, path),)
            return _Layout("folder", root, path.parent, _find_profile_dir(path))
        return None
    if not path.is_dir():
        return None
    if (path / "prefs.js").is_file():
        return _profile_layout(path)
    if (path / "profiles.ini").is_file():
        profiles = tuple(p for p in read_profiles_ini(path) if p.exists)
        defaults = [p for p in profiles if p.is_default]
        if len(defaults) == 1 or len(profiles) == 1:
            return _profile_layout((defaults or list(profiles))[0].path)
        if profiles:
            return _Layout("profiles", (), path, None, profiles)
        return None
    if _is_account_dir(path):
        return _Layout("account", (MailRoot("", path),), path, _find_profile_dir(path))
    try:
        accounts = tuple(
            MailRoot(child.name, child)
            for child in sorted(path.iterdir())
            if child.is_dir() and _is_account_dir(child) and not _is_feed_account(child)
        )
    except OSError:
        return None
    if accounts:
        return _Layout("mail", accounts, path, _find_profile_dir(path))
    return None


class ThunderbirdReader(StoreReader):
    """A Thunderbird profile, its ``Mail/`` directory, one account's directory, or a
    single folder (an mbox file with its ``.msf`` beside it).

    In a profile or ``Mail/`` directory, folder paths start with the account's
    directory name ("Local Folders", "pop.example.com"); for one account they
    start at its folders; a single folder is a one-element path.

    ``messages()`` refuses (:class:`SourceLockedError`) while Thunderbird holds the
    profile, unless ``options.ignore_lock``. After reading, ``notes`` says which
    indexes could not be trusted and which files were not mail.
    """

    kind: ClassVar[str] = "thunderbird"
    metadata_notes: ClassVar[tuple[str, ...]] = (
        "Flags, tags and received dates come from each folder's .msf index when it is "
        "current, else from the X-Mozilla-Status/-Keys headers; those headers are removed.",
        "Messages deleted in Thunderbird but not yet compacted away are counted as deleted; "
        "the .msf index decides which ones when it is current, else the expunged bit.",
        "IMAP caches (ImapMail), news and feed accounts are not read: they are not POP mail.",
    )

    def __init__(self, path: Path, options: ReaderOptions | None = None) -> None:
        super().__init__(path, options)
        self.unquote = quoting_option(self.options)
        self.skipped: list[SkippedEntry] = []
        """Entries of account directories that were not read, with the reason (also in
        ``notes`` after reading)."""
        self._index: tuple[Path, FolderIndex] | None = None

    @classmethod
    def detect(cls, path: Path) -> bool:
        return _layout(path) is not None

    def _layout(self) -> _Layout:
        layout = _layout(self.path)
        if layout is None:
            raise UsageError(f"{self.path} is not a Thunderbird profile or mail folder")
        if layout.kind == "profiles":
            listed = ", ".join(f"{p.name} ({p.path})" for p in layout.choices)
            raise UsageError(
                f"{self.path} holds several Thunderbird profiles and none is the default; "
                f"name the one to read: {listed}"
            )
        return layout

    @property
    def profile_dir(self) -> Path | None:
        """The profile holding the files read (its prefs.js names the accounts)."""
        return self._layout().profile

    def lock(self) -> ProfileLock:
        """The state of the lock of the profile holding the files to read."""
        profile = self._layout().profile
        return ProfileLock(False) if profile is None else profile_lock(profile)

    def check_lock(self) -> None:
        """Raise :class:`SourceLockedError` while Thunderbird has the profile open."""
        if self.options.ignore_lock:
            return
        state = self.lock()
        if state.held:
            raise SourceLockedError(
                f"Thunderbird is using this profile ({state.detail}). Quit Thunderbird "
                "and try again, or read it anyway with --ignore-lock (it may be "
                "writing to the mail files meanwhile)."
            )

    def _folders(self, name_of: NameFromIndex = _name_from_msf) -> Iterator[ThunderbirdFolder]:
        layout = self._layout()
        # Thunderbird 115+ keeps hashed folders' real names in folderCache.json.
        name_of = FolderNames.load(layout.profile).wrap(name_of)
        if layout.kind == "folder":
            mbox = layout.roots[0].path
            msf = mbox.with_name(mbox.name + ".msf")
            name = folder_display_name(mbox.name, name_of(msf, mbox, "mbox"))
            yield ThunderbirdFolder((name,), mbox, msf, "mbox")
            children = mbox.with_name(mbox.name + ".sbd")
            if children.is_dir():
                reason = "its sub-folders are not part of this read (give the account directory)"
                self.skipped = [SkippedEntry(children, reason)]
            return
        self.skipped = []
        for root in layout.roots:
            prefix = (root.name,) if root.name else ()
            yield from walk_mail_root(root.path, prefix, self.skipped, name_of)

    def _keep_index(self, msf: Path | None, location: Path, store: str) -> str | None:
        """Load a folder's whole index while walking (for its name) and keep it for
        reading the folder next, so each .msf is parsed once."""
        if msf is None:
            return None
        index = self._load_index(msf, location, store)
        self._index = (msf, index)
        return index.folder_name

    def _load_index(self, msf: Path, location: Path, store: str) -> FolderIndex:
        if store == "maildir":
            return load_index(msf, None, maildir=True)
        try:
            size = location.stat().st_size if store == "mbox" else None
        except OSError:
            size = None
        return load_index(msf, size)

    def _index_of(self, folder: ThunderbirdFolder) -> FolderIndex | None:
        if folder.msf is None:
            return None
        if self._index is not None and self._index[0] == folder.msf:
            return self._index[1]
        return self._load_index(folder.msf, folder.location, folder.store)

    def folders(self) -> Iterator[SourceFolder]:
        for folder in self._folders():
            yield SourceFolder(folder.path, folder.location)

    def messages(self) -> Iterator[SourceMessage]:
        self.check_lock()
        self.notes = []
        base = self._layout().base
        for folder in self._folders(self._keep_index):
            where = os.path.relpath(folder.location, base).replace(os.sep, "/")
            if folder.store == "mbox":
                yield from self._mbox_folder(folder, where)
            elif folder.store == "maildir":
                yield from self._maildir_folder(folder, where)
            elif folder.store == "unreadable":
                yield _unreadable(folder.path or (folder.location.name,), where, folder.error)
        for skipped in self.skipped:
            self.notes.append(f"{skipped.path}: {skipped.reason}")

    # -- mbox store --------------------------------------------------------------------------
    def _mbox_folder(self, folder: ThunderbirdFolder, where: str) -> Iterator[SourceMessage]:
        index = self._index_of(folder)
        if index is not None and index.usable:
            wrong = misplaced_offset(folder.location, index)
            if wrong is not None:
                index.usable = False
                index.reason = (
                    f"{folder.msf.name if folder.msf else 'the index'} lists a message at "
                    f"byte {wrong}, where none starts"
                )
        if index is not None and not index.usable:
            self.notes.append(
                f"{where}: {index.reason}; the X-Mozilla-Status bits decide which "
                "messages were deleted"
            )
        starts = sorted(o for o in index.live if isinstance(o, int)) if index else []
        seen: set[int] = set()
        position = 0
        try:
            for entry in iter_mbox(folder.location, unquote=self.unquote, strip_mozilla=True):
                position = entry.offset
                seen.add(entry.offset)
                yield self._message(entry, folder, where, index, starts)
        except OSError as exc:
            yield unreadable_message(folder.path, f"{where}:{position}", exc)
            return
        if index is not None and index.usable:
            missing = [o for o in starts if o not in seen]
            if missing:
                self.notes.append(
                    f"{where}: the index lists {len(missing)} message(s) at offsets where "
                    f"no message starts (first: {missing[0]})"
                )

    def _message(
        self,
        entry: MboxEntry,
        folder: ThunderbirdFolder,
        where: str,
        index: FolderIndex | None,
        starts: list[int],
    ) -> SourceMessage:
        source_id = f"{where}:{entry.offset}"
        # Without the index's date, Thunderbird shows the topmost Received:, else Date:;
        # its From_ line is when it wrote the message (a copy, a compaction), last resort.
        facts = interpret_headers(entry.data, None, entry_header_block(entry), entry.removed)
        problems = list(entry.problems) + list(facts.problems)
        flags, deleted = facts.flags, facts.deleted
        received = facts.received or entry.envelope_date
        partial = facts.partial
        if index is not None and index.usable:
            row = index.live.get(entry.offset)
            if row is None:
                deleted = True
                if not facts.deleted:
                    problems.append(
                        Problem(
                            "not-in-index",
                            "the folder's .msf index has no row for this message: "
                            "Thunderbird does not show it (deleted, not yet compacted)",
                        )
                    )
            else:
                deleted = False
                flags, row_partial = row_flags(row, problems)
                partial = partial or row_partial
                received = row.received or received
            following = bisect_right(starts, entry.offset)
            inside = []
            while following < len(starts) and starts[following] < entry.end:
                inside.append(starts[following])
                following += 1
            if inside:
                problems.append(
                    Problem(
                        "index-mismatch",
                        f"the .msf index says message(s) start inside this one at byte "
                        f"{', '.join(map(str, inside))}",
                    )
                )
        if partial:
            problems.append(PARTIAL_PROBLEM)
        return SourceMessage(
            folder=folder.path,
            data=facts.data,
            flags=flags,
            received=received,
            source_id=source_id,
            deleted=deleted,
            partial=partial,
            problems=tuple(
                p
                if p.message.startswith(source_id)
                else Problem(p.code, f"{source_id}: {p.message}")
                for p in problems
            ),
        )

    # -- maildir store ----------------------------------------------------------------------
    def _maildir_folder(self, folder: ThunderbirdFolder, where: str) -> Iterator[SourceMessage]:
        index = self._index_of(folder)
        if index is not None and not index.usable:
            self.notes.append(f"{where}: {index.reason}")
        for sub in ("cur", "new"):  # tmp/ holds half-written files
            directory = folder.location / sub
            try:
                entries = sorted(directory.iterdir(), key=lambda p: p.name)
            except FileNotFoundError:
                continue  # a maildir folder may lack one of them
            except OSError as exc:
                reason = f"the directory cannot be listed: {exc.strerror or exc}"
                yield _unreadable(folder.path, f"{where}/{sub}", reason)
                continue
            names = []
            for entry in entries:
                if entry.name.startswith("."):
                    self.notes.append(f"{entry}: a hidden file, not a message")
                elif entry.is_file():
                    names.append(entry.name)
                else:
                    self.notes.append(f"{entry}: not a regular file, not read")
            for name in names:
                source_id = f"{where}/{sub}/{name}"
                try:
                    with open(directory / name, "rb") as stream:
                        data = stream.read()
                        mtime = os.fstat(stream.fileno()).st_mtime
                except OSError as exc:
                    yield unreadable_message(folder.path, source_id, exc)
                    continue
                yield self._maildir_message(data, folder, source_id, name, index, mtime)

    def _maildir_message(
        self,
        data: bytes,
        folder: ThunderbirdFolder,
        source_id: str,
        name: str,
        index: FolderIndex | None,
        mtime: float,
    ) -> SourceMessage:
        facts = interpret_headers(data, None)
        problems = list(facts.problems)
        flags, deleted, partial, received = (
            facts.flags,
            facts.deleted,
            facts.partial,
            facts.received,
        )
        row = index.live.get(name) if index is not None and index.usable else None
        if row is not None:
            deleted = False
            flags, row_partial = row_flags(row, problems)
            partial = partial or row_partial
            received = row.received or received
        if received is None:
            # No index date, no Received:/Date: field: when Thunderbird wrote the file.
            received = timestamp(int(mtime))
        if partial:
            problems.append(PARTIAL_PROBLEM)
        if not data:
            problems.append(Problem("empty", "the message file is empty"))
        return SourceMessage(
            folder=folder.path,
            data=facts.data,
            flags=flags,
            received=received,
            source_id=source_id,
            deleted=deleted,
            partial=partial,
            problems=tuple(Problem(p.code, f"{source_id}: {p.message}") for p in problems),
        )


def _unreadable(folder: tuple[str, ...], source_id: str, reason: str) -> SourceMessage:
    """A stand-in for mail in a directory that cannot be listed, so the report counts it."""
    return SourceMessage(
        folder=folder,
        data=b"",
        flags=frozenset(),
        received=None,
        source_id=source_id,
        problems=(Problem("unreadable", f"{source_id}: {reason}"),),
    )


__all__ = [
    "FolderIndex",
    "MailRoot",
    "ProfileLock",
    "SkippedEntry",
    "ThunderbirdFolder",
    "ThunderbirdProfile",
    "ThunderbirdReader",
    "find_thunderbird_profiles",
    "folder_display_name",
    "load_index",
    "mail_roots",
    "profile_lock",
    "read_prefs",
    "read_profiles_ini",
    "thunderbird_data_dirs",
    "walk_mail_root",
]
