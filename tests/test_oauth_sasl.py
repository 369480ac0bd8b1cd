"""The XOAUTH2 and OAUTHBEARER messages, byte for byte, and their error challenge."""

from __future__ import annotations

import pytest

from advisor.errors import UsageError
from advisor.oauth.sasl import (
    OAuthExchange,
    OAuthFailure,
    check_token,
    oauthbearer,
    parse_failure,
    xoauth2,
)

TOKEN = "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"


def test_xoauth2_is_googles_format() -> None:
    # developers.google.com/gmail/imap/xoauth2-protocol, before base64.
    assert xoauth2("someuser@example.com", TOKEN) == (
        b"user=someuser@example.com\x01auth=Bearer " + TOKEN.encode() + b"\x01\x01"
    )


def test_oauthbearer_is_rfc_7628() -> None:
    # RFC 7628 4.1, with the authzid a= (Gmail and Dovecot want it).
    assert oauthbearer("user@example.com", TOKEN, "server.example.com", 143) == (
        b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer "
        + TOKEN.encode()
        + b"\x01\x01"
    )


def test_oauthbearer_escapes_the_saslname() -> None:
    # RFC 5801: "," and "=" in the authorisation identity are escaped.
    assert oauthbearer("a=b,c", TOKEN, "h", 1).startswith(b"n,a=a=3Db=2Cc,\x01")


@pytest.mark.parametrize(
    "token", ["", "has space", "line\nbreak", '{"access_token": "x"}', "tok\x01en"]
)
def test_not_a_bearer_token_is_refused_without_echo(token: str) -> None:
    with pytest.raises(UsageError) as info:
        check_token(token)
    assert not token or token not in str(info.value)


@pytest.mark.parametrize("user", ["a\x01b", "a\r\nb", "a\x00"])
def test_control_characters_cannot_be_smuggled_in(user: str) -> None:
    with pytest.raises(UsageError, match="control characters"):
        xoauth2(user, TOKEN)
    with pytest.raises(UsageError, match="control characters"):
        oauthbearer(user, TOKEN, "h", 993)


@pytest.mark.parametrize(
    ("challenge", "status", "words"),
    [
        (b'{"status":"401","schemes":"bearer","scope":"mail"}', "401", "not accepted"),
        (
            b'{"status":"invalid_token","schemes":"bearer","scope":"mail"}',
            "invalid_token",
            "not accepted",
        ),
        (
            b'{"status":"insufficient_scope","scope":"https://mail.google.com/"}',
            "insufficient_scope",
            "needs https://mail.google.com/",
        ),
        (b'{"status":"400"}', "400", "malformed"),
        (b'{"status":429}', "429", "status '429'"),
    ],
)
def test_failure_challenges_are_explained(challenge: bytes, status: str, words: str) -> None:
    failure = parse_failure(challenge)
    assert failure is not None and failure.status == status
    assert words in failure.explain()


@pytest.mark.parametrize("junk", [b"", b"not json", b"[1, 2]", b'{"no": "status"}', b"{" * 5000])
def test_junk_challenges_are_no_failure_report(junk: bytes) -> None:
    assert parse_failure(junk) is None


@pytest.mark.parametrize(("mechanism", "ack"), [("XOAUTH2", b""), ("OAUTHBEARER", b"\x01")])
def test_the_exchange_answers_the_error_then_gives_up(mechanism: str, ack: bytes) -> None:
    exchange = OAuthExchange(mechanism, b"initial")
    assert exchange(b"") == b"initial"
    assert exchange(b'{"status":"401"}') == ack
    assert exchange.failure == OAuthFailure("401")
    assert exchange(b"more?") is None  # cancels ("*") instead of looping
    exchange.forget()
    assert exchange._initial == b""
