"""The POP3 accounts of a Thunderbird profile, from its prefs.js.

A message Thunderbird downloaded over POP3 carries ``X-Account-Key: accountN`` and
``X-UIDL: <the server's UIDL>``. prefs.js maps the account to its server
(``mail.account.accountN.server`` = ``serverM``) and the server to its settings:
``mail.server.serverM.type`` ("pop3"), ``hostname``, ``port``, ``userName``,
``socketType`` (0 plain, 2 STARTTLS, 3 TLS), ``leave_on_server`` (keep a copy on the
server: the full message of a headers-only download is still there).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from advisor.stores.message_files import header_values

_SOCKET_SECURITY = {"0": "none", "1": "starttls", "2": "starttls", "3": "tls"}
_ACCOUNT_HEADERS = frozenset({b"x-account-key", b"x-uidl"})


@dataclass(frozen=True)
class Pop3Account:
    key: str
    """Thunderbird's account key ("account2")."""
    host: str
    port: int
    username: str
    security: str
    """"tls", "starttls" or "none"."""
    leave_on_server: bool

    @property
    def url(self) -> str:
        scheme = "pop3s" if self.security == "tls" else "pop3"
        return f"{scheme}://{quote(self.username, safe='')}@{self.host}:{self.port}"


def pop3_accounts(prefs: dict[str, str]) -> dict[str, Pop3Account]:
    """Thunderbird's POP3 accounts by account key, from prefs.js settings."""
    accounts: dict[str, Pop3Account] = {}
    for key, value in prefs.items():
        if not (key.startswith("mail.account.") and key.endswith(".server")):
            continue
        account = key[len("mail.account.") : -len(".server")]
        server = f"mail.server.{value}."
        if prefs.get(server + "type") != "pop3" or not prefs.get(server + "hostname"):
            continue
        security = _SOCKET_SECURITY.get(prefs.get(server + "socketType", "0"), "none")
        default_port = 995 if security == "tls" else 110
        port = prefs.get(server + "port", "")
        accounts[account] = Pop3Account(
            key=account,
            host=prefs[server + "hostname"],
            port=int(port) if port.isdigit() else default_port,
            username=prefs.get(server + "userName", ""),
            security=security,
            leave_on_server=prefs.get(server + "leave_on_server") == "true",
        )
    return accounts


def account_and_uidl(data: bytes) -> tuple[str | None, str | None]:
    """The X-Account-Key and X-UIDL a Thunderbird POP3 download carries."""
    found: dict[bytes, str] = {}
    for name, value in header_values(data, _ACCOUNT_HEADERS):
        found.setdefault(name, value.decode("utf-8", "replace").strip())
    return found.get(b"x-account-key") or None, found.get(b"x-uidl") or None
