"""Opening verified IMAP connections: the one factory every IMAP user goes through.

Implicit TLS by default; STARTTLS only when chosen, and then enforced; no
encryption only when the caller says so explicitly. Certificates are always
verified (chain and host name), TLS 1.2 or later. Failures become
:class:`ConnectError`, :class:`TLSError` or :class:`AuthenticationError` with a
message that says what to do, and never contain the secret.

STARTTLS is done here rather than by imaplib, because imaplib's ``starttls``
silently drops bytes injected after the server's go-ahead and keeps every
untagged response from before TLS. Here a PREAUTH greeting, a missing STARTTLS
capability, a refused STARTTLS and injected bytes each abort with
:class:`TLSError`; after the handshake everything learnt before TLS (capabilities,
untagged responses, the greeting) is dropped and CAPABILITY asked again.

Every connection is bounded from its first byte (:class:`ImapLimits`): a line,
a literal, the untagged responses kept, and the bytes of one response. A server
that goes beyond raises :class:`ProtocolError` and is hung up on.
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import imapclient
import imapclient.exceptions
import imapclient.imap4
import imapclient.tls

from advisor.connection import password_login
from advisor.connection.limits import TooManyConnections, too_many_connections
from advisor.connection.tls import (
    certificate_error,
    describe_network_error,
    switch_to_tls,
    tls_context,
)
from advisor.errors import AuthenticationError, ConnectError, ProtocolError, TLSError, UsageError
from advisor.oauth import sasl
from advisor.plugins.types import Security

__all__ = [
    "DEFAULT_TIMEOUT",
    "ImapLimits",
    "ImapTarget",
    "SecureIMAPClient",
    "connect",
    "imap_oauth2_session",
    "imap_session",
    "login",
    "no_delay",
    "oauth2_login",
    "quick_ack",
    "tls_context",
]

DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class ImapLimits:
    """What one connection accepts from a server before giving up on it."""

    max_line: int = 16 * 1024 * 1024
    """Longest response line. imaplib's own 1 MB is too short for SEARCH over a
    folder of 150,000 messages; 16 MB holds the UIDs of two million."""
    max_literal: int = 256 * 1024 * 1024
    """Largest literal (one message body, one folder name...)."""
    max_response: int = 1024 * 1024 * 1024
    """Bytes of lines and literals received for one command."""
    max_untagged: int = 50_000
    """Untagged responses kept unread at once (a FETCH of 1,000 messages keeps 1,000)."""


@dataclass(frozen=True)
class ImapTarget:
    """Where and how to connect."""

    host: str
    port: int
    security: Security = Security.TLS
    ca_file: Path | None = None
    allow_insecure: bool = False
    timeout: float = DEFAULT_TIMEOUT
    limits: ImapLimits = field(default_factory=ImapLimits)


def no_delay(sock: socket.socket) -> None:
    """Switch Nagle's algorithm off: IMAP writes a command, then waits for an answer.

    With Nagle a short write (a literal's closing CRLF, the next command) waits for
    the ACK of the previous one, which the server delays by up to 40 ms because it
    has nothing to say until the command is complete: 1,000 APPENDs took 27 s.
    """
    with suppress(OSError):  # not TCP (a test's socket pair): nothing to switch off
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only


def quick_ack(sock: socket.socket) -> None:
    """Acknowledge what arrives next at once, not up to 40 ms later (Linux; else nothing).

    A server that writes two short answers in a row without TCP_NODELAY (Courier:
    an APPEND's ``OK``, then the next APPEND's ``+ OK``) holds the second until the
    first is acknowledged, and a client that only waits delays that ACK. The kernel
    leaves quick-ACK mode by itself, so this is called before each wait.
    """
    if _QUICKACK is not None:
        with suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)


class _Bounded:
    """Mix-in for imaplib's IMAP4 classes: every read is bounded (see :class:`ImapLimits`)."""

    # Set by the subclasses' __init__ before imaplib connects and reads the greeting.
    _limits: ImapLimits
    _where: str
    _response_bytes: int
    file: Any
    sock: socket.socket
    untagged_responses: dict[str, list[Any]]

    def open(self, host: str = "", port: int = 143, timeout: float | None = None) -> None:
        super().open(host, port, timeout)  # type: ignore[misc]
        no_delay(self.sock)

    def _command(self, name: str, *args: Any) -> Any:
        self._response_bytes = 0
        return super()._command(name, *args)  # type: ignore[misc]

    def readline(self) -> bytes:
        limit = self._limits.max_line
        line: bytes = self.file.readline(limit + 1)
        if len(line) > limit:
            self._refuse(f"sent a line longer than {limit:,} bytes")
        self._count(len(line))
        return line

    def read(self, size: int) -> bytes:
        if size > self._limits.max_literal:
            self._refuse(
                f"announced a literal of {size:,} bytes (at most "
                f"{self._limits.max_literal:,} are accepted)"
            )
        self._count(size)
        data: bytes = self.file.read(size)
        return data

    def _append_untagged(self, typ: str, dat: Any) -> None:
        super()._append_untagged(typ, dat)  # type: ignore[misc]
        kept = sum(map(len, self.untagged_responses.values()))
        if kept > self._limits.max_untagged:
            self._refuse(f"sent more than {self._limits.max_untagged:,} untagged responses")

    def _count(self, n: int) -> None:
        self._response_bytes += n
        if self._response_bytes > self._limits.max_response:
            self._refuse(f"sent more than {self._limits.max_response:,} bytes for one command")

    def _refuse(self, what: str) -> NoReturn:
        # Hang up at once: a later LOGOUT must not read more of the flood.
        with suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        raise ProtocolError(
            f"{self._where} {what}; mailadvisor stopped reading and closed the connection "
            "(a broken or hostile server)"
        )


class _BoundedIMAP4(_Bounded, imapclient.imap4.IMAP4WithTimeout):  # type: ignore[misc]
    def __init__(
        self, host: str, port: int, timeout: float | None, limits: ImapLimits, where: str
    ) -> None:
        self._limits, self._where, self._response_bytes = limits, where, 0
        super().__init__(host, port, timeout)


class _BoundedIMAP4TLS(_Bounded, imapclient.tls.IMAP4_TLS):  # type: ignore[misc]
    def __init__(
        self,
        host: str,
        port: int,
        context: ssl.SSLContext | None,
        timeout: float | None,
        limits: ImapLimits,
        where: str,
    ) -> None:
        self._limits, self._where, self._response_bytes = limits, where, 0
        super().__init__(host, port, context, timeout)


class SecureIMAPClient(imapclient.IMAPClient):  # type: ignore[misc]
    """An :class:`imapclient.IMAPClient` whose imaplib connection is bounded from the start."""

    def __init__(self, target: ImapTarget, context: ssl.SSLContext | None) -> None:
        self._target = target
        super().__init__(
            target.host,
            port=target.port,
            ssl=target.security is Security.TLS,
            ssl_context=context,
            timeout=target.timeout,
        )
        if not logging.getLogger("imapclient.imaplib").isEnabledFor(logging.DEBUG):
            # imapclient turns imaplib's tracing fully on, which builds a repr() of every
            # line and literal (a 4x copy of each message) even when nobody logs it.
            self._imap.debug = 0

    utf8_enabled = False
    """True once the server accepted ENABLE UTF8=ACCEPT: folder names travel in UTF-8."""

    def use_utf8(self) -> None:
        """Speak UTF-8 from now on (after ENABLE UTF8=ACCEPT was accepted)."""
        self.utf8_enabled = True
        self._imap._mode_utf8()

    def _normalise_folder(self, folder_name: str | bytes) -> Any:
        if not self.utf8_enabled:
            return super()._normalise_folder(folder_name)
        if isinstance(folder_name, bytes):
            folder_name = folder_name.decode("utf-8")
        _refuse_controls(folder_name)
        return '"' + folder_name.replace("\\", "\\\\").replace('"', '\\"') + '"'

    def _proc_folder_list(self, folder_data: Any) -> Any:
        if not self.utf8_enabled:
            return super()._proc_folder_list(folder_data)
        self.folder_encode = False  # the names come as UTF-8 bytes: decode them as such
        try:
            listed = super()._proc_folder_list(folder_data)
        finally:
            self.folder_encode = True
        return [
            (flags, delim, name.decode("utf-8", "replace") if isinstance(name, bytes) else name)
            for flags, delim, name in listed
        ]

    def _create_IMAP4(self) -> Any:  # imapclient calls this to open the connection
        t = self._target
        where = f"{t.host}:{t.port}"
        connect_timeout = getattr(self._timeout, "connect", None)
        if t.security is Security.TLS:
            return _BoundedIMAP4TLS(
                t.host, t.port, self.ssl_context, connect_timeout, t.limits, where
            )
        return _BoundedIMAP4(t.host, t.port, connect_timeout, t.limits, where)


def _refuse_controls(name: str) -> None:
    # Modified UTF-7 turns control characters into base64; raw UTF-8 would carry them
    # into the command. Source names are sanitised before; a server's could hold them.
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise ProtocolError(
            f"a folder name holds a control character ({name!r}), which cannot be sent on "
            "this UTF-8 connection without breaking the command"
        )


def connect(target: ImapTarget) -> imapclient.IMAPClient:
    """Connect and secure the channel as ``target`` says; not yet logged in."""
    if target.security is Security.NONE and not target.allow_insecure:
        raise UsageError('security = "none" needs allow_insecure = true')
    where = f"{target.host}:{target.port}"
    ctx = tls_context(target.ca_file) if target.security is not Security.NONE else None
    try:
        client = SecureIMAPClient(target, ctx)
    except ssl.SSLCertVerificationError as exc:
        raise certificate_error(where, exc) from None
    except ssl.SSLError as exc:
        raise TLSError(
            f"TLS with {where} failed ({exc.reason or exc}); "
            'is this an implicit-TLS port? Port 993 is, 143 needs security = "starttls"'
        ) from None
    except (socket.gaierror, ConnectionError, TimeoutError, OSError) as exc:
        raise ConnectError(f"cannot connect to {where}: {describe_network_error(exc)}") from None
    except imapclient.exceptions.IMAPClientError as exc:
        if target.security is Security.TLS:
            raise ConnectError(f"{where} did not answer like an IMAP server: {exc}") from None
        # What it said came before any TLS: anyone on the way could have written it.
        raise ConnectError(
            f"{where} did not answer like an IMAP server (its words are not shown: "
            "they were not protected by TLS)"
        ) from None

    if target.security is Security.STARTTLS:
        assert ctx is not None
        _starttls(client, ctx, where)
    return client


def _starttls(client: imapclient.IMAPClient, ctx: ssl.SSLContext, where: str) -> None:
    """Upgrade to TLS or raise :class:`TLSError`; then forget everything said before TLS."""
    imap: Any = client._imap
    try:
        if imap.state != "NONAUTH":
            raise TLSError(
                f"{where} greeted with PREAUTH (already signed in, without TLS); a session "
                "that skips STARTTLS is what an attacker stripping encryption would offer, "
                'so mailadvisor stopped. Use security = "tls" (port 993) if the server has it'
            )
        if "STARTTLS" not in imap.capabilities:
            raise TLSError(
                f"{where} does not offer STARTTLS, so the connection cannot be "
                'secured; use security = "tls" (port 993) if the server has it'
            )
        try:
            typ, _data = imap._simple_command("STARTTLS")
        except imapclient.exceptions.IMAPClientError:
            typ = "BAD"  # imaplib raises on BAD; its text came before TLS and is not shown
        if typ != "OK":
            raise TLSError(
                f"{where} refused STARTTLS ({typ}); the password is never sent without TLS. "
                "A server that offers STARTTLS and then refuses it may be under attack: "
                'try another network, and prefer security = "tls" (port 993)'
            )
        imap.sock = switch_to_tls(imap.sock, imap.file, ctx, client.host, where)
        imap.file = imap.sock.makefile("rb")
        imap._tls_established = True
        # RFC 3501 6.2.1 / RFC 2595 3.1: discard what came before TLS and ask again.
        imap.untagged_responses = {}
        imap.welcome = b""
        imap._get_capabilities()
        client._starttls_done = True
        client._cached_capabilities = None
    except ConnectError:  # TLSError, or ProtocolError from the CAPABILITY over TLS
        _abandon(client)
        raise
    except ssl.SSLCertVerificationError as exc:
        _abandon(client)
        raise certificate_error(where, exc) from None
    except (ssl.SSLError, OSError) as exc:
        _abandon(client)
        raise TLSError(f"STARTTLS with {where} failed: {describe_network_error(exc)}") from None
    except imapclient.exceptions.IMAPClientError:
        _abandon(client)
        raise TLSError(f"STARTTLS with {where} failed: no usable answer to CAPABILITY") from None


def _abandon(client: imapclient.IMAPClient) -> None:
    """Hang up without LOGOUT: the peer failed the STARTTLS phase and gets no more words."""
    with suppress(Exception):
        client.shutdown()


def login(client: imapclient.IMAPClient, username: str, password: str) -> None:
    """Log in; :class:`AuthenticationError` names the user, never the password.

    ASCII credentials go by LOGIN; any others by AUTHENTICATE PLAIN in UTF-8, or LOGIN
    with literals where the server has no SASL PLAIN (:mod:`advisor.connection.password_login`).
    """
    eight_bit = not password_login.ascii_only(username, password)
    try:
        if eight_bit:
            password_login.imap_utf8_login(client, username, password)
        else:
            client.login(username, password)
    except imapclient.exceptions.LoginError as exc:
        said = str(exc).removeprefix("b'").removesuffix("'")
        if too_many_connections(said):  # Dovecot: NO [LIMIT] Maximum number of connections
            raise TooManyConnections(said.replace(password, "***") if password else said) from None
        bye = getattr(client._imap, "untagged_responses", {}).get("BYE")
        if bye:
            # Not a refusal of the credentials: the server hung up ("Too many simultaneous
            # connections"); its words let the provider plugin say what to do.
            words = bye[-1].decode("utf-8", "replace")
            if password:
                words = words.replace(password, "***")
            if too_many_connections(words):
                raise TooManyConnections(words) from None
            raise ConnectError(f"the server closed the connection during login: {words}") from None
        if isinstance(exc, password_login.ImapLoginRefused) and exc.by_login:
            raise password_login.refused_8bit("IMAP", "the server", username) from None
        hint = f" {password_login.ADVICE}" if eight_bit else ""
        raise AuthenticationError(
            f"the server refused the login for {username!r}: check the user name and password "
            f"(for Gmail and Microsoft, an app password or OAuth2 is needed).{hint}"
        ) from None
    except (OSError, imapclient.exceptions.IMAPClientError) as exc:
        raise ConnectError(
            f"the connection broke during login: {describe_network_error(exc)}"
        ) from None
    if not username.isascii():
        _enable_utf8(client)


def _enable_utf8(client: imapclient.IMAPClient) -> None:
    """ENABLE UTF8=ACCEPT (RFC 6855) for an internationalised user name, where offered.

    Only a :class:`SecureIMAPClient` does it: it then sends and reads folder names in
    UTF-8 rather than modified UTF-7, as the extension requires.
    """
    if not isinstance(client, SecureIMAPClient):
        return
    try:
        caps = {bytes(c).upper() for c in client.capabilities()}
        if not {b"ENABLE", b"UTF8=ACCEPT"} <= caps:
            return
        enabled = client.enable("UTF8=ACCEPT")
    except (OSError, imapclient.exceptions.IMAPClientAbortError) as exc:
        raise ConnectError(
            f"the connection broke after login: {describe_network_error(exc)}"
        ) from None
    except imapclient.exceptions.IMAPClientError:
        return  # refused: the session goes on in modified UTF-7, as without the extension
    if b"UTF8=ACCEPT" in {bytes(e).upper() for e in enabled}:
        client.use_utf8()


def oauth2_login(
    client: imapclient.IMAPClient,
    username: str,
    access_token: str,
    *,
    host: str,
    port: int,
    mechanism: str | Sequence[str] = sasl.MECHANISMS,
) -> str:
    """Sign in with an OAuth2 access token (XOAUTH2 or OAUTHBEARER); returns the mechanism.

    ``mechanism`` is one name or a preference list; the first one the server
    offers is used. A refusal becomes :class:`AuthenticationError` explaining the
    server's JSON status, never showing the token. A LIST follows at once:
    Microsoft may accept a token for another mailbox and fail only the next command.
    """
    wanted = [mechanism] if isinstance(mechanism, str) else list(mechanism)
    try:
        caps = {c.decode("ascii", "replace").upper() for c in client.capabilities()}
    except (OSError, imapclient.exceptions.IMAPClientError) as exc:
        raise ConnectError(
            f"the connection broke before sign-in: {describe_network_error(exc)}"
        ) from None
    offered = sorted(c[5:] for c in caps if c.startswith("AUTH="))
    usable = [m.upper() for m in wanted if f"AUTH={m.upper()}" in caps]
    if not usable:
        raise AuthenticationError(
            f"{host}:{port} does not offer OAuth2 sign-in ({' or '.join(wanted)}); it offers: "
            + (", ".join(offered) or "no SASL mechanism")
        )
    chosen = usable[0]
    exchange = sasl.OAuthExchange(
        chosen, sasl.initial_response(chosen, username, access_token, host, port)
    )
    try:
        client.sasl_login(chosen, exchange)
    except imapclient.exceptions.LoginError as exc:
        reason = (
            exchange.failure.explain()
            if exchange.failure is not None
            else "the server refused the access token"
        )
        said = _redact(str(exc), access_token)
        raise AuthenticationError(
            f"the server refused the OAuth2 sign-in ({chosen}) for {username!r}: {reason}. "
            f"Server said: {said[:200]}"
        ) from None
    except (OSError, imapclient.exceptions.IMAPClientError) as exc:
        why = _redact(describe_network_error(exc), access_token)
        raise ConnectError(f"the connection broke during sign-in: {why}") from None
    finally:
        exchange.forget()
    try:
        client.list_folders("", "INBOX")
    except (OSError, imapclient.exceptions.IMAPClientError) as exc:
        raise AuthenticationError(
            f"the server accepted the OAuth2 sign-in for {username!r} but refused the next "
            f"command ({_redact(str(exc), access_token)[:200]}); the token is probably for "
            "another account: sign in again as this user"
        ) from None
    return chosen


def _redact(text: str, secret: str) -> str:
    return text.replace(secret, "[redacted]") if secret else text


@contextmanager
def imap_session(
    target: ImapTarget, username: str, password: str
) -> Iterator[imapclient.IMAPClient]:
    """A logged-in connection that is logged out (or closed) at the end."""
    client = connect(target)
    try:
        login(client, username, password)
        yield client
    finally:
        _close(client)


@contextmanager
def imap_oauth2_session(
    target: ImapTarget,
    username: str,
    access_token: str,
    mechanism: str | Sequence[str] = sasl.MECHANISMS,
) -> Iterator[imapclient.IMAPClient]:
    """Like :func:`imap_session`, signed in with an OAuth2 access token."""
    client = connect(target)
    try:
        oauth2_login(
            client, username, access_token, host=target.host, port=target.port, mechanism=mechanism
        )
        yield client
    finally:
        _close(client)


def _close(client: imapclient.IMAPClient) -> None:
    try:
        client.logout()
    except Exception:
        with suppress(Exception):
            client.shutdown()
