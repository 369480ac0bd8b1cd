"""The mail on this computer: found, measured (nothing measurable is asked), and chosen
for copying, or typed in when the user keeps it somewhere else."""

from __future__ import annotations

import shutil
from pathlib import Path

from rich.markup import escape
from rich.panel import Panel

from advisor.advice import format_size
from advisor.cli.wizard.questions import Option, Prompt, QuestionKind
from advisor.cli.wizard.state import WizardState
from advisor.cli.wizard.texts import WELCOME, short, store_title
from advisor.profile import SourceKind
from advisor.stores.discover import discover_stores
from advisor.stores.scan import ScannedStore, ScanTarget, scan_stores


class LocalMailStep(WizardState):
    """Step 1: the mail programs' stores on this computer, measured; which to copy."""

    # --- 1. welcome and the local mail ---------------------------------------------
    def _welcome(self) -> None:
        self.out.print(Panel(WELCOME, title="[bold]mailadvisor[/]", title_align="left"))

    def _find_local_mail(self) -> None:
        self.heading("The mail on this computer")
        with self.out.status("Looking for the mail your mail programs keep on this computer..."):
            found = discover_stores(self.home, spool_dirs=self.spool_dirs)
            targets = [ScanTarget(s.kind, s.path, s.client, s.reason) for s in found.stores]
            self.stores = scan_stores(targets)
        if not self.stores:
            self.say(
                "I found no mail that a mail program keeps on this computer. If you have "
                "old mail to move, you can show me where it is later."
            )
        else:
            self.say("I found:")
            for s in self.stores:
                self.say(f"  • {escape(store_title(s))}")
        usable = [s for s in self.stores if s.scan is not None]
        if usable:
            self.answers.mail_size = sum(s.scan.totals.bytes for s in usable if s.scan)
        where = self.stores[0].path if self.stores else (self.home or Path.home())
        free = _free_disk(where)
        if free is not None:
            self.answers.free_disk = free
        measured = []
        if self.answers.mail_size is not None:
            measured.append(f"{format_size(self.answers.mail_size)} of mail")
        if free is not None:
            measured.append(f"{format_size(free)} free on this disk")
        if measured:
            self.say(f"Measured: {', '.join(measured)}. You will not be asked about these.")

    def _choose_store(self) -> ScannedStore | None:
        while True:
            options = [
                Option(store_title(s), i, disabled=short(s.error) if s.error else None)
                for i, s in enumerate(self.stores)
            ]
            usable = [o for o in options if o.disabled is None]
            if any(s.error for s in self.stores):
                options.append(Option("Look again (after closing my mail program)", "again"))
            options.append(Option("Somewhere else: let me type where my mail is", "path"))
            options.append(Option("Nothing: I have no old mail to move", "none"))
            answer = self.ask(
                Prompt(
                    "store",
                    QuestionKind.SELECT,
                    "Which mail do you want to copy into your account?",
                    "The mail your POP3 program downloaded over the years.",
                    usable[0].value if usable else "path",
                    tuple(options),
                )
            )
            if answer == "none":
                return None
            if answer == "again":
                self._find_local_mail()
                continue
            if answer == "path":
                store = self._store_at_path()
                if store is not None:
                    return store
                continue
            chosen: ScannedStore = self.stores[answer]
            return chosen

    def _store_at_path(self) -> ScannedStore | None:
        answer: str = self.ask(
            Prompt(
                "store_path",
                QuestionKind.TEXT,
                "Where is it?",
                "The folder or file your mail program keeps mail in, like ~/Maildir, a "
                "Thunderbird profile or an Outlook .pst file; leave it empty to go back.",
                "",
                validate=lambda t: (
                    True
                    if not t.strip() or Path(t.strip()).expanduser().exists()
                    else "There is nothing at that path."
                ),
            )
        )
        if not answer.strip():
            return None
        path = Path(answer.strip()).expanduser().resolve()
        with self.out.status("Counting the mail there..."):
            scanned = scan_stores([ScanTarget(SourceKind.AUTO, path)])[0]
        if scanned.error:
            self.say(f"[bold red]I cannot read it:[/] {escape(scanned.error)}")
            return None
        self.stores.append(scanned)
        self.say(f"Found: {escape(store_title(scanned))}")
        return scanned


def _free_disk(path: Path) -> int | None:
    """Free bytes on the disk holding ``path`` (or its nearest existing parent)."""
    for candidate in (path, *path.parents):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return None
