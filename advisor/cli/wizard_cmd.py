"""``mailadvisor`` without arguments: the guided wizard, in a terminal only."""

from __future__ import annotations

import sys

from advisor.cli.render import stderr, warning
from advisor.exitcodes import ExitStatus

NOT_A_TERMINAL = (
    "mailadvisor: without a command, mailadvisor starts its guided wizard, which asks "
    "questions and needs a terminal; this is not one (input or output is redirected).\n"
    "To run without questions, describe the run in a profile file and use:\n"
    "  mailadvisor migrate --profile FILE    (mailadvisor profile examples shows examples)\n"
    "  mailadvisor advise --help             (the POP3-or-IMAP advice from options)\n"
    "  mailadvisor --help                    (every command)"
)


def start() -> int:
    """Start the wizard when stdin and stdout are terminals; else explain and return 2."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        stderr.print(NOT_A_TERMINAL, markup=False, highlight=False, soft_wrap=True)
        return int(ExitStatus.USAGE)
    from advisor.cli.wizard.flow import (
        run_wizard,  # questionary and prompt_toolkit only when needed
    )
    from advisor.plugins.manager import load_plugins
    # questionary and prompt_toolkit are imported only when the wizard starts

    plugins = load_plugins()
    for w in plugins.warnings:
        warning(w.message)
    return run_wizard(plugins=plugins)
