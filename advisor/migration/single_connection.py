"""Uploading over the migration's own control connection, for a server that accepts no
second connection for the account (Dovecot's ``mail_max_userip_connections = 1``, a mail
program still connected): one message at a time, in the caller's thread, the connection
left logged in for the rest of the run."""

from __future__ import annotations

import queue
import re
import threading

import imapclient

from advisor.migration.upload import (
    Batch,
    ByteBudget,
    Classifier,
    UploadResult,
    UploadWorker,
    WorkerStats,
)

__all__ = ["CONTROL_NOTE", "control_note", "upload_over"]

CONTROL_NOTE = (
    "the server accepts only one connection to this account at once: uploaded over the "
    "control connection itself, one message at a time (slower, nothing is lost)"
)

_SAID = re.compile(r"it said '(.*)'\)")


def control_note(error: str | None) -> str:
    """:data:`CONTROL_NOTE` with the server's own words, for the report."""
    match = _SAID.search(error or "")
    words = match.group(1) if match else error
    return f"{CONTROL_NOTE}; the server said: {words}" if words else CONTROL_NOTE


def upload_over(
    client: imapclient.IMAPClient,
    batches: queue.Queue[Batch | None],
    results: queue.Queue[UploadResult],
    budget: ByteBudget,
    classify: Classifier,
    cancelled: threading.Event,
    keywords_allowed: bool,
) -> WorkerStats:
    """Send every batch queued so far over ``client``; results go to ``results`` as a
    worker's do. Returns when the queue is empty (or the connection failed)."""
    batches.put(None)  # the end of what is queued now; a later call queues more
    worker = UploadWorker(
        lambda: client,
        batches,
        results,
        budget,
        1,
        classify,
        cancelled,
        keywords_allowed,
        keep_open=True,
    )
    worker.run()
    return worker.stats
