"""The connection test: every step from DNS to login, one result per step, with a fix.

``mailadvisor test`` and the wizard run the same checks. For each server (IMAP,
then POP3 and SMTP submission when known) they go, in order: DNS; TCP; STARTTLS
offered and enforced (when the security is STARTTLS); TLS handshake and
certificate (chain, host name, expiry, version); then, for IMAP, CAPABILITY, AUTH
mechanisms, login, LIST with special-use attributes, QUOTA and APPENDLIMIT; for
POP3, login and STAT; for SMTP, EHLO (with the AUTH mechanisms on offer) and a
login (AUTH PLAIN in UTF-8; no mail is ever sent). A check that needs an earlier
one which did not pass is skipped with the reason.

The first failure decides the exit status: 4 for DNS, TCP, TLS and STARTTLS
(cannot connect), 3 for a refused login, 2 when the secret cannot be read.
No result ever contains the password or token.
"""

from __future__ import annotations

import poplib
import smtplib
import socket
import ssl
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import imapclient
import imapclient.exceptions

from advisor.connection.imap import ImapTarget, connect, login, oauth2_login, tls_context
from advisor.connection.password_login import ADVICE, pop3_login, smtp_login
from advisor.connection.probe import (
    CLIENT_NAME,
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
from advisor.connection.tls import pop3_stls, smtp_starttls
from advisor.discovery import choose_provider, split_address
from advisor.discovery.domains import in_domain
from advisor.errors import (
    AuthenticationError,
    CredentialCharactersError,
    MailadvisorError,
    TLSError,
    UsageError,
)
from advisor.exitcodes import ExitStatus
from advisor.plugins.manager import PluginHost
from advisor.plugins.types import DEFAULT_PORTS, Endpoint, Protocol, Security
from advisor.profile import AuthConfig, AuthKind, Profile
from advisor.secrets import resolve_secret

DEFAULT_TIMEOUT = 15.0
EXPIRY_WARNING_DAYS = 14
QUOTA_WARNING_FRACTION = 0.9
SPECIAL_USE = ("\\Sent", "\\Drafts", "\\Trash", "\\Junk", "\\Archive", "\\All", "\\Flagged")
_NAMES = {Protocol.IMAP: "IMAP", Protocol.POP3: "POP3", Protocol.SMTP: "SMTP"}
_STARTTLS_FIX = (
    "Something between you and the server interferes with STARTTLS (a captive portal, a "
    "filtering proxy or an attacker). Try another network, and prefer implicit TLS "
    '(security = "tls").'
)


class CheckStatus(StrEnum):
    """How a check went."""

    OK = "ok"
    WARN = "warn"
    """Works, but something deserves attention."""
    FAIL = "fail"
    SKIP = "skip"
    """Not run: a check it needs did not pass (the detail says which)."""


@dataclass(frozen=True)
class CheckResult:
    """One line of the report."""

    id: str
    """Stable identifier, e.g. "imap.tls"."""
    protocol: Protocol
    title: str
    status: CheckStatus
    detail: str
    fix: str = ""
    """What to do about a failure or warning, in plain words."""
    exit_status: ExitStatus = ExitStatus.OK
    """For a failure: the exit status it means."""
    seconds: float = 0.0


@dataclass(frozen=True)
class CheckTarget:
    """What to check: the servers and how to sign in."""

    email: str
    imap: Endpoint | None
    pop3: Endpoint | None = None
    smtp: Endpoint | None = None
    auth: AuthConfig = field(default_factory=AuthConfig)
    username: str | None = None
    """Login name when an endpoint names none; default the email address."""
    ca_file: Path | None = None
    """A private CA to trust (for every server), instead of the system's."""
    allow_insecure: bool = False
    timeout: float = DEFAULT_TIMEOUT
    untrusted: Mapping[Protocol, str] = field(default_factory=dict)
    """Servers learnt in a way that needs the user's confirmation, with why (RFC 7817)."""
    source: str = ""
    """Where the servers come from, for the report."""
    secret: Callable[[], str] | None = field(default=None, repr=False)
    """Gets the password or access token; default: :func:`resolve_secret` on ``auth``."""


@dataclass(frozen=True)
class CheckReport:
    """Every check's result, in the order they ran."""

    email: str
    servers: tuple[Endpoint, ...]
    source: str
    results: tuple[CheckResult, ...]

    @property
    def exit_status(self) -> ExitStatus:
        """The first failure's status, or OK when nothing failed (warnings are fine)."""
        for r in self.results:
            if r.status is CheckStatus.FAIL:
                return r.exit_status
        return ExitStatus.OK

    @property
    def ok(self) -> bool:
        return self.exit_status is ExitStatus.OK


class CheckFailed(Exception):
    """Raised by a check to report a failure."""

    def __init__(self, detail: str, fix: str, exit_status: ExitStatus) -> None:
        super().__init__(detail)
        self.detail = detail
        self.fix = fix
        self.exit_status = exit_status


@dataclass(frozen=True)
class _Outcome:
    detail: str
    status: CheckStatus = CheckStatus.OK
    fix: str = ""


Resolver = Callable[[str], Sequence[str]]
"""Host name to IP addresses; the system's resolver unless a caller passes another."""


def system_resolve(host: str) -> list[str]:
    """IP addresses of ``host`` from the system's resolver ([] when it does not resolve)."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _fmt_bytes(n: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover - the loop always returns


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


class _ImapChecks(_ServerChecks):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.client: imapclient.IMAPClient | None = None
        self.capabilities: set[str] = set()

    def steps(self) -> list[Step]:
        return [
            *super().steps(),
            ("capability", "CAPABILITY", ("tls",), self.check_capability),
            ("auth", "AUTH mechanisms", ("capability",), self.check_auth),
            ("login", "login", ("auth",), self.check_login),
            ("list", "LIST with special-use", ("login",), self.check_list),
            ("quota", "QUOTA", ("login",), self.check_quota),
            ("appendlimit", "APPENDLIMIT", ("login",), self.check_appendlimit),
        ]

    def close(self) -> None:
        super().close()
        if self.client is not None:
            client, self.client = self.client, None
            try:
                client.logout()
            except Exception:
                with suppress(Exception):
                    client.shutdown()

    def _caps(self) -> set[str]:
        assert self.client is not None
        return {
            c.decode("ascii", "replace").upper() if isinstance(c, bytes) else str(c).upper()
            for c in self.client.capabilities()
        }

    def check_capability(self) -> _Outcome:
        e, t = self.endpoint, self.target
        try:
            self.client = connect(
                ImapTarget(e.host, e.port, e.security, t.ca_file, t.allow_insecure, t.timeout)
            )
            self.capabilities = self._caps()
        except MailadvisorError as exc:
            raise CheckFailed(
                str(exc), "Run the check again; if it persists, check the port.", exc.exit_status
            ) from None
        except (OSError, imapclient.exceptions.IMAPClientError) as exc:
            raise CheckFailed(
                f"CAPABILITY failed: {exc}", "Check the port number.", ExitStatus.CONNECT_FAILED
            ) from None
        shown = sorted(c for c in self.capabilities if not c.startswith("AUTH="))
        revs = {"IMAP4REV1", "IMAP4REV2"} & self.capabilities
        detail = f"{len(self.capabilities)} capabilities: {' '.join(shown)}"
        if not revs:
            return _Outcome(
                f"{detail}; no IMAP4rev1",
                CheckStatus.WARN,
                "This may not be a standard IMAP server.",
            )
        return _Outcome(detail)

    def check_auth(self) -> _Outcome:
        mechanisms = sorted(c[5:] for c in self.capabilities if c.startswith("AUTH="))
        listed = " ".join(mechanisms) or "none listed"
        if self.target.auth.method is AuthKind.OAUTH2:
            if not {"XOAUTH2", "OAUTHBEARER"} & set(mechanisms):
                raise CheckFailed(
                    f"the server offers {listed}, not OAuth2 (XOAUTH2 or OAUTHBEARER)",
                    'This server does not take OAuth2 sign-in: use method = "password" in [auth] '
                    "(with an app password where the provider requires one).",
                    ExitStatus.AUTH_FAILED,
                )
            return _Outcome(f"offers {listed}")
        if "LOGINDISABLED" in self.capabilities:
            raise CheckFailed(
                f"the server refuses password login here (LOGINDISABLED; offers {listed})",
                'Use OAuth2 (method = "oauth2") if the provider supports it, or ask the '
                "provider how to enable password or app-password access.",
                ExitStatus.AUTH_FAILED,
            )
        return _Outcome(f"offers {listed}; password login allowed")

    def check_login(self) -> _Outcome:
        assert self.client is not None
        try:
            secret = self.secret.get()
        except MailadvisorError as exc:
            raise _secret_failed(exc) from None
        start = time.monotonic()
        try:
            if self.target.auth.method is AuthKind.OAUTH2:
                self._oauth2_login(secret)
            else:
                login(self.client, self.username, secret)
        except CredentialCharactersError as exc:
            raise CheckFailed(str(exc), ADVICE, exc.exit_status) from None
        except MailadvisorError as exc:
            raise CheckFailed(
                str(exc),
                "Check the user name and password. Gmail and Microsoft accounts need an app "
                'password or OAuth2 (method = "oauth2"); some providers need IMAP switched on in '
                "their web settings first.",
                exc.exit_status,
            ) from None
        self.capabilities = self._caps()  # they change after login (RFC 3501 6.2.3)
        return _Outcome(
            f"logged in as {self.username} in {(time.monotonic() - start) * 1000:.0f} ms"
        )

    def _oauth2_login(self, token: str) -> None:
        assert self.client is not None
        e = self.endpoint
        oauth2_login(self.client, self.username, token, host=e.host, port=e.port)

    def check_list(self) -> _Outcome:
        assert self.client is not None
        try:
            folders = self.client.list_folders()
        except (OSError, imapclient.exceptions.IMAPClientError) as exc:
            raise CheckFailed(
                f"LIST failed right after login: {exc}",
                "The login was accepted but the session does not work. With Microsoft this "
                "means a token for the wrong account or scope: sign in again.",
                ExitStatus.AUTH_FAILED,
            ) from None
        roles: dict[str, str] = {}
        for flags, _delimiter, name in folders:
            for flag in flags:
                text = flag.decode() if isinstance(flag, bytes) else str(flag)
                for role in SPECIAL_USE:
                    if text.lower() == role.lower():
                        roles.setdefault(role, str(name))
        detail = f"{len(folders)} folders"
        if not roles:
            return _Outcome(
                f"{detail}; none marked Sent, Drafts, Trash... (no special-use attributes)",
                CheckStatus.WARN,
                "mailadvisor will ask which folder is which instead of finding them by itself.",
            )
        shown = ", ".join(f"{role[1:]} = {name!r}" for role, name in roles.items())
        return _Outcome(f"{detail}; special-use: {shown}")

    def check_quota(self) -> _Outcome:
        assert self.client is not None
        if "QUOTA" not in self.capabilities:
            return _Outcome("the server does not report a quota (no QUOTA capability)")
        try:
            _roots, quotas = self.client.get_quota_root("INBOX")
        except (OSError, imapclient.exceptions.IMAPClientError) as exc:
            return _Outcome(
                f"GETQUOTAROOT INBOX failed: {exc}",
                CheckStatus.WARN,
                "The free space on the server is unknown; check it in the provider's web settings.",
            )
        storage = [q for q in quotas if str(q.resource).upper() == "STORAGE"]
        if not storage:
            return _Outcome("no storage limit on INBOX")
        q = storage[0]
        used, limit = int(q.usage) * 1024, int(q.limit) * 1024  # RFC 9208: units of 1024 octets
        share = used / limit if limit else 0.0
        detail = f"{_fmt_bytes(used)} used of {_fmt_bytes(limit)} ({share:.0%})"
        if share >= QUOTA_WARNING_FRACTION:
            return _Outcome(
                f"{detail}: almost full",
                CheckStatus.WARN,
                "Free space on the server (or buy more) before migrating: uploads would stop.",
            )
        return _Outcome(detail)

    def check_appendlimit(self) -> _Outcome:
        for cap in self.capabilities:
            if cap.startswith("APPENDLIMIT="):
                value = cap.partition("=")[2]
                if value.isdigit():
                    return _Outcome(f"messages up to {_fmt_bytes(int(value))} are accepted")
            if cap == "APPENDLIMIT":
                return _Outcome("the size limit is set per folder (RFC 7889)")
        return _Outcome("not advertised: the server states no size limit for uploads")


class _Pop3Checks(_ServerChecks):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.pop: poplib.POP3 | None = None

    def steps(self) -> list[Step]:
        return [
            *super().steps(),
            ("login", "POP3 login", ("tls",), self.check_login),
            ("stat", "STAT", ("login",), self.check_stat),
        ]

    def close(self) -> None:
        super().close()
        if self.pop is not None:
            pop, self.pop = self.pop, None
            try:
                pop.quit()
            except Exception:
                pop.close()

    def check_login(self) -> _Outcome:
        e, t = self.endpoint, self.target
        if t.auth.method is AuthKind.OAUTH2:
            return _Outcome(
                "not checked: the POP3 check signs in with a password only",
                CheckStatus.SKIP,
            )
        try:
            secret = self.secret.get()
        except MailadvisorError as exc:
            raise _secret_failed(exc) from None
        try:
            if e.security is Security.TLS:
                self.pop = poplib.POP3_SSL(e.host, e.port, context=self.context, timeout=t.timeout)
            else:
                self.pop = poplib.POP3(e.host, e.port, timeout=t.timeout)
                if e.security is Security.STARTTLS:
                    pop3_stls(self.pop, self.context, f"POP3 {e.host}:{e.port}")
        except TLSError as exc:  # stripped, refused or injected STARTTLS: no fallback
            raise CheckFailed(str(exc), _STARTTLS_FIX, exc.exit_status) from None
        except (OSError, poplib.error_proto) as exc:
            raise CheckFailed(
                f"cannot open the POP3 session: {exc}",
                "Run the check again; if it persists, check the port.",
                ExitStatus.CONNECT_FAILED,
            ) from None
        try:
            how = pop3_login(self.pop, self.username, secret, f"the POP3 server {e.host}:{e.port}")
        except AuthenticationError as exc:
            raise CheckFailed(str(exc), _login_fix(exc, "POP"), exc.exit_status) from None
        except (OSError, poplib.error_proto) as exc:
            raise CheckFailed(
                f"the connection broke during login: {_server_text(exc)}",
                "Try again.",
                ExitStatus.CONNECT_FAILED,
            ) from None
        return _Outcome(f"logged in as {self.username} ({how})")

    def check_stat(self) -> _Outcome:
        assert self.pop is not None
        try:
            count, size = self.pop.stat()
        except (OSError, poplib.error_proto) as exc:
            raise CheckFailed(
                f"STAT failed: {exc}",
                "The mailbox may be locked by another POP3 client: close it and try again.",
                ExitStatus.CONNECT_FAILED,
            ) from None
        return _Outcome(f"{count} messages ({_fmt_bytes(size)}) on the server")


class _SmtpChecks(_ServerChecks):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.smtp: smtplib.SMTP | None = None

    def steps(self) -> list[Step]:
        return [
            *super().steps(),
            ("ehlo", "submission EHLO", ("tls",), self.check_ehlo),
            ("login", "submission login", ("ehlo",), self.check_login),
        ]

    def close(self) -> None:
        super().close()
        if self.smtp is not None:
            smtp, self.smtp = self.smtp, None
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()

    def check_login(self) -> _Outcome:
        """AUTH PLAIN in UTF-8 (or AUTH LOGIN) on the EHLO step's connection; sends no mail."""
        assert self.smtp is not None
        if self.target.auth.method is AuthKind.OAUTH2:
            return _Outcome(
                "not checked: the SMTP check signs in with a password only", CheckStatus.SKIP
            )
        if not self.smtp.esmtp_features.get("auth"):
            return _Outcome("not checked: the server offers no login", CheckStatus.SKIP)
        try:
            secret = self.secret.get()
        except MailadvisorError as exc:
            raise _secret_failed(exc) from None
        e = self.endpoint
        try:
            how = smtp_login(self.smtp, self.username, secret, f"the SMTP server {e.host}:{e.port}")
        except AuthenticationError as exc:
            raise CheckFailed(str(exc), _login_fix(exc, "SMTP"), exc.exit_status) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise CheckFailed(
                f"the connection broke during login: {exc}", "Try again.", ExitStatus.CONNECT_FAILED
            ) from None
        if how is None:
            offered = self.smtp.esmtp_features.get("auth", "")
            return _Outcome(
                f"not checked: the server offers AUTH {offered}, not PLAIN or LOGIN",
                CheckStatus.SKIP,
            )
        return _Outcome(f"logged in as {self.username} (AUTH {how}); no mail was sent")

    def check_ehlo(self) -> _Outcome:
        e, t = self.endpoint, self.target
        smtp: smtplib.SMTP | None = None
        keep = False
        try:
            if e.security is Security.TLS:
                smtp = smtplib.SMTP_SSL(
                    e.host, e.port, CLIENT_NAME, timeout=t.timeout, context=self.context
                )
            else:
                smtp = smtplib.SMTP(e.host, e.port, CLIENT_NAME, timeout=t.timeout)
                if e.security is Security.STARTTLS:
                    smtp_starttls(smtp, self.context, f"SMTP {e.host}:{e.port}")
            code, _ = smtp.ehlo()
            if code != 250:
                raise CheckFailed(
                    f"EHLO was refused ({code})",
                    "This may not be a mail submission port (465 or 587).",
                    ExitStatus.CONNECT_FAILED,
                )
            auth = smtp.esmtp_features.get("auth", "").split()
            size = smtp.esmtp_features.get("size", "")
            keep = True
        except TLSError as exc:  # stripped, refused or injected STARTTLS: no fallback
            raise CheckFailed(str(exc), _STARTTLS_FIX, exc.exit_status) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise CheckFailed(
                f"the SMTP exchange failed: {exc}",
                "Check the port: submission is 465 (TLS) or 587 (STARTTLS).",
                ExitStatus.CONNECT_FAILED,
            ) from None
        finally:
            if keep:
                self.smtp = smtp  # the login step goes on with it
            elif smtp is not None:
                try:
                    smtp.quit()
                except (OSError, smtplib.SMTPException):
                    smtp.close()
        limit = (
            f"; messages up to {_fmt_bytes(int(size))}" if size.isdigit() and size != "0" else ""
        )
        if not auth:
            return _Outcome(
                f"answers, but offers no login{limit}",
                CheckStatus.WARN,
                "This looks like a server for incoming mail, not submission: use port 465 or 587.",
            )
        return _Outcome(f"AUTH {' '.join(auth)}{limit}; nothing was sent")


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


_CHECKS: dict[Protocol, type[_ServerChecks]] = {
    Protocol.IMAP: _ImapChecks,
    Protocol.POP3: _Pop3Checks,
    Protocol.SMTP: _SmtpChecks,
}


def run_checks(
    target: CheckTarget,
    *,
    on_result: Callable[[CheckResult], None] | None = None,
    resolve: Resolver | None = None,
) -> CheckReport:
    """Run every check against the target's servers, in order; never raises for a failure.

    ``on_result`` is called as each result is ready (to print progress). ``resolve``
    replaces the system's name resolution (tests).
    """
    if target.imap is None and target.pop3 is None and target.smtp is None:
        raise UsageError("nothing to check: no IMAP, POP3 or SMTP server is known")
    if target.ca_file is not None:
        tls_context(target.ca_file)  # a broken ca_file is a usage error, said once
    secret = _Secret(target)
    results: list[CheckResult] = []
    servers = tuple(e for e in (target.imap, target.pop3, target.smtp) if e is not None)
    for endpoint in servers:
        checks = _CHECKS[endpoint.protocol](endpoint, target, secret, resolve or system_resolve)
        try:
            for result in _run_steps(checks):
                results.append(result)
                if on_result is not None:
                    on_result(result)
        finally:
            checks.close()
    return CheckReport(target.email, servers, target.source, tuple(results))


def _run_steps(checks: _ServerChecks) -> Iterator[CheckResult]:
    """Run one server's checks in order, skipping those whose prerequisites did not pass."""
    protocol = checks.endpoint.protocol
    prefix = protocol.value
    passed: set[str] = set()
    titles: dict[str, str] = {}
    for suffix, title, needs, fn in checks.steps():
        titles[suffix] = title
        full_title = f"{checks.name} {title}" if not title.startswith(checks.name) else title
        missing = [n for n in needs if n not in passed]
        if missing:
            yield CheckResult(
                f"{prefix}.{suffix}",
                protocol,
                full_title,
                CheckStatus.SKIP,
                f"skipped: needs {checks.name} {titles.get(missing[0], missing[0])}, "
                "which did not pass",
            )
            continue
        start = time.monotonic()
        try:
            outcome = fn()
        except CheckFailed as exc:
            yield CheckResult(
                f"{prefix}.{suffix}",
                protocol,
                full_title,
                CheckStatus.FAIL,
                exc.detail,
                exc.fix,
                exc.exit_status,
                round(time.monotonic() - start, 3),
            )
            continue
        if outcome.status in (CheckStatus.OK, CheckStatus.WARN):
            passed.add(suffix)
        yield CheckResult(
            f"{prefix}.{suffix}",
            protocol,
            full_title,
            outcome.status,
            outcome.detail,
            outcome.fix,
            seconds=round(time.monotonic() - start, 3),
        )


# --- from a profile ----------------------------------------------------------------


def parse_server_option(protocol: Protocol, spec: str) -> Endpoint:
    """An endpoint from ``tls://HOST:PORT`` or ``starttls://HOST:PORT`` (a CLI option).

    Without a scheme, TLS is meant; without a port, the protocol's usual one.
    """
    from urllib.parse import urlsplit

    text = spec.strip()
    if "://" not in text:
        text = "tls://" + text
    parts = urlsplit(text)
    try:
        security = Security(parts.scheme.lower())
        port = parts.port
    except ValueError:
        security, port = Security.NONE, None
    if security is Security.NONE or not parts.hostname:
        raise UsageError(
            f"{spec!r}: expected tls://HOST:PORT or starttls://HOST:PORT for the "
            f"{_NAMES[protocol]} server"
        )
    return Endpoint(protocol, parts.hostname, port or DEFAULT_PORTS[(protocol, security)], security)


def target_from_profile(
    profile: Profile,
    host: PluginHost,
    *,
    pop3: Endpoint | None = None,
    smtp: Endpoint | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> CheckTarget:
    """What to check for a profile: its [server], else what its provider's plugin says.

    The [server] table names the IMAP server only; POP3 and SMTP are then checked
    when ``pop3`` / ``smtp`` name them. Without [server], all three come from the
    provider plugin (for the generic one, from settings discovery), and ``pop3`` /
    ``smtp`` replace what it says.
    """
    email = profile.account.email
    server = profile.server
    provider = profile.account.provider
    if provider == "auto" and (server is None or profile.auth.method is AuthKind.OAUTH2):
        provider = _provider_for(email, host)
    secret = (
        _oauth_token(profile, host, provider) if profile.auth.method is AuthKind.OAUTH2 else None
    )
    if server is not None:
        return CheckTarget(
            email=email,
            imap=Endpoint(
                Protocol.IMAP, server.host, server.port, server.security, server.username
            ),
            pop3=pop3,
            smtp=smtp,
            auth=profile.auth,
            username=server.username,
            ca_file=server.ca_file,
            allow_insecure=server.allow_insecure,
            timeout=timeout,
            source="the profile's [server] table",
            secret=secret,
        )
    if provider != "auto":
        host.provider(provider)  # a clear error for an unknown name
    settings = host.server_settings(provider, email)
    if settings is None or (settings.imap is None and settings.pop3 is None):
        raise UsageError(
            f"the {provider} plugin names no server for {email}: add a [server] table "
            "to the profile with the IMAP server's host and port"
        )
    untrusted: dict[Protocol, str] = {}
    if not settings.trusted:
        _, domain = split_address(email)
        for e in (settings.imap, settings.pop3, settings.smtp):
            if e is not None and not in_domain(e.host, domain):
                untrusted[e.protocol] = (
                    f"{e.host} is outside {domain} and was learnt from {settings.source}"
                )
    return CheckTarget(
        email=email,
        imap=settings.imap,
        pop3=pop3 or settings.pop3,
        smtp=smtp or settings.smtp,
        auth=profile.auth,
        timeout=timeout,
        untrusted=untrusted,
        source=f"the {provider} plugin ({settings.source})",
        secret=secret,
    )


def _provider_for(email: str, host: PluginHost) -> str:
    """The most confident plugin's provider for ``email`` (its MX hosts help)."""
    return choose_provider(email, host).provider


def _oauth_token(profile: Profile, host: PluginHost, provider: str) -> Callable[[], str]:
    """Gets an OAuth2 access token without asking the user (token_command or stored sign-in)."""

    def get() -> str:
        from advisor.oauth.access import get_access_token

        config = host.oauth_config(provider) if provider != "auto" else None
        return get_access_token(profile, config, interactive=False).token

    return get
