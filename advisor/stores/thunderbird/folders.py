"""The folders of a Thunderbird account directory: which entries are folders, and their names.

An mbox file ``Name`` with its ``.msf`` summary and its sub-folders in ``Name.sbd/``, or a
maildir folder ``Name/`` with ``cur/``; Thunderbird's own files are passed over, anything
else that is not read is named with the reason. A folder's real name comes from its .msf
(old hashed names) or its percent-encoded file name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from advisor.stores.thunderbird.mork import MorkError, read_mork
from advisor.stores.thunderbird.msf_index import FOLDER_INFO_KIND

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


def name_from_msf(msf: Path | None, location: Path, store: str) -> str | None:
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
    name_of: NameFromIndex = name_from_msf,
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
            if not is_directory(entry):
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
        if name + ".sbd" in names and is_directory(children):
            walked.add(children.name)
            yield from walk_mail_root(children, path, skipped, name_of)
    # Every other Name.sbd: its Name is missing, or is no folder; its sub-folders count.
    for entry in entries:
        name = entry.name
        if name.endswith(".sbd") and len(name) > 4 and name not in walked and is_directory(entry):
            base = name[:-4]
            summary = entry.with_name(base + ".msf") if base + ".msf" in names else None
            recorded = name_of(summary, entry, "none")
            path = (*parent, folder_display_name(base, recorded))
            yield ThunderbirdFolder(path, entry, summary, "none")
            yield from walk_mail_root(entry, path, skipped, name_of)


def is_directory(path: Path) -> bool:
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
