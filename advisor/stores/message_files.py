"""Helpers shared by the readers of one-file-per-message stores (Maildir, MH, .eml, .emlx, PST).

Reading is read-only and never follows more than it must: files are opened ``"rb"``
(with ``O_NOATIME`` where the kernel allows it, so even the access time stays put),
directories are listed, never changed. Header work is limited to finding a date:
no MIME parsing.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

from advisor.platform_compat import NONBLOCK
from advisor.stores.base import Problem
from advisor.stores.fsnames import printable

INBOX = "INBOX"
"""Folder name of a store's root folder (Maildir's root, loose files of an .eml tree...)."""

# Dates outside this window are absurd for a received date (typos, zero timestamps).
_EARLIEST = datetime(1971, 1, 1, tzinfo=UTC)
_FUTURE_SLACK = timedelta(days=2)
# Only the header block is searched for dates; a header larger than this is broken anyway.
_HEADER_LIMIT = 1 << 20

_NOATIME = getattr(os, "O_NOATIME", 0)


def _opener(path: str, flags: int) -> int:
    """Open without updating the access time when we may (owner or root), else normally.

    O_NONBLOCK: a named pipe where a message file should be must not hang the reader
    (it is refused right after opening, see :func:`read_bytes`).
    """
    flags |= NONBLOCK
    if _NOATIME:
        try:
            return os.open(path, flags | _NOATIME)
        except PermissionError as exc:
            if exc.errno != errno.EPERM:  # EPERM: O_NOATIME not allowed; EACCES is real
                raise
    return os.open(path, flags)


def read_bytes(path: Path) -> bytes:
    """The whole regular file, read-only; raises OSError (also for pipes, devices...)."""
    with open(path, "rb", opener=_opener) as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        return f.read()


def read_message_file(path: Path) -> tuple[bytes, tuple[Problem, ...]]:
    """The file's bytes, or empty bytes and an "unreadable" problem (never raises OSError).

    A zero-byte file is reported as unreadable too: there is no message to migrate.
    """
    try:
        data = read_bytes(path)
    except OSError as exc:
        return b"", (Problem("unreadable", f"{path}: {exc.strerror or exc}"),)
    if not data:
        return b"", (Problem("unreadable", f"{path}: zero-byte file, no message in it"),)
    return data, ()


def header_values(data: bytes, wanted: frozenset[bytes]) -> Iterator[tuple[bytes, bytes]]:
    """(lower-case name, unfolded value) of the wanted header fields, top to bottom.

    Stops at the first empty line. Lines without a colon are skipped, not fatal.
    """
    end = len(data) if len(data) < _HEADER_LIMIT else _HEADER_LIMIT
    pos = 0
    name: bytes | None = None
    value: list[bytes] = []
    while pos < end:
        nl = data.find(b"\n", pos, end)
        line_end = end if nl < 0 else nl
        line = data[pos:line_end]
        pos = line_end + 1
        if line.endswith(b"\r"):
            line = line[:-1]
        if line[:1] in (b" ", b"\t"):
            if name is not None:
                value.append(line)
            continue
        if name is not None:
            yield name, b" ".join(v.strip() for v in value)
            name = None
        if not line:
            return
        colon = line.find(b":")
        if colon <= 0:
            continue
        field = line[:colon].strip().lower()
        if field in wanted:
            name, value = field, [line[colon + 1 :]]
    if name is not None:
        yield name, b" ".join(v.strip() for v in value)


def parse_date(value: bytes) -> datetime | None:
    """An RFC 5322 date, or None when it is unparsable or absurd (before 1971, in the future).

    Aware when the zone is given; naive (local time) for "-0000" or a missing zone.
    """
    try:
        parsed = parsedate_to_datetime(value.decode("latin-1").strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    check = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if check < _EARLIEST or check > datetime.now(UTC) + _FUTURE_SLACK:
        return None
    return parsed


_RECEIVED_DATE = frozenset({b"received", b"date"})


def header_date(data: bytes) -> datetime | None:
    """When the message arrived, from its header.

    The Received: header added last (the topmost one: the final server's delivery
    time) wins; a Received: without a usable date is passed over for the next one;
    then Date:. None when there is no usable date.
    """
    date_value: bytes | None = None
    for name, value in header_values(data, _RECEIVED_DATE):
        if name == b"received":
            semi = value.rfind(b";")
            if semi >= 0:
                parsed = parse_date(value[semi + 1 :])
                if parsed is not None:
                    return parsed
        elif date_value is None:
            date_value = value
    return parse_date(date_value) if date_value is not None else None


def timestamp_date(seconds: float) -> datetime | None:
    """Seconds since 1970 (UTC) as an aware datetime, None when absurd."""
    try:
        when = datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    if when < _EARLIEST or when > datetime.now(UTC) + _FUTURE_SLACK:
        return None
    return when


def file_mtime(path: Path) -> datetime | None:
    """The file's modification time (aware, UTC), None if it cannot be read."""
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except (OSError, OverflowError, ValueError):
        return None


def received_or_mtime(data: bytes, path: Path) -> tuple[datetime | None, tuple[Problem, ...]]:
    """Header date, else the file's mtime (with a "bad-date" problem saying so)."""
    when = header_date(data)
    if when is not None:
        return when, ()
    if not data:
        return file_mtime(path), ()
    return file_mtime(path), (
        Problem("bad-date", "no usable Received: or Date: header; using the file's time"),
    )


def folder_key(folder: tuple[str, ...]) -> str:
    """A folder path as one string for source ids: names joined by "/", with "%" and "/"
    inside names percent-encoded so different paths never give the same key."""
    return "/".join(printable(n).replace("%", "%25").replace("/", "%2F") for n in folder)


def source_id(folder: tuple[str, ...], name: str) -> str:
    """Identity of a message ``name`` (file name or its stable part) within ``folder``.
    A name that is not UTF-8 keeps its odd bytes as ``\\xNN`` (stable, storable)."""
    return f"{folder_key(folder)}/{printable(name)}"


def sorted_dir(directory: Path) -> list[os.DirEntry[str]]:
    """Entries of a directory sorted by name; empty when it cannot be listed."""
    try:
        with os.scandir(directory) as it:
            entries = list(it)
    except OSError:
        return []
    entries.sort(key=lambda e: e.name)
    return entries


def list_directory(directory: Path) -> tuple[list[os.DirEntry[str]], str | None]:
    """Entries of a directory sorted by name, and why it could not be listed (None when it
    was, or when it is not there). A folder that cannot be listed may hold mail: readers
    report it with :func:`~advisor.stores.base.unreadable_message` instead of passing it
    over in silence."""
    try:
        with os.scandir(directory) as it:
            entries = list(it)
    except FileNotFoundError:
        return [], None
    except OSError as exc:
        return [], f"{directory}: the folder cannot be listed: {exc.strerror or exc}"
    entries.sort(key=lambda e: e.name)
    return entries, None


def is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


class LoopGuard:
    """Remembers directories by (device, inode) so symlinked folders are read once."""

    def __init__(self) -> None:
        self._seen: set[tuple[int, int]] = set()

    def first_visit(self, directory: Path) -> bool:
        try:
            st = directory.stat()
        except OSError:
            return False
        key = (st.st_dev, st.st_ino)
        if key in self._seen:
            return False
        self._seen.add(key)
        return True


_DIGITS = re.compile(r"\d+")


def natural_key(name: str) -> tuple[int, int, str]:
    """Sort key putting "2" before "10" (numbered messages), then other names."""
    stem = name.split(".", 1)[0]
    if _DIGITS.fullmatch(stem):
        return (0, int(stem), name)
    return (1, 0, name)
