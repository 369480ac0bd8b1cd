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

import os
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from advisor.errors import SourceLockedError, UsageError
from advisor.stores.base import (
    Problem,
    ReaderOptions,
    SourceFolder,
    SourceMessage,
    StoreReader,
    unreadable_message,
)
from advisor.stores.mbox import (
    PARTIAL_PROBLEM,
    MboxEntry,
    entry_header_block,
    interpret_headers,
    iter_mbox,
    quoting_option,
)
from advisor.stores.thunderbird.folder_cache import FolderNames
from advisor.stores.thunderbird.folders import (
    NameFromIndex,
    SkippedEntry,
    ThunderbirdFolder,
    folder_display_name,
    is_directory,
    name_from_msf,
    walk_mail_root,
)
from advisor.stores.thunderbird.lock import ProfileLock, find_profile_dir, profile_lock
from advisor.stores.thunderbird.msf_index import (
    FolderIndex,
    load_index,
    misplaced_offset,
    row_flags,
    timestamp,
)
from advisor.stores.thunderbird.prefs import MailRoot, is_feed_account, mail_roots
from advisor.stores.thunderbird.profiles import ThunderbirdProfile, read_profiles_ini


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
    if any(
        name.endswith(".sbd") and name[:-4] in names and is_directory(path / name) for name in names
    ):
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
            return _Layout("folder", root, path.parent, find_profile_dir(path))
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
        return _Layout("account", (MailRoot("", path),), path, find_profile_dir(path))
    try:
        accounts = tuple(
            MailRoot(child.name, child)
            for child in sorted(path.iterdir())
            if child.is_dir() and _is_account_dir(child) and not is_feed_account(child)
        )
    except OSError:
        return None
    if accounts:
        return _Layout("mail", accounts, path, find_profile_dir(path))
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

    def _folders(self, name_of: NameFromIndex = name_from_msf) -> Iterator[ThunderbirdFolder]:
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
                yield unreadable_message(
                    folder.path or (folder.location.name,), where, f"{where}: {folder.error}"
                )
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
                reason = f"{where}/{sub}: the directory cannot be listed: {exc.strerror or exc}"
                yield unreadable_message(folder.path, f"{where}/{sub}", reason)
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
