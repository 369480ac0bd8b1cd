"""The command line as a user meets it: help, version, statuses, no tracebacks."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
from pathlib import Path

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
    # The script of the environment running the tests (a venv need not be on PATH).
    script = shutil.which("mailadvisor", path=str(Path(sys.executable).parent))
    assert script is not None, f"no mailadvisor console script beside {sys.executable}"
    done = subprocess.run(
        [script, "profile", "check", "/nonexistent/profile.toml"],
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


COMMANDS = [
    [],
    *[[c] for c in ("advise", "detect", "devices", "forget", "migrate", "plugins", "scan")],
    ["signin"],
    *[[c] for c in ("test", "verify", "profile")],
    ["profile", "check"],
    ["profile", "examples"],
]


def _help(args: list[str], columns: int) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "advisor", *args, "--help"],
        env={**os.environ, "COLUMNS": str(columns), "NO_COLOR": "1", "TERM": "dumb"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout


@pytest.mark.parametrize("columns", [80, 120])
@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a) or "mailadvisor")
def test_help_reads_cleanly(args: list[str], columns: int) -> None:
    text = _help(args, columns)
    # A flag takes no value: no "<bool>" in its type column.
    assert "<bool>" not in text
    assert "list[" not in text
    # The description is re-flowed to the width: every line of a paragraph but its
    # last fills most of the line (hard-wrapped docstrings leave short fragments).
    description = text.split("╭", 1)[0].splitlines()
    paragraphs: list[list[str]] = [[]]
    for line in description:
        if line.strip():
            paragraphs[-1].append(line.strip())
        else:
            paragraphs.append([])
    for lines in paragraphs:
        if lines and (lines[0].startswith("Usage:") or lines[0].startswith("•")):
            continue  # the usage line, and lists (one item a line)
        for line, following in itertools.pairwise(lines):
            room = len(line) + 1 + len(following.split()[0])
            assert room > columns - 4, f"short line {line!r} before {following!r}"


def test_help_keeps_bracketed_table_names() -> None:
    # [server], [source], [advice] are profile tables, not rich markup to swallow.
    assert "profile's [server] table" in " ".join(_help(["test"], 120).split())
    assert "[advice] table" in " ".join(_help(["advise"], 120).split())
