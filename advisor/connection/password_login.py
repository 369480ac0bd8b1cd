"""Signing in with a user name and password whatever their characters: IMAP, POP3, SMTP.

A password such as ``pässwört€1`` or a user name such as ``josé@bücher.de`` is sent as
the UTF-8 bytes of the text the user gave: never normalised (the NFC and NFD forms of
``ä`` are different passwords to a server that compares bytes), never re-encoded.
ASCII credentials go the way they always did (IMAP LOGIN, POP3 USER/PASS), which every
server takes. The others:

- IMAP: AUTHENTICATE PLAIN (RFC 4616, UTF-8 by definition), the response on the
  command line where SASL-IR is offered (RFC 4959). Only a server without AUTH=PLAIN
  gets LOGIN, its non-ASCII strings as literals: a quoted string cannot hold 8-bit
  bytes (RFC 3501 4.3). A refused LOGIN then raises :class:`CredentialCharactersError`.
- POP3: AUTH PLAIN (RFC 5034) where CAPA lists it, else USER/PASS with UTF-8 bytes.
- SMTP: AUTH PLAIN (RFC 4954) in UTF-8, else AUTH LOGIN, for any credentials
  (smtplib's own ``login`` encodes them as ASCII and fails on the first accent).

The secret crosses only ``send``: it never goes through imaplib's command log, poplib's
recorded verbs or an exception message.
"""

from __future__ import annotations

import base64
import poplib
import smtplib
from typing import Any

import imapclient.exceptions

from advisor.errors import AuthenticationError, CredentialCharactersError, ProtocolError, UsageError

__all__ = [
    "ADVICE",
    "ImapLoginRefused",
    "ascii_only",
    "imap_utf8_login",
    "pop3_login",
    "refused_8bit",
    "sasl_plain",
    "smtp_login",
]

POP3_MAX_COMMAND = 255
"""RFC 5034 4: an AUTH line longer than this sends its initial response after ``+``."""

ADVICE = (
    "If the password is right, create an app password for mailadvisor in your "
    "provider's security settings (where it has them), or change the password to one "
    "made of ASCII letters, digits and punctuation only, then try again."
)


def ascii_only(*texts: str) -> bool:
    """True when every text is ASCII, which the classic LOGIN and USER/PASS carry everywhere."""
    return all(t.isascii() for t in texts)


def sasl_plain(username: str, password: str) -> bytes:
    """The RFC 4616 PLAIN message (empty authzid), UTF-8, before base64."""
    if "\0" in username or "\0" in password:
        raise UsageError(
            "the user name or password contains a NUL character, which no sign-in carries"
        )
    return b"\0" + username.encode("utf-8") + b"\0" + password.encode("utf-8")


def refused_8bit(protocol: str, where: str, username: str) -> CredentialCharactersError:
    """The plain-words error for a refused non-ASCII password sent by the only route there was."""
    return CredentialCharactersError(
        f"{where} refused the login for {username!r}. The password or user name has "
        f"characters outside ASCII (accents, €...) and this server offers no {protocol} "
        f"sign-in made for them (SASL PLAIN), so it may be unable to take that password "
        f"over {protocol} at all. {ADVICE}"
    )


# --- IMAP ------------------------------------------------------------------------------


class ImapLoginRefused(imapclient.exceptions.LoginError):  # type: ignore[misc]
    """The server said NO or BAD to a sign-in; ``by_login``: it was LOGIN with 8-bit literals."""

    def __init__(self, text: str, *, by_login: bool) -> None:
        super().__init__(text)
        self.by_login = by_login


def imap_utf8_login(client: imapclient.IMAPClient, username: str, password: str) -> str:
    """Sign in with non-ASCII credentials; returns what was used ("AUTHENTICATE PLAIN"/"LOGIN").

    Raises :class:`ImapLoginRefused` on NO or BAD, and imaplib's own errors when the
    connection breaks; the caller turns them into plain words.
    """
    imap: Any = client._imap
    caps = {str(c).upper() for c in imap.capabilities}
    by_login = "AUTH=PLAIN" not in caps
    method = "LOGIN" if by_login else "AUTHENTICATE PLAIN"
    try:
        typ, data = _sign_in(imap, caps, username, password)
    except imap.abort:
        if not imap.untagged_responses.get("BYE"):
            raise
        typ, data = "BYE", []  # a hang-up: the caller explains it with the server's words
    if typ != "OK":
        text = data[-1].decode("utf-8", "replace") if data and isinstance(data[-1], bytes) else ""
        raise ImapLoginRefused(f"{typ} {text}"[:200], by_login=by_login)
    imap.state = "AUTH"
    return method


def _sign_in(imap: Any, caps: set[str], username: str, password: str) -> tuple[str, list[Any]]:
    if "AUTH=PLAIN" in caps:
        response = base64.b64encode(sasl_plain(username, password))
        if "SASL-IR" in caps:
            pieces: list[tuple[str, bytes]] = [("text", b"PLAIN " + response)]
        else:
            pieces = [("text", b"PLAIN"), ("after_plus", response)]
        return _command(imap, b"AUTHENTICATE", pieces)
    if "LOGINDISABLED" in caps:
        raise AuthenticationError(
            "the server does not allow a password login here (LOGINDISABLED) and offers "
            "no SASL PLAIN"
        )
    return _command(imap, b"LOGIN", [_imap_string(username), _imap_string(password)])


def _imap_string(text: str) -> tuple[str, bytes]:
    """A quoted string when plain ASCII allows it, else a literal of its UTF-8 bytes."""
    if text.isascii() and text.isprintable():
        return ("text", b'"' + text.replace("\\", "\\\\").replace('"', '\\"').encode() + b'"')
    return ("literal", text.encode("utf-8"))


def _command(imap: Any, name: bytes, pieces: list[tuple[str, bytes]]) -> tuple[str, list[Any]]:
    """Send one command built of pieces, waiting for ``+`` before each literal.

    ``text`` pieces follow a space on the current line; a ``literal`` is announced as
    ``{n}`` and sent after the server's go-ahead; ``after_plus`` is a line sent after
    a go-ahead (a SASL response). A NO or BAD before a go-ahead ends the command.
    """
    if hasattr(imap, "_response_bytes"):
        imap._response_bytes = 0  # the bounded reader counts per command
    tag: bytes = imap._new_tag()
    line = tag + b" " + name
    try:
        for kind, data in pieces:
            if kind == "text":
                line += b" " + data
                continue
            if kind == "literal":
                line += b" {%d}" % len(data)
            imap.send(line + b"\r\n")
            if not _continued(imap, tag):
                return _complete(imap, name, tag)
            line = data
        imap.send(line + b"\r\n")
        if not _continued(imap, tag):
            return _complete(imap, name, tag)
        # A go-ahead nobody asked for: cancel (valid for AUTHENTICATE) and stop listening.
        imap.send(b"*\r\n")
        if not _continued(imap, tag):
            return _complete(imap, name, tag)
    except OSError as exc:
        raise imap.abort(f"socket error: {exc}") from None
    raise ProtocolError(f"the server kept asking for more after {name.decode()}")


def _continued(imap: Any, tag: bytes) -> bool:
    """Read until a go-ahead (True) or the command's tagged answer (False)."""
    while imap._get_response():
        if imap.tagged_commands[tag]:
            return False
    return True


def _complete(imap: Any, name: bytes, tag: bytes) -> tuple[str, list[Any]]:
    try:
        typ, data = imap._command_complete(name.decode(), tag)
    except imap.abort:
        raise
    except imap.error as exc:  # BAD: imaplib raises it
        return "BAD", [str(exc).encode("utf-8", "replace")]
    return str(typ), list(data)


# --- POP3 ------------------------------------------------------------------------------


def pop3_login(pop: poplib.POP3, username: str, password: str, where: str) -> str:
    """Sign in on a POP3 connection; returns "USER/PASS" or "AUTH PLAIN".

    Raises :class:`AuthenticationError` (a :class:`CredentialCharactersError` when
    8-bit USER/PASS was refused), or ``OSError`` / ``poplib.error_proto`` when the
    connection breaks.
    """
    if ascii_only(username, password):
        _pop3_user_pass(pop, username, password, where, eight_bit=False)
        return "USER/PASS"
    try:
        mechanisms = pop.capa().get("SASL", [])
    except poplib.error_proto:
        mechanisms = []  # no CAPA: no SASL either
    if "PLAIN" not in [m.upper() for m in mechanisms]:
        _pop3_user_pass(pop, username, password, where, eight_bit=True)
        return "USER/PASS"
    response = base64.b64encode(sasl_plain(username, password))
    p: Any = pop  # poplib's private methods are untyped
    try:
        if len(b"AUTH PLAIN " + response) <= POP3_MAX_COMMAND:
            p._shortcmd("AUTH PLAIN " + response.decode("ascii"))
        else:
            go = p._shortcmd("AUTH PLAIN")
            if not go.startswith(b"+"):
                raise poplib.error_proto(go)
            # _putline, not _putcmd: the response is no command verb to record.
            p._putline(response)
            p._getresp()
    except poplib.error_proto as exc:
        raise AuthenticationError(
            f"{where} refused the login for {username!r}{_said(exc, password)}: check the "
            "user name and password. They have characters outside ASCII, sent in UTF-8 as "
            f"the standard says. {ADVICE}"
        ) from None
    return "AUTH PLAIN"


def _pop3_user_pass(
    pop: poplib.POP3, username: str, password: str, where: str, *, eight_bit: bool
) -> None:
    try:
        pop.user(username)  # poplib sends its commands in UTF-8
        pop.pass_(password)
    except poplib.error_proto as exc:
        if eight_bit:
            raise refused_8bit("POP3", where, username) from None
        raise AuthenticationError(
            f"{where} refused the login for {username!r}{_said(exc, password)}: check the "
            "user name and password"
        ) from None


def _said(exc: poplib.error_proto, password: str) -> str:
    """The server's words after -ERR (``[AUTH] ...``, ``[SYS/PERM] ...``), never the password."""
    raw = exc.args[0] if exc.args else b""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    text = text.removeprefix("-ERR").strip()
    if password:
        text = text.replace(password, "***")
    return f" ({text[:200]})" if text else ""


# --- SMTP ------------------------------------------------------------------------------


def smtp_login(smtp: smtplib.SMTP, username: str, password: str, where: str) -> str | None:
    """AUTH on a submission connection after EHLO; the mechanism, or None if none is offered.

    Raises :class:`AuthenticationError` when the server refuses, and
    ``smtplib.SMTPException`` / ``OSError`` when the connection breaks.
    """
    offered = smtp.esmtp_features.get("auth", "").upper().split()
    if "PLAIN" in offered:
        code, _ = smtp.docmd("AUTH", "PLAIN " + _b64(sasl_plain(username, password)))
        if code == 334:  # a server that wants the response after its go-ahead
            code, _ = smtp.docmd(_b64(sasl_plain(username, password)))
        mechanism = "PLAIN"
    elif "LOGIN" in offered:
        code, _ = smtp.docmd("AUTH", "LOGIN " + _b64(username.encode("utf-8")))
        if code == 334:
            code, _ = smtp.docmd(_b64(password.encode("utf-8")))
        mechanism = "LOGIN"
    else:
        return None
    if code != 235:
        hint = "" if ascii_only(username, password) else f" {ADVICE}"
        raise AuthenticationError(
            f"{where} refused the login for {username!r} (reply {code}): check the user name "
            f"and password.{hint}"
        )
    return mechanism


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
