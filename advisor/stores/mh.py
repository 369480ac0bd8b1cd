"""MH folders (nmh, mutt, Claws Mail, Sylpheed).

Every directory is a folder; its messages are the files named by a number (gaps are
normal). Messages directly in the directory given are the Inbox, ``("INBOX",)``; a
sub-directory ``work/2019`` is the folder ``("work", "2019")``.

Flags come from the folder's ``.mh_sequences``: a message not in ``unseen`` is
\\Seen, ``replied`` gives \\Answered, ``flagged`` \\Flagged, ``forwarded`` $Forwarded.
Sequences are lists of numbers and ranges (``unseen: 1-5 8 10-12``). A folder without
``.mh_sequences`` has no unseen message. Claws Mail and Sylpheed leave ``.mh_sequences``
empty and keep their marks in ``.claws_mark`` / ``.sylpheed_mark``
(:mod:`advisor.stores.claws_marks`): when a folder has one, it decides \\Seen, flags,
colour labels (as keywords) and deletion; a message it has no entry for is unseen.
nmh's ``rmm`` keeps a removed message as ``,N`` (or ``#N``): such files are yielded as
deleted, so they can be recovered but are skipped by default. Other names are not
messages and are ignored.

The received date is the topmost Received: header's, else Date:, else the file's mtime.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import ClassVar

from advisor.stores.base import (
    ANSWERED,
    FLAGGED,
    FORWARDED,
    SEEN,
    Problem,
    SourceFolder,
    SourceMessage,
    StoreReader,
    unreadable_message,
)
from advisor.stores.claws_marks import read_marks, read_tag_names, read_tags
from advisor.stores.fsnames import decode_folder_name
from advisor.stores.message_files import (
    INBOX,
    LoopGuard,
    folder_key,
    is_dir,
    is_file,
    list_directory,
    read_bytes,
    read_message_file,
    received_or_mtime,
    sorted_dir,
    source_id,
)

SEQUENCES_FILE = ".mh_sequences"
SEQUENCE_FLAGS: dict[str, str] = {
    "replied": ANSWERED,
    "flagged": FLAGGED,
    "forwarded": FORWARDED,
}
UNSEEN = "unseen"
# nmh's rmm renames a removed message with one of these prefixes (its "backup" prefix).
DELETED_PREFIXES = (",", "#")
_MAX_DEPTH = 64


class Sequence:
    """A set of message numbers kept as sorted, merged ranges (cheap for "1-100000")."""

    def __init__(self, ranges: list[tuple[int, int]]) -> None:
        merged: list[tuple[int, int]] = []
        for lo, hi in sorted(ranges):
            if merged and lo <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
            else:
                merged.append((lo, hi))
        self._starts = [lo for lo, _ in merged]
        self._ranges = merged

    def __contains__(self, number: object) -> bool:
        if not isinstance(number, int):
            return False
        i = bisect.bisect_right(self._starts, number) - 1
        return i >= 0 and self._ranges[i][0] <= number <= self._ranges[i][1]


def parse_sequences(text: str) -> tuple[dict[str, Sequence], list[Problem]]:
    """The sequences of an ``.mh_sequences`` file, and what could not be understood."""
    raw: dict[str, list[tuple[int, int]]] = {}
    problems: list[Problem] = []
    name: str | None = None
    for line in text.splitlines():
        if not line.strip():
            continue
        if line[:1] in (" ", "\t") and name is not None:
            body = line  # continuation of the previous sequence
        else:
            name, sep, body = line.partition(":")
            if not sep:
                problems.append(Problem("bad-flags", f".mh_sequences: line {line!r} ignored"))
                name = None
                continue
            name = name.strip().lower()
        ranges = raw.setdefault(name, [])
        for token in body.split():
            lo, dash, hi = token.partition("-")
            if lo.isdigit() and (not dash or hi.isdigit()):
                ranges.append((int(lo), int(hi) if dash else int(lo)))
            else:
                problems.append(
                    Problem("bad-flags", f".mh_sequences: {name}: {token!r} is not a number")
                )
    return {n: Sequence(r) for n, r in raw.items()}, problems


def message_number(name: str) -> tuple[int, bool] | None:
    """(number, deleted) for a message file name, None for any other file."""
    deleted = name[:1] in DELETED_PREFIXES
    digits = name[1:] if deleted else name
    if digits.isascii() and digits.isdigit():
        return int(digits), deleted
    return None


_Folder = tuple[tuple[str, ...], Path, list[tuple[int, bool, str]], tuple[str, ...], str | None]


class MhReader(StoreReader):
    """Reads a tree of MH folders."""

    kind: ClassVar[str] = "mh"
    metadata_notes: ClassVar[tuple[str, ...]] = (
        "Flags come from .mh_sequences (unseen, replied, flagged), or from Claws Mail's and "
        "Sylpheed's .claws_mark/.sylpheed_mark (colour labels become keywords).",
        "Messages removed with rmm (,N files) are reported as deleted.",
        "The received date comes from the Received:/Date: headers, else the file's time.",
    )

    @classmethod
    def detect(cls, path: Path) -> bool:
        if not path.is_dir() or (path / "cur").is_dir() or (path / "new").is_dir():
            return False
        entries = sorted_dir(path)
        if _holds_mbox_folders(entries):
            return False
        if _looks_like_mh(path, entries):
            return True
        return any(
            is_dir(entry) and _looks_like_mh(Path(entry.path))
            for entry in entries[:500]
            if not entry.name.startswith(".")
        )

    def folders(self) -> Iterator[SourceFolder]:
        seen: set[tuple[str, ...]] = set()
        for folder, directory, _, _, _ in self._walk():
            if folder not in seen:  # several directories can make one folder
                seen.add(folder)
                yield SourceFolder(folder, directory)

    def messages(self) -> Iterator[SourceMessage]:
        for folder, directory, files, relative, error in self._walk():
            if error is not None:
                yield unreadable_message(folder, folder_key(relative) or ".", error)
            yield from self._folder_messages(folder, directory, files, relative)

    def _walk(self) -> Iterator[_Folder]:
        """(folder, directory, numbered files, relative path, why it cannot be listed)
        depth first, in name order."""
        guard = LoopGuard()
        stack: list[tuple[Path, tuple[str, ...], int]] = [(self.path, (), 0)]
        while stack:
            directory, parent, depth = stack.pop()
            if depth > _MAX_DEPTH or not guard.first_visit(directory):
                continue
            files: list[tuple[int, bool, str]] = []
            children: list[tuple[Path, tuple[str, ...], int]] = []
            has_sequences = False
            entries, error = list_directory(directory)
            for entry in entries:
                name = entry.name
                if name == SEQUENCES_FILE:
                    has_sequences = True
                if name.startswith("."):
                    continue
                if is_dir(entry):
                    child = decode_folder_name(name, directory, self.notes)
                    children.append((Path(entry.path), (*parent, child), depth + 1))
                    continue
                number = message_number(name)
                if number is not None:  # a broken link or odd file is reported when read
                    files.append((number[0], number[1], name))
            if parent:
                yield parent, directory, files, parent, error
            elif files or has_sequences or error:
                yield (INBOX,), directory, files, parent, error
            stack.extend(reversed(children))

    @cached_property
    def _tag_names(self) -> dict[int, str] | None:
        """Claws Mail's tag names (``~/.claws-mail/tagsrc`` beside ``~/Mail``), read once."""
        return read_tag_names(self.path)

    def _folder_messages(
        self,
        folder: tuple[str, ...],
        directory: Path,
        files: list[tuple[int, bool, str]],
        relative: tuple[str, ...],
    ) -> Iterator[SourceMessage]:
        sequences: dict[str, Sequence] = {}
        folder_problems: list[Problem] = []
        try:
            text = read_bytes(directory / SEQUENCES_FILE).decode("utf-8", "replace")
        except FileNotFoundError:
            pass
        except OSError as exc:
            folder_problems.append(
                Problem("bad-flags", f"{directory / SEQUENCES_FILE}: {exc.strerror}; flags unknown")
            )
        else:
            sequences, folder_problems = parse_sequences(text)
        unseen = sequences.get(UNSEEN)
        marks, mark_problems = read_marks(directory)
        tags, tag_problems = read_tags(directory, self._tag_names)
        folder_problems.extend(mark_problems + tag_problems)
        for number, deleted, name in sorted(files):
            path = directory / name
            data, problems = read_message_file(path)
            received, date_problems = received_or_mtime(data, path)
            flags: set[str] = set()
            if not deleted:
                if marks is not None:
                    # Claws Mail / Sylpheed: the mark file is the state; no entry: unseen.
                    mark = marks.get(number)
                    if mark is not None:
                        flags |= mark.flags
                        deleted = mark.deleted
                        if mark.seen:
                            flags.add(SEEN)
                elif unseen is None or number not in unseen:
                    flags.add(SEEN)
                flags |= tags.get(number, frozenset())
                for sequence, flag in SEQUENCE_FLAGS.items():
                    seq = sequences.get(sequence)
                    if seq is not None and number in seq:
                        flags.add(flag)
            yield SourceMessage(
                folder=folder,
                data=data,
                flags=frozenset(flags),
                received=received,
                # The relative path, not the folder: root messages are "INBOX" too.
                source_id=source_id(relative, name),
                deleted=deleted,
                problems=(*problems, *date_problems, *folder_problems),
            )


def _looks_like_mh(directory: Path, entries: list[os.DirEntry[str]] | None = None) -> bool:
    """An MH folder: it has .mh_sequences, or its first files include numbered ones, and
    it is not a tree of mbox folders (see :func:`_holds_mbox_folders`)."""
    if entries is None:
        entries = sorted_dir(directory)
    if _holds_mbox_folders(entries):
        return False
    if any(e.name == SEQUENCES_FILE for e in entries):
        return True
    if any(e.name.endswith((".eml", ".emlx")) for e in entries[:200]):
        return False
    return any(e.name.isascii() and e.name.isdigit() and is_file(e) for e in entries[:2000])


_MBOX_PROBES = 20
"""How many numbered files detection opens to see whether they are mbox files."""


def _holds_mbox_folders(entries: list[os.DirEntry[str]]) -> bool:
    """A Thunderbird or Evolution folder tree, not MH: it nests through ``Name.sbd``
    directories, or its numbered files are mbox files (a Thunderbird folder named
    "2019" starts with a From_ line; an MH message never does)."""
    if any(e.name.endswith(".sbd") and is_dir(e) for e in entries):
        return True
    probed = 0
    for entry in entries:
        if probed >= _MBOX_PROBES:
            break
        if entry.name.isascii() and entry.name.isdigit() and is_file(entry):
            probed += 1
            try:
                with open(entry.path, "rb") as stream:
                    if stream.read(5) == b"From ":
                        return True
            except OSError:
                continue
    return False
