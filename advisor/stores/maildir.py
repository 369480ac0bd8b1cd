"""Maildir and Maildir++ (Dovecot, Courier, mutt, isync, Evolution, KMail).

Layout read:

* The root directory, when it has ``cur/`` or ``new/``, is the Inbox: folder ``("INBOX",)``.
* Maildir++ children of the root: ``.Sub.Folder/`` is ``("Sub", "Folder")``; names are
  IMAP modified UTF-7 on disk (``.Entw&APw-rfe`` is "Entwürfe") and are decoded.
* Directory children (Dovecot ``LAYOUT=fs``, KMail): ``Sub/`` holding a maildir is
  ``("Sub",)``; KMail keeps the children of folder ``Name`` in ``.Name.directory/``.
* Messages are the files of ``cur/`` and ``new/``; ``tmp/`` holds deliveries in progress
  and is ignored, as are dot-files and sub-directories of cur/new. Other files of a
  maildir (``dovecot-uidlist``, indexes, ``maildirfolder``...) are bookkeeping. The
  number of files passed over is kept in :attr:`MaildirReader.ignored_files`.

File names: ``<unique>[<sep>2,<flags>]`` where the separator is ``:`` (``;`` or ``!`` on
Windows and with isync). Flags: P $Forwarded, R \\Answered, S \\Seen, T deleted,
D \\Draft, F \\Flagged; lower-case letters are Dovecot keywords named in the folder's
``dovecot-keywords`` file (a keyword without a name there is reported and dropped);
commas and repeated letters are tolerated. Everything in ``new/`` is unseen, so it
never gets \\Seen. The identity of a message is its folder and the unique part of the
name, so a flag change (a rename) or the move from new/ to cur/ keeps it.

The received date is the file's mtime, as Dovecot takes it for INTERNALDATE: delivery
agents write the file at arrival, and mutt, when it moves or saves a message, gives the
new file a new name (with the time of the move) but sets its mtime back to the received
time. The mtime is passed over only when it is clearly not a delivery time (see
:func:`bulk_copied` and :func:`plausible_mtime`): then the name's leading timestamp
(seconds since 1970, UTC), else the header's topmost Received:, else Date:, else the
mtime after all.

Speed: per message one ``stat`` and one ``open``/``read`` and a name split; no header
parsing unless the mtime and the name both fail.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

from imapclient import imap_utf7

from advisor.stores.base import (
    ANSWERED,
    DRAFT,
    FLAGGED,
    FORWARDED,
    SEEN,
    Problem,
    ReaderOptions,
    SourceFolder,
    SourceMessage,
    StoreReader,
    unreadable_message,
)
from advisor.stores.fsnames import decode_folder_name as fs_folder_name
from advisor.stores.message_files import (
    INBOX,
    LoopGuard,
    is_dir,
    list_directory,
    read_bytes,
    read_message_file,
    received_or_mtime,
    sorted_dir,
    source_id,
    timestamp_date,
)

# A file time before this is no delivery time (zeroed or DOS-epoch times of a broken copy).
_EARLIEST_MTIME = datetime(1990, 1, 1, tzinfo=UTC)
_FUTURE_SLACK = timedelta(days=2)
# A bulk copy writes a folder's files within minutes; their deliveries span far more.
_COPY_WINDOW = 3600.0
_DELIVERY_SPREAD = 86400.0

FLAG_LETTERS: dict[str, str] = {
    "P": FORWARDED,
    "R": ANSWERED,
    "S": SEEN,
    "D": DRAFT,
    "F": FLAGGED,
}
INFO_SEPARATORS = (":2,", ";2,", "!2,")
KEYWORDS_FILE = "dovecot-keywords"
_MAILDIR_SUBDIRS = frozenset({"cur", "new", "tmp"})
_KMAIL_SUFFIX = ".directory"
_MAX_DEPTH = 64


def split_name(name: str) -> tuple[str, str | None]:
    """(unique part, flag letters or None) of a maildir file name."""
    cut = max(name.rfind(sep) for sep in INFO_SEPARATORS)
    if cut < 0:
        return name, None
    return name[:cut], name[cut + 3 :]


_NAME_TIME = re.compile(r"([0-9]{9,11})(?:[._,]|\Z)")


def name_date(name: str) -> datetime | None:
    """The delivery time at the start of the name ("1276533073.M242911P3632.host")."""
    match = _NAME_TIME.match(name)
    return timestamp_date(int(match.group(1))) if match else None


def plausible_mtime(mtime: float | None, now: datetime | None = None) -> datetime | None:
    """The mtime as a received date, None when it cannot be one: before 1990 (a zeroed
    or DOS-epoch time from a broken copy) or more than two days in the future."""
    if mtime is None:
        return None
    when = timestamp_date(mtime)
    limit = (now or datetime.now(UTC)) + _FUTURE_SLACK
    if when is None or when < _EARLIEST_MTIME or when > limit:
        return None
    return when


def bulk_copied(times: list[tuple[float | None, datetime | None]]) -> bool:
    """Whether a folder's files were copied without keeping their times (``cp -r``
    without ``-p``, an unzip, a sync tool): every mtime falls within one hour, while the
    delivery times in their names spread over more than a day and all lie before the
    earliest mtime. ``times``: (mtime, name timestamp) per file. Then the mtimes say
    when the copy was made, and the names are the better received dates. A backlog
    delivered at once does not look like this: its names carry the same times as its
    mtimes. Two files at least are needed to tell."""
    mtimes = [m for m, _ in times if m is not None]
    named = [n.timestamp() for _, n in times if n is not None]
    if len(mtimes) < 2 or len(named) < 2:
        return False
    return (
        max(mtimes) - min(mtimes) <= _COPY_WINDOW
        and max(named) - min(named) > _DELIVERY_SPREAD
        and max(named) < min(mtimes)
    )


def parse_flags(info: str, keywords: dict[int, str] | None) -> tuple[set[str], bool, list[Problem]]:
    """(IMAP flags, deleted, problems) for the letters after ``:2,``."""
    flags: set[str] = set()
    deleted = False
    problems: list[Problem] = []
    for letter in info:
        if letter in FLAG_LETTERS:
            flags.add(FLAG_LETTERS[letter])
        elif letter == "T":
            deleted = True
        elif "a" <= letter <= "z":
            name = keywords.get(ord(letter) - ord("a")) if keywords else None
            if name:
                flags.add(name)
            else:
                why = "no dovecot-keywords file" if keywords is None else "not in dovecot-keywords"
                problems.append(
                    Problem("bad-flags", f"keyword letter {letter!r} has no name ({why}); dropped")
                )
        elif letter != ",":
            problems.append(Problem("bad-flags", f"unknown flag letter {letter!r} ignored"))
    return flags, deleted, problems


def read_keywords(directory: Path) -> dict[int, str] | None:
    """Dovecot's ``dovecot-keywords`` (lines "<index> <name>"), None when there is none."""
    try:
        text = read_bytes(directory / KEYWORDS_FILE).decode("utf-8", "replace")
    except OSError:
        return None
    keywords: dict[int, str] = {}
    for line in text.splitlines():
        index, _, name = line.strip().partition(" ")
        if index.isdigit() and name.strip():
            keywords[int(index)] = name.strip()
    return keywords


def decode_folder_name(name: str) -> str:
    """IMAP modified UTF-7 to text when ``name`` is valid modified UTF-7, else as is."""
    if "&" not in name:
        return name
    try:
        decoded = imap_utf7.decode(name.encode("ascii"))
        if isinstance(decoded, str) and imap_utf7.encode(decoded) == name.encode("ascii"):
            return decoded
    except (UnicodeError, ValueError, TypeError):
        pass
    return name


def _parent_first(entry: os.DirEntry[str]) -> tuple[str, int]:
    """Order folder "X" before its KMail children ".X.directory" and Maildir++ ".X"."""
    name = entry.name
    if name.startswith(".") and name.endswith(_KMAIL_SUFFIX):
        return name[1 : -len(_KMAIL_SUFFIX)], 1
    if name.startswith("."):
        return name[1:], 1
    return name, 0


def is_maildir(directory: Path) -> bool:
    return _maildir_state(directory) is True


def _maildir_state(directory: Path) -> bool | None:
    """Whether ``directory`` is a maildir; None when it cannot be looked into."""
    try:
        return (directory / "cur").is_dir() or (directory / "new").is_dir()
    except OSError:
        return None


class MaildirReader(StoreReader):
    """Reads a Maildir or Maildir++ tree (also KMail and Dovecot ``LAYOUT=fs`` nesting)."""

    kind: ClassVar[str] = "maildir"
    metadata_notes: ClassVar[tuple[str, ...]] = (
        "Flags come from the file names (P R S T D F and Dovecot keywords); new/ is unseen.",
        "The received date is the file's modification time (as Dovecot and mutt keep it), "
        "or the delivery time in the file name when the files were copied without their "
        "times.",
        "Files in tmp/ (deliveries in progress) are not messages and are not read.",
    )

    def __init__(self, path: Path, options: ReaderOptions | None = None) -> None:
        super().__init__(path, options)
        self.ignored_files = 0
        """Files passed over by the last :meth:`messages` run: tmp/ and non-message entries."""
        self._unlisted: list[tuple[tuple[str, ...], Path, str]] = []
        """Directories that could not be listed: (folder, directory, reason)."""

    @classmethod
    def detect(cls, path: Path) -> bool:
        if not path.is_dir():
            return False
        if is_maildir(path):
            return True
        # A directory of maildirs (KMail's local-mail, a Dovecot LAYOUT=fs root copy).
        for entry in sorted_dir(path)[:500]:
            child = Path(entry.path)
            if is_dir(entry) and (child / "cur").is_dir() and (child / "new").is_dir():
                return True
        return False

    def folders(self) -> Iterator[SourceFolder]:
        seen: set[tuple[str, ...]] = set()
        for folder, directory in self._walk(self.path, (), LoopGuard(), 0):
            if folder not in seen:  # several directories can make one folder
                seen.add(folder)
                yield SourceFolder(folder, directory)

    def messages(self) -> Iterator[SourceMessage]:
        self.ignored_files = 0
        self._unlisted = []
        for folder, directory in self._walk(self.path, (), LoopGuard(), 0):
            yield from self._unlisted_folders()
            yield from self._folder_messages(folder, directory)
            yield from self._unlisted_folders()
        yield from self._unlisted_folders()

    def _unlisted_folders(self) -> Iterator[SourceMessage]:
        """Stand-ins for directories that could not be listed: their mail is not lost
        without a word."""
        for folder, directory, reason in self._unlisted:
            try:
                ident = directory.relative_to(self.path).as_posix()
            except ValueError:
                ident = str(directory)
            yield unreadable_message(folder, ident, reason)
        self._unlisted = []

    # -- folders ---------------------------------------------------------------------

    def _walk(
        self, directory: Path, parent: tuple[str, ...], guard: LoopGuard, depth: int
    ) -> Iterator[tuple[tuple[str, ...], Path]]:
        if depth > _MAX_DEPTH or not guard.first_visit(directory):
            return
        here_is_maildir = is_maildir(directory)
        if here_is_maildir:
            yield (parent or (INBOX,)), directory
        entries, error = list_directory(directory)
        if error is not None:
            self._unlisted.append((parent or (INBOX,), directory, error))
        for entry in sorted(entries, key=_parent_first):
            if entry.name in _MAILDIR_SUBDIRS or not is_dir(entry):
                continue
            name = self._decoded(entry.name, directory)
            child = Path(entry.path)
            if name.startswith("."):
                if name.endswith(_KMAIL_SUFFIX) and len(name) > len(_KMAIL_SUFFIX) + 1:
                    # KMail: the children of folder "Name" live in ".Name.directory/".
                    kmail_parent = (*parent, decode_folder_name(name[1 : -len(_KMAIL_SUFFIX)]))
                    yield from self._walk(child, kmail_parent, guard, depth + 1)
                elif here_is_maildir and len(name) > 1 and _maildir_state(child) is not False:
                    # Maildir++: ".Sub.Folder" is Sub/Folder; its own children are siblings.
                    # One that cannot be looked into is read all the same: it is reported.
                    parts = tuple(decode_folder_name(p) for p in name[1:].split("."))
                    if all(parts) and guard.first_visit(child):
                        yield parent + parts, child
                continue
            # A plain directory: a folder (fs layout, KMail) or an intermediate level.
            yield from self._walk(child, (*parent, decode_folder_name(name)), guard, depth + 1)

    def _decoded(self, name: str, directory: Path) -> str:
        return fs_folder_name(name, directory, self.notes)

    # -- messages --------------------------------------------------------------------

    def _folder_messages(self, folder: tuple[str, ...], directory: Path) -> Iterator[SourceMessage]:
        # new/ is listed before cur/: a message a running client moves from new/ to cur/
        # meanwhile then shows up in cur/'s listing (or is found again, see _relocate).
        try:
            os.stat(directory / "cur")
        except FileNotFoundError:
            pass
        except OSError as exc:  # the folder itself cannot be entered: say so once
            reason = f"{directory}: the folder cannot be listed: {exc.strerror or exc}"
            self._unlisted.append((folder, directory, reason))
            return
        new_names = self._list_files(directory / "new", folder)
        cur_names = self._list_files(directory / "cur", folder)
        self.ignored_files += sum(1 for e in sorted_dir(directory / "tmp") if e.name[:1] != ".")
        keywords: dict[int, str] | None = None
        keywords_loaded = False
        seen: set[str] = set()
        mtimes = {
            (sub, name): _mtime(directory / sub / name)
            for sub, names in (("cur", cur_names), ("new", new_names))
            for name in names
        }
        copied = bulk_copied([(m, name_date(name)) for (_, name), m in mtimes.items()])
        for sub, names in (("cur", cur_names), ("new", new_names)):
            for name in names:
                mtime = None if copied else mtimes[(sub, name)]
                unique, info = split_name(name)
                if info and not keywords_loaded and any("a" <= c <= "z" for c in info):
                    keywords, keywords_loaded = read_keywords(directory), True
                if unique in seen:
                    if not os.path.lexists(directory / sub / name):
                        continue  # moved to cur/ while we read: already yielded from there
                    yield self._message(
                        folder, directory, sub, name, keywords, mtime, duplicate=True
                    )
                    continue
                seen.add(unique)
                yield self._message(folder, directory, sub, name, keywords, mtime)

    def _list_files(self, directory: Path, folder: tuple[str, ...]) -> list[str]:
        names: list[str] = []
        entries, error = list_directory(directory)
        if error is not None:
            self._unlisted.append((folder, directory, error))
        for entry in entries:
            # Broken links and other odd entries are kept: reading them reports the problem.
            if entry.name.startswith(".") or is_dir(entry):
                self.ignored_files += 1
                continue
            names.append(entry.name)
        return names

    def _message(
        self,
        folder: tuple[str, ...],
        directory: Path,
        sub: str,
        name: str,
        keywords: dict[int, str] | None,
        mtime: float | None,
        *,
        duplicate: bool = False,
    ) -> SourceMessage:
        unique, info = split_name(name)
        path = directory / sub / name
        data, problems = read_message_file(path)
        if problems and not os.path.lexists(path):
            # Renamed (flag change) or moved (new/ -> cur/) by a running client: find it again.
            found = self._relocate(directory, unique)
            if found is not None:
                sub, name = found
                info = split_name(name)[1]
                path = directory / sub / name
                data, problems = read_message_file(path)
                if info and keywords is None and any("a" <= c <= "z" for c in info):
                    keywords = read_keywords(directory)
        all_problems = list(problems)
        flags: set[str] = set()
        deleted = False
        if info is not None:
            flags, deleted, flag_problems = parse_flags(info, keywords)
            all_problems.extend(flag_problems)
        if sub == "new":
            flags.discard(SEEN)
        # The mtime of the file found is the received date, unless it cannot be one.
        received = plausible_mtime(mtime) or name_date(name)
        if received is None:
            received, date_problems = received_or_mtime(data, path)
            all_problems.extend(date_problems)
            if received is not None and received > datetime.now(UTC) + _FUTURE_SLACK:
                received = None  # a file time in the future: let the server date it
        ident = source_id(folder, unique)
        if duplicate:
            ident = f"{ident}#{sub}/{name}"
            all_problems.append(
                Problem("duplicate-name", f"{sub}/{name}: another file has the same unique name")
            )
        return SourceMessage(
            folder=folder,
            data=data,
            flags=frozenset(flags),
            received=received,
            source_id=ident,
            deleted=deleted,
            problems=tuple(all_problems),
        )

    @staticmethod
    def _relocate(directory: Path, unique: str) -> tuple[str, str] | None:
        for sub in ("cur", "new"):
            for entry in sorted_dir(directory / sub):
                if split_name(entry.name)[0] == unique:
                    return sub, entry.name
        return None


def _mtime(path: Path) -> float | None:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None
