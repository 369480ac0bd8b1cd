"""Readers for the mail stores POP3 clients leave on disk (see :mod:`advisor.stores.base`).

This module ties the readers together:

- :data:`READERS` maps each :class:`~advisor.profile.SourceKind` to its reader class.
  Reader modules are imported on first use, so a reader whose optional dependency is
  missing (libpff for PST, say) fails alone, with a clear message, and the others work.
- :func:`detect_kind` says which kind of store a path is.
- :func:`open_store` checks a path and returns the reader for it.

Detection rule: every reader's cheap ``detect()`` is asked, in :data:`DETECTION_ORDER`,
most specific format first, and the first that recognises the path wins. Specific means
"a container that holds another kind": a Thunderbird profile or folder file is also an mbox
(and a Thunderbird maildir store is also a Maildir), but only the Thunderbird reader knows
its ``.msf`` index and X-Mozilla flags, so Thunderbird comes before Maildir and mbox; a PST
file is recognised by its magic bytes; Apple Mail trees and MH folders have their own
markers; a lone file that is a ``.eml`` is read as one message before mbox is considered.
``--kind`` overrides the rule.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from pathlib import Path

from advisor.errors import UsageError
from advisor.profile import SourceKind
from advisor.stores.base import ReaderOptions, StoreReader

__all__ = [
    "DETECTION_ORDER",
    "KIND_DESCRIPTIONS",
    "READERS",
    "ReaderUnavailable",
    "candidate_kinds",
    "describe_store",
    "detect_kind",
    "open_store",
    "other_kinds",
]

# Where each reader lives: (module, class). Imported lazily by READERS.
_READER_LOCATIONS: dict[SourceKind, tuple[str, str]] = {
    SourceKind.THUNDERBIRD: ("advisor.stores.thunderbird", "ThunderbirdReader"),
    SourceKind.MBOX: ("advisor.stores.mbox", "MboxReader"),
    SourceKind.MAILDIR: ("advisor.stores.maildir", "MaildirReader"),
    SourceKind.MH: ("advisor.stores.mh", "MhReader"),
    SourceKind.EML: ("advisor.stores.eml", "EmlReader"),
    SourceKind.EMLX: ("advisor.stores.emlx", "EmlxReader"),
    SourceKind.PST: ("advisor.stores.pst", "PstReader"),
    SourceKind.POP3: ("advisor.stores.pop3", "Pop3Reader"),
}

DETECTION_ORDER: tuple[SourceKind, ...] = (
    SourceKind.PST,
    SourceKind.THUNDERBIRD,
    SourceKind.EMLX,
    SourceKind.MAILDIR,
    SourceKind.MH,
    SourceKind.EML,
    SourceKind.MBOX,
)
"""The order in which :func:`detect_kind` asks the readers: most specific first.
POP3 is not here: a live account is never found by looking at a path."""

KIND_DESCRIPTIONS: dict[SourceKind, str] = {
    SourceKind.THUNDERBIRD: "a Thunderbird profile or mail folder",
    SourceKind.MBOX: "an mbox file",
    SourceKind.MAILDIR: "a Maildir (cur/ new/ tmp/)",
    SourceKind.MH: "an MH folder (numbered message files)",
    SourceKind.EML: "an .eml file or a folder of .eml files",
    SourceKind.EMLX: "Apple Mail data (.emlx files)",
    SourceKind.PST: "an Outlook .pst file",
    SourceKind.POP3: "a POP3 account",
}


class ReaderUnavailable(UsageError):
    """A reader cannot be loaded, usually because an optional dependency is missing."""

    def __init__(self, kind: SourceKind, cause: BaseException) -> None:
        self.kind = kind
        self.cause = cause
        missing = getattr(cause, "name", None)
        own = missing is not None and missing.split(".")[0] == "advisor"
        hint = f" (the Python package {missing!r} is missing)" if missing and not own else ""
        super().__init__(f"the {kind.value} reader cannot be loaded{hint}: {cause}")


class _ReaderRegistry(Mapping[SourceKind, type[StoreReader]]):
    """SourceKind -> reader class, importing each reader module on first use.

    Looking up a reader whose module cannot be imported raises :class:`ReaderUnavailable`
    (a :class:`UsageError`); iterating and ``in`` never import anything.
    """

    def __init__(self, locations: Mapping[SourceKind, tuple[str, str]]) -> None:
        self._locations = dict(locations)
        self._loaded: dict[SourceKind, type[StoreReader]] = {}

    def __getitem__(self, kind: SourceKind) -> type[StoreReader]:
        if kind in self._loaded:
            return self._loaded[kind]
        try:
            module_name, class_name = self._locations[kind]
        except KeyError:
            raise KeyError(kind) from None
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ReaderUnavailable(kind, exc) from exc
        cls = getattr(module, class_name)
        if not (isinstance(cls, type) and issubclass(cls, StoreReader)):
            raise TypeError(f"{module_name}.{class_name} is not a StoreReader")
        self._loaded[kind] = cls
        return cls

    def __contains__(self, kind: object) -> bool:
        return kind in self._locations

    def __iter__(self) -> Iterator[SourceKind]:
        return iter(self._locations)

    def __len__(self) -> int:
        return len(self._locations)


READERS: Mapping[SourceKind, type[StoreReader]] = _ReaderRegistry(_READER_LOCATIONS)
"""The reader class for each kind of store, imported on first lookup."""


def _describe(kind: SourceKind) -> str:
    return KIND_DESCRIPTIONS.get(kind, kind.value)


def describe_store(kind: SourceKind, path: Path) -> str:
    """What the store at ``path`` is, for a person: its kind, and for mbox which program
    keeps the file or laid out the directory when that can be told (never raises)."""
    if kind is not SourceKind.MBOX:
        return _describe(kind)
    from advisor.stores.mbox import bookkeeping as unix  # mbox only: no cost for the rest

    try:
        if path.is_dir():
            layout = unix.tree_layout(path)
            return "a folder tree of mbox files" + (f" ({layout})" if layout else "")
        writer = unix.file_writer(path)
    except OSError:
        return _describe(kind)
    return _describe(kind) + (f" (kept by {writer})" if writer else "")


def _require_path(path: Path) -> None:
    """A clear error for a path that is not there (instead of a reader's OSError later)."""
    try:
        path.stat()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file or directory") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot be read: {exc.strerror or exc}") from None


def candidate_kinds(path: Path) -> list[SourceKind]:
    """Every kind whose reader recognises ``path``, in :data:`DETECTION_ORDER`.

    Readers that cannot be loaded are left out (:func:`detect_kind` says so when nothing
    else matches). A reader whose ``detect`` hits an OS error does not recognise the path.
    """
    _require_path(path)
    found: list[SourceKind] = []
    for kind in DETECTION_ORDER:
        try:
            reader = READERS[kind]
        except ReaderUnavailable:
            continue
        try:
            if reader.detect(path):
                found.append(kind)
        except OSError:
            continue
    return found


def detect_kind(path: Path, how_to_say: str = "with --kind") -> SourceKind:
    """The kind of store at ``path``: the first in :data:`DETECTION_ORDER` that recognises it.

    Raises :class:`UsageError` when the path does not exist or no reader recognises it;
    the message lists what was looked for and any reader that could not be loaded, and
    ``how_to_say`` tells how the caller's user names the kind (an option, a profile key).
    """
    path = path.expanduser()
    found = candidate_kinds(path)
    if found:
        return found[0]
    unavailable: list[str] = []
    for kind in DETECTION_ORDER:
        try:
            READERS[kind]
        except ReaderUnavailable as exc:
            unavailable.append(str(exc))
    looked_for = "; ".join(_describe(k) for k in DETECTION_ORDER)
    message = (
        f"{path}: not a mail store mailadvisor recognises (looked for {looked_for}). "
        f"If it is one, say which {how_to_say}"
    )
    if path.is_dir():
        message += "; if the folder holds several stores, give the path of one of them"
    if unavailable:
        message += ". Not checked: " + "; ".join(unavailable)
    raise UsageError(message)


# A file can be one of these kinds without any mark a cheap detect() can see (an mbox
# that lacks its leading From_ line, a single message saved without the .eml name), so
# an explicit --kind is trusted for a regular file that no reader recognises.
_FILE_KINDS_WITHOUT_MARKS = frozenset({SourceKind.MBOX, SourceKind.EML})

# Kinds whose reader reads everything another kind's reader would find at the same path:
# a Thunderbird folder tree is mbox files (or a maildir store) plus what only it knows,
# and its folders named with digits only ("2019" in Archives.sbd) are not MH messages.
_SUBSUMES: dict[SourceKind, frozenset[SourceKind]] = {
    SourceKind.THUNDERBIRD: frozenset({SourceKind.MBOX, SourceKind.MAILDIR, SourceKind.MH}),
}


def open_store(kind: SourceKind, path: Path, options: ReaderOptions | None = None) -> StoreReader:
    """The reader for the store of ``kind`` at ``path`` (``SourceKind.AUTO``: detect it).

    Raises :class:`UsageError` when the path does not exist, is not a store of that kind
    (naming the kind it looks like, if any), or the reader cannot be loaded. An explicit
    mbox or eml kind is also accepted for a regular file no reader recognises (an mbox
    without its leading From_ line is still an mbox). A POP3 account is not opened from a
    path: construct :class:`advisor.stores.pop3.Pop3Reader` with its password.
    """
    path = path.expanduser()
    if kind is SourceKind.POP3:
        raise UsageError(
            "a POP3 account has no path to open; it is read live from its server "
            "(give the account in a profile's [source] settings)"
        )
    if kind is SourceKind.AUTO:
        kind = detect_kind(path)
    else:
        _require_path(path)
        reader = READERS[kind]
        if not _safe_detect(reader, path):
            others = [k for k in candidate_kinds(path) if k is not kind]
            lenient = kind in _FILE_KINDS_WITHOUT_MARKS and path.is_file()
            if others or not lenient:
                message = f"{path}: does not look like {_describe(kind)}"
                if others:
                    message += f"; it looks like {_describe(others[0])} (--kind {others[0].value})"
                raise UsageError(message)
    return READERS[kind](path, options)


def other_kinds(path: Path, kind: SourceKind) -> list[SourceKind]:
    """Kinds other than ``kind`` that also recognise ``path`` and whose messages ``kind``'s
    reader would not read: a folder holding both mbox files and Maildirs, say. A scan names
    them so nothing at the path goes unseen. Never raises (an unreadable path has none)."""
    try:
        found = candidate_kinds(path)
    except UsageError:
        return []
    covered = _SUBSUMES.get(kind, frozenset())
    return [k for k in found if k is not kind and k not in covered]


def _safe_detect(reader: type[StoreReader], path: Path) -> bool:
    try:
        return reader.detect(path)
    except OSError:
        return False
