"""Where secrets come from: an environment variable, a command, or the keyring (and the
one place a password is put into the keyring).

A secret is returned to the caller and never logged, stored or put into an
exception message: errors name where the secret should have come from, not it.

It is kept exactly as given, whatever its characters: no Unicode normalisation (an
NFD ``ä`` stays two code points), no trimming of spaces. What cannot be sent as
UTF-8 (an environment variable or command output in another encoding) is refused
here with a clear error instead of failing later inside a login.
"""

from __future__ import annotations

import os
import subprocess

from advisor.errors import UsageError
from advisor.platform_compat import command_line, command_name
from advisor.profile import AuthConfig

KEYRING_SERVICE = "mailadvisor"
COMMAND_TIMEOUT = 60.0


def resolve_secret(auth: AuthConfig, account: str) -> str:
    """The password (or OAuth2 access token, for ``token_command``) the profile points to."""
    if auth.password_env:
        value = os.environ.get(auth.password_env)
        if not value:
            raise UsageError(
                f"the environment variable {auth.password_env} (named by [auth] password_env) "
                "is not set or is empty"
            )
        return _as_text(value, f"the environment variable {auth.password_env}")
    command = auth.password_command or auth.token_command
    if command:
        return _run_command(
            command, "password_command" if auth.password_command else "token_command"
        )
    if auth.keyring:
        return _from_keyring(account)
    raise UsageError("the profile does not say where to get the secret ([auth])")


def _run_command(command: str, key: str) -> str:
    try:
        done = subprocess.run(
            command_line(command),
            capture_output=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise UsageError(f"[auth] {key}: command not found: {command_name(command)}") from None
    except subprocess.TimeoutExpired:
        raise UsageError(
            f"[auth] {key}: the command did not finish in {COMMAND_TIMEOUT:.0f} s"
        ) from None
    if done.returncode != 0:
        # Its output may hold the secret or part of it: say only that it failed.
        raise UsageError(f"[auth] {key}: the command failed with status {done.returncode}")
    # Like mbsync's PassCmd: the first line is the secret, without its line ending only
    # (spaces may be part of a password; a Windows-style CR is not).
    first = done.stdout.split(b"\n", 1)[0].removesuffix(b"\r")
    try:
        value = first.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(
            f"[auth] {key}: the command printed bytes that are not UTF-8 text; make it "
            "print the password in UTF-8"
        ) from None
    if not value.strip():
        raise UsageError(f"[auth] {key}: the command printed nothing")
    return value


def _from_keyring(account: str) -> str:
    import keyring
    import keyring.errors

    try:
        value = keyring.get_password(KEYRING_SERVICE, account)
    except keyring.errors.KeyringError as exc:
        raise UsageError(
            f"the system keyring is not usable here ({type(exc).__name__}); "
            "use password_env or password_command instead"
        ) from None
    if not value:
        raise UsageError(
            f"no secret for {account} in the system keyring (service "
            f"{KEYRING_SERVICE!r}); the wizard stores one, or use password_env"
        )
    return _as_text(value, "the keyring entry")


class KeyringRefused(UsageError):
    """The system keyring did not take a secret; ``reason`` names its error class."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the system keyring refused the secret ({reason})")
        self.reason = reason


def store_in_keyring(account: str, secret: str) -> None:
    """Keep ``secret`` in the system keyring, where ``[auth] keyring = true`` finds it.

    Raises :class:`KeyringRefused` (naming the keyring's error, never the secret).
    """
    import keyring
    import keyring.errors

    try:
        keyring.set_password(KEYRING_SERVICE, account, secret)
    except keyring.errors.KeyringError as exc:
        raise KeyringRefused(type(exc).__name__) from None


def _as_text(value: str, where: str) -> str:
    """``value`` unchanged, if it can be sent as UTF-8.

    Python decodes the environment with surrogate escapes: bytes that are not UTF-8
    (a Latin-1 terminal) become lone surrogates, which no login can encode.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(
            f"{where} holds bytes that are not UTF-8 text (another character encoding?); "
            "set it from a UTF-8 terminal or use the keyring"
        ) from None
    return value
