"""A man-in-the-middle for the STARTTLS tests: it rewrites the plaintext phase, records every byte.

:class:`StarttlsMitm` listens on ``127.0.0.1`` and forwards each connection to a
real server (the Dovecot fixture's STARTTLS port). Its upstream side binds to
``127.0.0.2``: Dovecot treats a client whose address equals its own as secure and
would allow a plaintext login, which would hide a client that forgets TLS.

Until TLS starts, the proxy works line by line and applies an :class:`Attack`
(the classes of "Why TLS is better without STARTTLS", USENIX Security 2021):
STARTTLS taken out of the capabilities, STARTTLS answered with BAD by the proxy
itself, a PREAUTH greeting, bytes injected in the same write as the server's
go-ahead, and untagged responses or capabilities made up before TLS. Once the
server has said yes to STARTTLS, bytes pass unchanged (the TLS session is the
client's and the server's). Everything seen in both directions is kept, so a test
can search the client's bytes for the password in every form it could take.

IMAP and POP3 (``STLS``) are understood.
"""

from __future__ import annotations

import base64
import contextlib
import re
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

UPSTREAM_SOURCE = "127.0.0.2"


@dataclass(frozen=True)
class Attack:
    """How the proxy tampers with the plaintext phase (all off: an honest relay)."""

    strip_starttls: bool = False
    """Remove STARTTLS (POP3: STLS) from the greeting's and CAPABILITY's lists."""
    refuse_starttls: bytes | None = None
    """Answer the client's STARTTLS with this status (e.g. b"BAD") instead of forwarding it."""
    preauth: bool = False
    """Turn the server's ``* OK`` greeting into ``* PREAUTH``."""
    add_capabilities: tuple[str, ...] = ()
    """Extra capabilities put into every list the server sends before TLS."""
    before_ok: bytes = b""
    """Untagged lines sent just before the server's go-ahead (state learnt before TLS)."""
    inject_after_ok: bytes = b""
    """Bytes appended in the same write as the server's go-ahead (response injection)."""
    inject_separately: bool = False
    """Send ``inject_after_ok`` in a write of its own, right after the go-ahead."""
    from_connection: int = 1
    """Connections before this number (1, 2, ...) are relayed honestly."""


_IMAP_STARTTLS = re.compile(rb"^(\S+) STARTTLS\r\n$", re.I)
_IMAP_CAPS = re.compile(
    rb"^(\* CAPABILITY |\* (?:OK|PREAUTH) \[CAPABILITY )(.*?)(\].*)?\r\n$", re.I
)


class StarttlsMitm:
    """A threaded TCP proxy on 127.0.0.1 in front of ``upstream``, applying ``attack``."""

    def __init__(
        self,
        upstream: tuple[str, int],
        attack: Attack | None = None,
        *,
        protocol: str = "imap",
        source: str = UPSTREAM_SOURCE,
    ) -> None:
        if protocol not in ("imap", "pop3"):
            raise ValueError(f"unknown protocol {protocol!r}")
        self.upstream = upstream
        self.attack = attack or Attack()
        self.protocol = protocol
        self.source = source
        self.from_client = bytearray()
        """Every byte the client sent, in order, across all connections."""
        self.from_server = bytearray()
        """Every byte the server sent (before the proxy's changes)."""
        self.to_client = bytearray()
        """Every byte the client received (after the proxy's changes)."""
        self.connections = 0
        self.tls_started = 0
        """Connections on which the server agreed to STARTTLS and bytes then passed raw."""
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._accepter = threading.Thread(target=self._accept, daemon=True)
        self._accepter.start()

    # -- life cycle ------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(
                    self.upstream, timeout=10, source_address=(self.source, 0)
                )
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            for s in (client, server):  # line-by-line relaying must not wait for Nagle
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self.connections += 1
                self._sockets += [client, server]
                honest = self.connections < self.attack.from_connection
            _Relay(self, client, server, Attack() if honest else self.attack).start()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        self._listener.close()
        with self._lock:
            sockets, threads = list(self._sockets), list(self._threads)
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        for t in threads:
            t.join(timeout=5)
        self._accepter.join(timeout=5)

    def __enter__(self) -> StarttlsMitm:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- what the tests look at ------------------------------------------------------

    def client_sent_any(self, needles: list[bytes]) -> list[bytes]:
        """The needles found in what the client sent (empty: none crossed)."""
        with self._lock:
            seen = bytes(self.from_client)
        return [n for n in needles if n in seen]

    def _record(self, buffer: bytearray, data: bytes) -> None:
        with self._lock:
            buffer.extend(data)


class _Relay:
    """One proxied connection: two pumps, plaintext line by line until TLS starts."""

    def __init__(
        self, mitm: StarttlsMitm, client: socket.socket, server: socket.socket, attack: Attack
    ) -> None:
        self.mitm = mitm
        self.attack = attack
        self.client = client
        self.server = server
        self.to_client_lock = threading.Lock()
        self.client_raw = False
        self.server_raw = False
        self.awaiting_ok: bytes | None = None  # IMAP tag of STARTTLS (POP3: b"STLS")
        self.first_line = True

    def start(self) -> None:
        for target in (self._pump_client, self._pump_server):
            thread = threading.Thread(target=target, daemon=True)
            with self.mitm._lock:
                self.mitm._threads.append(thread)
            thread.start()

    def _send_client(self, data: bytes) -> None:
        with self.to_client_lock:
            self.client.sendall(data)
        self.mitm._record(self.mitm.to_client, data)

    def _hang_up(self) -> None:
        for s in (self.client, self.server):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    # -- client to server --------------------------------------------------------------

    def _pump_client(self) -> None:
        pending = b""
        try:
            while True:
                data = self.client.recv(65536)
                if not data:
                    break
                self.mitm._record(self.mitm.from_client, data)
                if self.client_raw:
                    self.server.sendall(data)
                    continue
                pending += data
                while not self.client_raw and b"\n" in pending:
                    line, _, pending = pending.partition(b"\n")
                    self._client_line(line + b"\n")
                if self.client_raw and pending:
                    self.server.sendall(pending)
                    pending = b""
        except OSError:
            pass
        self._hang_up()

    def _client_line(self, line: bytes) -> None:
        if self.mitm.protocol == "imap":
            match = _IMAP_STARTTLS.match(line)
            tag = match.group(1) if match else None
        else:
            tag = b"STLS" if line.strip().upper() == b"STLS" else None
        if tag is None:
            self.server.sendall(line)
            return
        if self.attack.refuse_starttls is not None:
            status = self.attack.refuse_starttls
            if self.mitm.protocol == "imap":
                self._send_client(tag + b" " + status + b" STARTTLS not available\r\n")
            else:
                self._send_client(b"-ERR STLS not available\r\n")
            return
        # What follows from the client is its TLS handshake: pass it through untouched.
        self.awaiting_ok = tag
        self.client_raw = True
        self.server.sendall(line)

    # -- server to client --------------------------------------------------------------

    def _pump_server(self) -> None:
        pending = b""
        try:
            while True:
                data = self.server.recv(65536)
                if not data:
                    break
                self.mitm._record(self.mitm.from_server, data)
                if self.server_raw:
                    self._send_client(data)
                    continue
                pending += data
                while not self.server_raw and b"\n" in pending:
                    line, _, pending = pending.partition(b"\n")
                    self._server_line(line + b"\n")
                if self.server_raw and pending:
                    self._send_client(pending)
                    pending = b""
        except OSError:
            pass
        self._hang_up()

    def _server_line(self, line: bytes) -> None:
        a = self.attack
        if self.first_line:
            self.first_line = False
            if a.preauth and line.startswith(b"* OK"):
                line = b"* PREAUTH" + line[4:]
        tag = self.awaiting_ok
        if tag is not None and self._is_go_ahead(line, tag):
            self.server_raw = True
            with self.mitm._lock:
                self.mitm.tls_started += 1
            if a.inject_separately:
                self._send_client(a.before_ok + line)
                self._send_client(a.inject_after_ok)
            else:
                # One write: a client that reads ahead gets the injected bytes in its buffer.
                self._send_client(a.before_ok + line + a.inject_after_ok)
            return
        self._send_client(self._rewrite_capabilities(line))

    def _is_go_ahead(self, line: bytes, tag: bytes) -> bool:
        if self.mitm.protocol == "imap":
            return line.upper().startswith(tag.upper() + b" OK")
        return line.startswith(b"+OK")

    def _rewrite_capabilities(self, line: bytes) -> bytes:
        a = self.attack
        if not (a.strip_starttls or a.add_capabilities):
            return line
        if self.mitm.protocol == "pop3":
            if a.strip_starttls and line.strip().upper() == b"STLS":
                return b""
            return line
        match = _IMAP_CAPS.match(line)
        if match is None:
            return line
        caps = match.group(2).split()
        if a.strip_starttls:
            caps = [c for c in caps if c.upper() != b"STARTTLS"]
        caps += [c.encode() for c in a.add_capabilities]
        return match.group(1) + b" ".join(caps) + (match.group(3) or b"") + b"\r\n"


def credential_forms(username: str, password: str) -> list[bytes]:
    """Every way the password could cross the wire in a login we might send.

    The raw and quoted password (LOGIN, USER/PASS) and SASL PLAIN in base64, with
    and without the user name; base64 of the password alone at each of the three
    alignments it can take inside a longer base64 string.
    """
    secret = password.encode()
    forms = [secret]
    for authz in (b"", username.encode()):
        forms.append(base64.b64encode(authz + b"\0" + username.encode() + b"\0" + secret))
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + secret)
        # Keep only the characters made of the password's bits alone (6 bits each).
        start, end = -(-8 * shift // 6), 8 * (shift + len(secret)) // 6
        forms.append(encoded[start:end])
    return [f for f in forms if len(f) >= 8]


def starttls_profile(
    directory: Path,
    *,
    email: str,
    username: str,
    port: int,
    ca_file: Path,
    password_env: str,
    source: Path,
    host: str = "localhost",
    security: str = "starttls",
) -> Path:
    """A profile for ``username`` on ``host:port`` with STARTTLS, reading the Maildir ``source``."""
    path = directory / f"profile-{username}-{port}.toml"
    path.write_text(
        f"""version = 1
[account]
email = "{email}"
provider = "generic"
[server]
host = "{host}"
port = {port}
security = "{security}"
username = "{username}"
ca_file = "{ca_file}"
[auth]
method = "password"
password_env = "{password_env}"
[source]
kind = "maildir"
path = "{source}"
"""
    )
    return path
