"""MH folders as Claws Mail 3.x/4.x and Sylpheed write them.

Each folder directory holds the messages as numbered files, an EMPTY ``.mh_sequences``,
the binary mark file (``.claws_mark`` / ``.sylpheed_mark``: little-endian uint32
MARK_VERSION 2, then uint32 message number and uint32 permanent flags per message, as
msgcache_write_flags writes them) and the summary cache (``.claws_cache`` /
``.sylpheed_cache``: the cache version, the charset as a length-prefixed string, then
per message its number, size, mtime, date, temporary flags and length-prefixed header
strings), written in the order of procmsg/msgcache. The mailbox root (``~/Mail``) holds
the default folders inbox, sent, queue, trash and draft.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path

CLAWS_CACHE_VERSION = 24
SYLPHEED_CACHE_VERSION = 0x21


@dataclass
class ClawsMessage:
    number: int
    subject: str
    received: datetime
    perm_flags: int | None
    """None: the client has no entry for it yet (never shown)."""
    tags: tuple[int, ...] = ()
    """Claws tag ids (named in ~/.claws-mail/tagsrc)."""

    def data(self) -> bytes:
        return (
            f"Return-Path: <sender@example.org>\n"
            f"Received: from mx.example.org by pop.example.org; {format_datetime(self.received)}\n"
            f"From: Sender <sender@example.org>\nTo: me@example.test\n"
            f"Subject: {self.subject}\nMessage-ID: <claws-{self.number}@example.org>\n"
            f"Date: {format_datetime(self.received)}\n\nBody of {self.subject}.\n"
        ).encode()


def _string(value: str) -> bytes:
    raw = value.encode()
    return struct.pack("<i", len(raw)) + raw


def write_folder(directory: Path, messages: list[ClawsMessage], *, sylpheed: bool = False) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / ".mh_sequences").write_bytes(b"")
    mark = bytearray(struct.pack("<I", 2))
    tags = bytearray(struct.pack("<I", 1))  # TAGS_VERSION
    version = SYLPHEED_CACHE_VERSION if sylpheed else CLAWS_CACHE_VERSION
    cache = bytearray(struct.pack("<i", version) + _string("UTF-8"))
    for m in messages:
        data = m.data()
        path = directory / str(m.number)
        path.write_bytes(data)
        stamp = int(m.received.timestamp())
        os.utime(path, (stamp, stamp))
        cache += struct.pack("<IIiiI", m.number, len(data), stamp, stamp, 0)
        for value in ("Sender", format_datetime(m.received), "Sender <sender@example.org>",
                      "me@example.test", "", "", m.subject, f"claws-{m.number}@example.org",
                      "", ""):  # fmt: skip
            cache += _string(value)
        cache += struct.pack("<iii", 0, 0, 0)  # planned_download, total_size, no References
        if m.perm_flags is not None:
            mark += struct.pack("<II", m.number, m.perm_flags)
            tags += struct.pack("<I", m.number)
            tags += b"".join(struct.pack("<i", t) for t in m.tags) + struct.pack("<i", -1)
    (directory / (".sylpheed_mark" if sylpheed else ".claws_mark")).write_bytes(bytes(mark))
    if not sylpheed:  # Sylpheed has no tags
        (directory / ".claws_tags").write_bytes(bytes(tags))
    (directory / (".sylpheed_cache" if sylpheed else ".claws_cache")).write_bytes(bytes(cache))


def write_mailbox(
    root: Path,
    folders: dict[str, list[ClawsMessage]],
    *,
    sylpheed: bool = False,
    tag_names: dict[int, str] | None = None,
) -> Path:
    """``~/Mail`` with the default folders (empty unless given) and ``folders``;
    ``tag_names`` go into ``~/.claws-mail/tagsrc`` beside it (tags.c's format)."""
    if tag_names is not None:
        rc = root.parent / ".claws-mail"
        rc.mkdir(parents=True, exist_ok=True)
        lines = [f"max_id {max(tag_names, default=0)}"]
        lines += [f"{i}\t{name}" for i, name in tag_names.items()]
        (rc / "tagsrc").write_text("\n".join(lines) + "\n")
    for name in ("inbox", "sent", "queue", "trash", "draft"):
        folders.setdefault(name, [])
    for name, messages in folders.items():
        write_folder(root / name, messages, sylpheed=sylpheed)
    return root
