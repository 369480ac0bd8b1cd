"""Fake mail servers on loopback that misbehave on purpose.

A real server never announces a 4 GB literal, sends a line without end or floods
a client with untagged responses; these do, so the tests can check that
mailadvisor gives up with a clear error and bounded memory. They are the one
place where a fake stands in for Dovecot: a deliberately hostile peer.

:class:`HostileServer` accepts connections on a loopback address and runs a
script per connection (in its own thread), over implicit TLS with the Dovecot
fixture's certificate, or in plaintext. :class:`ImapScript` answers like a
minimal IMAP server until the command it should attack arrives; ``SmtpScript``
plays a submission server for the STARTTLS tests of ``mailadvisor test``.
"""

from __future__ import annotations

import base64
import contextlib
import re
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

from tests.harness.dovecot import TlsFiles

CHUNK = b"A" * 65536


def server_context(
    tls: TlsFiles, *, only: ssl.TLSVersion | None = None, weak: bool = False
) -> ssl.SSLContext:
    """A server context with the fixture's certificate; ``only``: a single TLS version."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    if weak:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # lets OpenSSL 3 speak TLS 1.0/1.1 again
    if only is not None:
        ctx.minimum_version = ctx.maximum_version = only
    return ctx


class Peer:
    """One accepted connection, seen from the server's side."""

    def __init__(self, sock: socket.socket, number: int) -> None:
        self.sock = sock
        self.number = number
        """1 for the first connection the server accepted, 2 for the next..."""
        self._buffer = b""
        self.received = bytearray()

    def send(self, data: bytes) -> bool:
        """Send; False once the client has hung up."""
        try:
            self.sock.sendall(data)
        except OSError:
            return False
        return True

    def readline(self, limit: int = 1 << 20) -> bytes | None:
        """One line with its CRLF; None when the client closed."""
        while b"\n" not in self._buffer:
            if len(self._buffer) > limit:
                return None
            try:
                data = self.sock.recv(65536)
            except OSError:
                return None
            if not data:
                return None
            self.received.extend(data)
            self._buffer += data
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line + b"\n"

    def read_exact(self, n: int) -> bytes | None:
        while len(self._buffer) < n:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return None
            if not data:
                return None
            self.received.extend(data)
            self._buffer += data
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out

    def start_tls(self, context: ssl.SSLContext) -> bool:
        """Server side of a STARTTLS handshake; False if the client gave up."""
        try:
            self.sock = context.wrap_socket(self.sock, server_side=True)
        except (OSError, ssl.SSLError):
            return False
        return True

    def flood(self, data: bytes = CHUNK, limit: int = 8 << 30) -> int:
        """Send ``data`` again and again until the client hangs up; bytes sent."""
        sent = 0
        while sent < limit and self.send(data):
            sent += len(data)
        return sent


Script = Callable[[Peer], None]


class HostileServer:
    """Runs ``script`` for every connection to ``host:port`` (a free port)."""

    def __init__(
        self, script: Script, *, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1"
    ) -> None:
        self.script = script
        self.tls = tls
        self.host = host
        self.connections = 0
        self.errors: list[BaseException] = []
        self._listener = socket.create_server((host, 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._peers: list[Peer] = []
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._accepter = threading.Thread(target=self._accept, daemon=True)
        self._accepter.start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                number = self.connections
            thread = threading.Thread(target=self._serve, args=(sock, number), daemon=True)
            with self._lock:
                self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket, number: int) -> None:
        sock.settimeout(20)
        peer = Peer(sock, number)
        with self._lock:
            self._peers.append(peer)
        try:
            if self.tls is not None and not peer.start_tls(self.tls):
                return
            self.script(peer)
        except Exception as exc:  # a broken script must show in the test, not vanish
            self.errors.append(exc)
        finally:
            with contextlib.suppress(OSError):
                peer.sock.shutdown(socket.SHUT_RDWR)
            peer.sock.close()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            peers, threads = list(self._peers), list(self._threads)
        for peer in peers:
            with contextlib.suppress(OSError):
                peer.sock.shutdown(socket.SHUT_RDWR)
        for t in threads:
            t.join(timeout=10)
        self._accepter.join(timeout=5)

    def __enter__(self) -> HostileServer:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


# --- IMAP ---------------------------------------------------------------------------

Attack = Callable[[Peer, bytes], None]
"""Called with the peer and the tag of the command being attacked."""

_COMMAND = re.compile(rb"^(\S+) (\S+)(?: (.*))?\r\n$", re.S)
_LITERAL = re.compile(rb"\{(\d+)(\+?)\}\r\n$")


@dataclass
class ImapScript:
    """A minimal IMAP server that turns hostile on ``attack_on`` (a command name).

    Enough of IMAP for mailadvisor's migration to reach any command: greeting,
    CAPABILITY, LOGIN, LIST, SELECT/EXAMINE, APPEND (literals honoured), LOGOUT.
    ``from_connection``: connections before this number are served honestly.
    """

    attack_on: str
    attack: Attack
    capabilities: str = "IMAP4rev1 AUTH=PLAIN LITERAL+"
    from_connection: int = 1
    commands: list[bytes] = field(default_factory=list)

    def __call__(self, peer: Peer) -> None:
        if not peer.send(b"* OK [CAPABILITY " + self.capabilities.encode() + b"] ready\r\n"):
            return
        while True:
            line = peer.readline()
            if line is None:
                return
            match = _COMMAND.match(line)
            if match is None:
                peer.send(b"* BAD what?\r\n")
                continue
            tag, name = match.group(1), match.group(2).upper()
            self.commands.append(name)
            if name.decode() == self.attack_on and peer.number >= self.from_connection:
                self.attack(peer, tag)
                return
            if not self._answer(peer, tag, name, line):
                return

    def _answer(self, peer: Peer, tag: bytes, name: bytes, line: bytes) -> bool:
        caps = self.capabilities.encode()
        if name == b"CAPABILITY":
            return peer.send(b"* CAPABILITY " + caps + b"\r\n" + tag + b" OK done\r\n")
        if name == b"LOGIN":
            return peer.send(tag + b" OK [CAPABILITY " + caps + b"] logged in\r\n")
        if name == b"LIST":
            return peer.send(b'* LIST (\\HasNoChildren) "/" INBOX\r\n' + tag + b" OK done\r\n")
        if name in (b"SELECT", b"EXAMINE"):
            return peer.send(
                b"* 0 EXISTS\r\n* OK [UIDVALIDITY 1] ok\r\n" + tag + b" OK [READ-WRITE] done\r\n"
            )
        if name == b"APPEND":
            while (literal := _LITERAL.search(line)) is not None:
                if not literal.group(2) and not peer.send(b"+ go\r\n"):
                    return False
                if peer.read_exact(int(literal.group(1))) is None:
                    return False
                rest = peer.readline()
                if rest is None:
                    return False
                line = rest
            return peer.send(tag + b" OK appended\r\n")
        if name == b"LOGOUT":
            peer.send(b"* BYE bye\r\n" + tag + b" OK done\r\n")
            return False
        return peer.send(tag + b" OK done\r\n")


def huge_literal(peer: Peer, tag: bytes) -> None:
    """Announce a 4 GB literal, then send its bytes for as long as the client reads."""
    if peer.send(b'* LIST () "/" {4294967296}\r\n'):
        peer.flood()


def endless_line(peer: Peer, tag: bytes) -> None:
    """Start a response line and never end it."""
    if peer.send(b'* LIST () "/" '):
        peer.flood()


def untagged_flood(peer: Peer, tag: bytes, count: int = 100_000) -> None:
    """``count`` untagged responses, then the tagged answer."""
    block = b"* 1 EXISTS\r\n" * 1000
    for _ in range(count // 1000):
        if not peer.send(block):
            return
    peer.send(tag + b" OK done\r\n")


# --- SMTP ---------------------------------------------------------------------------


@dataclass
class SmtpScript:
    """A submission server for STARTTLS tests: honest, or attacking from ``from_connection``.

    ``attack``: "strip" (no STARTTLS in EHLO), "refuse" (454 to STARTTLS), "inject"
    (bytes after 220), or "" (honest). After TLS it offers AUTH PLAIN and takes any login.
    """

    tls: ssl.SSLContext
    attack: str = ""
    from_connection: int = 1
    received_after_tls: bytearray = field(default_factory=bytearray)

    def __call__(self, peer: Peer) -> None:
        attacking = self.attack and peer.number >= self.from_connection
        if not peer.send(b"220 smtp.test ESMTP\r\n"):
            return
        secure = False
        while True:
            line = peer.readline()
            if line is None:
                return
            verb = line.split(b" ", 1)[0].strip().upper()
            if secure:
                self.received_after_tls.extend(line)
            if verb in (b"EHLO", b"HELO"):
                offers = [b"250-smtp.test", b"250-SIZE 1000000"]
                if not secure and not (attacking and self.attack == "strip"):
                    offers.append(b"250-STARTTLS")
                if secure:
                    offers.append(b"250-AUTH PLAIN")
                offers.append(b"250 8BITMIME")
                ok = peer.send(b"\r\n".join(offers) + b"\r\n")
            elif verb == b"STARTTLS" and not secure:
                if attacking and self.attack == "refuse":
                    ok = peer.send(b"454 TLS not available\r\n")
                    continue
                extra = b"250-AUTH PLAIN\r\n" if attacking and self.attack == "inject" else b""
                if not peer.send(b"220 go ahead\r\n" + extra):
                    return
                if not peer.start_tls(self.tls):
                    return
                secure = True
                continue
            elif verb == b"AUTH" and secure:
                ok = peer.send(b"235 2.7.0 accepted\r\n")  # any credentials: not its test
            elif verb == b"QUIT":
                peer.send(b"221 bye\r\n")
                return
            else:
                ok = peer.send(b"502 not here\r\n")
            if not ok:
                return


# --- sign-in with credentials beyond ASCII ------------------------------------------------

_QUOTED = re.compile(rb'"((?:[^"\\]|\\.)*)"')
_LITERAL_START = re.compile(rb"\{(\d+)(\+?)\}\r\n\Z")


@dataclass
class LoginScript(ImapScript):
    """A server for the sign-in tests: a LOGIN-only one of the old school, or a new one.

    ``login`` is what LOGIN gets when a string is a literal of 8-bit bytes: "ok";
    "no" (read, then refused as a wrong password would be); "bad" (read, then BAD, as
    servers that take ASCII only answer); "bad-first" (BAD instead of the go-ahead, so
    the literal never comes); "bye" (hangs up). ``credentials`` keeps the strings of
    every LOGIN and the decoded PLAIN message of every AUTHENTICATE, as received. With
    UTF8=ACCEPT among the capabilities it answers ENABLE and then lists a folder named
    in raw UTF-8.
    """

    attack_on: str = ""
    attack: Attack = field(default=lambda peer, tag: None)
    login: str = "ok"
    credentials: list[list[bytes]] = field(default_factory=list)
    utf8_enabled: bool = False
    refuse_enable: bool = False
    append_lines: list[bytes] = field(default_factory=list)
    """The first line of every APPEND (mailbox name and flags; no message bytes)."""

    def _answer(self, peer: Peer, tag: bytes, name: bytes, line: bytes) -> bool:
        caps = self.capabilities.encode()
        if name == b"LOGIN":
            return self._login(peer, tag, line.split(b" ", 2)[2])
        if name == b"AUTHENTICATE":
            parts = line.split()
            if len(parts) > 3:  # SASL-IR
                response = parts[3]
            else:
                if not peer.send(b"+ \r\n"):
                    return False
                answer = peer.readline()
                if answer is None:
                    return False
                response = answer.strip()
            self.credentials.append(base64.b64decode(response).split(b"\0"))
            return peer.send(tag + b" OK [CAPABILITY " + caps + b"] logged in\r\n")
        if name == b"APPEND":
            self.append_lines.append(line)
        if name == b"ENABLE" and self.refuse_enable:
            return peer.send(tag + b" NO not now\r\n")
        if name == b"ENABLE" and b"UTF8=ACCEPT" in line.upper():
            self.utf8_enabled = True
            return peer.send(b"* ENABLED UTF8=ACCEPT\r\n" + tag + b" OK enabled\r\n")
        if name == b"LIST" and self.utf8_enabled:
            folder = "Bücher".encode()
            return peer.send(
                b'* LIST (\\HasNoChildren) "/" INBOX\r\n'
                b'* LIST (\\HasNoChildren) "/" "' + folder + b'"\r\n' + tag + b" OK done\r\n"
            )
        return super()._answer(peer, tag, name, line)

    def _login(self, peer: Peer, tag: bytes, rest: bytes) -> bool:
        if self.login == "bye":  # hangs up at once, as a server with too many connections
            peer.send(b"* BYE Too many simultaneous connections\r\n")
            return False
        strings: list[bytes] = []
        eight_bit = False
        while len(strings) < 2:
            rest = rest.lstrip(b" ")
            quoted = _QUOTED.match(rest)
            literal = _LITERAL_START.match(rest)
            if quoted:
                strings.append(re.sub(rb"\\(.)", rb"\1", quoted.group(1)))
                rest = rest[quoted.end() :]
            elif literal:
                if self.login == "bad-first":
                    self.credentials.append(strings)
                    return peer.send(tag + b" BAD [CLIENTBUG] literals are not allowed here\r\n")
                if not literal.group(2) and not peer.send(b"+ go ahead\r\n"):
                    return False
                data = peer.read_exact(int(literal.group(1)))
                following = peer.readline()
                if data is None or following is None:
                    return False
                strings.append(data)
                eight_bit = eight_bit or not data.isascii()
                rest = following
            else:
                atom, _, rest = rest.partition(b" ")
                strings.append(atom.strip())
        self.credentials.append(strings)
        if eight_bit and self.login == "no":
            return peer.send(tag + b" NO [AUTHENTICATIONFAILED] Authentication failed.\r\n")
        if eight_bit and self.login == "bad":
            return peer.send(tag + b" BAD [CLIENTBUG] 8-bit characters are not allowed\r\n")
        caps = self.capabilities.encode()
        return peer.send(tag + b" OK [CAPABILITY " + caps + b"] logged in\r\n")
