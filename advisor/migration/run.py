"""The run: the message loop and the order of its phases (see :mod:`advisor.migration`).

Prepare (the server's layout, the folder plan, the same account), weigh the room, read
every message once and decide its fate (:meth:`Migration._consider`), upload through the
pool, settle lost answers, apply the same account's moves and the labels, set flags the
provider drops again, verify. The parts it drives each have their room:
:mod:`~advisor.migration.plan`, :mod:`~advisor.migration.duplicates`,
:mod:`~advisor.migration.pool`, :mod:`~advisor.migration.labels`,
:mod:`~advisor.migration.ledger` (every outcome) and :mod:`~advisor.migration.verify`.
"""

from __future__ import annotations

import hashlib
import itertools
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import imapclient
import imapclient.exceptions

from advisor.connection.account import AccountAccess
from advisor.connection.limits import TooManyConnections, too_many_connections
from advisor.errors import ConnectError, MailadvisorError
from advisor.migration import labels as gmail_labels
from advisor.migration import quota, same_account
from advisor.migration.content_check import ContentSample
from advisor.migration.control import Control
from advisor.migration.duplicates import ServerCopies
from advisor.migration.journal import MigrationJournal, Status
from advisor.migration.labels import LABEL_FAILED, LabelSharing
from advisor.migration.ledger import Ledger, found_entry
from advisor.migration.options import MigrationOptions
from advisor.migration.partial import PartialSources
from advisor.migration.plan import INBOX as INBOX_NAME
from advisor.migration.plan import (
    FolderTarget,
    date_header_of,
    folder_mapper,
    kept_flags,
    mb,
    to_crlf,
    upload_job,
)
from advisor.migration.plan import (
    source_name as source_name_of,
)
from advisor.migration.pool import Stop, UploadPool, upload_directly
from advisor.migration.rejects import subject_of
from advisor.migration.report import FolderReport, MigrationReport, NoProgress, Progress
from advisor.migration.room import may_upload, needs_measuring, start_over, weigh
from advisor.migration.server_folders import ServerFolders, read_layout
from advisor.migration.server_index import message_id_of
from advisor.migration.settle import settle
from advisor.migration.upload import UploadJob, UploadResult
from advisor.migration.upload_plan import plan_connections
from advisor.migration.verify import verify_run
from advisor.plugins.manager import PluginHost
from advisor.stores.base import SourceMessage, StoreReader

FETCH_CHUNK = 1000
"""UIDs per STORE of the flags set again after APPEND."""


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
        self.progress: Progress = progress or NoProgress()
        # Optional: a display that shows the folder being read has a folder(name) method.
        self._show_folder: Callable[[str], None] | None = getattr(progress, "folder", None)
        self._shown_folder: tuple[str, ...] | None = None
        self.source_name = source_name or source_name_of(reader)
        self.control = Control(access.open)
        self._targets: dict[tuple[tuple[str, ...], bool], FolderTarget] = {}
        self.same: same_account.SameAccount | None = None
        """Set when the target is the account the store came from."""
        self._sample = ContentSample()
        self.share_labels = False
        """Labels instead of copies (the provider's rule, and the server offers it)."""
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
        path = self.options.not_migrated_path
        self.ledger = Ledger(journal, self.report, None if self.options.dry_run else path)

    # --- the run ------------------------------------------------------------
    def _run(self, started: float) -> MigrationReport:
        control = self.control.open()
        try:
            self._prepare(control)
            if self.options.dry_run:
                room = self._read_room(control)
                self._measuring = [] if room is not None else None
                for msg in self.reader.messages():
                    self._consider(msg, None)
                if self.same is not None:
                    self.same.deleted_by_uidl(self.server, self._trash)
                if self.daily_limit:
                    self.report.estimated_days = self.report.planned_bytes / self.daily_limit
                if room is not None:
                    when_full = self.options.when_full
                    self._fit = weigh(self.report, room, self._measuring or [], when_full)
                self._measuring = None
            elif self._plan_room(control):
                self._upload_all()
                if self.report.stopped_early is None and self.same is not None:
                    self.same.deleted_by_uidl(self.server, self._trash)
                self._apply_same_account()
                self.labels.apply(self._upload_directly, self._report_unknown)
                self._restore_flags()
                if self.options.verify:
                    try:
                        self._verify()
                    except (imapclient.exceptions.IMAPClientAbortError, OSError) as exc:
                        # The server dropped the idle control connection (Dovecot 2.3 can
                        # panic on its list index lock): verify over a new one.
                        self.report.notes.append(f"reconnected to verify ({exc})")
                        self.control.reopen()
                        self._verify()
            if not self.options.dry_run:
                self.journal.run_ended()  # every upload answered: nothing left on its way
        finally:
            self.ledger.close()
            self.control.close()
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
        notes = list(self.reader.notes)
        with suppress(Exception):  # closing must not hide the report
            self.reader.close()
        self.ledger.finish(started, notes)

    def _prepare(self, control: imapclient.IMAPClient) -> None:
        layout = read_layout(control)
        # Before anything is indexed: what a run that did not end cleanly had sent may
        # still be on its way into the server's folders.
        earlier, holder = self.journal.unfinished_run(), self.options.unfinished_run
        if (note := settle(control, layout.folders, earlier, holder)) is not None:
            self.report.notes.append(note)
        if not self.options.dry_run:
            self.journal.run_began()
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
        attributes = {f.name: f.flags for f in folders}
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
        dry, keywords = self.options.dry_run, self.keywords_allowed
        self.labels = LabelSharing(self.ledger, self.control, attributes, dry, keywords)
        self.server = ServerCopies(self.control, self.journal, self.folders.created)
        for path in paths:
            self._folder_report(path)
        if self.options.same_account is not False:
            self._same_account(control)

    def _same_account(self, control: imapclient.IMAPClient) -> None:
        """Is the target the account the store came from? Then its POP3 UIDLs, too."""
        inbox = INBOX_NAME if self.layout.has(INBOX_NAME) else None
        said, dry = self.options.same_account, self.options.dry_run
        same, notes = same_account.for_run(self.reader, self.access, control, inbox, said, dry)
        if same is None:
            return
        self.report.same_account = same.report
        self.same = self.server.same = same
        if same.inbox_selected:
            self.control.selected = INBOX_NAME
        self.report.notes.extend(notes)

    # --- per message ----------------------------------------------------------
    def _folder_report(self, path: tuple[str, ...]) -> FolderReport:
        report = self.ledger.folders.get(path)
        if report is None:
            target = self._target(path, deleted=False)
            report = FolderReport("/".join(path), target.name, target.reason)
            report.created = target.name in self.folders.created
            self.ledger.folders[path] = report
        return report

    def _target(self, path: tuple[str, ...], deleted: bool) -> FolderTarget:
        key = (path, deleted)
        target = self._targets.get(key)
        if target is None:
            target = self.mapper.target_for(path, deleted=deleted)
            if not self.options.dry_run and not target.exists and self.control.client is not None:
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
                self.same.deleted_locally(self.server, to_crlf(msg.data), self._trash)
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
        found = self.server.find(target.name, data, message_id)
        if found is None and self.same is not None and target.name != INBOX_NAME:
            found = self.server.find(INBOX_NAME, data, message_id)  # the original, to move
            if found is not None:
                if self._planning:
                    return  # the upload pass counts and plans it (with a fresh index)
                folder.found_on_server += 1
                self.same.original(
                    found, target.name, kept_flags(msg, self.keywords_allowed), key, digest
                )
                return
        if found is not None:
            if self._planning:
                return  # the upload pass counts and records it (with a fresh index)
            folder.found_on_server += 1
            if self.same is not None and target.name == INBOX_NAME:  # its flags, then
                self.same.original(
                    found, target.name, kept_flags(msg, self.keywords_allowed), key, digest
                )
            else:
                self.ledger.record(found_entry(key, target.name, found, digest))
            if self.share_labels:
                self.labels.remember(digest, target.name, "found")
            return
        job = None
        if self.share_labels and not self._planning:
            job = upload_job(msg, key, target.name, data, message_id, digest, self.rules)
            if self.labels.as_label(folder, job, msg.source_id, trust_earlier):
                return
            self.labels.remember(digest, target.name, "pending", key)
        if self._measuring is not None:
            when = msg.received or date_header_of(data)
            self._measuring.append((when.timestamp() if when else 0.0, len(data), key))
        if submit is None:
            folder.to_upload += 1
            self.report.planned_bytes += len(data)
            return
        if self._fit is not None and key not in self._fit:
            # A partial move: older than what fits; it waits in the source, not a failure.
            self.ledger.deferred(len(data))
            return
        self._sample.offer(key, folder.source, target.name, msg.source_id, subject_of(data), data)
        if self._day_left is not None:
            if len(data) > self._day_left:
                raise Stop(
                    f"the provider accepts about {mb(self.daily_limit or 0)} a day and today's "
                    "share is used up; run the same command again in 24 hours to continue "
                    "(nothing is uploaded twice)"
                )
            self._day_left -= len(data)
        submit(job or upload_job(msg, key, target.name, data, message_id, digest, self.rules))

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
        self.ledger.failure(folder.source, msg.source_id, message_id, why, data, received)

    # --- the same account: the server's own copies ----------------------------------
    def _trash(self) -> str | None:
        """Where the server's copies of messages deleted locally go (asked for), or None."""
        if not self.options.trash_deleted:
            return None
        return self._target(("Trash",), deleted=False).name or None

    def _apply_same_account(self) -> None:
        if self.same is None or not self.same.plan:
            return
        done, notes = self.same.apply(self.control.imap, self.layout.capabilities)
        self.control.selected = INBOX_NAME
        self.server.clear()  # UIDs moved: what was indexed is out of date
        for entry in done:
            self.ledger.record(entry)
        self.report.notes.extend(notes)

    # --- uploading ---------------------------------------------------------------
    def _upload_all(self) -> None:
        pool = UploadPool(
            self.access.open,
            self.control,
            self.options,
            self.connections,
            classify=self._classify,
            keywords_allowed=self.keywords_allowed,
            select_target=self.select_target,
            multiappend="MULTIAPPEND" in self.layout.capabilities,
            progress=self.progress,
            record=self._record,
            uploaded=lambda: self.report.uploaded,
        )
        pool.start()
        messages = iter(self.reader.messages())
        try:
            try:
                for msg in messages:
                    if pool.cancelled.is_set():
                        self._unconsidered = msg
                        break
                    self._consider(msg, pool.submit)
                pool.finish()
            except Stop as stop:
                self.report.stopped_early = str(stop)
            finally:
                pool.close()
        except BaseException:
            pool.cancelled.set()
            raise
        # Batches no worker took, lost answers: not uploaded for sure; settled below.
        unknown = pool.unanswered()
        self.connections = pool.connections
        everyone = pool.everyone
        quota_stop = next((w.stats.stop for w in everyone if w.stats.stop), None)
        if unknown:
            # After a stop, only look: what is not on the server waits for the next run.
            self._settle_unknown(unknown, resend=quota_stop is None)
        if (note := pool.lowered()) is not None:
            self.report.notes.append(note)
        self.report.connections = self.connections
        if isinstance(quota_stop, quota.StorageFull):
            self._defer_rest(messages)
        if quota_stop is not None:
            self.report.stopped_early = (
                quota_stop.message or "the server asked to stop for now (daily quota)"
            )
        elif pool.cancelled.is_set() and self.report.stopped_early is None:
            self.report.stopped_early = "the server asked to stop for now (quota or throttling)"

    def _record(self, result: UploadResult, unknown: list[UploadJob]) -> None:
        job = result.job
        folder = self._report_for_target(job.folder)
        self.labels.answered(job.source_key, result)
        if result.ok:
            self.ledger.answered(result, folder)
            if result.uid is not None:
                for flag in job.flags_after:
                    self._store_after.setdefault((job.folder, flag), []).append(result.uid)
        elif result.unknown:
            unknown.append(job)
        else:
            self.ledger.answered(result, folder)

    def _report_for_target(self, target: str) -> FolderReport | None:
        for (path, _deleted), t in self._targets.items():
            if t.name == target:
                return self.ledger.folders.get(path)
        return None

    def _settle_unknown(self, unknown: list[UploadJob], resend: bool = True) -> None:
        """Messages whose answer was lost: look on the server, send only what is missing
        (or, when ``resend`` is False, leave it for the next run)."""
        self.journal.flush()
        self.server.clear()
        missing: list[UploadJob] = []
        for job in unknown:
            if self.server.find(job.folder, job.data, job.message_id) is not None:
                self.labels.settled(job.source_key, found=True)
                self.ledger.found(job, self._report_for_target(job.folder))
            elif resend:
                missing.append(job)
            else:
                self.ledger.deferred(job.size)
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
        """Upload over one new connection (the control one when the server takes no
        second), one message at a time, in this thread; see :func:`upload_directly`."""
        control = self.control.imap if self.connections == 0 else None
        budget = self.options.budget_bytes
        connect, classify, keywords = self.access.open, self._classify, self.keywords_allowed
        return upload_directly(jobs, connect, control, budget, classify, keywords, self._record)

    def _report_unknown(self, job: UploadJob, error: str | None) -> None:
        self.labels.settled(job.source_key, found=False)
        self.ledger.not_uploaded(job, error, self._report_for_target(job.folder))

    def _classify(self, response: str) -> Any:
        # The provider's reading first (Gmail's [OVERQUOTA] is its daily allowance),
        # then the codes every server uses for a full account.
        advice = self.plugins.classify_response(self.access.provider, response)
        return advice if advice is not None else quota.storage_full(response)

    # --- room on the server --------------------------------------------------------
    def _read_room(self, control: imapclient.IMAPClient) -> quota.Room | None:
        limits = self.plugins.limits(self.access.provider)
        return quota.read_room(control, self.layout.capabilities, limits, self.access.provider)

    def _plan_room(self, control: imapclient.IMAPClient) -> bool:
        """Before any upload: does the plan fit? False when nothing may be uploaded."""
        room = self._read_room(control)
        if room is None or not needs_measuring(self.report, room, self.reader):
            return True
        # Measure what this run would really upload (journal and server taken into account).
        progress, self.progress = self.progress, NoProgress()
        show, self._show_folder = self._show_folder, None
        self._measuring, self._planning = [], True
        try:
            for msg in self.reader.messages():
                self._consider(msg, None)
            self._fit = weigh(self.report, room, self._measuring, self.options.when_full)
        finally:
            self._measuring, self._planning = None, False
            self.server.clear()  # looking consumed its matches: index afresh for real
            self.progress, self._show_folder = progress, show
            start_over(self.report, self.ledger.folders.values())
        return may_upload(self.report, self._fit is not None)

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
            self.ledger.deferred(len(to_crlf(msg.data)))

    def _restore_flags(self) -> None:
        """Set flags the provider drops on APPEND again (the provider's upload rules)."""
        control = self.control.imap
        for (folder, flag), uids in sorted(self._store_after.items()):
            control.select_folder(folder)
            self.control.selected = folder
            for start in range(0, len(uids), FETCH_CHUNK):
                control.add_flags(uids[start : start + FETCH_CHUNK], [flag], silent=True)
        self._store_after.clear()

    # --- verification -------------------------------------------------------------
    def _verify(self) -> None:
        targets = {t.name for t in self._targets.values()}
        verify_run(self.control, self.journal, targets, self._sample, self.report)
