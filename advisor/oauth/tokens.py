"""Where OAuth2 tokens are kept between runs: the OS keyring, or a private file.

The system keyring (through ``keyring``: macOS Keychain, Windows Credential
Locker, the Secret Service on Linux desktops) under the service
``mailadvisor-oauth`` is the first choice. Where no usable keyring backend
exists (a server, a container: ``keyring`` then offers only its "fail" or
"null" backend) the tokens go into one JSON file per account, created 0600 in
a 0700 directory below the user's state directory; a token file that group or
others can read is refused, never used. ``MAILADVISOR_TOKEN_STORE=file`` (or
``keyring``) overrides the choice.

The stored record holds the refresh token and the current access token with
its expiry, so that a run within the hour needs no refresh.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, unquote

from advisor.errors import UsageError
from advisor.platform_compat import owned_by_me, readable_by_others, state_dir

SERVICE = "mailadvisor-oauth"
"""Keyring service name of the token records."""
STORE_ENV = "MAILADVISOR_TOKEN_STORE"
"""Set to "file" or "keyring" to choose where tokens are kept."""
_FILE_SUFFIX = ".json"
_MAX_RECORD = 64 * 1024


@dataclass(frozen=True)
class StoredToken:
    """One account's saved sign-in. Tokens are hidden from repr()."""

    refresh_token: str | None = field(default=None, repr=False)
    access_token: str | None = field(default=None, repr=False)
    expires_at: float | None = None
    scope: str = ""
    saved_at: float = 0.0

    def to_json(self) -> str:
        data: dict[str, Any] = {"version": 1, "scope": self.scope, "saved_at": self.saved_at}
        if self.refresh_token:
            data["refresh_token"] = self.refresh_token
        if self.access_token:
            data["access_token"] = self.access_token
            data["expires_at"] = self.expires_at
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str, where: str) -> StoredToken:
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise UsageError(f"{where} is not a mailadvisor token record; remove it")

        def text_or_none(key: str) -> str | None:
            value = data.get(key)
            return value if isinstance(value, str) and value else None

        expires = data.get("expires_at")
        saved = data.get("saved_at")
        scope = data.get("scope")
        return cls(
            refresh_token=text_or_none("refresh_token"),
            access_token=text_or_none("access_token"),
            expires_at=float(expires) if isinstance(expires, int | float) else None,
            scope=scope if isinstance(scope, str) else "",
            saved_at=float(saved) if isinstance(saved, int | float) else 0.0,
        )


class TokenStore(Protocol):
    """Keeps token records by provider and account."""

    kind: str
    """"keyring" or "file"."""

    def where(self, provider: str, account: str) -> str:
        """Where the record is (for messages): a keyring entry or a file path."""
        ...

    def load(self, provider: str, account: str) -> StoredToken | None: ...

    def save(self, provider: str, account: str, token: StoredToken) -> None: ...

    def delete(self, provider: str, account: str) -> bool:
        """Remove the record; True when there was one."""
        ...

    def providers_of(self, account: str, candidates: Iterable[str]) -> list[str]:
        """The providers among ``candidates`` (or all found) holding a record for ``account``."""
        ...


def account_key(account: str) -> str:
    """Accounts are email addresses: compare them case-insensitively."""
    return account.strip().lower()


# --- the keyring ---------------------------------------------------------------


def keyring_usable() -> bool:
    """True when ``keyring`` has a real backend (not its "fail" or "null" placeholder)."""
    import keyring
    import keyring.backends.chainer
    import keyring.backends.fail
    import keyring.backends.null

    backend = keyring.get_keyring()
    if isinstance(backend, keyring.backends.fail.Keyring | keyring.backends.null.Keyring):
        return False
    if isinstance(backend, keyring.backends.chainer.ChainerBackend):
        return bool(backend.backends)
    return True


class KeyringTokenStore:
    """Token records in the OS keyring, service :data:`SERVICE`, user "provider:account"."""

    kind = "keyring"

    def __init__(self) -> None:
        import keyring

        self._keyring = keyring

    @staticmethod
    def _user(provider: str, account: str) -> str:
        return f"{provider}:{account_key(account)}"

    def where(self, provider: str, account: str) -> str:
        backend = type(self._keyring.get_keyring()).__name__
        entry = self._user(provider, account)
        return f"the system keyring ({backend}), service {SERVICE!r}, entry {entry!r}"

    def _fail(self, exc: Exception) -> UsageError:
        return UsageError(
            f"the system keyring failed ({type(exc).__name__}); unlock it, or set "
            f"{STORE_ENV}=file to keep tokens in a private file instead"
        )

    def load(self, provider: str, account: str) -> StoredToken | None:
        import keyring.errors

        try:
            value = self._keyring.get_password(SERVICE, self._user(provider, account))
        except keyring.errors.KeyringError as exc:
            raise self._fail(exc) from None
        if not value:
            return None
        return StoredToken.from_json(value, self.where(provider, account))

    def save(self, provider: str, account: str, token: StoredToken) -> None:
        import keyring.errors

        user = self._user(provider, account)
        try:
            self._keyring.set_password(SERVICE, user, token.to_json())
        except keyring.errors.PasswordSetError:
            # Windows' Credential Locker holds 2.5 kB: keep the refresh token alone.
            compact = StoredToken(token.refresh_token, None, None, token.scope, token.saved_at)
            try:
                self._keyring.set_password(SERVICE, user, compact.to_json())
            except keyring.errors.KeyringError as exc:
                raise self._fail(exc) from None
        except keyring.errors.KeyringError as exc:
            raise self._fail(exc) from None

    def delete(self, provider: str, account: str) -> bool:
        import keyring.errors

        try:
            self._keyring.delete_password(SERVICE, self._user(provider, account))
        except keyring.errors.PasswordDeleteError:
            return False
        except keyring.errors.KeyringError as exc:
            raise self._fail(exc) from None
        return True

    def providers_of(self, account: str, candidates: Iterable[str]) -> list[str]:
        # A keyring cannot be listed portably: ask for each candidate.
        found = []
        for provider in candidates:
            with contextlib.suppress(UsageError):
                if self.load(provider, account) is not None:
                    found.append(provider)
        return found


# --- the private file --------------------------------------------------------------


def token_directory() -> Path:
    """The directory of token files: ``<user state dir>/mailadvisor/tokens``."""
    return state_dir() / "tokens"


class FileTokenStore:
    """One 0600 JSON file per (provider, account) in a 0700 directory."""

    kind = "file"

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory if directory is not None else token_directory()

    def path(self, provider: str, account: str) -> Path:
        # Quoted so that no address can name a path outside the directory; "," separates.
        name = quote(provider, safe="._-") + "," + quote(account_key(account), safe="@._-+")
        return self.directory / (name + _FILE_SUFFIX)

    def where(self, provider: str, account: str) -> str:
        return f"the file {self.path(provider, account)}"

    def load(self, provider: str, account: str) -> StoredToken | None:
        path = self.path(provider, account)
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(path, flags)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise UsageError(
                f"cannot read the token file {path}: {exc.strerror}; "
                f"remove it (mailadvisor forget) and sign in again"
            ) from None
        with os.fdopen(fd, "rb") as f:
            check_private(path, os.fstat(f.fileno()))
            data = f.read(_MAX_RECORD + 1)
        if len(data) > _MAX_RECORD:
            raise UsageError(f"{path} is too large for a token record; remove it")
        return StoredToken.from_json(data.decode("utf-8", "replace"), str(path))

    def save(self, provider: str, account: str, token: StoredToken) -> None:
        path = self.path(provider, account)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        flags = (
            os.O_WRONLY
            | os.O_CREAT
            | os.O_EXCL
            | getattr(os, "O_NOFOLLOW", 0)
            | getattr(os, "O_CLOEXEC", 0)
        )
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        fd = os.open(tmp, flags, 0o600)  # 0600 from the start: never a readable moment
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(token.to_json())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise

    def delete(self, provider: str, account: str) -> bool:
        try:
            self.path(provider, account).unlink()
        except FileNotFoundError:
            return False
        return True

    def providers_of(self, account: str, candidates: Iterable[str] = ()) -> list[str]:
        wanted = account_key(account)
        found = []
        try:
            names = sorted(p.name for p in self.directory.iterdir())
        except FileNotFoundError:
            return []
        for name in names:
            if not name.endswith(_FILE_SUFFIX) or name.startswith("."):
                continue
            provider, sep, who = name[: -len(_FILE_SUFFIX)].partition(",")
            if sep and unquote(who) == wanted:
                found.append(unquote(provider))
        return found


def check_private(path: Path, st: os.stat_result) -> None:
    """Refuse a token file that is not a regular file of ours, private to us."""
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"{path} is not a regular file; a token file must be one")
    # On Windows both checks pass: no owner or mode bits, the per-user directory's ACL.
    if not owned_by_me(st):
        raise UsageError(
            f"the token file {path} belongs to another user (uid {st.st_uid}); "
            "it is not used. Remove it and sign in again"
        )
    if readable_by_others(st):
        mode = stat.S_IMODE(st.st_mode)
        raise UsageError(
            f"the token file {path} can be read by others (mode {mode:04o}), so its tokens "
            f"may be known to them; it is not used. Run: chmod 600 '{path}' if only you "
            "had access, otherwise remove it with mailadvisor forget and sign in again"
        )


# --- choosing ------------------------------------------------------------------------


def default_store(
    *, require_keyring: bool = False, environ: Mapping[str, str] | None = None
) -> TokenStore:
    """The keyring when usable, else the private file store (see the module docstring)."""
    env = os.environ if environ is None else environ
    choice = env.get(STORE_ENV, "").strip().lower()
    if choice not in ("", "file", "keyring"):
        raise UsageError(f'{STORE_ENV} must be "file" or "keyring", not {choice!r}')
    if choice == "file" and not require_keyring:
        return FileTokenStore()
    if keyring_usable():
        return KeyringTokenStore()
    if require_keyring or choice == "keyring":
        why = "keyring = true in the profile" if require_keyring else f"{STORE_ENV}=keyring"
        raise UsageError(
            f"{why} asks for the system keyring, but there is no usable keyring here "
            "(no desktop keyring service is running). Remove it to keep tokens in a "
            f"0600 file in {token_directory()}"
        )
    return FileTokenStore()


def record_from(
    access_token: str, refresh_token: str | None, expires_at: float | None, scope: str
) -> StoredToken:
    return StoredToken(refresh_token, access_token, expires_at, scope, time.time())
