"""The QR code Thunderbird for Android (and K-9 Mail) imports an account from.

The payload is Thunderbird desktop's "Export for Mobile" format, version 1: a JSON
array ``[FormatVersion, [SequenceNumber, SequenceEnd], IncomingServer,
OutgoingServerGroups]`` with numeric codes for protocol, connection security and
authentication type (thunderbird-android's docs/qr-code-format.md). segno draws the
code; nothing is hand-encoded.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import segno

from advisor.devices import DeviceAccount
from advisor.plugins.types import Endpoint, Security

FORMAT_VERSION = 1
PROTOCOL_IMAP = 0
PROTOCOL_SMTP = 0
SECURITY = {Security.NONE: 0, Security.STARTTLS: 2, Security.TLS: 3}
AUTH_PASSWORD_CLEARTEXT = 1
AUTH_OAUTH2 = 6


def _server(protocol: int, endpoint: Endpoint, username: str, auth: int) -> list[object]:
    return [protocol, endpoint.host, endpoint.port, SECURITY[endpoint.security], auth, username]


def qr_payload(account: DeviceAccount) -> str:
    """The JSON text the QR code carries; a password only if ``account`` has one."""
    auth = AUTH_OAUTH2 if account.oauth2 else AUTH_PASSWORD_CLEARTEXT
    incoming = _server(PROTOCOL_IMAP, account.imap, account.imap_username, auth)
    outgoing = _server(PROTOCOL_SMTP, account.smtp, account.smtp_username, auth)
    if account.password and not account.oauth2:
        incoming += [account.display_name or "", account.password]
        outgoing.append(account.password)
    elif account.display_name:
        incoming.append(account.display_name)
    identity = [account.email, account.display_name or account.email]
    payload = [FORMAT_VERSION, [1, 1], incoming, [[outgoing, identity]]]
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def write_qr(payload: str, path: Path) -> Path:
    """The code as an image: PNG or SVG by the file's suffix (PNG otherwise)."""
    code = segno.make(payload, error="m", micro=False)
    kind = "svg" if path.suffix.lower() == ".svg" else "png"
    code.save(str(path), kind=kind, scale=8, border=4)
    return path


def terminal_qr(payload: str) -> str:
    """The code drawn with block characters, to scan straight off the screen."""
    out = io.StringIO()
    segno.make(payload, error="m", micro=False).terminal(out=out, compact=True, border=2)
    return out.getvalue()
