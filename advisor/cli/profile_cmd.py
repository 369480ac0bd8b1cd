"""``mailadvisor profile ...``: work with profile files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from advisor.cli.render import error, print_json, stdout
from advisor.errors import ProfileError
from advisor.exitcodes import ExitStatus
from advisor.plugins.manager import load_plugins
from advisor.profile import check_profile
from advisor.profile_examples import example_profile, example_profiles

app = typer.Typer(
    help="Check and inspect profile files (a whole run written down in TOML).",
    rich_markup_mode="markdown",
)


@dataclass
class ProfileCheckResult:
    file: str
    ok: bool
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    email: str | None = None
    provider: str | None = None
    source: str | None = None


@app.command("check")
def check(
    files: Annotated[
        list[Path],
        typer.Argument(help="Profile files to validate.", show_default=False, metavar="FILE"),
    ],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> int:
    """Validate profile files without connecting to any server.

    Exit status 0 when every file is valid, 2 when any is not; each problem names the
    file, the line and key, and what is expected.
    """
    providers = {p.name for p in load_plugins().providers()}
    results: list[ProfileCheckResult] = []
    for f in files:
        try:
            profile, notes = check_profile(f, providers)
        except ProfileError as exc:
            results.append(ProfileCheckResult(file=str(f), ok=False, error=str(exc)))
            continue
        src = profile.source
        results.append(
            ProfileCheckResult(
                file=str(f),
                ok=True,
                notes=notes,
                email=profile.account.email,
                provider=profile.account.provider,
                source=src.kind.value + (f" at {src.path}" if src.path else ""),
            )
        )
    if json_output:
        print_json({"profiles": results})
    else:
        for r in results:
            if r.ok:
                stdout.print(
                    f"[green]ok[/] {escape(r.file)}: {escape(r.email or '')} "
                    f"(provider {escape(r.provider or '')}, source {escape(r.source or '')})",
                    soft_wrap=True,
                )
                for note in r.notes:
                    stdout.print(f"   note: {escape(note)}", soft_wrap=True)
            else:
                error(r.error or "")
    return ExitStatus.OK if all(r.ok for r in results) else ExitStatus.USAGE


@app.command("examples")
def examples(
    name: Annotated[
        str | None,
        typer.Argument(
            help="Print this example's text (redirect it into your own file to start from it).",
            show_default=False,
            metavar="[NAME]",
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> int:
    """List the example profiles installed with mailadvisor, or print one.

    Start your own profile from one: mailadvisor profile examples imap-from-maildir >
    my.toml, edit it, then mailadvisor profile check my.toml.
    """
    if name is not None:
        example = example_profile(name)
        text = example.path.read_text(encoding="utf-8")
        if json_output:
            print_json({"name": example.name, "path": str(example.path), "text": text})
        else:
            typer.echo(text, nl=False)
        return ExitStatus.OK
    found = example_profiles()
    if json_output:
        print_json(
            {
                "examples": [
                    {"name": e.name, "path": str(e.path), "description": e.description}
                    for e in found
                ]
            }
        )
        return ExitStatus.OK
    for e in found:
        stdout.print(f"[bold]{escape(e.name)}[/]  {escape(e.description)}", soft_wrap=True)
        stdout.print(f"   {escape(str(e.path))}", soft_wrap=True, highlight=False)
    return ExitStatus.OK
