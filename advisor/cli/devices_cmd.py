"""``mailadvisor devices``: the new IMAP account for every device, and the safe switch."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from advisor.checks import parse_server_option
from advisor.cli.render import print_json, stdout, warning
from advisor.devices import DeviceAccount, device_account
from advisor.devices.android import qr_payload, terminal_qr, write_qr
from advisor.devices.apple import mobileconfig
from advisor.devices.autoconfig import client_config
from advisor.devices.files import old_program_habits, write_device_files, write_private
from advisor.devices.guide import DeviceKind, settings_text, steps_for, switch_steps
from advisor.devices.old_pop3 import GMAIL_POP_NOTE
from advisor.exitcodes import ExitStatus
from advisor.plugins.manager import load_plugins
from advisor.plugins.types import Protocol
from advisor.profile import load_profile
from advisor.secrets import resolve_secret


@dataclass
class DevicesResult:
    email: str
    settings: list[str]
    files: dict[str, str] = field(default_factory=dict)
    steps: dict[str, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    switch: list[str] = field(default_factory=list)
    password_included: bool = False


def devices(
    profile: Annotated[
        Path,
        typer.Option("--profile", "-p", help="The profile of the account.", show_default=False),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write a file for each device into this folder (0600): the Apple profile, "
            "the Android QR code (PNG) and the Thunderbird autoconfig file.",
            file_okay=False,
        ),
    ] = None,
    apple: Annotated[
        Path | None,
        typer.Option(help="Write the Apple configuration profile (.mobileconfig) here."),
    ] = None,
    qr: Annotated[
        Path | None,
        typer.Option(
            help="Write the Thunderbird for Android / K-9 Mail QR code here (.png or .svg); "
            "- draws it in the terminal."
        ),
    ] = None,
    autoconfig: Annotated[
        Path | None,
        typer.Option(help="Write a Thunderbird autoconfig file (clientConfig 1.1) here."),
    ] = None,
    smtp: Annotated[
        str | None,
        typer.Option(
            metavar="tls://HOST:PORT",
            help="The outgoing server, when the provider's is not known "
            "(starttls://HOST:587 for STARTTLS).",
        ),
    ] = None,
    name: Annotated[str, typer.Option(help="Your name, as others see it on your mail.")] = "",
    with_password: Annotated[
        bool,
        typer.Option(
            "--with-password",
            help="Put the password into the Apple profile and the QR code (read from the "
            "profile's password source): anyone with the file or a photo of the code can "
            "then read your mail. Off by default.",
        ),
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> int:
    """Set up your phone, tablet and other computers with the new IMAP account.

    Writes what each device takes in directly: an Apple configuration profile for iPhone,
    iPad and Mac Mail, a QR code for Thunderbird for Android and K-9 Mail, and a
    Thunderbird autoconfig file; prints the steps for each and the settings to type into
    Outlook, Windows Mail or any other program. No password goes into any file unless
    you give --with-password. Then it prints the order of steps that switches from POP3
    without losing mail, and warns when the old POP3 program deletes mail from the server.
    """
    prof = load_profile(profile)
    plugins = load_plugins()
    for w in plugins.warnings:
        warning(w.message)
    outgoing = parse_server_option(Protocol.SMTP, smtp) if smtp else None
    account = device_account(prof, plugins, smtp=outgoing, display_name=name)
    if with_password and not account.oauth2:
        account = account.with_password(resolve_secret(prof.auth, prof.account.email))
    result = DevicesResult(account.email, settings_text(account))
    result.password_included = account.password is not None
    files: dict[DeviceKind, Path] = {}
    if out is not None:
        files.update(write_device_files(account, out, list(DeviceKind)))
    if apple is not None:
        files[DeviceKind.APPLE] = write_private(apple, mobileconfig(account))
    if autoconfig is not None:
        files[DeviceKind.THUNDERBIRD] = write_private(autoconfig, client_config(account))
    if qr is not None and str(qr) != "-":
        write_private(qr, b"")
        files[DeviceKind.ANDROID] = write_qr(qr_payload(account), qr)
    for kind in DeviceKind:
        where = str(files[kind]) if kind in files else None
        result.steps[kind.value] = list(steps_for(kind, account, where).steps)
    result.files = {k.value: str(v) for k, v in files.items()}
    result.warnings = _warnings(prof.source.path, account)
    result.switch = switch_steps(str(profile))
    if json_output:
        print_json(result)
        return ExitStatus.OK
    _render(result, account, draw_qr=str(qr) == "-")
    return ExitStatus.OK


def _warnings(source: Path | None, account: DeviceAccount) -> list[str]:
    found = [w for h in old_program_habits(source) if (w := h.warning()) is not None]
    if account.provider == "gmail" or account.imap.host.endswith("gmail.com"):
        found.append(GMAIL_POP_NOTE)
    return found


def _render(result: DevicesResult, account: DeviceAccount, *, draw_qr: bool) -> None:
    stdout.print(f"[bold]Your IMAP account {escape(result.email)} on every device[/]")
    for line in result.settings:
        stdout.print(f"  {escape(line)}", soft_wrap=True)
    for kind in DeviceKind:
        stdout.print()
        stdout.print(f"[bold]{escape(steps_for(kind, account).title)}[/]")
        for n, step in enumerate(result.steps[kind.value], 1):
            stdout.print(f"  {n}. {escape(step)}", soft_wrap=True)
        if kind is DeviceKind.ANDROID and draw_qr:
            sys.stdout.write(terminal_qr(qr_payload(account)))
    if result.password_included:
        stdout.print(
            "[yellow]The files carry your password:[/] keep them private and delete them "
            "once your devices are set up.",
            soft_wrap=True,
        )
    for w in result.warnings:
        stdout.print(f"[yellow]warning:[/] {escape(w)}", soft_wrap=True)
    stdout.print()
    stdout.print("[bold]Switching from POP3 without losing mail[/]")
    for n, step in enumerate(result.switch, 1):
        stdout.print(f"  {n}. {escape(step)}", soft_wrap=True)
