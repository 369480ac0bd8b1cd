"""The command line as a user meets it: help, version, statuses, no tracebacks."""

from __future__ import annotations

import subprocess
import sys

import pytest

from advisor import __version__
from advisor.cli import run
from advisor.exitcodes import ExitStatus


def test_help_teaches(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--help"]) == 0
    out = capsys.readouterr().out
    for word in ("POP3", "IMAP", "plugins", "profile", "Exit statuses"):
        assert word in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"mailadvisor {__version__}"


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["frobnicate"]) == ExitStatus.USAGE
    assert "No such command" in capsys.readouterr().err


def test_console_script_is_installed_and_exits_with_status() -> None:
    done = subprocess.run(
        ["mailadvisor", "profile", "check", "/nonexistent/profile.toml"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "no such profile file" in done.stderr
    assert "Traceback" not in done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "advisor", "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and "mailadvisor" in done.stdout
