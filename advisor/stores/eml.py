"""Trees of ``.eml`` files (Windows Live Mail, Outlook Express exports, saved messages).

Each ``.eml`` file is one message, kept byte for byte. The folder is the file's
directory relative to the root (``Inbox/2019/x.eml`` is in ``("Inbox", "2019")``);
files directly in the root are the Inbox, ``("INBOX",)``. ``PATH`` may also be a single
``.eml`` file. Hidden files and directories are skipped.

No flags: Windows Live Mail keeps read/flagged state in its database, not in the
files, so every message comes without flags (see :attr:`EmlReader.metadata_notes`).
The received date is the topmost Received: header's, else Date:, else the file's mtime.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from advisor.stores.base import SourceFolder, SourceMessage, StoreReader, unreadable_message
from advisor.stores.fsnames import decode_folder_name
from advisor.stores.message_files import (
    INBOX,
    LoopGuard,
    folder_key,
    is_dir,
    is_file,
    list_directory,
    natural_key,
    read_message_file,
    received_or_mtime,
    sorted_dir,
    source_id,
)

SUFFIX = ".eml"
_MAX_DEPTH = 64
_DETECT_DEPTH = 3


def is_eml(name: str) -> bool:
    return name.lower().endswith(SUFFIX) and not name.startswith(".")


class EmlReader(StoreReader):
    """Reads a directory tree of .eml files (or one .eml file)."""

    kind: ClassVar[str] = "eml"
    metadata_notes: ClassVar[tuple[str, ...]] = (
        "No flags: .eml files do not record read, replied or flagged state (Windows Live "
        "Mail keeps it in its database), so every message is migrated as unread.",
        "The received date comes from the Received:/Date: headers, else the file's time.",
    )

    @classmethod
    def detect(cls, path: Path) -> bool:
        if path.is_file():
            return is_eml(path.name)
        return path.is_dir() and _has_eml(path, 0)

    def folders(self) -> Iterator[SourceFolder]:
        seen: set[tuple[str, ...]] = set()
        for folder, directory, _, _, _ in self._walk():
            if folder not in seen:  # several directories can make one folder
                seen.add(folder)
                yield SourceFolder(folder, directory)

    def messages(self) -> Iterator[SourceMessage]:
        for folder, directory, names, relative, error in self._walk():
            if error is not None:
                yield unreadable_message(folder, folder_key(relative) or ".", error)
            for name in names:
                path = directory / name
                data, problems = read_message_file(path)
                received, date_problems = received_or_mtime(data, path)
                yield SourceMessage(
                    folder=folder,
                    data=data,
                    flags=frozenset(),
                    received=received,
                    # The relative path, not the folder: loose root files are "INBOX" too.
                    source_id=source_id(relative, name),
                    problems=(*problems, *date_problems),
                )

    def _walk(
        self,
    ) -> Iterator[tuple[tuple[str, ...], Path, list[str], tuple[str, ...], str | None]]:
        """(folder, directory, .eml names, relative path, why it cannot be listed) for
        directories holding .eml files, or that cannot be listed (they might)."""
        if self.path.is_file():
            yield (INBOX,), self.path.parent, [self.path.name], (), None
            return
        guard = LoopGuard()
        stack: list[tuple[Path, tuple[str, ...], int]] = [(self.path, (), 0)]
        while stack:
            directory, parent, depth = stack.pop()
            if depth > _MAX_DEPTH or not guard.first_visit(directory):
                continue
            names: list[str] = []
            children: list[tuple[Path, tuple[str, ...], int]] = []
            entries, error = list_directory(directory)
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if is_dir(entry):
                    child = decode_folder_name(entry.name, directory, self.notes)
                    children.append((Path(entry.path), (*parent, child), depth + 1))
                elif is_eml(entry.name):  # a broken link or odd file is reported when read
                    names.append(entry.name)
            if names or error:
                names.sort(key=natural_key)
                yield (parent or (INBOX,)), directory, names, parent, error
            stack.extend(reversed(children))


def _has_eml(directory: Path, depth: int) -> bool:
    entries = [e for e in sorted_dir(directory) if not e.name.startswith(".")]
    if any(is_eml(e.name) and is_file(e) for e in entries):
        return True
    if depth >= _DETECT_DEPTH:
        return False
    return any(is_dir(e) and _has_eml(Path(e.path), depth + 1) for e in entries[:100])
