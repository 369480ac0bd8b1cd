"""From a profile to a signed-in IMAP connection: which provider, server and credentials."""

from __future__ import annotations

from dataclasses import dataclass, field

import imapclient
import imapclient.exceptions

from advisor.errors import AuthenticationError, ConnectError, UsageError
from advisor.imap_connection import ImapTarget, connect, login
from advisor.plugin_manager import PluginHost
from advisor.profile import AuthKind, Profile
from advisor.secrets import resolve_secret


@dataclass
class AccountAccess:
    """How to reach and sign in to the account a profile names. Holds no secret until used."""

    email: str
    provider: str
    target: ImapTarget
    username: str
    profile: Profile
    _secret: str | None = field(default=None, repr=False)

    def secret(self) -> str:
        """The password or access token, resolved once (from env, command or keyring)."""
        if self._secret is None:
            self._secret = resolve_secret(self.profile.auth, self.email)
        return self._secret

    def open(self) -> imapclient.IMAPClient:
        """A new connection, secured and logged in. The caller logs out."""
        client = connect(self.target)
        try:
            if self.profile.auth.method is AuthKind.OAUTH2:
                self._oauth2(client)
            else:
                login(client, self.username, self.secret())
        except BaseException:
            _quietly_close(client)
            raise
        return client

    def _oauth2(self, client: imapclient.IMAPClient) -> None:
        try:
            client.oauth2_login(self.username, self.secret())
        except imapclient.exceptions.LoginError:
            raise AuthenticationError(
                f"the server refused the OAuth2 token for {self.username!r}; sign in again"
            ) from None
        except (OSError, imapclient.exceptions.IMAPClientError) as exc:
            raise ConnectError(f"the connection broke during sign-in: {exc}") from None


def resolve_account(profile: Profile, plugins: PluginHost) -> AccountAccess:
    """Choose provider and server for a profile ([server] overrides the provider plugin)."""
    email = profile.account.email
    provider = profile.account.provider
    if provider == "auto":
        matches = plugins.match_address(email)
        if not matches:
            raise UsageError(f"no plugin handles {email}; add a [server] table to the profile")
        provider = matches[0].provider
    if profile.server is not None:
        s = profile.server
        target = ImapTarget(s.host, s.port, s.security, s.ca_file, s.allow_insecure)
        return AccountAccess(email, provider, target, s.username or email, profile)
    settings = plugins.server_settings(provider, email)
    if settings is None or settings.imap is None:
        raise UsageError(
            f"the {provider} plugin knows no IMAP server for {email}; "
            "add a [server] table with host, port and security to the profile"
        )
    imap = settings.imap
    target = ImapTarget(imap.host, imap.port, imap.security)
    return AccountAccess(email, provider, target, imap.username or email, profile)


def _quietly_close(client: imapclient.IMAPClient) -> None:
    try:
        client.shutdown()
    except Exception:  # already broken; the original error matters
        return
