"""``mailadvisor plugins``: what is loaded."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from advisor.cli.render import print_json, stdout, warning
from advisor.exitcodes import ExitStatus
from advisor.plugins.manager import BUILTIN_ONLY_ENV, load_plugins


def plugins(
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> int:
    """List the loaded plugins: name, distribution, version, built-in or not, hooks.

    Third-party plugins are any installed distribution with an entry point in the
    "mailadvisor" group. Set MAILADVISOR_BUILTIN_PLUGINS_ONLY=1 to load only the built-ins.
    """
    host = load_plugins()
    for w in host.warnings:
        warning(w.message)
    if json_output:
        print_json({"plugins": host.records, "warnings": host.warnings})
        return ExitStatus.OK
    table = Table(title="mailadvisor plugins")
    for column in ("name", "distribution", "version", "kind"):
        table.add_column(column, no_wrap=True)
    table.add_column("providers", max_width=18, overflow="fold")
    table.add_column("hooks", ratio=1, min_width=16, overflow="fold")
    for r in host.records:
        table.add_row(
            r.name,
            r.distribution,
            r.version,
            "built-in" if r.builtin else "third-party",
            _providers(r.providers),
            ", ".join(h.removeprefix("mailadvisor_") for h in r.hooks),
        )
    stdout.print(table)
    if host.warnings:
        stdout.print(
            f"Plugins that failed to load are ignored; {BUILTIN_ONLY_ENV}=1 skips them all."
        )
    return ExitStatus.OK


def _providers(names: tuple[str, ...], shown: int = 3) -> str:
    """A few names and a count: the data-driven plugin serves twenty (--json lists all)."""
    if len(names) <= shown:
        return ", ".join(names)
    return ", ".join(names[:shown]) + f" +{len(names) - shown} more"
