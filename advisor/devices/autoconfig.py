"""The account as a Thunderbird autoconfig file (clientConfig 1.1, the ISPDB's format).

Thunderbird (and other programs that read the format: Evolution, K-9 Mail, FairEmail)
take it from a web server or a local file; the guide gives the steps. Never written
into a mail program's own profile.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from advisor.devices import DeviceAccount
from advisor.plugins.types import Endpoint, Security

SOCKET_TYPE = {Security.TLS: "SSL", Security.STARTTLS: "STARTTLS", Security.NONE: "plain"}


def _server(parent: ET.Element, tag: str, kind: str, e: Endpoint, user: str, oauth: bool) -> None:
    server = ET.SubElement(parent, tag, type=kind)
    ET.SubElement(server, "hostname").text = e.host
    ET.SubElement(server, "port").text = str(e.port)
    ET.SubElement(server, "socketType").text = SOCKET_TYPE[e.security]
    ET.SubElement(server, "authentication").text = "OAuth2" if oauth else "password-cleartext"
    ET.SubElement(server, "username").text = user


def client_config(account: DeviceAccount) -> bytes:
    """The clientConfig document for ``account`` (never with a password: the format has none)."""
    domain = account.email.rpartition("@")[2].lower()
    root = ET.Element("clientConfig", version="1.1")
    provider = ET.SubElement(root, "emailProvider", id=domain)
    ET.SubElement(provider, "domain").text = domain
    ET.SubElement(provider, "displayName").text = account.display_name or account.email
    ET.SubElement(provider, "displayShortName").text = domain
    _server(provider, "incomingServer", "imap", account.imap, account.imap_username, account.oauth2)
    _server(provider, "outgoingServer", "smtp", account.smtp, account.smtp_username, account.oauth2)
    ET.indent(root)
    text = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{text}\n'.encode()
