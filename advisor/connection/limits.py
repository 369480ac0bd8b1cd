"""Servers that limit connections per user: their wording, and what to do about it.

Every server says "too many connections" differently, and some say it only by hanging
up after the login. A run recognises each wording here, uses fewer connections, down
to uploading over its control connection, and says so; when even that one is refused
(the user's mail program holds the only one) it stops with a clear error.
"""

from __future__ import annotations

import re

from advisor.errors import ConnectError

__all__ = ["NO_CONNECTION_HINT", "TooManyConnections", "too_many_connections"]

_WORDINGS = re.compile(
    "|".join(
        [
            # Dovecot: "* BYE Maximum number of connections from user+IP exceeded
            # (mail_max_userip_connections=10)"
            r"maximum number of connections",
            # Gmail: "[ALERT] Too many simultaneous connections. (Failure)"
            r"too many simultaneous connections",
            # Microsoft 365 / Outlook.com past its per-mailbox limit
            r"user is authenticated but not connected",
            # Courier ("Maximum connection limit reached"), Cyrus, Yahoo ("[LIMIT]"), ...
            r"too many (?:open |concurrent |imap |)connections",
            r"maximum connection limit",
            r"connection limit (?:reached|exceeded)",
            r"too many connections from",
        ]
    ),
    re.IGNORECASE,
)

NO_CONNECTION_HINT = (
    "close the mail programs that are connected to this account (a mail app on a "
    "phone or another computer counts too) and run the migration again"
)


def too_many_connections(response: str) -> bool:
    """True when a server's answer (or the error a broken login gives) says the account
    has too many connections open."""
    return bool(response) and _WORDINGS.search(response) is not None


class TooManyConnections(ConnectError):
    """The server refused a login because the account has too many connections open."""

    def __init__(self, words: str) -> None:
        self.words = words
        super().__init__(
            f"the server allows no more connections to this account (too many connections: "
            f"it said {words!r}): {NO_CONNECTION_HINT}"
        )
