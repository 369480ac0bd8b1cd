"""The IMAP connection factory against the real Dovecot fixture."""

from __future__ import annotations

import socket

import pytest

from advisor.connection.imap import ImapTarget, connect, imap_session
from advisor.errors import AuthenticationError, ConnectError, TLSError, UsageError
from advisor.exitcodes import ExitStatus
from advisor.plugins.types import Security
from tests.harness.dovecot import Account, DovecotServer


def _target(server: DovecotServer, security: Security, **kw: object) -> ImapTarget:
    info = server.info
    port = {
        Security.TLS: info.imaps_port,
        Security.STARTTLS: info.imap_starttls_port,
        Security.NONE: info.imap_plain_port,
    }[security]
    host = info.imap_plain_host if security is Security.NONE else info.hostname
    return ImapTarget(
        host=str(kw.pop("host", host)),
        port=port,
        security=security,
        ca_file=info.ca_file,
        timeout=10,
        **kw,
    )  # type: ignore[arg-type]


@pytest.mark.parametrize("security", [Security.TLS, Security.STARTTLS])
def test_login_with_certificate_verification(
    dovecot: DovecotServer, imap_account: Account, security: Security
) -> None:
    target = _target(dovecot, security)
    with imap_session(target, imap_account.username, imap_account.password) as client:
        folders = {name for _flags, _delim, name in client.list_folders()}
        assert "INBOX" in folders and "Sent" in folders
        # The socket really is TLS, verified against the throwaway CA.
        sock = client._imap.sock
        assert sock.version() in ("TLSv1.2", "TLSv1.3")
        assert sock.getpeercert()["subjectAltName"]


def test_untrusted_certificate_is_a_tls_error(dovecot: DovecotServer) -> None:
    target = ImapTarget(host=dovecot.info.hostname, port=dovecot.info.imaps_port, timeout=10)
    with pytest.raises(TLSError, match=r"not trusted.*ca_file") as info:
        connect(target)
    assert info.value.exit_status is ExitStatus.CONNECT_FAILED


def test_starttls_port_with_implicit_tls_is_a_clear_error(dovecot: DovecotServer) -> None:
    info = dovecot.info
    target = ImapTarget(
        host=info.hostname, port=info.imap_starttls_port, ca_file=info.ca_file, timeout=5
    )
    with pytest.raises(TLSError, match="starttls"):
        connect(target)


def test_starttls_refused_when_not_offered(dovecot: DovecotServer) -> None:
    # The plaintext listener does not offer STARTTLS: no silent fallback to plaintext.
    info = dovecot.info
    target = ImapTarget(
        host=info.imap_plain_host,
        port=info.imap_plain_port,
        security=Security.STARTTLS,
        ca_file=info.ca_file,
        timeout=5,
    )
    with pytest.raises(TLSError, match="does not offer STARTTLS"):
        connect(target)


def test_plaintext_needs_explicit_permission(dovecot: DovecotServer, imap_account: Account) -> None:
    with pytest.raises(UsageError, match="allow_insecure"):
        connect(_target(dovecot, Security.NONE))
    target = _target(dovecot, Security.NONE, allow_insecure=True)
    with imap_session(target, imap_account.username, imap_account.password) as client:
        assert client.noop()


def test_wrong_password_is_authentication_error_without_the_secret(
    dovecot: DovecotServer, imap_account: Account
) -> None:
    secret = "Wr0ng-Pa55-Zebra"
    target = _target(dovecot, Security.TLS)
    with (
        pytest.raises(AuthenticationError) as info,
        imap_session(target, imap_account.username, secret),
    ):
        pass
    assert info.value.exit_status is ExitStatus.AUTH_FAILED
    assert secret not in str(info.value)
    assert imap_account.username in str(info.value)


def test_refused_port_is_connect_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectError, match="connection refused") as info:
        connect(ImapTarget(host="127.0.0.1", port=port, timeout=5))
    assert info.value.exit_status is ExitStatus.CONNECT_FAILED
