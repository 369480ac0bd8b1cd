"""Any IMAP provider: the fallback when no specialised plugin claims an address.

This first version guesses the usual host names; autoconfig, the ISPDB and SRV
records arrive with the settings-discovery work.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from advisor import hookimpl
from advisor.provider import (
    AddressMatch,
    AuthMechanism,
    AuthMethod,
    Endpoint,
    FolderPolicy,
    Protocol,
    ProviderInfo,
    ProviderLimits,
    Security,
    ServerFolder,
    ServerSettings,
    ThrottleAdvice,
)

NAME = "generic"


@hookimpl
def mailadvisor_providers() -> Sequence[ProviderInfo]:
    return [ProviderInfo(NAME, "Any IMAP server")]


@hookimpl
def mailadvisor_match_address(
    email: str, domain: str, mx_hosts: Sequence[str]
) -> AddressMatch | None:
    # Always a candidate, always the least confident one.
    return AddressMatch(NAME, 0.1, "no specialised plugin is needed for a standard IMAP server")


@hookimpl
def mailadvisor_server_settings(provider: str, email: str) -> ServerSettings | None:
    if provider != NAME:
        return None
    domain = email.rpartition("@")[2].lower()
    return ServerSettings(
        imap=Endpoint(Protocol.IMAP, f"imap.{domain}", 993, Security.TLS),
        pop3=Endpoint(Protocol.POP3, f"pop.{domain}", 995, Security.TLS),
        smtp=Endpoint(Protocol.SMTP, f"smtp.{domain}", 465, Security.TLS),
        source="guess",
    )


@hookimpl
def mailadvisor_auth_methods(provider: str, email: str) -> Sequence[AuthMethod] | None:
    if provider != NAME:
        return None
    return [AuthMethod(AuthMechanism.PASSWORD, ("PLAIN", "LOGIN"))]


@hookimpl
def mailadvisor_folder_policy(
    provider: str, server_folders: Sequence[ServerFolder]
) -> FolderPolicy | None:
    # Standard servers announce SPECIAL-USE; nothing to add.
    return FolderPolicy() if provider == NAME else None


@hookimpl
def mailadvisor_limits(provider: str) -> ProviderLimits | None:
    return ProviderLimits() if provider == NAME else None


_UNAVAILABLE = re.compile(r"\[(UNAVAILABLE|LIMIT|INUSE)\]", re.I)


@hookimpl
def mailadvisor_classify_response(provider: str, response: str) -> ThrottleAdvice | None:
    # RFC 5530 response codes that mean "try again later".
    if provider != NAME or not _UNAVAILABLE.search(response):
        return None
    return ThrottleAdvice(30.0, reconnect=True, message="The server asks to try again later.")
