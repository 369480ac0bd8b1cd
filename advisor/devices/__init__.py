"""Settings the user's devices take in directly: the new IMAP account, once, for each device.

:class:`DeviceAccount` is the account as every format needs it (IMAP in, SMTP out, how
to sign in); :mod:`.apple` writes an Apple configuration profile, :mod:`.android` the
QR code Thunderbird for Android and K-9 Mail import, :mod:`.autoconfig` a Thunderbird
autoconfig file, and :mod:`.guide` the steps in plain words for each device. Nothing
here writes into a mail program's own files. No password goes into any of them unless
the caller passes one explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from advisor.checks import target_from_profile
from advisor.errors import UsageError
from advisor.plugins.manager import PluginHost
from advisor.plugins.types import Endpoint, Protocol, Security
from advisor.profile import AuthKind, Profile


@dataclass(frozen=True)
class DeviceAccount:
    """One account as a device's mail app needs it."""

    email: str
    display_name: str
    imap: Endpoint
    smtp: Endpoint
    oauth2: bool
    """Sign-in through the provider's page (Gmail, Outlook), not a password."""
    provider: str = ""
    password: str | None = field(default=None, repr=False)
    """Only when the user asked for it to be included; never from a profile."""

    @property
    def imap_username(self) -> str:
        return self.imap.username or self.email

    @property
    def smtp_username(self) -> str:
        return self.smtp.username or self.email

    def with_password(self, password: str) -> DeviceAccount:
        return replace(self, password=password)


def device_account(
    profile: Profile,
    plugins: PluginHost,
    *,
    smtp: Endpoint | None = None,
    display_name: str = "",
) -> DeviceAccount:
    """The profile's account for devices: its IMAP server, and the provider's SMTP server.

    ``smtp`` names the outgoing server when neither the profile nor the provider
    plugin knows it; :class:`UsageError` when nobody does, since every device needs one.
    """
    target = target_from_profile(profile, plugins, smtp=smtp)
    if target.imap is None:
        raise UsageError(f"no IMAP server is known for {profile.account.email}")
    outgoing = target.smtp
    if outgoing is None:
        raise UsageError(
            f"the outgoing (SMTP) server for {profile.account.email} is not known: give it "
            "with --smtp tls://HOST:465 (or starttls://HOST:587); your provider's help "
            "pages name it"
        )
    username = target.username or target.imap.username
    imap = replace(target.imap, protocol=Protocol.IMAP, username=username or profile.account.email)
    outgoing = replace(outgoing, username=outgoing.username or imap.username)
    return DeviceAccount(
        email=profile.account.email,
        display_name=display_name,
        imap=imap,
        smtp=outgoing,
        oauth2=profile.auth.method is AuthKind.OAUTH2,
        provider=profile.account.provider,
    )


def uses_tls(endpoint: Endpoint) -> bool:
    """Implicit TLS or STARTTLS: either way the password never crosses in the clear."""
    return endpoint.security in (Security.TLS, Security.STARTTLS)
