"""``mailadvisor signin --profile FILE``: OAuth2 sign-in for Gmail, Outlook and others."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from advisor.cli.render import print_json, stderr, stdout
from advisor.connection.signin import sign_in
from advisor.exitcodes import ExitStatus
from advisor.oauth.flows import DevicePrompt
from advisor.plugins.manager import load_plugins
from advisor.plugins.types import OAuthFlow
from advisor.profile import load_profile


def _tell(message: str) -> None:
    stderr.print(escape(message), soft_wrap=True)


def _show_code(prompt: DevicePrompt) -> None:
    stderr.print(
        f"To sign in, open [bold]{escape(prompt.verification_uri)}[/] in a browser on any "
        f"device and enter the code [bold]{escape(prompt.user_code)}[/] "
        f"(valid for {prompt.expires_in // 60} minutes). Waiting...",
        soft_wrap=True,
    )


def signin(
    profile: Annotated[
        Path,
        typer.Option(
            "--profile",
            help='A profile whose auth table says method = "oauth2".',
            show_default=False,
        ),
    ],
    device: Annotated[
        bool,
        typer.Option(
            "--device",
            help="Sign in with a code on another device (Microsoft), e.g. over SSH.",
        ),
    ] = False,
    browser: Annotated[
        bool,
        typer.Option(
            "--browser/--no-browser",
            help="Open the browser by itself, or only print the address to open.",
        ),
    ] = True,
    again: Annotated[
        bool,
        typer.Option("--again", help="Sign in anew even if a stored sign-in still works."),
    ] = False,
    check: Annotated[
        bool,
        typer.Option(
            "--check/--no-check", help="Log in to the IMAP server with the token afterwards."
        ),
    ] = True,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> int:
    """Sign in to a provider with OAuth2 and keep the sign-in for later runs.

    Opens your browser at the provider's sign-in page (Gmail, Outlook.com,
    Microsoft 365). You allow mailadvisor to use your mail, and the browser
    hands the permission back to mailadvisor on this computer. With --device
    (Microsoft) you get a code to enter on any device instead, e.g. over SSH.
    The refresh token is kept in the system keyring, or where there is none
    in a file only you can read; never in the profile. An IMAP login with
    the new token then proves that it works.

    You need your own OAuth client: its id goes into the profile (auth table,
    client_id) or MAILADVISOR_GMAIL_CLIENT_ID / MAILADVISOR_OUTLOOK_CLIENT_ID;
    the error message says how to register one. Users of oama or
    mutt_oauth2.py set token_command in the profile instead.

    Exit status 0 when signed in, 2 for a profile or setup problem, 3 when
    the sign-in or the IMAP login is refused, 4 when a server is unreachable.
    """
    loaded = load_profile(profile)
    result = sign_in(
        loaded,
        load_plugins(),
        flow=OAuthFlow.DEVICE if device else None,
        again=again,
        check=check,
        open_browser=None if browser else (lambda url: False),
        notify=_tell,
        show_device_prompt=_show_code,
    )
    if json_output:
        print_json(result)
        return ExitStatus.OK
    stdout.print(
        f"[green]Signed in[/] as {escape(result.account)} at {escape(result.provider)} "
        f"({escape(result.token_source.value)}).",
        soft_wrap=True,
    )
    if result.stored_in:
        stdout.print(f"  kept in {escape(result.stored_in)}", soft_wrap=True)
    if result.server:
        stdout.print(
            f"  IMAP login at {escape(result.server)} with {escape(result.mechanism or '')} works.",
            soft_wrap=True,
        )
    return ExitStatus.OK
