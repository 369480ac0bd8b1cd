"""What to check for a profile: its [server], else its provider plugin's settings.

The provider is chosen as everywhere else (:func:`advisor.connection.account.profile_provider`,
the MX-aware :func:`advisor.discovery.choose_provider`); CLI options name extra servers.
"""

from __future__ import annotations

from collections.abc import Callable

from advisor.checks.model import _NAMES, DEFAULT_TIMEOUT, CheckTarget
from advisor.connection.account import profile_provider
from advisor.discovery import split_address
from advisor.discovery.domains import in_domain
from advisor.errors import (
    UsageError,
)
from advisor.plugins.manager import PluginHost
from advisor.plugins.types import DEFAULT_PORTS, Endpoint, Protocol, Security
from advisor.profile import AuthKind, Profile


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
        provider = profile_provider(profile, host)
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


def _oauth_token(profile: Profile, host: PluginHost, provider: str) -> Callable[[], str]:
    """Gets an OAuth2 access token without asking the user (token_command or stored sign-in)."""

    def get() -> str:
        from advisor.oauth.access import get_access_token

        config = host.oauth_config(provider) if provider != "auto" else None
        return get_access_token(profile, config, interactive=False).token

    return get
