"""A server that allows one connection per user (issue 13, point 4), on a private Dovecot
with ``mail_max_userip_connections = 1``: migrate falls back to fewer connections, down to
uploading over its control connection, says so, and never waits silently; a run that
cannot make progress (the user's mail program holds the only connection) stops within a
minute with a clear error and exit status 4."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from advisor.cli import run
from advisor.connection.limits import too_many_connections
from tests.harness.dovecot import DovecotFactory, DovecotServer
from tests.harness.mailgen import generate, write_maildir
from tests.harness.migrate_helpers import body_counts, connect, write_profile

ONE_CONNECTION = "protocol imap {\n  mail_max_userip_connections = 1\n}\n"
"""Overrides the fixture's 100 (a later protocol block wins)."""


@pytest.fixture(scope="module")
def one_connection_dovecot(dovecot_factory: DovecotFactory) -> DovecotServer:
    return dovecot_factory(extra_config=ONE_CONNECTION)


@pytest.mark.parametrize(
    "said",
    [
        "* BYE Maximum number of connections from user+IP exceeded (mail_max_userip_connections=1)",
        "[ALERT] Too many simultaneous connections. (Failure)",  # Gmail
        "User is authenticated but not connected.",  # Microsoft 365 over its limit
        "NO [LIMIT] Too many open connections",
        "* BYE Too many connections from your IP address",
    ],
)
def test_every_servers_wording_is_recognised(said: str) -> None:
    assert too_many_connections(said)


@pytest.mark.parametrize("said", ["NO [OVERQUOTA] Quota exceeded", "BAD unknown command", ""])
def test_other_answers_are_not_a_connection_limit(said: str) -> None:
    assert not too_many_connections(said)


def test_one_connection_per_user_uploads_over_the_control_connection(
    tmp_path: Path,
    one_connection_dovecot: DovecotServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    account = one_connection_dovecot.add_user()
    msgs = write_maildir(
        tmp_path / "Maildir", list(generate(30, [("INBOX",), ("Work",)], seed=3, sizes="small"))
    )
    profile, _ = write_profile(tmp_path, one_connection_dovecot, account, tmp_path / "Maildir")
    started = time.monotonic()
    status = run(["migrate", "--profile", str(profile), "--journal", str(tmp_path / "j"), "--json"])
    took = time.monotonic() - started
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    report = json.loads(captured.out)
    assert status == 0, report
    assert report["uploaded"] == len(msgs) and report["failed"] == 0
    assert report["connections"] == 0  # no extra connection: the control one carried it
    notes = " ".join(report["notes"])
    assert "one connection" in notes and "control connection" in notes, notes
    assert took < 60
    assert max(body_counts(one_connection_dovecot, account).values()) == 1


def test_the_text_report_says_so_while_it_runs(
    tmp_path: Path,
    one_connection_dovecot: DovecotServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    account = one_connection_dovecot.add_user()
    write_maildir(tmp_path / "Maildir", list(generate(8, [("INBOX",)], seed=5, sizes="small")))
    profile, _ = write_profile(tmp_path, one_connection_dovecot, account, tmp_path / "Maildir")
    status = run(["migrate", "--profile", str(profile), "--journal", str(tmp_path / "j")])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    said = captured.out + captured.err
    assert "Maximum number of connections" in said  # the server's own words, while it runs
    assert "control connection" in said
    assert sum(body_counts(one_connection_dovecot, account).values()) == 8


def test_no_connection_left_stops_within_a_minute_with_exit_4(
    tmp_path: Path,
    one_connection_dovecot: DovecotServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    account = one_connection_dovecot.add_user()
    write_maildir(tmp_path / "Maildir", list(generate(5, [("INBOX",)], seed=4, sizes="small")))
    profile, _ = write_profile(tmp_path, one_connection_dovecot, account, tmp_path / "Maildir")
    with connect(one_connection_dovecot, account) as mail_program:  # still connected
        mail_program.select_folder("INBOX")
        started = time.monotonic()
        status = run(["migrate", "--profile", str(profile), "--journal", str(tmp_path / "j")])
        took = time.monotonic() - started
    captured = capsys.readouterr()
    assert status == 4, captured.err
    assert took < 60
    assert "Traceback" not in captured.err
    assert "too many connections" in captured.err.lower()
    assert "close" in captured.err  # tells the user what to do


def test_gmail_allowing_one_connection_uploads_over_the_control_connection(
    tmp_path: Path, dovecot: DovecotServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Gmail's wording (``* BYE Too many simultaneous connections``), from the fault proxy
    in front of the suite's Dovecot, since Gmail cannot run here."""
    from tests.harness.fault_proxy import FaultProxy
    from tests.test_migrate_faults import (
        _assert_all_once,
        _migrate,
        _profile_via,
        _setup,
        _target,
    )

    root, msgs, account = _setup(tmp_path, dovecot, 20, seed=41)
    started = time.monotonic()
    with FaultProxy(_target(dovecot), max_connections=1) as proxy:
        profile = _profile_via(tmp_path, dovecot, account, root, proxy, "gmail")
        status, report = _migrate(profile, tmp_path / "j.sqlite", capsys, "--connections", "4")
        peak = proxy.peak
    assert status == 0, report
    assert peak == 1
    assert report["connections"] == 0 and report["uploaded"] == len(msgs)
    assert any("control connection" in n for n in report["notes"]), report["notes"]
    assert time.monotonic() - started < 60
    _assert_all_once(dovecot, account, msgs)
