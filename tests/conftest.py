"""Shared pytest fixtures.

Real-server fixtures come from ``tests/dovecot.py``: every session gets private Dovecot
instances on free loopback ports, stopped at the end of the session.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.dovecot import Account, DovecotFactory, DovecotMissingError, DovecotServer


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
