"""One run at a time per destination mailbox: an exclusive lock per IMAP account.

Two runs moving mail into one account at once (an overlapping cron job, the wizard
started twice) each index the server before the other's uploads land and so upload
the same messages twice. ``mailadvisor migrate``, the wizard's migration (and every
batch job, which takes this same lock for its mailbox) hold this lock for the whole run.

The lock is keyed by the account, not by the profile: the server host (lower-cased,
without a trailing dot, IDNA-encoded, an IP address in its canonical form; no DNS
lookup), the port, and the user name it signs in with (case-folded: a false match
only makes a run wait, a miss could double mail). Two profiles for one account share it.

It is an operating-system lock (``flock`` on Unix, ``LockFileEx`` on Windows, through
the filelock library) on a file in the user's state directory, so the kernel releases
it when the process ends however it ends, ``kill -9`` included: there is no stale
lock to clean up. A JSON side file beside it names the holder (pid, host, start
time) for the message a second run shows; it is information only, never trusted
for the locking itself.

It protects one computer (one user's state directory). Runs on different machines
do not see each other's locks: the server-side index of :mod:`advisor.migration.run` keeps
a re-run from uploading again, see the README's "Exactly once".
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import os
import re
import socket
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import filelock
import platformdirs

from advisor.errors import MailadvisorError
from advisor.exitcodes import ExitStatus
from advisor.platform_compat import write_private

if TYPE_CHECKING:
    from advisor.connection.account import AccountAccess

POLL_SECONDS = 0.5
"""How often a waiting run tries again."""
_INFO_MAX = 4096


def default_lock_dir() -> Path:
    """Where the locks live: beside the journals, in the user's state directory."""
    return platformdirs.user_state_path("mailadvisor") / "locks"


def account_key(host: str, port: int, username: str) -> str:
    """The account as the lock knows it: the same for every spelling of one account."""
    name = host.strip().strip("[]").rstrip(".").lower()
    try:
        name = ipaddress.ip_address(name).compressed
    except ValueError:
        with contextlib.suppress(UnicodeError):
            name = name.encode("idna").decode("ascii")
    return f"{username.strip().casefold()}@{name}:{int(port)}"


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, as its side file says (any field may be unknown)."""

    pid: int | None = None
    host: str | None = None
    started: str | None = None
    """ISO 8601, UTC."""
    command: str | None = None

    def describe(self) -> str:
        parts = []
        if self.pid is not None:
            parts.append(f"pid {self.pid}")
        if self.host:
            parts.append(f"on {self.host}")
        if self.started:
            try:
                when = datetime.fromisoformat(self.started).strftime("%Y-%m-%d %H:%M:%S UTC")
            except ValueError:
                when = self.started
            parts.append(f"started {when}")
        return " ".join(parts)


class AccountBusyError(MailadvisorError):
    """Another mailadvisor run holds the lock of this account."""

    exit_status = ExitStatus.ACCOUNT_BUSY

    def __init__(self, account: str, holder: Holder | None, waited: float | None = None) -> None:
        self.account = account
        self.holder = holder
        who = holder.describe() if holder is not None else ""
        text = f"another mailadvisor run is moving mail into {account}"
        text += f" ({who})" if who else " (who is not known yet)"
        if waited:
            text += f", still after waiting {waited:g} s"
        super().__init__(text + "; only one run at a time may move mail into an account")


class AccountLock:
    """The lock of one account: :func:`account_lock` for a block, or
    :meth:`acquire`/:meth:`release` (the batch engine, per job)."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        *,
        account: str | None = None,
        command: str = "migrate",
        directory: Path | None = None,
    ) -> None:
        self.key = account_key(host, port, username)
        self.account = account or f"{username} on {host}:{port}"
        """How messages name the account."""
        self.command = command
        slug = re.sub(r"[^A-Za-z0-9@._-]+", "_", self.key)[:100]
        digest = hashlib.sha256(self.key.encode()).hexdigest()[:12]
        base = (directory or default_lock_dir()) / f"{slug}-{digest}"
        self.path = base.with_name(base.name + ".lock")
        self.info_path = base.with_name(base.name + ".holder.json")
        self._lock = filelock.FileLock(self.path, mode=0o600, thread_local=False)
        self.left_behind: Holder | None = None
        """Set by :meth:`acquire`: the holder a side file still named when the lock was
        free, i.e. a run that never let go (killed with -9, crashed, power lost). What
        it was sending may still be on its way into the server."""

    def holder(self) -> Holder | None:
        """Who holds it, from the side file; None when nothing (readable) is there."""
        try:
            with self.info_path.open("rb") as f:
                data = json.loads(f.read(_INFO_MAX))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict):
            return None
        pid = data.get("pid")
        text = {k: data.get(k) for k in ("host", "started", "command")}
        return Holder(
            pid if isinstance(pid, int) else None,
            *(v if isinstance(v, str) else None for v in text.values()),
        )

    def acquire(
        self, wait: float | None = 0.0, on_wait: Callable[[Holder | None], None] | None = None
    ) -> None:
        """Take the lock. ``wait``: seconds to wait for another run (0: not at all,
        None: as long as it takes); ``on_wait`` is called once, before waiting.
        Raises :class:`AccountBusyError` when it stays taken."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            self._lock.acquire(timeout=0)
        except filelock.Timeout:
            if wait is not None and wait <= 0:
                raise AccountBusyError(self.account, self.holder()) from None
            if on_wait is not None:
                on_wait(self.holder())
            try:
                self._lock.acquire(timeout=-1 if wait is None else wait, poll_interval=POLL_SECONDS)
            except filelock.Timeout:
                raise AccountBusyError(self.account, self.holder(), wait) from None
        # Released cleanly, the side file goes first: one still there was left behind.
        self.left_behind = self.holder()
        try:
            self._write_info()
        except BaseException:
            self._lock.release()
            raise

    def unfinished_run(self) -> str | None:
        """The run :attr:`left_behind` in words (for ``MigrationOptions.unfinished_run``)."""
        if self.left_behind is None:
            return None
        return self.left_behind.describe() or "who is not known"

    def release(self) -> None:
        if not self._lock.is_locked:
            return
        # The side file goes first, while the lock still guards it.
        with contextlib.suppress(OSError):
            self.info_path.unlink()
        self._lock.release()

    def _write_info(self) -> None:
        info = Holder(
            pid=os.getpid(),
            host=socket.gethostname(),
            started=datetime.now(UTC).isoformat(timespec="seconds"),
            command=f"mailadvisor {self.command}",
        )
        tmp = self.info_path.with_name(f"{self.info_path.name}.{os.getpid()}.tmp")
        write_private(tmp, json.dumps(asdict(info)))
        os.replace(tmp, self.info_path)  # a reader sees the old file or the new, never half


@contextlib.contextmanager
def account_lock(
    access: AccountAccess,
    *,
    command: str = "migrate",
    wait: float | None = 0.0,
    on_wait: Callable[[Holder | None], None] | None = None,
    directory: Path | None = None,
) -> Iterator[AccountLock]:
    """Hold the lock of ``access``'s account for a block: the one call every run makes.

    ``wait`` and ``on_wait`` as for :meth:`AccountLock.acquire`.
    """
    lock = AccountLock(
        access.target.host,
        access.target.port,
        access.username,
        account=f"{access.email} on {access.target.host}:{access.target.port}",
        command=command,
        directory=directory,
    )
    lock.acquire(wait, on_wait)
    try:
        yield lock
    finally:
        lock.release()
