"""Outlook.com and Microsoft 365 / Exchange Online.

Facts are kept in the constants below so a changed number is corrected in one place.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from advisor import hookimpl
from advisor.plugins.types import (
    AddressMatch,
    AdviceFactor,
    AuthMechanism,
    AuthMethod,
    Direction,
    Endpoint,
    FolderPolicy,
    FolderRole,
    PreflightFinding,
    Protocol,
    ProviderInfo,
    ProviderLimits,
    Security,
    ServerFolder,
    ServerSettings,
    Severity,
    ThrottleAdvice,
    UploadRules,
    match_domains,
)

# OAuth2 sign-in lives in its own module; importing the hook here registers it.
from mailadvisor_outlook.oauth import mailadvisor_oauth_config as mailadvisor_oauth_config

NAME = "outlook"
DOMAINS = ("outlook.com", "hotmail.com", "live.com", "msn.com", "hotmail.co.uk", "outlook.de")
MX_SUFFIXES = ("protection.outlook.com", "olc.protection.outlook.com")
IMAP = Endpoint(Protocol.IMAP, "outlook.office365.com", 993, Security.TLS)
POP3 = Endpoint(Protocol.POP3, "outlook.office365.com", 995, Security.TLS)
SMTP_PERSONAL = Endpoint(Protocol.SMTP, "smtp-mail.outlook.com", 587, Security.STARTTLS)
SMTP_365 = Endpoint(Protocol.SMTP, "smtp.office365.com", 587, Security.STARTTLS)
LIMITS = ProviderLimits(
    max_message_bytes=35 * 1024 * 1024,
    max_connections=20,
    # Outlook.com's free mailbox; Microsoft 365 plans hold 50-100 GB: a warning only.
    mailbox_bytes=15 * 1024**3,
)
ROLE_NAMES = {
    FolderRole.SENT: "Sent Items",
    FolderRole.TRASH: "Deleted Items",
    FolderRole.JUNK: "Junk Email",
    FolderRole.DRAFTS: "Drafts",
    FolderRole.ARCHIVE: "Archive",
}
NOT_MAIL = frozenset({"Calendar", "Contacts", "Tasks", "Notes", "Journal", "Outbox", "Files"})


@hookimpl
def mailadvisor_providers() -> Sequence[ProviderInfo]:
    return [ProviderInfo(NAME, "Outlook.com / Microsoft 365", DOMAINS)]


@hookimpl
def mailadvisor_match_address(
    email: str, domain: str, mx_hosts: Sequence[str]
) -> AddressMatch | None:
    return match_domains(NAME, "Microsoft", domain, mx_hosts, DOMAINS, MX_SUFFIXES)


@hookimpl
def mailadvisor_server_settings(provider: str, email: str) -> ServerSettings | None:
    if provider != NAME:
        return None
    personal = email.rpartition("@")[2].lower() in DOMAINS
    return ServerSettings(
        imap=IMAP, pop3=POP3, smtp=SMTP_PERSONAL if personal else SMTP_365, source=f"plugin {NAME}"
    )


@hookimpl
def mailadvisor_auth_methods(provider: str, email: str) -> Sequence[AuthMethod] | None:
    if provider != NAME:
        return None
    # Password sign-in for IMAP/POP ended (Microsoft 365 in 2022, Outlook.com in 2024).
    return [AuthMethod(AuthMechanism.OAUTH2, ("XOAUTH2",), "Sign in with your Microsoft account.")]


@hookimpl
def mailadvisor_folder_policy(
    provider: str, server_folders: Sequence[ServerFolder]
) -> FolderPolicy | None:
    if provider != NAME:
        return None
    never = frozenset(
        f.name for f in server_folders if f.name.split(f.delimiter or "/")[0] in NOT_MAIL
    )
    return FolderPolicy(roles=dict(ROLE_NAMES), never_upload=never | NOT_MAIL)


@hookimpl
def mailadvisor_upload_rules(provider: str) -> UploadRules | None:
    # A \Flagged given with APPEND can be lost: set it again afterwards.
    return UploadRules(flags_after_append=frozenset({"\\Flagged"})) if provider == NAME else None


@hookimpl
def mailadvisor_limits(provider: str) -> ProviderLimits | None:
    return LIMITS if provider == NAME else None


@hookimpl
def mailadvisor_preflight(provider: str, email: str) -> Sequence[PreflightFinding] | None:
    if provider != NAME:
        return None
    return [
        PreflightFinding(
            "imap-enabled",
            Severity.WARNING,
            "Outlook.com keeps POP and IMAP switched off until you turn them on.",
            "outlook.com > Settings > Mail > Forwarding and IMAP: allow IMAP (and POP if used).",
        )
    ]


_BACKOFF = re.compile(r"Request is throttled\. Suggested Backoff Time: (\d+) milliseconds", re.I)


@hookimpl
def mailadvisor_classify_response(provider: str, response: str) -> ThrottleAdvice | None:
    if provider != NAME:
        return None
    match = _BACKOFF.search(response)
    if match:
        return ThrottleAdvice(
            int(match.group(1)) / 1000,
            reconnect=True,
            message="Microsoft is throttling; waiting as it suggests.",
        )
    if "BYE Connection closed" in response:
        return ThrottleAdvice(60.0, reconnect=True, message="Microsoft closed the connection.")
    return None


@hookimpl
def mailadvisor_advice_factors(provider: str, email: str) -> Sequence[AdviceFactor] | None:
    if provider != NAME:
        return None
    return [
        AdviceFactor(
            "outlook-toggle",
            Direction.CONSTRAINT,
            0.0,
            "Outlook.com needs POP or IMAP switched on in its web settings "
            "before any client works.",
        )
    ]
