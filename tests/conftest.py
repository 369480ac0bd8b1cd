"""Shared pytest fixtures.

Real-server fixtures come from ``tests/dovecot.py``: every session gets private Dovecot
instances on free loopback ports, stopped at the end of the session.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from advisor.discovery import OFFLINE, use_options
from tests.dovecot import Account, DovecotFactory, DovecotMissingError, DovecotServer
from tests.netfakes import FakeInternet, NetGuard, Pki, guarded, make_pki


@pytest.fixture(scope="session")
def dovecot_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DovecotFactory]:
    """Start Dovecot variants on demand: ``dovecot_factory(separator=".", prefix="INBOX.")``.

    Servers are cached per variant for the session.  Their logs are copied to
    ``<pytest basetemp>/dovecot-logs*/`` at the end, because the server tree is deleted.
    """
    try:
        factory = DovecotFactory(log_archive=tmp_path_factory.mktemp("dovecot-logs"))
    except DovecotMissingError as exc:
        # Deliberately fail, never skip: a missing server must not hide untested code.
        pytest.fail(str(exc), pytrace=False)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture(scope="session")
def dovecot(dovecot_factory: DovecotFactory) -> DovecotServer:
    """The default server: separator "/", no prefix, Sent/Drafts/Trash/Junk/Archive."""
    return dovecot_factory()


@pytest.fixture
def imap_account(dovecot: DovecotServer) -> Account:
    """A fresh user on the default server, so tests never share mailboxes."""
    return dovecot.add_user()


@pytest.fixture(autouse=True)
def _discovery_offline() -> Iterator[None]:
    """Settings discovery never reaches the internet from a test: it is off by default.

    ``fake_internet`` turns it on, pointed at servers on loopback.
    """
    with use_options(OFFLINE):
        yield


@pytest.fixture
def no_internet() -> Iterator[NetGuard]:
    """Fail the test if it resolves or connects to anything but loopback."""
    with guarded() as guard:
        yield guard


@pytest.fixture(scope="session")
def web_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A throwaway CA and a certificate for the test domains (example.test, ispdb.test...)."""
    return make_pki(tmp_path_factory.mktemp("web-pki"))


@pytest.fixture
def fake_internet(web_pki: Pki, no_internet: NetGuard) -> Iterator[FakeInternet]:
    """DNS, HTTPS and HTTP servers on loopback; discovery points at them during the test."""
    net = FakeInternet(web_pki)
    try:
        with use_options(net.options()):
            yield net
    finally:
        net.close()
