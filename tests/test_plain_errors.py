"""Errors a newcomer meets say what to do, and never echo a secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from advisor.cli import run
from advisor.exitcodes import ExitStatus
from tests.harness.netfakes import FakeInternet

SECRET = "hunter2-Pässwört"


def _profile(tmp_path: Path, auth: str, source: str = "") -> Path:
    src = source or str(tmp_path)
    path = tmp_path / "p.toml"
    path.write_text(
        'version = 1\n[account]\nemail = "a@example.org"\n'
        '[server]\nhost = "imap.example.org"\n'
        f'[auth]\n{auth}\n[source]\npath = "{src}"\n'
    )
    return path


def test_a_password_typed_as_password_env_is_refused_without_echoing_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = _profile(tmp_path, f'password_env = "{SECRET}"')
    assert run(["profile", "check", str(profile)]) == ExitStatus.USAGE
    err = " ".join(capsys.readouterr().err.split())
    assert SECRET not in err and "password_env" in err
    assert "name of an environment variable" in err and "not shown" in err


def test_an_unknown_store_in_a_profile_names_the_profile_key_not_a_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("not mail\n")
    profile = _profile(tmp_path, 'password_env = "X"', source=str(junk))
    assert run(["migrate", "--profile", str(profile), "--dry-run"]) == ExitStatus.USAGE
    err = " ".join(capsys.readouterr().err.split())
    assert "--kind" not in err and 'kind = "..." in the profile\'s [source] table' in err


def test_detect_with_no_working_network_says_so(
    fake_internet: FakeInternet, capsys: pytest.CaptureFixture[str]
) -> None:
    # The local DNS server knows no name at all, the ISPDB's neither: a network that is down.
    status = run(["detect", "someone@example.org"])
    err = " ".join(capsys.readouterr().err.split())
    assert status == ExitStatus.CONNECT_FAILED
    assert "network seems unreachable" in err and "--no-network" in err


def test_many_notes_do_not_bury_the_plan(capsys: pytest.CaptureFixture[str]) -> None:
    from advisor.cli.migrate_cmd import NOTES_SHOWN, render_report
    from advisor.migration import MigrationReport

    notes = [f"Mail/Inbox.msf: note {n}" for n in range(30)]
    report = MigrationReport("a@example.org", "imap:993", True, [], [], notes=notes)
    render_report(report)
    out = capsys.readouterr().out
    assert out.count("note: ") == NOTES_SHOWN
    assert f"and {30 - NOTES_SHOWN} more notes" in out
