"""OAuth2 sign-in: the flows, token storage, the SASL mechanisms and the token getter.

* :mod:`advisor.oauth.flows`: authorization code + PKCE with a loopback redirect,
  the device flow, refresh (one httpx implementation for every provider);
* :mod:`advisor.oauth.tokens`: refresh tokens in the OS keyring or a 0600 file;
* :mod:`advisor.oauth.sasl`: XOAUTH2 and OAUTHBEARER, and their error challenge;
* :mod:`advisor.oauth.access`: :func:`get_access_token`, the one entry point.

The IMAP side is :func:`advisor.connection.imap.oauth2_login`; the sign-in use case is
:mod:`advisor.connection.signin` (this package opens no mail connection).
"""

from __future__ import annotations

from advisor.oauth.access import AccessToken, TokenSource, get_access_token, resolve_client
from advisor.oauth.flows import (
    DevicePrompt,
    OAuthClient,
    OAuthServerError,
    TokenSet,
    authorization_code_flow,
    device_code_flow,
    refresh,
)
from advisor.oauth.tokens import (
    FileTokenStore,
    KeyringTokenStore,
    StoredToken,
    TokenStore,
    default_store,
    keyring_usable,
)

__all__ = [
    "AccessToken",
    "DevicePrompt",
    "FileTokenStore",
    "KeyringTokenStore",
    "OAuthClient",
    "OAuthServerError",
    "StoredToken",
    "TokenSet",
    "TokenSource",
    "TokenStore",
    "authorization_code_flow",
    "default_store",
    "device_code_flow",
    "get_access_token",
    "keyring_usable",
    "refresh",
    "resolve_client",
]
