"""``mailadvisor scan [PATH]``: what a mail store holds, folder by folder.

The command only chooses what to scan and renders the result; discovery, detection and
counting are library code (:mod:`advisor.stores.discover`, :mod:`advisor.stores`,
:mod:`advisor.stores.scan`).
"""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Annotated

import typer
from rich.console import Console
from rich.filesize import decimal
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from advisor.cli.render import print_json, stderr, stdout, warning
from advisor.errors import UsageError
from advisor.exitcodes import ExitStatus
from advisor.profile import SourceKind, load_profile
from advisor.stores import KIND_DESCRIPTIONS, detect_kind
from advisor.stores.base import ReaderOptions
from advisor.stores.discover import discover_stores
from advisor.stores.scan import (
    FolderScan,
    ProgressCallback,
    ScannedStore,
    ScanProgress,
    ScanReport,
    ScanTarget,
    StoreScan,
    scan_reader,
    scan_stores,
)
from advisor.stores.source import reader_for

PROGRESS_DELAY = 0.5
"""Seconds a scan runs before a progress bar appears (quick scans show none)."""

PROBLEMS_SHOWN = 10
"""How many individual problems the text report lists per store (--json has more)."""


def scan(
    path: Annotated[
        Path | None,
        typer.Argument(
            help="A store to scan: a Thunderbird profile or folder, an mbox file, a Maildir, "
            "an MH folder, .eml files, Apple Mail data or a .pst file. Leave out to find "
            "the stores of the mail programs installed here.",
            show_default=False,
        ),
    ] = None,
    kind: Annotated[
        SourceKind | None,
        typer.Option(
            "--kind",
            help="What PATH is, when detection guesses wrong (without PATH: scan only the "
            "stores of this kind).",
            case_sensitive=False,
            show_default=False,
        ),
    ] = None,
    profile: Annotated[
        Path | None,
        typer.Option(
            "--profile",
            help="Scan the source a profile file names (\\[source]): a store on disk, or a "
            "live POP3 account (downloaded only, never deleted; its password comes from "
            "\\[auth]).",
            show_default=False,
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
    ignore_lock: Annotated[
        bool,
        typer.Option(
            "--ignore-lock",
            help="Read a Thunderbird profile even while Thunderbird has it open. The counts "
            "may be off if it writes meanwhile; closing Thunderbird is better.",
        ),
    ] = False,
) -> int:
    """Show what a mail store holds, folder by folder: message counts, sizes, date ranges,
    and how many messages are deleted, partial (body never downloaded) or unreadable.
    The store is only read, never written.

    Without PATH, it finds and scans the stores of installed mail programs:
    Thunderbird, Evolution, KMail, Apple Mail, Outlook (.pst files),
    Claws Mail, Sylpheed, mutt, and the system mailbox in /var/mail.

    With --profile, it scans what the profile's \\[source] names: a store
    on disk, or a live POP3 account (path = "pop3s://user@host"), whose
    messages are downloaded and counted, never deleted.

    Examples:

    - mailadvisor scan
    - mailadvisor scan ~/Maildir
    - mailadvisor scan --json ~/.thunderbird/abcd1234.default-release
    - mailadvisor scan --profile my-move.toml

    Exit status: 0 all scanned; 1 a store found could not be read;
    2 bad PATH or profile; 3 the POP3 server refused the login;
    4 the POP3 server cannot be reached.
    """
    options = ReaderOptions(ignore_lock=ignore_lock)
    if profile is not None:
        if path is not None or kind is not None:
            raise UsageError("give either PATH (with --kind) or --profile, not both")
        return _scan_profile(profile, options, json_output)
    if kind is SourceKind.POP3:
        raise UsageError(
            "a POP3 account has no PATH to scan: put it in a profile's [source] "
            '(kind = "pop3", path = "pop3s://user@host") and run: mailadvisor scan --profile FILE'
        )
    report = ScanReport()
    if path is not None:
        path = path.expanduser()
        chosen = detect_kind(path) if kind in (None, SourceKind.AUTO) else kind
        targets = [ScanTarget(chosen, path)]
    else:
        found = discover_stores()
        report.home = found.home
        report.warnings.extend(found.warnings)
        targets = [
            ScanTarget(s.kind, s.path, s.client, s.reason)
            for s in found.stores
            if kind in (None, SourceKind.AUTO, s.kind)
        ]
    with _DelayedProgress(stderr) as bar:
        # With a PATH, a store that cannot be read is the user's error: exit 2 with its message.
        report.stores = scan_stores(targets, options, bar.callback, keep_going=path is None)

    return _finish(report, kind, json_output)


def _scan_profile(profile: Path, options: ReaderOptions, json_output: bool) -> int:
    """Scan the profile's [source]; every error (a refused POP3 login...) is the user's."""
    prof = load_profile(profile)
    reader = reader_for(prof, options)
    source = prof.source.url if prof.source.kind is SourceKind.POP3 and prof.source.url else ""
    target = ScanTarget(SourceKind(reader.kind), reader.path, None, f"the source of {profile}")
    report = ScanReport()
    with _DelayedProgress(stderr) as bar:
        report.stores = [scan_reader(reader, target, bar.callback(target), source=source)]
    return _finish(report, None, json_output)


def _finish(report: ScanReport, kind: SourceKind | None, json_output: bool) -> int:
    if json_output:
        print_json(report)
    else:
        _render(report, kind)
    for w in report.warnings:
        warning(w)
    for s in report.stores:
        if s.error is not None:
            warning(f"{s.source} was not scanned: {s.error}")
    return ExitStatus.INCOMPLETE if report.failed else ExitStatus.OK


# --- text ---------------------------------------------------------------------------


def _render(report: ScanReport, kind: SourceKind | None) -> None:
    if not report.stores:
        where = f" in {report.home}" if report.home else ""
        what = f"{kind.value} " if kind not in (None, SourceKind.AUTO) else ""
        stdout.print(
            f"No {what}mail stores of installed mail programs were found{escape(where)}. "
            "Give the path of one: mailadvisor scan PATH",
            soft_wrap=True,
        )
        return
    for i, store in enumerate(report.stores):
        if i:
            stdout.print()
        _render_store(store)


def _render_store(store: ScannedStore) -> None:
    title = f"[bold]{escape(store.source)}[/]: {escape(store.description)}"
    if store.client:
        reason = store.reason or ""
        found = reason if store.client.split("/")[0] in reason else f"{store.client}: {reason}"
        title += f" [dim]({escape(found)})[/]"
    stdout.print(title, soft_wrap=True)
    if store.scan is None:
        stdout.print(f"  [red]not scanned:[/] {escape(store.error or '')}", soft_wrap=True)
        return
    result = store.scan
    if result.folders:
        # Piped output has no width of its own: let long folder names stay on one line.
        stdout.print(_folder_table(result), width=None if stdout.is_terminal else 160)
    t = result.totals
    summary = [
        f"{_plural(t.messages, 'message')} in {_plural(result.folders, 'folder')}, "
        f"{decimal(t.bytes)}",
    ]
    if t.first_received and t.last_received:
        first, last = _day(t.first_received), _day(t.last_received)
        summary.append(f"received {first} to {last}" if first != last else f"received {first}")
    stdout.print(escape("; ".join(summary)), soft_wrap=True)
    notes = []
    if t.deleted:
        notes.append(f"{t.deleted:,} deleted (they stay deleted unless you ask for them)")
    if t.partial:
        notes.append(f"{t.partial:,} partial (only the headers were ever downloaded)")
    if t.unreadable:
        notes.append(f"{t.unreadable:,} unreadable")
    if t.undated:
        notes.append(f"{t.undated:,} without a received date")
    if result.folder_data:
        notes.append(
            f"{result.folder_data:,} folder-data record(s) of c-client (\"DON'T DELETE THIS "
            'MESSAGE"): not mail, not counted, never migrated'
        )
    for note in notes:
        stdout.print(f"  {escape(note)}", soft_wrap=True)
    _render_problems(result)
    for other in store.also:
        stdout.print(
            f"  [yellow]also here:[/] {escape(KIND_DESCRIPTIONS.get(other, other.value))}, "
            f"not part of this scan (scan it with --kind {other.value})",
            soft_wrap=True,
        )
    for note in result.notes:
        stdout.print(f"  note: {escape(note)}", soft_wrap=True)
    for note in result.metadata_notes:
        stdout.print(f"  [dim]{escape(note)}[/]", soft_wrap=True)


def _folder_table(result: StoreScan) -> Table:
    """One row per folder, children indented under their parent; the deleted, partial and
    unreadable columns only when the store has any (they are mostly zero)."""
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    table.add_column("folder", overflow="fold", min_width=12)
    for column in ("messages", "size"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("received", no_wrap=True)
    extra = [c for c in ("deleted", "partial", "unreadable") if getattr(result.totals, c)]
    for column in extra:
        table.add_column(column, justify="right", no_wrap=True)
    for node in result.root.walk():
        if not node.path and not node.messages:
            continue  # the store itself, holding nothing outside its folders
        name = node.path[-1] if node.path else "(top level)"
        label = "  " * max(len(node.path) - 1, 0) + name
        table.add_row(
            escape(label),
            f"{node.messages:,}" if node.listed or node.messages else "",
            decimal(node.bytes) if node.messages else "",
            _range(node),
            *(_count(getattr(node, c)) for c in extra),
            style=None if node.listed or node.messages else "dim",
        )
    return table


def _render_problems(result: StoreScan) -> None:
    problems = result.totals.problems
    if not problems:
        return
    counted = ", ".join(f"{n:,} {code}" for code, n in problems.items())
    stdout.print(f"  problems: {escape(counted)}", soft_wrap=True)
    for example in result.problem_examples[:PROBLEMS_SHOWN]:
        folder = "/".join(example.folder) or "(top level)"
        # Readers often start the message with the place already; say it once.
        where = example.message.startswith(example.source_id)
        text = example.message if where else f"{example.source_id}: {example.message}"
        stdout.print(
            f"    {escape(folder)}: {escape(example.code)}: {escape(text)}", soft_wrap=True
        )
    more = sum(problems.values()) - min(len(result.problem_examples), PROBLEMS_SHOWN)
    if more > 0:
        stdout.print(f"    ... and {more:,} more (--json lists up to 100)", soft_wrap=True)


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def _count(n: int) -> str:
    return f"{n:,}" if n else ""


def _day(when: datetime) -> str:
    return when.strftime("%Y-%m-%d")


def _range(node: FolderScan) -> str:
    first, last = node.first_received, node.last_received
    if first is None or last is None:
        return ""
    a, b = _day(first), _day(last)
    return a if a == b else f"{a} - {b}"


# --- progress -----------------------------------------------------------------------


class _DelayedProgress:
    """A progress bar on ``console`` that appears only on a terminal, and only once the
    scans have run for :data:`PROGRESS_DELAY` seconds, so quick scans print nothing extra.

    A timer shows it, not the next message: a reader can be silent for long (readpst
    unpacking a large .pst before the first folder is listed), and the spinner then
    shows that work goes on. Callbacks run in the scanning thread, the timer in its own;
    a lock keeps them apart.
    """

    def __init__(self, console: Console, delay: float = PROGRESS_DELAY) -> None:
        self.console = console
        self.delay = delay
        self.progress: Progress | None = None
        self.tasks: dict[ScanTarget, TaskID] = {}
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._current: ScanTarget | None = None
        self._latest: ScanProgress | None = None
        self._closed = False

    def __enter__(self) -> _DelayedProgress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
            if self.progress is not None:
                self.progress.stop()
                self.progress = None

    def callback(self, target: ScanTarget) -> ProgressCallback | None:
        """The progress callback for scanning ``target`` (None when not on a terminal)."""
        if not self.console.is_terminal:
            return None
        with self._lock:
            self._current, self._latest = target, None
            if self.progress is not None:
                self._update(target, None)
            elif self._timer is None:
                self._timer = threading.Timer(self.delay, self._show)
                self._timer.daemon = True
                self._timer.start()

        def report(event: ScanProgress) -> None:
            with self._lock:
                self._latest = event
                if self.progress is not None:
                    self._update(target, event)

        return report

    def _show(self) -> None:
        with self._lock:
            if self._closed or self._current is None:
                return
            self.progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[messages]:,} messages"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self.progress.start()
            self._update(self._current, self._latest)

    def _update(self, target: ScanTarget, event: ScanProgress | None) -> None:
        assert self.progress is not None
        task = self.tasks.get(target)
        if task is None:
            task = self.tasks[target] = self.progress.add_task(
                escape(target.path.name or str(target.path)), total=None, messages=0
            )
        if event is None:
            return  # nothing read yet: the spinner says it is working
        if event.bytes_total:
            total, completed = event.bytes_total, min(event.bytes, event.bytes_total)
        else:
            total, completed = max(event.folders_total, 1), event.folders_done
        if event.done:
            completed = total
        self.progress.update(task, total=total, completed=completed, messages=event.messages)
