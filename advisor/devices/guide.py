"""What to do on each device, and the order of steps that switches from POP3 losing nothing.

Plain words only; the files themselves come from :mod:`.apple`, :mod:`.android` and
:mod:`.autoconfig`. The command layer and the wizard print these.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from advisor.devices import DeviceAccount
from advisor.plugins.types import Endpoint, Security


class DeviceKind(StrEnum):
    """The devices a user can name."""

    APPLE = "apple"
    """iPhone, iPad, or Mail on a Mac."""
    ANDROID = "android"
    """Thunderbird for Android or K-9 Mail (other apps: the settings as text)."""
    THUNDERBIRD = "thunderbird"
    """Thunderbird on a computer (also Evolution, which reads the same file)."""
    OTHER = "other"
    """Outlook, Windows Mail, any other program: the settings to type in."""


TITLES = {
    DeviceKind.APPLE: "iPhone, iPad or Mac (Apple Mail)",
    DeviceKind.ANDROID: "Android phone or tablet (Thunderbird for Android, K-9 Mail)",
    DeviceKind.THUNDERBIRD: "Thunderbird on another computer",
    DeviceKind.OTHER: "Outlook, Windows Mail or another mail program",
}


def _security(e: Endpoint) -> str:
    return {
        Security.TLS: "SSL/TLS",
        Security.STARTTLS: "STARTTLS",
        Security.NONE: "none (plaintext)",
    }[e.security]


def settings_text(account: DeviceAccount) -> list[str]:
    """The settings to type in by hand, one line each."""
    auth = "OAuth2 (sign in on the provider's page)" if account.oauth2 else "normal password"
    return [
        f"Account type: IMAP; email address: {account.email}",
        f"Incoming (IMAP): {account.imap.host}, port {account.imap.port}, "
        f"{_security(account.imap)}, user name {account.imap_username}, {auth}",
        f"Outgoing (SMTP): {account.smtp.host}, port {account.smtp.port}, "
        f"{_security(account.smtp)}, user name {account.smtp_username}, {auth}",
    ]


@dataclass(frozen=True)
class DeviceSteps:
    kind: DeviceKind
    title: str
    steps: tuple[str, ...]


def steps_for(kind: DeviceKind, account: DeviceAccount, file: str | None = None) -> DeviceSteps:
    """How to set up ``kind`` of device, with ``file`` (what mailadvisor wrote for it)."""
    where = f" ({file})" if file else ""
    if kind is DeviceKind.APPLE and account.oauth2:
        steps: tuple[str, ...] = (
            "Settings > Mail > Accounts > Add Account, choose your provider (Google, "
            "Outlook.com) and sign in on its page; on a Mac: System Settings > Internet "
            "Accounts.",
        )
    elif kind is DeviceKind.APPLE:
        steps = (
            f"Send the profile{where} to the device: AirDrop, or mail it to yourself and "
            "tap the attachment.",
            "Open Settings: 'Profile Downloaded' appears at the top; tap it, then Install. "
            "It shows as 'Unverified' because it is not signed: that is expected for a "
            "profile you made yourself.",
            "Type the account's password when asked"
            + (" (the profile carries it, so keep the file private and delete it after)."
               if account.password else ".")
            + " On a Mac: double-click the file, then System Settings > Privacy & Security "
            "> Profiles.",
        )  # fmt: skip
    elif kind is DeviceKind.ANDROID:
        steps = (
            "Install Thunderbird for Android (or K-9 Mail) from the Play Store or F-Droid.",
            f"On its welcome screen choose 'Import settings', then 'Scan QR code', and scan "
            f"the code{where}.",
            "Type the password when asked" + (" (the code carries it: do not share it)."
                                             if account.password else ".")
            + " Other mail apps: type the settings below by hand.",
        )  # fmt: skip
    elif kind is DeviceKind.THUNDERBIRD:
        steps = (
            "In Thunderbird: Account Settings > Account Actions > Add Mail Account; type "
            "your name, address and password.",
            f"Thunderbird finds the settings itself in most cases; if not, choose 'Configure "
            f"manually' and use the settings below (they are also in the file{where}, which "
            "a web server can offer as /.well-known/autoconfig/mail/config-v1.1.xml for your "
            "domain).",
        )
    else:
        steps = (
            "Add a new account, choose IMAP (not POP) and 'manual setup' or 'advanced', and "
            "type the settings below.",
            "In Outlook: File > Add Account > Advanced options > Let me set up my account "
            "manually > IMAP. In Windows Mail: Settings > Manage accounts > Add account > "
            "Advanced setup > Internet email.",
        )
    return DeviceSteps(kind, TITLES[kind], steps)


def switch_steps(profile_path: str) -> list[str]:
    """The order that loses nothing: devices first, POP3 stopped, catch-up, check, remove."""
    return [
        "Set up your devices with the new IMAP account (above).",
        "Stop the old POP3 account in your old mail program: turn off 'check for new "
        "messages' (or remove its password) so it no longer downloads, and, above all, no "
        "longer deletes mail from the server.",
        f"Catch up: mailadvisor migrate --profile {profile_path}  (copies only what arrived "
        "since the last run, every message once).",
        f"Check: mailadvisor verify --profile {profile_path}",
        "Then remove the POP3 account from the old program. Its mail stays on this "
        "computer's disk until you delete it yourself.",
    ]


def device_advice(imap: bool, devices: int | None) -> list[str]:
    """What to do on the devices the user counted, for the advice (IMAP only)."""
    if not imap:
        return []
    count = f"all {devices} of your devices" if devices and devices > 1 else "each device"
    return [
        f"Set up {count} with IMAP (not POP3), so they all show the same mail and folders.",
        "mailadvisor devices --profile FILE writes what each takes in directly: a profile "
        "for iPhone, iPad and Mac Mail, a QR code for Thunderbird for Android and K-9 Mail, "
        "a file for Thunderbird, and the settings to type into Outlook or Windows Mail.",
        "Stop the POP3 account in your old mail program before you rely on IMAP: while it "
        "runs it may delete new mail from the server.",
    ]
