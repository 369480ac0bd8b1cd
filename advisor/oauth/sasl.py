"""The two SASL mechanisms that carry an OAuth2 token to IMAP, POP3 and SMTP.

* XOAUTH2 (Google's, also Microsoft's): ``user=U ^A auth=Bearer T ^A ^A``.
* OAUTHBEARER (RFC 7628): GS2 header ``n,a=U,`` then ``^A host=H ^A port=P
  ^A auth=Bearer T ^A ^A``.

On failure both servers answer with a base64 JSON challenge such as
``{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}``;
the client must answer it (an empty response for XOAUTH2, a single ``^A`` for
OAUTHBEARER, RFC 7628 3.2.3) and then gets the tagged NO. :class:`OAuthExchange`
plays that conversation and keeps the JSON so the failure can be explained.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from advisor.errors import UsageError

XOAUTH2 = "XOAUTH2"
OAUTHBEARER = "OAUTHBEARER"
MECHANISMS = (XOAUTH2, OAUTHBEARER)

# RFC 6750 2.1 b64token: what a Bearer token may contain.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*\Z")
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f]")


def check_token(token: str) -> None:
    """Refuse text that is no Bearer token (e.g. a token command printing JSON)."""
    if not _B64TOKEN.match(token):
        raise UsageError(
            "the access token is not a valid Bearer token (RFC 6750: letters, digits "
            "and -._~+/ only); check what the token command prints"
        )


def _check_field(value: str, what: str) -> None:
    if _FORBIDDEN.search(value):
        raise UsageError(f"the {what} contains control characters")


def xoauth2(user: str, token: str) -> bytes:
    """The XOAUTH2 initial client response (before base64)."""
    _check_field(user, "user name")
    check_token(token)
    return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()


def oauthbearer(user: str, token: str, host: str, port: int) -> bytes:
    """The OAUTHBEARER initial client response (RFC 7628 3.1, before base64)."""
    _check_field(user, "user name")
    _check_field(host, "host name")
    check_token(token)
    # RFC 5801 saslname: "," and "=" are escaped.
    authzid = user.replace("=", "=3D").replace(",", "=2C")
    return (
        f"n,a={authzid},\x01host={host}\x01port={int(port)}\x01auth=Bearer {token}\x01\x01"
    ).encode()


def initial_response(mechanism: str, user: str, token: str, host: str, port: int) -> bytes:
    if mechanism == XOAUTH2:
        return xoauth2(user, token)
    if mechanism == OAUTHBEARER:
        return oauthbearer(user, token, host, port)
    raise UsageError(f"unknown OAuth2 SASL mechanism {mechanism!r}")


@dataclass(frozen=True)
class OAuthFailure:
    """The server's JSON error challenge (RFC 7628 3.2.2)."""

    status: str
    scope: str = ""
    schemes: str = ""

    def explain(self) -> str:
        """Plain words for the user (the status is the only part servers fill reliably)."""
        status = self.status.lower()
        if status in ("401", "invalid_token"):
            return (
                "the access token was not accepted (expired, revoked, or issued for "
                "another account or client)"
            )
        if status in ("403", "insufficient_scope"):
            needed = f" (needs {self.scope})" if self.scope else ""
            return f"the access token lacks the permission for mail{needed}"
        if status in ("400", "invalid_request"):
            return "the server found the sign-in request malformed (check the user name)"
        return f"the server said status {self.status[:40]!r}"


def parse_failure(challenge: bytes) -> OAuthFailure | None:
    """Read an error challenge; None if it is not the JSON the RFC describes."""
    if not challenge or len(challenge) > 4096:
        return None
    try:
        data = json.loads(challenge.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    status = data.get("status")
    if not isinstance(status, str | int):
        return None

    def text(key: str) -> str:
        value = data.get(key)
        return value[:300] if isinstance(value, str) else ""

    return OAuthFailure(str(status)[:40], text("scope"), text("schemes"))


class OAuthExchange:
    """The client side of one XOAUTH2/OAUTHBEARER conversation (imapclient's sasl_login)."""

    def __init__(self, mechanism: str, initial: bytes) -> None:
        self.mechanism = mechanism
        self._initial = initial
        self._steps = 0
        self.failure: OAuthFailure | None = None
        self.got_error_challenge = False

    def __call__(self, challenge: bytes) -> bytes | None:
        self._steps += 1
        if self._steps == 1:
            # Client-first mechanism: the server's first "+" carries nothing.
            return self._initial
        if self._steps == 2:
            self.got_error_challenge = True
            self.failure = parse_failure(challenge)
            # Acknowledge the error so the server can send its tagged NO.
            return b"" if self.mechanism == XOAUTH2 else b"\x01"
        return None  # a server that keeps asking: cancel the exchange ("*")

    def forget(self) -> None:
        """Drop the response that holds the token once it is no longer needed."""
        self._initial = b""
