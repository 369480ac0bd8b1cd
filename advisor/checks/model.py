"""What ``mailadvisor test`` reports: the target, one result per step, the report.

Also the small pieces every step shares: the failure a step raises
(:class:`CheckFailed`), what a step returns, the resolver seam and the limits.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from advisor.exitcodes import ExitStatus
from advisor.plugins.types import Endpoint, Protocol
from advisor.profile import AuthConfig

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
