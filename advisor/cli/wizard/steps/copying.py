"""The wizard's migration: the folder plan (a dry run), the partial move when the mail does
not fit, and the copying with a progress bar under the account's run lock.

The one place the wizard wires :class:`~advisor.migration.Migration`: the options
(:meth:`CopyingStep._options`, the same ones ``mailadvisor migrate --profile`` uses), the
journal and the not-migrated mbox beside it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from advisor.advice import format_size
from advisor.cli.migrate_cmd import render_report
from advisor.cli.wizard.questions import Option, Prompt, QuestionKind
from advisor.cli.wizard.steps.local_mail import LocalMailStep
from advisor.connection.account import AccountAccess
from advisor.exitcodes import ExitStatus
from advisor.migration import Migration, MigrationOptions, MigrationReport
from advisor.migration import Progress as MigrationProgress
from advisor.migration.journal import MigrationJournal
from advisor.migration.quota import QuotaCheck
from advisor.migration.run_lock import AccountBusyError, account_lock
from advisor.profile import SourceConfig
from advisor.stores.source import reader_for


class _BarProgress:
    """The migration's progress, as a bar of messages on the console."""

    def __init__(self, progress: Progress, total: int) -> None:
        self._progress = progress
        self._task = progress.add_task("Copying", total=total or None)

    def advance(self, messages: int, size: int) -> None:
        self._progress.update(self._task, advance=messages)

    def note(self, text: str) -> None:
        self._progress.console.print(escape(text))


class CopyingStep(LocalMailStep):
    """Step 7 with IMAP: the plan (a dry run), the question, the copying."""

    # --- 7a. IMAP: moving the mail ----------------------------------------------------
    def _move_mail(self) -> ExitStatus:
        self.heading("Moving your mail")
        store = self._choose_store()
        if store is None:
            self.say("Nothing to move, then.")
            return ExitStatus.OK
        self.profile.source = SourceConfig(kind=store.kind, path=store.path)
        access = self._access()
        with self.out.status("Comparing your mail with what is on the server..."):
            plan = self._plan(access)
        journal_path = self.journal_path(access.email, access.target.host, access.target.port)
        plan.journal = str(journal_path)  # where the copying will be recorded
        self.result.plan = plan
        render_report(plan)
        to_upload = sum(f.to_upload for f in plan.folders)
        if to_upload == 0:
            self.say("[green]Everything is already on the server.[/] Nothing to copy.")
            return ExitStatus.OK
        if plan.room is not None and plan.room.blocks and not self._choose_partial(plan.room):
            self.say(
                "Nothing was copied. Make room, then run mailadvisor again (or "
                "mailadvisor migrate --profile FILE with the profile saved below)."
            )
            return ExitStatus.ACCOUNT_FULL
        size = format_size(sum(f.bytes for f in plan.folders))
        go: bool = self.ask(
            Prompt(
                "migrate",
                QuestionKind.CONFIRM,
                f"Copy {to_upload:,} messages into your account now?",
                f"The mail on this computer ({size}) is only read, never changed; Ctrl-C "
                "stops, and a later run continues",
                True,
            )
        )
        if not go:
            self.say("Nothing was copied.")
            return ExitStatus.OK
        total = sum(f.messages for f in plan.folders)
        try:
            # One run per account at a time: the lock `mailadvisor migrate` takes too.
            with (
                account_lock(access, command="wizard") as lock,
                MigrationJournal(journal_path) as journal,
                self.migration_progress(total) as bar,
            ):
                options = self._options(access, journal_path=journal_path)
                options.unfinished_run = lock.unfinished_run()
                migration = Migration(
                    reader_for(self.profile),
                    access,
                    self.plugins,
                    journal,
                    options,
                    bar,
                )
                self._migration = migration
                self._copying = True
                report = migration.run()
                self._copying = False
        except AccountBusyError as exc:
            self.say(
                f"[red]{escape(str(exc))}.[/] Nothing was copied: start mailadvisor again "
                "when that run has finished."
            )
            return exc.exit_status
        self.result.report = report
        render_report(report)
        if report.account_full:
            self.say(
                "Your account is full: what did not fit is still here on this computer. "
                "Make room, then run again: it continues where it stopped."
            )
            return ExitStatus.ACCOUNT_FULL
        if report.complete:
            self.say("[green]Done: your mail is in your account.[/]")
            return ExitStatus.OK
        return ExitStatus.INCOMPLETE

    def _choose_partial(self, room: QuotaCheck) -> bool:
        """The mail does not fit: move the newest that fits (True), or stop (False)."""
        answer = self.ask(
            Prompt(
                "when_full",
                QuestionKind.SELECT,
                "Your account has no room for all of this mail. What now?",
                room.summary,
                "stop",
                (
                    Option(
                        f"Copy the newest {room.fitting_messages:,} messages "
                        f"({format_size(room.fitting_bytes)}) that fit; the rest waits here",
                        "newest-first",
                    ),
                    Option("Stop: I will make room first (or buy more storage)", "stop"),
                ),
            )
        )
        self.profile.migration.when_full = str(answer)
        return self.profile.migration.when_full == "newest-first"

    def _options(
        self, access: AccountAccess, *, dry_run: bool = False, journal_path: Path | None = None
    ) -> MigrationOptions:
        """The options `mailadvisor migrate --profile` uses (:meth:`MigrationOptions.from_profile`),
        the account's journal and the not-migrated mbox beside it included."""
        return MigrationOptions.from_profile(
            self.profile,
            access,
            dry_run=dry_run,
            journal=journal_path
            or self.journal_path(access.email, access.target.host, access.target.port),
        )

    def _plan(self, access: AccountAccess) -> MigrationReport:
        """A dry run: the folder plan with counts and sizes; nothing is uploaded.

        The account's journal is used when it exists (it knows what an earlier run did);
        otherwise a throwaway one, so that only looking writes nothing.
        """
        path = self.journal_path(access.email, access.target.host, access.target.port)
        with tempfile.TemporaryDirectory(prefix="mailadvisor-plan-") as tmp:
            journal = MigrationJournal(path if path.exists() else Path(tmp) / "plan.sqlite")
            with journal:
                return Migration(
                    reader_for(self.profile),
                    access,
                    self.plugins,
                    journal,
                    self._options(access, dry_run=True),
                ).run()

    @contextmanager
    def migration_progress(self, total: int) -> Iterator[MigrationProgress]:
        """The progress display of the migration (a bar of messages)."""
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("messages"),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=self.out, transient=True) as progress:
            yield _BarProgress(progress, total)
