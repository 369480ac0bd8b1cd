"""Apple Mail ``.emlx`` and ``.partial.emlx`` files.

An ``.emlx`` file is: a first line with the message's byte count (maybe space-padded),
that many bytes of message, then an XML property list with ``date-received`` (seconds
since 1970, UTC) and ``flags`` (bit 0 read, 1 deleted, 2 answered, 4 flagged, 6 draft,
8 forwarded; the value can exceed 32 bits). Mailboxes are ``Name.mbox`` directories,
nested for sub-mailboxes (``Work.mbox/Projects.mbox``); the messages lie in a
``Messages/`` directory somewhere below (``<uuid>/Data/1/2/Messages/`` in recent
versions). The folder is the chain of ``.mbox`` names; ``.emlx`` files outside any
``.mbox`` are the Inbox, ``("INBOX",)``.

A ``.partial.emlx`` lacks the bodies of its attachments: each stripped MIME part carries
``X-Apple-Content-Length`` and an empty body, and the attachment itself is a file in
``../Attachments/<id>/<part number>/``. The reader puts it back, encoded with the part's
Content-Transfer-Encoding (base64 in 76-character lines), and drops the
``X-Apple-Content-Length`` line: Apple Mail's own bookkeeping. When an attachment file
is missing, the message is yielded as stored with ``partial=True`` and a "partial"
problem naming the part.

Broken files (no byte count, a count that does not match, no property list, garbage)
are yielded with a problem, never dropped and never fatal.
"""

from __future__ import annotations

import base64
import binascii
import plistlib
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path
from typing import Any, ClassVar

from advisor.stores.base import (
    ANSWERED,
    DRAFT,
    FLAGGED,
    FORWARDED,
    SEEN,
    Problem,
    SourceFolder,
    SourceMessage,
    StoreReader,
    unreadable_message,
)
from advisor.stores.message_files import (
    INBOX,
    LoopGuard,
    header_date,
    is_dir,
    is_file,
    list_directory,
    natural_key,
    read_bytes,
    sorted_dir,
    timestamp_date,
)

SUFFIX = ".emlx"
PARTIAL_SUFFIX = ".partial.emlx"
MAILBOX_SUFFIXES = (".mbox", ".imapmbox")
ATTACHMENTS = "Attachments"
APPLE_LENGTH = b"x-apple-content-length"

FLAG_BITS: dict[int, str] = {0: SEEN, 2: ANSWERED, 4: FLAGGED, 6: DRAFT, 8: FORWARDED}
DELETED_BIT = 1
_MAX_DEPTH = 64
# Not looked into by detect(): Maildir's message directories can be huge.
_NOT_MAIL_DATA = frozenset({"cur", "new", "tmp"})
_PLIST_START = b"<?xml"
_STRIPPED_PART = re.compile(rb"^x-apple-content-length:", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class Emlx:
    """An .emlx file taken apart."""

    message: bytes
    plist: dict[str, Any] | None
    problems: tuple[Problem, ...]
    truncated: bool = False


def parse_emlx(data: bytes) -> Emlx:
    """Split an .emlx file into message and property list; never raises."""
    problems: list[Problem] = []
    nl = data.find(b"\n")
    first = data[:nl] if nl >= 0 else data
    count = int(first) if first.strip().isdigit() else None
    if count is not None:
        start = nl + 1
        end = start + count
        tail = data[end:] if end <= len(data) else b""
        if end <= len(data) and (not tail.strip() or tail.lstrip().startswith(_PLIST_START)):
            plist, plist_problem = _parse_plist(tail)
            return Emlx(data[start:end], plist, _opt(plist_problem))
        body = data[start:]
    else:
        start, body = 0, data
    # The count is missing or wrong: the property list, if any, starts the last "<?xml" line.
    cut = body.rfind(b"\n" + _PLIST_START)
    if cut >= 0:
        plist, plist_problem = _parse_plist(body[cut + 1 :])
        if plist is not None:
            what = (
                "no byte count on the first line"
                if count is None
                else (f"byte count {count} does not match the message ({cut + 1} bytes)")
            )
            problems.append(Problem("bad-emlx", f"{what}; message taken up to the property list"))
            return Emlx(body[: cut + 1], plist, tuple(problems))
    no_plist = Problem("bad-flags", "no property list: flags and date-received unknown")
    if count is None:
        problems.append(
            Problem("bad-emlx", "not an emlx file (no byte count, no property list); kept as is")
        )
        return Emlx(body, None, (*problems, no_plist))
    problems.append(
        Problem("truncated", f"the file ends {count - len(body)} bytes before the message does")
    )
    return Emlx(body, None, (*problems, no_plist), truncated=True)


def _parse_plist(raw: bytes) -> tuple[dict[str, Any] | None, Problem | None]:
    if not raw.strip():
        return None, Problem("bad-flags", "no property list: flags and date-received unknown")
    try:
        value = plistlib.loads(raw.strip(), fmt=plistlib.FMT_XML)
    except Exception as exc:
        # (an unknown encoding in the declaration), IndexError, KeyError...: this file's
        # problem, never the run's.
        return None, Problem("bad-flags", f"unreadable property list ({exc!r}); flags unknown")
    if not isinstance(value, dict):
        return None, Problem("bad-flags", "the property list is not a dictionary; flags unknown")
    return value, None


def _opt(problem: Problem | None) -> tuple[Problem, ...]:
    return () if problem is None else (problem,)


def plist_flags(plist: dict[str, Any]) -> tuple[set[str], bool, list[Problem]]:
    """(IMAP flags, deleted, problems) from the plist's ``flags`` integer."""
    value = plist.get("flags", 0)
    if isinstance(value, bool) or not isinstance(value, int):
        return set(), False, [Problem("bad-flags", f"flags {value!r} is not an integer")]
    flags = {flag for bit, flag in FLAG_BITS.items() if value >> bit & 1}
    return flags, bool(value >> DELETED_BIT & 1), []


# -- .partial.emlx ------------------------------------------------------------------


@dataclass(frozen=True)
class _Part:
    number: tuple[int, ...]
    start: int
    body_start: int
    end: int
    headers: Message


def _header_end(data: bytes, start: int, end: int) -> int:
    """Offset just after the empty line ending the header block at ``start``."""
    pos = start
    while pos < end:
        nl = data.find(b"\n", pos, end)
        if nl < 0:
            return end
        if data[pos:nl] in (b"", b"\r"):
            return nl + 1
        pos = nl + 1
    return end


def _walk_parts(
    data: bytes, start: int, end: int, number: tuple[int, ...], out: list[_Part], depth: int
) -> None:
    body_start = _header_end(data, start, end)
    headers = BytesHeaderParser(policy=compat32).parsebytes(data[start:body_start])
    out.append(_Part(number, start, body_start, end, headers))
    boundary = headers.get_boundary() if headers.get_content_maintype() == "multipart" else None
    if not boundary or depth > 50:
        return
    delimiter = b"--" + boundary.encode("utf-8", "surrogateescape")
    # Delimiter lines: "--boundary" at a line start, maybe followed by "--" and blanks.
    lines: list[tuple[int, int, bool]] = []  # (line start, next line start, closing)
    pos = body_start
    while True:
        found = data.find(delimiter, pos, end)
        if found < 0:
            break
        pos = found + len(delimiter)
        if found != body_start and data[found - 1 : found] != b"\n":
            continue
        nl = data.find(b"\n", pos, end)
        rest = data[pos : end if nl < 0 else nl].rstrip(b" \t\r")
        if rest not in (b"", b"--"):
            continue
        lines.append((found, end if nl < 0 else nl + 1, rest == b"--"))
        if rest == b"--":
            break
    for i, (_, content_start, closing) in enumerate(lines):
        if closing:
            break
        if i + 1 < len(lines):
            content_end = lines[i + 1][0]
            # The line break before a delimiter belongs to the delimiter (RFC 2046).
            if data[content_end - 2 : content_end] == b"\r\n":
                content_end -= 2
            elif data[content_end - 1 : content_end] == b"\n":
                content_end -= 1
            content_end = max(content_end, content_start)
        else:
            content_end = end  # unterminated multipart: the part runs to the end
        _walk_parts(data, content_start, content_end, (*number, i + 1), out, depth + 1)


def _drop_header(header: bytes, name: bytes) -> bytes:
    """The header block without field ``name`` (and its continuation lines)."""
    out: list[bytes] = []
    skipping = False
    for line in header.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t") and skipping:
            continue
        skipping = line.split(b":", 1)[0].strip().lower() == name
        if not skipping:
            out.append(line)
    return b"".join(out)


def _encode(raw: bytes, encoding: str, eol: bytes) -> bytes:
    """Attachment bytes in the part's transfer encoding, lines ending in ``eol``."""
    if encoding == "base64":
        text = base64.encodebytes(raw).rstrip(b"\n")
        return text.replace(b"\n", eol)
    if encoding == "quoted-printable":
        text = binascii.b2a_qp(raw, istext=True)
        if eol == b"\r\n":
            text = text.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        return text
    return raw  # 7bit, 8bit, binary: the data as it is


def _attachment_file(directory: Path, headers: Message) -> Path | None:
    """The attachment in ``directory``: by the part's file name, else its only file."""
    name = headers.get_filename()
    if name:
        for candidate in {
            name,
            unicodedata.normalize("NFC", name),
            unicodedata.normalize("NFD", name),
        }:
            if "/" not in candidate and (directory / candidate).is_file():
                return directory / candidate
    files = [e for e in sorted_dir(directory) if not e.name.startswith(".") and is_file(e)]
    return Path(files[0].path) if len(files) == 1 else None


def rebuild_partial(message: bytes, emlx_path: Path) -> tuple[bytes, bool, list[Problem]]:
    """Put the attachments of a .partial.emlx back: (message, still partial, problems)."""
    parts: list[_Part] = []
    _walk_parts(message, 0, len(message), (), parts, 0)
    stripped = [p for p in parts if p.headers.get(APPLE_LENGTH.decode()) is not None]
    if not stripped:
        return message, False, []
    eol = b"\r\n" if b"\r\n" in message[:2000] else b"\n"
    message_id = emlx_path.name.split(".", 1)[0]
    attachments = emlx_path.parent.parent / ATTACHMENTS / message_id
    out: list[bytes] = []
    pos = 0
    missing: list[Problem] = []
    for part in stripped:
        number = part.number or (1,)
        label = ".".join(map(str, number))
        directory = attachments / label
        found = _attachment_file(directory, part.headers)
        raw: bytes | None = None
        if found is not None:
            try:
                raw = read_bytes(found)
            except OSError as exc:
                missing.append(Problem("partial", f"attachment {label}: {found}: {exc.strerror}"))
        if raw is None:
            if found is None:
                what = part.headers.get_filename() or "its file"
                missing.append(
                    Problem("partial", f"attachment {label} ({what}) is missing from {directory}")
                )
            continue
        cte = str(part.headers.get("content-transfer-encoding", "7bit")).strip().lower()
        out.append(message[pos : part.start])
        out.append(_drop_header(message[part.start : part.body_start], APPLE_LENGTH))
        out.append(_encode(raw, cte, eol))
        pos = part.end
    out.append(message[pos:])
    return b"".join(out), bool(missing), missing


# -- the reader ---------------------------------------------------------------------


class EmlxReader(StoreReader):
    """Reads Apple Mail mailboxes (``~/Library/Mail/V*``) or any tree of .emlx files."""

    kind: ClassVar[str] = "emlx"
    metadata_notes: ClassVar[tuple[str, ...]] = (
        "Flags (read, answered, flagged, draft, forwarded, deleted) and the received date "
        "come from each file's property list.",
        ".partial.emlx messages are rebuilt from the Attachments folder; the re-encoded "
        "attachments are equal in content, not always byte-identical to the original.",
    )

    @classmethod
    def detect(cls, path: Path) -> bool:
        if path.is_file():
            return path.name.endswith(SUFFIX)
        if not path.is_dir():
            return False
        return path.name.endswith(MAILBOX_SUFFIXES) or _has_mail_data(path, 0)

    def folders(self) -> Iterator[SourceFolder]:
        seen: set[tuple[str, ...]] = set()
        for folder, directory, _, _ in self._walk():
            if folder not in seen:  # several directories can make one folder
                seen.add(folder)
                yield SourceFolder(folder, directory)

    def messages(self) -> Iterator[SourceMessage]:
        for folder, directory, names, error in self._walk():
            if error is not None:
                ident = directory.relative_to(self.path).as_posix()
                yield unreadable_message(folder, ident, error)
            for name in names:
                yield self._message(folder, directory / name)

    def _walk(self) -> Iterator[tuple[tuple[str, ...], Path, list[str], str | None]]:
        """(folder, directory, .emlx names, why it cannot be listed) for every directory
        holding .emlx files, or that cannot be listed (it might)."""
        if self.path.is_file():
            yield (INBOX,), self.path.parent, [self.path.name], None
            return
        root = (_mailbox_name(self.path.name),) if self.path.name.endswith(MAILBOX_SUFFIXES) else ()
        guard = LoopGuard()
        stack: list[tuple[Path, tuple[str, ...], int]] = [(self.path, root, 0)]
        while stack:
            directory, mailbox, depth = stack.pop()
            if depth > _MAX_DEPTH or not guard.first_visit(directory):
                continue
            names: list[str] = []
            children: list[tuple[Path, tuple[str, ...], int]] = []
            entries, error = list_directory(directory)
            for entry in entries:
                name = entry.name
                if name.startswith(".") or name == ATTACHMENTS:
                    continue
                if is_dir(entry):
                    inner = (
                        (*mailbox, _mailbox_name(name))
                        if name.endswith(MAILBOX_SUFFIXES)
                        else mailbox
                    )
                    children.append((Path(entry.path), inner, depth + 1))
                elif name.endswith(SUFFIX):  # a broken link or odd file is reported when read
                    names.append(name)
            if names or error:
                yield (mailbox or (INBOX,)), directory, _without_superseded(names), error
            stack.extend(reversed(children))

    def _message(self, folder: tuple[str, ...], path: Path) -> SourceMessage:
        relative = path.relative_to(self.path) if path != self.path else Path(path.name)
        stem = path.name.removesuffix(PARTIAL_SUFFIX).removesuffix(SUFFIX)
        # A .partial.emlx that Mail later completes keeps its identity.
        ident = f"{relative.parent.as_posix()}/{stem}"
        try:
            data = read_bytes(path)
        except OSError as exc:
            return unreadable_message(folder, ident, f"{path}: {exc.strerror or exc}")
        if not data:
            return unreadable_message(folder, ident, f"{path}: zero-byte file, no message in it")
        emlx = parse_emlx(data)
        problems = list(emlx.problems)
        message = emlx.message
        partial = emlx.truncated
        if path.name.endswith(PARTIAL_SUFFIX) or _STRIPPED_PART.search(message):
            try:
                message, still_partial, rebuild_problems = rebuild_partial(message, path)
            except Exception as exc:  # a rebuild bug must not lose the stored message
                still_partial, rebuild_problems = (
                    True,
                    [Problem("partial", f"cannot rebuild the attachments ({exc}); kept as stored")],
                )
            partial = partial or still_partial
            problems.extend(rebuild_problems)
        flags: set[str] = set()
        deleted = False
        received = None
        if emlx.plist is not None:
            flags, deleted, flag_problems = plist_flags(emlx.plist)
            problems.extend(flag_problems)
            stamp = emlx.plist.get("date-received")
            if isinstance(stamp, int | float) and not isinstance(stamp, bool):
                received = timestamp_date(stamp)
        if received is None:
            received = header_date(message)
        return SourceMessage(
            folder=folder,
            data=message,
            flags=frozenset(flags),
            received=received,
            source_id=ident,
            deleted=deleted,
            partial=partial,
            problems=tuple(problems),
        )


def _has_mail_data(directory: Path, depth: int) -> bool:
    """.emlx files or a ``*.mbox`` directory here or up to two levels down
    (``~/Library/Mail`` -> ``V10`` -> account -> ``INBOX.mbox``; ``Messages/*.emlx``)."""
    entries = sorted_dir(directory)[:500]
    if any(e.name.endswith(SUFFIX) for e in entries):
        return True
    dirs = [
        e
        for e in entries
        if not e.name.startswith(".") and e.name not in _NOT_MAIL_DATA and is_dir(e)
    ]
    if any(e.name.endswith(MAILBOX_SUFFIXES) for e in dirs):
        return True
    if depth >= 2:
        return False
    return any(_has_mail_data(Path(e.path), depth + 1) for e in dirs[:50])


def _mailbox_name(name: str) -> str:
    for suffix in MAILBOX_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _without_superseded(names: list[str]) -> list[str]:
    """Sorted names, leaving out a .partial.emlx whose complete .emlx is there too."""
    complete = {n.removesuffix(SUFFIX) for n in names if not n.endswith(PARTIAL_SUFFIX)}
    kept = [
        n
        for n in names
        if not (n.endswith(PARTIAL_SUFFIX) and n.removesuffix(PARTIAL_SUFFIX) in complete)
    ]
    return sorted(kept, key=natural_key)
