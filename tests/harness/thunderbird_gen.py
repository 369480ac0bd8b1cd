"""Builds mbox files and Thunderbird profiles with known contents, for the reader tests.

* :func:`mboxrd` writes messages the way a correct mboxrd writer does (every
  ``>*From `` line gains one ``>``, a blank line after each message).
* :func:`msf` writes a Mork ``.msf`` summary: a message table with one row per
  live message (keyed by its offset as Thunderbird's ``storeToken``), a folder
  info row, and optionally committed or aborted transaction groups.
* :class:`ProfileBuilder` lays out a profile (profiles.ini, prefs.js, lock files,
  Mail/<account>/ folders with .msf and .sbd children) and records what a
  correct reader must return for each message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

QUOTE = re.compile(rb"^(>*From )", re.M)


def mboxrd(messages: Sequence[bytes], envelopes: Sequence[bytes] | None = None) -> bytes:
    """An mboxrd file holding ``messages`` (each must end with a line break)."""
    out = bytearray()
    for i, message in enumerate(messages):
        envelope = envelopes[i] if envelopes else b"From - Tue Jan 02 13:45:00 2024"
        eol = b"\r\n" if message.endswith(b"\r\n") else b"\n"
        out += envelope + eol + QUOTE.sub(rb">\1", message) + eol
    return bytes(out)


def offsets(mbox: bytes) -> list[int]:
    """Where each ``From `` line of a generated file starts (first at 0)."""
    if not mbox:
        return []
    return [0] + [m.start() + 1 for m in re.finditer(rb"\n(?=From )", mbox)]


def _escape(value: bytes) -> bytes:
    out = bytearray()
    for byte in value:
        if byte in b")\\$":
            out += b"\\" + bytes([byte])
        elif byte < 0x20 or byte > 0x7E:
            out += b"$%02X" % byte
        else:
            out.append(byte)
    return bytes(out)


@dataclass
class Row:
    """One live message in a .msf."""

    offset: int | str
    """mbox offset (storeToken) or maildir file name."""
    flags: int = 0
    keywords: str = ""
    received: datetime | None = None
    subject: str = "a subject we do not read"
    use_row_id: bool = False
    """Old Thunderbird: no storeToken, the row id is the offset."""
    junkscore: str | None = None
    """Thunderbird's junk verdict: "100" junk, "0" not junk (string cells, as it writes)."""
    junkscoreorigin: str = "user"


COLUMNS = {
    "ns:msg:db:row:scope:msgs:all": 0x80,
    "flags": 0x81,
    "keywords": 0x82,
    "storeToken": 0x83,
    "ns:msg:db:table:kind:msgs": 0x84,
    "ns:msg:db:row:scope:dbfolderinfo:all": 0x85,
    "ns:msg:db:table:kind:dbfolderinfo": 0x86,
    "folderSize": 0x87,
    "folderName": 0x88,
    "dateReceived": 0x89,
    "subject": 0x8A,
    "ns:msg:db:table:kind:thread": 0x8B,
    "junkscore": 0x8C,
    "junkscoreorigin": 0x8D,
}


def msf(
    rows: Iterable[Row],
    folder_size: int | None = None,
    folder_name: str | None = None,
    committed_cuts: Sequence[int] = (),
    aborted_cuts: Sequence[int] = (),
    unfinished_cut: int | None = None,
) -> bytes:
    """A Mork summary. ``*_cuts`` are row ids removed from the message table in a
    committed group, an aborted group, or a group the file ends in the middle of."""
    c = COLUMNS
    out = [b'// <!-- <mdb:mork:z v="1.4"/> -->\n< <(a=c)> // (f=iso-8859-1)\n']
    out.append(b"".join(b"  (%X=%s)\n" % (i, n.encode()) for n, i in c.items()) + b">\n")
    atoms: list[bytes] = []
    body: list[bytes] = []

    def atom(value: bytes) -> int:
        atoms.append(_escape(value))
        return 0x90 + len(atoms) - 1

    row_ids = []
    for number, row in enumerate(rows, start=1):
        row_id = int(row.offset) if row.use_row_id else number
        row_ids.append(row_id)
        cells = [b"(^%X=%X)" % (c["flags"], row.flags)]
        if not row.use_row_id:
            cells.append(b"(^%X^%X)" % (c["storeToken"], atom(str(row.offset).encode())))
        if row.keywords:
            cells.append(b"(^%X^%X)" % (c["keywords"], atom(row.keywords.encode())))
        if row.received is not None:
            cells.append(b"(^%X=%X)" % (c["dateReceived"], int(row.received.timestamp())))
        cells.append(b"(^%X^%X)" % (c["subject"], atom(row.subject.encode())))
        if row.junkscore is not None:
            cells.append(b"(^%X^%X)" % (c["junkscore"], atom(row.junkscore.encode())))
            origin = atom(row.junkscoreorigin.encode())
            cells.append(b"(^%X^%X)" % (c["junkscoreorigin"], origin))
        body.append(b"  [%X%s]\n" % (row_id, b"".join(cells)))
    out.append(b"<" + b"".join(b"(%X=%s)" % (0x90 + i, a) for i, a in enumerate(atoms)) + b">\n")
    out.append(b"{1:^80 {(k^84:c)(s=9)} \n" + b"".join(body) + b"}\n")
    # A thread table references the same rows: it must not make them live.
    out.append(b"{FFFFFFFE:^80 {(k^8B:c)(s=9)} %s }\n" % b" ".join(b"%X" % r for r in row_ids))
    info = []
    if folder_size is not None:
        info.append(b"(^87=%X)" % folder_size)
    if folder_name is not None:
        info.append(b"(^88=%s)" % _escape(folder_name.encode()))
    out.append(b"{1:^85 {(k^86:c)(s=9)} [1%s]}\n" % b"".join(info))
    for group, cut in enumerate(committed_cuts, start=0x10):
        out.append(b"@$${%X{@\n{1:^80 -%X }\n@$$}%X}@\n" % (group, cut, group))
    for group, cut in enumerate(aborted_cuts, start=0x20):
        out.append(b"@$${%X{@\n{1:^80 -%X }\n@$$}~~}@\n" % (group, cut))
    if unfinished_cut is not None:
        out.append(b"@$${30{@\n{1:^80 -%X }\n" % unfinished_cut)
    return b"".join(out)


@dataclass
class Expected:
    """What a correct reader returns for one generated message."""

    folder: tuple[str, ...]
    data: bytes
    flags: frozenset[str]
    deleted: bool = False
    partial: bool = False
    problems: frozenset[str] = frozenset()
    received: datetime | None = None


@dataclass
class GenMessage:
    """A message to put in a generated folder."""

    body: bytes
    """The message as the user should get it back (no X-Mozilla headers)."""
    status: int | None = None
    """X-Mozilla-Status value written into the stored copy (None: no such header)."""
    status2: int | None = None
    keys: str | None = None
    row: bool = True
    """Whether the .msf has a live row for it."""
    row_flags: int | None = None
    row_keywords: str = ""
    row_received: datetime | None = None


def stored_copy(message: GenMessage) -> bytes:
    """The message as Thunderbird stores it: its bookkeeping headers first."""
    eol = b"\r\n" if message.body.endswith(b"\r\n") else b"\n"
    head = b""
    if message.status is not None:
        head += b"X-Mozilla-Status: %04x" % message.status + eol
    if message.status2 is not None:
        head += b"X-Mozilla-Status2: %08x" % message.status2 + eol
    if message.keys is not None:
        head += b"X-Mozilla-Keys: " + message.keys.encode().ljust(80) + eol
    return head + message.body


@dataclass
class ProfileBuilder:
    """Writes a Thunderbird profile below ``root`` and remembers what it holds."""

    root: Path
    expected: list[Expected] = field(default_factory=list)

    def folder(
        self,
        directory: Path,
        file_name: str,
        logical: tuple[str, ...],
        messages: Sequence[GenMessage],
        *,
        index: str = "current",
        folder_name: str | None = None,
    ) -> Path:
        """An mbox folder with its .msf. ``index``: "current", "stale", "none"."""
        directory.mkdir(parents=True, exist_ok=True)
        stored = [stored_copy(m) for m in messages]
        data = mboxrd(stored)
        starts = offsets(data)
        (directory / file_name).write_bytes(data)
        rows = [
            Row(
                start,
                flags=m.row_flags if m.row_flags is not None else (m.status or 0),
                keywords=m.row_keywords,
                received=m.row_received,
            )
            for m, start in zip(messages, starts, strict=True)
            if m.row
        ]
        if index != "none":
            size = len(data) + (7 if index == "stale" else 0)
            (directory / (file_name + ".msf")).write_bytes(
                msf(rows, folder_size=size, folder_name=folder_name)
            )
        return directory / file_name


PREFS = """// Mozilla User Preferences
user_pref("mail.account.account1.server", "server1");
user_pref("mail.account.account2.server", "server2");
user_pref("mail.accountmanager.accounts", "account1,account2,account3,account4");
user_pref("mail.server.server1.directory", "/nonexistent/old/home/Mail/Local Folders");
user_pref("mail.server.server1.directory-rel", "[ProfD]Mail/Local Folders");
user_pref("mail.server.server1.hostname", "Local Folders");
user_pref("mail.server.server1.name", "Local Folders");
user_pref("mail.server.server1.type", "none");
user_pref("mail.server.server2.directory-rel", "[ProfD]Mail/pop.example.com");
user_pref("mail.server.server2.hostname", "pop.example.com");
user_pref("mail.server.server2.name", "Jo \\"Pop\\" <jo@example.com>");
user_pref("mail.server.server2.type", "pop3");
user_pref("mail.server.server3.directory-rel", "[ProfD]ImapMail/imap.example.com");
user_pref("mail.server.server3.type", "imap");
user_pref("mail.server.server4.directory-rel", "[ProfD]Mail/Feeds");
user_pref("mail.server.server4.type", "rss");
"""
