"""Where secrets come from: an environment variable, a command, or the keyring.

A secret is returned to the caller and never logged, stored or put into an
exception message: errors name where the secret should have come from, not it.
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
        return value
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
    # Like mbsync's PassCmd: the first line is the secret.
    lines = done.stdout.decode("utf-8", "replace").splitlines()
    value = lines[0].strip() if lines else ""
    if not value:
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
    return value
