"""Which files of a directory tree are mbox folders, and what each folder is called.

Every regular file starting with ``From `` is a folder named after the file (``inbox.mbox``
-> ``inbox``); sub-directories nest (``Name.sbd/`` holds the children of ``Name``, as
Thunderbird and Evolution 2 lay them out). Hidden files (``.imap``, ``.subscriptions``),
summaries and Maildirs are not read, and each is named in the reader's notes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from advisor.stores.fsnames import decode_folder_name

__all__ = ["FolderFile", "folder_files", "folder_name_for", "looks_like_mbox"]

FROM_ = b"From "
_MBOX_SUFFIXES = (".mbox", ".mbx")
_SKIP_SUFFIXES = (".msf", ".ev-summary", ".ev-summary-meta", ".cmeta", ".ibex.index", ".lock")


FolderFile = tuple[tuple[str, ...], Path, OSError | None]
"""(folder, its mbox file, the error that keeps it from being read)."""


def folder_name_for(path: Path, notes: list[str] | None = None) -> str:
    """A folder's name from its mbox file name (``inbox.mbox`` -> ``inbox``); a name
    that is not UTF-8 is decoded (:mod:`advisor.stores.fsnames`), said in ``notes``."""
    name = decode_folder_name(path.name, path.parent, [] if notes is None else notes)
    for suffix in _MBOX_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def looks_like_mbox(path: Path) -> bool:
    """Cheap test: a regular file whose first bytes are ``From ``."""
    try:
        with open(path, "rb") as stream:
            return stream.read(5) == FROM_
    except OSError:
        return False


def _is_maildir(path: Path) -> bool:
    try:
        return (path / "cur").is_dir()
    except OSError:  # a directory that cannot be entered is not known to be one
        return False


def _empty(path: Path) -> bool:
    try:
        return path.stat().st_size == 0
    except OSError:
        return False


def _unreadable(path: Path) -> bool:
    try:
        with open(path, "rb"):
            return False
    except OSError:
        return True


def folder_files(path: Path, skipped: list[str]) -> Iterator[FolderFile]:
    """The folder files of the mbox file or directory tree at ``path``; what is not read
    goes to ``skipped`` with the reason."""
    if not path.is_dir():
        yield (folder_name_for(path),), path, None
        return
    yield from _walk(path, (), skipped)


def _walk(directory: Path, parent: tuple[str, ...], skipped: list[str]) -> Iterator[FolderFile]:
    """Folder files below ``directory``; what is not read goes to ``skipped`` with
    the reason (hidden files and known summary files only when they hold mail). A
    directory that cannot be listed comes with its error, to be reported unreadable."""
    try:
        entries = sorted(directory.iterdir(), key=lambda p: p.name)
    except OSError as exc:
        yield parent or (directory.name,), directory, exc
        return
    for entry in entries:
        name = entry.name
        if name.startswith(".") or name.lower().endswith(_SKIP_SUFFIXES):
            if entry.is_file() and looks_like_mbox(entry):
                skipped.append(f"{entry}: a hidden or summary file holding mail, not read")
            continue
        if entry.is_file():
            # A file that cannot be opened is listed, so that it is reported, not lost;
            # an empty file is an empty folder.
            if looks_like_mbox(entry) or _unreadable(entry) or _empty(entry):
                yield (*parent, folder_name_for(entry, skipped)), entry, None
            else:
                skipped.append(f"{entry}: not an mbox (it does not start with 'From ')")
        elif entry.is_dir():
            if _is_maildir(entry):
                skipped.append(f"{entry}: a Maildir, not read here (--kind maildir)")
                continue
            child = decode_folder_name(name, directory, skipped)
            child = child[:-4] if child.endswith(".sbd") else child
            yield from _walk(entry, (*parent, child), skipped)
        else:
            skipped.append(f"{entry}: not a regular file, not read")
