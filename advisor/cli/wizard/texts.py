"""The wizard's prose and labels: plain words for each check, the roles of the servers,
the longer explanations, and the one-line titles of stores and servers.

Kept apart from the steps so the words can be read (and changed) in one place.
"""

from __future__ import annotations

from advisor.advice import format_size
from advisor.checks import CheckStatus
from advisor.discovery import Found, Origin
from advisor.plugins.types import Protocol, Security
from advisor.stores.scan import ScannedStore

# Plain words for each step of :func:`advisor.checks.run_checks`.
STEP_WORDS = {
    "dns": "Finding the server",
    "tcp": "Reaching it",
    "starttls": "Switching on encryption",
    "tls": "Checking it really is the server (its certificate)",
    "capability": "Talking to it",
    "auth": "Asking how to sign in",
    "login": "Signing in",
    "list": "Reading your folders",
    "quota": "Reading how much storage you have",
    "appendlimit": "Reading the largest message it takes",
    "stat": "Counting the mail waiting there",
    "ehlo": "Checking the server for sending",
}
MARKS = {
    CheckStatus.OK: "[green]✓[/]",
    CheckStatus.WARN: "[yellow]![/]",
    CheckStatus.FAIL: "[bold red]✗[/]",
    CheckStatus.SKIP: "[dim]-[/]",
}
KIND = {Protocol.IMAP: "IMAP", Protocol.POP3: "POP3", Protocol.SMTP: "SMTP"}
ROLE = {
    Protocol.IMAP: "receiving, IMAP",
    Protocol.POP3: "receiving, POP3",
    Protocol.SMTP: "sending, SMTP",
}
ROLE_TITLE = {
    Protocol.IMAP: "Receiving (IMAP)",
    Protocol.POP3: "Receiving (POP3)",
    Protocol.SMTP: "Sending (SMTP)",
}
SHOW_DETAIL = frozenset({"tls", "login", "list", "quota", "stat"})
"""Steps whose detail means something to a newcomer; the others just pass."""


WELCOME = (
    "I will help you decide how your mail program should fetch your mail: with "
    "[bold]POP3[/] (the mail is downloaded to one computer) or [bold]IMAP[/] (the "
    "mail stays on your provider's server and every device shows the same). If "
    "IMAP suits you, I can also copy the mail this computer keeps into your "
    "account, folder by folder.\n\n"
    "Every question has a suggested answer: press Enter to take it. Nothing "
    "changes, on your server or on this computer, until you say so. Press "
    "Ctrl-C at any time to stop."
)
"""The panel the wizard opens with."""

LEAVE_A_COPY = (
    "Your mail program has a setting called [bold]Leave messages on server[/] (or "
    "'Leave a copy on the server'). When it is on, each message is downloaded to this "
    "computer but also stays on the server: your phone and the webmail still see "
    "new mail, and the server is a safety net if this computer breaks. When it is "
    "off, each message exists only on this computer after it is downloaded. Most "
    "programs can also remove the server's copy after some days, so the server does "
    "not fill up."
)
"""What "leave a copy on the server" does, for a POP3 user."""

BACKUPS = (
    "With POP3 your mail lives on this computer. If its disk fails or it is stolen, "
    "the mail is gone, unless you have a copy. Copy your mail program's folder to an "
    "external disk or a backup service regularly."
)
"""Why a POP3 user needs a backup."""


def failure_words(step: str, host: str, port: int) -> str:
    """Why a step of the connection test failed, in plain words ("" for the other steps);
    ``host`` comes escaped for rich markup."""
    return {
        "dns": f"The name {host} is not known on the internet. Check its spelling: your "
        "provider's help pages give the right server name. If it is right, check that "
        "this computer is online.",
        "tcp": f"{host} does not answer on port {port}. The server name or port "
        "may be wrong, the server may be down, or a firewall blocks the way.",
        "starttls": f"{host} could not switch on encryption, and I never send your "
        "password without it.",
        "tls": "I could not confirm that this is really the server it claims to be (its "
        "certificate, its proof of identity, did not check out). With a company's or "
        "your own server this is normal when it uses its own certificate authority: "
        "then use that authority's certificate file. With a public provider it can mean "
        "that someone intercepts the connection: do not go on from this network.",
        "capability": f"{host} answers, but not like a mail server should.",
        "auth": f"{host} does not let mail programs sign in with a password here.",
        "login": "The server did not accept the user name or the password. Check both; "
        "many providers want an app password here (made in your account's security "
        "settings) and some need IMAP or POP switched on in their web settings first.",
    }.get(step, "")


CA_FILE_UNUSABLE = (
    "The certificate file you gave cannot be used (it holds no certificate, or "
    "not one this computer can read). Give the right file: usually a .pem or "
    ".crt your administrator sends, starting with '-----BEGIN CERTIFICATE-----'."
)
"""The certificate file the user gave cannot be used."""


def no_tls_words(host: str, port: int) -> str:
    """A port that does not speak TLS at all (no certificate was even shown)."""
    return (
        f"{host} does not speak encrypted connections (TLS) on port {port}. "
        "Many servers start unencrypted and switch encryption on (STARTTLS), "
        "usually on port 143 for IMAP and 110 for POP3: try that."
    )


def found_line(found: Found) -> str:
    """One server found, in plain words, with how sure it is."""
    e = found.endpoint
    security = {Security.TLS: "encrypted", Security.STARTTLS: "encrypted (STARTTLS)"}.get(
        e.security, "not encrypted"
    )
    line = f"{ROLE_TITLE[e.protocol]}: {e.host}, port {e.port}, {security}"
    if found.origin is Origin.GUESS:
        return f"{line} (a guess from your address)"
    if not found.trusted:
        return f"{line} (to confirm)"
    return line


def store_title(store: ScannedStore) -> str:
    """One store on this computer: what it is, where, and how much mail it holds."""
    what = store.reason or store.client or store.kind.value
    where = str(store.path)
    if store.scan is None:
        return f"{what} ({where}): cannot be read now: {store.error}"
    t = store.scan.totals
    folders = store.scan.folders
    return (
        f"{what} ({where}): {t.messages:,} messages in {folders} "
        f"folder{'s' if folders != 1 else ''}, {format_size(t.bytes)}"
    )


def short(text: str | None, limit: int = 70) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
