"""Whether a running Thunderbird holds a profile, checked without writing anything.

The lock's symbolic link (its process alive?), ``.parentlock``'s fcntl lock (asked of the
kernel with ``F_GETLK``), Windows' ``parent.lock`` held open; and which profile holds a path.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from advisor.platform_compat import fcntl_lock_holder, held_open_elsewhere, pid_alive


@dataclass(frozen=True)
class ProfileLock:
    """Whether a running Thunderbird holds the profile."""

    held: bool
    lock_file: Path | None = None
    pid: int | None = None
    detail: str = ""


def profile_lock(profile_dir: Path) -> ProfileLock:
    """Is ``profile_dir`` in use by a running Thunderbird? Checked without writing:

    * ``lock`` (Linux): a symbolic link to ``IP:+PID``; held while that process lives
      (a link left by a crash, whose process is gone, is stale);
    * ``.parentlock`` (Linux, macOS): held while a process has an fcntl lock on it;
    * ``parent.lock`` (Windows): held while another process keeps it open exclusively
      (only testable on Windows).
    """
    link = profile_dir / "lock"
    if link.is_symlink():
        with contextlib.suppress(OSError):
            target = os.readlink(link)
            match = re.search(r":\+?(\d+)$", target)
            if match:
                pid = int(match.group(1))
                if pid_alive(pid):
                    return ProfileLock(True, link, pid, f"{link} points to live process {pid}")
    parentlock = profile_dir / ".parentlock"
    if parentlock.is_file():
        holder = fcntl_lock_holder(parentlock)
        if holder is not None:
            return ProfileLock(True, parentlock, holder or None, f"process {holder} locks it")
    windows_lock = profile_dir / "parent.lock"
    if windows_lock.is_file() and held_open_elsewhere(windows_lock):
        return ProfileLock(True, windows_lock, None, "another program holds it open")
    return ProfileLock(False)


def find_profile_dir(path: Path) -> Path | None:
    """The profile directory holding ``path`` (itself or an ancestor), if any."""
    candidate = path if path.is_dir() else path.parent
    for directory in (candidate, *list(candidate.parents)[:5]):
        if (directory / "prefs.js").is_file() or any(
            (directory / name).exists() or (directory / name).is_symlink()
            for name in ("lock", ".parentlock", "parent.lock")
        ):
            return directory
    return None
