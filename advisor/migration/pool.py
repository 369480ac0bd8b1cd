"""The upload connections: start them, tend them, drain their answers, lower their number.

:class:`UploadPool` runs the :class:`~advisor.migration.upload.UploadWorker` threads of one
run: it fills batches, replaces a dropped connection after the wait the server asked
for (else a growing backoff), uses one fewer each time the server turns a new one away
("too many connections") and, when it accepts no second one at all, uploads over the
control connection (:mod:`advisor.migration.single_connection`). Every answer goes to
the run's ``record``; no job handed to it is ever forgotten (:meth:`UploadPool.unanswered`).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import imapclient

from advisor.connection.limits import too_many_connections
from advisor.migration.control import Control
from advisor.migration.options import MigrationOptions
from advisor.migration.report import Progress
from advisor.migration.single_connection import control_note, upload_over
from advisor.migration.upload import (
    MAX_WAIT,
    Batch,
    ByteBudget,
    UploadJob,
    UploadResult,
    UploadWorker,
)

BUDGET_LARGEST_MULTIPLE = 4
"""The in-flight budget grows to this many times the largest message seen."""
MAX_RESTARTS = 5
BATCH_BYTES = 4 * 1024 * 1024

Record = Callable[[UploadResult, list[UploadJob]], None]
"""Takes one answer; appends the job to the list when its answer was lost."""


class Stop(Exception):
    """Uploading stops here (the reason is the message); the run reports it."""


class UploadPool:
    """The upload connections of one run, and the batches on their way."""

    def __init__(
        self,
        connect: Callable[[], imapclient.IMAPClient],
        control: Control,
        options: MigrationOptions,
        connections: int,
        *,
        classify: Callable[[str], Any],
        keywords_allowed: bool,
        select_target: bool,
        multiappend: bool,
        progress: Progress,
        record: Record,
        uploaded: Callable[[], int],
    ) -> None:
        self._connect = connect
        self._control = control
        self._options = options
        self.connections = connections
        self.planned = connections
        self._classify = classify
        self._keywords_allowed = keywords_allowed
        self._select_target = select_target
        self._multi = multiappend
        self._progress = progress
        self._record = record
        self._uploaded = uploaded
        self.batches: queue.Queue[Batch | None] = queue.Queue()
        self.results: queue.Queue[UploadResult] = queue.Queue()
        self.budget = ByteBudget(options.budget_bytes)
        self.cancelled = threading.Event()
        self.workers: list[UploadWorker] = []
        """The connections in use (alive, or ended and not yet looked at)."""
        self.ended: list[UploadWorker] = []
        self.unknown: list[UploadJob] = []
        """Jobs whose answer was lost."""
        self._pending: list[Batch] = []  # the batch being filled, if any
        self._outstanding: dict[str, UploadJob] = {}
        """Jobs handed to the uploaders and not yet answered: none may be forgotten."""
        self._restarts = 0
        self._next_start = 0.0
        self._uploaded_at_restart = 0

    def start(self) -> None:
        """(Re)connect: a dropped connection costs a reconnect, not the run."""
        alive = [w for w in self.workers if w.is_alive()]
        for _ in range(self.connections - len(alive)):
            worker = UploadWorker(
                self._connect,
                self.batches,
                self.results,
                self.budget,
                self._options.window,
                self._classify,
                self.cancelled,
                self._keywords_allowed,
                self._select_target,
            )
            worker.start()
            alive.append(worker)
        self.workers[:] = alive

    def tend(self, restart: bool = True) -> None:
        """Replace ended connections after the wait the server asked for (else a
        growing backoff); one fewer each time the server turns a new one away."""
        now = time.monotonic()
        for worker in [w for w in self.workers if not w.is_alive()]:
            self.workers.remove(worker)
            self.ended.append(worker)
            if worker.stats.refused and self.connections > 1:
                # "Too many simultaneous connections": never more than it accepted.
                self.connections -= 1
                self._progress.note(
                    f"the server turned a connection away ({worker.stats.error}); "
                    f"using {self.connections}"
                )
            elif worker.stats.refused and too_many_connections(worker.stats.error or ""):
                # Not even one more: the control connection carries the upload.
                self.connections = 0
                self._progress.note(control_note(worker.stats.error))
            wait = worker.stats.retry_after
            if wait is None:
                wait = min(2.0**self._restarts, 30.0)
            self._next_start = max(self._next_start, now + min(wait, MAX_WAIT))
        if not restart or len(self.workers) >= self.connections or self.cancelled.is_set():
            return
        if self._uploaded() > self._uploaded_at_restart:
            self._restarts = 0  # the last reconnect worked for a while
        if self.workers and now < self._next_start:
            return  # the other connections carry on meanwhile
        if not self.workers:
            if self._restarts >= MAX_RESTARTS:
                raise Stop(worker_error(self.ended[::-1]) or "the connections kept failing")
            self._progress.note(f"connection lost ({worker_error(self.ended[::-1])}); reconnecting")
            time.sleep(max(0.0, self._next_start - now))
        self._restarts += 1
        self._uploaded_at_restart = self._uploaded()
        self.start()

    def flush(self) -> None:
        if self._pending:
            self.batches.put(self._pending.pop())

    def submit(self, job: UploadJob) -> None:
        budget = self.budget
        budget.limit = max(budget.limit, BUDGET_LARGEST_MULTIPLE * job.size)
        current = self._pending[0] if self._pending else None
        if current is not None and (
            not self._multi
            or current.folder != job.folder
            or len(current.jobs) >= self._options.batch_messages
            or current.size + job.size > BATCH_BYTES
            or budget.used + job.size > budget.limit  # never wait while holding a batch
        ):
            self.flush()
        self.tend()
        if self.connections == 0 and budget.used + job.size > budget.limit:
            self.flush()
            self.over_control()
        if not budget.acquire(job.size, self.cancelled):
            raise Stop("the upload was stopped")
        self._outstanding[job.source_key] = job
        if self._pending:
            self._pending[0].jobs.append(job)
        else:
            self._pending.append(Batch(job.folder, [job]))
        self.drain()

    def over_control(self) -> None:
        """Upload what is queued over the control connection (no second one accepted)."""
        upload_over(
            self._control.imap,
            self.batches,
            self.results,
            self.budget,
            self._classify,
            self.cancelled,
            self._keywords_allowed,
        )
        self._control.selected = None  # its untagged answers were the appender's to read
        self.drain()

    def drain(self, timeout: float | None = None) -> None:
        while True:
            try:
                result = self.results.get(timeout=timeout) if timeout else self.results.get_nowait()
            except queue.Empty:
                return
            timeout = None
            self._outstanding.pop(result.job.source_key, None)
            self._record(result, self.unknown)

    def finish(self) -> None:
        """No more messages: the last batch goes; with no connection, over the control one."""
        self.flush()
        self.tend(restart=False)
        if self.connections == 0:
            self.over_control()

    def close(self) -> None:
        """Let the connections end and take every answer."""
        for _ in self.workers:
            self.batches.put(None)
        while any(w.is_alive() for w in self.workers):
            self.drain(timeout=0.1)
        self.tend(restart=False)
        self.drain()

    def unanswered(self) -> list[UploadJob]:
        """Every job without an answer: lost answers, batches no worker took (every
        connection failed), and, in defence in depth, any job nobody answered for."""
        unknown = self.unknown
        leftovers = [*self._pending]
        while True:
            try:
                leftover = self.batches.get_nowait()
            except queue.Empty:
                break
            if leftover is not None:
                leftovers.append(leftover)
        for batch in leftovers:
            unknown.extend(batch.jobs)
        known = {job.source_key for job in unknown}
        unknown.extend(j for k, j in self._outstanding.items() if k not in known)
        self._outstanding.clear()
        return unknown

    def lowered(self) -> str | None:
        """What the report says when the server took fewer connections than planned."""
        said = next((w.stats.error for w in self.everyone if w.stats.refused), None)
        if self.connections == 0:
            return control_note(said)
        if self.connections < self.planned:
            return (
                f"the server accepted only {self.connections} upload connection(s) at once "
                f"({said}); planned were {self.planned}"
            )
        return None

    @property
    def everyone(self) -> list[UploadWorker]:
        return [*self.ended, *self.workers]


def worker_error(workers: list[UploadWorker]) -> str | None:
    errors = [w.stats.error for w in workers if w.stats.error]
    return errors[0] if errors else None


def upload_directly(
    jobs: list[UploadJob],
    connect: Callable[[], imapclient.IMAPClient],
    control: imapclient.IMAPClient | None,
    budget_bytes: int,
    classify: Callable[[str], Any],
    keywords_allowed: bool,
    record: Record,
) -> tuple[set[str], list[UploadJob], str | None]:
    """Upload over one new connection (``control`` if given), one message at a time, in
    this thread.

    Results go to ``record``; returns the source keys stored, the jobs whose answer was
    lost, and the connection's error if any.
    """
    batches: queue.Queue[Batch | None] = queue.Queue()
    results: queue.Queue[UploadResult] = queue.Queue()
    budget = ByteBudget(budget_bytes)
    for job in jobs:
        budget.acquire(job.size)  # each is released when its answer comes
        batches.put(Batch(job.folder, [job]))
    batches.put(None)
    worker = UploadWorker(
        connect if control is None else lambda: control,
        batches,
        results,
        budget,
        1,
        classify,
        threading.Event(),
        keywords_allowed,
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
        record(result, still_unknown)
    # A connection refused before it took a job answers for none: never drop them.
    still_unknown += [j for j in jobs if j.source_key not in answered]
    return ok, still_unknown, worker.stats.error
