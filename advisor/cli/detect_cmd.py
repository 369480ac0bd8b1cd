"""``mailadvisor detect EMAIL``: which provider, which servers, and where each came from."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import typer
from rich.markup import escape

from advisor.cli.render import print_json, stdout, warning
from advisor.discovery import Found, Origin, Outcome, current_options, detect, use_options
from advisor.errors import ConnectError
from advisor.exitcodes import ExitStatus
from advisor.plugins.manager import load_plugins

_MARKS = {
    Outcome.FOUND: "[green]✓[/]",
    Outcome.NONE: "[dim]·[/]",
    Outcome.ERROR: "[yellow]![/]",
    Outcome.SKIPPED: "[dim]-[/]",
}


def _server_line(found: Found) -> str:
    e = found.endpoint
    where = f"{e.host}:{e.port}"
    trust = "[green]trusted[/]" if found.trusted else "[bold yellow]confirm first[/]"
    user = f", user {escape(e.username)}" if e.username else ""
    source = found.via if found.origin is Origin.PLUGIN else f"{found.origin.value} {found.via}"
    return (
        f"  {e.protocol.value.upper():<5} {escape(where):<32} {e.security.value:<9}"
        f"{trust}  from {escape(source)}{user}"
    )


def detect_command(
    email: Annotated[str, typer.Argument(help="The email address to look up.", show_default=False)],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
    no_network: Annotated[
        bool,
        typer.Option(
            "--no-network",
            help="Look nothing up: only the provider plugins' own knowledge, and a guess.",
        ),
    ] = False,
    allow_http: Annotated[
        bool,
        typer.Option(
            "--allow-http",
            help="Also fetch autoconfig over plain HTTP (what it names stays unconfirmed "
            "unless it lies in your own domain).",
        ),
    ] = False,
) -> int:
    """Find the IMAP, POP3 and SMTP servers for an address, and say where each came from.

    The provider plugin that claims the address (by its domain, or by the servers
    that receive its mail) knows its servers. For any other domain mailadvisor looks
    where Thunderbird does, in parallel: the domain's autoconfig server and
    .well-known URL, Thunderbird's ISPDB, the provider behind the domain's MX
    records, SRV records, and finally the usual host names (imap., mail., pop.,
    smtp.), each tried over verified TLS.

    A server outside your domain learnt from DNS (MX, SRV) or a redirect is marked
    "confirm first": anyone able to spoof DNS could plant it, so check it against
    your provider's help pages before you put it in a profile.
    """
    options = current_options()
    if no_network:
        options = replace(options, network=False)
    if allow_http:
        options = replace(options, allow_http=True)
    host = load_plugins()
    for w in host.warnings:
        warning(w.message)
    with use_options(options):
        if options.network and not json_output:
            with stdout.status(f"Looking up {escape(email)}..."):
                result = detect(email, host, options)
        else:
            result = detect(email, host, options)
    if result.network_unreachable:
        # Every name failed to resolve, the ISPDB's too: the network is the problem, and
        # "no server found" would send the user looking in the wrong place.
        raise ConnectError(
            "the network seems unreachable: not one lookup worked, not even "
            "autoconfig.thunderbird.net (Thunderbird's provider database) resolved. Check "
            "the connection, or use --no-network for mailadvisor's built-in provider data"
        )
    if json_output:
        print_json(result)
        return ExitStatus.OK

    out = stdout
    out.print(
        f"[bold]{escape(result.email)}[/]: provider [bold]{escape(result.provider)}[/] "
        f"({escape(result.provider_name)}): {escape(result.reason)}",
        soft_wrap=True,
    )
    others = [m for m in result.matches[1:] if m.provider != result.provider]
    if others:
        out.print(
            "  other candidates: "
            + ", ".join(f"{escape(m.provider)} ({m.confidence:.1f})" for m in others),
            soft_wrap=True,
        )
    if result.mx_hosts:
        out.print(f"Mail for {escape(result.domain)} goes to {escape(', '.join(result.mx_hosts))}")
    out.print()
    if result.servers:
        out.print("Servers:")
        for found in result.servers:
            out.print(_server_line(found), soft_wrap=True)
    else:
        out.print(
            f"[bold red]No server found for {escape(result.domain)}.[/] Ask your provider for "
            "its IMAP server's name and port, and write them in a profile's \\[server] table.",
            soft_wrap=True,
        )
    if result.attempts:
        out.print()
        out.print("Where mailadvisor looked:")
        for a in result.attempts:
            out.print(
                f"  {_MARKS[a.outcome]} {a.origin.value:<10} {escape(a.via)}: {escape(a.detail)}",
                soft_wrap=True,
            )
    if not result.network:
        out.print()
        out.print("Nothing was looked up (--no-network).")
    for found in result.untrusted:
        out.print()
        out.print(f"[yellow]Confirm first:[/] {escape(found.note)}", soft_wrap=True)
    if result.servers:
        out.print()
        out.print(
            "Next: put them in a profile and run `mailadvisor test --profile FILE` "
            "to check the connection and the login.",
            soft_wrap=True,
        )
    return ExitStatus.OK
