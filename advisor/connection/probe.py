"""Low-level probes of mail servers: TCP, greeting, STARTTLS upgrade, TLS details.

Settings discovery uses them to try guessed host names, and ``mailadvisor test``
to report each step of a connection separately. A probe never logs in: it sends
nothing but CAPABILITY / CAPA / EHLO and the STARTTLS command.

The STARTTLS upgrade is written out here instead of going through imaplib,
poplib or smtplib because the checks must see what happens before TLS, where
the attacks of "Why TLS is better without STARTTLS" (USENIX Security 2021) live:
STARTTLS missing from the capabilities, a PREAUTH greeting, a refused STARTTLS,
and bytes injected after the server's go-ahead. Every one of them aborts; nothing
received before TLS is shown to the user or kept.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from advisor.plugins.types import Protocol, Security

MAX_LINE = 8192
"""Longest response line accepted (bounded memory against a hostile server)."""
MAX_LINES = 100
"""Most lines accepted in one multi-line response (CAPA, EHLO, CAPABILITY)."""
CLIENT_NAME = "mailadvisor.invalid"
"""What we say in EHLO: a name that reveals nothing about this machine."""

X509_EXPIRED = 10
X509_HOSTNAME_MISMATCH = 62
X509_UNTRUSTED = frozenset({2, 18, 19, 20, 21})
"""OpenSSL verify codes meaning "no chain to a trusted CA" (self-signed, unknown issuer...)."""


class ProbeStage(StrEnum):
    """Where a probe failed."""

    TCP = "tcp"
    GREETING = "greeting"
    STARTTLS = "starttls"
    TLS = "tls"


class ProbeError(Exception):
    """A probe step failed; the message is plain words for the user."""

    NOT_OFFERED = "not-offered"
    WRONG_PROTOCOL = "wrong-protocol"
    NO_TLS = "no-tls"
    OLD_TLS = "old-tls"

    def __init__(
        self,
        stage: ProbeStage,
        message: str,
        *,
        verify_code: int | None = None,
        code: str = "",
    ) -> None:
        super().__init__(message)
        self.stage = stage
        self.verify_code = verify_code
        """OpenSSL's certificate verification error, when that is what failed."""
        self.code = code
        """One of the class constants when the failure has a specific remedy, else ""."""


@dataclass(frozen=True)
class CertificateInfo:
    """What the verified server certificate says."""

    subject: str
    names: tuple[str, ...]
    issuer: str
    not_after: datetime

    def days_left(self, now: datetime | None = None) -> float:
        """Days until the certificate expires (negative once expired)."""
        now = now or datetime.now(UTC)
        return (self.not_after - now).total_seconds() / 86400


@dataclass(frozen=True)
class TlsInfo:
    """The negotiated TLS session."""

    version: str
    cipher: str
    certificate: CertificateInfo


@dataclass(frozen=True)
class StarttlsInfo:
    """What the server showed before TLS (kept only as facts, never as text)."""

    plaintext_login_refused: bool | None
    """True when the server refuses passwords before TLS (IMAP LOGINDISABLED, no SMTP AUTH);
    None when the protocol does not say."""


@dataclass(frozen=True)
class ProbeResult:
    """A server that answered like the protocol asked for, over verified TLS."""

    protocol: Protocol
    host: str
    port: int
    security: Security
    tls: TlsInfo | None


class LineConnection:
    """A socket read line by line with bounds, remembering what is buffered."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = b""

    @property
    def pending(self) -> bytes:
        """Bytes received but not yet read as a line."""
        return self._buffer

    def send(self, line: str) -> None:
        self.sock.sendall(line.encode("ascii") + b"\r\n")

    def readline(self) -> str:
        """One line without its CRLF; :class:`ProbeError` if it is too long or the peer closes."""
        while b"\n" not in self._buffer:
            if len(self._buffer) > MAX_LINE:
                raise ProbeError(ProbeStage.GREETING, "the server sent a line that never ends")
            try:
                chunk = self.sock.recv(4096)
            except TimeoutError:
                raise ProbeError(ProbeStage.GREETING, "the server sent nothing in time") from None
            if not chunk:
                raise ProbeError(ProbeStage.GREETING, "the server closed the connection")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        if len(line) > MAX_LINE:
            raise ProbeError(ProbeStage.GREETING, "the server sent a line that never ends")
        return line.rstrip(b"\r").decode("utf-8", "replace")


def connect_tcp(host: str, port: int, timeout: float, address: str | None = None) -> socket.socket:
    """A TCP connection to ``host`` (or to ``address``, an IP found by a custom resolver)."""
    try:
        return socket.create_connection((address or host, port), timeout=timeout)
    except socket.gaierror:
        raise ProbeError(ProbeStage.TCP, f"{host} does not resolve") from None
    except ConnectionRefusedError:
        raise ProbeError(
            ProbeStage.TCP, f"{host} refused the connection on port {port} (nothing listens there)"
        ) from None
    except TimeoutError:
        raise ProbeError(
            ProbeStage.TCP, f"no answer from {host} on port {port} in {timeout:g} s"
        ) from None
    except OSError as exc:
        raise ProbeError(
            ProbeStage.TCP, f"cannot reach {host}:{port}: {exc.strerror or exc}"
        ) from None


_GREETINGS = {
    Protocol.IMAP: ("* OK", "* PREAUTH"),
    Protocol.POP3: ("+OK",),
    Protocol.SMTP: ("220",),
}
_NAMES = {Protocol.IMAP: "IMAP", Protocol.POP3: "POP3", Protocol.SMTP: "SMTP"}


def _looks_like(line: str) -> str:
    """Name the protocol a wrong greeting belongs to, to say which port this really is."""
    upper = line.upper()
    if upper.startswith(("* OK", "* PREAUTH", "* BYE")):
        return "IMAP"
    if upper.startswith(("+OK", "-ERR")):
        return "POP3"
    if upper[:3].isdigit():
        return "SMTP"
    if upper.startswith(("HTTP/", "SSH-")):
        return upper[:4].rstrip("/-")
    return "an unknown protocol"


def read_greeting(conn: LineConnection, protocol: Protocol) -> str:
    """Read the server's greeting; :class:`ProbeError` unless it is ``protocol``'s."""
    line = conn.readline()
    if protocol is Protocol.SMTP:
        for _ in range(MAX_LINES):
            if not line.startswith("220-"):
                break
            line = conn.readline()
    upper = line.upper()
    if not upper.startswith(_GREETINGS[protocol]):
        if protocol is Protocol.SMTP and upper[:3] in ("421", "554"):
            raise ProbeError(ProbeStage.GREETING, "the SMTP server refuses connections from here")
        if upper.startswith("* BYE"):
            raise ProbeError(ProbeStage.GREETING, "the IMAP server said BYE at once")
        raise ProbeError(
            ProbeStage.GREETING,
            f"the server answered like {_looks_like(line)}, not {_NAMES[protocol]}",
            code=ProbeError.WRONG_PROTOCOL,
        )
    return line


def starttls(conn: LineConnection, protocol: Protocol, greeting: str) -> StarttlsInfo:
    """Ask for STARTTLS after ``greeting`` was read; raise unless the server agrees cleanly.

    On return the socket is ready for the TLS handshake: nothing else is buffered.
    """
    if protocol is Protocol.IMAP and greeting.upper().startswith("* PREAUTH"):
        # A session that is authenticated before TLS can never be secured (RFC 3501 6.2.1).
        raise ProbeError(
            ProbeStage.STARTTLS,
            "the server greeted with PREAUTH, skipping TLS; someone may be tampering with "
            "the connection",
        )
    if protocol is Protocol.IMAP:
        info = _imap_starttls(conn)
    elif protocol is Protocol.POP3:
        info = _pop3_starttls(conn)
    else:
        info = _smtp_starttls(conn)
    if conn.pending:
        # Bytes after the go-ahead would be read as if they came over TLS (response injection).
        raise ProbeError(
            ProbeStage.STARTTLS,
            "the server sent data after agreeing to STARTTLS, before TLS began; "
            "someone may be tampering with the connection",
        )
    return info


def _imap_starttls(conn: LineConnection) -> StarttlsInfo:
    conn.send("a1 CAPABILITY")
    caps: set[str] = set()
    for _ in range(MAX_LINES):
        line = conn.readline()
        if line.upper().startswith("* CAPABILITY "):
            caps.update(line[13:].upper().split())
        elif line.startswith("a1 "):
            break
    else:
        raise ProbeError(ProbeStage.STARTTLS, "CAPABILITY never finished")
    if "STARTTLS" not in caps:
        raise ProbeError(
            ProbeStage.STARTTLS, "the server does not offer STARTTLS", code=ProbeError.NOT_OFFERED
        )
    conn.send("a2 STARTTLS")
    for _ in range(MAX_LINES):
        line = conn.readline()
        if line.startswith("a2 "):
            break
    else:
        raise ProbeError(ProbeStage.STARTTLS, "STARTTLS never got an answer")
    if not line.upper().startswith("A2 OK"):
        raise ProbeError(ProbeStage.STARTTLS, "the server refused STARTTLS")
    return StarttlsInfo(plaintext_login_refused="LOGINDISABLED" in caps)


def _pop3_starttls(conn: LineConnection) -> StarttlsInfo:
    conn.send("CAPA")
    caps: set[str] = set()
    if conn.readline().startswith("+OK"):
        for _ in range(MAX_LINES):
            line = conn.readline()
            if line == ".":
                break
            caps.add(line.split(" ", 1)[0].upper())
        else:
            raise ProbeError(ProbeStage.STARTTLS, "CAPA never finished")
        if "STLS" not in caps:
            raise ProbeError(
                ProbeStage.STARTTLS,
                "the server does not offer STARTTLS (STLS)",
                code=ProbeError.NOT_OFFERED,
            )
    conn.send("STLS")
    if not conn.readline().startswith("+OK"):
        raise ProbeError(ProbeStage.STARTTLS, "the server refused STARTTLS (STLS)")
    return StarttlsInfo(plaintext_login_refused=None)


def _smtp_starttls(conn: LineConnection) -> StarttlsInfo:
    conn.send(f"EHLO {CLIENT_NAME}")
    extensions: set[str] = set()
    for _ in range(MAX_LINES):
        line = conn.readline()
        if not line.startswith("250"):
            raise ProbeError(ProbeStage.STARTTLS, "the server refused EHLO")
        extensions.add(line[4:].split(" ", 1)[0].upper())
        if not line.startswith("250-"):
            break
    else:
        raise ProbeError(ProbeStage.STARTTLS, "EHLO never finished")
    if "STARTTLS" not in extensions:
        raise ProbeError(
            ProbeStage.STARTTLS, "the server does not offer STARTTLS", code=ProbeError.NOT_OFFERED
        )
    conn.send("STARTTLS")
    if not conn.readline().startswith("220"):
        raise ProbeError(ProbeStage.STARTTLS, "the server refused STARTTLS")
    return StarttlsInfo(plaintext_login_refused="AUTH" not in extensions)


def tls_handshake(sock: socket.socket, host: str, context: ssl.SSLContext) -> ssl.SSLSocket:
    """Wrap ``sock`` in verified TLS for ``host``; :class:`ProbeError` says what went wrong.

    On failure ``sock`` is left for the caller to close.
    """
    try:
        return context.wrap_socket(sock, server_hostname=host)
    except ssl.SSLCertVerificationError as exc:
        raise ProbeError(
            ProbeStage.TLS,
            f"the certificate is not trusted: {exc.verify_message}",
            verify_code=exc.verify_code,
        ) from None
    except ssl.SSLError as exc:
        reason = exc.reason or str(exc)
        code = ""
        if reason in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG"):
            message, code = "the server does not speak TLS on this port", ProbeError.NO_TLS
        elif reason in ("UNSUPPORTED_PROTOCOL", "TLSV1_ALERT_PROTOCOL_VERSION", "NO_PROTOCOLS"):
            message = "the server offers only TLS older than 1.2, which is no longer safe"
            code = ProbeError.OLD_TLS
        else:
            message = f"the TLS handshake failed ({reason})"
        raise ProbeError(ProbeStage.TLS, message, code=code) from None
    except TimeoutError:
        raise ProbeError(ProbeStage.TLS, "the TLS handshake did not finish in time") from None
    except OSError as exc:
        # A peer that closes during the handshake is, for the user, one that does not speak TLS.
        raise ProbeError(
            ProbeStage.TLS, f"the connection broke during the TLS handshake ({exc})"
        ) from None


def _name(parts: object) -> str:
    """The common name (or organisation) of a decoded certificate name."""
    found: dict[str, str] = {}
    if isinstance(parts, tuple):
        for rdn in parts:
            for key, value in rdn:
                found.setdefault(key, value)
    return found.get("commonName") or found.get("organizationName") or "?"


def tls_info(sock: ssl.SSLSocket) -> TlsInfo:
    """Describe a verified TLS session."""
    cert = sock.getpeercert() or {}
    names = tuple(
        str(entry[1])
        for entry in cert.get("subjectAltName", ())
        if isinstance(entry, tuple) and len(entry) == 2
    )
    not_after = cert.get("notAfter")
    expires = (
        datetime.fromtimestamp(ssl.cert_time_to_seconds(not_after), UTC)
        if isinstance(not_after, str)
        else datetime.max.replace(tzinfo=UTC)
    )
    cipher = sock.cipher()
    return TlsInfo(
        version=sock.version() or "?",
        cipher=cipher[0] if cipher else "?",
        certificate=CertificateInfo(
            subject=_name(cert.get("subject")),
            names=names,
            issuer=_name(cert.get("issuer")),
            not_after=expires,
        ),
    )


def probe(
    protocol: Protocol,
    host: str,
    port: int,
    security: Security,
    context: ssl.SSLContext,
    timeout: float,
    *,
    address: str | None = None,
) -> ProbeResult:
    """Connect, secure the channel as ``security`` says and read the greeting; then hang up.

    Raises :class:`ProbeError` unless the server speaks ``protocol`` over verified TLS
    (or, for :attr:`Security.NONE`, in plaintext).
    """
    sock = connect_tcp(host, port, timeout, address)
    try:
        info: TlsInfo | None = None
        if security is Security.TLS:
            secured = tls_handshake(sock, host, context)
            sock = secured
            info = tls_info(secured)
            read_greeting(LineConnection(secured), protocol)
        else:
            conn = LineConnection(sock)
            greeting = read_greeting(conn, protocol)
            if security is Security.STARTTLS:
                starttls(conn, protocol, greeting)
                secured = tls_handshake(sock, host, context)
                sock = secured
                info = tls_info(secured)
        return ProbeResult(protocol, host, port, security, info)
    except OSError as exc:
        raise ProbeError(ProbeStage.GREETING, f"the connection broke: {exc}") from None
    finally:
        sock.close()
