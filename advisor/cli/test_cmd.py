"""``mailadvisor test --profile FILE``: check the connection and sign-in, step by step."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from advisor.checks import (
    DEFAULT_TIMEOUT,
    CheckReport,
    CheckResult,
    CheckStatus,
    parse_server_option,
    run_checks,
    target_from_profile,
)
from advisor.cli.render import print_json, stdout, warning
from advisor.plugins.manager import load_plugins
from advisor.plugins.types import Endpoint, Protocol
from advisor.profile import load_profile

_MARKS = {
    CheckStatus.OK: "[green]✓[/]",
    CheckStatus.WARN: "[yellow]![/]",
    CheckStatus.FAIL: "[bold red]✗[/]",
    CheckStatus.SKIP: "[dim]-[/]",
}
_TITLE_WIDTH = 34


def _print_result(result: CheckResult) -> None:
    stdout.print(
        f"{_MARKS[result.status]} {escape(result.title):<{_TITLE_WIDTH}} {escape(result.detail)}",
        soft_wrap=True,
    )
    if result.fix and result.status in (CheckStatus.FAIL, CheckStatus.WARN):
        stdout.print(f"  {'':<{_TITLE_WIDTH}} [bold]fix:[/] {escape(result.fix)}", soft_wrap=True)


def _describe(endpoint: Endpoint) -> str:
    return (
        f"{endpoint.protocol.value.upper()} {endpoint.host}:{endpoint.port} "
        f"({endpoint.security.value})"
    )


def _summary(report: CheckReport) -> str:
    fails = [r for r in report.results if r.status is CheckStatus.FAIL]
    warns = [r for r in report.results if r.status is CheckStatus.WARN]
    if fails:
        return (
            f"[bold red]{len(fails)} check{'s' if len(fails) > 1 else ''} failed[/]; the first: "
            f"{escape(fails[0].title)} (exit status {int(report.exit_status)})."
        )
    if warns:
        plural = "s" if len(warns) > 1 else ""
        return f"[green]Everything works[/], with {len(warns)} warning{plural}."
    return "[green]Everything works.[/]"


def connection_test(
    profile: Annotated[
        Path,
        typer.Option("--profile", "-p", help="The profile to test.", show_default=False),
    ],
    pop3: Annotated[
        str | None,
        typer.Option(
            "--pop3",
            metavar="tls://HOST:PORT",
            help="Also check this POP3 server (starttls://HOST:PORT for STARTTLS). Without a "
            "[server] table the provider's POP3 server is checked anyway.",
            show_default=False,
        ),
    ] = None,
    smtp: Annotated[
        str | None,
        typer.Option(
            "--smtp",
            metavar="tls://HOST:PORT",
            help="Also check this SMTP submission server (starttls://HOST:587 for STARTTLS).",
            show_default=False,
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1, help="Seconds to wait for each step.")
    ] = DEFAULT_TIMEOUT,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> int:
    """Check that the profile's account works, one line per step, with a fix for failures.

    In order: DNS; TCP; STARTTLS offered and enforced (for security = "starttls");
    TLS and the certificate (chain, host name, expiry, version); CAPABILITY; AUTH
    mechanisms; login; LIST with special-use folders; QUOTA; APPENDLIMIT. Then the
    POP3 server (login and STAT) and the SMTP submission server (EHLO with STARTTLS
    and the login methods, then a login; no mail is sent), when known. Nothing on the
    server is changed. Passwords and user names beyond ASCII are sent in UTF-8.

    The servers are the profile's [server] table (IMAP; its ca_file applies to every
    server), else the provider plugin's. Exit status: 0 when everything works (even
    with warnings), 3 when the login is refused, 4 when a server cannot be reached or
    TLS fails, 2 when the profile is wrong or the password cannot be read.
    """
    loaded = load_profile(profile)
    host = load_plugins()
    for w in host.warnings:
        warning(w.message)
    target = target_from_profile(
        loaded,
        host,
        pop3=parse_server_option(Protocol.POP3, pop3) if pop3 else None,
        smtp=parse_server_option(Protocol.SMTP, smtp) if smtp else None,
        timeout=timeout,
    )
    if json_output:
        report = run_checks(target)
        print_json(report)
        return report.exit_status

    servers = [e for e in (target.imap, target.pop3, target.smtp) if e is not None]
    stdout.print(
        f"Testing [bold]{escape(target.email)}[/]: "
        + ", ".join(escape(_describe(e)) for e in servers),
        soft_wrap=True,
    )
    trust = f"; certificates checked against {target.ca_file}" if target.ca_file else ""
    stdout.print(f"Servers from {escape(target.source)}{escape(trust)}", soft_wrap=True)
    report = run_checks(target, on_result=_print_result)
    stdout.print(_summary(report), soft_wrap=True)
    return report.exit_status
