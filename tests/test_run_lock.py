"""The per-account run lock on its own: keys, holders, waiting, and a holder killed with -9."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from advisor.exitcodes import ExitStatus
from advisor.migration.run_lock import AccountBusyError, AccountLock, account_key


def test_every_spelling_of_one_account_is_one_key() -> None:
    one = account_key("imap.example.org", 993, "alex@example.org")
    assert account_key(" IMAP.Example.ORG. ", 993, "Alex@Example.org ") == one
    assert account_key("[::1]", 993, "a") == account_key("0:0::1", 993, "a")
    assert account_key("bücher.example", 993, "a") == account_key("xn--bcher-kva.example", 993, "a")
    assert account_key("imap.example.org", 143, "alex@example.org") != one
    assert account_key("imap.example.org", 993, "sam@example.org") != one
    assert account_key("imap2.example.org", 993, "alex@example.org") != one


def test_second_holder_is_refused_with_the_first_ones_pid_host_and_time(tmp_path: Path) -> None:
    first = AccountLock("Localhost", 993, "Alex", directory=tmp_path)
    second = AccountLock("localhost.", 993, "alex", directory=tmp_path, account="alex on here")
    first.acquire()
    try:
        assert first.info_path.exists()
        assert first.info_path.stat().st_mode & 0o777 == 0o600
        with pytest.raises(AccountBusyError) as caught:
            second.acquire()
        err = caught.value
        assert err.exit_status == ExitStatus.ACCOUNT_BUSY == 5
        assert err.holder is not None and err.holder.pid == os.getpid()
        text = str(err)
        assert text.startswith("another mailadvisor run is moving mail into alex on here (")
        assert f"pid {os.getpid()} on {socket.gethostname()} started 20" in text

        # Waiting a bounded time: called back once, then refused, saying it waited.
        seen = []
        started = time.monotonic()
        with pytest.raises(AccountBusyError, match=r"still after waiting 0\.6 s"):
            second.acquire(wait=0.6, on_wait=seen.append)
        assert time.monotonic() - started >= 0.6
        assert [h.pid if h else None for h in seen] == [os.getpid()]
    finally:
        first.release()
    assert not first.info_path.exists(), "the side file goes with the lock"
    second.acquire()  # free again at once
    second.release()


def test_a_holder_killed_with_minus_9_leaves_no_lock(tmp_path: Path) -> None:
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from advisor.migration.run_lock import AccountLock\n"
        "lock = AccountLock('localhost', 993, 'alex', directory=Path(sys.argv[1]))\n"
        "lock.acquire()\n"
        "print('held', flush=True)\n"
        "time.sleep(60)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "held\n"
        lock = AccountLock("localhost", 993, "alex", directory=tmp_path)
        with pytest.raises(AccountBusyError) as caught:
            lock.acquire()
        assert caught.value.holder is not None and caught.value.holder.pid == proc.pid
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()  # waits, and closes the pipe
    # The side file is still there (a dead run's), but the lock went with the process.
    assert lock.info_path.exists()
    lock.acquire()
    try:
        holder = lock.holder()
        assert holder is not None and holder.pid == os.getpid()
    finally:
        lock.release()


def test_waiting_gets_the_lock_when_the_holder_lets_go(tmp_path: Path) -> None:
    first = AccountLock("localhost", 993, "alex", directory=tmp_path)
    second = AccountLock("localhost", 993, "alex", directory=tmp_path)
    held, go = threading.Event(), threading.Event()

    def hold() -> None:  # another thread, as another run would be another process
        first.acquire()
        held.set()
        go.wait(10)
        time.sleep(0.3)
        first.release()

    thread = threading.Thread(target=hold)
    thread.start()
    assert held.wait(10)
    go.set()
    started = time.monotonic()
    second.acquire(wait=None)
    try:
        assert time.monotonic() - started >= 0.25
        holder = second.holder()
        assert holder is not None and holder.command == "mailadvisor migrate"
    finally:
        second.release()
        thread.join()
