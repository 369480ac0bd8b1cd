"""``mailadvisor migrate``: move the local mail into the IMAP account of a profile."""

from __future__ import annotations

import json
import os
import time
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from advisor.cli.render import error, print_json, stderr, stdout, to_jsonable
from advisor.connection.account import AccountAccess, resolve_account
from advisor.errors import UsageError
from advisor.exitcodes import ExitStatus
from advisor.migration import Migration, MigrationOptions, MigrationReport
from advisor.migration.journal import MigrationJournal
from advisor.migration.partial import PartialSources
from advisor.migration.quota import WhenFull
from advisor.migration.run_lock import AccountBusyError, Holder, account_lock
from advisor.migration.same_account import summary as same_account_summary
from advisor.platform_compat import write_private
from advisor.plugins.manager import PluginHost, load_plugins
from advisor.profile import Profile, load_profile
from advisor.secrets import resolve_secret
from advisor.stores.base import ReaderOptions, StoreReader
from advisor.stores.source import reader_for

_MAILDIR_PARTS = ("cur", "new", "Messages")


class _RichProgress:
    """Messages, MB, rate, ETA and the folder being read, on stderr (only on a terminal).

    The ETA is in bytes against ``total_bytes``, the size of the store's files (an
    estimate: it includes mbox separators and deleted messages); without it there is none.
    """

    def __init__(self, progress: Progress, total_bytes: int | None = None) -> None:
        self._progress = progress
        self._task = progress.add_task("messages", total=total_bytes)
        self._total = total_bytes
        self._count = 0
        self._done = 0
        self._folder = ""
        self._started = time.monotonic()

    def advance(self, messages: int, size: int) -> None:
        self._count += messages
        self._done += size
        if self._total is not None and self._done > self._total:
            self._total = self._done  # the estimate was low: never show more than 100%
            self._progress.update(self._task, total=self._total)
        self._progress.update(self._task, advance=size, description=self._description())

    def folder(self, name: str) -> None:
        self._folder = name
        self._progress.update(self._task, description=self._description())

    def _description(self) -> str:
        elapsed = time.monotonic() - self._started
        rate = f" ({self._count / elapsed:,.0f}/s)" if elapsed >= 1 else ""
        folder = f" {escape(self._folder[-40:])}" if self._folder else ""
        return f"{self._count:,} messages{rate}{folder}"

    def note(self, text: str) -> None:
        self._progress.console.print(escape(text))


def estimate_source_bytes(reader: StoreReader) -> int | None:
    """The size of the store's mail files, from ``stat`` alone (no message is read).

    None when a folder has no local file (POP3) or cannot be looked at.
    """
    locations = set()
    for folder in reader.folders():
        if folder.location is None:
            return None
        locations.add(folder.location)
    total = 0
    try:
        for location in locations:
            if location.is_file():
                total += location.stat().st_size
                continue
            for part in (location, *(location / p for p in _MAILDIR_PARTS)):
                if part.is_dir():
                    with os.scandir(part) as entries:
                        total += sum(
                            e.stat().st_size for e in entries if e.is_file(follow_symlinks=False)
                        )
    except OSError:
        return None
    return total or None


def write_report(report: MigrationReport, path: Path) -> None:
    """The JSON report (as ``--json`` prints it) into ``path``, private (0600)."""
    write_private(path, json.dumps(to_jsonable(report), indent=2, ensure_ascii=False) + "\n")


def migrate(
    profile: Annotated[
        Path, typer.Option("--profile", "-p", help="The profile file to run.", show_default=False)
    ],
    dry_run: Annotated[
        bool | None,
        typer.Option(
            "--dry-run/--no-dry-run",
            help="Print the complete plan (folder to folder, counts, sizes, what is skipped and "
            "why) and change nothing on the server. Default: the profile's dry_run.",
        ),
    ] = None,
    connections: Annotated[
        int | None,
        typer.Option(
            help="Parallel upload connections (default 4, capped by the provider's limit).",
            min=1,
            max=32,
        ),
    ] = None,
    batch_size: Annotated[
        int,
        typer.Option(
            help="Messages per APPEND command where the server takes several at once "
            "(MULTIAPPEND); smaller batches lose less work on a flaky link.",
            min=1,
            max=1000,
        ),
    ] = 200,
    journal: Annotated[
        Path | None,
        typer.Option(help="Journal file (default: one per account in the user's state directory)."),
    ] = None,
    ignore_lock: Annotated[
        bool,
        typer.Option(
            "--ignore-lock", help="Read a Thunderbird profile even while Thunderbird runs."
        ),
    ] = False,
    when_full: Annotated[
        WhenFull | None,
        typer.Option(
            "--when-full",
            help="When the account has no room for all the mail: stop before uploading "
            "anything (stop), or upload the newest messages that fit and leave the rest for "
            "a later run (newest-first). Default: the profile's when_full, else stop.",
            case_sensitive=False,
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    same_account: Annotated[
        bool | None,
        typer.Option(
            "--same-account/--not-same-account",
            help="The account is the one the mail program downloaded this mail from (POP3 "
            "with leave-on-server): its copies in INBOX are matched, flagged and moved, not "
            "uploaded again. Default: found out from the store.",
        ),
    ] = None,
    trash_deleted: Annotated[
        bool,
        typer.Option(
            "--trash-deleted",
            help="Same account: move the server's copies of messages you deleted locally "
            "from INBOX to Trash (default: only report them).",
        ),
    ] = False,
    include_partial: Annotated[
        bool,
        typer.Option(
            "--include-partial",
            help="Upload messages the mail program downloaded only partly (headers only) "
            "as they are; by default they are left out and listed in the report.",
        ),
    ] = False,
    partial_from_pop3: Annotated[
        bool,
        typer.Option(
            "--partial-from-pop3",
            help="Take the full copy of each partly downloaded message from the POP3 "
            "account that left it on its server (Thunderbird profiles), by its UIDL.",
        ),
    ] = False,
    pop3_password_env: Annotated[
        str | None,
        typer.Option(
            "--pop3-password-env",
            help="With --partial-from-pop3: the environment variable holding the POP3 "
            "password (default: the profile's own account password).",
            show_default=False,
        ),
    ] = None,
    report_file: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="Also write the report as JSON into this file (0600); the messages that "
            "were not migrated go into an mbox beside it (FILE's name + .not-migrated.mbox).",
            dir_okay=False,
        ),
    ] = None,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="If another mailadvisor run is moving mail into the same account (same "
            "server, port and user, from any profile), wait until it has finished instead "
            "of stopping at once with exit status 5.",
        ),
    ] = False,
    wait_timeout: Annotated[
        float | None,
        typer.Option(
            "--wait-timeout",
            metavar="SECONDS",
            help="Wait at most this long for the other run (implies --wait); then exit status 5.",
            min=0,
        ),
    ] = None,
) -> int:
    """Move the mail of the profile's local store into its IMAP account.

    Every message goes into the right folder exactly once, with its flags and date. A run
    can be interrupted and started again: what is done is recorded in a journal, and the
    server is checked for messages an interrupted run may have left. The source is only
    read. Exit status 1 when some messages could not be migrated: the report lists them
    (folder, subject, size, the server's words) and saves a copy of each into a
    "not migrated" mbox any mail program opens; they stay in the source and are retried
    on the next run. Exit status 70 when a bug in mailadvisor stopped the run: the report
    of what was done is still written.

    Before uploading, the plan is compared with the room the server reports (QUOTA):
    when it does not fit, nothing is uploaded (exit status 6) unless --when-full
    newest-first is given. An account that fills up during the run stops the upload at
    once; what is left waits in the source (exit status 6), and a run after space was
    freed goes on where this one stopped.

    Only one run at a time moves mail into an account: a second one (even from another
    profile) stops with exit status 5 and names the first (pid, host, start time), or
    waits for it with --wait.
    """
    prof = load_profile(profile)
    plugins = load_plugins()
    for w in plugins.warnings:
        stderr.print(f"[yellow]warning:[/] {escape(w.message)}", soft_wrap=True)
    access = resolve_account(prof, plugins)
    reader = reader_for(prof, ReaderOptions(ignore_lock=ignore_lock))
    partial_sources = PartialSources.for_reader(
        reader,
        _pop3_password(prof, pop3_password_env) if partial_from_pop3 else None,
        prof.server.ca_file if prof.server is not None else None,
    )
    options = MigrationOptions.from_profile(
        prof,
        access,
        dry_run=dry_run,
        journal=journal,
        report_file=report_file,
        when_full=when_full,
        connections=connections,
        batch_messages=batch_size,
        same_account=same_account,
        trash_deleted=trash_deleted,
        include_partial=include_partial,
        partial_sources=partial_sources,
    )
    journal_path = options.journal_path
    assert journal_path is not None  # from_profile fills it in
    show_progress = stderr.is_terminal and not json_output
    waited = wait or wait_timeout is not None

    def waiting(holder: Holder | None) -> None:
        who = f" ({holder.describe()})" if holder is not None and holder.describe() else ""
        stderr.print(
            f"Waiting: another mailadvisor run is moving mail into {escape(access.email)}"
            f"{escape(who)}; this run starts when it has finished.",
            soft_wrap=True,
        )

    try:
        with account_lock(access, wait=wait_timeout if waited else 0.0, on_wait=waiting) as lock:
            options.unfinished_run = lock.unfinished_run()
            report = _run(
                prof,
                reader,
                partial_sources,
                access,
                plugins,
                options,
                journal_path,
                show_progress,
            )
    except AccountBusyError as exc:
        hint = "" if waited else ", or with --wait to wait for it"
        error(f"{exc}. Run again when it has finished{hint}.")
        return exc.exit_status
    if report_file is not None:
        write_report(report, report_file)
    if json_output:
        print_json(replace(report))
    else:
        render_report(report)
    if report.internal_error is not None:
        where = f" (the report is in {report_file})" if report_file is not None else ""
        error(
            f"mailadvisor stopped because of an internal error: {report.internal_error}{where}. "
            "This is a bug; please report it. Running the same command again is safe: "
            "nothing is uploaded twice."
        )
        return ExitStatus.INTERNAL_ERROR
    if report.account_full:
        return ExitStatus.ACCOUNT_FULL
    return ExitStatus.OK if report.complete else ExitStatus.INCOMPLETE


def _pop3_password(prof: Profile, env: str | None) -> str:
    """The POP3 password for --partial-from-pop3: from ``env``, else the account's own."""
    if env is None:
        return resolve_secret(prof.auth, prof.account.email)
    value = os.environ.get(env)
    if not value:
        raise UsageError(f"--pop3-password-env: the environment variable {env} is not set")
    return value


def _run(
    prof: Profile,
    reader: StoreReader,
    partial_sources: PartialSources,
    access: AccountAccess,
    plugins: PluginHost,
    options: MigrationOptions,
    journal_path: Path,
    show_progress: bool,
) -> MigrationReport:
    """The migration itself, while the account's lock is held."""
    with MigrationJournal(journal_path) as jnl, closing(partial_sources):
        migration: Migration | None = None
        try:
            if not show_progress:
                migration = Migration(reader, access, plugins, jnl, options)
                return migration.run()
            columns = (
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
            )
            total = estimate_source_bytes(reader)
            with Progress(*columns, console=stderr, transient=True) as bar:
                display = _RichProgress(bar, total)
                migration = Migration(reader, access, plugins, jnl, options, display)
                return migration.run()
        except KeyboardInterrupt:
            # The journal is flushed by the run itself; say what is safe and what to do.
            done = migration.report.uploaded if migration is not None else 0
            stderr.print(
                f"Stopped: {done:,} messages were uploaded and recorded in the journal "
                f"({jnl.path}); the source was only read. Run the same command again to "
                "continue where it stopped: nothing is uploaded twice.",
                soft_wrap=True,
                markup=False,
            )
            raise


NOTES_SHOWN = 8
"""Notes printed under the plan or report; the rest are counted (the plan stays visible)."""


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _render_partial(report: MigrationReport) -> None:
    """Each headers-only stub: left out or replaced by its full copy, and where it is."""
    left = [p for p in report.partial_messages if not p.recovered]
    taken = len(report.partial_messages) - len(left)
    if taken:
        stdout.print(
            f"{taken:,} messages downloaded only partly were taken in full from their POP3 "
            "account instead."
        )
    for p in left:
        where = f" (UIDL {p.uidl} on {p.account})" if p.uidl and p.account else ""
        why = f": {p.note}" if p.note else ""
        stdout.print(
            f"[yellow]partial, not migrated[/] {escape(p.folder)} {escape(p.source_id)} "
            f"{escape(repr(p.subject))}{escape(where)}{escape(why)}",
            soft_wrap=True,
        )
    if left:
        on_server = sorted({p.account for p in left if p.account and p.on_server})
        hint = (
            f" The account {', '.join(on_server)} leaves mail on its server: run again with "
            "--partial-from-pop3 to take the full messages from there."
            if on_server
            else " The full messages may still be on the POP3 server they came from."
        )
        stdout.print(
            f"{len(left):,} messages were downloaded only partly (headers only): their "
            "bodies are not on this disk, so they were left out (--include-partial uploads "
            "them as they are)." + hint,
            soft_wrap=True,
        )


def render_report(report: MigrationReport) -> None:
    """The plan (dry run) or the outcome, as a table and a few plain sentences."""
    title = "Plan (dry run: nothing was changed)" if report.dry_run else "Migration report"
    table = Table(title=f"{title}: {report.account} on {report.server}")
    table.add_column("local folder", overflow="fold")
    table.add_column("server folder", overflow="fold")
    for col in ("messages", "size", "to upload" if report.dry_run else "uploaded", "left out"):
        table.add_column(col, justify="right")
    for f in report.folders:
        left_out = [
            f"{n:,} {why}"
            for n, why in (
                (f.already_done, "done before"),
                (f.found_on_server, "on server"),
                (f.skipped_deleted, "deleted"),
                (f.failed, "failed"),
            )
            if n
        ]
        labels = f.to_label if report.dry_run else f.labelled
        table.add_row(
            escape(f.source),
            escape(f.target) + (" (new)" if f.created else ""),
            f"{f.messages:,}",
            _size(f.bytes),
            f"{f.to_upload if report.dry_run else f.uploaded:,}"
            + (f" + {labels:,} as label" if labels else ""),
            escape(", ".join(left_out)) or "-",
        )
    stdout.print(table)
    if report.same_account is not None:
        for line in same_account_summary(report.same_account, report.dry_run):
            stdout.print(escape(line), soft_wrap=True)
    for f in report.folders:
        if f.target == "INBOX" and f.reason != "the inbox":  # say why a folder is the inbox
            stdout.print(f"{escape(f.source)} goes to INBOX: {escape(f.reason)}", soft_wrap=True)
    if not report.dry_run:
        stdout.print(
            f"Uploaded {report.uploaded:,} messages ({_size(report.uploaded_bytes)}) in "
            f"{report.elapsed_seconds:.1f} s over {report.connections} connections "
            f"({report.messages_per_second:.0f} messages/s)."
        )
    if report.estimated_days is not None and report.estimated_days > 0.5:
        stdout.print(
            f"The provider accepts only so much a day: uploading {_size(report.planned_bytes)} "
            f"takes about {report.estimated_days:.1f} days. Each run stops when the day's "
            "share is used; run it again the next day and it continues."
        )
    planned_labels = sum(f.to_label for f in report.folders)
    if report.labelled or planned_labels:
        stdout.print(
            f"{report.labelled or planned_labels:,} messages "
            + ("would not be" if report.dry_run else "were not")
            + " uploaded again: the identical message was already stored in another folder "
            "(or earlier in the same one), and this folder "
            + ("would become" if report.dry_run else "became")
            + " an extra label on it."
        )
    if report.already_done or report.found_on_server:
        stdout.print(
            f"{report.already_done + report.found_on_server:,} messages were already on "
            "the server and were not uploaded again."
        )
    if report.skipped_deleted:
        stdout.print(
            f"{report.skipped_deleted:,} messages you had deleted were left out "
            "(set skip_deleted = false to recover them into a separate folder)."
        )
    _render_partial(report)
    if report.verified:
        stdout.print("Verified: every migrated message is on the server, once.")
    if report.missing_after_verify:
        stdout.print(
            f"[red]Verification: {report.missing_after_verify:,} messages are "
            "missing on the server; run again to upload them.[/]"
        )
    for altered in report.altered:
        stdout.print(
            f"[yellow]changed by the server[/] {escape(altered.target)} "
            f"{escape(altered.source_id)} {escape(repr(altered.subject))}: "
            f"{escape(altered.change)}",
            soft_wrap=True,
        )
    if report.content_checked:
        stdout.print(
            f"The content of {report.content_checked:,} uploads was compared with what the "
            f"server stored: {len(report.altered):,} changed."
            + (" `mailadvisor verify --content` compares every message." if report.altered else "")
        )
    if report.extra_copies:
        stdout.print(
            f"[red]Verification: {report.extra_copies:,} extra copies: messages that are on "
            "the server more than once (uploaded by another run at the same time, or there "
            "before). `mailadvisor verify --profile FILE` lists them; they are left for you "
            "to remove (nothing is ever deleted for you).[/]"
        )
    for failure in report.failures:
        subject = f" {failure.subject!r}" if failure.subject else ""
        size = f" ({_size(failure.size)})" if failure.size else ""
        stdout.print(
            f"[red]not migrated[/] {escape(failure.folder)} {escape(failure.source_id)}"
            f"{escape(subject)}{size}: {escape(failure.reason)}",
            soft_wrap=True,
        )
    if report.failures:
        stdout.print(
            "Messages that were not migrated stay in the source; a later run retries them."
        )
    if report.not_migrated_mbox:
        saved = sum(1 for f in report.failures if f.saved)
        stdout.print(
            f"A copy of {saved:,} of them is in {escape(report.not_migrated_mbox)} "
            "(an mbox: open it in any mail program).",
            soft_wrap=True,
        )
    if report.room is not None and (report.dry_run or report.room.fits is False):
        colour = "red" if report.room.blocks else "yellow" if report.room.fits is False else ""
        text = f"Room on the server: {escape(report.room.summary)}."
        stdout.print(f"[{colour}]{text}[/]" if colour else text, soft_wrap=True)
        if report.dry_run and report.room.fits is False:
            stdout.print(f"To go on: {escape(report.room.advice)}.", soft_wrap=True)
    if report.deferred and report.account_full:
        stdout.print(
            f"[yellow]{report.deferred:,} messages ({_size(report.deferred_bytes)}) did not "
            "fit into the account[/] and wait in the source for the next run; they are not "
            "failures and were not copied anywhere."
        )
    elif report.deferred:
        stdout.print(
            f"{report.deferred:,} messages wait for the next run: the provider asked "
            "to stop for now. They stay in the source and are not counted as failed."
        )
    if report.stopped_early:
        stdout.print(
            f"[yellow]Stopped early:[/] {escape(report.stopped_early)}. Run the same "
            "command again later to continue where it stopped."
        )
    for note in report.notes[:NOTES_SHOWN]:
        stdout.print(f"note: {escape(note)}", soft_wrap=True)
    if len(report.notes) > NOTES_SHOWN:
        stdout.print(
            f"... and {len(report.notes) - NOTES_SHOWN:,} more notes (all of them in --json "
            "and --report).",
            soft_wrap=True,
        )
    stdout.print(f"Journal: {escape(report.journal)}", soft_wrap=True)
    if not report.dry_run and report.finished_at:
        stdout.print(
            f"This pass ended at {report.finished_at}; run the same command again after "
            "you stopped the old POP3 program to copy what arrived since (nothing twice).",
            soft_wrap=True,
        )
