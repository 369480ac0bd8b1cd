"""How many upload connections a server is best served with.

More connections hide the link's round trips, which matters most without LITERAL+:
every synchronising literal waits one round trip for the server's go-ahead. But
some servers serialise APPENDs into one folder with a lock that a second client
waits for by sleeping: Courier-IMAP dot-locks ``tmp/courier.lock`` in the folder
and retries after a whole second. On a fast link the server's own work is the
limit, and parallel connections into one folder only collide (measured on loopback:
one connection ~300 msg/s, four 30-130 msg/s). Over a slow link the round trip
dominates, collisions are rare, and four connections win (1.6x one).
"""

from __future__ import annotations

import time
from contextlib import suppress
from dataclasses import dataclass

import imapclient

DEFAULT_CONNECTIONS = 4
FAST_LINK_SECONDS = 0.010
"""Round trips shorter than this make the server's own work the limit."""


@dataclass(frozen=True)
class ConnectionPlan:
    connections: int
    note: str | None = None
    """Why fewer connections than usual, for the report."""
    select_target: bool = False
    """SELECT each folder before APPENDing into it, one message at a time (no
    MULTIAPPEND): Dovecot then keeps the folder open instead of opening it for every
    APPEND (measured: up to 3x faster over four connections). Not on Courier, which
    then rescans the selected folder after each APPEND (a third slower)."""


def folder_locking_server(client: imapclient.IMAPClient) -> str | None:
    """The name of a server known to make parallel APPENDs into a folder wait, or None.

    Read from the greeting, which is kept for TLS and plaintext connections (after
    STARTTLS it is forgotten, as it came unprotected: then nothing is known).
    """
    welcome = getattr(client, "welcome", b"") or b""
    if isinstance(welcome, str):
        welcome = welcome.encode("utf-8", "replace")
    if b"Courier-IMAP" in welcome:
        return "Courier-IMAP"
    return None


def round_trip(client: imapclient.IMAPClient, tries: int = 3) -> float:
    """The shortest of a few NOOP round trips, in seconds (inf if NOOP fails)."""
    best = float("inf")
    for _ in range(tries):
        start = time.perf_counter()
        with suppress(Exception):  # a server refusing NOOP is just not measured
            client.noop()
            best = min(best, time.perf_counter() - start)
    return best


def plan_connections(
    control: imapclient.IMAPClient, requested: int | None, provider_max: int | None
) -> ConnectionPlan:
    """Connections for the upload: the user's choice, else what suits the server and link.

    ``provider_max`` is the provider's limit on simultaneous connections (one stays
    for the control connection).
    """
    conns = requested or DEFAULT_CONNECTIONS
    if provider_max:
        conns = min(conns, max(1, provider_max - 1))
    note = None
    server = folder_locking_server(control)
    caps = {c.upper() for c in control.capabilities()}
    select_target = b"MULTIAPPEND" not in caps and server is None
    if requested is None and conns > 1 and server is not None:
        rtt = round_trip(control)
        if rtt < FAST_LINK_SECONDS:
            conns = 1
            note = (
                f"one upload connection: {server} makes parallel uploads into a folder "
                f"wait for its lock, and the link is fast ({rtt * 1000:.1f} ms round "
                "trip); --connections overrides this"
            )
    return ConnectionPlan(max(1, conns), note, select_target)
