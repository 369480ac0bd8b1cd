"""Partial messages: a POP3 client's "headers only" downloads, and their full copies.

Thunderbird (over a size limit) and Apple Mail keep only the header block of some
messages, with a line in place of the body. Such a stub is not the message: migrating
it would lose the body without a word. So the migration leaves stubs out by default
and lists each (folder, subject, UIDL, account) in its report; ``include_partial``
uploads them as they are when the user wants the headers anyway.

The full message may still be on the POP3 server: Thunderbird's stub keeps the
server's ``X-UIDL`` and its ``X-Account-Key``, and the profile's prefs.js says whether
that account leaves mail on the server. :class:`PartialSources` takes the full message
from there by UIDL when the user asks for it (and gives the password): it is migrated
in the stub's place, with the stub's folder, flags and date.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

from advisor.errors import MailadvisorError
from advisor.migration.rejects import subject_of
from advisor.stores.base import Problem, ReaderOptions, SourceMessage, StoreReader
from advisor.stores.thunderbird.pop3_accounts import Pop3Account, account_and_uidl, pop3_accounts


@dataclass
class PartialMessage:
    """A stub left out of the upload (or replaced by its full copy), for the report."""

    folder: str
    source_id: str
    subject: str
    uidl: str | None
    account: str | None
    """The POP3 account that downloaded it, as pop3s://user@host:port, when known."""
    on_server: bool | None
    """Whether that account leaves mail on the server (the full copy may be there)."""
    recovered: bool = False
    """The full message was taken from the POP3 account and migrated instead."""
    note: str = ""


class PartialSources:
    """Where a store's partial messages came from, and (when given a password) a way to
    take their full copies from their POP3 accounts."""

    def __init__(
        self,
        accounts: dict[str, Pop3Account],
        password: str | None = None,
        ca_file: Path | None = None,
    ) -> None:
        self.accounts = accounts
        self._password = password
        self._ca_file = ca_file
        self._sessions: dict[str, Callable[[str], bytes | None]] = {}
        self._broken: dict[str, str] = {}
        """Accounts that could not be reached or signed in to, and why."""
        self._stack = ExitStack()

    @classmethod
    def for_reader(
        cls, reader: StoreReader, password: str | None = None, ca_file: Path | None = None
    ) -> PartialSources:
        """The POP3 accounts of the Thunderbird profile ``reader`` reads (none for
        other stores)."""
        from advisor.stores.thunderbird import ThunderbirdReader, read_prefs

        accounts: dict[str, Pop3Account] = {}
        if isinstance(reader, ThunderbirdReader):
            try:
                profile = reader.profile_dir
            except MailadvisorError:
                profile = None
            if profile is not None:
                accounts = pop3_accounts(read_prefs(profile))
        return cls(accounts, password, ca_file)

    @property
    def can_recover(self) -> bool:
        return self._password is not None

    def describe(self, msg: SourceMessage, folder: str, note: str = "") -> PartialMessage:
        key, uidl = account_and_uidl(msg.data)
        account = self.accounts.get(key or "")
        return PartialMessage(
            folder=folder,
            source_id=msg.source_id,
            subject=subject_of(msg.data),
            uidl=uidl,
            account=account.url if account else None,
            on_server=account.leave_on_server if account else None,
            note=note,
        )

    def decide(
        self, msg: SourceMessage, folder: str, include: bool, dry_run: bool
    ) -> tuple[SourceMessage | None, PartialMessage | None]:
        """What a migration does with a stub: (the message to migrate or None, what the
        report says). Its full copy from the POP3 account when a password was given,
        the stub itself when ``include``, else nothing (left out, reported)."""
        why = "a real run takes it from its POP3 account" if self.can_recover else ""
        if self.can_recover and not dry_run:
            full, why = self.full(msg)
            if full is not None:
                entry = self.describe(msg, folder)
                entry.recovered = True
                return full, entry
        if include:
            return msg, None
        return None, self.describe(msg, folder, why)

    def full(self, msg: SourceMessage) -> tuple[SourceMessage | None, str]:
        """The full message in the stub's place, or None and why not."""
        if self._password is None:
            return None, ""
        key, uidl = account_and_uidl(msg.data)
        account = self.accounts.get(key or "")
        if uidl is None or account is None:
            return None, "it does not say which POP3 account and message it came from"
        if account.security == "none":
            return None, f"{account.url} has no TLS: the password is not sent in clear"
        if account.key in self._broken:
            return None, self._broken[account.key]
        try:
            data = self._session(account)(uidl)
        except MailadvisorError as exc:  # the rest of the run goes on without this account
            self._broken[account.key] = f"{account.url}: {exc}"
            return None, self._broken[account.key]
        if data is None:
            return None, f"{account.url} no longer has it (UIDL {uidl})"
        kept = [p for p in msg.problems if p.code != "partial"]
        recovered = Problem("recovered", f"the full message was taken from {account.url}")
        problems = (*kept, recovered)
        return (
            replace(
                msg,
                data=data,
                partial=False,
                source_id=msg.source_id + "#pop3",
                problems=problems,
            ),
            "",
        )

    def _session(self, account: Pop3Account) -> Callable[[str], bytes | None]:
        session = self._sessions.get(account.key)
        if session is None:
            from advisor.stores.pop3 import Pop3Reader

            extra = {
                "host": account.host,
                "port": str(account.port),
                "username": account.username,
                "security": account.security,
            }
            if self._ca_file is not None:
                extra["ca_file"] = str(self._ca_file)
            assert self._password is not None
            reader = Pop3Reader(options=ReaderOptions(extra=extra), password=self._password)
            session = self._stack.enter_context(reader.by_uidl())
            self._sessions[account.key] = session
        return session

    def close(self) -> None:
        self._sessions = {}
        self._stack.close()
