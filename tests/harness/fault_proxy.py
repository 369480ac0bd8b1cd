"""A fault-injecting IMAP proxy for tests: it answers with providers' throttling lines.

It sits on a *plaintext* link (the Dovecot fixture's plaintext listener), reads the
client's commands line by line (literals included, so message bytes are never taken
for commands) and can, instead of forwarding a command:

- ``throttle_append``: answer the Nth APPEND with Microsoft's
  ``<tag> BAD Request is throttled. Suggested Backoff Time: N milliseconds`` and
  close the connection (the command never reaches the server);
- ``max_connections``: answer the LOGIN (or AUTHENTICATE) of a connection opened while
  K others are open with ``* BYE Too many simultaneous connections`` and close (Gmail
  counts an account's connections, so it can only say so once it knows the account);
- ``bye_append``: send ``* BYE Session expired, please login again.`` instead of
  forwarding the Nth APPEND, and close (Gmail ends sessions like this mid-run);
- ``quota_after``: from the Nth APPEND on, answer every APPEND with
  ``<tag> NO [OVERQUOTA] Account exceeded command or bandwidth limits`` (Gmail's
  daily upload allowance spent) and keep the connection open.

APPENDs are counted from 1 across all connections. Each fault fires once except the
quota, which lasts until ``quota_after`` is set to None. ``events`` records what
happened with a monotonic timestamp, for tests that check waits.

Server lines are forwarded whole (never split by an injected line); server literals
are not parsed, which is fine for upload connections (their answers carry none).
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from dataclasses import dataclass
from types import TracebackType

_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")
THROTTLE_LINE = b"BAD Request is throttled. Suggested Backoff Time: %d milliseconds"
TOO_MANY = b"* BYE Too many simultaneous connections"
SESSION_EXPIRED = b"* BYE Session expired, please login again."
OVERQUOTA = b"NO [OVERQUOTA] Account exceeded command or bandwidth limits"
GRACE_SECONDS = 0.05
"""A connection the client just closed may still be counted: wait this long for it."""


@dataclass
class Event:
    at: float
    connection: int
    what: str
    """"append" (forwarded), "throttled", "refused", "bye", "overquota"."""


class FaultProxy:
    def __init__(
        self,
        target: tuple[str, int],
        *,
        throttle_append: int | None = None,
        backoff_ms: int = 200,
        max_connections: int | None = None,
        bye_append: int | None = None,
        quota_after: int | None = None,
    ) -> None:
        self.target = target
        self.throttle_append = throttle_append
        self.backoff_ms = backoff_ms
        self.max_connections = max_connections
        self.bye_append = bye_append
        self.quota_after = quota_after
        self.appends = 0
        self.events: list[Event] = []
        self.open = 0
        """Connections open now that were not refused."""
        self.peak = 0
        """Most connections open at once that were not refused."""
        self._cond = threading.Condition()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._closed = False
        self._accepter = threading.Thread(target=self._accept, daemon=True)
        self._accepter.start()

    def count(self, what: str) -> int:
        with self._cond:
            return sum(1 for e in self.events if e.what == what)

    def times(self, what: str) -> list[float]:
        with self._cond:
            return [e.at for e in self.events if e.what == what]

    def _note(self, n: int, what: str) -> None:
        self.events.append(Event(time.monotonic(), n, what))

    def _accept(self) -> None:
        n = 0
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            n += 1
            upstream = socket.create_connection(self.target)
            with self._cond:
                self._sockets += [client, upstream]
                limit = self.max_connections
                if limit is not None:
                    self._cond.wait_for(lambda k=limit: self.open < k, timeout=GRACE_SECONDS)
                refused = limit is not None and self.open >= limit
                if not refused:
                    self.open += 1
                    self.peak = max(self.peak, self.open)
            conn = _Conn(self, n, client, upstream, refused)
            for target in (conn.client_to_server, conn.server_to_client):
                thread = threading.Thread(target=target, daemon=True)
                self._threads.append(thread)
                thread.start()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept() on Linux
        self._listener.close()
        with self._cond:
            sockets = list(self._sockets)
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)  # wakes the pumps (close alone would not)
            s.close()
        for t in self._threads:
            t.join(timeout=2)
        self._accepter.join(timeout=2)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class _Conn:
    """One client connection and its upstream twin."""

    def __init__(
        self,
        proxy: FaultProxy,
        n: int,
        client: socket.socket,
        upstream: socket.socket,
        refused: bool,
    ) -> None:
        self.proxy = proxy
        self.n = n
        self.client = client
        self.upstream = upstream
        self.refused = refused
        self.counted = not refused
        self.write_lock = threading.Lock()  # whole lines to the client, never interleaved

    def to_client(self, data: bytes) -> None:
        with self.write_lock:
            self.client.sendall(data)

    def hang_up(self) -> None:
        """Close both ways; the open count drops first, so a quick reconnect is let in."""
        self.release()
        for s in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def client_to_server(self) -> None:
        p = self.proxy
        try:
            reader = self.client.makefile("rb")
            with reader:
                while True:
                    line = reader.readline()
                    if not line:
                        break
                    parts = [line]
                    tag, _, rest = line.partition(b" ")
                    verb = rest.split(b" ", 1)[0].strip().upper()
                    if self.refused and verb in (b"LOGIN", b"AUTHENTICATE"):
                        with p._cond:
                            p._note(self.n, "refused")
                        self.to_client(TOO_MANY + b"\r\n")
                        break
                    action = None
                    if verb == b"APPEND":
                        with p._cond:
                            p.appends += 1
                            action = self._fault_for(p.appends)
                            p._note(self.n, action or "append")
                    if action in ("throttled", "bye"):
                        reply = (
                            tag + b" " + THROTTLE_LINE % p.backoff_ms
                            if action == "throttled"
                            else SESSION_EXPIRED
                        )
                        self.to_client(reply + b"\r\n")
                        break
                    # Read the rest of the command (its literals) before deciding to forward.
                    while (literal := _LITERAL.search(parts[-1])) is not None:
                        n = int(literal.group(1))
                        data = reader.read(n)
                        more = reader.readline()
                        if len(data) < n or not more:
                            return
                        parts += [data, more]
                    if action == "overquota":
                        self.to_client(tag + b" " + OVERQUOTA + b"\r\n")
                        continue
                    if verb == b"LOGOUT":
                        self.release()
                    self.upstream.sendall(b"".join(parts))
        except OSError:
            pass
        finally:
            self.hang_up()

    def release(self) -> None:
        """A LOGOUT frees the slot at once (the server forgets the session now)."""
        with self.proxy._cond:
            if self.counted:
                self.counted = False
                self.proxy.open -= 1
                self.proxy._cond.notify_all()

    def _fault_for(self, n: int) -> str | None:
        p = self.proxy
        if p.throttle_append == n:
            return "throttled"
        if p.bye_append == n:
            return "bye"
        if p.quota_after is not None and n >= p.quota_after:
            return "overquota"
        return None

    def server_to_client(self) -> None:
        try:
            reader = self.upstream.makefile("rb")
            with reader:
                while line := reader.readline():
                    self.to_client(line)
        except OSError:
            pass
        finally:
            self.hang_up()
