"""The IMAP steps after TLS: CAPABILITY, AUTH mechanisms, login, LIST, QUOTA, APPENDLIMIT."""

from __future__ import annotations

import time
from contextlib import suppress
from typing import Any

import imapclient
import imapclient.exceptions

from advisor.checks.model import (
    QUOTA_WARNING_FRACTION,
    SPECIAL_USE,
    CheckFailed,
    CheckStatus,
    _fmt_bytes,
    _Outcome,
)
from advisor.checks.transport import Step, _secret_failed, _ServerChecks
from advisor.connection.imap import ImapTarget, connect, login, oauth2_login
from advisor.connection.password_login import ADVICE
from advisor.errors import (
    CredentialCharactersError,
    MailadvisorError,
)
from advisor.exitcodes import ExitStatus
from advisor.profile import AuthKind


class _ImapChecks(_ServerChecks):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.client: imapclient.IMAPClient | None = None
        self.capabilities: set[str] = set()

    def steps(self) -> list[Step]:
        return [
            *super().steps(),
            ("capability", "CAPABILITY", ("tls",), self.check_capability),
            ("auth", "AUTH mechanisms", ("capability",), self.check_auth),
            ("login", "login", ("auth",), self.check_login),
            ("list", "LIST with special-use", ("login",), self.check_list),
            ("quota", "QUOTA", ("login",), self.check_quota),
            ("appendlimit", "APPENDLIMIT", ("login",), self.check_appendlimit),
        ]

    def close(self) -> None:
        super().close()
        if self.client is not None:
            client, self.client = self.client, None
            try:
                client.logout()
            except Exception:
                with suppress(Exception):
                    client.shutdown()

    def _caps(self) -> set[str]:
        assert self.client is not None
        return {
            c.decode("ascii", "replace").upper() if isinstance(c, bytes) else str(c).upper()
            for c in self.client.capabilities()
        }

    def check_capability(self) -> _Outcome:
        e, t = self.endpoint, self.target
        try:
            self.client = connect(
                ImapTarget(e.host, e.port, e.security, t.ca_file, t.allow_insecure, t.timeout)
            )
            self.capabilities = self._caps()
        except MailadvisorError as exc:
            raise CheckFailed(
                str(exc), "Run the check again; if it persists, check the port.", exc.exit_status
            ) from None
        except (OSError, imapclient.exceptions.IMAPClientError) as exc:
            raise CheckFailed(
                f"CAPABILITY failed: {exc}", "Check the port number.", ExitStatus.CONNECT_FAILED
            ) from None
        shown = sorted(c for c in self.capabilities if not c.startswith("AUTH="))
        revs = {"IMAP4REV1", "IMAP4REV2"} & self.capabilities
        detail = f"{len(self.capabilities)} capabilities: {' '.join(shown)}"
        if not revs:
            return _Outcome(
                f"{detail}; no IMAP4rev1",
                CheckStatus.WARN,
                "This may not be a standard IMAP server.",
            )
        return _Outcome(detail)

    def check_auth(self) -> _Outcome:
        mechanisms = sorted(c[5:] for c in self.capabilities if c.startswith("AUTH="))
        listed = " ".join(mechanisms) or "none listed"
        if self.target.auth.method is AuthKind.OAUTH2:
            if not {"XOAUTH2", "OAUTHBEARER"} & set(mechanisms):
                raise CheckFailed(
                    f"the server offers {listed}, not OAuth2 (XOAUTH2 or OAUTHBEARER)",
                    'This server does not take OAuth2 sign-in: use method = "password" in [auth] '
                    "(with an app password where the provider requires one).",
                    ExitStatus.AUTH_FAILED,
                )
            return _Outcome(f"offers {listed}")
        if "LOGINDISABLED" in self.capabilities:
            raise CheckFailed(
                f"the server refuses password login here (LOGINDISABLED; offers {listed})",
                'Use OAuth2 (method = "oauth2") if the provider supports it, or ask the '
                "provider how to enable password or app-password access.",
                ExitStatus.AUTH_FAILED,
            )
        return _Outcome(f"offers {listed}; password login allowed")

    def check_login(self) -> _Outcome:
        assert self.client is not None
        try:
            secret = self.secret.get()
        except MailadvisorError as exc:
            raise _secret_failed(exc) from None
        start = time.monotonic()
        try:
            if self.target.auth.method is AuthKind.OAUTH2:
                self._oauth2_login(secret)
            else:
                login(self.client, self.username, secret)
        except CredentialCharactersError as exc:
            raise CheckFailed(str(exc), ADVICE, exc.exit_status) from None
        except MailadvisorError as exc:
            raise CheckFailed(
                str(exc),
                "Check the user name and password. Gmail and Microsoft accounts need an app "
                'password or OAuth2 (method = "oauth2"); some providers need IMAP switched on in '
                "their web settings first.",
                exc.exit_status,
            ) from None
        self.capabilities = self._caps()  # they change after login (RFC 3501 6.2.3)
        return _Outcome(
            f"logged in as {self.username} in {(time.monotonic() - start) * 1000:.0f} ms"
        )

    def _oauth2_login(self, token: str) -> None:
        assert self.client is not None
        e = self.endpoint
        oauth2_login(self.client, self.username, token, host=e.host, port=e.port)

    def check_list(self) -> _Outcome:
        assert self.client is not None
        try:
            folders = self.client.list_folders()
        except (OSError, imapclient.exceptions.IMAPClientError) as exc:
            raise CheckFailed(
                f"LIST failed right after login: {exc}",
                "The login was accepted but the session does not work. With Microsoft this "
                "means a token for the wrong account or scope: sign in again.",
                ExitStatus.AUTH_FAILED,
            ) from None
        roles: dict[str, str] = {}
        for flags, _delimiter, name in folders:
            for flag in flags:
                text = flag.decode() if isinstance(flag, bytes) else str(flag)
                for role in SPECIAL_USE:
                    if text.lower() == role.lower():
                        roles.setdefault(role, str(name))
        detail = f"{len(folders)} folders"
        if not roles:
            return _Outcome(
                f"{detail}; none marked Sent, Drafts, Trash... (no special-use attributes)",
                CheckStatus.WARN,
                "mailadvisor will ask which folder is which instead of finding them by itself.",
            )
        shown = ", ".join(f"{role[1:]} = {name!r}" for role, name in roles.items())
        return _Outcome(f"{detail}; special-use: {shown}")

    def check_quota(self) -> _Outcome:
        assert self.client is not None
        if "QUOTA" not in self.capabilities:
            return _Outcome("the server does not report a quota (no QUOTA capability)")
        try:
            _roots, quotas = self.client.get_quota_root("INBOX")
        except (OSError, imapclient.exceptions.IMAPClientError) as exc:
            return _Outcome(
                f"GETQUOTAROOT INBOX failed: {exc}",
                CheckStatus.WARN,
                "The free space on the server is unknown; check it in the provider's web settings.",
            )
        storage = [q for q in quotas if str(q.resource).upper() == "STORAGE"]
        if not storage:
            return _Outcome("no storage limit on INBOX")
        q = storage[0]
        used, limit = int(q.usage) * 1024, int(q.limit) * 1024  # RFC 9208: units of 1024 octets
        share = used / limit if limit else 0.0
        detail = f"{_fmt_bytes(used)} used of {_fmt_bytes(limit)} ({share:.0%})"
        if share >= QUOTA_WARNING_FRACTION:
            return _Outcome(
                f"{detail}: almost full",
                CheckStatus.WARN,
                "Free space on the server (or buy more) before migrating: uploads would stop.",
            )
        return _Outcome(detail)

    def check_appendlimit(self) -> _Outcome:
        for cap in self.capabilities:
            if cap.startswith("APPENDLIMIT="):
                value = cap.partition("=")[2]
                if value.isdigit():
                    return _Outcome(f"messages up to {_fmt_bytes(int(value))} are accepted")
            if cap == "APPENDLIMIT":
                return _Outcome("the size limit is set per folder (RFC 7889)")
        return _Outcome("not advertised: the server states no size limit for uploads")
