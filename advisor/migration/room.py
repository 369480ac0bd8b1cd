"""Room on the server before the upload: does the plan fit, and what to do when not.

The migration reads the room the server (or provider) reports (:mod:`~advisor.migration.quota`),
and when the store could be larger than that, measures what this run would really upload in
a planning pass (journal and server taken into account). Then the plan goes on, goes on
with the newest messages that fit (``--when-full newest-first``), or stops before the first
upload. These are the decisions and what they write into the report.
"""

from __future__ import annotations

from collections.abc import Iterable

from advisor.migration import quota
from advisor.migration.plan import store_bytes
from advisor.migration.report import FolderReport, MigrationReport
from advisor.stores.base import StoreReader

Candidates = list[tuple[float, int, str]]
"""(received, size, key) of each message a run would upload."""


def needs_measuring(report: MigrationReport, room: quota.Room | None, reader: StoreReader) -> bool:
    """Whether a planning pass must measure the upload; else the plan goes on as it is."""
    if room is None or reader.kind == "pop3":
        return False  # unknown room (or a live source, not read twice): go on
    free = room.free_bytes
    bound = store_bytes(reader)
    if free is not None and bound is not None and 2 * bound <= free:
        # Even with every line ending doubled it fits: not worth a pass to measure.
        report.room = quota.weigh([], room, at_most=2 * bound)
        return False
    return True


def weigh(
    report: MigrationReport, room: quota.Room, candidates: Candidates, when_full: quota.WhenFull
) -> set[str] | None:
    """The plan against the room (into the report); the keys that fit, for a partial move."""
    check = report.room = quota.weigh(candidates, room)
    newest_first = when_full is quota.WhenFull.NEWEST_FIRST
    if check.blocks and newest_first and room.free_bytes is not None:
        fit, _ = quota.newest_that_fit(candidates, room.free_bytes)
        return fit
    return None


def start_over(report: MigrationReport, folders: Iterable[FolderReport]) -> None:
    """After the planning pass: the upload pass counts again."""
    for f in folders:
        f.messages = f.bytes = f.to_upload = f.partial = 0
        f.labelled = f.to_label = f.skipped_deleted = 0
        f.already_done = f.failed = 0
    report.planned_bytes = 0


def may_upload(report: MigrationReport, partial: bool) -> bool:
    """After weighing: False when nothing may be uploaded (the report says why).

    ``partial``: the newest messages that fit are moved, the rest waits.
    """
    check = report.room
    assert check is not None
    if not check.blocks:
        if check.fits is False:
            report.notes.append(f"{check.summary}: the upload may stop when it is full")
        return True
    if partial:
        report.account_full = True  # what does not fit waits: not a clean finish
        report.notes.append(
            f"{check.summary}: moving the newest {check.fitting_messages:,} messages "
            f"({quota.fmt_bytes(check.fitting_bytes)}) that fit; the rest waits"
        )
        return True
    report.account_full = True
    report.deferred = check.planned_messages
    report.deferred_bytes = check.planned_bytes
    report.stopped_early = f"nothing was uploaded: {check.summary}. To go on: {check.advice}"
    return False
