"""Shared pytest fixtures.

Real-server fixtures come from ``tests/harness/dovecot.py``: every session gets private
Dovecot instances on free loopback ports, stopped at the end of the session.  Cyrus and
Courier (``tests/harness/cyrus.py``, ``tests/harness/courier.py``) are started the same way,
from Debian packages ``scripts/fetch-private-servers`` unpacks; ``matrix_server`` runs a
test on each kind.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator

import pytest

from advisor.discovery import OFFLINE, use_options
from tests.harness.courier import CourierFactory
from tests.harness.cyrus import CyrusFactory
from tests.harness.dovecot import Account, DovecotFactory, DovecotMissingError, DovecotServer
from tests.harness.migrate_helpers import AnyServer
from tests.harness.netfakes import FakeInternet, NetGuard, Pki, guarded, make_pki
from tests.harness.private_root import PrivateServerError


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


@pytest.fixture(scope="session")
def cyrus_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CyrusFactory]:
    """Cyrus 3.6 on demand: ``cyrus_factory("debian")`` (INBOX./".") or ``("upstream")``."""
    try:
        factory = CyrusFactory(log_archive=tmp_path_factory.mktemp("cyrus-logs"))
    except PrivateServerError as exc:
        pytest.fail(str(exc), pytrace=False)  # never skip: see dovecot_factory
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture(scope="session")
def courier_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CourierFactory]:
    """Courier-IMAP 5.0 on demand (INBOX./".", no SPECIAL-USE, LITERAL+ or MULTIAPPEND)."""
    try:
        factory = CourierFactory(log_archive=tmp_path_factory.mktemp("courier-logs"))
    except PrivateServerError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield factory
    finally:
        factory.close()


#: The servers the matrix tests run on; "cyrus" is Debian's configuration.
SERVER_KINDS = ("dovecot", "cyrus", "cyrus-upstream", "courier")


@pytest.fixture(scope="session")
def imap_server(request: pytest.FixtureRequest) -> Callable[[str], AnyServer]:
    """``imap_server(kind)``: the session's shared server of that kind (see SERVER_KINDS).

    Factories are looked up lazily, so asking only for Dovecot never fetches the others.
    """

    def get(kind: str) -> AnyServer:
        if kind == "dovecot":
            factory: DovecotFactory = request.getfixturevalue("dovecot_factory")
            return factory()
        if kind in ("cyrus", "cyrus-upstream"):
            cyrus: CyrusFactory = request.getfixturevalue("cyrus_factory")
            return cyrus("upstream" if kind == "cyrus-upstream" else "debian")
        if kind == "courier":
            courier: CourierFactory = request.getfixturevalue("courier_factory")
            return courier()
        raise ValueError(f"unknown server kind {kind!r}")

    return get


@pytest.fixture(params=SERVER_KINDS)
def matrix_server(
    request: pytest.FixtureRequest, imap_server: Callable[[str], AnyServer]
) -> AnyServer:
    """Runs the test once per server kind, each on the session's shared server."""
    return imap_server(request.param)


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


@pytest.fixture(autouse=True)
def _ctrl_c_as_python_sets_it() -> Iterator[None]:
    """Every test starts with Python's own SIGINT handler: a library an earlier test used
    (an event loop's signal handler left behind) must not swallow the Ctrl-C a test sends,
    nor be inherited as "ignored" by the subprocesses it starts."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
