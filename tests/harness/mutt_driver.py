"""Runs the real mutt (Debian's package) non-interactively, in a pseudo-terminal.

mutt is a full-screen program: it needs a terminal, so it runs under :func:`pty.fork`
with its keys given by ``-e 'push ...'``; ``-n -F /dev/null`` keeps the user's and the
system's muttrc out of it.
"""

from __future__ import annotations

import os
import pty
import select
import shutil
import time
from pathlib import Path

MUTT_TIMEOUT = 30.0


def run_mutt(mailbox: Path, keys: str, *settings: str) -> bytes:
    """Open ``mailbox`` in mutt, type ``keys`` (mutt's push syntax) and wait for it to
    quit; returns what it drew. Raises when mutt is missing or does not finish."""
    mutt = shutil.which("mutt")
    if mutt is None:
        raise RuntimeError("mutt is not installed (scripts/apt-packages.txt installs it)")
    argv = [mutt, "-n", "-F", "/dev/null"]
    for setting in settings:
        argv += ["-e", setting]
    argv += ["-f", str(mailbox), "-e", f'push "{keys}"']
    pid, fd = pty.fork()
    if pid == 0:  # the child: mutt on the terminal's other end
        os.environ["TERM"] = "vt100"
        os.environ["TZ"] = "UTC"  # mutt reads From_ line times as local time
        os.execv(mutt, argv)
    screen = b""
    deadline = time.monotonic() + MUTT_TIMEOUT
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # EIO: mutt closed the terminal
                    chunk = b""
                if chunk:
                    screen += chunk
                    continue
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                if os.waitstatus_to_exitcode(status) != 0:
                    raise RuntimeError(f"mutt failed: {screen[-400:]!r}")
                return screen
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        raise RuntimeError(f"mutt did not finish: {screen[-400:]!r}")
    finally:
        os.close(fd)
