"""A live POP3 account, download only: messages are retrieved, never deleted.

The connection comes from :attr:`ReaderOptions.extra`: ``host`` and ``username``
(required), ``port`` (995 for implicit TLS, else 110), ``security`` (``tls``, the
default; ``starttls``; ``none`` only with ``allow_insecure = "true"``), ``ca_file`` for a
private CA, ``timeout`` in seconds. The password is a constructor argument: it is
never part of the options, never stored, never in a message or an error.

TLS is verified as for IMAP (:func:`advisor.connection.imap.tls_context`): certificate
chain and host name, TLS 1.2 or later; STARTTLS (``STLS``) is enforced when chosen.

Reading sends only CAPA, STLS, USER, PASS (or AUTH PLAIN, for a user name or password
with characters outside ASCII: :func:`advisor.connection.password_login.pop3_login`), UIDL, LIST,
RETR and QUIT. ``DELE`` is refused by the client object itself, so not even a bug here could
delete mail; the verbs sent are kept in :attr:`Pop3Reader.commands_sent` for audit.
(Some servers, Dovecot among them, mark a retrieved message as seen in their own
store; that is the server's doing and deletes nothing.)

POP3 knows one mailbox and no flags: every message is in ``("INBOX",)``, without
flags (\\Seen cannot be known), its received date taken from its Received:/Date:
headers. Its identity is the UIDL; a server without UIDL gets a content hash instead.
Messages come as the server sends them: CRLF line endings, dot-unstuffed.
"""

from __future__ import annotations

import hashlib
import poplib
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import ClassVar

from advisor.connection.imap import tls_context
from advisor.connection.password_login import pop3_login
from advisor.connection.tls import describe_network_error, pop3_stls
from advisor.errors import ConnectError, TLSError, UsageError
from advisor.plugins.types import Security
from advisor.stores.base import (
    Problem,
    ReaderOptions,
    SourceFolder,
    SourceMessage,
    StoreReader,
)
from advisor.stores.message_files import INBOX, header_date

DEFAULT_TIMEOUT = 60.0
# Longest line accepted from the server: real mail has lines far over RFC 5322's 998.
MAX_LINE = 64 << 20
FORBIDDEN_COMMANDS = frozenset({"DELE"})
_TRUE = frozenset({"1", "true", "yes", "on"})


class _Guarded:
    """Mix-in for poplib clients: records each command verb and refuses DELE."""

    commands_sent: list[str]

    def _putcmd(self, line: str) -> None:
        verb = line.split(" ", 1)[0].upper()
        if verb in FORBIDDEN_COMMANDS:
            raise RuntimeError(f"mailadvisor never sends {verb}: POP3 reading is download-only")
        self.commands_sent.append(verb)
        super()._putcmd(line)  # type: ignore[misc]  # poplib's (untyped) private method

    def _getline(self) -> tuple[bytes, int]:
        # poplib's own drops a leading CR and refuses lines over 2048 bytes.
        file = self.file  # type: ignore[attr-defined]
        line: bytes = file.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise poplib.error_proto("line too long")
        if not line:
            raise poplib.error_proto("-ERR EOF")
        octets = len(line)
        if line.endswith(b"\r\n"):
            return line[:-2], octets
        if line.endswith(b"\n"):
            return line[:-1], octets
        return line, octets


class _POP3(_Guarded, poplib.POP3):
    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.commands_sent = []
        super().__init__(host, port, timeout)


class _POP3SSL(_Guarded, poplib.POP3_SSL):
    def __init__(self, host: str, port: int, timeout: float, context: ssl.SSLContext) -> None:
        self.commands_sent = []
        super().__init__(host, port, timeout=timeout, context=context)


class Pop3Reader(StoreReader):
    """Downloads every message of a POP3 mailbox, leaving the mailbox as it was."""

    kind: ClassVar[str] = "pop3"
    metadata_notes: ClassVar[tuple[str, ...]] = (
        "POP3 has one mailbox and no flags: everything goes to INBOX, unread.",
        "The received date comes from the Received:/Date: headers (POP3 has no arrival time).",
        "Messages are downloaded with RETR and never deleted from the server.",
    )

    def __init__(
        self,
        path: Path | None = None,
        options: ReaderOptions | None = None,
        *,
        password: str,
    ) -> None:
        options = options or ReaderOptions()
        extra = options.extra
        if any(key.lower() in ("password", "pass", "secret") for key in extra):
            raise UsageError("a POP3 password must not be put in the reader options")
        self.host = extra.get("host", "").strip()
        self.username = extra.get("username", "")
        if not self.host or not self.username:
            raise UsageError("POP3 needs a host and a username")
        try:
            self.security = Security(extra.get("security", Security.TLS.value).strip().lower())
        except ValueError:
            raise UsageError(
                f"POP3 security {extra.get('security')!r}: expected tls, starttls or none"
            ) from None
        default_port = poplib.POP3_SSL_PORT if self.security is Security.TLS else poplib.POP3_PORT
        try:
            self.port = int(extra.get("port", default_port))
            self.timeout = float(extra.get("timeout", DEFAULT_TIMEOUT))
        except ValueError:
            raise UsageError("POP3 port and timeout must be numbers") from None
        self.ca_file = Path(extra["ca_file"]) if extra.get("ca_file") else None
        self.allow_insecure = extra.get("allow_insecure", "").strip().lower() in _TRUE
        if self.security is Security.NONE and not self.allow_insecure:
            raise UsageError('POP3 security "none" needs allow_insecure')
        super().__init__(path if path is not None else Path(self.host), options)
        self._password = password
        self.commands_sent: list[str] = []
        """Command verbs sent by the last :meth:`messages` run (never arguments)."""

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    def __repr__(self) -> str:  # never show the password
        return f"Pop3Reader({self.username!r} at {self.where}, {self.security.value})"

    @classmethod
    def detect(cls, path: Path) -> bool:
        return False  # a live account is never found on disk

    def folders(self) -> Iterator[SourceFolder]:
        yield SourceFolder((INBOX,), None)

    def messages(self) -> Iterator[SourceMessage]:
        client = self._connect()
        self.commands_sent = client.commands_sent
        try:
            self._login(client)
            numbered = self._list(client)
            hashes: dict[str, int] = {}
            for position, (number, uid) in enumerate(numbered):
                try:
                    _, lines, _ = client.retr(number)
                except (OSError, poplib.error_proto) as exc:
                    raise ConnectError(
                        f"POP3 {self.where}: retrieving message {number} failed after "
                        f"{position} of {len(numbered)} messages: {_describe(exc)}"
                    ) from None
                yield self._message(lines, uid, number, hashes)
        finally:
            _close(client)

    def listing(self) -> list[tuple[str, int]]:
        """(UIDL, size) of every message, in maildrop order; nothing is downloaded."""
        client = self._connect()
        self.commands_sent = client.commands_sent
        try:
            self._login(client)
            numbered = self._list(client)
            try:
                _, lines, _ = client.list()
            except (OSError, poplib.error_proto) as exc:
                raise ConnectError(f"POP3 {self.where}: LIST failed: {_describe(exc)}") from None
            sizes = {}
            for line in lines:
                number, _, size = line.decode("ascii", "replace").partition(" ")
                if number.isdigit() and size.strip().isdigit():
                    sizes[int(number)] = int(size)
            return [(uid or "", sizes.get(number, -1)) for number, uid in numbered]
        finally:
            _close(client)

    @contextmanager
    def by_uidl(self) -> Iterator[Callable[[str], bytes | None]]:
        """One signed-in connection, for taking single messages by their UIDL: yields a
        function returning a message's bytes (CRLF, dot-unstuffed), or None when the
        server no longer has it. Only UIDL and RETR are sent; nothing is deleted."""
        client = self._connect()
        self.commands_sent = client.commands_sent
        try:
            self._login(client)
            numbers = {uid: number for number, uid in self._list(client) if uid}

            def retrieve(uidl: str) -> bytes | None:
                number = numbers.get(uidl)
                if number is None:
                    return None
                try:
                    _, lines, _ = client.retr(number)
                except (OSError, poplib.error_proto) as exc:
                    raise ConnectError(
                        f"POP3 {self.where}: retrieving message {number} failed: {_describe(exc)}"
                    ) from None
                return b"\r\n".join(lines) + b"\r\n" if lines else None

            yield retrieve
        finally:
            _close(client)

    # -- connection ------------------------------------------------------------------

    def _connect(self) -> _POP3 | _POP3SSL:
        ctx = tls_context(self.ca_file) if self.security is not Security.NONE else None
        client: _POP3 | _POP3SSL
        try:
            if self.security is Security.TLS:
                assert ctx is not None
                client = _POP3SSL(self.host, self.port, self.timeout, ctx)
            else:
                client = _POP3(self.host, self.port, self.timeout)
        except ssl.SSLCertVerificationError as exc:
            raise TLSError(
                f"the certificate of {self.where} is not trusted ({exc.verify_message}); if the "
                "server uses a private CA, set ca_file to its certificate"
            ) from None
        except ssl.SSLError as exc:
            raise TLSError(
                f"TLS with {self.where} failed ({exc.reason or exc}); is this an implicit-TLS "
                'port? Port 995 is, 110 needs security = "starttls"'
            ) from None
        except (OSError, poplib.error_proto) as exc:
            raise ConnectError(f"cannot connect to POP3 {self.where}: {_describe(exc)}") from None
        if self.security is Security.STARTTLS:
            assert ctx is not None
            # Unlike poplib's stls(), aborts on bytes injected before TLS; closes on failure.
            pop3_stls(client, ctx, f"POP3 {self.where}")
        return client

    def _login(self, client: poplib.POP3) -> None:
        try:
            pop3_login(client, self.username, self._password, f"the POP3 server {self.where}")
        except (OSError, poplib.error_proto) as exc:
            raise ConnectError(f"the connection broke during login: {_describe(exc)}") from None

    def _list(self, client: poplib.POP3) -> list[tuple[int, str | None]]:
        """(message number, UIDL or None) of every message."""
        try:
            _, lines, _ = client.uidl()
        except poplib.error_proto:
            lines = []
            try:
                count, _ = client.stat()
            except (OSError, poplib.error_proto) as exc:
                raise ConnectError(f"POP3 {self.where}: STAT failed: {_describe(exc)}") from None
            return [(n, None) for n in range(1, count + 1)]
        except OSError as exc:
            raise ConnectError(f"POP3 {self.where}: UIDL failed: {_describe(exc)}") from None
        numbered: list[tuple[int, str | None]] = []
        for line in lines:
            number, _, uid = line.decode("utf-8", "replace").strip().partition(" ")
            if number.isdigit():
                numbered.append((int(number), uid.strip() or None))
        return numbered

    def _message(
        self,
        lines: list[bytes],
        uid: str | None,
        number: int,
        hashes: dict[str, int],
    ) -> SourceMessage:
        data = b"\r\n".join(lines) + b"\r\n" if lines else b""
        problems: list[Problem] = []
        if uid is None:
            # No UIDL: the content is the only stable identity there is (copies numbered).
            uid = "sha256:" + hashlib.sha256(data).hexdigest()
            hashes[uid] = hashes.get(uid, 0) + 1
            if hashes[uid] > 1:
                uid = f"{uid}#{hashes[uid]}"
            problems.append(Problem("no-uidl", "the server has no UIDL; identity is a hash"))
        received = header_date(data)
        if received is None:
            problems.append(Problem("bad-date", "no usable Received: or Date: header"))
        if not data:
            problems.append(Problem("unreadable", f"message {number} is empty on the server"))
        return SourceMessage(
            folder=(INBOX,),
            data=data,
            flags=frozenset(),
            received=received,
            source_id=uid,
            problems=tuple(problems),
        )


def _close(client: poplib.POP3) -> None:
    try:
        client.quit()  # QUIT without DELE: the server removes nothing
    except (OSError, poplib.error_proto, EOFError):
        with suppress(OSError):
            client.close()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, poplib.error_proto) and exc.args:
        arg = exc.args[0]
        return arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)
    return describe_network_error(exc)
