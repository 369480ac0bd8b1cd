"""Opening verified IMAP connections: the one factory every IMAP user goes through.

Implicit TLS by default; STARTTLS only when chosen, and then enforced; no
encryption only when the caller says so explicitly. Certificates are always
verified (chain and host name), TLS 1.2 or later. Failures become
:class:`ConnectError`, :class:`TLSError` or :class:`AuthenticationError` with a
message that says what to do, and never contain the secret.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import imapclient
import imapclient.exceptions

from advisor.errors import AuthenticationError, ConnectError, TLSError, UsageError
from advisor.oauth import sasl
from advisor.provider import Security

DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class ImapTarget:
    """Where and how to connect."""

    host: str
    port: int
    security: Security = Security.TLS
    ca_file: Path | None = None
    allow_insecure: bool = False
    timeout: float = DEFAULT_TIMEOUT


def tls_context(ca_file: Path | None = None) -> ssl.SSLContext:
    """A verifying client context: system CAs (or ``ca_file``), host name checked, TLS >= 1.2."""
    try:
        ctx = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"cannot use ca_file {ca_file}: {exc}") from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def connect(target: ImapTarget) -> imapclient.IMAPClient:
    """Connect and secure the channel as ``target`` says; not yet logged in."""
    if target.security is Security.NONE and not target.allow_insecure:
        raise UsageError('security = "none" needs allow_insecure = true')
    where = f"{target.host}:{target.port}"
    ctx = tls_context(target.ca_file) if target.security is not Security.NONE else None
    try:
        client = imapclient.IMAPClient(
            target.host,
            port=target.port,
            ssl=target.security is Security.TLS,
            ssl_context=ctx,
            timeout=target.timeout,
        )
    except ssl.SSLCertVerificationError as exc:
        raise TLSError(
            f"the certificate of {where} is not trusted ({exc.verify_message}); if the server "
            "uses a private CA, set [server] ca_file to its certificate"
        ) from None
    except ssl.SSLError as exc:
        raise TLSError(
            f"TLS with {where} failed ({exc.reason or exc}); "
            'is this an implicit-TLS port? Port 993 is, 143 needs security = "starttls"'
        ) from None
    except (socket.gaierror, ConnectionError, TimeoutError, OSError) as exc:
        raise ConnectError(f"cannot connect to {where}: {_describe(exc)}") from None
    except imapclient.exceptions.IMAPClientError as exc:
        raise ConnectError(f"{where} did not answer like an IMAP server: {exc}") from None

    if target.security is Security.STARTTLS:
        _starttls(client, ctx, where)
    return client


def _starttls(client: imapclient.IMAPClient, ctx: ssl.SSLContext | None, where: str) -> None:
    try:
        caps = client.capabilities()
    except imapclient.exceptions.IMAPClientError as exc:
        _close(client)
        raise TLSError(f"{where}: CAPABILITY failed before STARTTLS: {exc}") from None
    if b"STARTTLS" not in caps:
        _close(client)
        raise TLSError(
            f"{where} does not offer STARTTLS, so the connection cannot be "
            'secured; use security = "tls" (port 993) if the server has it'
        )
    try:
        client.starttls(ctx)
    except ssl.SSLCertVerificationError as exc:
        _close(client)
        raise TLSError(
            f"the certificate of {where} is not trusted ({exc.verify_message}); "
            "if the server uses a private CA, set [server] ca_file"
        ) from None
    except (ssl.SSLError, OSError, imapclient.exceptions.IMAPClientError) as exc:
        _close(client)
        raise TLSError(f"STARTTLS with {where} failed: {exc}") from None


def login(client: imapclient.IMAPClient, username: str, password: str) -> None:
    """Log in; :class:`AuthenticationError` names the user, never the password."""
    try:
        client.login(username, password)
    except imapclient.exceptions.LoginError:
        raise AuthenticationError(
            f"the server refused the login for {username!r}: check the user name and password "
            "(for Gmail and Microsoft, an app password or OAuth2 is needed)"
        ) from None
    except (OSError, imapclient.exceptions.IMAPClientError) as exc:
        raise ConnectError(f"the connection broke during login: {_describe(exc)}") from None


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
        raise ConnectError(f"the connection broke before sign-in: {_describe(exc)}") from None
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
        raise ConnectError(
            f"the connection broke during sign-in: {_redact(_describe(exc), access_token)}"
        ) from None
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


def _describe(exc: BaseException) -> str:
    if isinstance(exc, socket.gaierror):
        return "the host name does not resolve (check the spelling and your network)"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (wrong port, or the server is down)"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "no answer in time (a firewall, or a wrong host)"
    return str(exc) or type(exc).__name__
