"""``mailadvisor advise``: the POP3-or-IMAP advice without questions.

The answers come from options or from the ``[advice]`` table of a profile
(options win). The provider plugins add what they know about the provider
(no POP3 at all, a switch to turn on) and its server settings. The advice
itself is computed by :func:`advisor.advice.advise`; this module only gathers
its inputs and renders the result.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from advisor.advice import (
    ANSWER_HELP,
    Advice,
    AdviceAnswers,
    Connectivity,
    Factor,
    Push,
    advise,
    parse_size,
)
from advisor.cli.render import print_json, stdout, to_jsonable, warning
from advisor.devices.guide import device_advice
from advisor.discovery import choose_provider
from advisor.errors import UsageError
from advisor.exitcodes import ExitStatus
from advisor.plugins.manager import PluginHost, load_plugins
from advisor.plugins.types import AdviceFactor, Protocol, ServerSettings
from advisor.profile import load_profile

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_BOOL_ANSWERS = ("webmail", "sync_state", "backups", "keep_off_server", "shared_mailbox")

ANSWERS_PANEL = "Answers (each optional; an unknown one does not count)"
SIZES_PANEL = "Sizes (usually measured; 4GB, 500 MB, 1.5 GiB)"
PROVIDER_PANEL = "Provider"


def option_for(name: str) -> str:
    """The command-line option that gives the answer ``name``."""
    flag = "--" + name.replace("_", "-")
    if name in _BOOL_ANSWERS:
        return f"{flag} / --no-{flag[2:]}"
    if name == "connectivity":
        return f"{flag} " + "|".join(c.value for c in Connectivity)
    if name == "devices":
        return f"{flag} N"
    return f"{flag} SIZE"


def _help(name: str) -> str:
    h = ANSWER_HELP[name]
    # Rich markup would swallow a bare "[advice]".
    return f"{h.question} {h.hint} (In a profile: \\[advice] {name}.)"


@dataclass(frozen=True)
class ProviderInputs:
    """What the plugins know about the user's provider, for the engine."""

    name: str | None
    display_name: str | None
    factors: list[AdviceFactor]
    settings: ServerSettings | None


def provider_inputs(host: PluginHost, email: str | None, provider: str | None) -> ProviderInputs:
    """Find the provider (given, or detected from the address) and ask its plugin.

    The provider comes from the one resolver every command uses (the address's
    domain, and its MX hosts when the network is on). Settings are looked up only
    with an address, since hosts and user names depend on it.
    """
    if provider in (None, "auto"):
        provider = choose_provider(email, host).provider if email else None
    if provider is None:
        return ProviderInputs(None, None, [], None)
    info = host.provider(provider)  # PluginError (status 2) names the loaded providers
    factors = host.advice_factors(provider, email or "")
    settings = host.server_settings(provider, email) if email else None
    return ProviderInputs(provider, info.display_name, factors, settings)


def _size(option: str, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return parse_size(value)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None


def advise_command(
    devices: Annotated[
        int | None,
        typer.Option(min=1, metavar="N", help=_help("devices"), rich_help_panel=ANSWERS_PANEL),
    ] = None,
    webmail: Annotated[
        bool | None,
        typer.Option(
            "--webmail/--no-webmail", help=_help("webmail"), rich_help_panel=ANSWERS_PANEL
        ),
    ] = None,
    sync_state: Annotated[
        bool | None,
        typer.Option(
            "--sync-state/--no-sync-state",
            help=_help("sync_state"),
            rich_help_panel=ANSWERS_PANEL,
        ),
    ] = None,
    connectivity: Annotated[
        Connectivity | None,
        typer.Option(
            case_sensitive=False,
            metavar="WHEN",
            help=_help("connectivity"),
            rich_help_panel=ANSWERS_PANEL,
            show_default=False,
        ),
    ] = None,
    backups: Annotated[
        bool | None,
        typer.Option(
            "--backups/--no-backups", help=_help("backups"), rich_help_panel=ANSWERS_PANEL
        ),
    ] = None,
    keep_off_server: Annotated[
        bool | None,
        typer.Option(
            "--keep-off-server/--no-keep-off-server",
            help=_help("keep_off_server"),
            rich_help_panel=ANSWERS_PANEL,
        ),
    ] = None,
    shared_mailbox: Annotated[
        bool | None,
        typer.Option(
            "--shared-mailbox/--no-shared-mailbox",
            help=_help("shared_mailbox"),
            rich_help_panel=ANSWERS_PANEL,
        ),
    ] = None,
    mail_size: Annotated[
        str | None,
        typer.Option(metavar="SIZE", help=_help("mail_size"), rich_help_panel=SIZES_PANEL),
    ] = None,
    free_disk: Annotated[
        str | None,
        typer.Option(metavar="SIZE", help=_help("free_disk"), rich_help_panel=SIZES_PANEL),
    ] = None,
    quota: Annotated[
        str | None,
        typer.Option(metavar="SIZE", help=_help("quota"), rich_help_panel=SIZES_PANEL),
    ] = None,
    quota_used: Annotated[
        str | None,
        typer.Option(metavar="SIZE", help=_help("quota_used"), rich_help_panel=SIZES_PANEL),
    ] = None,
    email: Annotated[
        str | None,
        typer.Option(
            metavar="ADDRESS",
            help="Your email address: the provider is detected from it, and the settings "
            "to use are looked up.",
            rich_help_panel=PROVIDER_PANEL,
        ),
    ] = None,
    provider: Annotated[
        str | None,
        typer.Option(
            metavar="NAME",
            help='A provider plugin\'s name ("gmail", "outlook"...; see `mailadvisor plugins`) '
            "when it cannot be told from the address.",
            rich_help_panel=PROVIDER_PANEL,
        ),
    ] = None,
    profile: Annotated[
        Path | None,
        typer.Option(
            "--profile",
            metavar="FILE",
            help="Read the answers from the \\[advice] table (and the address and provider "
            "from \\[account]) of this profile; options given here win.",
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> int:
    """Recommend POP3 or IMAP, with every reason in plain words and the settings to use.

    Give the answers you know as options, or write them in the \\[advice] table of a
    profile (--profile FILE; options win). Each is optional: an unknown answer does
    not count, and the advice lists it. The \\[advice] names are the option names with
    underscores: devices, webmail, sync_state, connectivity, backups, keep_off_server,
    shared_mailbox, mail_size, free_disk, quota, quota_used.

    With --email or --provider, the provider's plugin adds what it knows (for example
    that iCloud has no POP3, so IMAP is the only choice) and the server settings.

    Example: mailadvisor advise --devices 2 --webmail --connectivity mostly
    --email you@gmail.com
    """
    from_options = AdviceAnswers(
        devices=devices,
        webmail=webmail,
        sync_state=sync_state,
        connectivity=connectivity,
        backups=backups,
        keep_off_server=keep_off_server,
        shared_mailbox=shared_mailbox,
        mail_size=_size("--mail-size", mail_size),
        free_disk=_size("--free-disk", free_disk),
        quota=_size("--quota", quota),
        quota_used=_size("--quota-used", quota_used),
    )
    answers = from_options
    if profile is not None:
        loaded = load_profile(profile)
        answers = loaded.advice.merged(from_options)
        email = email or loaded.account.email
        provider = provider or loaded.account.provider
    if email is not None and not _EMAIL.match(email):
        raise UsageError(f'--email: expected an address like "you@example.com", got {email!r}')

    host = load_plugins()
    for w in host.warnings:
        warning(w.message)
    inputs = provider_inputs(host, email, provider)
    advice = advise(
        answers,
        provider_factors=inputs.factors,
        settings=inputs.settings,
        provider=inputs.display_name,
    )
    if json_output:
        print_json(
            {
                **to_jsonable(advice),
                "provider": inputs.name,
                "email": email,
                "devices": device_advice(
                    advice.recommendation is Protocol.IMAP, advice.answers.devices
                ),
            }
        )
    else:
        render_advice(advice, email=email)
    return ExitStatus.OK


# --- rendering ---------------------------------------------------------------

_PUSH_LABEL = {
    Push.IMAP: "[green]for IMAP[/]",
    Push.POP3: "[cyan]for POP3[/]",
    Push.NEITHER: "[dim]neither way[/]",
    Push.CONSTRAINT: "[bold yellow]a rule, not a choice[/]",
}
_WORD_STYLE = {"clear": "bold green", "likely": "bold yellow", "close call": "bold red"}


def _bullets(items: Sequence[Text | str]) -> Table:
    """A bulleted list whose wrapped lines stay indented under their text."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column(ratio=1)
    for item in items:
        grid.add_row("•", item if isinstance(item, Text) else Text(item))
    return grid


def _factor_text(f: Factor) -> Text:
    strength = "" if f.direction in (Push.NEITHER, Push.CONSTRAINT) else f", {f.strength}"
    answer = f": {escape(f.answer)}" if f.answer else ""
    head = Text.from_markup(f"{_PUSH_LABEL[f.direction]}{strength}, [bold]{escape(f.title)}[/]")
    head.append_text(Text.from_markup(answer))
    return Text("\n").join([head, Text(f.reason)])


def _section(title: str) -> None:
    stdout.print()
    stdout.print(f"[bold underline]{title}[/]")


def render_advice(advice: Advice, *, email: str | None = None, show_settings: bool = True) -> None:
    """The advice as an expert would give it: verdict, reasons, caveats, settings.

    ``show_settings=False`` leaves out the settings (the wizard shows them once it
    has found and tested the provider's servers).
    """
    word = advice.confidence_word.value
    title = f"[bold]My advice: {advice.recommendation.name}[/]  ([{_WORD_STYLE[word]}]{word}[/])"
    stdout.print(Panel(Text(advice.summary), title=title, title_align="left", expand=True))

    # A constraint that is only a step to take is shown once, under "Before you start".
    decisive = [
        f
        for f in advice.factors
        if f.direction is not Push.NEITHER
        and not (f.direction is Push.CONSTRAINT and f.reason in advice.steps)
    ]
    neutral = [f for f in advice.factors if f.direction is Push.NEITHER]
    if decisive:
        _section("Why")
        stdout.print(_bullets([_factor_text(f) for f in decisive]))
    if neutral:
        _section("Also considered (they do not tip the balance)")
        stdout.print(_bullets([_factor_text(f) for f in neutral]))
    if advice.unknown:
        _section("Not answered (they did not count)")
        stdout.print(
            _bullets(
                [
                    Text.from_markup(
                        f"{escape(u.question)} [dim](give it with {escape(option_for(u.name))})[/]"
                    )
                    for u in advice.unknown
                ]
            )
        )
    if advice.steps:
        _section("Before you start")
        stdout.print(_bullets(advice.steps))
    if advice.caveats:
        _section("Keep in mind")
        stdout.print(_bullets(advice.caveats))
    on_devices = device_advice(advice.recommendation is Protocol.IMAP, advice.answers.devices)
    if on_devices:
        _section("On your devices")
        stdout.print(_bullets(on_devices))
    if show_settings:
        _section("Settings to use")
        stdout.print(_bullets(_settings_lines(advice, email)))


def _settings_lines(advice: Advice, email: str | None) -> list[str]:
    s = advice.settings
    kind = "IMAP" if s.protocol is Protocol.IMAP else "POP3"
    lines: list[str] = []
    if s.endpoint is None:
        how = "" if email else " Give --email ADDRESS and mailadvisor looks them up."
        lines.append(
            f"Incoming mail: {kind}. The server name is not known here; your provider's "
            f"help pages list it.{how}"
        )
    else:
        e = s.endpoint
        user = e.username or (email or "your full email address")
        if s.found_by == "guess":
            found = " (a guess from your address: check it on your provider's help pages)"
        else:
            found = f" (found by: {s.found_by})" if s.found_by else ""
        lines.append(f"Incoming mail: {kind}, server {e.host}, port {e.port}{found}.")
        lines.append(f"User name: {user}.")
    lines.extend(s.notes)
    return lines
