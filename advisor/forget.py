"""Removing what mailadvisor stored for an account: passwords and OAuth2 sign-ins.

Looks everywhere mailadvisor may have put something for the profile's account,
whatever the profile says today (the user may have switched from the keyring
to a file, or from one provider to another): the keyring entries of the
password (service ``mailadvisor``) and of the OAuth2 sign-in of every known
provider (service ``mailadvisor-oauth``), and the token files.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from advisor.errors import UsageError
from advisor.oauth.tokens import FileTokenStore, KeyringTokenStore, keyring_usable
from advisor.profile import Profile
from advisor.secrets import KEYRING_SERVICE


@dataclass
class ForgetResult:
    """What was removed (descriptions of places, never their contents)."""

    account: str
    removed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def forget_account(
    profile: Profile,
    providers: Iterable[str],
    *,
    file_store: FileTokenStore | None = None,
    use_keyring: bool | None = None,
) -> ForgetResult:
    """Remove every stored secret of the profile's account; ``providers``: names to try."""
    email = profile.account.email
    names = sorted({*providers, profile.account.provider} - {"auto"})
    logins = [email]
    if profile.server is not None and profile.server.username not in (None, email):
        logins.append(str(profile.server.username))
    result = ForgetResult(account=email)

    if use_keyring if use_keyring is not None else keyring_usable():
        import keyring
        import keyring.errors

        store = KeyringTokenStore()
        for provider in names:
            where = store.where(provider, email)
            if store.delete(provider, email):
                result.removed.append(f"OAuth2 sign-in for {provider}: {where}")
        for login in logins:
            try:
                keyring.delete_password(KEYRING_SERVICE, login)
            except keyring.errors.PasswordDeleteError:
                continue
            except keyring.errors.KeyringError as exc:
                raise UsageError(
                    f"the system keyring failed ({type(exc).__name__}); unlock it and try again"
                ) from None
            result.removed.append(
                f"password for {login}: the system keyring, service {KEYRING_SERVICE!r}"
            )
    else:
        result.notes.append("no system keyring on this computer, so nothing was stored there")

    files = file_store if file_store is not None else FileTokenStore()
    for provider in files.providers_of(email):
        path = files.path(provider, email)
        if files.delete(provider, email):
            result.removed.append(f"OAuth2 sign-in for {provider}: the file {path}")
    return result
