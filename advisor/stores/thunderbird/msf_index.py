"""Thunderbird's per-folder summary (the ``.msf`` Mork file), reduced to what reading needs.

A summary has a folder-info row (the folder's recorded name and size) and a message
table with a row per live message: its flags, tags, label, arrival date, junk score and
where the message is stored (offset in the mbox, or maildir file name).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from advisor.platform_compat import pread
from advisor.stores.base import Problem
from advisor.stores.mbox.headers import MOZ_PARTIAL, keywords_from, mozilla_flags
from advisor.stores.thunderbird.junk import JUNK_COLUMNS, junk_keywords
from advisor.stores.thunderbird.mork import MorkError, read_mork

MSGS_TABLE_KIND = "ns:msg:db:table:kind:msgs"
MSGS_ROW_SCOPE = "ns:msg:db:row:scope:msgs:all"
FOLDER_INFO_KIND = "ns:msg:db:table:kind:dbfolderinfo"
_INDEX_COLUMNS = (
    "flags",
    "keywords",
    "label",
    "storeToken",
    "msgOffset",
    "dateReceived",
    "folderName",
    "folderSize",
    *JUNK_COLUMNS,
)


@dataclass(frozen=True, slots=True)
class IndexRow:
    """What the .msf says about one live message."""

    flags: int
    keywords: str
    label: int
    received: datetime | None
    junk: frozenset[str] = frozenset()
    """$Junk / $NotJunk from the row's junk score (see :mod:`advisor.stores.thunderbird.junk`)."""


@dataclass
class FolderIndex:
    """A folder's .msf summary, reduced to what reading needs."""

    folder_name: str | None = None
    folder_size: int | None = None
    live: dict[int | str, IndexRow] = field(default_factory=dict)
    """Live messages by mbox offset (mbox store) or file name (maildir store)."""
    usable: bool = False
    """True when the index can decide which messages are alive."""
    reason: str = ""
    """Why it cannot, for the report."""


def _hex(value: bytes | None) -> int | None:
    if not value:
        return None
    try:
        return int(value, 16)
    except ValueError:
        return None


def load_index(msf: Path, store_size: int | None, maildir: bool = False) -> FolderIndex:
    """Read a folder's .msf. ``store_size`` is the mbox's size (None for maildir):
    the index decides which messages live only when its recorded folder size matches."""
    try:
        document = read_mork(msf, _INDEX_COLUMNS)
    except (OSError, MorkError) as exc:
        return FolderIndex(reason=f"{msf.name} cannot be read ({exc})")
    index = FolderIndex()
    for table in document.tables_of_kind(FOLDER_INFO_KIND):
        for key in table.rows:
            row = document.rows.get(key, {})
            if row.get("folderName"):
                index.folder_name = row["folderName"].decode("utf-8", "replace")
            index.folder_size = _hex(row.get("folderSize"))
            break
    tables = [t for t in document.tables_of_kind(MSGS_TABLE_KIND) if t.scope == MSGS_ROW_SCOPE]
    if not tables:
        index.reason = f"{msf.name} has no message table"
        return index
    for table in tables:
        for key in table.rows:
            cells = document.rows.get(key)
            if cells is None:
                continue
            where = _row_location(key[1], cells, maildir)
            if where is None:
                continue
            index.live[where] = IndexRow(
                flags=_hex(cells.get("flags")) or 0,
                keywords=cells.get("keywords", b"").decode("utf-8", "replace"),
                label=_hex(cells.get("label")) or 0,
                received=timestamp(_hex(cells.get("dateReceived"))),
                junk=junk_keywords(cells.get("junkscore")),
            )
    if maildir:
        index.usable = True
    elif index.folder_size is None:
        index.reason = f"{msf.name} does not record the folder's size"
    elif index.folder_size != store_size:
        index.reason = (
            f"{msf.name} is out of date (it describes {index.folder_size} bytes, "
            f"the mbox has {store_size})"
        )
    else:
        index.usable = True
    return index


def _row_location(row_id: int, cells: dict[str, bytes], maildir: bool) -> int | str | None:
    """Where a row's message is stored: storeToken (decimal offset or maildir file name),
    else the old msgOffset column (hex), else the row id itself (Thunderbird < 3
    used the offset as the message key)."""
    token = cells.get("storeToken", b"").decode("utf-8", "replace").strip()
    if maildir:
        return token or None
    if token:
        return int(token) if token.isdigit() else None
    offset = _hex(cells.get("msgOffset"))
    return offset if offset is not None else row_id


def timestamp(seconds: int | None) -> datetime | None:
    if not seconds:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def misplaced_offset(mbox: Path, index: FolderIndex, samples: int = 64) -> int | None:
    """An offset the index gives for a message where the mbox has no ``From `` line
    (checked for a sample spread over the folder), or None. An index whose offsets do
    not fit its mbox must not decide which messages are deleted."""
    offsets = sorted(o for o in index.live if isinstance(o, int))
    if len(offsets) > samples:
        step = len(offsets) / samples
        offsets = sorted({offsets[int(i * step)] for i in range(samples)} | {offsets[-1]})
    try:
        with open(mbox, "rb", buffering=0) as stream:
            for offset in offsets:
                if pread(stream.fileno(), 5, offset) != b"From ":
                    return offset
    except OSError:
        return None
    return None


def row_flags(row: IndexRow, problems: list[Problem]) -> tuple[frozenset[str], bool]:
    """IMAP flags and the partial bit from an index row."""
    flags = mozilla_flags(row.flags)
    flags |= keywords_from(row.keywords, problems)
    if 1 <= row.label <= 5:
        flags.add(f"$label{row.label}")
    flags |= row.junk
    return frozenset(flags), bool(row.flags & MOZ_PARTIAL)
