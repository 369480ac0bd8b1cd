"""From a profile to a signed-in IMAP connection: which provider, server and credentials."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import imapclient

from advisor.connection.imap import ImapTarget, connect, login, oauth2_login
from advisor.errors import AuthenticationError, UsageError
from advisor.oauth import sasl
from advisor.plugins.manager import PluginHost
from advisor.plugins.types import OAuthConfig
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
    oauth: OAuthConfig | None = None
    """The provider's OAuth2 settings, for method = "oauth2"."""
    _secret: str | None = field(default=None, repr=False)

    def with_secret(self, secret: str) -> AccountAccess:
        """The same access, signing in with a secret the user typed (kept in memory only)."""
        return replace(self, _secret=secret)

    def secret(self) -> str:
        """The password or access token, resolved once (from env, command or keyring)."""
        if self._secret is None:
            self._secret = resolve_secret(self.profile.auth, self.email)
        return self._secret

    def open(self) -> imapclient.IMAPClient:
        """A new connection, secured and logged in. The caller logs out."""
        if self.profile.auth.method is AuthKind.OAUTH2:
            return self._open_oauth2()
        client = connect(self.target)
        try:
            login(client, self.username, self.secret())
        except BaseException:
            _quietly_close(client)
            raise
        return client

    def _open_oauth2(self) -> imapclient.IMAPClient:
        # Asked for on every connection, never cached here: access tokens last about an
        # hour and a migration can last days; the token store refreshes them when due.
        from advisor.oauth.access import TokenSource, get_access_token

        mechanisms = tuple(self.oauth.sasl) if self.oauth and self.oauth.sasl else sasl.MECHANISMS
        token = get_access_token(self.profile, self.oauth, interactive=False)
        while True:
            client = connect(self.target)
            try:
                oauth2_login(
                    client,
                    self.username,
                    token.token,
                    host=self.target.host,
                    port=self.target.port,
                    mechanism=mechanisms,
                )
                return client
            except AuthenticationError:
                _quietly_close(client)
                if token.source is not TokenSource.STORED:
                    raise
                # Revoked or expired early at the provider: refresh once and try again.
                token = get_access_token(
                    self.profile, self.oauth, interactive=False, force_refresh=True
                )
            except BaseException:
                _quietly_close(client)
                raise


def profile_provider(profile: Profile, plugins: PluginHost) -> str:
    """The profile's provider: the name it gives, or for "auto" the most confident plugin's.

    The same MX-aware choice (:func:`advisor.discovery.choose_provider`) as ``test``,
    ``detect``, ``migrate`` and the wizard.
    """
    provider = profile.account.provider
    if provider == "auto":
        from advisor.discovery import choose_provider

        provider = choose_provider(profile.account.email, plugins).provider
    return provider


def resolve_account(profile: Profile, plugins: PluginHost) -> AccountAccess:
    """Choose provider and server for a profile ([server] overrides the provider plugin)."""
    email = profile.account.email
    provider = profile_provider(profile, plugins)
    if profile.server is not None:
        s = profile.server
        target = ImapTarget(s.host, s.port, s.security, s.ca_file, s.allow_insecure)
        return AccountAccess(
            email, provider, target, s.username or email, profile, plugins.oauth_config(provider)
        )
    settings = plugins.server_settings(provider, email)
    if settings is None or settings.imap is None:
        raise UsageError(
            f"the {provider} plugin knows no IMAP server for {email}; "
            "add a [server] table with host, port and security to the profile"
        )
    imap = settings.imap
    if not settings.trusted:
        # RFC 7817: a host learnt from MX, SRV or a redirect outside the user's domain is
        # not sent a password until the user confirms it (by writing it down).
        raise UsageError(
            f"the server found for {email} ({imap.host}, from {settings.source}) lies outside "
            "your domain and is not trusted yet; if it is right, confirm it by adding a "
            "[server] table with that host to the profile (`mailadvisor detect` shows it)"
        )
    target = ImapTarget(imap.host, imap.port, imap.security)
    return AccountAccess(
        email, provider, target, imap.username or email, profile, plugins.oauth_config(provider)
    )


def _quietly_close(client: imapclient.IMAPClient) -> None:
    try:
        client.shutdown()
    except Exception:  # already broken; the original error matters
        return
