"""Any IMAP provider: the fallback when no specialised plugin claims an address.

Its servers come from settings discovery (:mod:`advisor.discovery`): autoconfig,
the ISPDB, the MX host's provider, SRV records, then probing the usual host
names. Discovery runs only when the settings are asked for, never at import, and
with the options of :func:`advisor.discovery.current_options` (``mailadvisor
detect --no-network`` turns it off). When nothing answers, the usual host names
are the last resort, marked as an unchecked guess.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from advisor import hookimpl
from advisor.discovery import current_options, discover, unchecked_guess
from advisor.plugins.types import (
    AddressMatch,
    AuthMechanism,
    AuthMethod,
    FolderPolicy,
    Protocol,
    ProviderInfo,
    ProviderLimits,
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
    options = current_options()
    if options.network:
        found = discover(email, options).settings()
        if found is not None:
            return found
    # Nothing answered, or nothing was looked up: the usual names, unchecked. The source
    # is exactly "guess" so that callers can tell the user it is only a guess.
    guess = {f.endpoint.protocol: f.endpoint for f in unchecked_guess(email, "not checked")}
    return ServerSettings(
        imap=guess[Protocol.IMAP],
        pop3=guess[Protocol.POP3],
        smtp=guess[Protocol.SMTP],
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


_UNAVAILABLE = re.compile(r"\[(UNAVAILABLE|INUSE)\]", re.I)


@hookimpl
def mailadvisor_classify_response(provider: str, response: str) -> ThrottleAdvice | None:
    # RFC 5530 response codes that mean "try again later".
    if provider != NAME or not _UNAVAILABLE.search(response):
        return None
    return ThrottleAdvice(30.0, reconnect=True, message="The server asks to try again later.")
