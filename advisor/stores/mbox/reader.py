"""The mbox reader: one mbox file, or a directory tree of them, as a store.

Each message's flags and arrival time come from its own headers (:mod:`.headers`); the
fields c-client, Dovecot and GNU mailutils keep in the file are left out
(:mod:`.bookkeeping`); which files of a tree are folders is :mod:`.tree`'s answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from advisor.errors import UsageError
from advisor.stores.base import (
    Problem,
    ReaderOptions,
    SourceFolder,
    SourceMessage,
    StoreReader,
    unreadable_message,
)
from advisor.stores.mbox.bookkeeping import (
    PSEUDO_NOTE,
    file_writer,
    inbox_reason,
    is_pseudo_message,
    keeps_quoting,
    strip_unix_fields,
)
from advisor.stores.mbox.headers import PARTIAL_PROBLEM, header_block, interpret_headers
from advisor.stores.mbox.scanner import MboxEntry, iter_mbox
from advisor.stores.mbox.tree import FolderFile, folder_files, looks_like_mbox


def quoting_option(options: ReaderOptions) -> bool:
    """``mbox_quoting`` reader option: "mboxrd" (default: remove one level) or "none"."""
    value = options.extra.get("mbox_quoting", "mboxrd").lower()
    if value not in ("mboxrd", "none"):
        raise UsageError(f'mbox_quoting must be "mboxrd" or "none", not {value!r}')
    return value == "mboxrd"


class MboxReader(StoreReader):
    """An mbox file, or a directory tree of them (mutt, Evolution 2, Pine, ...).

    A file is one folder named after it. In a directory, every file that starts
    with ``From `` is a folder; sub-directories nest (``Name.sbd/`` holds the
    children of ``Name``, as Thunderbird and Evolution 2 lay them out).
    """

    kind: ClassVar[str] = "mbox"
    metadata_notes: ClassVar[tuple[str, ...]] = (
        "Flags come from the Status: (R read) and X-Status: (A answered, F flagged, "
        "T draft, D deleted) fields, or Thunderbird's X-Mozilla-Status when present; "
        "keywords from X-Keywords. The fields Dovecot hides (X-IMAP, X-IMAPbase, X-UID, "
        "X-Keywords, Status, X-Status, Content-Length) are not uploaded.",
        "The received date is the From_ line's, in the writer's local time (no zone), "
        "else the newest Received: field's, else the Date: field's.",
        "One level of >From quoting is removed (mboxrd), as Thunderbird does, except in "
        'files kept by c-client or Dovecot, which never remove it; mbox_quoting = "none" '
        "keeps lines as stored.",
    )

    def __init__(self, path: Path, options: ReaderOptions | None = None) -> None:
        super().__init__(path, options)
        self.unquote = quoting_option(self.options)

    @classmethod
    def detect(cls, path: Path) -> bool:
        if path.is_file():
            return looks_like_mbox(path)
        if path.is_dir():
            try:
                return any(
                    child.is_file() and looks_like_mbox(child)
                    for child in sorted(path.iterdir())[:200]
                )
            except OSError:
                return False
        return False

    def _files(self, skipped: list[str] | None = None) -> Iterator[FolderFile]:
        return folder_files(self.path, skipped if skipped is not None else [])

    def folders(self) -> Iterator[SourceFolder]:
        single = not self.path.is_dir()  # a lone file may be a spool or a fetcher's target
        for folder, path, _ in self._files():
            yield SourceFolder(folder, path, inbox_reason(path) if single else None)

    def messages(self) -> Iterator[SourceMessage]:
        self.notes = []
        skipped: list[str] = []
        root = self.path if self.path.is_dir() else self.path.parent
        for folder, path, error in self._files(skipped):
            where = path.relative_to(root).as_posix()
            if error is not None:
                yield unreadable_message(folder, where, error)
            else:
                yield from read_mbox_folder(path, folder, where, self.unquote, skipped)
        self.folder_data = sum(note.endswith(PSEUDO_NOTE) for note in skipped)
        self.notes.extend(skipped)


def read_mbox_folder(
    path: Path, folder: tuple[str, ...], where: str, unquote: bool, notes: list[str]
) -> Iterator[SourceMessage]:
    """The messages of one mbox file; a file that cannot be read becomes one
    unreadable entry (empty data, problem "unreadable") instead of an exception.
    c-client's folder-data record is left out, with a note (see :mod:`.bookkeeping`)."""
    position = 0
    try:
        writer = file_writer(path)
        unquote = unquote and not keeps_quoting(writer)
        for n, entry in enumerate(iter_mbox(path, unquote=unquote, strip_mozilla=True)):
            position = entry.offset
            if not n and writer and is_pseudo_message(entry.envelope, entry_header_block(entry)):
                notes.append(f"{where}:{entry.offset}: {PSEUDO_NOTE}")
                continue
            yield message_from_entry(entry, folder, f"{where}:{entry.offset}")
    except OSError as exc:
        yield unreadable_message(folder, f"{where}:{position}", exc)


def message_from_entry(
    entry: MboxEntry,
    folder: tuple[str, ...],
    source_id: str,
) -> SourceMessage:
    """A :class:`SourceMessage` from an mbox entry, trusting only its own headers,
    without the bookkeeping fields Dovecot hides (see :mod:`.bookkeeping`)."""
    data, size = entry.data, entry.header_size
    block = header_block(data) if size is None else data[:size]
    facts = interpret_headers(data, entry.envelope_date, block, entry.removed)
    unix = strip_unix_fields(facts.data, block if facts.data is data else header_block(facts.data))
    problems = [*entry.problems, *facts.problems, *unix.problems]
    if facts.partial:
        problems.append(PARTIAL_PROBLEM)
    return SourceMessage(
        folder=folder,
        data=unix.data,
        flags=facts.flags | unix.keywords,
        received=facts.received,
        source_id=source_id,
        deleted=facts.deleted,
        partial=facts.partial,
        problems=locate(problems, source_id) if problems else (),
    )


def entry_header_block(entry: MboxEntry) -> bytes:
    """The header block of an entry's message (see :func:`header_block`)."""
    if entry.header_size is None:
        return header_block(entry.data)
    return entry.data[: entry.header_size]


def locate(problems: list[Problem], source_id: str) -> tuple[Problem, ...]:
    """Problems keep their code; their message says where (file and byte offset)."""
    return tuple(
        problem
        if problem.message.startswith(source_id)
        else Problem(problem.code, f"{source_id}: {problem.message}")
        for problem in problems
    )
