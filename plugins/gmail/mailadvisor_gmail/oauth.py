"""Signing in to Gmail with OAuth2: Google's endpoints, the mail scope, the client id.

Google lets a desktop app sign in to mail only through the browser with a
loopback redirect and PKCE: its device flow refuses the ``https://mail.google.com/``
scope and the copy-paste ("out of band") flow is gone. mailadvisor has no client
registration of its own: the user creates a "Desktop app" client and gives its id
and secret in the profile or in the environment variables below.
"""

from __future__ import annotations

from advisor import hookimpl
from advisor.plugins.types import OAuthConfig, OAuthFlow

NAME = "gmail"
CLIENT_ID_ENV = "MAILADVISOR_GMAIL_CLIENT_ID"
CLIENT_SECRET_ENV = "MAILADVISOR_GMAIL_CLIENT_SECRET"

OAUTH = OAuthConfig(
    provider=NAME,
    authorization_endpoint="https://accounts.google.com/o/oauth2/v2/auth",
    token_endpoint="https://oauth2.googleapis.com/token",
    scopes=("https://mail.google.com/",),
    device_authorization_endpoint=None,
    flows=(OAuthFlow.BROWSER,),
    redirect_host="127.0.0.1",
    client_id_env=CLIENT_ID_ENV,
    client_secret_env=CLIENT_SECRET_ENV,
    sasl=("XOAUTH2", "OAUTHBEARER"),
    # offline: a refresh token; consent: a new one even when the app was allowed before.
    extra_authorize_params=(("access_type", "offline"), ("prompt", "consent")),
    registration_help=(
        "Create one at console.cloud.google.com: APIs & Services > OAuth consent screen "
        "(add yourself as a test user), then Credentials > Create credentials > OAuth "
        "client ID > Desktop app. Its secret goes into an environment variable named by "
        f"[auth] client_secret_env (or {CLIENT_SECRET_ENV})."
    ),
)


@hookimpl
def mailadvisor_oauth_config(provider: str) -> OAuthConfig | None:
    return OAUTH if provider == NAME else None
