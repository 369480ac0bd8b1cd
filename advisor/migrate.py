"""The migration: every message of a local store into the right IMAP folder, exactly once.

How exactly-once holds:

1. The journal (:mod:`advisor.journal`) records each message's outcome; a re-run
   skips what is done.
2. Before the first upload into a server folder, its messages are compared with
   what the journal says should be there. Anything the journal cannot explain
   (a run killed between the server's OK and the journal's commit, a lost
   journal, mail uploaded by another tool) is indexed by Message-ID and size
   (by content hash for messages without a Message-ID), and local messages
   found in that index are not uploaded again.
3. A message whose answer was lost with its connection is checked the same way
   before it is sent again.
4. At the end every folder is verified: each message the journal counts as on
   the server must be found there.

Nothing is ever deleted or changed on the server; the source is only read.
"""

from __future__ import annotations

import hashlib
import queue
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import imapclient
import imapclient.exceptions

from advisor.account import AccountAccess
from advisor.errors import ConnectError
from advisor.folders import FolderMapper, FolderTarget, ServerLayout
from advisor.journal import Entry, MigrationJournal, Status
from advisor.plugin_manager import PluginHost
from advisor.provider import ServerFolder
from advisor.stores.base import SourceMessage, StoreReader
from advisor.upload import Batch, ByteBudget, UploadJob, UploadResult, UploadWorker

DEFAULT_CONNECTIONS = 4
DEFAULT_WINDOW = 4
DEFAULT_BUDGET = 8 * 1024 * 1024
BUDGET_LARGEST_MULTIPLE = 4
"""The in-flight budget grows to this many times the largest message seen."""
BATCH_MESSAGES = 200
MAX_RESTARTS = 5
BATCH_BYTES = 4 * 1024 * 1024
FETCH_CHUNK = 1000
CONTENT_CHUNK_BYTES = 4 * 1024 * 1024

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.I | re.M)
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


@dataclass
class Failure:
    """A message that was not migrated, and why. It stays in the source."""

    folder: str
    source_id: str
    message_id: str | None
    reason: str


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
    skipped_deleted: int = 0
    failed: int = 0
    elapsed_seconds: float = 0.0
    messages_per_second: float = 0.0
    connections: int = 0
    verified: bool | None = None
    missing_after_verify: int = 0
    journal: str = ""
    stopped_early: str | None = None
    notes: list[str] = field(default_factory=list)
    planned_bytes: int = 0
    """Dry run: bytes a real run would upload."""
    estimated_days: float | None = None
    """Dry run: days the upload takes under the provider's daily upload limit, if any."""

    @property
    def complete(self) -> bool:
        return self.failed == 0 and self.missing_after_verify == 0 and self.stopped_early is None


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


def message_id_of(data: bytes) -> str | None:
    """The Message-ID as the server will report it (unfolded, whitespace squeezed)."""
    match = _MESSAGE_ID.search(header_block(data))
    if match is None:
        return None
    value = b" ".join(match.group(1).split()).decode("utf-8", "replace")
    return value or None


def date_header_of(data: bytes) -> datetime | None:
    match = _DATE.search(header_block(data))
    if match is None:
        return None
    try:
        return parsedate_to_datetime(b" ".join(match.group(1).split()).decode("ascii", "replace"))
    except (TypeError, ValueError, IndexError):
        return None


class _ServerIndex:
    """Messages in one server folder that the journal cannot account for."""

    def __init__(self, keys: Counter[tuple[str | None, int]], no_id_sizes: dict[int, list[int]]):
        self.keys = keys
        self.no_id_uids = no_id_sizes
        self.hashes: Counter[str] | None = None

    @classmethod
    def empty(cls) -> _ServerIndex:
        return cls(Counter(), {})


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
        self.source_name = source_name or _source_name(reader)
        self._control: imapclient.IMAPClient | None = None
        self._targets: dict[tuple[tuple[str, ...], bool], FolderTarget] = {}
        self._indexes: dict[str, _ServerIndex] = {}
        self._folders: dict[tuple[str, ...], FolderReport] = {}
        self._selected: str | None = None
        self._outstanding: dict[str, UploadJob] = {}
        self._refused: dict[str, str] = {}
        """Server folders that could not be created, and the server's reason."""
        """Jobs handed to the uploaders and not yet answered: none may be forgotten."""
        self.report = MigrationReport(
            account=access.email,
            server=f"{access.target.host}:{access.target.port}",
            dry_run=self.options.dry_run,
            folders=[],
            failures=[],
            journal=str(journal.path),
        )

    # --- the run ------------------------------------------------------------
    def run(self) -> MigrationReport:
        started = time.monotonic()
        control = self._control = self.access.open()
        try:
            self._prepare(control)
            if self.options.dry_run:
                for msg in self.reader.messages():
                    self._consider(msg, None)
                if self.daily_limit:
                    self.report.estimated_days = self.report.planned_bytes / self.daily_limit
            else:
                self._upload_all()
                self._restore_flags()
                if self.options.verify:
                    self._verify()
        finally:
            self.journal.flush()
            try:
                control.logout()
            except Exception:  # the report matters more than a clean goodbye
                control.shutdown()
            self._control = None
        r = self.report
        r.elapsed_seconds = time.monotonic() - started
        r.messages_per_second = r.uploaded / r.elapsed_seconds if r.elapsed_seconds else 0.0
        r.folders = list(self._folders.values())
        for f in r.folders:
            r.already_done += f.already_done
            r.found_on_server += f.found_on_server
            r.skipped_deleted += f.skipped_deleted
        r.failed = len(r.failures)
        return r

    def _prepare(self, control: imapclient.IMAPClient) -> None:
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
        layout = ServerLayout(
            delimiter=delimiter, prefix=prefix or "", folders=folders, capabilities=caps
        )
        policy = self.plugins.folder_policy(self.access.provider, folders)
        paths = [f.path for f in self.reader.folders()]
        # Thunderbird profiles put the account first ("Local Folders/Inbox"): leave it out.
        account_level = self.reader.kind == "thunderbird" and all(len(p) > 1 for p in paths)
        self.mapper = FolderMapper(
            layout, policy, self.options.target_prefix, self.options.folder_map, account_level
        )
        self.layout = layout
        self.rules = self.plugins.upload_rules(self.access.provider)
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
        conns = self.options.connections or DEFAULT_CONNECTIONS
        if limits.max_connections:
            conns = min(conns, max(1, limits.max_connections - 1))  # leave one for the control
        self.connections = max(1, conns)
        self.report.connections = self.connections
        self.keywords_allowed = True
        for path in paths:
            self._folder_report(path)

    # --- per message ----------------------------------------------------------
    def _folder_report(self, path: tuple[str, ...]) -> FolderReport:
        report = self._folders.get(path)
        if report is None:
            target = self._target(path, deleted=False)
            report = FolderReport("/".join(path), target.name, target.reason)
            self._folders[path] = report
        return report

    def _target(self, path: tuple[str, ...], deleted: bool) -> FolderTarget:
        key = (path, deleted)
        target = self._targets.get(key)
        if target is None:
            target = self.mapper.target_for(path, deleted=deleted)
            if not self.options.dry_run and not target.exists and self._control is not None:
                self._create(target)
            self._targets[key] = target
        return target

    def _create(self, target: FolderTarget) -> None:
        control = self._control
        assert control is not None
        try:
            if target.create_use and "CREATE-SPECIAL-USE" in self.layout.capabilities:
                # RFC 6154: create it with its role, so other clients find it too.
                control._command_and_check(
                    "create",
                    control._normalise_folder(target.name),
                    f"(USE ({target.create_use}))",
                    unpack=True,
                )
            else:
                control.create_folder(target.name)
        except imapclient.exceptions.IMAPClientError as exc:
            if "ALREADYEXISTS" not in str(exc).upper():
                # Its messages are reported as not migrated; the rest of the run goes on.
                self._refused[target.name] = (
                    f"the server refused to create folder {target.name!r}: {exc}"
                )
                return
        try:
            control.subscribe_folder(target.name)
        except imapclient.exceptions.IMAPClientError:
            self.report.notes.append(f"could not subscribe to {target.name!r}")
        for report in self._folders.values():
            if report.target == target.name:
                report.created = True

    def _consider(self, msg: SourceMessage, submit: Callable[[UploadJob], None] | None) -> None:
        """Decide what happens to one message; hand it to ``submit`` if it must be uploaded."""
        folder = self._folder_report(msg.folder)
        folder.messages += 1
        folder.bytes += msg.size
        self.progress.advance(1, msg.size)
        if not msg.readable:
            self._fail(
                folder, msg, None, "; ".join(p.message for p in msg.problems) or "unreadable"
            )
            return
        if msg.deleted and self.options.skip_deleted:
            folder.skipped_deleted += 1
            return
        target = self._target(msg.folder, deleted=msg.deleted)
        if target.name in self._refused:
            self._fail(folder, msg, None, self._refused[target.name])
            return
        key = f"{self.source_name}:{msg.source_id}"
        status = self.journal.status(key)
        if status in Status.DONE:
            folder.already_done += 1
            return
        data = to_crlf(msg.data)
        message_id = message_id_of(data)
        if self.max_size is not None and len(data) > self.max_size:
            self._fail(
                folder,
                msg,
                message_id,
                f"too large for this server ({len(data):,} bytes, limit {self.max_size:,})",
            )
            return
        digest = hashlib.sha256(data).hexdigest()
        if self._on_server(target.name, message_id, len(data), digest):
            folder.found_on_server += 1
            self.journal.record(
                Entry(key, target.name, message_id, len(data), digest, Status.FOUND)
            )
            return
        if msg.partial:
            folder.partial += 1
        if submit is None:
            folder.to_upload += 1
            self.report.planned_bytes += len(data)
            return
        if self._day_left is not None:
            if len(data) > self._day_left:
                raise _Stop(
                    f"the provider accepts about {_mb(self.daily_limit or 0)} a day and today's "
                    "share is used up; run the same command again in 24 hours to continue "
                    "(nothing is uploaded twice)"
                )
            self._day_left -= len(data)
        received = msg.received or date_header_of(data)
        after = tuple(sorted(self.rules.flags_after_append.intersection(msg.flags)))
        flags = tuple(sorted(msg.flags.difference(after)))
        submit(UploadJob(key, target.name, data, flags, received, message_id, digest, after))

    def _fail(
        self, folder: FolderReport, msg: SourceMessage, message_id: str | None, why: str
    ) -> None:
        folder.failed += 1
        self.report.failures.append(Failure(folder.source, msg.source_id, message_id, why))

    # --- the server-side duplicate check -----------------------------------------
    def _select(self, name: str) -> int:
        control = self._control
        assert control is not None
        info = control.select_folder(name, readonly=True)
        self._selected = name
        return int(info.get(b"EXISTS", 0))

    def _index(self, folder: str) -> _ServerIndex:
        index = self._indexes.get(folder)
        if index is None:
            index = self._indexes[folder] = self._build_index(folder)
        return index

    def _build_index(self, folder: str) -> _ServerIndex:
        if not self.layout.has(folder) and not any(
            t.name == folder and t.exists for t in self._targets.values()
        ):
            return _ServerIndex.empty()  # we just created it: nothing there yet
        try:
            exists = self._select(folder)
        except imapclient.exceptions.IMAPClientError:
            return _ServerIndex.empty()
        expected = self.journal.done_keys(folder)
        if exists == 0 or exists == sum(expected.values()):
            return _ServerIndex.empty()
        keys, no_id = self._fetch_keys()
        return _ServerIndex(keys - expected, no_id)

    def _fetch_keys(self) -> tuple[Counter[tuple[str | None, int]], dict[int, list[int]]]:
        control = self._control
        assert control is not None
        keys: Counter[tuple[str | None, int]] = Counter()
        no_id: dict[int, list[int]] = {}
        for uid, data in self._fetch_all(["RFC822.SIZE", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]):
            size = int(data[b"RFC822.SIZE"])
            header = _header_value(data)
            mid = message_id_of(header)
            keys[(mid, size)] += 1
            if mid is None:
                no_id.setdefault(size, []).append(uid)
        return keys, no_id

    def _fetch_all(self, items: list[str]) -> Iterator[tuple[int, dict[bytes, Any]]]:
        """FETCH ``items`` for every message of the selected folder, in bounded chunks."""
        control = self._control
        assert control is not None
        uids = control.search("ALL")
        for start in range(0, len(uids), FETCH_CHUNK):
            yield from control.fetch(uids[start : start + FETCH_CHUNK], items).items()

    def _on_server(self, folder: str, message_id: str | None, size: int, digest: str) -> bool:
        index = self._index(folder)
        key = (message_id, size)
        if index.keys[key] <= 0:
            return False
        if message_id is not None:
            index.keys[key] -= 1  # Message-ID confirmed by size
            return True
        # No Message-ID: only identical content counts.
        if index.hashes is None:
            index.hashes = self._content_hashes(folder, index) - self.journal.done_hashes(folder)
        if index.hashes[digest] > 0:
            index.hashes[digest] -= 1
            index.keys[key] -= 1
            return True
        return False

    def _content_hashes(self, folder: str, index: _ServerIndex) -> Counter[str]:
        control = self._control
        assert control is not None
        if self._selected != folder:
            self._select(folder)
        hashes: Counter[str] = Counter()
        chunk: list[int] = []
        chunk_bytes = 0
        groups = sorted(index.no_id_uids.items())
        for n, (size, uids) in enumerate(groups):
            for i, uid in enumerate(uids):
                chunk.append(uid)
                chunk_bytes += size
                last = n == len(groups) - 1 and i == len(uids) - 1
                # Full bodies: a few MB per FETCH keeps memory small whatever the sizes.
                if chunk_bytes >= CONTENT_CHUNK_BYTES or len(chunk) >= 50 or last:
                    for data in control.fetch(chunk, ["BODY.PEEK[]"]).values():
                        hashes[hashlib.sha256(data[b"BODY[]"]).hexdigest()] += 1
                    chunk, chunk_bytes = [], 0
        return hashes

    # --- uploading ---------------------------------------------------------------
    def _upload_all(self) -> None:
        batches: queue.Queue[Batch | None] = queue.Queue()
        results: queue.Queue[UploadResult] = queue.Queue()
        budget = ByteBudget(self.options.budget_bytes)
        cancelled = threading.Event()
        workers: list[UploadWorker] = []
        restarts = [0]

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
                )
                worker.start()
                alive.append(worker)
            workers[:] = alive

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
            if not any(w.is_alive() for w in workers):
                if restarts[0] >= MAX_RESTARTS:
                    raise _Stop(self._worker_error(workers) or "the connections kept failing")
                restarts[0] += 1
                self.progress.note(f"connection lost ({self._worker_error(workers)}); reconnecting")
                time.sleep(min(2 ** restarts[0], 30))
                start_workers()
            if not budget.acquire(job.size, cancelled):
                raise _Stop("the upload was stopped")
            self._outstanding[job.source_key] = job
            if pending:
                pending[0].jobs.append(job)
            else:
                pending.append(Batch(job.folder, [job]))
            self._drain(results, unknown)

        try:
            try:
                for msg in self.reader.messages():
                    if cancelled.is_set():
                        break
                    self._consider(msg, submit)
                flush()
            except _Stop as stop:
                self.report.stopped_early = str(stop)
            finally:
                for _ in workers:
                    batches.put(None)
                while any(w.is_alive() for w in workers):
                    self._drain(results, unknown, timeout=0.1)
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
        if unknown:
            self._settle_unknown(unknown)
        if cancelled.is_set() and self.report.stopped_early is None:
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
            self.report.failures.append(
                Failure(folder.source if folder else job.folder, source_id, job.message_id, reason)
            )
            if result.stop:
                self.report.stopped_early = result.response

    def _report_for_target(self, target: str) -> FolderReport | None:
        for (path, _deleted), t in self._targets.items():
            if t.name == target:
                return self._folders.get(path)
        return None

    def _settle_unknown(self, unknown: list[UploadJob]) -> None:
        """Messages whose answer was lost: look on the server, send only what is missing."""
        self.journal.flush()
        self._indexes.clear()
        resend: list[UploadJob] = []
        for job in unknown:
            if self._on_server(job.folder, job.message_id, job.size, job.sha256):
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
            else:
                resend.append(job)
        if not resend:
            return
        batches: queue.Queue[Batch | None] = queue.Queue()
        results: queue.Queue[UploadResult] = queue.Queue()
        budget = ByteBudget(self.options.budget_bytes)
        for job in resend:
            budget.acquire(job.size)  # each is released when its answer comes
            batches.put(Batch(job.folder, [job]))
        batches.put(None)
        worker = UploadWorker(
            self.access.open,
            batches,
            results,
            budget,
            1,
            self._classify,
            threading.Event(),
            self.keywords_allowed,
        )
        worker.run()  # in this thread: one connection, one message at a time
        still_unknown: list[UploadJob] = []
        self._drain(results, still_unknown)
        for job in still_unknown:
            folder = self._report_for_target(job.folder)
            if folder is not None:
                folder.failed += 1
            self.report.failures.append(
                Failure(
                    job.folder,
                    job.source_key.rsplit(":", 1)[-1],
                    job.message_id,
                    f"not uploaded: {worker.stats.error or 'connection lost'}",
                )
            )
        if worker.stats.error and still_unknown:
            raise ConnectError(f"lost the connection to the server: {worker.stats.error}")

    def _classify(self, response: str) -> Any:
        return self.plugins.classify_response(self.access.provider, response)

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
        """Every message the journal counts as on the server must be there."""
        self.journal.flush()
        missing = 0
        for target in {t.name for t in self._targets.values()}:
            expected = self.journal.done_keys(target)
            if not expected:
                continue
            self._select(target)
            keys, _ = self._fetch_keys()
            missing += sum((expected - keys).values())
        self.report.verified = missing == 0
        self.report.missing_after_verify = missing


class _Stop(Exception):
    pass


def _header_value(data: dict[bytes, Any]) -> bytes:
    for key, value in data.items():
        if key.startswith(b"BODY[HEADER.FIELDS") and isinstance(value, bytes):
            return value
    return b""


def _source_name(reader: StoreReader) -> str:
    """What identifies the source in the journal: its kind and resolved path (or account)."""
    if reader.path is not None:
        return f"{reader.kind}:{reader.path.resolve()}"
    account = f"{getattr(reader, 'username', '')}@{getattr(reader, 'host', '')}"
    return f"{reader.kind}:{account}"


def _mb(n: int) -> str:
    return f"{n / 1_000_000:,.0f} MB"
