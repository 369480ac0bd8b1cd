"""After a run that did not end cleanly: let the server finish storing what it had sent.

A run killed (``kill -9``, a crash, power lost) just after a message's bytes had all
reached the server leaves an APPEND the server is still carrying out, its client gone.
Courier, for one, writes the message to the folder's ``tmp/`` and moves it in only once
it holds the folder's lock (``tmp/courier.lock``), which can take it seconds while the
killed run's other sessions hold or wait for that lock; meanwhile no SELECT, STATUS or
FETCH shows the message. A re-run that indexed the folder in that time would not find
it there and upload it a second time.

So such a re-run first waits until the server is quiet: no folder's message count or
UIDNEXT changing for :data:`QUIET_SECONDS`, at most :data:`LIMIT_SECONDS` (mail
arriving all the time keeps a folder changing; the run then goes on). A clean re-run
never waits.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import imapclient
import imapclient.exceptions

from advisor.plugins.types import ServerFolder

QUIET_SECONDS = 5.0
"""No change for this long: what was on its way has been stored. Courier was seen
storing a killed client's last message up to about 2 seconds after the kill."""
LIMIT_SECONDS = 30.0
POLL_SECONDS = 0.5
_NOT_THERE = {"\\noselect", "\\nonexistent"}

Snapshot = dict[str, tuple[int, int]]


@dataclass(frozen=True)
class Settled:
    waited: float
    """Seconds spent waiting."""
    quiet: bool
    """False: the folders were still changing when the limit came."""

    def note(self, why: str) -> str:
        """What the report says about the wait; ``why``: what ended without a clean end."""
        if self.quiet:
            return (
                f"{why}: waited {self.waited:.0f} s until the server's folders stopped "
                "changing, so that nothing that run had sent is uploaded twice"
            )
        return (
            f"{why}: the server's folders were still changing after {self.waited:.0f} s "
            "(new mail arriving?); went on"
        )


def folder_state(client: imapclient.IMAPClient, folders: Iterable[str]) -> Snapshot:
    """(MESSAGES, UIDNEXT) of each folder that answers STATUS."""
    state: Snapshot = {}
    for name in folders:
        try:
            status = client.folder_status(name, ["MESSAGES", "UIDNEXT"])
        except imapclient.exceptions.IMAPClientError:
            continue  # not selectable, or gone meanwhile
        state[name] = (int(status.get(b"MESSAGES", 0)), int(status.get(b"UIDNEXT", 0)))
    return state


def settle(
    client: imapclient.IMAPClient,
    folders: Iterable[ServerFolder],
    started: str | None,
    holder: str | None = None,
) -> str | None:
    """After a run that did not end cleanly, wait until the selectable ``folders`` are
    quiet; the report's note about it (None: every run ended cleanly, no wait).

    ``started``: the start of a run the journal saw begin and never end; ``holder``: who
    held the account's lock and never let go (the front end knows), if any.
    """
    if holder is not None:
        why = f"the previous run ({holder}) did not end cleanly"
    elif started is not None:
        why = f"the run started {started} did not end cleanly"
    else:
        return None
    names = [f.name for f in folders if not _NOT_THERE & {x.lower() for x in f.flags}]
    return wait_until_quiet(client, names).note(why)


def wait_until_quiet(
    client: imapclient.IMAPClient,
    folders: Iterable[str],
    *,
    quiet: float = QUIET_SECONDS,
    limit: float = LIMIT_SECONDS,
    poll: float = POLL_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Settled:
    """Wait until no folder of ``folders`` has changed for ``quiet`` seconds (at most
    ``limit``), asking the server with STATUS every ``poll`` seconds."""
    names = list(folders)
    start = clock()
    last = folder_state(client, names)
    changed = start
    while True:
        now = clock()
        if now - changed >= quiet:
            return Settled(now - start, True)
        if now - start >= limit:
            return Settled(now - start, False)
        sleep(min(poll, quiet - (now - changed), limit - (now - start)))
        state = folder_state(client, names)
        if state != last:
            last, changed = state, clock()


__all__ = [
    "LIMIT_SECONDS",
    "QUIET_SECONDS",
    "Settled",
    "folder_state",
    "settle",
    "wait_until_quiet",
]
