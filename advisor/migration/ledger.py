"""The only owner of a migration's outcomes: journal entries, failures, the report's counts.

Every message a reader yields ends here as uploaded, found, labelled, deferred or failed:
the journal entry is built in one place (:func:`entry`), and every message that was not
migrated goes through :meth:`Ledger.failure`, which reports it and saves its bytes into
the not-migrated mbox (:mod:`advisor.migration.rejects`) at once, so failed messages are
never held in memory.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from advisor.migration.journal import Entry, MigrationJournal, Status
from advisor.migration.rejects import NotMigratedMbox, subject_of
from advisor.migration.report import Failure, FolderReport, MigrationReport
from advisor.migration.server_index import ServerMessage
from advisor.migration.upload import UploadJob, UploadResult

DETAIL_MAX = 500
"""Characters of a journal entry's detail."""


def entry(
    key: str,
    folder: str,
    message_id: str | None,
    size: int,
    sha256: str,
    status: str,
    uidvalidity: int | None = None,
    uid: int | None = None,
    detail: str = "",
) -> Entry:
    """The journal's record of one message's outcome (the one place it is built)."""
    return Entry(
        key, folder, message_id, size, sha256, status, uidvalidity, uid, detail[:DETAIL_MAX]
    )


def found_entry(key: str, folder: str, found: ServerMessage, digest: str) -> Entry:
    """The journal's record of a message found on the server: as the server holds it."""
    return entry(key, folder, found.message_id, found.size, found.exact or digest, Status.FOUND)


def job_entry(
    job: UploadJob,
    status: str,
    uidvalidity: int | None = None,
    uid: int | None = None,
    detail: str = "",
) -> Entry:
    """The record of an uploaded (or refused, or found) message."""
    key, folder, size = job.source_key, job.folder, job.size
    return entry(key, folder, job.message_id, size, job.sha256, status, uidvalidity, uid, detail)


class Ledger:
    """The run's journal and report, and the not-migrated mbox (none on a dry run)."""

    def __init__(
        self, journal: MigrationJournal, report: MigrationReport, rejects: Path | None
    ) -> None:
        self.journal = journal
        self.report = report
        self._rejects = NotMigratedMbox(rejects) if rejects is not None else None
        self._rejects_broken = False
        self.folders: dict[tuple[str, ...], FolderReport] = {}
        """Per local folder, in the order met."""
        self._finished = False

    def record(self, done: Entry) -> None:
        self.journal.record(done)

    def failure(
        self,
        folder: str,
        source_id: str,
        message_id: str | None,
        why: str,
        data: bytes | None,
        date: datetime | None,
    ) -> Failure:
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
        return failure

    # --- the answers to uploads --------------------------------------------------------
    def answered(self, result: UploadResult, folder: FolderReport | None) -> None:
        """Record the server's answer to an upload (not one whose answer was lost)."""
        job = result.job
        if result.ok:
            self.record(
                job_entry(job, Status.UPLOADED, uidvalidity=result.uidvalidity, uid=result.uid)
            )
            self.report.uploaded += 1
            self.report.uploaded_bytes += job.size
            if folder is not None:
                folder.uploaded += 1
        elif result.stop:
            # Not refused: the allowance is spent or the account full; the next run sends it.
            self.deferred(job.size)
        else:
            reason = f"the server refused it: {result.response}"
            self.record(job_entry(job, Status.FAILED, detail=reason))
            if folder is not None:
                folder.failed += 1
            source_id = job.source_key.rsplit(":", 1)[-1]
            self.failure(
                folder.source if folder else job.folder,
                source_id,
                job.message_id,
                reason,
                job.data,
                job.internal_date,
            )

    def found(self, job: UploadJob, folder: FolderReport | None) -> None:
        """A message whose answer was lost is on the server after all."""
        self.record(job_entry(job, Status.FOUND))
        if folder is not None:
            folder.found_on_server += 1

    def not_uploaded(self, job: UploadJob, error: str | None, folder: FolderReport | None) -> None:
        """A message whose answer was lost, and that could not be sent again."""
        if folder is not None:
            folder.failed += 1
        self.failure(
            job.folder,
            job.source_key.rsplit(":", 1)[-1],
            job.message_id,
            f"not uploaded: {error or 'connection lost'}",
            job.data,
            job.internal_date,
        )

    def deferred(self, size: int) -> None:
        """Left in the source for a later run (quota, a partial move): not a failure."""
        self.report.deferred += 1
        self.report.deferred_bytes += size

    # --- the end -----------------------------------------------------------------------
    def close(self) -> None:
        """Flush the journal, close the not-migrated mbox (named in the report if used)."""
        self.journal.flush()
        if self._rejects is not None:
            self._rejects.close()
            if self._rejects.count:
                self.report.not_migrated_mbox = str(self._rejects.path)

    def finish(self, started: float, notes: list[str]) -> None:
        """The report's totals (once): ``notes`` are the reader's."""
        if self._finished:
            return
        self._finished = True
        r = self.report
        # What the reader left out or could not trust (files that are not mail...).
        r.notes.extend(notes)
        # A store read twice (the room planning pass) says the same things twice.
        r.notes = list(dict.fromkeys(r.notes))
        r.elapsed_seconds = time.monotonic() - started
        r.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
        r.messages_per_second = r.uploaded / r.elapsed_seconds if r.elapsed_seconds else 0.0
        r.folders = list(self.folders.values())
        for f in r.folders:
            r.already_done += f.already_done
            r.found_on_server += f.found_on_server
            r.labelled += f.labelled
            r.skipped_deleted += f.skipped_deleted
        r.failed = len(r.failures)
