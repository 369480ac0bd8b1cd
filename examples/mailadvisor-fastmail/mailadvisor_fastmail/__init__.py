"""Fastmail: an example third-party mailadvisor provider plugin.

Copy this package to write a plugin for another provider: rename the
distribution, the package and ``NAME``, correct the constants, and keep or drop
hooks. Every hook that concerns one provider receives its name as ``provider``
and must return ``None`` when the name is not its own, so that the plugin that
does serve that provider answers instead.

Facts (servers, domains, sign-in) are kept in the constants below so that a
changed number is corrected in one place. Source: Fastmail's help pages on
server names and app passwords.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from advisor import hookimpl
from advisor.plugins.types import (
    AddressMatch,
    AdviceFactor,
    AuthMechanism,
    AuthMethod,
    Direction,
    Endpoint,
    PreflightFinding,
    Protocol,
    ProviderInfo,
    Security,
    ServerSettings,
    Severity,
)

NAME = "fastmail"
"""The provider name profiles use (``provider = "fastmail"``); unique among plugins."""
DISPLAY_NAME = "Fastmail"
DOMAINS = ("fastmail.com", "fastmail.fm")
"""Address domains Fastmail owns; more exist, but these are the common ones."""
MX_SUFFIXES = ("messagingengine.com",)
"""A custom domain hosted at Fastmail receives its mail on in1-smtp.messagingengine.com etc."""
IMAP = Endpoint(Protocol.IMAP, "imap.fastmail.com", 993, Security.TLS)
POP3 = Endpoint(Protocol.POP3, "pop.fastmail.com", 995, Security.TLS)
SMTP = Endpoint(Protocol.SMTP, "smtp.fastmail.com", 465, Security.TLS)
APP_PASSWORD_HELP = (
    "Fastmail needs an app password for IMAP, POP and SMTP (your normal password is "
    "refused): Fastmail Settings > Privacy & Security > App passwords > New app password."
)


def _is_fastmail_mx(host: str) -> bool:
    """Whether an MX host belongs to Fastmail (exactly a suffix, or a name under it)."""
    host = host.rstrip(".").lower()
    return any(host == s or host.endswith("." + s) for s in MX_SUFFIXES)


@hookimpl
def mailadvisor_providers() -> Sequence[ProviderInfo]:
    """Declare the one provider this plugin serves."""
    return [ProviderInfo(NAME, DISPLAY_NAME, DOMAINS)]


@hookimpl
def mailadvisor_match_address(
    email: str, domain: str, mx_hosts: Sequence[str]
) -> AddressMatch | None:
    """Claim Fastmail's own domains for sure, and custom domains whose mail Fastmail receives."""
    if domain in DOMAINS:
        return AddressMatch(NAME, 1.0, f"{domain} is a Fastmail address")
    for mx in mx_hosts:
        if _is_fastmail_mx(mx):
            host = mx.rstrip(".").lower()
            return AddressMatch(NAME, 0.8, f"mail for {domain} is handled by Fastmail ({host})")
    return None


@hookimpl
def mailadvisor_server_settings(provider: str, email: str) -> ServerSettings | None:
    """Fastmail's servers; the user name is always the full address."""
    if provider != NAME:
        return None
    address = email.strip()
    return ServerSettings(
        imap=replace(IMAP, username=address),
        pop3=replace(POP3, username=address),
        smtp=replace(SMTP, username=address),
        source=f"plugin {NAME}",
    )


@hookimpl
def mailadvisor_auth_methods(provider: str, email: str) -> Sequence[AuthMethod] | None:
    """Only app passwords work for IMAP and POP at Fastmail."""
    if provider != NAME:
        return None
    return [AuthMethod(AuthMechanism.APP_PASSWORD, ("PLAIN", "LOGIN"), APP_PASSWORD_HELP)]


@hookimpl
def mailadvisor_preflight(provider: str, email: str) -> Sequence[PreflightFinding] | None:
    """What to have ready before testing or migrating: an app password."""
    if provider != NAME:
        return None
    return [
        PreflightFinding(
            "app-password",
            Severity.WARNING,
            "Fastmail refuses your normal password over IMAP, POP and SMTP.",
            "Fastmail Settings > Privacy & Security > App passwords: create one with "
            "IMAP/POP/SMTP access and give it to mailadvisor instead of your password.",
        )
    ]


@hookimpl
def mailadvisor_advice_factors(provider: str, email: str) -> Sequence[AdviceFactor] | None:
    """Fastmail's POP shows only the Inbox, which pushes toward IMAP."""
    if provider != NAME:
        return None
    return [
        AdviceFactor(
            "fastmail-pop-inbox-only",
            Direction.IMAP,
            0.3,
            "Over POP, Fastmail hands out only the mail in your Inbox: anything that a rule "
            "or you moved into another folder, and everything you sent, never reaches a POP "
            "client. IMAP shows every folder.",
        )
    ]
