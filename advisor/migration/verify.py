"""Re-check a migration: is every source message on the server, exactly once?

Read-only on both sides: the source is read as for a migration, the server only
with EXAMINE and FETCH. Each local message is mapped to its server folder exactly
as :mod:`advisor.migration.run` maps it, then looked for with the same identity the
migration uses (:mod:`advisor.migration.server_index`): Message-ID with a size within what
servers and fetching programs change (a quick check from sizes and headers only), or,
with ``content``, the hash of the normalised message, for which every candidate is
downloaded; messages without a Message-ID are always compared by content. With
``content`` the report also names the messages the server stored altered (other bytes
than the local copy, beyond what the program that downloaded it added).

Mail on the server that did not come from the source is ignored; a source message
found more often on the server than it occurs in the source is "doubled".

:func:`verify_run` is the migration's own closing check, from its journal: every message
counted as on the server must be there, once.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field

import imapclient
import imapclient.exceptions

from advisor.connection.account import AccountAccess
from advisor.migration import copies, same_account
from advisor.migration import labels as gmail_labels
from advisor.migration.content_check import Altered, ContentSample
from advisor.migration.control import Control
from advisor.migration.journal import MigrationJournal, Status
from advisor.migration.options import MigrationOptions
from advisor.migration.plan import INBOX, FolderTarget, folder_mapper, to_crlf
from advisor.migration.rejects import subject_of
from advisor.migration.report import MigrationReport
from advisor.migration.server_folders import read_layout
from advisor.migration.server_index import Identity, ServerIndex, ServerMessage, describe_change
from advisor.plugins.manager import PluginHost
from advisor.stores.base import StoreReader


@dataclass
class VerifyItem:
    """One source message that is missing on the server or there more than once."""

    folder: str
    """The local folder."""
    target: str
    """The server folder it belongs in."""
    source_id: str
    message_id: str | None
    subject: str
    size: int
    on_server: int
    """How often the server folder holds it."""
    in_source: int
    """How often the source holds it for this server folder."""


@dataclass
class VerifyFolder:
    target: str
    sources: list[str]
    messages: int = 0
    present: int = 0
    """Source messages found on the server."""
    missing: int = 0
    doubled: int = 0
    """Extra copies on the server beyond what the source holds."""
    exists: bool = True


@dataclass
class VerifyReport:
    account: str
    server: str
    folders: list[VerifyFolder]
    missing: list[VerifyItem] = field(default_factory=list)
    doubled: list[VerifyItem] = field(default_factory=list)
    checked: int = 0
    skipped_deleted: int = 0
    skipped_partial: int = 0
    """Headers-only stubs: not checked (the migration leaves them out or takes the full
    copy from POP3, neither of which is on disk)."""
    unreadable: list[str] = field(default_factory=list)
    """Source messages that could not be read (folder and id): not checked."""
    content: bool = False
    """Compared by content (``verify --content``), not by Message-ID and size."""
    altered: list[Altered] = field(default_factory=list)
    """Messages the server holds with other bytes than the local copy (content only)."""
    bodies_fetched: int = 0

    @property
    def ok(self) -> bool:
        return not self.missing and not self.doubled


@dataclass
class _Local:
    folder: str
    source_id: str
    message_id: str | None
    subject: str
    size: int
    identity: Identity


@dataclass
class _Expected:
    """What the source says one server folder must hold."""

    target: FolderTarget
    sources: dict[str, None] = field(default_factory=dict)
    locals: list[_Local] = field(default_factory=list)
    messages: int = 0


class Verification:
    """Build it, call :meth:`run`, read the :class:`VerifyReport`."""

    def __init__(
        self,
        reader: StoreReader,
        access: AccountAccess,
        plugins: PluginHost,
        options: MigrationOptions | None = None,
        *,
        content: bool = False,
    ) -> None:
        self.reader = reader
        self.access = access
        self.plugins = plugins
        self.options = options or MigrationOptions()
        self.content = content
        self._uidls: dict[str, int] = {}
        """Same account: the server's POP3 UIDL -> INBOX UID."""

    def run(self) -> VerifyReport:
        report = VerifyReport(
            account=self.access.email,
            server=f"{self.access.target.host}:{self.access.target.port}",
            folders=[],
            content=self.content,
        )
        control = self.access.open()
        try:
            layout = read_layout(control)
            access = self.access
            detected = same_account.detect(self.reader, access.target.host, access.username)
            if detected is not None and detected.states and layout.has(INBOX):
                self._uidls, _ = same_account.uidl_map(control, access, detected, INBOX)
            listed = list(self.reader.folders())
            paths = [f.path for f in listed]
            mapper = folder_mapper(
                self.reader.kind, paths, layout, self.plugins, self.access, self.options, listed
            )
            # Gmail keeps identical messages once per label: one copy per folder is right.
            once = (
                self.plugins.upload_rules(self.access.provider).labels_for_copies
                and gmail_labels.CAPABILITY in layout.capabilities
            )
            expected: dict[str, _Expected] = {}
            for msg in self.reader.messages():
                source = "/".join(msg.folder)
                if not msg.readable:
                    report.unreadable.append(f"{source} {msg.source_id}")
                    continue
                if msg.deleted and self.options.skip_deleted:
                    report.skipped_deleted += 1
                    continue
                if msg.partial:
                    report.skipped_partial += 1
                    continue
                target = mapper.target_for(msg.folder, deleted=msg.deleted)
                exp = expected.setdefault(target.name, _Expected(target))
                exp.sources[source] = None
                data = to_crlf(msg.data)
                identity = Identity.of(data)
                local = _Local(
                    source,
                    msg.source_id,
                    identity.message_id,
                    subject_of(data),
                    len(data),
                    identity,
                )
                exp.locals.append(local)
                exp.messages += 1
                report.checked += 1
            for name, exp in sorted(expected.items()):
                report.folders.append(self._compare(control, name, exp, once, report))
        finally:
            try:
                control.logout()
            except Exception:  # the report matters more than a clean goodbye
                control.shutdown()
            self.reader.close()
        return report

    def _compare(
        self,
        control: imapclient.IMAPClient,
        name: str,
        exp: _Expected,
        once: bool,
        report: VerifyReport,
    ) -> VerifyFolder:
        result = VerifyFolder(name, list(exp.sources), messages=exp.messages)
        try:
            control.select_folder(name, readonly=True)  # EXAMINE: changes nothing
        except imapclient.exceptions.IMAPClientAbortError:
            raise
        except imapclient.exceptions.IMAPClientError:
            result.exists = False
            index = ServerIndex.empty(name)
        else:
            index = ServerIndex.read(control, name, lambda: None)
        # Gmail keeps identical messages once per label: one copy per folder is right.
        groups: dict[object, list[_Local]] = {}
        for local in exp.locals:
            key = local.identity.digest if once else id(local)
            groups.setdefault(key, []).append(local)
        for group in groups.values():
            first = group[0].identity
            found = self._find(index, first) if len(index) else None
            got = [found] if found is not None else []
            for local in group[1:] if not once else ():
                if (more := self._find(index, local.identity)) is not None:
                    got.append(more)
            want = 1 if once else len(group)
            result.present += len(got) if not once else len(group) * bool(got)
            if len(got) < want:
                result.missing += want - len(got)
                report.missing.extend(
                    _item(name, m, len(got), want) for m in group[len(got) : want]
                )
            for local, server in zip(group, got, strict=False):
                self._altered(name, local, server, report)
        # Copies beyond what the source holds: unclaimed candidates of a local message.
        for group in groups.values():
            extra = index.candidates(group[0].identity)
            if self.content or group[0].message_id is None:
                index.hash(extra)
                extra = [m for m in extra if m.digest == group[0].identity.digest]
            if extra:
                for m in extra:
                    m.claimed = True
                result.doubled += len(extra)
                report.doubled.append(
                    _item(
                        name,
                        group[0],
                        len(extra) + (1 if once else len(group)),
                        1 if once else len(group),
                    )
                )
        report.bodies_fetched += index.bodies_fetched
        return result

    def _find(self, index: ServerIndex, identity: Identity) -> ServerMessage | None:
        uid = self._uidls.get(identity.trace.uidl or "") if index.folder == INBOX else None
        if uid is not None and (found := index.claim_uid(uid)) is not None:
            if self.content:
                index.hash([found])  # to say whether it is altered
            return found  # the POP3 UIDL the program kept names the server's copy
        return index.find(identity, proof=self.content)

    def _altered(
        self, target: str, local: _Local, server: ServerMessage, report: VerifyReport
    ) -> None:
        """With content: name a server copy whose bytes differ from the local one, unless
        only in the lines the fetching program put on top (it is the server's original)."""
        ident = local.identity
        if not self.content or server.exact in (None, "", ident.exact, ident.bare_exact):
            return
        if server.features is None:
            return
        original = ident.size != ident.bare_size and (
            abs(server.size - ident.bare_size) < abs(server.size - ident.size)
        )
        if original and server.digest == ident.digest:
            return  # the server's original, as sent: the program's download added the rest
        change = (
            describe_change(ident.features, server.features)
            if server.digest == ident.digest
            else "its content differs"
        )
        report.altered.append(Altered(local.folder, target, local.source_id, local.subject, change))


def _item(target: str, local: _Local, on_server: int, in_source: int) -> VerifyItem:
    return VerifyItem(
        local.folder,
        target,
        local.source_id,
        local.message_id,
        local.subject,
        local.size,
        on_server,
        in_source,
    )


def verify_run(
    control: Control,
    journal: MigrationJournal,
    targets: Iterable[str],
    sample: ContentSample,
    report: MigrationReport,
) -> None:
    """The migration's closing check: every message the journal counts as on the server
    must be there, once (copies counted as ``mailadvisor verify`` counts them)."""
    journal.flush()
    missing = extra = 0
    for target in sorted(set(targets)):
        expected = journal.done_keys(target)
        if not expected:
            continue
        control.examine(target)
        index = ServerIndex.read(control.imap, target, lambda: None)
        # Sizes within what servers change (a final CRLF added) count as the same key.
        keys = index.keys_like(expected)
        for (message_id, size), n in (expected - keys).items():
            # Gone from the server (deleted there since?): no longer counted as done,
            # so the next run uploads them again instead of trusting the journal.
            missing += journal.forget_done(target, message_id, size, n)
        extra += copies.count_extra(
            expected,
            keys,
            functools.partial(journal.done_hashes, target),
            index.exact_hashes,
        )
    report.verified = missing == 0 and extra == 0
    report.missing_after_verify = missing
    report.extra_copies = extra

    def uploaded_uid(key: str) -> int | None:
        entry = journal.entry(key)
        return entry.uid if entry is not None and entry.status == Status.UPLOADED else None

    checked, altered = sample.check(control.imap, uploaded_uid, control.reselect)
    report.content_checked, report.altered = checked, altered
