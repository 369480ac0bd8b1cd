"""TLS for every protocol mailadvisor speaks: one verifying context, one safe STARTTLS switch.

The context verifies the certificate chain (system CAs, or a private ``ca_file``)
and the host name, and refuses anything older than TLS 1.2.

STARTTLS is where mail clients get attacked ("Why TLS is better without
STARTTLS", USENIX Security 2021). Whatever the protocol, the switch here:

- refuses to go on without TLS when the server does not offer it or refuses it
  (stripping), never falling back to plaintext;
- aborts when any byte arrived after the server's go-ahead and before the TLS
  handshake (response injection): :func:`ensure_nothing_pending`;
- forgets what the server said before TLS (capabilities, greeting text): the
  callers ask again over TLS.

The standard library's ``poplib.POP3.stls`` and ``smtplib.SMTP.starttls`` silently
drop injected bytes with their read buffer; :func:`pop3_stls` and
:func:`smtp_starttls` detect them and abort instead. IMAP's switch lives in
:mod:`advisor.connection.imap`, which uses the same check.
"""

from __future__ import annotations

import poplib
import smtplib
import socket
import ssl
from contextlib import suppress
from pathlib import Path
from typing import Any, BinaryIO

from advisor.errors import TLSError, UsageError

MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2

INJECTION_MESSAGE = (
    "{where} sent data after agreeing to STARTTLS and before TLS began; someone on the "
    "network may be tampering with the connection (a STARTTLS injection attack), so "
    'mailadvisor stopped. Try another network, and prefer implicit TLS (security = "tls")'
)


def tls_context(ca_file: Path | None = None) -> ssl.SSLContext:
    """A verifying client context: system CAs (or ``ca_file``), host name checked, TLS >= 1.2."""
    try:
        ctx = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"cannot use ca_file {ca_file}: {exc}") from None
    ctx.minimum_version = MINIMUM_VERSION
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def pending_bytes(sock: socket.socket, reader: BinaryIO | None) -> bool:
    """Whether the peer sent anything not yet read: in ``reader``'s buffer or in the kernel.

    Does not block: the socket is made non-blocking for the look. Right after a
    STARTTLS go-ahead the server must stay silent until our TLS ClientHello, so
    anything here was put on the wire by someone else.
    """
    timeout = sock.gettimeout()
    sock.settimeout(0.0)
    try:
        if reader is not None:
            # A buffered reader returns what it holds, else does one non-blocking read.
            with suppress(BlockingIOError):
                if reader.peek(1):  # type: ignore[attr-defined]
                    return True
        try:
            return bool(sock.recv(1, socket.MSG_PEEK))
        except (BlockingIOError, InterruptedError):
            return False
    finally:
        sock.settimeout(timeout)


def ensure_nothing_pending(sock: socket.socket, reader: BinaryIO | None, where: str) -> None:
    """Raise :class:`TLSError` if bytes are waiting after the STARTTLS go-ahead (injection)."""
    if pending_bytes(sock, reader):
        raise TLSError(INJECTION_MESSAGE.format(where=where))


def switch_to_tls(
    sock: socket.socket,
    reader: BinaryIO | None,
    context: ssl.SSLContext,
    host: str,
    where: str,
) -> ssl.SSLSocket:
    """The socket swap after a STARTTLS go-ahead, for IMAP, POP3 and SMTP alike.

    Refuses bytes already waiting (injection, :func:`ensure_nothing_pending`), wraps
    ``sock`` in verified TLS for ``host`` and closes ``reader``, the buffered reader of
    the plaintext socket; the caller puts the returned socket (and a new reader, if
    its library keeps one) in place of the old ones.
    """
    ensure_nothing_pending(sock, reader, where)
    secured = context.wrap_socket(sock, server_hostname=host)
    if reader is not None:
        with suppress(OSError):
            reader.close()
    return secured


X509_NAME_MISMATCH = frozenset({62, 64})
"""OpenSSL verify codes: the host name (62) or IP address (64) is not in the certificate."""


def certificate_error(where: str, exc: ssl.SSLCertVerificationError) -> TLSError:
    """The error for a certificate that failed verification, with what to do."""
    if exc.verify_code in X509_NAME_MISMATCH:
        return TLSError(
            f"the certificate of {where} is for another name ({exc.verify_message}); use the "
            "host name your provider documents, or someone may be intercepting the connection"
        )
    return TLSError(
        f"the certificate of {where} is not trusted ({exc.verify_message}); if the server "
        "uses a private CA, set [server] ca_file to its certificate"
    )


def pop3_stls(pop: poplib.POP3, context: ssl.SSLContext, where: str) -> None:
    """Secure a POP3 connection with STLS (RFC 2595), or raise :class:`TLSError`.

    Like ``pop.stls(context)``, but bytes injected after the server's ``+OK`` abort
    instead of being silently dropped, and the pre-TLS greeting is forgotten. On
    any failure the connection is closed.
    """
    p: Any = pop  # poplib's attributes are untyped
    try:
        try:
            caps = pop.capa()
        except poplib.error_proto:
            caps = None  # no CAPA: the answer to STLS decides
        if caps is not None and "STLS" not in caps:
            raise TLSError(
                f"{where} does not offer STARTTLS (STLS), so the connection cannot be secured; "
                'use security = "tls" (port 995) if the server has it'
            )
        try:
            p._shortcmd("STLS")
        except poplib.error_proto:
            raise TLSError(
                f"{where} refused STARTTLS (STLS); the password is never sent without TLS"
            ) from None
        p.sock = switch_to_tls(p.sock, p.file, context, p.host, where)
        p.file = p.sock.makefile("rb")
        p._tls_established = True
        p.welcome = b"+OK"  # the real greeting came before TLS: nothing to trust or show
    except ssl.SSLCertVerificationError as exc:
        _close_pop3(pop)
        raise certificate_error(where, exc) from None
    except (ssl.SSLError, OSError) as exc:
        _close_pop3(pop)
        raise TLSError(f"STARTTLS (STLS) with {where} failed: {exc}") from None
    except TLSError:
        _close_pop3(pop)
        raise


def smtp_starttls(smtp: smtplib.SMTP, context: ssl.SSLContext, where: str) -> None:
    """Secure an SMTP connection with STARTTLS (RFC 3207), or raise :class:`TLSError`.

    Like ``smtp.starttls(context=context)``, but bytes injected after the server's
    ``220`` abort instead of being silently dropped. What EHLO said before TLS is
    forgotten; call ``ehlo()`` again. On any failure the connection is closed.
    """
    s: Any = smtp
    try:
        smtp.ehlo_or_helo_if_needed()
        if not smtp.has_extn("starttls"):
            raise TLSError(
                f"{where} does not offer STARTTLS, so the connection cannot be secured; "
                'use security = "tls" (port 465) if the server has it'
            )
        code, _reply = smtp.docmd("STARTTLS")
        if code != 220:
            raise TLSError(
                f"{where} refused STARTTLS (reply {code}); the password is never sent without TLS"
            )
        s.sock = switch_to_tls(s.sock, s.file, context, s._host, where)
        s.file = None
        smtp.helo_resp = None
        smtp.ehlo_resp = None
        smtp.esmtp_features = {}
        smtp.does_esmtp = False
    except ssl.SSLCertVerificationError as exc:
        smtp.close()
        raise certificate_error(where, exc) from None
    except (ssl.SSLError, OSError) as exc:
        smtp.close()
        raise TLSError(f"STARTTLS with {where} failed: {exc}") from None
    except smtplib.SMTPException as exc:
        smtp.close()  # its text may quote the server before TLS: not shown
        raise TLSError(f"STARTTLS with {where} failed ({type(exc).__name__})") from None
    except TLSError:
        smtp.close()
        raise


def _close_pop3(pop: poplib.POP3) -> None:
    with suppress(Exception):  # already broken; the original error matters
        pop.close()


def describe_network_error(exc: BaseException) -> str:
    """A failed connection in plain words, for IMAP, POP3 and SMTP alike."""
    if isinstance(exc, socket.gaierror):
        return "the host name does not resolve (check the spelling and your network)"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (wrong port, or the server is down)"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "no answer in time (a firewall, or a wrong host)"
    return str(exc) or type(exc).__name__
