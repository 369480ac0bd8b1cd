"""The one interface every local-store reader implements.

A reader walks a mail store that a POP3 client left on disk (or a live POP3
account) and yields :class:`SourceMessage` objects one at a time, so memory
never grows with the size of the store. Readers never write to the source:
files are opened read-only and nothing is created, locked or renamed.

Readers yield every message they find, including ones the user deleted
(``deleted=True``) and incomplete ones (``partial=True``); what to do with them
is the caller's decision (skip, count, recover into a separate folder).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import ClassVar

# IMAP system flags and the common keyword for forwarded mail (RFC 5788 registry).
SEEN = "\\Seen"
ANSWERED = "\\Answered"
FLAGGED = "\\Flagged"
DRAFT = "\\Draft"
FORWARDED = "$Forwarded"


@dataclass(frozen=True)
class Problem:
    """Something wrong with one message, for the report.

    ``code`` is short and stable for scripts: "partial", "unreadable",
    "bad-date", "no-separator", "truncated", "bad-flags", ...
    """

    code: str
    message: str


@dataclass(frozen=True)
class SourceMessage:
    """One message as the client stored it."""

    folder: tuple[str, ...]
    """Logical folder path, one name per level: ("Inbox",), ("Archives", "2019").
    Names never contain a separator; a name may contain any character."""
    data: bytes
    """The exact bytes as stored, minus only the store's own bookkeeping (mbox From_
    line, one level of mboxrd quoting, X-Mozilla-Status/-Status2/-Keys headers). Line
    endings are left as stored; the uploader converts to CRLF. Empty if unreadable."""
    flags: frozenset[str]
    """IMAP flags (\\Seen \\Answered \\Flagged \\Draft) and keywords ($Forwarded, $label1...)."""
    received: datetime | None
    """When the message arrived, for INTERNALDATE: timezone-aware when the store
    records the zone, naive (local time) when it does not, None when unknown."""
    source_id: str
    """Stable identity within the store: the same message gives the same id on every
    read of an unchanged store (mbox: folder + byte offset; Maildir: unique name part;
    POP3: UIDL; ...)."""
    deleted: bool = False
    """The user deleted it (Thunderbird expunged-not-compacted, Maildir T, emlx bit 1)."""
    partial: bool = False
    """The body is missing or incomplete (headers-only POP3 download, .partial.emlx)."""
    problems: tuple[Problem, ...] = ()

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def readable(self) -> bool:
        return not any(p.code == "unreadable" for p in self.problems)


@dataclass(frozen=True)
class SourceFolder:
    """A folder of the store, as listed before reading messages."""

    path: tuple[str, ...]
    location: Path | None = None
    """The file or directory holding it, for messages to the user."""
    inbox_reason: str | None = None
    """Why this folder is the user's inbox although it is not named so (a mail spool, a
    fetcher's target file); the migration plan then proposes the server's INBOX."""


@dataclass(frozen=True)
class ReaderOptions:
    """Choices a user can make about reading."""

    ignore_lock: bool = False
    """Read a Thunderbird profile even while its lock file is held (the client may be
    writing to it meanwhile)."""
    extra: dict[str, str] = field(default_factory=dict)
    """Reader-specific settings (e.g. a POP3 reader's host and user)."""


class StoreReader(ABC):
    """Reads one kind of store. Subclasses set ``kind`` and implement the two methods."""

    kind: ClassVar[str]
    """The profile's [source] kind this reader serves ("mbox", "maildir", ...)."""
    metadata_notes: ClassVar[tuple[str, ...]] = ()
    """What this kind of store keeps or loses (flags, dates, exact bytes), for reports."""

    def __init__(self, path: Path, options: ReaderOptions | None = None) -> None:
        self.path = path
        self.options = options or ReaderOptions()
        self.notes: list[str] = []
        """What the last :meth:`messages` run noticed that is not a message's problem (a
        stale index, files that are not mail and were not read...), for the report.
        Complete once the messages have all been read."""
        self.folder_data = 0
        """How many records the last :meth:`messages` run left out because they are the
        store's own data, not mail (c-client's "DON'T DELETE THIS MESSAGE"); each is
        also named in :attr:`notes`."""

    @classmethod
    @abstractmethod
    def detect(cls, path: Path) -> bool:
        """True when ``path`` looks like a store of this kind (cheap: names and first bytes)."""

    @abstractmethod
    def folders(self) -> Iterator[SourceFolder]:
        """The store's folders, cheaply (without reading every message)."""

    @abstractmethod
    def messages(self) -> Iterator[SourceMessage]:
        """Every message of every folder, one at a time, folder by folder."""

    def close(self) -> None:
        """Release what the reader keeps between calls (a PST's extraction made for
        :meth:`folders`); reading again afterwards still works. Most keep nothing."""
        return None


def unreadable_message(
    folder: tuple[str, ...], source_id: str, reason: str | OSError
) -> SourceMessage:
    """A stand-in for mail that could not be read (a file, a folder that cannot be listed,
    an item a library cannot decode), so that the report counts and names it and a
    migration says it did not move it. ``reason`` is the problem's message; an OSError
    gives "<source_id>: cannot be read: <why>"."""
    if isinstance(reason, OSError):
        reason = f"{source_id}: cannot be read: {reason.strerror or reason}"
    return SourceMessage(
        folder=folder,
        data=b"",
        flags=frozenset(),
        received=None,
        source_id=source_id,
        problems=(Problem("unreadable", reason),),
    )
