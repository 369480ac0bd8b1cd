"""Data that provider plugins hand to the core through the hooks.

Plain frozen dataclasses, so a plugin needs nothing but ``advisor`` to build
them and the core can render, compare and serialise them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum


class Security(StrEnum):
    """How a connection is secured."""

    TLS = "tls"
    """Implicit TLS from the first byte (RFC 8314): the default."""
    STARTTLS = "starttls"
    """Plaintext greeting, then STARTTLS, enforced: no fallback."""
    NONE = "none"
    """No encryption at all: only with an explicit ``allow_insecure``."""


class Protocol(StrEnum):
    """The mail protocols mailadvisor speaks or checks."""

    IMAP = "imap"
    POP3 = "pop3"
    SMTP = "smtp"


DEFAULT_PORTS: dict[tuple[Protocol, Security], int] = {
    (Protocol.IMAP, Security.TLS): 993,
    (Protocol.IMAP, Security.STARTTLS): 143,
    (Protocol.IMAP, Security.NONE): 143,
    (Protocol.POP3, Security.TLS): 995,
    (Protocol.POP3, Security.STARTTLS): 110,
    (Protocol.POP3, Security.NONE): 110,
    (Protocol.SMTP, Security.TLS): 465,
    (Protocol.SMTP, Security.STARTTLS): 587,
    (Protocol.SMTP, Security.NONE): 587,
}


@dataclass(frozen=True)
class Endpoint:
    """One server a client talks to."""

    protocol: Protocol
    host: str
    port: int
    security: Security = Security.TLS
    username: str | None = None
    """Login name; None means the email address."""


@dataclass(frozen=True)
class ServerSettings:
    """Where an account's servers are, and how the answer was found."""

    imap: Endpoint | None = None
    pop3: Endpoint | None = None
    """None when the provider offers no POP3 (iCloud)."""
    smtp: Endpoint | None = None
    source: str = "plugin"
    """Where these settings came from, for the user: "plugin gmail", "autoconfig", "guess"..."""
    trusted: bool = True
    """False when a host lies outside the user's domain and was learnt indirectly (RFC 7817)."""


@dataclass(frozen=True)
class ProviderInfo:
    """A provider a plugin serves. Names are unique across all loaded plugins."""

    name: str
    """Short identifier used in profiles (``provider = "gmail"``)."""
    display_name: str
    domains: Sequence[str] = ()
    """Address domains the provider owns, e.g. ("gmail.com", "googlemail.com")."""


@dataclass(frozen=True)
class AddressMatch:
    """A plugin's claim that it handles an address, with how sure it is."""

    provider: str
    confidence: float
    """0..1: 1.0 for an owned domain, ~0.8 for an MX match, low for a generic fallback."""
    reason: str


def match_domains(
    provider: str,
    company: str,
    domain: str,
    mx_hosts: Sequence[str],
    domains: Sequence[str],
    mx_suffixes: Sequence[str] = (),
) -> AddressMatch | None:
    """The usual ``mailadvisor_match_address`` answer for a provider that owns ``domains``
    and receives mail for custom domains at MX hosts ending in ``mx_suffixes``."""
    if domain in domains:
        return AddressMatch(provider, 1.0, f"{domain} is a {company} address")
    for mx in mx_hosts:
        host = mx.rstrip(".").lower()
        if any(host == s or host.endswith("." + s) for s in mx_suffixes):
            return AddressMatch(
                provider, 0.8, f"mail for {domain} is handled by {company} ({host})"
            )
    return None


class AuthMechanism(StrEnum):
    """Ways to sign in."""

    PASSWORD = "password"
    APP_PASSWORD = "app-password"
    OAUTH2 = "oauth2"


@dataclass(frozen=True)
class AuthMethod:
    """One way to sign in to a provider, in order of preference."""

    mechanism: AuthMechanism
    sasl: Sequence[str] = ()
    """SASL mechanisms to use with it, e.g. ("XOAUTH2", "OAUTHBEARER") or ("PLAIN", "LOGIN")."""
    note: str = ""
    """Plain-words hint for the user (where to make an app password...)."""


class FolderRole(StrEnum):
    """Special folders (RFC 6154 attributes plus the inbox)."""

    INBOX = "inbox"
    SENT = "sent"
    DRAFTS = "drafts"
    TRASH = "trash"
    JUNK = "junk"
    ARCHIVE = "archive"
    ALL = "all"
    FLAGGED = "flagged"


@dataclass(frozen=True)
class ServerFolder:
    """One mailbox as LIST reports it."""

    name: str
    """Decoded name (not modified UTF-7)."""
    delimiter: str | None
    flags: frozenset[str] = frozenset()
    """LIST attributes as sent, e.g. {"\\HasNoChildren", "\\Sent"}."""


@dataclass(frozen=True)
class FolderPolicy:
    """How a provider wants local folders placed on its server."""

    roles: dict[FolderRole, str] = field(default_factory=dict)
    """Server folder to use for each special role when no SPECIAL-USE attribute says so."""
    never_upload: frozenset[str] = frozenset()
    """Server folders that are not mail (Calendar, Contacts...) or must not be filled (All Mail)."""


@dataclass(frozen=True)
class ProviderLimits:
    """Limits that pace a migration and feed the plan's time estimate. None = unknown."""

    max_message_bytes: int | None = None
    daily_upload_bytes: int | None = None
    max_connections: int | None = None
    messages_per_folder: int | None = None
    mailbox_bytes: int | None = None
    """The storage a mailbox of this provider has, as the provider publishes it; used
    to warn (never to stop) when the server itself does not report a quota."""


@dataclass(frozen=True)
class UploadRules:
    """How a provider wants messages uploaded, beyond plain APPEND: flags to set again
    after it, and labels instead of second copies where the server has labels."""

    flags_after_append: frozenset[str] = frozenset()
    """Flags the server may drop when given with APPEND; they are set again with
    STORE once the message is stored (Outlook loses \\Flagged)."""
    labels_for_copies: bool = False
    """The server keeps one message under several labels (Gmail): a message whose exact
    bytes are in several local folders is uploaded once, into the first folder met, and
    each other folder becomes an extra label on it (``UID STORE +X-GM-LABELS``) instead
    of a second copy; identical copies within one folder are stored once. Only used
    when the server offers X-GM-EXT-1; Trash and Spam never share a message."""


class Severity(StrEnum):
    """How much a preflight finding matters."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class PreflightFinding:
    """Something the user should know or do before migrating."""

    check: str
    severity: Severity
    message: str
    fix: str = ""


@dataclass(frozen=True)
class ThrottleAdvice:
    """What to do after a server response that signals throttling or a quota."""

    retry_after_seconds: float | None
    """Wait this long, then retry; None means do not retry (e.g. daily quota spent)."""
    reconnect: bool = False
    message: str = ""


class Direction(StrEnum):
    """Where a factor pushes the POP3-or-IMAP advice."""

    IMAP = "imap"
    POP3 = "pop3"
    CONSTRAINT = "constraint"
    """Not a preference: something that must be so (no POP3 at all, a toggle to switch on)."""


@dataclass(frozen=True)
class AdviceFactor:
    """One reason in the POP3-or-IMAP advice, in plain words."""

    name: str
    direction: Direction
    weight: float
    """0..1, how strongly it pushes."""
    explanation: str


class OAuthFlow(StrEnum):
    """Ways to get the first OAuth2 token from the user."""

    BROWSER = "browser"
    """Authorization code with PKCE in the system browser, loopback redirect (RFC 8252)."""
    DEVICE = "device"
    """Device authorization grant (RFC 8628): a code to enter on any device's browser."""


@dataclass(frozen=True)
class OAuthConfig:
    """How to sign in to a provider with OAuth2 (endpoints, scopes, where the client id is).

    A provider registers no client for mailadvisor: the user brings a client id
    (and, for Google, a client secret) from their own registration, through the
    profile's ``[auth] client_id`` or the environment variables named here.
    """

    provider: str
    authorization_endpoint: str
    token_endpoint: str
    scopes: tuple[str, ...]
    device_authorization_endpoint: str | None = None
    """None when the provider has no device flow for mail scopes (Google)."""
    flows: tuple[OAuthFlow, ...] = (OAuthFlow.BROWSER,)
    """Flows the provider allows for these scopes, preferred first."""
    redirect_host: str = "127.0.0.1"
    """Host of the loopback redirect URI: "127.0.0.1" (RFC 8252) or "localhost" (Microsoft)."""
    client_id: str | None = None
    """A built-in client id, if the plugin ships one."""
    client_id_env: str | None = None
    """Environment variable the user may set to their client id."""
    client_secret_env: str | None = None
    """Environment variable holding the client secret, for providers that issue one."""
    sasl: tuple[str, ...] = ("XOAUTH2",)
    """SASL mechanisms for IMAP/POP/SMTP, preferred first."""
    extra_authorize_params: tuple[tuple[str, str], ...] = ()
    """Added to the authorization request, e.g. Google's ("access_type", "offline")."""
    registration_help: str = ""
    """Plain words on where to register a client and get its id."""
