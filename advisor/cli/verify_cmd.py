"""``mailadvisor verify``: is every source message on the server, exactly once?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from advisor.cli.render import print_json, stderr, stdout
from advisor.connection.account import resolve_account
from advisor.exitcodes import ExitStatus
from advisor.migration import MigrationOptions
from advisor.migration.verify import Verification, VerifyItem, VerifyReport
from advisor.plugins.manager import load_plugins
from advisor.profile import load_profile
from advisor.stores.base import ReaderOptions
from advisor.stores.source import reader_for


def verify(
    profile: Annotated[
        Path, typer.Option("--profile", "-p", help="The profile file to check.", show_default=False)
    ],
    ignore_lock: Annotated[
        bool,
        typer.Option(
            "--ignore-lock", help="Read a Thunderbird profile even while Thunderbird runs."
        ),
    ] = False,
    content: Annotated[
        bool,
        typer.Option(
            "--content",
            help="Compare content, not only Message-ID and size: downloads the server's copies, "
            "and names each message the server stored altered.",
        ),
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> int:
    """Check that every message of the profile's local store is on the server exactly once.

    Each local message is looked for in the server folder a migration puts it in, by
    Message-ID and size (by content for messages without a Message-ID; with --content,
    by content for every message). Nothing is
    changed: the source is only read, the server only examined (EXAMINE, FETCH). Mail
    on the server that did not come from the source is ignored. Lists what is missing
    or doubled, per folder. Exit status 0 when every message is there once, 1 otherwise
    (run `mailadvisor migrate` again to upload what is missing). It takes no run lock:
    it may run beside a migration into the same account, but then what it reports is
    a snapshot of messages still on their way.
    """
    prof = load_profile(profile)
    plugins = load_plugins()
    for w in plugins.warnings:
        stderr.print(f"[yellow]warning:[/] {escape(w.message)}", soft_wrap=True)
    access = resolve_account(prof, plugins)
    reader = reader_for(prof, ReaderOptions(ignore_lock=ignore_lock))
    options = MigrationOptions.from_profile(prof, access, dry_run=True)
    if stderr.is_terminal and not json_output:
        with stderr.status("Comparing the source with the server (read-only)..."):
            report = Verification(reader, access, plugins, options, content=content).run()
    else:
        report = Verification(reader, access, plugins, options, content=content).run()
    if json_output:
        print_json(report)
    else:
        render_verify(report)
    return ExitStatus.OK if report.ok else ExitStatus.INCOMPLETE


def _line(kind: str, item: VerifyItem) -> str:
    subject = f" {item.subject!r}" if item.subject else ""
    where = f"{item.folder} -> {item.target}"
    return (
        f"{kind} {escape(where)} {escape(item.source_id)}{escape(subject)} "
        f"({item.size:,} bytes; on the server {item.on_server}x, expected {item.in_source}x)"
    )


def render_verify(report: VerifyReport) -> None:
    table = Table(title=f"Verification: {report.account} on {report.server}")
    table.add_column("server folder", overflow="fold")
    table.add_column("local folders", overflow="fold")
    for col in ("messages", "present", "missing", "doubled"):
        table.add_column(col, justify="right")
    for f in report.folders:
        table.add_row(
            escape(f.target) + ("" if f.exists else " (not on the server)"),
            escape(", ".join(f.sources)),
            f"{f.messages:,}",
            f"{f.present:,}",
            f"{f.missing:,}",
            f"{f.doubled:,}",
        )
    stdout.print(table)
    for item in report.missing:
        stdout.print(_line("[red]missing[/]", item), soft_wrap=True)
    for item in report.doubled:
        stdout.print(_line("[yellow]doubled[/]", item), soft_wrap=True)
    for altered in report.altered:
        stdout.print(
            f"[yellow]changed by the server[/] {escape(altered.folder)} -> "
            f"{escape(altered.target)} {escape(altered.source_id)} "
            f"{escape(repr(altered.subject))}: {escape(altered.change)}",
            soft_wrap=True,
        )
    if report.content:
        stdout.print(
            f"Compared by content: {report.bodies_fetched:,} messages downloaded, "
            f"{len(report.altered):,} stored altered by the server."
        )
    for where in report.unreadable:
        stdout.print(f"not checked (unreadable): {escape(where)}", soft_wrap=True)
    if report.skipped_deleted:
        stdout.print(
            f"{report.skipped_deleted:,} messages you had deleted were not checked "
            "(skip_deleted in the profile)."
        )
    if report.skipped_partial:
        stdout.print(
            f"{report.skipped_partial:,} messages downloaded only partly (headers only) were "
            "not checked: their full copy is not on this disk."
        )
    if report.ok:
        stdout.print(f"All {report.checked:,} messages are on the server exactly once.")
    else:
        stdout.print(
            f"{len(report.missing):,} missing, {sum(f.doubled for f in report.folders):,} "
            "extra copies. Run `mailadvisor migrate` again to upload what is missing; "
            "extra copies are left for you to remove (nothing is ever deleted for you)."
        )
