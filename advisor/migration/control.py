"""The control connection: the run's one IMAP session outside the upload pool.

It indexes folders, creates them, sets labels and flags, moves the same account's
copies and verifies; the parts of the run that use it share it through :class:`Control`,
which also knows the folder it has selected (so a folder is not selected again for
nothing, and an upload over it forgets what was selected).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress

import imapclient


class Control:
    """The control connection, opened by :meth:`open`, and its selected folder."""

    def __init__(self, connect: Callable[[], imapclient.IMAPClient]) -> None:
        self._connect = connect
        self.client: imapclient.IMAPClient | None = None
        self.selected: str | None = None

    def open(self) -> imapclient.IMAPClient:
        self.client = self._connect()
        self.selected = None
        return self.client

    @property
    def imap(self) -> imapclient.IMAPClient:
        assert self.client is not None
        return self.client

    def examine(self, name: str) -> int:
        """Select ``name`` read-only; how many messages it holds."""
        info = self.imap.select_folder(name, readonly=True)
        self.selected = name
        return int(info.get(b"EXISTS", 0))

    def reselect(self, folder: str) -> None:
        if self.selected != folder:
            self.examine(folder)

    def reopen(self) -> imapclient.IMAPClient:
        """A new connection instead of one the server dropped."""
        if self.client is not None:
            with suppress(Exception):
                self.client.shutdown()
        return self.open()

    def close(self) -> None:
        if self.client is None:
            return
        try:
            self.client.logout()
        except Exception:  # the report matters more than a clean goodbye
            self.client.shutdown()
        self.client = None
