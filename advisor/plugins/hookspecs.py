"""The hooks a mailadvisor plugin can implement.

This module holds only the markers and the specifications. Every hook that
concerns one provider takes its ``provider`` name and is ``firstresult``: the
plugin serving that provider answers, every other plugin returns ``None``.
Plugins import the implementation marker as ``from advisor import hookimpl``.
"""

from __future__ import annotations

from collections.abc import Sequence

import pluggy

from advisor.plugins.types import (
    AddressMatch,
    AdviceFactor,
    AuthMethod,
    FolderPolicy,
    OAuthConfig,
    PreflightFinding,
    ProviderInfo,
    ProviderLimits,
    ServerFolder,
    ServerSettings,
    ThrottleAdvice,
    UploadRules,
)

PROJECT_NAME = "mailadvisor"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def mailadvisor_providers() -> Sequence[ProviderInfo]:
    """Name the providers this plugin serves.

    Called once when the plugin manager is built, for every plugin. Returns the
    plugin's providers (usually one). All results are collected; a provider name
    claimed by two plugins is refused for the second one with a warning.
    """
    raise NotImplementedError  # a specification: pluggy never runs its body


@hookspec
def mailadvisor_match_address(
    email: str, domain: str, mx_hosts: Sequence[str]
) -> AddressMatch | None:
    """Say whether this plugin handles an email address.

    Called when a profile says ``provider = "auto"`` and by ``mailadvisor detect``.
    ``mx_hosts`` holds the domain's MX hosts when they could be looked up, else is
    empty. Returns a match with a confidence, or None. All results are collected;
    the most confident match wins.
    """


@hookspec(firstresult=True)
def mailadvisor_server_settings(provider: str, email: str) -> ServerSettings | None:
    """Give the IMAP, POP3 and SMTP servers (host, port, security) for an address.

    Called after the provider is chosen, unless the profile's [server] table
    overrides it. Returns the settings, marked with where they came from, or None
    when ``provider`` is not this plugin's. First result wins.
    """


@hookspec(firstresult=True)
def mailadvisor_auth_methods(provider: str, email: str) -> Sequence[AuthMethod] | None:
    """List the ways to sign in, best first (OAuth2, app password, password...).

    Called by the wizard and ``mailadvisor test`` to choose and explain sign-in.
    Returns None when ``provider`` is not this plugin's. First result wins.
    """


@hookspec(firstresult=True)
def mailadvisor_oauth_config(provider: str) -> OAuthConfig | None:
    """Give the OAuth2 endpoints, scopes and client-id sources for signing in.

    Called when a profile says ``method = "oauth2"`` and no ``token_command``
    provides the token, before the browser or device sign-in and every token
    refresh. Returns the provider's :class:`OAuthConfig`, or None when
    ``provider`` is not this plugin's or it has no OAuth2. First result wins.
    """


@hookspec(firstresult=True)
def mailadvisor_folder_policy(
    provider: str, server_folders: Sequence[ServerFolder]
) -> FolderPolicy | None:
    """Map special folders (Sent, Trash, ...) onto this provider's server folders.

    Called when a migration plans its folders, after LIST. SPECIAL-USE attributes
    the server sends always win; the policy fills the gaps and names folders that
    must never receive mail (Calendar, Contacts, Gmail's All Mail). Returns None
    when ``provider`` is not this plugin's. First result wins.
    """


@hookspec(firstresult=True)
def mailadvisor_upload_rules(provider: str) -> UploadRules | None:
    """Say how messages must be uploaded beyond a plain APPEND.

    Called once when a migration starts. Returns the rules (e.g. flags to set
    again with STORE after APPEND, because the server drops them; labels instead
    of second copies on a server with labels), or None when
    ``provider`` is not this plugin's. First result wins.
    """


@hookspec(firstresult=True)
def mailadvisor_limits(provider: str) -> ProviderLimits | None:
    """Give the provider's limits: message size, daily upload volume, connections.

    Called when a migration is planned (time estimate) and paced. Values the
    server advertises itself (APPENDLIMIT) take precedence. Returns None when
    ``provider`` is not this plugin's. First result wins.
    """


@hookspec(firstresult=True)
def mailadvisor_preflight(provider: str, email: str) -> Sequence[PreflightFinding] | None:
    """List what the user must check or change before migrating.

    Called by ``mailadvisor test`` and the wizard before a migration, e.g. "switch
    IMAP on in the web settings" or "POP is still set to keep a copy". Returns
    findings (possibly empty), or None when ``provider`` is not this plugin's.
    First result wins.
    """


@hookspec(firstresult=True)
def mailadvisor_classify_response(provider: str, response: str) -> ThrottleAdvice | None:
    """Read a server response for throttling or quota signals.

    Called when a command fails or the server says BYE during a migration, with
    the response text. Returns what to do (wait and retry, reconnect, or stop),
    or None when the response is not a throttling signal or ``provider`` is not
    this plugin's. First result wins.
    """


@hookspec(firstresult=True)
def mailadvisor_advice_factors(provider: str, email: str) -> Sequence[AdviceFactor] | None:
    """Add provider-specific factors to the POP3-or-IMAP advice.

    Called by the advice engine once the provider is known, e.g. "iCloud offers
    no POP3" or "Outlook.com needs POP switched on". Returns the factors
    (possibly empty), or None when ``provider`` is not this plugin's. First
    result wins.
    """
