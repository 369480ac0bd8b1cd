"""Token storage: the OS keyring when there is one, else a private 0600 file."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backend
import keyring.backends.fail
import keyring.backends.null
import keyring.errors
import pytest
from keyring.compat import properties

from advisor.errors import UsageError
from advisor.exitcodes import ExitStatus
from advisor.forget import forget_account
from advisor.oauth.tokens import (
    SERVICE,
    STORE_ENV,
    FileTokenStore,
    KeyringTokenStore,
    StoredToken,
    default_store,
    keyring_usable,
    token_directory,
)
from advisor.profile import AccountConfig, Profile
from advisor.secrets import KEYRING_SERVICE

RECORD = StoredToken("rt-refresh-0123456789", "at-access-0123456789", 2e9, "mail", 1.0)


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A keyring backend in memory: the OS keyrings cannot run on this headless machine.

    Installed only explicitly (``keyring.set_keyring``): defining a backend class
    registers it with keyring, so its priority refuses automatic selection.
    """

    @properties.classproperty
    def priority(cls) -> float:
        raise RuntimeError("a test backend, never chosen automatically")

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.entries.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError("not found")


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv(STORE_ENV, raising=False)
    return tmp_path / "state"


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)


@pytest.fixture
def no_keyring() -> Iterator[None]:
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    try:
        yield
    finally:
        keyring.set_keyring(previous)


def test_fail_and_null_backends_are_not_usable(memory_keyring: MemoryKeyring) -> None:
    assert keyring_usable()
    keyring.set_keyring(keyring.backends.null.Keyring())
    assert not keyring_usable()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    assert not keyring_usable()


def test_file_store_is_private_and_round_trips(state_dir: Path, no_keyring: None) -> None:
    store = default_store()
    assert isinstance(store, FileTokenStore)
    assert store.directory == state_dir / "mailadvisor" / "tokens" == token_directory()
    store.save("gmail", "Ann.Lee@Example.org", RECORD)
    path = store.path("gmail", "ann.lee@example.org")
    assert path.parent == store.directory
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.directory.stat().st_mode) == 0o700
    assert store.load("gmail", "ann.lee@example.org") == RECORD  # addresses are case-blind
    assert json.loads(path.read_text())["refresh_token"] == RECORD.refresh_token
    assert [p.name for p in store.directory.iterdir()] == [path.name]  # no temp file left
    assert store.providers_of("ANN.LEE@example.org") == ["gmail"]
    assert store.delete("gmail", "ann.lee@example.org") and not path.exists()
    assert not store.delete("gmail", "ann.lee@example.org")
    assert store.load("gmail", "ann.lee@example.org") is None


def test_file_is_created_0600_even_with_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        store = FileTokenStore(tmp_path / "t")
        store.save("outlook", "a@b.c", RECORD)
    finally:
        os.umask(old)
    assert stat.S_IMODE(store.path("outlook", "a@b.c").stat().st_mode) == 0o600


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_token_file_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    store = FileTokenStore(tmp_path)
    store.save("gmail", "a@b.c", RECORD)
    path = store.path("gmail", "a@b.c")
    path.chmod(mode)
    with pytest.raises(UsageError) as info:
        store.load("gmail", "a@b.c")
    message = str(info.value)
    assert f"mode {mode:04o}" in message and str(path) in message and "chmod 600" in message
    assert info.value.exit_status is ExitStatus.USAGE
    assert RECORD.refresh_token not in message  # type: ignore[operator]


def test_a_token_file_of_another_user_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.fail("this test needs root to give the file away (the suite runs as root)")
    store = FileTokenStore(tmp_path)
    store.save("gmail", "a@b.c", RECORD)
    os.chown(store.path("gmail", "a@b.c"), 65534, 65534)
    with pytest.raises(UsageError, match="belongs to another user"):
        store.load("gmail", "a@b.c")


def test_a_symlinked_token_file_is_refused(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "t")
    store.save("gmail", "a@b.c", RECORD)
    path = store.path("gmail", "a@b.c")
    real = tmp_path / "elsewhere.json"
    path.rename(real)
    path.symlink_to(real)
    with pytest.raises(UsageError, match="cannot read the token file"):
        store.load("gmail", "a@b.c")


def test_odd_addresses_stay_inside_the_directory(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "t")
    for account in ("../../evil@x.y", "a/b@c.d", "x,y@z.w", "me@host"):
        path = store.path("gmail", account)
        assert path.parent == store.directory and "/" not in path.name
        store.save("gmail", account, RECORD)
        assert store.providers_of(account) == ["gmail"]
    assert len(list(store.directory.iterdir())) == 4


def test_a_damaged_record_is_a_clear_error(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path)
    store.save("gmail", "a@b.c", RECORD)
    store.path("gmail", "a@b.c").write_text("{not json")
    with pytest.raises(UsageError, match="not a mailadvisor token record"):
        store.load("gmail", "a@b.c")


def test_keyring_store_when_a_keyring_exists(
    state_dir: Path, memory_keyring: MemoryKeyring
) -> None:
    store = default_store()
    assert isinstance(store, KeyringTokenStore)
    store.save("outlook", "Sam@Contoso.com", RECORD)
    assert set(memory_keyring.entries) == {(SERVICE, "outlook:sam@contoso.com")}
    assert store.load("outlook", "sam@contoso.com") == RECORD
    assert "mailadvisor-oauth" in store.where("outlook", "sam@contoso.com")
    assert store.delete("outlook", "sam@contoso.com") and not memory_keyring.entries
    assert not state_dir.exists()  # nothing went to a file


def test_keyring_too_small_keeps_the_refresh_token(memory_keyring: MemoryKeyring) -> None:
    def small_set(service: str, username: str, password: str) -> None:
        if len(password) > 120:  # like Windows' Credential Locker, only smaller
            raise keyring.errors.PasswordSetError("too long")
        memory_keyring.entries[(service, username)] = password

    memory_keyring.set_password = small_set  # type: ignore[method-assign]
    store = KeyringTokenStore()
    store.save("gmail", "a@b.c", RECORD)
    kept = store.load("gmail", "a@b.c")
    assert kept is not None and kept.refresh_token == RECORD.refresh_token
    assert kept.access_token is None


def test_choosing_the_store(state_dir: Path, no_keyring: None) -> None:
    assert isinstance(default_store(environ={STORE_ENV: "file"}), FileTokenStore)
    with pytest.raises(UsageError, match="no usable keyring"):
        default_store(environ={STORE_ENV: "keyring"})
    with pytest.raises(UsageError, match="keyring = true"):
        default_store(require_keyring=True)
    with pytest.raises(UsageError, match='"file" or "keyring"'):
        default_store(environ={STORE_ENV: "vault"})


def test_env_can_force_the_file_even_with_a_keyring(
    state_dir: Path, memory_keyring: MemoryKeyring
) -> None:
    assert isinstance(default_store(environ={STORE_ENV: "file"}), FileTokenStore)
    assert isinstance(default_store(environ={}), KeyringTokenStore)


def test_stored_token_hides_its_tokens() -> None:
    text = repr(RECORD)
    assert "rt-refresh" not in text and "at-access" not in text


def _profile(email: str) -> Profile:
    return Profile(account=AccountConfig(email=email, provider="auto"))


def test_forget_removes_files_and_keyring_entries(
    tmp_path: Path, memory_keyring: MemoryKeyring
) -> None:
    files = FileTokenStore(tmp_path / "t")
    files.save("gmail", "ann@x.org", RECORD)
    files.save("outlook", "ann@x.org", RECORD)
    files.save("gmail", "bob@x.org", RECORD)
    KeyringTokenStore().save("outlook", "ann@x.org", RECORD)
    keyring.set_password(KEYRING_SERVICE, "ann@x.org", "a-password")
    keyring.set_password(KEYRING_SERVICE, "bob@x.org", "b-password")

    result = forget_account(_profile("ann@x.org"), ["gmail", "outlook"], file_store=files)
    assert len(result.removed) == 4
    assert files.providers_of("ann@x.org") == []
    assert files.providers_of("bob@x.org") == ["gmail"]  # others untouched
    assert set(memory_keyring.entries) == {(KEYRING_SERVICE, "bob@x.org")}
    assert not any("a-password" in r or "rt-refresh" in r for r in result.removed)
    again = forget_account(_profile("ann@x.org"), ["gmail", "outlook"], file_store=files)
    assert again.removed == []


def test_forget_without_a_keyring_says_so(tmp_path: Path, no_keyring: None) -> None:
    files = FileTokenStore(tmp_path / "t")
    files.save("gmail", "ann@x.org", RECORD)
    files.path("gmail", "ann@x.org").chmod(0o644)  # a leaked file is removable too
    result = forget_account(_profile("ann@x.org"), ["gmail"], file_store=files)
    path = files.path("gmail", "ann@x.org")
    assert result.removed == [f"OAuth2 sign-in for gmail: the file {path}"]
    assert not path.exists()
    assert "no system keyring" in result.notes[0]
