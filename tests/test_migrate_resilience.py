"""Exactly once through crashes and dropped connections."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from advisor.cli import run
from tests.harness.cutting_proxy import CuttingProxy
from tests.harness.dovecot import DovecotServer
from tests.harness.mailgen import crlf, generate, write_maildir
from tests.harness.migrate_helpers import body_counts, write_profile

FOLDERS = [("INBOX",), ("Archive",), ("Sent",)]


def _journal_rows(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            return int(db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_kill_9_at_any_moment_then_rerun_gives_every_message_once(
    tmp_path: Path, dovecot: DovecotServer
) -> None:
    root = tmp_path / "Maildir"
    msgs = write_maildir(
        root, list(generate(600, FOLDERS, seed=11, sizes="small", without_message_id=0.1))
    )
    account = dovecot.add_user()
    profile, env = write_profile(tmp_path, dovecot, account, root)
    journal = tmp_path / "journal.sqlite"
    cmd = [
        sys.executable,
        "-m",
        "advisor",
        "migrate",
        "--profile",
        str(profile),
        "--journal",
        str(journal),
        "--json",
        "--batch-size",
        "7",
        "--connections",
        "3",
    ]
    full_env = {**os.environ, **env}
    killed_at = []
    for threshold in (30, 160, 330, 480):
        proc = subprocess.Popen(
            cmd, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if _journal_rows(journal) >= threshold:
                break
            time.sleep(0.005)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)  # mid-upload, mid-journal-batch
            killed_at.append(_journal_rows(journal))
        proc.wait()
        counts = body_counts(dovecot, account)
        assert max(counts.values(), default=0) == 1, "a killed run must never leave duplicates"
    assert killed_at, "the run was never killed mid-way: the test proved nothing"

    # One more kill, then the journal is lost too: the server-side check alone must do.
    proc = subprocess.Popen(cmd, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    for leftover in tmp_path.glob("journal.sqlite*"):
        leftover.unlink()

    done = subprocess.run(cmd, env=full_env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["verified"] is True
    counts = body_counts(dovecot, account)
    assert sorted(counts) == sorted(crlf(m.data) for m in msgs)
    assert set(counts.values()) == {1}


def test_dropped_connections_are_resumed_without_duplicates(
    tmp_path: Path, dovecot: DovecotServer, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "Maildir"
    msgs = write_maildir(
        root, list(generate(300, FOLDERS, seed=12, sizes="small", without_message_id=0.1))
    )
    account = dovecot.add_user()
    info = dovecot.info
    with CuttingProxy(("127.0.0.1", info.imaps_port), after_bytes=40_000, cuts=3) as proxy:
        profile, _ = write_profile(tmp_path, dovecot, account, root)
        text = profile.read_text().replace(f"port = {info.imaps_port}", f"port = {proxy.port}")
        profile.write_text(text)
        status = run(
            [
                "migrate",
                "--profile",
                str(profile),
                "--journal",
                str(tmp_path / "j.sqlite"),
                "--json",
                "--batch-size",
                "20",
            ]
        )
        report = json.loads(capsys.readouterr().out)
        assert proxy.cut == 3, "the proxy should have cut three upload connections"
    assert status == 0, report
    assert report["verified"] is True and report["failed"] == 0
    counts = body_counts(dovecot, account)
    assert sorted(counts) == sorted(crlf(m.data) for m in msgs)
    assert set(counts.values()) == {1}


def test_ctrl_c_says_what_was_done_and_how_to_resume(
    tmp_path: Path, dovecot: DovecotServer
) -> None:
    root = tmp_path / "Maildir"
    # Enough mail that the journal's first commit (after 0.5 s) comes well before the
    # end of the run, also on a loaded machine: a SIGINT after the run has ended proves
    # nothing.
    msgs = write_maildir(root, list(generate(1500, FOLDERS, seed=12, sizes="small")))
    account = dovecot.add_user()
    profile, env = write_profile(tmp_path, dovecot, account, root)
    journal = tmp_path / "journal.sqlite"
    cmd = [sys.executable, "-m", "advisor", "migrate", "--profile", str(profile),
           "--journal", str(journal), "--batch-size", "5", "--connections", "1"]  # fmt: skip
    full_env = {**os.environ, **env}
    proc = subprocess.Popen(
        cmd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline and _journal_rows(journal) < 20:
        time.sleep(0.005)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    flat = " ".join(err.split())
    assert "Stopped:" in flat and "messages were uploaded and recorded in the journal" in flat
    assert "Run the same command again to continue" in flat and "Traceback" not in err
    done = subprocess.run(
        [*cmd, "--json"], env=full_env, capture_output=True, check=False, text=True
    )
    assert done.returncode == 0, done.stderr
    counts = body_counts(dovecot, account)
    assert sorted(counts) == sorted(crlf(m.data) for m in msgs) and set(counts.values()) == {1}
