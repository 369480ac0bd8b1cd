"""``mailadvisor forget --profile FILE``: remove the stored password and sign-ins."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from advisor.cli.render import print_json, stdout
from advisor.exitcodes import ExitStatus
from advisor.forget import forget_account
from advisor.plugins.manager import load_plugins
from advisor.profile import load_profile


def forget(
    profile: Annotated[
        Path,
        typer.Option(
            "--profile",
            help="The profile whose account to forget (its email address).",
            show_default=False,
        ),
    ],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> int:
    """Remove the password and OAuth2 sign-ins mailadvisor keeps for an account.

    Deletes the profile's account from the system keyring (its password and
    its OAuth2 sign-ins) and removes its token files. Use it when you stop
    using mailadvisor, hand the computer on, or fear a token has leaked; then
    also revoke the app's access at the provider (Google: myaccount.google.com,
    Security, Third-party apps; Microsoft: account.microsoft.com, Privacy, Apps
    and services). The profile file itself stays.

    Exit status 0, also when nothing was stored.
    """
    loaded = load_profile(profile)
    providers = [p.name for p in load_plugins().providers()]
    result = forget_account(loaded, providers)
    if json_output:
        print_json(result)
        return ExitStatus.OK
    if result.removed:
        stdout.print(f"Removed for {escape(result.account)}:", soft_wrap=True)
        for item in result.removed:
            stdout.print(f"  - {escape(item)}", soft_wrap=True)
    else:
        stdout.print(f"Nothing stored for {escape(result.account)}.", soft_wrap=True)
    for note in result.notes:
        stdout.print(f"  note: {escape(note)}", soft_wrap=True)
    return ExitStatus.OK
