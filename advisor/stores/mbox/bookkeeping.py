"""What Unix mail programs keep inside an mbox file that is not mail.

c-client (Alpine, Pine, UW-IMAP, PHP's imap), Dovecot's mbox driver and GNU mailutils
(``movemail``, ``mail``) keep their state in the header section of each message:
``X-IMAPbase`` (first message) or ``X-IMAP``, ``X-UID``, ``X-Keywords``, ``Status``,
``X-Status``, ``Content-Length``. Dovecot hides exactly these seven fields from IMAP
clients (``mbox_hide_headers`` in its mbox storage), whoever wrote the file, so the bytes
we upload are the bytes Dovecot's mbox driver shows: the message as delivered.

c-client also puts a pseudo-message first in every mbox it creates (``From
MAILER-DAEMON``, ``Subject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA``, an
``X-IMAP:`` field holding the UID validity and the keyword list); Dovecot writes the same
one (``From MAILER_DAEMON``) when a folder is emptied. It is folder data, never mail:
Dovecot hides it too.

Quoting: c-client and Dovecot never take a ``>`` off ``>From `` lines when they read
(Dovecot relies on Content-Length, c-client shows the line as stored), so a file they
manage is read as stored; GNU mailutils writes and reads mboxrd, so its files keep the
default unquoting. They are told apart by the first message's ``X-IMAPbase`` (c-client and
Dovecot write the next UID as ten digits, mailutils pads with spaces) or the pseudo-message.

This module also knows which single mbox files are a user's inbox (spools, fetchers'
targets) and which program laid out a directory of mbox files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from advisor.stores.base import Problem

__all__ = [
    "HEAD_BYTES",
    "PSEUDO_NOTE",
    "UnixFields",
    "file_writer",
    "inbox_reason",
    "is_pseudo_message",
    "keeps_quoting",
    "strip_unix_fields",
    "tree_layout",
]

HEAD_BYTES = 64 * 1024
"""How much of a file's start is read to see who wrote it."""

# Dovecot's mbox_hide_headers, each field found with the line break before it (the block
# gets a "\n" in front: a literal first is far faster to search than "^").
_UNIX_FIELD_NL = re.compile(
    rb"\n(content-length|status|x-imap|x-imapbase|x-keywords|x-status|x-uid)[ \t]*:"
    rb"([^\n]*(?:\n[ \t][^\n]*)*)",
    re.I,
)
_KEYWORD = re.compile(r"[!#$&'+,\-./0-9:;<=>?@A-Z^_`a-z|~]+\Z")
_FOLD = re.compile(rb"\r?\n[ \t]")
_PSEUDO_SUBJECT = re.compile(rb"\nsubject:[^\n]*folder internal data", re.I)
_X_IMAP = re.compile(rb"\nx-imap[ \t]*:", re.I)
# c-client and Dovecot: "X-IMAPbase: 1796291020 0000000002 keyword...".
_CCLIENT_BASE = re.compile(rb"\nx-imapbase:[ \t]*\d+ \d{10}(?:[ \t\r\n]|$)", re.I)
# GNU mailutils: "X-IMAPbase:           1796291120                    3".
_MAILUTILS_BASE = re.compile(rb"\nx-imapbase:[ \t]{2,}\d+[ \t]{2,}\d+[ \t]*\r?$", re.I | re.M)
_FETCHER_TRACES = (
    (re.compile(rb"\nx-getmail-retrieved-from-mailbox:", re.I), "getmail"),
    (re.compile(rb"\nreceived:[^\n]*(?:\n[ \t][^\n]*)*\(fetchmail-", re.I), "fetchmail"),
)

PSEUDO_NOTE = (
    "c-client's folder-data record (From MAILER-DAEMON, \"DON'T DELETE THIS MESSAGE -- "
    'FOLDER INTERNAL DATA") is not mail: counted as folder data, not migrated'
)

CCLIENT = "c-client/Dovecot"
MAILUTILS = "GNU mailutils"


@dataclass(frozen=True, slots=True)
class UnixFields:
    """A message without its Unix bookkeeping fields, and the keywords they held."""

    data: bytes
    keywords: frozenset[str]
    problems: tuple[Problem, ...] = ()


_NONE: frozenset[str] = frozenset()


def strip_unix_fields(data: bytes, block: bytes) -> UnixFields:
    """``data`` without the seven fields Dovecot hides (with their folded lines), found
    in its header block ``block`` (a prefix of ``data``, bare CRs as LF); every other byte
    is kept. ``X-Keywords`` (space-separated) become IMAP keywords."""
    spans: list[tuple[int, int]] = []
    keywords: set[str] = set()
    problems: list[Problem] = []
    for match in _UNIX_FIELD_NL.finditer(b"\n" + block):
        # In block, the field starts where the match's "\n" is in "\n" + block.
        start, end = match.start(), match.end() - 1
        end += block[end : end + 1] == b"\n"
        spans.append((start, end))
        if match.group(1).lower() == b"x-keywords":
            value = _FOLD.sub(b" ", match.group(2)).decode("utf-8", "replace")
            for word in value.split():
                if _KEYWORD.match(word) and not word.startswith("\\"):
                    keywords.add(word)
                else:
                    problems.append(
                        Problem("bad-flags", f"keyword {word!r} is not a valid IMAP keyword")
                    )
    if not spans:
        return UnixFields(data, _NONE)
    return UnixFields(_without(data, spans), frozenset(keywords), tuple(problems))


def _without(data: bytes, spans: list[tuple[int, int]]) -> bytes:
    """``data`` without the ``spans``, copied once (slices of a memoryview copy nothing)."""
    with memoryview(data) as view:
        pieces = []
        last = 0
        for start, end in spans:
            pieces.append(view[last:start])
            last = end
        pieces.append(view[last:])
        try:
            return b"".join(pieces)
        finally:
            for piece in pieces:
                piece.release()


def is_pseudo_message(envelope: bytes | None, block: bytes) -> bool:
    """Is this (the first message of a file) c-client's folder-data record? It carries an
    ``X-IMAP:`` field and says what it is in its envelope or its subject."""
    head = b"\n" + block
    if _X_IMAP.search(head) is None:
        return False
    # Dovecot writes the same record as "From MAILER_DAEMON" when it empties a folder.
    daemons = (b"From MAILER-DAEMON ", b"From MAILER_DAEMON ")
    mailer_daemon = envelope is not None and envelope.startswith(daemons)
    return mailer_daemon or _PSEUDO_SUBJECT.search(head) is not None


def _head(path: Path) -> bytes:
    try:
        with open(path, "rb") as stream:
            return stream.read(HEAD_BYTES)
    except OSError:
        return b""


def _first_header_block(head: bytes) -> tuple[bytes | None, bytes]:
    """The first message's envelope line and header block (LF line ends) of a file head."""
    text = head.replace(b"\r\n", b"\n")
    envelope = None
    if text.startswith(b"From "):
        line_end = text.find(b"\n")
        if line_end < 0:
            return text, b""
        envelope, text = text[:line_end], text[line_end + 1 :]
    end = text.find(b"\n\n")
    return envelope, text if end < 0 else text[: end + 1]


def file_writer(path: Path) -> str | None:
    """Which Unix mail program keeps this mbox file: :data:`CCLIENT` (c-client or
    Dovecot), :data:`MAILUTILS`, or None when its first message says nothing."""
    envelope, block = _first_header_block(_head(path))
    head = b"\n" + block
    if is_pseudo_message(envelope, block) or _CCLIENT_BASE.search(head):
        return CCLIENT
    if _MAILUTILS_BASE.search(head):
        return MAILUTILS
    return None


def keeps_quoting(writer: str | None) -> bool:
    """Whether ``>From `` lines of a file kept by ``writer`` are read as stored."""
    return writer == CCLIENT


_SPOOL_DIRS = ("/var/mail", "/var/spool/mail", "/var/spool/mbox")


def inbox_reason(path: Path) -> str | None:
    """Why the single mbox file ``path`` is its owner's inbox, or None when it is not
    known to be: a system spool, ``~/mbox``, ``~/mail/inbox``, or the file a fetcher
    (movemail, fetchmail, getmail) delivers into."""
    parent = path.parent.as_posix()
    if parent in _SPOOL_DIRS:
        return f"the system mailbox ({path}) is the user's inbox"
    name = path.name.lower()
    if name == "mbox":
        return "~/mbox, where mail and mutt keep read mail, is the user's inbox"
    if name in ("inbox", "inbox.mbox", "inbox.mbx"):
        return "a file named inbox (Dovecot's and Alpine's ~/mail/inbox) is the user's inbox"
    _, block = _first_header_block(_head(path))
    head = b"\n" + block
    if _MAILUTILS_BASE.search(head):
        return "GNU mailutils (movemail) delivered into this file: it is the user's inbox"
    for pattern, fetcher in _FETCHER_TRACES:
        if pattern.search(head):
            return f"{fetcher} delivered into this file: it is the user's inbox"
    return None


def tree_layout(directory: Path) -> str | None:
    """Which program laid out a directory of mbox files, when it can be told."""
    try:
        names = {entry.name for entry in directory.iterdir()}
    except OSError:
        return None
    if ".imap" in names or ".subscriptions" in names:
        return "Dovecot's mbox layout (~/mail with its .imap index)"
    lower = {name.lower() for name in names}
    files = sorted(directory / n for n in names if not n.startswith("."))[:50]
    pine = {"sent-mail", "saved-messages", "postponed-msgs"} & lower
    if pine or any(file_writer(f) == CCLIENT for f in files if f.is_file()):
        return "Alpine/Pine's ~/mail (c-client)"
    home = directory.parent
    muttrc = (home / ".muttrc").is_file() or (home / ".mutt").is_dir()
    if muttrc or (home / ".config" / "mutt").is_dir() or "postponed" in lower:
        return "mutt's folder directory"
    return None
