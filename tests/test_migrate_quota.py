"""A full account is one problem, told before the upload: real Dovecot with the quota plugin.

The store holds more than the account's quota. The dry run says so with numbers; a run
uploads nothing (exit 6) unless the user asks for the newest messages that fit; a server
that enforces a quota without reporting it stops the upload at its first [OVERQUOTA]; in
no case is a message that did not fit written into the "not migrated" mbox, and after
the quota is raised the next run completes, every message exactly once.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from advisor.cli import run
from advisor.exitcodes import ExitStatus
from advisor.migration.quota import Room, newest_that_fit, storage_full, weigh
from tests.harness.dovecot import DovecotFactory, DovecotServer
from tests.harness.mailgen import crlf, generate, write_maildir
from tests.harness.migrate_helpers import body_counts, write_profile

COUNT = 240
QUOTA_KB = 150
# Dovecot enforces the quota but does not report it (no imap_quota plugin for IMAP).
UNREPORTED = "protocol imap {\n  mail_plugins = quota\n}\n"


def _store(tmp_path: Path) -> tuple[Path, list[Any]]:
    messages = list(generate(COUNT, folders=(("INBOX",), ("Archive",)), seed=23, sizes="small"))
    return tmp_path / "Maildir", write_maildir(tmp_path / "Maildir", messages)


def _migrate(
    profile: Path, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, dict[str, Any]]:
    status = run(["migrate", "--profile", str(profile), "--json", *args])
    return status, json.loads(capsys.readouterr().out)


def _not_migrated(tmp_path: Path) -> list[Path]:
    return [p for p in tmp_path.rglob("*not-migrated*") if p.is_file()]


def test_plan_that_does_not_fit_is_refused_before_any_upload(
    dovecot: DovecotServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    account = dovecot.add_user(quota_kb=QUOTA_KB)
    source, written = _store(tmp_path)
    need = sum(len(crlf(m.data)) for m in written)
    assert need > QUOTA_KB * 1024
    profile, _env = write_profile(tmp_path, dovecot, account, source)

    # The dry run says it does not fit, with the numbers, and changes nothing.
    status, plan = _migrate(profile, capsys, "--dry-run")
    assert status == ExitStatus.OK
    room = plan["room"]
    assert room["fits"] is False and room["blocks"] is True
    assert room["planned_bytes"] == need and room["planned_messages"] == COUNT
    assert room["room"]["limit_bytes"] == QUOTA_KB * 1024
    assert room["room"]["used_bytes"] == 0
    assert room["shortfall_bytes"] == need - QUOTA_KB * 1024
    assert 0 < room["fitting_messages"] < COUNT
    assert "does not fit" in room["summary"] and "newest-first" in room["advice"]
    run(["migrate", "--profile", str(profile), "--dry-run"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Room on the server:" in text and "does not fit" in text

    # The real run uploads nothing, says why in one line, and copies nothing anywhere.
    status, report = _migrate(profile, capsys)
    assert status == ExitStatus.ACCOUNT_FULL
    assert report["uploaded"] == 0 and report["failures"] == [] and report["failed"] == 0
    assert report["account_full"] is True
    assert report["deferred"] == COUNT and report["deferred_bytes"] == need
    assert "nothing was uploaded" in report["stopped_early"]
    assert report["not_migrated_mbox"] is None and _not_migrated(tmp_path) == []
    assert sum(body_counts(dovecot, account).values()) == 0


def test_newest_first_fills_the_quota_and_the_next_run_completes_exactly_once(
    dovecot: DovecotServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    account = dovecot.add_user(quota_kb=QUOTA_KB)
    source, written = _store(tmp_path)
    profile, _env = write_profile(tmp_path, dovecot, account, source)
    _status, plan = _migrate(profile, capsys, "--dry-run", "--when-full", "newest-first")
    fitting = plan["room"]["fitting_messages"]

    status, report = _migrate(profile, capsys, "--when-full", "newest-first")
    assert status == ExitStatus.ACCOUNT_FULL
    assert report["uploaded"] == fitting
    assert report["uploaded_bytes"] <= QUOTA_KB * 1024
    assert report["deferred"] == COUNT - fitting and report["failures"] == []
    assert _not_migrated(tmp_path) == []
    on_server = body_counts(dovecot, account)
    assert sum(on_server.values()) == fitting
    # Newest first: the newest went up, the oldest waits, and each one left out was too
    # big for the room still free (a big one is passed over so smaller older ones fit).
    newest, oldest = max(written, key=lambda m: m.date), min(written, key=lambda m: m.date)
    assert crlf(newest.data) in on_server and crlf(oldest.data) not in on_server
    free = QUOTA_KB * 1024 - report["uploaded_bytes"]
    left = [m for m in written if crlf(m.data) not in on_server]
    assert len(left) == COUNT - fitting
    assert all(len(crlf(m.data)) > free for m in left)

    # Room made: the next run uploads the rest, and nothing twice.
    dovecot.set_quota(account, None)
    status, report = _migrate(profile, capsys)
    assert status == ExitStatus.OK, report
    assert report["uploaded"] == COUNT - fitting and report["room"]["fits"] is True
    # The report says when this pass ended: a catch-up later copies what arrived since.
    ended = datetime.fromisoformat(report["finished_at"])
    assert abs((datetime.now(UTC) - ended).total_seconds()) < 120
    assert body_counts(dovecot, account) == Counter(crlf(m.data) for m in written)


def test_unreported_quota_stops_at_the_first_overquota_and_defers_the_rest(
    dovecot_factory: DovecotFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    server = dovecot_factory(extra_config=UNREPORTED)
    account = server.add_user(quota_kb=QUOTA_KB)
    source, written = _store(tmp_path)
    need = sum(len(crlf(m.data)) for m in written)
    profile, _env = write_profile(tmp_path, server, account, source)

    status, plan = _migrate(profile, capsys, "--dry-run")
    assert status == ExitStatus.OK and plan["room"] is None  # the server does not say

    status, report = _migrate(profile, capsys)
    assert status == ExitStatus.ACCOUNT_FULL
    stored = sum(body_counts(server, account).values())
    assert 0 < stored < COUNT and report["uploaded"] == stored
    # One stop, not thousands of failures: the rest is deferred, counted with its bytes.
    assert report["failures"] == [] and report["failed"] == 0
    assert report["deferred"] == COUNT - stored
    assert report["deferred_bytes"] == need - report["uploaded_bytes"]
    assert "the account is full" in report["stopped_early"]
    assert report["not_migrated_mbox"] is None and _not_migrated(tmp_path) == []
    run(["migrate", "--profile", str(profile)])
    text = " ".join(capsys.readouterr().out.split())
    assert "did not fit into the account" in text and "not migrated" not in text

    server.set_quota(account, None)
    status, report = _migrate(profile, capsys)
    assert status == ExitStatus.OK, report
    assert body_counts(server, account) == Counter(crlf(m.data) for m in written)


def test_newest_that_fit_passes_over_a_big_one() -> None:
    chosen, used = newest_that_fit([(3.0, 60, "c"), (2.0, 50, "b"), (1.0, 30, "a")], 95)
    assert chosen == {"c", "a"} and used == 90


def test_a_published_mailbox_size_warns_but_never_blocks() -> None:
    room = Room(None, 1000, "what outlook publishes", authoritative=False)
    check = weigh([(1.0, 1500, "x")], room)
    assert check.fits is False and check.blocks is False
    assert "more than the whole account holds" in check.summary


@pytest.mark.parametrize(
    "response",
    [
        "NO [OVERQUOTA] Quota exceeded (mailbox for user is full)",
        "NO [ALERT] Mailbox is full",
        "NO APPEND failed: quota exceeded",
    ],
)
def test_full_account_answers_are_recognised(response: str) -> None:
    advice = storage_full(response)
    assert advice is not None and advice.retry_after_seconds is None


def test_ordinary_refusals_are_not_taken_for_a_full_account() -> None:
    assert storage_full("NO [TRYCREATE] Mailbox doesn't exist") is None
    assert storage_full("BAD Message too large") is None
