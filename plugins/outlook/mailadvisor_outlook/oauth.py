"""Signing in to Outlook.com and Microsoft 365 with OAuth2 (Microsoft identity platform).

The ``/common`` authority serves both personal and work/school accounts. Both
the browser sign-in (authorization code + PKCE, loopback redirect on
``http://localhost``) and the device-code flow work for the mail scopes; IMAP
takes XOAUTH2 only. Microsoft issues no secret to a desktop (public) client.
"""

from __future__ import annotations

from advisor import hookimpl
from advisor.plugins.types import OAuthConfig, OAuthFlow

NAME = "outlook"
AUTHORITY = "https://login.microsoftonline.com/common"
CLIENT_ID_ENV = "MAILADVISOR_OUTLOOK_CLIENT_ID"
SCOPES = (
    "https://outlook.office.com/IMAP.AccessAsUser.All",
    "https://outlook.office.com/POP.AccessAsUser.All",
    "https://outlook.office.com/SMTP.Send",
    "offline_access",
)

OAUTH = OAuthConfig(
    provider=NAME,
    authorization_endpoint=f"{AUTHORITY}/oauth2/v2.0/authorize",
    token_endpoint=f"{AUTHORITY}/oauth2/v2.0/token",
    device_authorization_endpoint=f"{AUTHORITY}/oauth2/v2.0/devicecode",
    scopes=SCOPES,
    flows=(OAuthFlow.BROWSER, OAuthFlow.DEVICE),
    redirect_host="localhost",
    client_id_env=CLIENT_ID_ENV,
    client_secret_env=None,
    sasl=("XOAUTH2",),
    registration_help=(
        "Register one at entra.microsoft.com > App registrations > New registration "
        "(accounts in any organizational directory and personal Microsoft accounts), "
        "add the platform 'Mobile and desktop applications' with the redirect URI "
        "http://localhost, turn on 'Allow public client flows' (for the device code), "
        "and add the delegated permissions IMAP.AccessAsUser.All, POP.AccessAsUser.All, "
        "SMTP.Send and offline_access."
    ),
)


@hookimpl
def mailadvisor_oauth_config(provider: str) -> OAuthConfig | None:
    return OAUTH if provider == NAME else None
