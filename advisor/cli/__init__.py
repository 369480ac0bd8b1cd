"""The ``mailadvisor`` command line: a thin layer over the library.

Each command computes a plain result with library code, then renders it as
text or ``--json``. Errors a user can act on become one clear line on stderr
and a documented exit status (see :mod:`advisor.exitcodes`), never a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated, NoReturn

import typer

from advisor import __version__
from advisor.cli import (
    advise_cmd,
    detect_cmd,
    devices_cmd,
    forget_cmd,
    migrate_cmd,
    plugins_cmd,
    profile_cmd,
    scan_cmd,
    signin_cmd,
    test_cmd,
    verify_cmd,
    wizard_cmd,
)
from advisor.cli.help_format import hide_flag_types
from advisor.cli.render import error, stderr
from advisor.errors import MailadvisorError
from advisor.exitcodes import ExitStatus

hide_flag_types()
# Markdown: help paragraphs are re-flowed (docstrings are hard-wrapped) and
# brackets such as [server] stay text instead of becoming rich markup.
app = typer.Typer(
    name="mailadvisor",
    help=(
        "Decide between POP3 and IMAP, then move the mail your POP3 client keeps on this "
        "computer into IMAP folders on your server: every message once, with its flags "
        "and date.\n\n"
        "Run mailadvisor without a command to be guided through it all with questions "
        "(in a terminal); the commands below do each part without questions.\n\n"
        "Exit statuses: 0 success; 1 finished but some messages were not migrated (or are "
        "missing or doubled on the server); 2 usage or profile error; 3 authentication "
        "failed; 4 cannot connect or TLS failure; 5 another mailadvisor run is moving mail "
        "into the same account; 6 the account is full; 70 internal error (a bug; the "
        "migration report is still written); 130 interrupted."
    ),
    no_args_is_help=False,
    add_completion=False,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
)
app.command("advise")(advise_cmd.advise_command)
app.command("detect")(detect_cmd.detect_command)
app.command("devices")(devices_cmd.devices)
app.command("forget")(forget_cmd.forget)
app.command("migrate")(migrate_cmd.migrate)
app.command("plugins")(plugins_cmd.plugins)
app.command("scan")(scan_cmd.scan)
app.command("signin")(signin_cmd.signin)
app.command("test")(test_cmd.connection_test)
app.command("verify")(verify_cmd.verify)
app.add_typer(profile_cmd.app, name="profile")


def _version(value: bool) -> None:
    if value:
        print(f"mailadvisor {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    if ctx.invoked_subcommand is None:
        raise typer.Exit(wizard_cmd.start())


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Run the CLI and exit with a documented status."""
    sys.exit(run(argv))


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit status (tests call this)."""
    try:
        result = app(
            args=list(argv) if argv is not None else None,
            prog_name="mailadvisor",
            standalone_mode=False,
        )
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.TyperException as exc:
        # Usage errors (typer's vendored click exceptions) know how to show themselves.
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            error(str(exc))
        return int(getattr(exc, "exit_code", ExitStatus.USAGE))
    except (typer.Abort, KeyboardInterrupt):
        stderr.print("Interrupted.")
        return ExitStatus.INTERRUPTED
    except MailadvisorError as exc:
        error(str(exc))
        return exc.exit_status
    return result if isinstance(result, int) else ExitStatus.OK
