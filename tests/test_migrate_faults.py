"""Throttling and session faults as Microsoft and Gmail send them, through a fault proxy.

The proxy (tests/harness/fault_proxy.py) sits on the Dovecot fixture's plaintext listener so it
can read and rewrite IMAP lines; the profile names the provider whose plugin must
understand the lines ("outlook" or "gmail").
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from advisor.cli import run
from tests.harness.dovecot import Account, DovecotServer
from tests.harness.fault_proxy import FaultProxy
from tests.harness.mailgen import GeneratedMessage, crlf, generate, write_maildir
from tests.harness.migrate_helpers import body_counts, write_profile

FOLDERS = [("INBOX",), ("Archive",)]


def _setup(
    tmp_path: Path, dovecot: DovecotServer, n: int, seed: int
) -> tuple[Path, list[GeneratedMessage], Account]:
    root = tmp_path / "Maildir"
    msgs = write_maildir(
        root, list(generate(n, FOLDERS, seed=seed, sizes="small", without_message_id=0.1))
    )
    return root, msgs, dovecot.add_user()


def _profile_via(
    tmp_path: Path,
    dovecot: DovecotServer,
    account: Account,
    root: Path,
    proxy: FaultProxy,
    provider: str,
) -> Path:
    """A profile whose [server] is the proxy, on a plaintext link to Dovecot."""
    info = dovecot.info
    profile, _ = write_profile(tmp_path, dovecot, account, root, provider=provider)
    text = profile.read_text().replace(f"port = {info.imaps_port}", f"port = {proxy.port}")
    text = text.replace('security = "tls"', 'security = "none"\nallow_insecure = true')
    profile.write_text(text.replace(f'host = "{info.hostname}"', 'host = "127.0.0.1"'))
    return profile


def _migrate(
    profile: Path, journal: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, dict]:
    status = run(
        ["migrate", "--profile", str(profile), "--journal", str(journal), "--json", *extra]
    )
    return status, json.loads(capsys.readouterr().out)


def _assert_all_once(
    dovecot: DovecotServer, account: Account, msgs: list[GeneratedMessage]
) -> None:
    counts = body_counts(dovecot, account)
    assert sorted(counts) == sorted(crlf(m.data) for m in msgs)
    assert set(counts.values()) == {1}


def _target(dovecot: DovecotServer) -> tuple[str, int]:
    return dovecot.info.imap_plain_host, dovecot.info.imap_plain_port


def test_microsoft_throttling_waits_the_suggested_backoff_and_resumes(
    tmp_path: Path, dovecot: DovecotServer, capsys: pytest.CaptureFixture[str]
) -> None:
    root, msgs, account = _setup(tmp_path, dovecot, 60, seed=31)
    with FaultProxy(_target(dovecot), throttle_append=3, backoff_ms=200) as proxy:
        profile = _profile_via(tmp_path, dovecot, account, root, proxy, "outlook")
        status, report = _migrate(
            profile, tmp_path / "j.sqlite", capsys, "--connections", "1", "--batch-size", "5"
        )
        throttled = proxy.times("throttled")
        appends = proxy.times("append")
    assert status == 0, report
    assert len(throttled) == 1, "the proxy should have throttled one APPEND"
    after = [t for t in appends if t > throttled[0]]
    assert after, "the upload did not go on after the throttling"
    # Microsoft said 200 ms: no APPEND may follow sooner.
    assert after[0] - throttled[0] >= 0.2
    assert report["failed"] == 0 and report["verified"] is True
    assert report["uploaded"] + report["found_on_server"] == len(msgs)
    _assert_all_once(dovecot, account, msgs)


def test_gmail_too_many_connections_lowers_parallelism(
    tmp_path: Path, dovecot: DovecotServer, capsys: pytest.CaptureFixture[str]
) -> None:
    root, msgs, account = _setup(tmp_path, dovecot, 150, seed=32)
    limit = 3  # the control connection and two upload connections
    with FaultProxy(_target(dovecot), max_connections=limit) as proxy:
        profile = _profile_via(tmp_path, dovecot, account, root, proxy, "gmail")
        status, report = _migrate(
            profile, tmp_path / "j.sqlite", capsys, "--connections", "4", "--batch-size", "2"
        )
        refused = proxy.count("refused")
        peak = proxy.peak
    assert status == 0, report
    # Four upload connections planned, two turned away: no more attempts after that.
    assert refused == 2
    assert peak <= limit
    assert report["connections"] == 2, report["notes"]
    assert any("accepted only 2 upload connection" in n for n in report["notes"]), report
    assert report["failed"] == 0 and report["uploaded"] == len(msgs)
    _assert_all_once(dovecot, account, msgs)


def test_gmail_session_expired_reconnects_and_resumes(
    tmp_path: Path, dovecot: DovecotServer, capsys: pytest.CaptureFixture[str]
) -> None:
    root, msgs, account = _setup(tmp_path, dovecot, 80, seed=33)
    with FaultProxy(_target(dovecot), bye_append=4) as proxy:
        profile = _profile_via(tmp_path, dovecot, account, root, proxy, "gmail")
        status, report = _migrate(
            profile, tmp_path / "j.sqlite", capsys, "--connections", "2", "--batch-size", "4"
        )
        byes = proxy.times("bye")
        appends = proxy.times("append")
    assert status == 0, report
    assert len(byes) == 1
    assert [t for t in appends if t > byes[0]], "nothing was uploaded after the BYE"
    assert report["failed"] == 0 and report["verified"] is True
    assert report["uploaded"] + report["found_on_server"] == len(msgs)
    _assert_all_once(dovecot, account, msgs)


def test_gmail_overquota_stops_politely_and_a_rerun_finishes(
    tmp_path: Path, dovecot: DovecotServer, capsys: pytest.CaptureFixture[str]
) -> None:
    root, msgs, account = _setup(tmp_path, dovecot, 60, seed=34)
    journal = tmp_path / "j.sqlite"
    with FaultProxy(_target(dovecot), quota_after=4) as proxy:
        profile = _profile_via(tmp_path, dovecot, account, root, proxy, "gmail")
        status, report = _migrate(
            profile, journal, capsys, "--connections", "2", "--batch-size", "4"
        )
        refused = proxy.count("overquota")
        assert refused >= 1
        assert status == 1, report
        assert "resume tomorrow" in report["stopped_early"]
        # Left for tomorrow, not failed: nothing in the failures or the not-migrated mbox.
        assert report["failed"] == 0 and report["failures"] == []
        first = report["uploaded"]
        assert 0 < first < len(msgs)
        assert report["deferred"] >= 4  # at least the refused batch
        counts = body_counts(dovecot, account)
        assert sum(counts.values()) == first and set(counts.values()) == {1}

        proxy.quota_after = None  # a new day
        status, again = _migrate(profile, journal, capsys, "--connections", "2")
    assert status == 0, again
    assert again["stopped_early"] is None
    assert again["already_done"] == first
    assert again["uploaded"] + again["found_on_server"] == len(msgs) - first
    _assert_all_once(dovecot, account, msgs)
