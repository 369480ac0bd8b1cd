"""Counting what a store holds, folder by folder, without keeping any message.

:func:`scan_store` streams a reader's messages once and keeps only counters: per folder,
how many messages, how many bytes, the first and last received date, how many the user
deleted, how many are partial or unreadable, and which problems the reader reported.
Memory depends on the number of folders, never on the number or size of messages.

:func:`scan_stores` does the same for several stores (what discovery found), turning a
store that cannot be read into an error line of the report instead of stopping.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from advisor.errors import MailadvisorError, UsageError
from advisor.profile import SourceKind
from advisor.stores import describe_store, open_store, other_kinds
from advisor.stores.base import ReaderOptions, SourceMessage, StoreReader

__all__ = [
    "MAX_PROBLEM_EXAMPLES",
    "Counts",
    "FolderScan",
    "ProblemExample",
    "ScanProgress",
    "ScanReport",
    "ScanTarget",
    "ScannedStore",
    "StoreScan",
    "scan_reader",
    "scan_store",
    "scan_stores",
]

MAX_PROBLEM_EXAMPLES = 100
"""How many individual problems a scan keeps for the report (all are counted)."""

PROGRESS_INTERVAL = 0.1
"""Seconds between two progress reports (plus one at each folder change and at the end)."""


@dataclass
class Counts:
    """What a set of messages adds up to. ``messages`` counts every message found,
    deleted ones included; ``deleted``, ``partial``, ``unreadable`` are subsets of it."""

    messages: int = 0
    bytes: int = 0
    first_received: datetime | None = None
    last_received: datetime | None = None
    undated: int = 0
    """Messages without a known received date."""
    deleted: int = 0
    partial: int = 0
    unreadable: int = 0
    problems: dict[str, int] = field(default_factory=dict)
    """Problem code -> how many times the reader reported it."""


@dataclass
class FolderScan(Counts):
    """One folder: its own messages (not its children's) and its subfolders."""

    path: tuple[str, ...] = ()
    """The folder's logical path; () is the store itself (messages outside any folder)."""
    location: Path | None = None
    listed: bool = True
    """False for a folder only implied by a child's path or first seen on a message."""
    children: list[FolderScan] = field(default_factory=list)

    def walk(self) -> Iterable[FolderScan]:
        """This folder, then every folder below it, depth first, in order."""
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass(frozen=True)
class ProblemExample:
    """One reported problem, with where it is, for the user to look at."""

    folder: tuple[str, ...]
    source_id: str
    code: str
    message: str


@dataclass
class StoreScan:
    """The result of :func:`scan_store`."""

    kind: str
    path: Path
    root: FolderScan
    totals: Counts
    folders: int
    """How many folders the store has: those the reader lists, and any holding mail (an
    account directory or the store root that only contains folders is not one)."""
    problem_examples: list[ProblemExample] = field(default_factory=list)
    notes: tuple[str, ...] = ()
    """What the reader noticed while reading this store (a stale index, files that are
    not mail...)."""
    metadata_notes: tuple[str, ...] = ()
    """What this kind of store keeps or loses (flags, dates, exact bytes), from the reader."""
    seconds: float = 0.0
    folder_data: int = 0
    """Records that are the store's own data, not mail (c-client's "DON'T DELETE THIS
    MESSAGE"): not counted as messages, never migrated, nothing lost."""


@dataclass(frozen=True)
class ScanProgress:
    """Where a scan has got to, for a progress bar."""

    folder: tuple[str, ...]
    messages: int
    bytes: int
    folders_done: int
    folders_total: int
    bytes_total: int | None
    """The size on disk of the store's folder files, when every folder is one file
    (mbox, Thunderbird, PST); None when that cannot be known cheaply."""
    done: bool = False


ProgressCallback = Callable[[ScanProgress], None]


class _Acc:
    """Running counts of one folder; dates compared as aware datetimes."""

    __slots__ = ("first", "first_key", "last", "last_key", "problems", "scan")

    def __init__(self, scan: FolderScan) -> None:
        self.scan = scan
        self.problems: Counter[str] = Counter()
        self.first: datetime | None = None
        self.first_key: datetime | None = None
        self.last: datetime | None = None
        self.last_key: datetime | None = None

    def add(self, msg: SourceMessage) -> None:
        s = self.scan
        s.messages += 1
        s.bytes += len(msg.data)
        s.deleted += msg.deleted
        s.partial += msg.partial
        if not msg.readable:
            s.unreadable += 1
        for problem in msg.problems:
            self.problems[problem.code] += 1
        if msg.received is None:
            s.undated += 1
            return
        key = _comparable(msg.received)
        if self.first_key is None or key < self.first_key:
            self.first, self.first_key = msg.received, key
        if self.last_key is None or key > self.last_key:
            self.last, self.last_key = msg.received, key

    def finish(self) -> None:
        self.scan.first_received, self.scan.last_received = self.first, self.last
        self.scan.problems = dict(sorted(self.problems.items()))


def _comparable(when: datetime) -> datetime:
    """An aware datetime for ordering: a naive one is local time, as the readers say."""
    if when.tzinfo is not None and when.utcoffset() is not None:
        return when
    try:
        return when.astimezone()
    except (OverflowError, OSError, ValueError):  # years the platform's clock cannot place
        return when.replace(tzinfo=UTC)


class _Tree:
    """Folder nodes by path, created on demand with their parents."""

    def __init__(self) -> None:
        self.root = FolderScan(path=(), listed=False)
        self.accs: dict[tuple[str, ...], _Acc] = {(): _Acc(self.root)}

    def node(self, path: tuple[str, ...], location: Path | None = None, *, listed: bool) -> _Acc:
        acc = self.accs.get(path)
        if acc is None:
            parent = self.node(path[:-1], listed=False)
            folder = FolderScan(path=path, location=location, listed=listed)
            parent.scan.children.append(folder)
            acc = self.accs[path] = _Acc(folder)
        elif listed and not acc.scan.listed:
            acc.scan.listed = True
            acc.scan.location = acc.scan.location or location
        return acc


def scan_store(reader: StoreReader, progress: ProgressCallback | None = None) -> StoreScan:
    """Read every message of ``reader`` once and count it into its folder.

    Folders come from ``reader.folders()`` first, so empty folders appear too; a message
    in a folder that was not listed adds it. ``progress`` is called every
    :data:`PROGRESS_INTERVAL` seconds at most, when the folder changes, and once at the end.
    Errors a user can act on (a locked profile, a missing file) propagate as
    :class:`~advisor.errors.MailadvisorError`; an OS error while reading becomes a
    :class:`UsageError` naming the file.
    """
    started = time.monotonic()
    tree = _Tree()
    try:
        listed = list(reader.folders())
        for folder in listed:
            tree.node(folder.path, folder.location, listed=True)
        bytes_total = _files_size([f.location for f in listed])
        folders_total = len(listed)

        examples: list[ProblemExample] = []
        messages = size = folders_done = 0
        current: tuple[str, ...] | None = None
        acc = tree.accs[()]
        last_report = started
        for msg in reader.messages():
            if msg.folder != current:
                if current is not None:
                    folders_done += 1
                current = msg.folder
                acc = tree.node(msg.folder, listed=False)
                last_report = 0.0  # report the new folder at once
            acc.add(msg)
            messages += 1
            size += len(msg.data)
            for problem in msg.problems:
                if len(examples) < MAX_PROBLEM_EXAMPLES:
                    examples.append(
                        ProblemExample(msg.folder, msg.source_id, problem.code, problem.message)
                    )
            if progress is not None:
                now = time.monotonic()
                if now - last_report >= PROGRESS_INTERVAL:
                    last_report = now
                    # A reader may come back to a folder: never report more than there are.
                    done = min(folders_done, folders_total) if folders_total else folders_done
                    progress(
                        ScanProgress(msg.folder, messages, size, done, folders_total, bytes_total)
                    )
    except OSError as exc:
        where = exc.filename or reader.path
        raise UsageError(f"{where}: cannot be read: {exc.strerror or exc}") from exc
    finally:
        reader.close()

    for a in tree.accs.values():
        a.finish()
    if progress is not None:
        progress(
            ScanProgress(
                current or (),
                messages,
                size,
                max(folders_done + (current is not None), folders_total),
                folders_total,
                bytes_total,
                done=True,
            )
        )
    totals = Counts()
    problems: Counter[str] = Counter()
    nodes = list(tree.root.walk())
    for node in nodes:
        _add_counts(totals, node)
        problems.update(node.problems)
    totals.problems = dict(sorted(problems.items()))
    return StoreScan(
        kind=reader.kind,
        path=reader.path,
        root=tree.root,
        totals=totals,
        folders=sum(1 for n in nodes if n.listed or n.messages),
        problem_examples=examples,
        notes=tuple(reader.notes),
        metadata_notes=reader.metadata_notes,
        seconds=time.monotonic() - started,
        folder_data=reader.folder_data,
    )


def _add_counts(total: Counts, part: Counts) -> None:
    total.messages += part.messages
    total.bytes += part.bytes
    total.undated += part.undated
    total.deleted += part.deleted
    total.partial += part.partial
    total.unreadable += part.unreadable
    if part.first_received is not None and (
        total.first_received is None
        or _comparable(part.first_received) < _comparable(total.first_received)
    ):
        total.first_received = part.first_received
    if part.last_received is not None and (
        total.last_received is None
        or _comparable(part.last_received) > _comparable(total.last_received)
    ):
        total.last_received = part.last_received


def _files_size(locations: list[Path | None]) -> int | None:
    """Total size of the folders' files, or None unless every folder is a regular file."""
    total = 0
    for location in locations:
        if location is None:
            return None
        try:
            st = os.stat(location)
        except OSError:
            return None
        if not os.path.isfile(location):
            return None
        total += st.st_size
    return total if locations else None


# --- several stores -----------------------------------------------------------------


@dataclass(frozen=True)
class ScanTarget:
    """A store to scan: a path the user gave, or one that discovery found."""

    kind: SourceKind
    path: Path
    client: str | None = None
    reason: str | None = None


@dataclass
class ScannedStore:
    """One store's scan, or why it could not be scanned."""

    kind: SourceKind
    path: Path
    client: str | None
    reason: str | None
    scan: StoreScan | None
    error: str | None = None
    also: list[SourceKind] = field(default_factory=list)
    """Other kinds of store found at the same path, which this scan did not read."""
    source: str = ""
    """The store as the user knows it: its path, or a POP3 account's ``pop3s://user@host``."""
    description: str = ""
    """What the store is ("a folder tree of mbox files (Alpine/Pine's ~/mail)")."""

    def __post_init__(self) -> None:
        if not self.source:
            self.source = str(self.path)
        if not self.description:
            self.description = describe_store(self.kind, self.path)


@dataclass
class ScanReport:
    """What ``mailadvisor scan`` found."""

    stores: list[ScannedStore] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    home: Path | None = None
    """Where discovery looked (None when the user gave a path)."""

    @property
    def failed(self) -> int:
        return sum(1 for s in self.stores if s.error is not None)


def scan_reader(
    reader: StoreReader,
    target: ScanTarget,
    progress: ProgressCallback | None = None,
    *,
    source: str = "",
) -> ScannedStore:
    """Scan one reader that is already open (a profile's source, a live POP3 account).
    Errors propagate: a refused login, an unreachable server, a locked profile."""
    scan = scan_store(reader, progress)
    kind = SourceKind(reader.kind)
    also = [] if kind is SourceKind.POP3 else other_kinds(reader.path, kind)
    return ScannedStore(
        kind, reader.path, target.client, target.reason, scan, None, also, source=source
    )


def scan_stores(
    targets: Iterable[ScanTarget],
    options: ReaderOptions | None = None,
    progress: Callable[[ScanTarget], ProgressCallback | None] | None = None,
    *,
    keep_going: bool = True,
) -> list[ScannedStore]:
    """Scan each target in turn. With ``keep_going``, a store that cannot be opened or read
    (a :class:`MailadvisorError`: locked, unreadable, reader unavailable) is recorded with
    its error and the next one is scanned; without it, the error propagates.
    ``progress(target)`` gives the progress callback for that target's scan."""
    results: list[ScannedStore] = []
    for target in targets:
        try:
            reader = open_store(target.kind, target.path, options)
            kind = SourceKind(reader.kind)
            scan = scan_store(reader, progress(target) if progress else None)
        except MailadvisorError as exc:
            if not keep_going:
                raise
            results.append(
                ScannedStore(target.kind, target.path, target.client, target.reason, None, str(exc))
            )
            continue
        also = other_kinds(target.path, kind)
        results.append(
            ScannedStore(kind, target.path, target.client, target.reason, scan, None, also)
        )
    return results
