"""Getting an OAuth2 access token for a profile's account, the cheapest way first.

1. ``[auth] token_command`` (oama, mutt_oauth2.py...): the user's own tool signs
   in and refreshes; mailadvisor stores nothing.
2. The stored sign-in: the access token while it lives, else a refresh.
3. Only when allowed (``interactive``): a new sign-in in the browser, or with a
   device code where no browser can be opened; its tokens are then stored.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

import httpx

from advisor.errors import AuthenticationError, UsageError
from advisor.oauth.flows import (
    BROWSER_TIMEOUT,
    DevicePrompt,
    Notify,
    OAuthClient,
    OAuthServerError,
    TokenSet,
    authorization_code_flow,
    device_code_flow,
    notify_stderr,
    refresh,
)
from advisor.oauth.sasl import check_token
from advisor.oauth.tokens import StoredToken, TokenStore, default_store, record_from
from advisor.plugins.types import OAuthConfig, OAuthFlow
from advisor.profile import AuthKind, Profile
from advisor.secrets import resolve_secret


class TokenSource(StrEnum):
    """Where an access token came from (shown to the user, never the token)."""

    COMMAND = "token command"
    STORED = "stored sign-in"
    REFRESHED = "refreshed sign-in"
    BROWSER = "browser sign-in"
    DEVICE = "device sign-in"


@dataclass(frozen=True)
class AccessToken:
    """An access token and where it came from; the token is hidden from repr()."""

    token: str = field(repr=False)
    source: TokenSource
    expires_at: float | None = None
    stored_in: str | None = None
    """Where the sign-in is kept (keyring entry or file), when mailadvisor keeps it."""


def resolve_client(
    profile: Profile, config: OAuthConfig, environ: Mapping[str, str] | None = None
) -> OAuthClient:
    """The client registration to use: the profile's, else the environment's, else built in."""
    env = os.environ if environ is None else environ
    auth = profile.auth
    client_id = auth.client_id
    if not client_id and config.client_id_env:
        client_id = env.get(config.client_id_env, "").strip() or None
    client_id = client_id or config.client_id
    if not client_id:
        where = "set [auth] client_id in the profile"
        if config.client_id_env:
            where += f" or the environment variable {config.client_id_env}"
        help_text = f" {config.registration_help}" if config.registration_help else ""
        raise UsageError(
            f"signing in to {config.provider} needs the id of your own OAuth client: "
            f"{where}.{help_text} Or set [auth] token_command to a tool that already "
            "signs you in (oama, mutt_oauth2.py)."
        )
    secret_env = auth.client_secret_env or config.client_secret_env
    secret = None
    if secret_env:
        secret = env.get(secret_env, "").strip() or None
        if secret is None and auth.client_secret_env:
            raise UsageError(
                f"the environment variable {secret_env} (named by [auth] client_secret_env) "
                "is not set or is empty"
            )
    return OAuthClient.from_config(config, client_id, secret)


def _gui_browser_likely(environ: Mapping[str, str]) -> bool:
    """Could a browser opened here reach our loopback listener (a desktop session)?"""
    if environ.get("SSH_CONNECTION") or environ.get("SSH_TTY"):
        return False  # the browser would open on the remote machine, if anywhere
    if sys.platform.startswith("linux") or "bsd" in sys.platform:
        return bool(environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))
    return True


def choose_flow(
    config: OAuthConfig, wanted: OAuthFlow | None, environ: Mapping[str, str] | None = None
) -> OAuthFlow:
    """The sign-in flow: the one asked for if the provider allows it, else the best here."""
    env = os.environ if environ is None else environ
    allowed = config.flows or (OAuthFlow.BROWSER,)
    if wanted is not None:
        if wanted not in allowed:
            names = ", ".join(f.value for f in allowed)
            raise UsageError(
                f"{config.provider} does not allow the {wanted.value} sign-in for mail; "
                f"it allows: {names}"
            )
        if wanted is OAuthFlow.DEVICE and not config.device_authorization_endpoint:
            raise UsageError(f"{config.provider} has no device sign-in endpoint")
        return wanted
    if (
        OAuthFlow.DEVICE in allowed
        and config.device_authorization_endpoint
        and not _gui_browser_likely(env)
    ):
        return OAuthFlow.DEVICE
    return allowed[0]


def get_access_token(
    profile: Profile,
    provider_config: OAuthConfig | None,
    interactive: bool,
    *,
    store: TokenStore | None = None,
    flow: OAuthFlow | None = None,
    force_refresh: bool = False,
    force_sign_in: bool = False,
    open_browser: Callable[[str], object] | None = None,
    notify: Notify = notify_stderr,
    show_device_prompt: Callable[[DevicePrompt], None] | None = None,
    browser_timeout: float = BROWSER_TIMEOUT,
    http: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
    environ: Mapping[str, str] | None = None,
) -> AccessToken:
    """An access token for the profile's account (see the module docstring for the order).

    ``force_refresh`` skips a stored access token that still looks valid (after the
    server refused it); ``force_sign_in`` skips the stored sign-in altogether.
    :class:`AuthenticationError` (exit 3) when no token can be had without the user
    and ``interactive`` is False; :class:`UsageError` for setup problems.
    """
    auth = profile.auth
    if auth.method is not AuthKind.OAUTH2:
        raise UsageError('the profile signs in with a password; OAuth2 needs method = "oauth2"')
    account = profile.account.email
    if auth.token_command:
        token = resolve_secret(auth, account)
        check_token(token)
        return AccessToken(token, TokenSource.COMMAND)
    if provider_config is None:
        raise UsageError(
            f"mailadvisor knows no OAuth2 sign-in for the provider {profile.account.provider!r}; "
            "set [auth] token_command to a command that prints an access token "
            "(oama, mutt_oauth2.py)"
        )
    provider = provider_config.provider
    store = store if store is not None else default_store(require_keyring=auth.keyring)
    where = store.where(provider, account)

    if not force_sign_in:
        stored = store.load(provider, account)
        if stored is not None:
            if stored.access_token and not force_refresh and not _expired(stored):
                return AccessToken(
                    stored.access_token, TokenSource.STORED, stored.expires_at, where
                )
            if stored.refresh_token:
                client = resolve_client(profile, provider_config, environ)
                try:
                    fresh = refresh(client, stored.refresh_token, http=http)
                except OAuthServerError as exc:
                    if exc.error != "invalid_grant":
                        raise
                    # Revoked or expired for good: it is useless, forget it.
                    store.delete(provider, account)
                    if not interactive:
                        raise AuthenticationError(
                            f"the stored sign-in for {account} at {provider} is no longer "
                            "valid (revoked or expired); sign in again with: "
                            "mailadvisor signin --profile FILE"
                        ) from None
                else:
                    _save(store, provider, account, fresh)
                    return AccessToken(
                        fresh.access_token, TokenSource.REFRESHED, fresh.expires_at, where
                    )

    if not interactive:
        raise AuthenticationError(
            f"no stored sign-in for {account} at {provider}; sign in first with: "
            "mailadvisor signin --profile FILE (or set [auth] token_command)"
        )
    client = resolve_client(profile, provider_config, environ)
    if flow is None and open_browser is not None and OAuthFlow.BROWSER in provider_config.flows:
        flow = OAuthFlow.BROWSER  # the caller brought its own way to open the page
    chosen = choose_flow(provider_config, flow, environ)
    if chosen is OAuthFlow.DEVICE:
        tokens = device_code_flow(client, show=show_device_prompt, http=http, sleep=sleep)
        source = TokenSource.DEVICE
    else:
        tokens = authorization_code_flow(
            client,
            open_browser=open_browser,
            notify=notify,
            timeout=browser_timeout,
            login_hint=account,
            http=http,
        )
        source = TokenSource.BROWSER
    _save(store, provider, account, tokens)
    return AccessToken(tokens.access_token, source, tokens.expires_at, where)


def _expired(stored: StoredToken) -> bool:
    return stored.expires_at is None or time.time() >= stored.expires_at - 60


def _save(store: TokenStore, provider: str, account: str, tokens: TokenSet) -> None:
    store.save(
        provider,
        account,
        record_from(tokens.access_token, tokens.refresh_token, tokens.expires_at, tokens.scope),
    )
