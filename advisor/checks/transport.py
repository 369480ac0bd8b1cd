"""The steps every server shares: DNS, TCP, STARTTLS offered and enforced, TLS and certificate.

:class:`_ServerChecks` is the base the IMAP, POP3 and SMTP checks extend; the secret
is read here once, and only when a login needs it.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable

from advisor.checks.model import (
    _NAMES,
    EXPIRY_WARNING_DAYS,
    CheckFailed,
    CheckStatus,
    CheckTarget,
    Resolver,
    _Outcome,
)
from advisor.connection.imap import tls_context
from advisor.connection.password_login import ADVICE
from advisor.connection.probe import (
    X509_EXPIRED,
    X509_HOSTNAME_MISMATCH,
    X509_UNTRUSTED,
    LineConnection,
    ProbeError,
    connect_tcp,
    read_greeting,
    starttls,
    tls_handshake,
    tls_info,
)
from advisor.errors import (
    AuthenticationError,
    CredentialCharactersError,
    MailadvisorError,
)
from advisor.exitcodes import ExitStatus
from advisor.plugins.types import DEFAULT_PORTS, Endpoint, Security
from advisor.secrets import resolve_secret

# --- the secret, read once and only when a login needs it -----------------------------


class _Secret:
    def __init__(self, target: CheckTarget) -> None:
        auth, account = target.auth, target.email
        self._get = target.secret or (lambda: resolve_secret(auth, account))
        self._value: str | None = None
        self._error: MailadvisorError | None = None

    def get(self) -> str:
        if self._error is not None:
            raise self._error
        if self._value is None:
            try:
                self._value = self._get()
            except MailadvisorError as exc:
                self._error = exc
                raise
        return self._value


def _secret_failed(exc: MailadvisorError) -> CheckFailed:
    return CheckFailed(
        f"cannot read the secret: {exc}",
        "Fix [auth] in the profile: set the environment variable it names, or make the "
        "password command work on its own in a terminal.",
        ExitStatus(exc.exit_status),
    )


# --- one server ------------------------------------------------------------------------


Step = tuple[str, str, tuple[str, ...], Callable[[], _Outcome]]
"""(id suffix, title, ids of the steps it needs, the check)."""


class _ServerChecks:
    """DNS, TCP, STARTTLS and TLS for one endpoint; subclasses add the protocol's own."""

    def __init__(
        self, endpoint: Endpoint, target: CheckTarget, secret: _Secret, resolve: Resolver
    ) -> None:
        self.endpoint = endpoint
        self.target = target
        self.secret = secret
        self.resolve = resolve
        self.name = _NAMES[endpoint.protocol]
        self.username = endpoint.username or target.username or target.email
        self.addresses: list[str] = []
        self.sock: socket.socket | None = None
        self.conn: LineConnection | None = None
        self._context: ssl.SSLContext | None = None

    @property
    def context(self) -> ssl.SSLContext:
        if self._context is None:
            self._context = tls_context(self.target.ca_file)
        return self._context

    def steps(self) -> list[Step]:
        e = self.endpoint
        steps: list[Step] = [
            ("dns", "DNS", (), self.check_dns),
            ("tcp", "TCP connection", ("dns",), self.check_tcp),
        ]
        if e.security is Security.STARTTLS:
            steps.append(
                ("starttls", "STARTTLS offered and enforced", ("tcp",), self.check_starttls)
            )
        needs = ("starttls",) if e.security is Security.STARTTLS else ("tcp",)
        steps.append(("tls", "TLS and certificate", needs, self.check_tls))
        return steps

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    # -- transport ------------------------------------------------------------------

    def check_dns(self) -> _Outcome:
        host = self.endpoint.host
        start = time.monotonic()
        self.addresses = list(self.resolve(host))
        if not self.addresses:
            raise CheckFailed(
                f"{host} does not resolve",
                f"Check the host name for typos. If it is right, check this computer's "
                f"network and DNS (can you open a web page? does `ping {host}` work?).",
                ExitStatus.CONNECT_FAILED,
            )
        shown = ", ".join(self.addresses[:3]) + (" ..." if len(self.addresses) > 3 else "")
        detail = f"{host} is {shown} ({(time.monotonic() - start) * 1000:.0f} ms)"
        why = self.target.untrusted.get(self.endpoint.protocol)
        if why:
            return _Outcome(
                f"{detail}; not confirmed: {why}",
                CheckStatus.WARN,
                f"Make sure {host} really is your provider's server (its help pages name it), "
                "then write it into the profile's [server] table.",
            )
        return _Outcome(detail)

    def check_tcp(self) -> _Outcome:
        e = self.endpoint
        tls_port = DEFAULT_PORTS[(e.protocol, Security.TLS)]
        starttls_port = DEFAULT_PORTS[(e.protocol, Security.STARTTLS)]
        error: ProbeError | None = None
        start = time.monotonic()
        for address in self.addresses:
            try:
                self.sock = connect_tcp(e.host, e.port, self.target.timeout, address)
                break
            except ProbeError as exc:
                error = exc
        if self.sock is None:
            assert error is not None
            raise CheckFailed(
                str(error),
                f"Check the port: {self.name} is usually {tls_port} (implicit TLS) or "
                f"{starttls_port} (STARTTLS). If the port is right, the server may be down, "
                "or a firewall blocks it: try another network.",
                ExitStatus.CONNECT_FAILED,
            )
        peer = self.sock.getpeername()[0]
        return _Outcome(
            f"connected to {peer} port {e.port} in {(time.monotonic() - start) * 1000:.0f} ms"
        )

    def check_starttls(self) -> _Outcome:
        assert self.sock is not None
        self.conn = LineConnection(self.sock)
        self.sock.settimeout(self.target.timeout)
        try:
            greeting = read_greeting(self.conn, self.endpoint.protocol)
            info = starttls(self.conn, self.endpoint.protocol, greeting)
        except ProbeError as exc:
            self.close()
            if exc.code == ProbeError.NOT_OFFERED:
                fix = (
                    "The server offers no encryption on this port, and mailadvisor never sends "
                    f'a password without it. Use security = "tls" with port '
                    f"{DEFAULT_PORTS[(self.endpoint.protocol, Security.TLS)]} if the server has it."
                )
            elif exc.code == ProbeError.WRONG_PROTOCOL:
                fix = "Check the port number: another service answers there."
            else:
                fix = (
                    "Something between you and the server interferes with STARTTLS (a captive "
                    "portal, a filtering proxy or an attacker). Try another network, and prefer "
                    'implicit TLS (security = "tls").'
                )
            raise CheckFailed(str(exc), fix, ExitStatus.CONNECT_FAILED) from None
        except OSError as exc:
            self.close()
            raise CheckFailed(
                f"the connection broke: {exc}",
                "Try again; check the port.",
                ExitStatus.CONNECT_FAILED,
            ) from None
        detail = "offered; TLS is started before any password, with no fallback to plaintext"
        if info.plaintext_login_refused:
            detail += "; the server also refuses passwords before TLS"
        return _Outcome(detail)

    def check_tls(self) -> _Outcome:
        assert self.sock is not None
        e = self.endpoint
        if e.security is Security.NONE:
            self.close()
            return _Outcome(
                "no encryption: the password and mail travel in clear (allowed by allow_insecure)",
                CheckStatus.WARN,
                f'Use security = "tls" (port {DEFAULT_PORTS[(e.protocol, Security.TLS)]}) '
                "unless this is a lab server on your own machine.",
            )
        try:
            secured = tls_handshake(self.sock, e.host, self.context)
        except ProbeError as exc:
            self.close()
            raise CheckFailed(str(exc), self._tls_fix(exc), ExitStatus.CONNECT_FAILED) from None
        self.sock = secured
        try:
            info = tls_info(secured)
            if e.security is Security.TLS:
                secured.settimeout(self.target.timeout)
                read_greeting(LineConnection(secured), e.protocol)
        except ProbeError as exc:
            raise CheckFailed(
                f"TLS works, but {exc}",
                f"Check the port number: {self.name} over TLS is usually "
                f"{DEFAULT_PORTS[(e.protocol, Security.TLS)]}.",
                ExitStatus.CONNECT_FAILED,
            ) from None
        finally:
            self.close()
        cert = info.certificate
        days = cert.days_left()
        detail = (
            f"{info.version}; the certificate is valid for {e.host} until "
            f"{cert.not_after:%Y-%m-%d}, issued by {cert.issuer}"
        )
        if days < EXPIRY_WARNING_DAYS:
            return _Outcome(
                f"{detail}: it expires in {max(int(days), 0)} days",
                CheckStatus.WARN,
                "Tell the server's administrator the certificate must be renewed; once it "
                "expires, mailadvisor (and any careful client) will refuse to connect.",
            )
        return _Outcome(detail)

    def _tls_fix(self, exc: ProbeError) -> str:
        e = self.endpoint
        if exc.verify_code in X509_UNTRUSTED:
            return (
                "This computer does not trust the certificate's issuer. If your server uses "
                'its own CA, set ca_file = "/path/to/ca.pem" in the profile\'s [server] table. '
                "If it should have a public certificate, the connection may be intercepted: "
                "do not continue on this network."
            )
        if exc.verify_code == X509_HOSTNAME_MISMATCH:
            return (
                f"The certificate is for another name than {e.host}. Use the host name your "
                f"provider documents for {self.name}."
            )
        if exc.verify_code == X509_EXPIRED:
            return (
                "The certificate has expired. Tell the server's administrator; mailadvisor "
                "will not send your password to it."
            )
        if exc.code == ProbeError.NO_TLS:
            if e.security is Security.TLS:
                return (
                    f"Port {e.port} does not start with TLS. If it expects STARTTLS (port "
                    f"{DEFAULT_PORTS[(e.protocol, Security.STARTTLS)]}), set "
                    'security = "starttls"; for implicit TLS use port '
                    f"{DEFAULT_PORTS[(e.protocol, Security.TLS)]}."
                )
            return "The server agreed to STARTTLS but then did not speak TLS: try another network."
        if exc.code == ProbeError.OLD_TLS:
            return (
                "The server only offers outdated TLS. Ask the provider to enable TLS 1.2 or later."
            )
        return "Check the host and port, then try again later."


def _login_fix(exc: AuthenticationError, service: str) -> str:
    if isinstance(exc, CredentialCharactersError):
        return ADVICE
    return (
        f"Check the user name and password; some providers need {service} switched on in "
        "their web settings first, or an app password."
    )


def _server_text(exc: Exception) -> str:
    text = exc.args[0] if exc.args else exc
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return str(text)[:200]
