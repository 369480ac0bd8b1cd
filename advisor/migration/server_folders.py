"""Creating the server folders a migration writes into: once each, under a name the
server accepts.

- One CREATE per server name: several local folders may go to one server folder
  (Thunderbird's Local Folders/Trash and the POP account's Trash -> INBOX.Trash).
- Where the server offers CREATE-SPECIAL-USE (RFC 6154, Cyrus), a special folder is
  created with its role: ``CREATE name (USE (\\Archive))``; refused that way, it is
  created plainly.
- After any NO the name is LISTed, and an existing folder is used: Courier answers a
  CREATE of an existing folder with a plain NO, without ``[ALREADYEXISTS]``.
- A name refused for a character it holds (Dovecot with Maildir++ on disk and ``/`` as
  separator refuses ``.``; Courier refuses ``/``) is tried once more with look-alikes
  (:func:`advisor.migration.plan.with_lookalikes`, U+2024 for ``.``). The rename is reported
  and kept in the journal, so later runs use the same folder.

:func:`read_layout` reads what every plan starts from: delimiter, prefix, folders and
capabilities. CREATE with arguments imapclient does not know goes through imaplib's public ``xatom``
on the connection imapclient wraps: one command, answered before anything else is sent.
"""

from __future__ import annotations

import imaplib
from dataclasses import replace

import imapclient
import imapclient.exceptions

from advisor.migration.journal import MigrationJournal
from advisor.migration.plan import FolderTarget, ServerLayout, canonical, with_lookalikes
from advisor.migration.upload import quote_mailbox
from advisor.plugins.types import ServerFolder

_NOT_THERE = {"\\noselect", "\\nonexistent"}


class ServerFolders:
    """The folders one run writes into; ``created`` and ``refused`` say what happened."""

    def __init__(
        self,
        control: imapclient.IMAPClient,
        layout: ServerLayout,
        journal: MigrationJournal,
        notes: list[str],
    ) -> None:
        self.control = control
        self.layout = layout
        self.journal = journal
        self.notes = notes
        self.created: set[str] = set()
        """Server names this run created."""
        self.refused: dict[str, str] = {}
        """Wanted server name -> why it could not be had."""
        self._final: dict[str, str | None] = {}

    def ensure(self, target: FolderTarget) -> FolderTarget:
        """The target as it is on the server, created if needed (see ``refused``)."""
        wanted = target.name
        if wanted not in self._final:
            self._final[wanted] = self._settle(target)
        final = self._final[wanted]
        if final is None or final == wanted:
            return target
        return replace(
            target,
            name=final,
            reason=f"{target.reason}; the server refused {wanted!r}, so look-alike "
            "characters replace some",
        )

    def _settle(self, target: FolderTarget) -> str | None:
        name = target.name
        if self.layout.has(name):
            return name
        why = self._make(name, target.create_use)
        if why is None:
            return name
        lookalike = with_lookalikes(name, self.layout)
        if lookalike != name:
            second = self._make(lookalike, target.create_use)
            if second is None:
                self.journal.remember_rename(name, lookalike)
                self.notes.append(
                    f"the server refused the folder name {name!r} ({why}); its messages "
                    f"went into {lookalike!r}, with look-alike characters, and later runs "
                    "use that folder too"
                )
                return lookalike
        self.refused[name] = f"the server refused to create folder {name!r}: {why}"
        return None

    def _make(self, name: str, use: str | None) -> str | None:
        """Create ``name`` unless it exists; None when it is there now, else the server's NO."""
        special = use is not None and "CREATE-SPECIAL-USE" in self.layout.capabilities
        answer = self._create(name, f"(USE ({use}))") if special else self._create(name)
        if answer is not None and special and not self._listed(name):
            answer = self._create(name)  # refused with its role ([USEATTR]): plainly then
        if answer is None:
            self._subscribe(name)
            return None
        if "[ALREADYEXISTS]" in answer.upper() or self._listed(name):
            return None  # there already (another client, an earlier run)
        return answer

    def _create(self, name: str, *extra: str) -> str | None:
        """Send CREATE; None on OK, else the server's words."""
        imap: imaplib.IMAP4 = self.control._imap
        try:
            status, data = imap.xatom("CREATE", quote_mailbox(name).decode("ascii"), *extra)
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as exc:  # BAD: the server did not understand it
            return str(exc)
        if status == "OK":
            self.created.add(name)
            return None
        text = b" ".join(x for x in data if isinstance(x, bytes))
        return f"{status} {text.decode('utf-8', 'replace')}".strip()

    def _listed(self, name: str) -> bool:
        """Whether LIST shows ``name`` as a folder that can hold messages."""
        delim = self.layout.delimiter
        wanted = canonical(name, delim)
        try:
            # Spelled INBOX: Cyrus matches the pattern "Inbox.Sub" against nothing.
            found = self.control.list_folders("", wanted)
        except imapclient.exceptions.IMAPClientAbortError:
            raise
        except imapclient.exceptions.IMAPClientError:
            return False
        for flags, _delim, listed in found:
            names = {f.decode() if isinstance(f, bytes) else f for f in flags}
            if canonical(listed, delim) == wanted and not _NOT_THERE & {f.lower() for f in names}:
                return True
        return False

    def _subscribe(self, name: str) -> None:
        try:
            self.control.subscribe_folder(name)
        except imapclient.exceptions.IMAPClientAbortError:
            raise
        except imapclient.exceptions.IMAPClientError:
            self.notes.append(f"could not subscribe to {name!r}")


def read_layout(control: imapclient.IMAPClient) -> ServerLayout:
    """The server's delimiter, personal prefix, folders and capabilities (never assumed)."""
    caps = frozenset(c.decode("ascii", "replace").upper() for c in control.capabilities())
    prefix, delimiter = "", "/"
    if "NAMESPACE" in caps:
        personal = control.namespace().personal
        if personal:
            prefix, delim = personal[0]
            delimiter = delim or delimiter
    folders = []
    for flags, delim, name in control.list_folders():
        if delim:
            delimiter = delim.decode() if isinstance(delim, bytes) else delim
        folders.append(
            ServerFolder(
                name=name,
                delimiter=delimiter,
                flags=frozenset(f.decode() if isinstance(f, bytes) else f for f in flags),
            )
        )
    return ServerLayout(
        delimiter=delimiter, prefix=prefix or "", folders=folders, capabilities=caps
    )
