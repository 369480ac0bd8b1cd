"""Two runs into one account: the second is refused or waits, never doubles the mail.

Real subprocesses (`python -m advisor migrate`) against the suite's Dovecot. The first
run is paused with SIGSTOP as soon as it holds the account's lock, so the second one
meets it mid-run every time (no race on who is faster), then resumed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import imapclient
import pytest

from advisor.cli import run
from advisor.migration.run_lock import AccountLock
from tests.harness.dovecot import Account, DovecotServer
from tests.harness.mailgen import crlf, generate, write_maildir
from tests.harness.migrate_helpers import body_counts, connect, write_profile

FOLDERS = [("INBOX",), ("Archive",)]


@pytest.fixture(autouse=True)
def _own_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Locks (and default journals) under tmp_path, for this process and its children."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    yield


def _cmd(profile: Path, journal: Path, *extra: str) -> list[str]:
    return [
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
        "5",
        "--connections",
        "2",
        *extra,
    ]


def _env(env: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **env, "PYTHONPATH": os.getcwd()}


def _in_use(dovecot: DovecotServer, account: Account) -> Account:
    """Open every folder once, as an account in use has them: Dovecot 2.3 creates them on
    first access and can panic (EDEADLK on its list index) when several connections race
    to create them at once, which would drop the control connection of the run."""
    with connect(dovecot, account) as client:
        for flags, _delim, name in client.list_folders():
            if b"\\Noselect" not in flags:
                client.select_folder(name, readonly=True)
    return account


def _lock(dovecot: DovecotServer, account: Account) -> AccountLock:
    return AccountLock(dovecot.info.hostname, dovecot.info.imaps_port, account.username)


def _start_and_pause(
    cmd: list[str], env: dict[str, str], lock: AccountLock
) -> subprocess.Popen[str]:
    """Start a run and stop it (SIGSTOP) the moment it holds the account's lock."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        holder = lock.holder()
        if holder is not None and holder.pid == proc.pid:
            proc.send_signal(signal.SIGSTOP)
            return proc
        time.sleep(0.002)
    proc.kill()
    raise AssertionError(f"the run never held the lock: {proc.communicate()}")


def _finish(proc: subprocess.Popen[str]) -> tuple[int, dict[str, object], str]:
    proc.send_signal(signal.SIGCONT)
    out, err = proc.communicate(timeout=240)
    return proc.returncode, json.loads(out) if out.strip() else {}, err


def _assert_once(dovecot: DovecotServer, account: Account, msgs: list[object]) -> None:
    counts = body_counts(dovecot, account)
    assert sorted(counts) == sorted(crlf(m.data) for m in msgs)  # type: ignore[attr-defined]
    assert set(counts.values()) == {1}, "a message is on the server more than once"


def test_same_profile_twice_the_second_run_is_refused_then_waits_for_nothing(
    tmp_path: Path, dovecot: DovecotServer
) -> None:
    root = tmp_path / "Maildir"
    msgs = write_maildir(root, list(generate(300, FOLDERS, seed=31, sizes="small")))
    account = _in_use(dovecot, dovecot.add_user())
    profile, env = write_profile(tmp_path, dovecot, account, root)
    journal = tmp_path / "journal.sqlite"
    cmd, full_env = _cmd(profile, journal), _env(env)
    first = _start_and_pause(cmd, full_env, _lock(dovecot, account))
    try:
        started = time.monotonic()
        second = subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=60)
        assert second.returncode == 5, second.stderr
        assert time.monotonic() - started < 30, "refused at once, not after waiting"
        assert second.stdout == ""
        err = " ".join(second.stderr.split())
        assert f"another mailadvisor run is moving mail into {account.email} on " in err
        assert f"(pid {first.pid} on {socket.gethostname()} started 20" in err
        assert "or with --wait to wait for it" in err

        # The plan of a dry run reads the same journal and server: it waits its turn too.
        plan = subprocess.run([*cmd, "--dry-run"], env=full_env, capture_output=True, text=True)
        assert plan.returncode == 5, plan.stderr

        # A bounded wait that runs out says so, with the same status.
        bounded = subprocess.run(
            [*cmd, "--wait-timeout", "1"], env=full_env, capture_output=True, text=True
        )
        assert bounded.returncode == 5, bounded.stderr
        assert "Waiting: another mailadvisor run" in bounded.stderr
        assert "still after waiting 1 s" in " ".join(bounded.stderr.split())
    finally:
        status, report, err = _finish(first)
    assert status == 0, err
    assert report["uploaded"] == len(msgs) and report["verified"] is True
    _assert_once(dovecot, account, msgs)


def test_two_profiles_for_one_account_collide_and_wait_uploads_nothing(
    tmp_path: Path, dovecot: DovecotServer
) -> None:
    root = tmp_path / "Maildir"
    msgs = write_maildir(root, list(generate(300, FOLDERS, seed=32, sizes="small")))
    account = _in_use(dovecot, dovecot.add_user())
    one, env = write_profile(tmp_path, dovecot, account, root)
    # The same account written another way, in another file, with its own journal.
    other = tmp_path / "other" / "profile.toml"
    other.parent.mkdir()
    other.write_text(
        one.read_text().replace(
            f'host = "{dovecot.info.hostname}"', f'host = "{dovecot.info.hostname.upper()}"'
        )
    )
    assert other.read_text() != one.read_text()
    full_env = _env(env)
    first = _start_and_pause(_cmd(one, tmp_path / "j1.sqlite"), full_env, _lock(dovecot, account))
    waiting = None
    try:
        refused = subprocess.run(
            _cmd(other, tmp_path / "j2.sqlite"), env=full_env, capture_output=True, text=True
        )
        assert refused.returncode == 5, refused.stderr
        assert f"pid {first.pid}" in refused.stderr

        # --wait: the second run waits for the first, then finds everything there.
        err_file = tmp_path / "waiting.err"
        with err_file.open("w") as err_out:
            waiting = subprocess.Popen(
                _cmd(other, tmp_path / "j2.sqlite", "--wait"),
                env=full_env,
                stdout=subprocess.PIPE,
                stderr=err_out,
                text=True,
            )
        deadline = time.monotonic() + 60
        while "Waiting:" not in err_file.read_text() and time.monotonic() < deadline:
            assert waiting.poll() is None, err_file.read_text()
            time.sleep(0.01)
        assert f"pid {first.pid}" in err_file.read_text()
    finally:
        status, report, err = _finish(first)
    assert status == 0, err
    assert report["uploaded"] == len(msgs)
    assert waiting is not None
    out, _ = waiting.communicate(timeout=240)
    assert waiting.returncode == 0, err_file.read_text()
    second = json.loads(out)
    assert second["uploaded"] == 0
    assert second["found_on_server"] == len(msgs)
    assert second["verified"] is True and second["extra_copies"] == 0
    _assert_once(dovecot, account, msgs)


def _journal_rows(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            return int(db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
    except sqlite3.Error:
        return 0


def test_a_run_killed_with_minus_9_does_not_block_the_next(
    tmp_path: Path, dovecot: DovecotServer
) -> None:
    root = tmp_path / "Maildir"
    msgs = write_maildir(root, list(generate(400, FOLDERS, seed=33, sizes="small")))
    account = _in_use(dovecot, dovecot.add_user())
    profile, env = write_profile(tmp_path, dovecot, account, root)
    journal = tmp_path / "journal.sqlite"
    cmd, full_env = _cmd(profile, journal), _env(env)
    lock = _lock(dovecot, account)
    proc = subprocess.Popen(cmd, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline and _journal_rows(journal) < 20:
        time.sleep(0.005)
    assert proc.poll() is None, "the run ended before it could be killed: the test proved nothing"
    holder = lock.holder()
    assert holder is not None and holder.pid == proc.pid
    proc.send_signal(signal.SIGKILL)  # mid-upload, holding the lock
    proc.wait()
    assert lock.info_path.exists(), "a killed run leaves its side file (information only)"

    started = time.monotonic()
    done = subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    assert "Waiting" not in done.stderr
    report = json.loads(done.stdout)
    assert report["verified"] is True and report["extra_copies"] == 0
    assert time.monotonic() - started < 120
    _assert_once(dovecot, account, msgs)
    assert not lock.info_path.exists()


def _append(client: imapclient.IMAPClient, folder: str, data: bytes) -> None:
    client.append(folder, data)


def test_the_closing_check_reports_extra_copies_as_verify_does(
    tmp_path: Path, dovecot: DovecotServer, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "Maildir"
    msgs = write_maildir(
        root, list(generate(60, FOLDERS, seed=34, sizes="small", without_message_id=0.3))
    )
    account = _in_use(dovecot, dovecot.add_user())
    profile, _ = write_profile(tmp_path, dovecot, account, root)
    args = ["migrate", "--profile", str(profile), "--journal", str(tmp_path / "j.sqlite")]
    assert run(args) == 0
    assert "Verified: every migrated message is on the server, once." in capsys.readouterr().out

    with_id = next(m for m in msgs if m.message_id and m.folder == ("INBOX",))
    no_id = next(m for m in msgs if not m.message_id and m.folder == ("Archive",))
    # Not from the source: same size, no Message-ID, one byte different. Not a copy.
    body = crlf(no_id.data)
    stranger = body[:-3] + (b"X" if body[-3:-2] != b"X" else b"Y") + body[-2:]
    assert len(stranger) == len(body) and stranger != body
    with connect(dovecot, account) as client:
        _append(client, "INBOX", crlf(with_id.data))  # behind the migration's back
        _append(client, "Archive", body)
        _append(client, "Archive", body)
        _append(client, "Archive", stranger)

    assert run(args) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "Verification: 3 extra copies: messages that are on the server more than once" in out
    assert "every migrated message is on the server" not in out

    assert run([*args, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["extra_copies"] == 3
    assert report["verified"] is False
    assert report["missing_after_verify"] == 0
    assert report["uploaded"] == 0, "extra copies are reported, never 'repaired' by uploading"

    # `mailadvisor verify` counts them the same way.
    assert run(["verify", "--profile", str(profile)]) == 1
    assert "0 missing, 3 extra copies" in " ".join(capsys.readouterr().out.split())
