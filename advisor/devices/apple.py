"""An Apple configuration profile (.mobileconfig) for iPhone, iPad and Mac Mail.

Payload type ``com.apple.mail.managed`` inside a ``Configuration`` profile, as Apple's
Device Management documentation describes it. Unsigned: iOS shows it as "Unverified",
which the guide explains. Apple's Mail payload has no OAuth2 sign-in: for Gmail and
Outlook the guide sends the user to the built-in account types instead.
"""

from __future__ import annotations

import plistlib
import uuid

from advisor.devices import DeviceAccount
from advisor.errors import UsageError
from advisor.plugins.types import Security

PAYLOAD_TYPE = "com.apple.mail.managed"
_NAMESPACE = uuid.UUID("6f1c1f0e-2b5e-4a4e-9d1a-6d61696c6164")  # stable UUIDs per account


def mobileconfig(account: DeviceAccount) -> bytes:
    """The profile as XML plist bytes; the password is in it only if ``account`` has one."""
    if account.oauth2:
        raise UsageError(
            "Apple's mail profiles cannot sign in with OAuth2; on an iPhone, iPad or Mac add "
            "this account in Settings > Mail > Accounts > Add Account and choose your provider"
        )
    ident = f"net.mailadvisor.{account.email}"
    mail: dict[str, object] = {
        "PayloadType": PAYLOAD_TYPE,
        "PayloadVersion": 1,
        "PayloadIdentifier": f"{ident}.mail",
        "PayloadUUID": str(uuid.uuid5(_NAMESPACE, f"{account.email}/mail")).upper(),
        "PayloadDisplayName": f"Mail: {account.email}",
        "EmailAccountDescription": account.email,
        "EmailAccountName": account.display_name or account.email,
        "EmailAccountType": "EmailTypeIMAP",
        "EmailAddress": account.email,
        "IncomingMailServerHostName": account.imap.host,
        "IncomingMailServerPortNumber": account.imap.port,
        "IncomingMailServerUseSSL": account.imap.security is not Security.NONE,
        "IncomingMailServerUsername": account.imap_username,
        "IncomingMailServerAuthentication": "EmailAuthPassword",
        "OutgoingMailServerHostName": account.smtp.host,
        "OutgoingMailServerPortNumber": account.smtp.port,
        "OutgoingMailServerUseSSL": account.smtp.security is not Security.NONE,
        "OutgoingMailServerUsername": account.smtp_username,
        "OutgoingMailServerAuthentication": "EmailAuthPassword",
        "OutgoingPasswordSameAsIncomingPassword": True,
    }
    if account.password:
        mail["IncomingPassword"] = account.password
    profile = {
        "PayloadType": "Configuration",
        "PayloadVersion": 1,
        "PayloadIdentifier": ident,
        "PayloadUUID": str(uuid.uuid5(_NAMESPACE, account.email)).upper(),
        "PayloadDisplayName": f"{account.email} (IMAP)",
        "PayloadDescription": "Your mail account over IMAP, set up by mailadvisor.",
        "PayloadOrganization": "mailadvisor",
        "PayloadRemovalDisallowed": False,
        "PayloadContent": [mail],
    }
    return plistlib.dumps(profile, fmt=plistlib.FMT_XML, sort_keys=True)
