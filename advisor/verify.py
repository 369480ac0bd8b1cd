"""Re-check a migration: is every source message on the server, exactly once?

Read-only on both sides: the source is read as for a migration, the server only
with EXAMINE and FETCH. Each local message is mapped to its server folder exactly
as :mod:`advisor.migrate` maps it, then compared by Message-ID and size (as the
server reports them), or by a hash of the full content for messages without a
Message-ID (only server messages of a matching size are downloaded for that).

Mail on the server that did not come from the source is ignored; a source message
found more often on the server than it occurs in the source is "doubled".
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import imapclient
import imapclient.exceptions

from advisor import gmail_labels
from advisor.account import AccountAccess
from advisor.folders import FolderTarget
from advisor.migrate import (
    MigrationOptions,
    folder_mapper,
    message_id_of,
    read_layout,
    to_crlf,
)
from advisor.plugin_manager import PluginHost
from advisor.rejects import subject_of
from advisor.stores.base import StoreReader

FETCH_CHUNK = 1000
BODY_CHUNK_BYTES = 4 * 1024 * 1024

_Key = tuple[str, int]
"""("id:" + Message-ID, size) or ("sha256:" + content hash, size)."""


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


@dataclass
class _Expected:
    """What the source says one server folder must hold."""

    target: FolderTarget
    sources: dict[str, None] = field(default_factory=dict)
    keys: dict[_Key, list[_Local]] = field(default_factory=dict)
    messages: int = 0


class Verification:
    """Build it, call :meth:`run`, read the :class:`VerifyReport`."""

    def __init__(
        self,
        reader: StoreReader,
        access: AccountAccess,
        plugins: PluginHost,
        options: MigrationOptions | None = None,
    ) -> None:
        self.reader = reader
        self.access = access
        self.plugins = plugins
        self.options = options or MigrationOptions()

    def run(self) -> VerifyReport:
        report = VerifyReport(
            account=self.access.email,
            server=f"{self.access.target.host}:{self.access.target.port}",
            folders=[],
        )
        control = self.access.open()
        try:
            layout = read_layout(control)
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
                message_id = message_id_of(data)
                key: _Key = (
                    ("id:" + message_id, len(data))
                    if message_id is not None
                    else ("sha256:" + hashlib.sha256(data).hexdigest(), len(data))
                )
                local = _Local(source, msg.source_id, message_id, subject_of(data), len(data))
                exp.keys.setdefault(key, []).append(local)
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
        on_server = self._server_keys(control, name, exp)
        result.exists = on_server is not None
        have = on_server or Counter()
        for key, locals_ in exp.keys.items():
            want = 1 if once else len(locals_)
            got = have[key]
            result.present += min(got, len(locals_))
            if got < want:
                result.missing += want - got
                report.missing.extend(_item(name, m, got, want) for m in locals_[got:want])
            elif got > want:
                result.doubled += got - want
                report.doubled.append(_item(name, locals_[0], got, want))
        return result

    def _server_keys(
        self, control: imapclient.IMAPClient, name: str, exp: _Expected
    ) -> Counter[_Key] | None:
        """The folder's messages as keys; None when the folder is not on the server."""
        try:
            info = control.select_folder(name, readonly=True)  # EXAMINE: changes nothing
        except imapclient.exceptions.IMAPClientAbortError:
            raise
        except imapclient.exceptions.IMAPClientError:
            return None
        keys: Counter[_Key] = Counter()
        if not int(info.get(b"EXISTS", 0)):
            return keys
        # Sizes of local messages without a Message-ID: only those are worth hashing.
        hash_sizes = {size for (kind, size) in exp.keys if kind.startswith("sha256:")}
        no_id: list[tuple[int, int]] = []
        items = ["RFC822.SIZE", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]
        for uid, data in _fetch_all(control, items):
            size = int(data[b"RFC822.SIZE"])
            message_id = message_id_of(_header(data))
            if message_id is not None:
                keys[("id:" + message_id, size)] += 1
            elif size in hash_sizes:
                no_id.append((uid, size))
        chunk: list[int] = []
        chunk_bytes = 0
        for n, (uid, size) in enumerate(no_id):
            chunk.append(uid)
            chunk_bytes += size
            # Full bodies a few MB at a time: memory stays small whatever the sizes.
            if chunk_bytes >= BODY_CHUNK_BYTES or len(chunk) >= 50 or n == len(no_id) - 1:
                for data in control.fetch(chunk, ["BODY.PEEK[]"]).values():
                    body = data[b"BODY[]"]
                    keys[("sha256:" + hashlib.sha256(body).hexdigest(), len(body))] += 1
                chunk, chunk_bytes = [], 0
        return keys


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


def _fetch_all(
    control: imapclient.IMAPClient, items: list[str]
) -> Iterator[tuple[int, dict[bytes, Any]]]:
    uids = control.search("ALL")
    for start in range(0, len(uids), FETCH_CHUNK):
        yield from control.fetch(uids[start : start + FETCH_CHUNK], items).items()


def _header(data: dict[bytes, Any]) -> bytes:
    for key, value in data.items():
        if key.startswith(b"BODY[HEADER.FIELDS") and isinstance(value, bytes):
            return value
    return b""
