"""The migration: every message of a local store into the right IMAP folder, exactly once.

How exactly-once holds:

1. The journal (:mod:`advisor.journal`) records each message's outcome; a re-run
   skips what is done.
2. Before the first upload into a server folder, its messages are compared with
   what the journal says should be there. Anything the journal cannot explain
   (a run killed between the server's OK and the journal's commit, a lost
   journal, mail uploaded by another tool) is indexed (:mod:`advisor.server_index`:
   Message-ID and a tolerant size pick candidates, the hash of the normalised
   message decides), and local messages found there are not uploaded again.
3. A message whose answer was lost with its connection is checked the same way
   before it is sent again.
4. At the end every folder is verified: each message the journal counts as on
   the server must be found there, once; extra copies (a run on another machine
   uploading at the same moment, copies there before) are counted and reported.

Where the provider keeps one message under several labels (Gmail, rule
``labels_for_copies``), a message whose exact bytes are in several local folders
is uploaded once, into the first folder met; each other folder becomes a label on
it (``UID STORE +X-GM-LABELS``), also when the first copy went up in an earlier
run. Identical copies within one folder are stored once, as Gmail keeps only one.

When the target is the account the store was downloaded from (:mod:`advisor.same_account`),
the server's own copies in INBOX are the local messages: they get the local flags and are
moved into the folder the user put them in, instead of being uploaded again. Otherwise
nothing on the server is changed or deleted (labels and flags are only added); the
source is only read.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import queue
import re
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import imapclient
import imapclient.exceptions

from advisor import copies, gmail_labels, quota, same_account
from advisor.connection.account import AccountAccess
from advisor.connection_limits import TooManyConnections, too_many_connections
from advisor.content_check import Altered, ContentSample
from advisor.errors import ConnectError, MailadvisorError
from advisor.folders import INBOX as INBOX_NAME
from advisor.folders import FolderMapper, FolderTarget, ServerLayout
from advisor.journal import Entry, MigrationJournal, Status
from advisor.partial import PartialMessage, PartialSources
from advisor.plugins.manager import PluginHost
from advisor.plugins.types import ServerFolder
from advisor.rejects import NotMigratedMbox, subject_of
from advisor.same_account import SameAccountReport, found_entry
from advisor.server_folders import ServerFolders
from advisor.server_index import Identity, ServerIndex, ServerMessage, message_id_of
from advisor.single_connection import control_note, upload_over
from advisor.stores.base import SourceFolder, SourceMessage, StoreReader
from advisor.upload import (
    MAX_WAIT,
    Batch,
    ByteBudget,
    UploadJob,
    UploadResult,
    UploadWorker,
    valid_flags,
)
from advisor.upload_plan import plan_connections

DEFAULT_WINDOW = 4
DEFAULT_BUDGET = 8 * 1024 * 1024
BUDGET_LARGEST_MULTIPLE = 4
"""The in-flight budget grows to this many times the largest message seen."""
BATCH_MESSAGES = 200
MAX_RESTARTS = 5
BATCH_BYTES = 4 * 1024 * 1024
FETCH_CHUNK = 1000
HOLD_BYTES = 64 * 1024 * 1024
"""Labels instead of copies: bytes of messages kept while the upload of their identical
copy is unanswered, to upload them after all if it fails. Beyond this none are kept
(such a message is then retried by the next run)."""
LABEL_FAILED = "label-failed: "
"""Journal detail of a message whose label could not be set on the copy an earlier run
stored: the next run does not rely on that copy again."""

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_DATE = re.compile(rb"^date:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.I | re.M)


@dataclass
class MigrationOptions:
    dry_run: bool = False
    skip_deleted: bool = True
    target_prefix: str = ""
    folder_map: dict[str, str] = field(default_factory=dict)
    connections: int | None = None
    """Parallel upload connections; default 4, never more than the provider allows."""
    window: int = DEFAULT_WINDOW
    """APPEND commands (each a batch of messages) in flight per connection."""
    batch_messages: int = BATCH_MESSAGES
    """Messages per APPEND command, where the server offers MULTIAPPEND."""
    budget_bytes: int = DEFAULT_BUDGET
    """Message bytes in flight across all connections, at least: the budget grows to
    four times the largest message seen, so memory stays a small multiple of it."""
    verify: bool = True
    not_migrated_path: Path | None = None
    """Where the bytes of messages that were not migrated are saved (an mbox, written
    only when something fails; never on a dry run)."""
    same_account: bool | None = None
    """The target is the account the store was downloaded from: None = find out
    (:func:`advisor.same_account.detect`), True/False = the user says so."""
    trash_deleted: bool = False
    """Same account: move the server's copies of messages deleted locally to Trash."""
    include_partial: bool = False
    """Upload headers-only stubs as they are (else they are left out and reported)."""
    partial_sources: PartialSources | None = None
    """Where stubs came from; with a POP3 password, where their full copies are taken."""
    when_full: quota.WhenFull = quota.WhenFull.STOP
    """What to do when the plan does not fit into the room the server reports."""


@dataclass
class Failure:
    """A message that was not migrated, and why. It stays in the source."""

    folder: str
    source_id: str
    message_id: str | None
    reason: str
    """The server's words, or why it was not sent."""
    subject: str = ""
    """Decoded and shortened, to let the user recognise it."""
    size: int = 0
    """Bytes as they would be uploaded (CRLF line endings); 0 when unreadable."""
    saved: bool = False
    """Its exact bytes are in the report's not-migrated mbox."""


@dataclass
class FolderReport:
    source: str
    target: str
    reason: str
    messages: int = 0
    bytes: int = 0
    uploaded: int = 0
    already_done: int = 0
    """Recorded as done by an earlier run."""
    found_on_server: int = 0
    """Already on the server although not in the journal: not uploaded again."""
    skipped_deleted: int = 0
    partial: int = 0
    failed: int = 0
    to_upload: int = 0
    """Dry run: what a real run would upload."""
    labelled: int = 0
    """Not uploaded: an identical message is stored in another folder (or earlier in
    this one), and this folder became a label on it (Gmail)."""
    to_label: int = 0
    """Dry run: what a real run would add as labels instead of uploading."""
    created: bool = False


@dataclass
class MigrationReport:
    account: str
    server: str
    dry_run: bool
    folders: list[FolderReport]
    failures: list[Failure]
    uploaded: int = 0
    uploaded_bytes: int = 0
    already_done: int = 0
    found_on_server: int = 0
    labelled: int = 0
    """Messages stored once and given each further folder as a label (Gmail)."""
    skipped_deleted: int = 0
    failed: int = 0
    elapsed_seconds: float = 0.0
    messages_per_second: float = 0.0
    connections: int = 0
    verified: bool | None = None
    missing_after_verify: int = 0
    extra_copies: int = 0
    """Copies on the server beyond what the journal accounts for (a message there more
    than once), counted as ``mailadvisor verify`` counts them; never deleted for you."""
    journal: str = ""
    stopped_early: str | None = None
    deferred: int = 0
    """Messages left for the next run because the server asked to stop (daily quota)."""
    notes: list[str] = field(default_factory=list)
    planned_bytes: int = 0
    """Dry run: bytes a real run would upload."""
    estimated_days: float | None = None
    """Dry run: days the upload takes under the provider's daily upload limit, if any."""
    not_migrated_mbox: str | None = None
    """The mbox holding the messages that were not migrated (those whose bytes were read)."""
    same_account: SameAccountReport | None = None
    """Set when the target is the account the store was downloaded from."""
    altered: list[Altered] = field(default_factory=list)
    """Uploads the server stored differently (the closing check compares content)."""
    content_checked: int = 0
    """How many uploads the closing check compared byte for byte."""
    partial_messages: list[PartialMessage] = field(default_factory=list)
    """Headers-only stubs: left out (unless include_partial) or replaced by the full copy."""
    internal_error: str | None = None
    """A bug in mailadvisor stopped the run (exception and place); None normally."""
    room: quota.QuotaCheck | None = None
    """The plan's bytes against the room the server (or provider) reports; None unknown."""
    account_full: bool = False
    """Uploading stopped (or never started) for lack of room: what is left is deferred."""
    deferred_bytes: int = 0
    """Bytes of the deferred messages that are known (those that did not fit)."""
    finished_at: str = ""
    """When this pass ended (ISO 8601, UTC): a catch-up run copies what arrived since."""

    @property
    def complete(self) -> bool:
        return (
            self.failed == 0
            and self.missing_after_verify == 0
            and self.extra_copies == 0
            and self.stopped_early is None
            and self.internal_error is None
        )


class Progress(Protocol):
    """What the migration tells a progress display."""

    def advance(self, messages: int, size: int) -> None: ...

    def note(self, text: str) -> None: ...


class _NoProgress:
    def advance(self, messages: int, size: int) -> None:
        return None

    def note(self, text: str) -> None:
        return None


def to_crlf(data: bytes) -> bytes:
    """Line endings as IMAP wants them; every other byte untouched."""
    if b"\r" not in data:
        return data.replace(b"\n", b"\r\n")
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")


def header_block(data: bytes) -> bytes:
    end = _HEADER_END.search(data)
    return data[: end.start()] if end else data


def date_header_of(data: bytes) -> datetime | None:
    match = _DATE.search(header_block(data))
    if match is None:
        return None
    try:
        return parsedate_to_datetime(b" ".join(match.group(1).split()).decode("ascii", "replace"))
    except (TypeError, ValueError, IndexError):
        return None


_CopyState = Literal["pending", "stored", "found", "gone"]


@dataclass(slots=True)
class _Copy:
    """A message of this content on the server (or on its way), for labels instead of copies."""

    folder: str
    shareable: bool
    """Its folder's label may be one of several (not Trash or Spam)."""
    state: _CopyState = "pending"
    """pending: APPEND unanswered; stored: the server took it; found: it was there
    already; gone: refused or lost."""
    uid: int | None = None
    uidvalidity: int | None = None


@dataclass
class _LabelTask:
    """A message not uploaded because an identical one is stored: its folder becomes a label."""

    source_key: str
    source_id: str
    folder: str
    """Its own server folder."""
    message_id: str | None
    size: int
    sha256: str
    flags: tuple[str, ...]
    report: FolderReport
    stored: _Copy
    label: str | None
    """The label to add to the stored message; None when that is in this folder already."""
    job: UploadJob | None = None
    """The message itself, kept while the stored copy's APPEND is unanswered: if that
    copy does not make it, this one is uploaded after all."""


class Migration:
    """One migration run. Build it, call :meth:`run`, read the report."""

    def __init__(
        self,
        reader: StoreReader,
        access: AccountAccess,
        plugins: PluginHost,
        journal: MigrationJournal,
        options: MigrationOptions | None = None,
        progress: Progress | None = None,
        source_name: str | None = None,
    ) -> None:
        self.reader = reader
        self.access = access
        self.plugins = plugins
        self.journal = journal
        self.options = options or MigrationOptions()
        self.progress = progress or _NoProgress()
        # Optional: a display that shows the folder being read has a folder(name) method.
        self._show_folder: Callable[[str], None] | None = getattr(progress, "folder", None)
        self._shown_folder: tuple[str, ...] | None = None
        path = self.options.not_migrated_path
        self._rejects = NotMigratedMbox(path) if path and not self.options.dry_run else None
        self._rejects_broken = False
        self.source_name = source_name or _source_name(reader)
        self._control: imapclient.IMAPClient | None = None
        self._targets: dict[tuple[tuple[str, ...], bool], FolderTarget] = {}
        self._indexes: dict[str, ServerIndex] = {}
        self.same: same_account.SameAccount | None = None
        """Set when the target is the account the store came from."""
        self._sample = ContentSample()
        self._folders: dict[tuple[str, ...], FolderReport] = {}
        self._selected: str | None = None
        self._outstanding: dict[str, UploadJob] = {}
        """Jobs handed to the uploaders and not yet answered: none may be forgotten."""
        self.share_labels = False
        """Labels instead of copies (the provider's rule, and the server offers it)."""
        self._copies: dict[str, list[_Copy]] = {}
        """Labels instead of copies: what this run stored or found, by content hash."""
        self._copy_of: dict[str, _Copy] = {}
        """The same, by source key, while the APPEND is unanswered."""
        self._label_tasks: list[_LabelTask] = []
        self._held_bytes = 0
        self._uidvalidities: dict[str, int | None] = {}
        self._attributes: dict[str, frozenset[str]] = {}
        self._finished = False
        self._measuring: list[tuple[float, int, str]] | None = None
        """While the room is planned: (received, size, key) of each message to upload."""
        self._fit: set[str] | None = None
        """A partial move (newest first): the keys that fit; the others are deferred."""
        self._planning = False
        """A pass that only measures the room needed: nothing recorded, nothing reported."""
        self._unconsidered: SourceMessage | None = None
        """Read when uploading stopped, and not looked at."""
        self.report = MigrationReport(
            account=access.email,
            server=f"{access.target.host}:{access.target.port}",
            dry_run=self.options.dry_run,
            folders=[],
            failures=[],
            journal=str(journal.path),
        )

    # --- the run ------------------------------------------------------------
    def _run(self, started: float) -> MigrationReport:
        control = self._control = self.access.open()
        try:
            self._prepare(control)
            if self.options.dry_run:
                room = self._read_room(control)
                self._measuring = [] if room is not None else None
                for msg in self.reader.messages():
                    self._consider(msg, None)
                self._deleted_by_uidl()
                if self.daily_limit:
                    self.report.estimated_days = self.report.planned_bytes / self.daily_limit
                if room is not None:
                    self._weigh_room(room, self._measuring or [])
                self._measuring = None
            elif self._plan_room(control):
                self._upload_all()
                if self.report.stopped_early is None:
                    self._deleted_by_uidl()
                self._apply_same_account()
                self._apply_labels()
                self._restore_flags()
                if self.options.verify:
                    try:
                        self._verify()
                    except (imapclient.exceptions.IMAPClientAbortError, OSError) as exc:
                        # The server dropped the idle control connection (Dovecot 2.3 can
                        # panic on its list index lock): verify over a new one.
                        self.report.notes.append(f"reconnected to verify ({exc})")
                        with suppress(Exception):
                            control.shutdown()
                        control = self._control = self.access.open()
                        self._selected = None
                        self._verify()
        finally:
            self.journal.flush()
            if self._rejects is not None:
                self._rejects.close()
                if self._rejects.count:
                    self.report.not_migrated_mbox = str(self._rejects.path)
            try:
                control.logout()
            except Exception:  # the report matters more than a clean goodbye
                control.shutdown()
            self._control = None
        self._finish_report(started)
        return self.report

    def run(self) -> MigrationReport:
        """Migrate; a bug inside ends the run with ``report.internal_error`` set.

        Errors a user can act on (:class:`MailadvisorError`) and broken connections are
        raised as before; anything else is a mailadvisor bug: the report of what was done
        so far is returned with the error in ``internal_error`` (the CLI writes it and
        exits with status 70), never a bare traceback. The journal holds what was
        recorded, and the server-side check covers what was in flight.
        """
        started = time.monotonic()
        try:
            return self._run(started)
        except (MailadvisorError, OSError, imapclient.exceptions.IMAPClientAbortError):
            raise
        except Exception as exc:
            where = traceback.extract_tb(exc.__traceback__)[-1]
            self.report.internal_error = (
                f"{type(exc).__name__}: {exc} (at {Path(where.filename).name}:{where.lineno})"
            )
            self.report.stopped_early = "stopped by an internal error in mailadvisor"
            self._finish_report(started)
            return self.report

    def _finish_report(self, started: float) -> None:
        if self._finished:
            return
        self._finished = True
        r = self.report
        # What the reader left out or could not trust (files that are not mail...).
        r.notes.extend(self.reader.notes)
        # A store read twice (the room planning pass) says the same things twice.
        r.notes = list(dict.fromkeys(r.notes))
        with suppress(Exception):  # closing must not hide the report
            self.reader.close()
        r.elapsed_seconds = time.monotonic() - started
        r.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
        r.messages_per_second = r.uploaded / r.elapsed_seconds if r.elapsed_seconds else 0.0
        r.folders = list(self._folders.values())
        for f in r.folders:
            r.already_done += f.already_done
            r.found_on_server += f.found_on_server
            r.labelled += f.labelled
            r.skipped_deleted += f.skipped_deleted
        r.failed = len(r.failures)

    def _prepare(self, control: imapclient.IMAPClient) -> None:
        layout = read_layout(control)
        caps, folders = layout.capabilities, layout.folders
        listed = list(self.reader.folders())
        paths = [f.path for f in listed]
        self.mapper = folder_mapper(
            self.reader.kind,
            paths,
            layout,
            self.plugins,
            self.access,
            self.options,
            listed,
            self.journal.folder_renames(),
        )
        self.layout = layout
        self.folders = ServerFolders(control, layout, self.journal, self.report.notes)
        self.rules = self.plugins.upload_rules(self.access.provider)
        self._attributes = {f.name: f.flags for f in folders}
        self.share_labels = self.rules.labels_for_copies and gmail_labels.CAPABILITY in caps
        if self.rules.labels_for_copies and not self.share_labels:
            self.report.notes.append(
                f"the server does not offer {gmail_labels.CAPABILITY} (Gmail's labels): a "
                "message kept in several folders is uploaded once into each"
            )
        self._store_after: dict[tuple[str, str], list[int]] = {}
        limits = self.plugins.limits(self.access.provider)
        self.max_size = limits.max_message_bytes
        self.daily_limit = limits.daily_upload_bytes
        # Today's allowance: what the provider takes in 24 hours, minus what went up already.
        self._day_left = (
            None
            if self.daily_limit is None
            else self.daily_limit - self.journal.uploaded_bytes_since(time.time() - 86_400)
        )
        for cap in caps:
            if cap.startswith("APPENDLIMIT="):
                self.max_size = int(cap.split("=", 1)[1])  # the server's word wins
        plan = plan_connections(control, self.options.connections, limits.max_connections)
        self.select_target = plan.select_target
        self.connections = plan.connections
        self.report.connections = self.connections
        if plan.note:
            self.report.notes.append(plan.note)
        self.keywords_allowed = True
        for path in paths:
            self._folder_report(path)
        if self.options.same_account is not False:
            self._same_account(control)

    def _same_account(self, control: imapclient.IMAPClient) -> None:
        """Is the target the account the store came from? Then its POP3 UIDLs, too."""
        access = self.access
        found = same_account.detect(self.reader, access.target.host, access.username)
        if found is None and self.options.same_account:
            found = same_account.Detected(
                SameAccountReport("mail program", "you said so (--same-account)"), []
            )
        if found is None:
            return
        self.report.same_account = found.report
        self.same = same_account.SameAccount(found.report, INBOX_NAME, self.options.dry_run)
        if found.states and self.layout.has(INBOX_NAME):
            uids, note = same_account.uidl_map(control, access, found, INBOX_NAME)
            self._selected = INBOX_NAME
            self.same.uids = uids
            self.same.downloaded = {u for state in found.states for u in state.uidls}
            if note:
                self.report.notes.append(note)

    # --- per message ----------------------------------------------------------
    def _folder_report(self, path: tuple[str, ...]) -> FolderReport:
        report = self._folders.get(path)
        if report is None:
            target = self._target(path, deleted=False)
            report = FolderReport("/".join(path), target.name, target.reason)
            report.created = target.name in self.folders.created
            self._folders[path] = report
        return report

    def _target(self, path: tuple[str, ...], deleted: bool) -> FolderTarget:
        key = (path, deleted)
        target = self._targets.get(key)
        if target is None:
            target = self.mapper.target_for(path, deleted=deleted)
            if not self.options.dry_run and not target.exists and self._control is not None:
                # Its messages are reported as not migrated if refused; the rest goes on.
                target = self.folders.ensure(target)
            self._targets[key] = target
        return target

    def _consider(self, msg: SourceMessage, submit: Callable[[UploadJob], None] | None) -> None:
        """Decide what happens to one message; hand it to ``submit`` if it must be uploaded."""
        folder = self._folder_report(msg.folder)
        folder.messages += 1
        folder.bytes += msg.size
        if self._show_folder is not None and msg.folder != self._shown_folder:
            self._shown_folder = msg.folder
            self._show_folder(folder.source)
        self.progress.advance(1, msg.size)
        if not msg.readable:
            self._fail(
                folder, msg, None, "; ".join(p.message for p in msg.problems) or "unreadable", b""
            )
            return
        if msg.deleted and self.options.skip_deleted:
            folder.skipped_deleted += 1
            if self.same is not None and not self._planning:
                self._deleted_original(msg)
            return
        if msg.partial:
            folder.partial += 1
            sources = self.options.partial_sources or PartialSources({})
            # The room-planning pass takes nothing from POP3 and reports nothing (the upload
            # pass does, once); a stub whose full copy will be taken is not measured.
            opts, planning = self.options, self._planning
            looking = opts.dry_run or planning
            kept, stub = sources.decide(msg, folder.source, opts.include_partial, looking)
            if stub is not None and not planning:
                self.report.partial_messages.append(stub)
            if kept is None:
                return
            msg = kept
        target = self._target(msg.folder, deleted=msg.deleted)
        if target.name in self.folders.refused:
            data = to_crlf(msg.data)
            self._fail(folder, msg, message_id_of(data), self.folders.refused[target.name], data)
            return
        key = f"{self.source_name}:{msg.source_id}"
        status = self.journal.status(key)
        if status in Status.DONE:
            folder.already_done += 1
            return
        # A label that could not be set on an earlier run's copy: do not rely on that again.
        trust_earlier = not (
            self.share_labels
            and status == Status.FAILED
            and (entry := self.journal.entry(key)) is not None
            and entry.detail.startswith(LABEL_FAILED)
        )
        data = to_crlf(msg.data)
        message_id = message_id_of(data)
        if self.max_size is not None and len(data) > self.max_size:
            self._fail(
                folder,
                msg,
                message_id,
                f"too large for this server ({len(data):,} bytes, limit {self.max_size:,})",
                data,
            )
            return
        digest = hashlib.sha256(data).hexdigest()
        found = self._on_server(target.name, data, message_id)
        if found is None and self.same is not None and target.name != INBOX_NAME:
            found = self._on_server(INBOX_NAME, data, message_id)  # the original, to move
            if found is not None:
                if self._planning:
                    return  # the upload pass counts and plans it (with a fresh index)
                folder.found_on_server += 1
                self.same.original(found, target.name, self._flags_of(msg), key, digest)
                return
        if found is not None:
            if self._planning:
                return  # the upload pass counts and records it (with a fresh index)
            folder.found_on_server += 1
            if self.same is not None and target.name == INBOX_NAME:  # its flags, then
                self.same.original(found, target.name, self._flags_of(msg), key, digest)
            else:
                self.journal.record(found_entry(key, target.name, found, digest))
            if self.share_labels:
                self._remember(digest, target.name, "found")
            return
        job = None
        if self.share_labels and not self._planning:
            job = self._job(msg, key, target.name, data, message_id, digest)
            if self._as_label(folder, job, msg.source_id, trust_earlier):
                return
            self._remember(digest, target.name, "pending", key)
        if self._measuring is not None:
            when = msg.received or date_header_of(data)
            self._measuring.append((when.timestamp() if when else 0.0, len(data), key))
        if submit is None:
            folder.to_upload += 1
            self.report.planned_bytes += len(data)
            return
        if self._fit is not None and key not in self._fit:
            # A partial move: older than what fits; it waits in the source, not a failure.
            self.report.deferred += 1
            self.report.deferred_bytes += len(data)
            return
        self._sample.offer(key, folder.source, target.name, msg.source_id, subject_of(data), data)
        if self._day_left is not None:
            if len(data) > self._day_left:
                raise _Stop(
                    f"the provider accepts about {_mb(self.daily_limit or 0)} a day and today's "
                    "share is used up; run the same command again in 24 hours to continue "
                    "(nothing is uploaded twice)"
                )
            self._day_left -= len(data)
        submit(job or self._job(msg, key, target.name, data, message_id, digest))

    def _flags_of(self, msg: SourceMessage) -> frozenset[str]:
        return frozenset(valid_flags(sorted(msg.flags), self.keywords_allowed)[0])

    def _job(
        self,
        msg: SourceMessage,
        key: str,
        folder: str,
        data: bytes,
        message_id: str | None,
        digest: str,
    ) -> UploadJob:
        received = msg.received or date_header_of(data)
        after = tuple(sorted(self.rules.flags_after_append.intersection(msg.flags)))
        flags = tuple(sorted(msg.flags.difference(after)))
        return UploadJob(key, folder, data, flags, received, message_id, digest, after)

    def _fail(
        self,
        folder: FolderReport,
        msg: SourceMessage,
        message_id: str | None,
        why: str,
        data: bytes,
    ) -> None:
        """A message not sent at all; ``data``: its CRLF bytes (empty when unreadable)."""
        if self._planning:
            return  # the upload pass reports it, once
        folder.failed += 1
        received = msg.received or date_header_of(data) if data else None
        self._failure(folder.source, msg.source_id, message_id, why, data, received)

    def _failure(
        self,
        folder: str,
        source_id: str,
        message_id: str | None,
        why: str,
        data: bytes | None,
        date: datetime | None,
    ) -> None:
        """Report a message that was not migrated; save its bytes, if known, right away
        (appended to the not-migrated mbox, so failed messages are never held in memory)."""
        failure = Failure(folder, source_id, message_id, why)
        if data:
            failure.subject, failure.size = subject_of(data), len(data)
            if self._rejects is not None and not self._rejects_broken:
                try:
                    self._rejects.add(data, date)
                    failure.saved = True
                except OSError as exc:  # a full disk must not end the migration
                    self._rejects_broken = True
                    self.report.notes.append(
                        "could not save the messages that were not migrated into "
                        f"{self._rejects.path}: {exc.strerror or exc}"
                    )
        self.report.failures.append(failure)

    # --- labels instead of copies (Gmail) ----------------------------------------------
    def _label_of(self, folder: str) -> str | None:
        return gmail_labels.label_for(folder, self._attributes.get(folder, ()))

    def _remember(self, digest: str, folder: str, state: _CopyState, key: str = "") -> None:
        """Note a message of this content going to (or found in) ``folder``."""
        shareable = gmail_labels.shareable(self._label_of(folder))
        copy = _Copy(folder, shareable, state)
        self._copies.setdefault(digest, []).append(copy)
        if key:
            self._copy_of[key] = copy

    def _as_label(self, folder: FolderReport, job: UploadJob, source_id: str, trust: bool) -> bool:
        """Leave the message out if an identical one is stored; True if it is so handled.

        Same folder: nothing to do on the server. Another folder: its label goes on the
        stored message in the label pass. ``trust``: an earlier run's copy may be used.
        """
        target, digest = job.folder, job.sha256
        copies = self._copies.setdefault(digest, [])
        label = self._label_of(target)
        add: str | None = None
        stored = next((c for c in copies if c.folder == target and c.state != "gone"), None)
        if stored is None:
            earlier = self.journal.done_with_hash(digest)
            if any(e.folder == target for e in earlier):
                stored = _Copy(target, gmail_labels.shareable(label), "found")
                copies.append(stored)
            elif gmail_labels.shareable(label):
                stored = self._shareable_copy(copies, earlier if trust else [])
                add = label
        if stored is None:
            return False
        if self.options.dry_run:
            folder.to_label += 1
            return True
        task = _LabelTask(
            job.source_key,
            source_id,
            target,
            job.message_id,
            job.size,
            digest,
            job.flags + job.flags_after,
            folder,
            stored,
            add,
        )
        if add is None and stored.state in ("stored", "found"):
            self._labelled(task)
            return True
        if stored.state == "pending" and self._held_bytes + job.size <= HOLD_BYTES:
            task.job = job
            self._held_bytes += job.size
        self._label_tasks.append(task)
        return True

    def _shareable_copy(self, copies: list[_Copy], earlier: list[Entry]) -> _Copy | None:
        """A stored message of this content that another label can go on, if any."""
        for copy in copies:
            if copy.shareable and copy.state == "stored" and copy.uid is not None:
                return copy
        for copy in copies:
            if copy.shareable and copy.state == "pending":
                return copy
        for e in earlier:
            # An earlier run's upload, if its folder still has the UIDs it had then.
            if (
                e.status == Status.UPLOADED
                and e.uid is not None
                and e.uidvalidity is not None
                and gmail_labels.shareable(self._label_of(e.folder))
                and self._current_uidvalidity(e.folder) == e.uidvalidity
            ):
                copy = _Copy(e.folder, True, "stored", e.uid, e.uidvalidity)
                copies.append(copy)
                return copy
        return None

    def _current_uidvalidity(self, folder: str) -> int | None:
        if folder not in self._uidvalidities:
            control = self._control
            assert control is not None
            try:
                info = control.select_folder(folder, readonly=True)
            except imapclient.exceptions.IMAPClientAbortError:
                raise
            except imapclient.exceptions.IMAPClientError:
                info = {}  # the folder is gone
            self._selected = folder
            value = info.get(b"UIDVALIDITY")
            self._uidvalidities[folder] = int(value) if value is not None else None
        return self._uidvalidities[folder]

    def _apply_labels(self) -> None:
        """The label pass: each left-out message's folder becomes a label on its stored twin."""
        tasks, self._label_tasks = self._label_tasks, []
        by_folder: dict[str, list[_LabelTask]] = {}
        fallback: list[_LabelTask] = []
        for task in tasks:
            stored = task.stored
            if task.label is None and stored.state in ("stored", "found"):
                self._labelled(task)  # an identical message made it into this folder
            elif task.label is not None and stored.state == "stored" and stored.uid is not None:
                by_folder.setdefault(stored.folder, []).append(task)
            else:
                fallback.append(task)
        for folder, group in sorted(by_folder.items()):
            fallback.extend(self._label_in(folder, group))
        if fallback:
            self._fallback(fallback)
        self._held_bytes = 0

    def _label_in(self, folder: str, tasks: list[_LabelTask]) -> list[_LabelTask]:
        """Add the labels (and the copies' flags) to messages of ``folder``; the misses."""
        control = self._control
        assert control is not None
        try:
            info = control.select_folder(folder)  # read-write: STORE needs it
        except imapclient.exceptions.IMAPClientAbortError:
            raise
        except imapclient.exceptions.IMAPClientError:
            info = {}  # the folder is gone: so are the messages in it
        self._selected = folder
        current = info.get(b"UIDVALIDITY")
        ready = [t for t in tasks if current is not None and t.stored.uidvalidity == int(current)]
        missed = [t for t in tasks if current is None or t.stored.uidvalidity != int(current)]
        by_label: dict[str, set[int]] = {}
        by_flag: dict[str, set[int]] = {}
        utf8 = bool(getattr(control, "utf8_enabled", False))  # ENABLE UTF8=ACCEPT
        for t in ready:
            assert t.label is not None and t.stored.uid is not None
            by_label.setdefault(t.label, set()).add(t.stored.uid)
            # Gmail keeps flags per message, not per label: read anywhere is read.
            for flag in valid_flags(t.flags, self.keywords_allowed)[0]:
                by_flag.setdefault(flag, set()).add(t.stored.uid)
        for label, uids in sorted(by_label.items()):
            value = gmail_labels.wire(label, utf8=utf8)
            self._store(uids, b"+X-GM-LABELS.SILENT", value, f"label {label!r}")
        for flag, uids in sorted(by_flag.items()):
            self._store(uids, b"+FLAGS.SILENT", flag.encode("ascii"), f"flag {flag}")
        # Confirm: a label the server refused, or a message deleted since, shows here.
        have: dict[int, set[str]] = {}
        targets = sorted({t.stored.uid for t in ready if t.stored.uid is not None})
        for start in range(0, len(targets), FETCH_CHUNK):
            chunk = targets[start : start + FETCH_CHUNK]
            for uid, data in control.fetch(chunk, ["X-GM-LABELS"]).items():
                labels = data.get(b"X-GM-LABELS", ())
                have[uid] = {gmail_labels.parse(x, utf8=utf8) for x in labels}
        for t in ready:
            if t.stored.uid in have and t.label in have[t.stored.uid]:
                self._labelled(t)
            else:
                missed.append(t)
        return missed

    def _store(self, uids: set[int], item: bytes, value: bytes, what: str) -> None:
        control = self._control
        assert control is not None
        ordered = sorted(uids)
        for start in range(0, len(ordered), FETCH_CHUNK):
            chunk = b",".join(b"%d" % uid for uid in ordered[start : start + FETCH_CHUNK])
            try:
                control._command_and_check("store", chunk, item, b"(" + value + b")", uid=True)
            except imapclient.exceptions.IMAPClientAbortError:
                raise
            except imapclient.exceptions.IMAPClientError as exc:
                self.report.notes.append(f"the server refused to set {what}: {exc}")
                return

    def _fallback(self, tasks: list[_LabelTask]) -> None:
        """Messages whose stored twin did not make it, or did not take the label."""
        groups: dict[tuple[str, str], list[_LabelTask]] = {}
        for task in tasks:
            groups.setdefault((task.sha256, task.folder), []).append(task)
        jobs: list[UploadJob] = []
        riders: dict[str, list[_LabelTask]] = {}
        for group in groups.values():
            carrier = next((t for t in group if t.job is not None), None)
            if carrier is None or carrier.job is None:
                for t in group:
                    self._label_failed(
                        t,
                        f"its identical message in {t.stored.folder!r} is not on the server "
                        "as recorded, so the label could not be added",
                    )
                continue
            # One upload per folder and content: the others are the same message there.
            jobs.append(carrier.job)
            riders[carrier.source_key] = [t for t in group if t is not carrier]
        if not jobs:
            return
        ok, unknown, error = self._upload_directly(jobs)
        for job in unknown:
            self._report_unknown(job, error)
        for key, rest in riders.items():
            for t in rest:
                if key in ok:
                    t.label = None
                    self._labelled(t)
                else:
                    self._label_failed(t, "its identical message could not be uploaded")

    def _labelled(self, task: _LabelTask) -> None:
        where = "this folder" if task.label is None else repr(task.stored.folder)
        self.journal.record(
            Entry(
                task.source_key,
                task.folder,
                task.message_id,
                task.size,
                task.sha256,
                Status.LABELLED,
                detail=f"the identical message in {where} carries this folder's label"[:500],
            )
        )
        task.report.labelled += 1

    def _label_failed(self, task: _LabelTask, why: str) -> None:
        self.journal.record(
            Entry(
                task.source_key,
                task.folder,
                task.message_id,
                task.size,
                task.sha256,
                Status.FAILED,
                detail=(LABEL_FAILED + why)[:500],
            )
        )
        task.report.failed += 1
        # Its bytes are known only while it was held for a fallback upload.
        self._failure(
            task.report.source,
            task.source_id,
            task.message_id,
            f"{why}; the next run uploads it",
            task.job.data if task.job is not None else None,
            task.job.internal_date if task.job is not None else None,
        )
        if task.job is None:
            self.report.failures[-1].size = task.size

    # --- the server-side duplicate check -----------------------------------------
    def _select(self, name: str) -> int:
        control = self._control
        assert control is not None
        info = control.select_folder(name, readonly=True)
        self._selected = name
        return int(info.get(b"EXISTS", 0))

    def _index(self, folder: str) -> ServerIndex:
        index = self._indexes.get(folder)
        if index is None:
            index = self._indexes[folder] = self._build_index(folder)
        return index

    def _build_index(self, folder: str) -> ServerIndex:
        if folder in self.folders.created:
            return ServerIndex.empty(folder)  # we just created it: nothing there yet
        try:
            exists = self._select(folder)
        except imapclient.exceptions.IMAPClientError:
            return ServerIndex.empty(folder)
        expected = self.journal.done_keys(folder)
        if exists == 0 or exists == sum(expected.values()):
            return ServerIndex.empty(folder)
        control = self._control
        assert control is not None

        index = ServerIndex.read(
            control, folder, lambda: self._reselect(folder), flags=self.same is not None
        )
        index.explain(expected, self.journal.done_hashes(folder))
        if self.same is not None and folder == INBOX_NAME:
            for planned in self.same.plan:  # matched this run, recorded once applied
                index.claim_uid(planned.original.uid)
        return index

    def _on_server(self, folder: str, data: bytes, message_id: str | None) -> ServerMessage | None:
        """Claim the server's copy of this message in ``folder``, if it has one."""
        index = self._index(folder)
        if not len(index):
            return None
        identity = Identity.of(data, message_id)
        if folder == INBOX_NAME and self.same is not None:
            # The POP3 UIDL the program kept names the server's copy outright.
            uid = self.same.uid_for(identity.trace.uidl)
            if uid is not None and (found := index.claim_uid(uid)) is not None:
                return found
        return index.find(identity)

    # --- the same account: the server's own copies ----------------------------------
    def _deleted_original(self, msg: SourceMessage) -> None:
        """A message deleted locally: is POP3's copy still in the server's INBOX?"""
        assert self.same is not None
        data = to_crlf(msg.data)
        found = self._on_server(INBOX_NAME, data, message_id_of(data))
        if found is not None:
            trash = self.options.trash_deleted and self._target(("Trash",), deleted=False).name
            self.same.deleted(found, trash or None)

    def _deleted_by_uidl(self) -> None:
        """Downloaded by the program (its UIDL file says so), still in INBOX, in no local
        folder: the user deleted it locally."""
        if self.same is None or not self.same.downloaded:
            return
        index = self._index(INBOX_NAME)
        trash = self.options.trash_deleted and self._target(("Trash",), deleted=False).name
        for uid in self.same.downloaded_uids():
            if (found := index.claim_uid(uid)) is not None:
                self.same.deleted(found, trash or None)

    def _apply_same_account(self) -> None:
        if self.same is None or not self.same.plan:
            return
        control = self._control
        assert control is not None
        done, notes = self.same.apply(control, self.layout.capabilities)
        self._selected = INBOX_NAME
        self._indexes.clear()  # UIDs moved: what was indexed is out of date
        for entry in done:
            self.journal.record(entry)
        self.report.notes.extend(notes)

    # --- uploading ---------------------------------------------------------------
    def _upload_all(self) -> None:
        batches: queue.Queue[Batch | None] = queue.Queue()
        results: queue.Queue[UploadResult] = queue.Queue()
        budget = ByteBudget(self.options.budget_bytes)
        cancelled = threading.Event()
        workers: list[UploadWorker] = []
        """The connections in use (alive, or ended and not yet looked at)."""
        ended: list[UploadWorker] = []
        planned = self.connections
        restarts = 0
        next_start = 0.0
        uploaded_at_restart = 0

        def start_workers() -> None:
            """(Re)connect: a dropped connection costs a reconnect, not the run."""
            alive = [w for w in workers if w.is_alive()]
            for _ in range(self.connections - len(alive)):
                worker = UploadWorker(
                    self.access.open,
                    batches,
                    results,
                    budget,
                    self.options.window,
                    self._classify,
                    cancelled,
                    self.keywords_allowed,
                    self.select_target,
                )
                worker.start()
                alive.append(worker)
            workers[:] = alive

        def tend_workers(restart: bool = True) -> None:
            """Replace ended connections after the wait the server asked for (else a
            growing backoff); one fewer each time the server turns a new one away."""
            nonlocal restarts, next_start, uploaded_at_restart
            now = time.monotonic()
            for worker in [w for w in workers if not w.is_alive()]:
                workers.remove(worker)
                ended.append(worker)
                if worker.stats.refused and self.connections > 1:
                    # "Too many simultaneous connections": never more than it accepted.
                    self.connections -= 1
                    self.progress.note(
                        f"the server turned a connection away ({worker.stats.error}); "
                        f"using {self.connections}"
                    )
                elif worker.stats.refused and too_many_connections(worker.stats.error or ""):
                    # Not even one more: the control connection carries the upload.
                    self.connections = 0
                    self.progress.note(control_note(worker.stats.error))
                wait = worker.stats.retry_after
                if wait is None:
                    wait = min(2.0**restarts, 30.0)
                next_start = max(next_start, now + min(wait, MAX_WAIT))
            if not restart or len(workers) >= self.connections or cancelled.is_set():
                return
            if self.report.uploaded > uploaded_at_restart:
                restarts = 0  # the last reconnect worked for a while
            if workers and now < next_start:
                return  # the other connections carry on meanwhile
            if not workers:
                if restarts >= MAX_RESTARTS:
                    raise _Stop(self._worker_error(ended[::-1]) or "the connections kept failing")
                self.progress.note(
                    f"connection lost ({self._worker_error(ended[::-1])}); reconnecting"
                )
                time.sleep(max(0.0, next_start - now))
            restarts += 1
            uploaded_at_restart = self.report.uploaded
            start_workers()

        start_workers()
        unknown: list[UploadJob] = []
        multi = "MULTIAPPEND" in self.layout.capabilities
        pending: list[Batch] = []  # the batch being filled, if any

        def flush() -> None:
            if pending:
                batches.put(pending.pop())

        def submit(job: UploadJob) -> None:
            budget.limit = max(budget.limit, BUDGET_LARGEST_MULTIPLE * job.size)
            current = pending[0] if pending else None
            if current is not None and (
                not multi
                or current.folder != job.folder
                or len(current.jobs) >= self.options.batch_messages
                or current.size + job.size > BATCH_BYTES
                or budget.used + job.size > budget.limit  # never wait while holding a batch
            ):
                flush()
            tend_workers()
            if self.connections == 0 and budget.used + job.size > budget.limit:
                flush()
                over_control()
            if not budget.acquire(job.size, cancelled):
                raise _Stop("the upload was stopped")
            self._outstanding[job.source_key] = job
            if pending:
                pending[0].jobs.append(job)
            else:
                pending.append(Batch(job.folder, [job]))
            self._drain(results, unknown)

        def over_control() -> None:
            assert self._control is not None
            upload_over(
                self._control,
                batches,
                results,
                budget,
                self._classify,
                cancelled,
                self.keywords_allowed,
            )
            self._selected = None  # its untagged answers were the appender's to read
            self._drain(results, unknown)

        messages = iter(self.reader.messages())
        try:
            try:
                for msg in messages:
                    if cancelled.is_set():
                        self._unconsidered = msg
                        break
                    self._consider(msg, submit)
                flush()
                tend_workers(restart=False)
                if self.connections == 0:
                    over_control()
            except _Stop as stop:
                self.report.stopped_early = str(stop)
            finally:
                for _ in workers:
                    batches.put(None)
                while any(w.is_alive() for w in workers):
                    self._drain(results, unknown, timeout=0.1)
                tend_workers(restart=False)
                self._drain(results, unknown)
        except BaseException:
            cancelled.set()
            raise
        # Batches no worker took (every connection failed): not uploaded; settled below.
        leftovers = [*pending]
        while True:
            try:
                leftover = batches.get_nowait()
            except queue.Empty:
                break
            if leftover is not None:
                leftovers.append(leftover)
        for batch in leftovers:
            unknown.extend(batch.jobs)
        # Defence in depth: a job nobody answered for is treated as unknown, never dropped.
        known = {job.source_key for job in unknown}
        unknown.extend(j for k, j in self._outstanding.items() if k not in known)
        self._outstanding.clear()
        everyone = [*ended, *workers]
        quota_stop = next((w.stats.stop for w in everyone if w.stats.stop), None)
        if unknown:
            # After a stop, only look: what is not on the server waits for the next run.
            self._settle_unknown(unknown, resend=quota_stop is None)
        said = next((w.stats.error for w in everyone if w.stats.refused), None)
        if self.connections == 0:
            self.report.notes.append(control_note(said))
        elif self.connections < planned:
            self.report.notes.append(
                f"the server accepted only {self.connections} upload connection(s) at once "
                f"({said}); planned were {planned}"
            )
        self.report.connections = self.connections
        if isinstance(quota_stop, quota.StorageFull):
            self._defer_rest(messages)
        if quota_stop is not None:
            self.report.stopped_early = (
                quota_stop.message or "the server asked to stop for now (daily quota)"
            )
        elif cancelled.is_set() and self.report.stopped_early is None:
            self.report.stopped_early = "the server asked to stop for now (quota or throttling)"

    def _worker_error(self, workers: list[UploadWorker]) -> str | None:
        errors = [w.stats.error for w in workers if w.stats.error]
        return errors[0] if errors else None

    def _drain(
        self,
        results: queue.Queue[UploadResult],
        unknown: list[UploadJob],
        timeout: float | None = None,
    ) -> None:
        while True:
            try:
                result = results.get(timeout=timeout) if timeout else results.get_nowait()
            except queue.Empty:
                return
            timeout = None
            self._record(result, unknown)

    def _record(self, result: UploadResult, unknown: list[UploadJob]) -> None:
        job = result.job
        self._outstanding.pop(job.source_key, None)
        folder = self._report_for_target(job.folder)
        copy = self._copy_of.get(job.source_key)
        if copy is not None and not result.unknown:  # an unknown one is settled later
            del self._copy_of[job.source_key]
            copy.state = "stored" if result.ok else "gone"
            copy.uid, copy.uidvalidity = result.uid, result.uidvalidity
        if result.ok:
            self.journal.record(
                Entry(
                    job.source_key,
                    job.folder,
                    job.message_id,
                    job.size,
                    job.sha256,
                    Status.UPLOADED,
                    result.uidvalidity,
                    result.uid,
                )
            )
            self.report.uploaded += 1
            self.report.uploaded_bytes += job.size
            if result.uid is not None:
                for flag in job.flags_after:
                    self._store_after.setdefault((job.folder, flag), []).append(result.uid)
            if folder is not None:
                folder.uploaded += 1
        elif result.unknown:
            unknown.append(job)
        elif result.stop:
            # Not refused: the allowance is spent or the account full; the next run sends it.
            self.report.deferred += 1
            self.report.deferred_bytes += job.size
        else:
            reason = f"the server refused it: {result.response}"
            self.journal.record(
                Entry(
                    job.source_key,
                    job.folder,
                    job.message_id,
                    job.size,
                    job.sha256,
                    Status.FAILED,
                    detail=reason[:500],
                )
            )
            if folder is not None:
                folder.failed += 1
            source_id = job.source_key.rsplit(":", 1)[-1]
            self._failure(
                folder.source if folder else job.folder,
                source_id,
                job.message_id,
                reason,
                job.data,
                job.internal_date,
            )

    def _report_for_target(self, target: str) -> FolderReport | None:
        for (path, _deleted), t in self._targets.items():
            if t.name == target:
                return self._folders.get(path)
        return None

    def _settle_unknown(self, unknown: list[UploadJob], resend: bool = True) -> None:
        """Messages whose answer was lost: look on the server, send only what is missing
        (or, when ``resend`` is False, leave it for the next run)."""
        self.journal.flush()
        self._indexes.clear()
        missing: list[UploadJob] = []
        for job in unknown:
            if self._on_server(job.folder, job.data, job.message_id) is not None:
                if (copy := self._copy_of.pop(job.source_key, None)) is not None:
                    copy.state = "found"
                self.journal.record(
                    Entry(
                        job.source_key,
                        job.folder,
                        job.message_id,
                        job.size,
                        job.sha256,
                        Status.FOUND,
                    )
                )
                folder = self._report_for_target(job.folder)
                if folder is not None:
                    folder.found_on_server += 1
            elif resend:
                missing.append(job)
            else:
                self.report.deferred += 1
                self.report.deferred_bytes += job.size
        if not missing:
            return
        _ok, still_unknown, error = self._upload_directly(missing)
        for job in still_unknown:
            self._report_unknown(job, error)
        if error and still_unknown:
            if too_many_connections(error):
                raise TooManyConnections(error)
            raise ConnectError(f"lost the connection to the server: {error}")

    def _upload_directly(
        self, jobs: list[UploadJob]
    ) -> tuple[set[str], list[UploadJob], str | None]:
        """Upload over one new connection, one message at a time, in this thread.

        Results are recorded; returns the source keys stored, the jobs whose answer was
        lost, and the connection's error if any.
        """
        batches: queue.Queue[Batch | None] = queue.Queue()
        results: queue.Queue[UploadResult] = queue.Queue()
        budget = ByteBudget(self.options.budget_bytes)
        for job in jobs:
            budget.acquire(job.size)  # each is released when its answer comes
            batches.put(Batch(job.folder, [job]))
        batches.put(None)
        control = self._control if self.connections == 0 else None
        worker = UploadWorker(
            self.access.open if control is None else lambda: control,
            batches,
            results,
            budget,
            1,
            self._classify,
            threading.Event(),
            self.keywords_allowed,
            keep_open=control is not None,
        )
        worker.run()
        ok: set[str] = set()
        still_unknown: list[UploadJob] = []
        answered: set[str] = set()
        while True:
            try:
                result = results.get_nowait()
            except queue.Empty:
                break
            answered.add(result.job.source_key)
            if result.ok:
                ok.add(result.job.source_key)
            self._record(result, still_unknown)
        # A connection refused before it took a job answers for none: never drop them.
        still_unknown += [j for j in jobs if j.source_key not in answered]
        return ok, still_unknown, worker.stats.error

    def _report_unknown(self, job: UploadJob, error: str | None) -> None:
        if (copy := self._copy_of.pop(job.source_key, None)) is not None:
            copy.state = "gone"
        folder = self._report_for_target(job.folder)
        if folder is not None:
            folder.failed += 1
        self._failure(
            job.folder,
            job.source_key.rsplit(":", 1)[-1],
            job.message_id,
            f"not uploaded: {error or 'connection lost'}",
            job.data,
            job.internal_date,
        )

    def _classify(self, response: str) -> Any:
        # The provider's reading first (Gmail's [OVERQUOTA] is its daily allowance),
        # then the codes every server uses for a full account.
        advice = self.plugins.classify_response(self.access.provider, response)
        return advice if advice is not None else quota.storage_full(response)

    # --- room on the server --------------------------------------------------------
    def _read_room(self, control: imapclient.IMAPClient) -> quota.Room | None:
        limits = self.plugins.limits(self.access.provider)
        return quota.read_room(control, self.layout.capabilities, limits, self.access.provider)

    def _weigh_room(self, room: quota.Room, candidates: list[tuple[float, int, str]]) -> None:
        check = self.report.room = quota.weigh(candidates, room)
        newest_first = self.options.when_full is quota.WhenFull.NEWEST_FIRST
        if check.blocks and newest_first and room.free_bytes is not None:
            self._fit, _ = quota.newest_that_fit(candidates, room.free_bytes)

    def _plan_room(self, control: imapclient.IMAPClient) -> bool:
        """Before any upload: does the plan fit? False when nothing may be uploaded."""
        room = self._read_room(control)
        if room is None or self.reader.kind == "pop3":
            return True  # unknown room (or a live source, not read twice): go on
        free = room.free_bytes
        bound = _store_bytes(self.reader)
        if free is not None and bound is not None and 2 * bound <= free:
            # Even with every line ending doubled it fits: not worth a pass to measure.
            self.report.room = quota.weigh([], room, at_most=2 * bound)
            return True
        # Measure what this run would really upload (journal and server taken into account).
        progress, self.progress = self.progress, _NoProgress()
        show, self._show_folder = self._show_folder, None
        self._measuring, self._planning = [], True
        try:
            for msg in self.reader.messages():
                self._consider(msg, None)
            self._weigh_room(room, self._measuring)
        finally:
            self._measuring, self._planning = None, False
            self._indexes.clear()  # looking consumed its matches: index afresh for real
            self.progress, self._show_folder = progress, show
            for report in self._folders.values():  # the upload pass counts again
                report.messages = report.bytes = report.to_upload = report.partial = 0
                report.labelled = report.to_label = report.skipped_deleted = 0
                report.already_done = report.failed = 0
            self.report.planned_bytes = 0
        check = self.report.room
        assert check is not None
        if not check.blocks:
            if check.fits is False:
                self.report.notes.append(f"{check.summary}: the upload may stop when it is full")
            return True
        if self._fit is not None:
            self.report.account_full = True  # what does not fit waits: not a clean finish
            self.report.notes.append(
                f"{check.summary}: moving the newest {check.fitting_messages:,} messages "
                f"({quota.fmt_bytes(check.fitting_bytes)}) that fit; the rest waits"
            )
            return True
        self.report.account_full = True
        self.report.deferred = check.planned_messages
        self.report.deferred_bytes = check.planned_bytes
        self.report.stopped_early = (
            f"nothing was uploaded: {check.summary}. To go on: {check.advice}"
        )
        return False

    def _defer_rest(self, messages: Iterator[SourceMessage]) -> None:
        """The account is full: count what this run did not get to, in one line."""
        self.report.account_full = True
        first = [self._unconsidered] if self._unconsidered is not None else []
        self._unconsidered = None
        for msg in itertools.chain(first, messages):
            if not msg.readable or (msg.deleted and self.options.skip_deleted):
                continue
            if self.journal.status(f"{self.source_name}:{msg.source_id}") in Status.DONE:
                continue
            self.report.deferred += 1
            self.report.deferred_bytes += len(to_crlf(msg.data))

    def _restore_flags(self) -> None:
        """Set flags the provider drops on APPEND again (the provider's upload rules)."""
        control = self._control
        assert control is not None
        for (folder, flag), uids in sorted(self._store_after.items()):
            control.select_folder(folder)
            self._selected = folder
            for start in range(0, len(uids), FETCH_CHUNK):
                control.add_flags(uids[start : start + FETCH_CHUNK], [flag], silent=True)
        self._store_after.clear()

    # --- verification -------------------------------------------------------------
    def _verify(self) -> None:
        """Every message the journal counts as on the server must be there, once
        (copies counted as ``mailadvisor verify`` counts them)."""
        self.journal.flush()
        control = self._control
        assert control is not None
        missing = extra = 0
        for target in sorted({t.name for t in self._targets.values()}):
            expected = self.journal.done_keys(target)
            if not expected:
                continue
            self._select(target)
            index = ServerIndex.read(control, target, lambda: None)
            # Sizes within what servers change (a final CRLF added) count as the same key.
            keys = index.keys_like(expected)
            for (message_id, size), n in (expected - keys).items():
                # Gone from the server (deleted there since?): no longer counted as done,
                # so the next run uploads them again instead of trusting the journal.
                missing += self.journal.forget_done(target, message_id, size, n)
            extra += copies.count_extra(
                expected,
                keys,
                functools.partial(self.journal.done_hashes, target),
                index.exact_hashes,
            )
        self.report.verified = missing == 0 and extra == 0
        self.report.missing_after_verify = missing
        self.report.extra_copies = extra
        checked, altered = self._sample.check(control, self._uploaded_uid, self._reselect)
        self.report.content_checked, self.report.altered = checked, altered

    def _uploaded_uid(self, key: str) -> int | None:
        entry = self.journal.entry(key)
        return entry.uid if entry is not None and entry.status == Status.UPLOADED else None

    def _reselect(self, folder: str) -> None:
        if self._selected != folder:
            self._select(folder)


def read_layout(control: imapclient.IMAPClient) -> ServerLayout:
    """The server's delimiter, personal prefix, folders and capabilities (never assumed)."""
    caps = frozenset(c.decode("ascii", "replace").upper() for c in control.capabilities())
    prefix, delimiter = "", "/"
    if "NAMESPACE" in caps:
        personal = control.namespace().personal
        if personal:
            prefix, delim = personal[0]
            delimiter = delim or delimiter
    folders = []
    for flags, delim, name in control.list_folders():
        if delim:
            delimiter = delim.decode() if isinstance(delim, bytes) else delim
        folders.append(
            ServerFolder(
                name=name,
                delimiter=delimiter,
                flags=frozenset(f.decode() if isinstance(f, bytes) else f for f in flags),
            )
        )
    return ServerLayout(
        delimiter=delimiter, prefix=prefix or "", folders=folders, capabilities=caps
    )


def folder_mapper(
    kind: str,
    paths: list[tuple[str, ...]],
    layout: ServerLayout,
    plugins: PluginHost,
    access: AccountAccess,
    options: MigrationOptions,
    listed: Sequence[SourceFolder] = (),
    renames: dict[str, str] | None = None,
) -> FolderMapper:
    """Where each local folder goes: the same mapping for a migration and a verification.

    ``listed``: the reader's folders, which may say that one is the inbox (a spool);
    ``renames``: the journal's server names for names the server refused.
    """
    policy = plugins.folder_policy(access.provider, layout.folders)
    # Thunderbird profiles put the account first ("Local Folders/Inbox"): leave it out.
    account_level = kind == "thunderbird" and all(len(p) > 1 for p in paths)
    inboxes = {f.path: f.inbox_reason for f in listed if f.inbox_reason}
    return FolderMapper(
        layout,
        policy,
        options.target_prefix,
        options.folder_map,
        account_level,
        inboxes,
        renames or {},
    )


class _Stop(Exception):
    pass


def _store_bytes(reader: StoreReader) -> int | None:
    """Bytes of the files under the store's path (an upper bound of its mail), or None."""
    path = Path(reader.path)
    try:
        if path.is_file():
            return path.stat().st_size
        total = 0
        for entry in path.rglob("*"):
            if entry.is_file():
                total += entry.stat().st_size
        return total
    except OSError:
        return None


def _source_name(reader: StoreReader) -> str:
    """What identifies the source in the journal: its kind and resolved path (or account)."""
    if reader.path is not None:
        return f"{reader.kind}:{reader.path.resolve()}"
    account = f"{getattr(reader, 'username', '')}@{getattr(reader, 'host', '')}"
    return f"{reader.kind}:{account}"


def _mb(n: int) -> str:
    return f"{n / 1_000_000:,.0f} MB"
