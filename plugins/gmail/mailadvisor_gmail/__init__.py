"""Gmail and Google Workspace.

Facts (servers, limits, folder rules) are kept in the constants below so that
a changed number is corrected in one place.
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
from mailadvisor_gmail.oauth import mailadvisor_oauth_config as mailadvisor_oauth_config

NAME = "gmail"
DOMAINS = ("gmail.com", "googlemail.com")
MX_SUFFIXES = ("google.com", "googlemail.com")  # Workspace domains keep their own name
IMAP = Endpoint(Protocol.IMAP, "imap.gmail.com", 993, Security.TLS)
POP3 = Endpoint(Protocol.POP3, "pop.gmail.com", 995, Security.TLS)
SMTP = Endpoint(Protocol.SMTP, "smtp.gmail.com", 465, Security.TLS)
LIMITS = ProviderLimits(
    max_message_bytes=35_651_584,  # APPENDLIMIT Gmail advertises
    daily_upload_bytes=500 * 1024 * 1024,  # Workspace: 500 MB/day of IMAP upload
    max_connections=15,
    # A free account's 15 GB, shared with Drive and Photos; Gmail reports its QUOTA too.
    mailbox_bytes=15 * 1024**3,
)
ALL_MAIL_ROLE = "\\All"
# Folders are labels: a message kept in several folders is stored once, with one label each.
UPLOAD_RULES = UploadRules(labels_for_copies=True)


@hookimpl
def mailadvisor_providers() -> Sequence[ProviderInfo]:
    return [ProviderInfo(NAME, "Gmail / Google Workspace", DOMAINS)]


@hookimpl
def mailadvisor_match_address(
    email: str, domain: str, mx_hosts: Sequence[str]
) -> AddressMatch | None:
    return match_domains(NAME, "Google", domain, mx_hosts, DOMAINS, MX_SUFFIXES)


@hookimpl
def mailadvisor_server_settings(provider: str, email: str) -> ServerSettings | None:
    if provider != NAME:
        return None
    return ServerSettings(imap=IMAP, pop3=POP3, smtp=SMTP, source=f"plugin {NAME}")


@hookimpl
def mailadvisor_auth_methods(provider: str, email: str) -> Sequence[AuthMethod] | None:
    if provider != NAME:
        return None
    return [
        AuthMethod(
            AuthMechanism.OAUTH2, ("XOAUTH2", "OAUTHBEARER"), "Sign in with Google in your browser."
        ),
        AuthMethod(
            AuthMechanism.APP_PASSWORD,
            ("PLAIN", "LOGIN"),
            "Needs 2-Step Verification; create one at myaccount.google.com/apppasswords.",
        ),
    ]


@hookimpl
def mailadvisor_folder_policy(
    provider: str, server_folders: Sequence[ServerFolder]
) -> FolderPolicy | None:
    if provider != NAME:
        return None
    # Gmail's names are localised ("E-mails enviados"): only the attributes are reliable,
    # so no role is filled by name here; All Mail is never a target unless the user asks.
    never = frozenset(f.name for f in server_folders if ALL_MAIL_ROLE in f.flags)
    return FolderPolicy(roles={}, never_upload=never)


@hookimpl
def mailadvisor_upload_rules(provider: str) -> UploadRules | None:
    return UPLOAD_RULES if provider == NAME else None


@hookimpl
def mailadvisor_limits(provider: str) -> ProviderLimits | None:
    return LIMITS if provider == NAME else None


@hookimpl
def mailadvisor_preflight(provider: str, email: str) -> Sequence[PreflightFinding] | None:
    if provider != NAME:
        return None
    return [
        PreflightFinding(
            "labels-visible",
            Severity.INFO,
            "Labels hidden from IMAP do not show uploaded mail.",
            "Gmail settings > Labels: tick 'Show in IMAP' for every label you use.",
        ),
        PreflightFinding(
            "folder-size-limit",
            Severity.WARNING,
            "The 'Limit IMAP folders to contain no more than N messages' setting hides mail.",
            "Gmail settings > Forwarding and POP/IMAP > Folder size limits: no limit.",
        ),
        PreflightFinding(
            "pop-keep-copy",
            Severity.WARNING,
            "A POP client still collecting this account would download everything again.",
            "Switch the old client to IMAP, or set Gmail's POP to 'only mail from now on'.",
        ),
    ]


_THROTTLE = re.compile(
    r"OVERQUOTA|Too many simultaneous connections|Session expired|"
    r"Account exceeded bandwidth|\[THROTTLED\]",
    re.I,
)


@hookimpl
def mailadvisor_classify_response(provider: str, response: str) -> ThrottleAdvice | None:
    if provider != NAME or not _THROTTLE.search(response):
        return None
    if re.search(r"OVERQUOTA|bandwidth", response, re.I):
        return ThrottleAdvice(
            None,
            message="Gmail's daily upload allowance is spent; "
            "resume tomorrow (the run picks up where it stopped).",
        )
    if re.search(r"simultaneous", response, re.I):
        return ThrottleAdvice(30.0, reconnect=True, message="Too many connections; using fewer.")
    # "Session expired, please login again": a new session is what Gmail asks for, not a pause.
    return ThrottleAdvice(1.0, reconnect=True, message="Gmail ended the session; reconnecting.")


@hookimpl
def mailadvisor_advice_factors(provider: str, email: str) -> Sequence[AdviceFactor] | None:
    if provider != NAME:
        return None
    return [
        AdviceFactor(
            "gmail-pop",
            Direction.IMAP,
            0.3,
            "Google calls POP 'prone to losing messages or downloading the same messages "
            "multiple times'; IMAP is always on at Gmail, POP must be switched on.",
        )
    ]
