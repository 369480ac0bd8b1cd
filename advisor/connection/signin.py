"""Signing a profile's account in with OAuth2 and proving it works on the IMAP server.

The use case joins oauth/ (the flows, the tokens) with an IMAP login, so it lives in the
connection layer above oauth/, which itself opens no connection to a mail server.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import httpx

from advisor.connection.account import resolve_account
from advisor.connection.imap import ImapTarget, connect, oauth2_login
from advisor.errors import AuthenticationError, UsageError
from advisor.oauth.access import AccessToken, TokenSource, get_access_token
from advisor.oauth.flows import DevicePrompt, Notify, notify_stderr
from advisor.oauth.sasl import MECHANISMS
from advisor.plugins.manager import PluginHost
from advisor.plugins.types import OAuthFlow
from advisor.profile import AuthKind, Profile


@dataclass
class SigninResult:
    """What ``mailadvisor signin`` reports (no token in it)."""

    account: str
    provider: str
    token_source: TokenSource
    stored_in: str | None
    expires_at: str | None
    """Local time the access token expires (ISO 8601), when known."""
    server: str | None = None
    """host:port where the IMAP sign-in was checked."""
    mechanism: str | None = None


def sign_in(
    profile: Profile,
    plugins: PluginHost,
    *,
    flow: OAuthFlow | None = None,
    again: bool = False,
    check: bool = True,
    open_browser: Callable[[str], object] | None = None,
    notify: Notify = notify_stderr,
    show_device_prompt: Callable[[DevicePrompt], None] | None = None,
    http: httpx.Client | None = None,
) -> SigninResult:
    """Get a token (a new sign-in when ``again``), store it, then log in to IMAP with it."""
    if profile.auth.method is not AuthKind.OAUTH2:
        raise UsageError(
            'this profile signs in with a password; signin is for method = "oauth2" accounts'
        )
    access = resolve_account(profile, plugins)
    config = plugins.oauth_config(access.provider)

    def token(*, force_sign_in: bool = False, force_refresh: bool = False) -> AccessToken:
        return get_access_token(
            profile,
            config,
            interactive=True,
            flow=flow,
            open_browser=open_browser,
            show_device_prompt=show_device_prompt,
            http=http,
            notify=notify,
            force_sign_in=force_sign_in,
            force_refresh=force_refresh,
        )

    got = token(force_sign_in=again)
    result = SigninResult(
        account=profile.account.email,
        provider=access.provider,
        token_source=got.source,
        stored_in=got.stored_in,
        expires_at=(
            datetime.fromtimestamp(got.expires_at).isoformat(timespec="seconds")
            if got.expires_at
            else None
        ),
    )
    if not check:
        return result
    mechanisms = config.sasl if config is not None else MECHANISMS
    try:
        result.mechanism = _imap_check(access.target, access.username, got.token, mechanisms)
    except AuthenticationError:
        if got.source is not TokenSource.STORED:
            raise
        # The stored access token looked valid but was refused (revoked): refresh once.
        got = token(force_refresh=True)
        result.token_source = got.source
        result.mechanism = _imap_check(access.target, access.username, got.token, mechanisms)
    result.server = f"{access.target.host}:{access.target.port}"
    return result


def _imap_check(
    target: ImapTarget, username: str, access_token: str, mechanisms: Sequence[str]
) -> str:
    client = connect(target)
    try:
        return oauth2_login(
            client,
            username,
            access_token,
            host=target.host,
            port=target.port,
            mechanism=mechanisms,
        )
    finally:
        with contextlib.suppress(Exception):
            client.logout()
        with contextlib.suppress(Exception):
            client.shutdown()
