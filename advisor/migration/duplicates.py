"""The server-side duplicate check: is this message in that server folder already?

One :class:`~advisor.migration.server_index.ServerIndex` per server folder, built the first
time a message goes there and only when the folder holds messages the journal cannot
explain (a run killed between the server's OK and the journal's commit, a lost journal,
mail uploaded by another tool). Finding a message claims the server's copy, so one copy
never stands for two local messages.
"""

from __future__ import annotations

import imapclient.exceptions

from advisor.migration.control import Control
from advisor.migration.journal import MigrationJournal
from advisor.migration.plan import INBOX
from advisor.migration.same_account import SameAccount
from advisor.migration.server_index import Identity, ServerIndex, ServerMessage


class ServerCopies:
    """The run's indexes of server folders (forgotten with :meth:`clear` after changes)."""

    def __init__(self, control: Control, journal: MigrationJournal, created: set[str]) -> None:
        self.control = control
        self.journal = journal
        self.created = created
        """Folders this run created: nothing in them yet."""
        self.same: SameAccount | None = None
        """Set when the target is the account the store came from."""
        self._indexes: dict[str, ServerIndex] = {}

    def clear(self) -> None:
        self._indexes.clear()

    def index(self, folder: str) -> ServerIndex:
        index = self._indexes.get(folder)
        if index is None:
            index = self._indexes[folder] = self._build(folder)
        return index

    def _build(self, folder: str) -> ServerIndex:
        if folder in self.created:
            return ServerIndex.empty(folder)  # we just created it: nothing there yet
        try:
            exists = self.control.examine(folder)
        except imapclient.exceptions.IMAPClientError:
            return ServerIndex.empty(folder)
        expected = self.journal.done_keys(folder)
        if exists == 0 or exists == sum(expected.values()):
            return ServerIndex.empty(folder)
        control = self.control
        index = ServerIndex.read(
            control.imap, folder, lambda: control.reselect(folder), flags=self.same is not None
        )
        index.explain(expected, self.journal.done_hashes(folder))
        if self.same is not None and folder == INBOX:
            for planned in self.same.plan:  # matched this run, recorded once applied
                index.claim_uid(planned.original.uid)
        return index

    def find(self, folder: str, data: bytes, message_id: str | None) -> ServerMessage | None:
        """Claim the server's copy of this message in ``folder``, if it has one."""
        index = self.index(folder)
        if not len(index):
            return None
        identity = Identity.of(data, message_id)
        if folder == INBOX and self.same is not None:
            # The POP3 UIDL the program kept names the server's copy outright.
            uid = self.same.uid_for(identity.trace.uidl)
            if uid is not None and (found := index.claim_uid(uid)) is not None:
                return found
        return index.find(identity)
