"""A streaming, read-only mbox reader that neither loses nor invents messages.

The stdlib :mod:`mailbox` module is not safe for real mbox files (see
docs in ``shared/reference/local-stores.md``): it splits messages at unquoted
body lines, never removes mboxrd quoting, and silently returns nothing for a
file without a leading ``From`` line. This module reads the file in binary,
opened read-only, in one pass over blocks, and keeps only the current message
in memory.

Separator rule (what counts as a ``From_`` line), modelled on Thunderbird's
own reader (``MboxMsgInputStream.cpp``) but stricter about lines that do not
follow a blank line, because an mbox writer always puts one there:

* the line starts with the five bytes ``From `` at the start of a line, and
* it is at the very start of the file, or
* the next lines look like a header block (one or two ``Name: value`` fields,
  folded lines allowed) and the line follows a blank line or carries a valid
  envelope date (``From sender Tue Jan  2 13:45:00 2024``), or
* it follows a blank line and carries a valid envelope date (a message
  without headers still gets its own entry).

Anything else beginning with ``From `` is a body line (old Thunderbird wrote
such lines unquoted). One blank line before a separator, and one at the very
end of the file, belong to the mbox, not to the message.

Quoting: every line matching ``>+From `` loses exactly one ``>`` (mboxrd), in
every file, by default. That is what Thunderbird itself does since 2023 when it
reads any of its mbox files, old or new, so the bytes we return are the bytes
the user sees in the client. Its limit: in an old mboxo file (which quoted only
``From `` lines), a line that was *originally* ``>From `` also loses its ``>``;
mboxo and mboxrd files cannot be told apart when no line has two or more
``>``. ``unquote=False`` (reader option ``mbox_quoting = "none"``) keeps every
line as stored, for files known to be mboxo or mboxcl2.

``Content-Length:`` (mboxcl/mboxcl2) is used only when it points exactly at a
separator line (or its preceding blank line) or at the end of the file;
otherwise it is a lie (often copied from elsewhere) and ignored.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import ClassVar

from advisor.errors import UsageError
from advisor.stores.base import (
    ANSWERED,
    DRAFT,
    FLAGGED,
    FORWARDED,
    SEEN,
    Problem,
    ReaderOptions,
    SourceFolder,
    SourceMessage,
    StoreReader,
)
from advisor.stores.fromsearch import MEMMEM, FeedBroken, HitFeed, address_of
from advisor.stores.mbox_bookkeeping import (
    PSEUDO_NOTE,
    file_writer,
    inbox_reason,
    is_pseudo_message,
    keeps_quoting,
    strip_unix_fields,
)
from advisor.stores.mbox_tree import FolderFile, folder_files, looks_like_mbox

FROM_ = b"From "
BLOCK_SIZE = 512 << 10
"""Bytes read from the file at a time."""
MAX_ENVELOPE = 4096
"""A ``From_`` line longer than this is a body line (real ones are < 300 bytes)."""
MAX_LOOKAHEAD = 64 * 1024
"""How far past a candidate separator the header look-ahead may read."""
MAX_HEADER_BLOCK = 256 * 1024
"""How far into a message we look for the end of its header block (for Content-Length)."""
WINDOW = 4 << 20
"""Bytes of the file kept in memory at most (plus one block), besides the current message."""
LOOKBACK = 8
"""Bytes kept before a position still needed (to see the blank line before a separator)."""

_HEADER_NAME = re.compile(rb"[\x21-\x39\x3b-\x7e]+:")
# An envelope date in asctime form, optionally with a zone before or after the year.
_ENVELOPE_DATE = re.compile(
    rb"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),?\s+"
    rb"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\s+"
    rb"(\d{1,2})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s+"
    rb"(?:([A-Za-z]{1,5}|[+-]\d{4})\s+)?"
    rb"(\d{4})"
    rb"(?:\s+([+-]\d{4}|[A-Za-z]{1,5}))?\s*$"
)
_ASCTIME_TAIL = re.compile(
    rb"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) "
    rb"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    rb"([ \d]\d) (\d\d):(\d\d):(\d\d) (\d{4})\Z"
)
_MONTHS = {
    m: i + 1 for i, m in enumerate(b"Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split())
}
_UTC_NAMES = {b"UT", b"UTC", b"GMT", b"Z"}
# Zones of RFC 5322 section 4.3 (the only names with a defined offset).
_NAMED_ZONES = {b"EST": -5, b"EDT": -4, b"CST": -6, b"CDT": -5}
_NAMED_ZONES |= {b"MST": -7, b"MDT": -6, b"PST": -8, b"PDT": -7}
_CONTENT_LENGTH = re.compile(rb"^content-length[ \t]*:[ \t]*(\d{1,15})[ \t]*\r?$", re.I | re.M)

# Header fields the readers interpret (values unfolded when used). Dates are looked for
# only when the envelope has none.
_BOOKKEEPING = re.compile(
    rb"^(x-mozilla-status2?|x-mozilla-keys|status|x-status)[ \t]*:([^\n]*(?:\n[ \t][^\n]*)*)",
    re.I | re.M,
)
_BOOKKEEPING_NL = re.compile(
    rb"\n(x-mozilla-status2?|x-mozilla-keys|status|x-status)[ \t]*:([^\n]*(?:\n[ \t][^\n]*)*)",
    re.I,
)
"""The same fields as _BOOKKEEPING, each found with the line break before it."""
_NO_FLAGS: frozenset[str] = frozenset()
_DATE_FIELDS = re.compile(rb"^(received|date)[ \t]*:([^\n]*(?:\n[ \t][^\n]*)*)", re.I | re.M)
_FOLD = re.compile(rb"\r?\n[ \t]")
# Thunderbird's bookkeeping fields, stripped from the header block with their folded lines.
_MOZILLA_FIELD = re.compile(
    rb"^x-mozilla-(?:status2?|keys)[ \t]*:[^\n]*(?:\n[ \t][^\n]*)*(?:\n|\Z)", re.I | re.M
)
# IMAP atom-chars (RFC 3501), what a keyword may be made of.
_KEYWORD = re.compile(r"[!#$&'+,\-./0-9:;<=>?@A-Z^_`a-z|~]+\Z")

# X-Mozilla-Status / X-Mozilla-Status2 bits (nsMsgMessageFlags).
MOZ_READ = 0x0001
MOZ_REPLIED = 0x0002
MOZ_MARKED = 0x0004
MOZ_EXPUNGED = 0x0008
MOZ_PARTIAL = 0x0400
MOZ_FORWARDED = 0x1000
MOZ_MDN_SENT = 0x00800000
MOZ_LABELS = 0x0E000000
MOZ_LABEL_SHIFT = 25


@dataclass(slots=True)
class MboxEntry:
    """One message as it sits in the mbox, before any header is interpreted."""

    offset: int
    """Byte offset of the ``From_`` line (of the message itself when there is none)."""
    envelope: bytes | None
    """The ``From_`` line without its line ending; None when the message has none."""
    data: bytes
    """The message, with one level of mboxrd quoting removed (unless disabled)."""
    end: int
    """File offset just past the message's last stored byte."""
    problems: tuple[Problem, ...] = ()
    header_size: int | None = None
    """Length of the header block at the start of ``data`` when the scanner saw it
    (see :func:`header_block`); None when unknown."""
    envelope_date: datetime | None = None
    """The date of the ``From_`` line (see :func:`parse_envelope_date`)."""
    removed: bytes | None = None
    """With ``strip_mozilla``: the X-Mozilla-Status/-Status2/-Keys lines cut out of
    ``data`` (b"" when there were none); None when ``data`` was not stripped."""


def parse_envelope_date(envelope: bytes) -> datetime | None:
    """The date of a ``From_`` line, or None when it has none or it is invalid.

    asctime dates carry no zone: the result is naive (local time of the writer;
    Thunderbird writes ``From - Tue Jan 02 13:45:00 2024`` in local time). A
    numeric zone, or UT/UTC/GMT or one of RFC 5322's US zone names, gives an
    aware datetime.
    """
    fast = _ASCTIME_TAIL.match(envelope, max(0, len(envelope) - 24))
    if fast is not None:  # the usual case, checked first because it is cheap
        mon, day, hour, minute, second, year = fast.groups()
        try:
            return datetime(int(year), _MONTHS[mon], int(day), int(hour), int(minute), int(second))
        except ValueError:
            return None
    match = _ENVELOPE_DATE.search(envelope)
    if match is None:
        return None
    mon, day, hour, minute, second, zone1, year, zone2 = match.groups()
    try:
        naive = datetime(
            int(year), _MONTHS[mon], int(day), int(hour), int(minute), int(second or 0)
        )
    except ValueError:
        return None
    zone = zone2 or zone1
    if zone is None:
        return naive
    tz = _zone(zone)
    return naive if tz is None else naive.replace(tzinfo=tz)


def _zone(zone: bytes) -> timezone | None:
    if zone[:1] in (b"+", b"-"):
        sign = -1 if zone[:1] == b"-" else 1
        hours, minutes = int(zone[1:3]), int(zone[3:5])
        if hours > 14 or minutes > 59:
            return None
        return timezone(sign * timedelta(hours=hours, minutes=minutes))
    upper = zone.upper()
    if upper in _UTC_NAMES:
        return UTC
    if upper in _NAMED_ZONES:
        return timezone(timedelta(hours=_NAMED_ZONES[upper]))
    return None


class _Scanner:
    """Splits an open binary file into :class:`MboxEntry` objects, block by block.

    Every position is a file offset; ``buf`` holds the bytes from ``base`` on, a
    sliding window. A message smaller than half the window is cut out of the
    window; a larger one is not kept while its end is looked for (the window
    slides on) and is read again in one piece when found, so memory holds one
    copy of the message plus the window.
    """

    def __init__(
        self,
        stream: io.FileIO | None,
        size: int,
        unquote: bool,
        block_size: int,
        window: int,
        strip_mozilla: bool = False,
    ) -> None:
        self.stream = stream
        self.strip_mozilla = strip_mozilla
        self.size = size
        self.unquote = unquote
        self.block_size = block_size
        self.window = window
        self.buf = bytearray()
        self.hi = 0
        """How many bytes of ``buf`` hold data (the rest is room for the next block)."""
        self.base = 0
        self.eof = False
        self.nl = b"\n"
        self.nl_byte = 0x0A
        self.msg_start = 0
        self.quoted = False
        """A ``>From `` was seen in the current message: it may need unquoting."""
        self.quote_cuts: list[int] | None = []
        """The first ``>`` of every ``>+From `` line of the current message, in order
        (found by the separator search); None when one could not be placed."""
        self.addr = 0
        """Where ``buf``'s bytes are in memory, for memmem (kept up to date on resize)."""
        self.feed: HitFeed | None = None
        """Offsets of ``From `` found by a helper process, for large files."""
        self.sep_info: tuple[int, int, bytes, datetime | None, int] = (-1, -1, b"", None, 0)
        """The last separator accepted: (where, its line end, its envelope line, the
        envelope's date, the length of the blank line before it)."""

    # -- the window ---------------------------------------------------------------------
    def _end(self) -> int:
        return self.base + self.hi

    def _keep_for(self, position: int) -> int:
        """The first offset to keep in the window while ``position`` is still needed."""
        start = self.msg_start if position - self.msg_start < self.window // 2 else position
        return max(0, min(start, position) - LOOKBACK)

    def _fill(self, keep: int) -> bool:
        """Read one more block into the buffer, first moving out what lies before
        ``keep`` when room is needed. False at the end of the file (or when there is
        no file to read)."""
        if self.eof or self.stream is None:
            return False
        drop = min(keep, self._end()) - self.base
        if drop > 0 and self.hi + self.block_size > len(self.buf):
            # Move the kept tail to the front; the buffer is reused, never reallocated
            # (fresh memory for every block would cost a page fault per page).
            kept = self.hi - drop
            with memoryview(self.buf) as view:
                view[:kept] = view[drop : self.hi]
            self.hi = kept
            self.base += drop
        # Small files get a small buffer (a profile has many tiny folders).
        want = min(self.block_size, max(4096, self.size - self._end()))
        if self.hi + want > len(self.buf):
            self.buf.extend(bytes(self.hi + want - len(self.buf)))
            if MEMMEM is not None:
                self.addr = address_of(self.buf)
        with memoryview(self.buf) as view, view[self.hi : self.hi + want] as room:
            count = self.stream.readinto(room)
        if not count:
            self.eof = True
            return False
        self.hi += count
        return True

    def _jump(self, position: int) -> None:
        """Empty the window and go on reading at ``position`` (ahead of the window)."""
        assert self.stream is not None
        self.stream.seek(position)
        self.base = position
        self.hi = 0

    def _find_from(self, start: int, end: int) -> int:
        """The next ``From `` in [start, end) of the window (file offsets), or -1."""
        base = self.base
        start = max(start, base)
        feed = self.feed
        if feed is not None and start < feed.origin:
            # The head of the file, which the helper leaves to us.
            hit = self._search(start, min(end, feed.origin + 4))
            if hit >= 0 or end <= feed.origin + 4:
                return hit
            start = feed.origin
        if feed is not None:
            try:
                hit = feed.find(start, end)
            except FeedBroken:
                self.feed = None
            else:
                if hit < 0 or self.buf.startswith(FROM_, hit - base):
                    return hit
                feed.close()  # the file changed under us: trust only our own bytes
                self.feed = None
            return self._search(start, end)
        # Inline _search: this runs for every message.
        low, high = start - base, min(end - base, self.hi)
        if MEMMEM is None or high - low < 64:
            hit = self.buf.find(FROM_, low, high)
            return -1 if hit < 0 else hit + base
        address = MEMMEM(self.addr + low, high - low, FROM_, 5)
        return -1 if not address else address - self.addr + base

    def _search(self, start: int, end: int) -> int:
        """:meth:`_find_from` in this process."""
        base = self.base
        # Never outside the buffer: memmem reads raw memory.
        low, high = max(start - base, 0), min(end - base, self.hi)
        if MEMMEM is None or high - low < 64:
            hit = self.buf.find(FROM_, low, high)
            return -1 if hit < 0 else hit + base
        address = MEMMEM(self.addr + low, high - low, FROM_, 5)
        return -1 if not address else address - self.addr + base

    def _find(self, pattern: bytes, start: int, end: int | None = None) -> int:
        stop = self.hi if end is None else min(end - self.base, self.hi)
        hit = self.buf.find(pattern, max(start - self.base, 0), stop)
        return -1 if hit < 0 else hit + self.base

    def _byte(self, position: int) -> int:
        return self.buf[position - self.base]

    def _startswith(self, prefix: bytes, position: int) -> bool:
        return self.buf.startswith(prefix, position - self.base, self.hi)

    def _eol_len_at(self, position: int) -> int:
        if self._startswith(self.nl, position):
            return 1
        if self.nl == b"\n" and self._startswith(b"\r\n", position):
            return 2
        return 0

    # -- lines ----------------------------------------------------------------------------
    def _blank_before(self, line_start: int) -> int:
        """Length of the blank line ending just before ``line_start`` inside the current
        message (0 when the previous line is not blank)."""
        nl, buf = self.nl_byte, self.buf
        j = line_start - 1
        at = j - self.base
        if j < self.msg_start or buf[at] != nl:
            return 0
        if j == 0 or buf[at - 1] == nl:
            return 1
        crlf = nl == 0x0A and j - 1 >= self.msg_start and buf[at - 1] == 0x0D
        return 2 if crlf and (j == 1 or buf[at - 2] == nl) else 0

    def _headers_follow(self, position: int) -> bool | None:
        """Do the lines from ``position`` look like a header block? None: need more data."""
        buf, nl, size = self.buf, self.nl_byte, self.hi
        pos = position - self.base
        limit = pos + MAX_LOOKAHEAD
        fields = 0
        p = pos
        while fields < 2:
            if p >= size:
                if self.eof or p >= limit:
                    return fields >= 1
                return None
            first = buf[p]
            if first == nl:
                return fields >= 1
            if first == 0x0D and nl == 0x0A:
                if p + 1 >= size and not self.eof:
                    return None
                if p + 1 < size and buf[p + 1] == 0x0A:
                    return fields >= 1
            match = _HEADER_NAME.match(buf, p, min(size, limit))
            if match is None:
                # The name may run past the data we have: ask for more before saying no.
                q = p
                while q < size and 0x21 <= buf[q] <= 0x7E and buf[q] != 0x3A:
                    q += 1
                if q >= size and not self.eof and q < limit:
                    return None
                return False
            fields += 1
            p = match.end()
            # Skip the rest of the field and its folded continuation lines.
            while True:
                end = buf.find(nl, p, size)
                if end < 0:
                    return True if self.eof or size >= limit else None
                p = end + 1
                if p >= size:
                    return True if self.eof or size >= limit else None
                if buf[p] not in (0x20, 0x09):
                    break
        return True

    def _is_separator(self, line_start: int) -> bool | None:
        """Is the ``From `` line at ``line_start`` a separator? None: need more data.
        What was learnt about an accepted one is kept in :attr:`sep_info`."""
        buf, base = self.buf, self.base
        end = base + self.hi
        eol = buf.find(self.nl, line_start - base, min(line_start + MAX_ENVELOPE, end) - base)
        if eol < 0:
            if end - line_start < MAX_ENVELOPE and not self.eof:
                return None
            return False
        eol += base
        blank = self._blank_before(line_start)
        envelope = bytes(buf[line_start - base : eol - base])
        if envelope[-1:] == b"\r":
            envelope = envelope.rstrip(b"\r")
        date = parse_envelope_date(envelope)
        if blank and date is not None:
            headers: bool | None = True  # a dated separator after a blank line needs no more
        elif blank or date is not None:
            headers = self._headers_follow(eol + 1)
            if headers is None:
                return None
        else:
            return False
        if headers:
            self.sep_info = (line_start, eol, envelope, date, blank)  # the reader's next
        return headers

    def _next_separator(self, start: int, stop: int | None = None) -> int | None:
        """Offset of the next separator line starting at or after ``start`` (a line start)
        and before ``stop``, reading on as needed; None when there is none.

        It looks for every ``From `` (not only at line starts: that is as fast) so that it
        also notices ``>From `` lines, which tells :meth:`entries` whether the message
        needs its quoting removed without searching the message a second time.
        """
        size = len(FROM_)
        search = start
        nl = self.nl_byte
        while True:
            limit = self._end() if stop is None else min(self._end(), stop + size - 1)
            hit = self._find_from(search, limit) if limit > search else -1
            if hit < 0:
                if self.eof or (stop is not None and self._end() >= stop + size - 1):
                    return None
                search = max(search, self._end() - size + 1)
                feed = self.feed
                big = search - self.msg_start >= self.window // 2
                if feed is not None and big and search >= feed.origin:
                    # A large message is read again in one piece once its end is known:
                    # skip to the next "From " the helper found instead of reading on.
                    try:
                        target = feed.next_hit(search) - LOOKBACK
                    except FeedBroken:
                        self.feed = None
                    else:
                        if stop is not None and target + LOOKBACK >= stop:
                            return None
                        if target > self._end():
                            self._jump(target)
                            search = target
                            continue
                if not self._fill(self._keep_for(search)):
                    return None
                continue
            before = self.buf[hit - 1 - self.base] if hit > self.base else nl
            if before != nl or hit == 0:
                if before == 0x3E:  # '>'
                    self.quoted = True
                    self._note_quoted(hit)
                search = hit + 1
                continue
            verdict = self._is_separator(hit)
            while verdict is None:
                if not self._fill(self._keep_for(hit - 1)):
                    verdict = bool(self._is_separator(hit))
                    break
                verdict = self._is_separator(hit)
            if verdict:
                return hit
            search = hit + 1

    def _note_quoted(self, hit: int) -> None:
        """Record the ``>`` to remove when the ``>``s before ``hit`` start a line (in the
        way the unquoting patterns see lines: after LF, or after CR in a CR file)."""
        cuts = self.quote_cuts
        if cuts is None:
            return
        buf, base = self.buf, self.base
        first = hit - 1
        while first > self.msg_start and first > base and buf[first - 1 - base] == 0x3E:
            first -= 1
        if first == self.msg_start:
            cuts.append(first)
        elif first == base:
            self.quote_cuts = None  # its line start is out of the window: search the data
        elif buf[first - 1 - base] == self.nl_byte:
            cuts.append(first)

    # -- Content-Length -----------------------------------------------------------------
    def _header_end(self, start: int) -> tuple[int, int] | None:
        """Where the header block starting at ``start`` ends, and where the body starts
        (past the empty line); None when no empty line is near."""
        nl = self.nl
        lf = nl == b"\n"
        blank = nl + nl
        while True:
            buf, base, hi = self.buf, self.base, self.hi
            low = start - base
            if hi > low:
                first = buf[low]
                if first == self.nl_byte:
                    return start, start + 1
                if lf and first == 0x0D and buf.startswith(b"\r\n", low, hi):
                    return start, start + 2
            limit = min(base + hi, start + MAX_HEADER_BLOCK)
            found = buf.find(blank, low, limit - base)
            if lf:
                # Only up to an LF blank line already found: never scan a whole body twice.
                crlf = buf.find(b"\n\r\n", low, found + 1 if found >= 0 else limit - base)
                if crlf >= 0:
                    return crlf + base + 1, crlf + base + 3
            if found >= 0:
                return found + base + 1, found + base + 2
            if limit >= start + MAX_HEADER_BLOCK or not self._fill(self._keep_for(start)):
                return None

    def _probe(self, position: int) -> _Scanner:
        """A scanner over the bytes around ``position``, read without moving the window."""
        assert self.stream is not None
        start = max(0, position - LOOKBACK)
        length = position - start + MAX_ENVELOPE + MAX_LOOKAHEAD + 8
        probe = _Scanner(None, self.size, self.unquote, self.block_size, self.window)
        probe.buf = bytearray(_pread(self.stream, length, start))
        probe.hi = len(probe.buf)
        probe.base = start
        probe.eof = probe._end() >= self.size
        probe.nl, probe.nl_byte, probe.msg_start = self.nl, self.nl_byte, self.msg_start
        return probe

    def _content_length_end(self, header: tuple[int, int]) -> tuple[int, int | None, int] | None:
        """When the header block's Content-Length points exactly at a separator or the end
        of the file: (message end, next separator or None, separator-like lines inside).
        None when there is no Content-Length or it lies."""
        start = self.msg_start
        header_end = header[1]
        if self.nl == b"\r":
            block = bytes(self.buf[start - self.base : header_end - self.base])
            match = _CONTENT_LENGTH.search(block.replace(b"\r", b"\n"))
        else:
            # Searched in place (no copy): this runs for every message.
            match = _CONTENT_LENGTH.search(self.buf, start - self.base, header_end - self.base)
        if match is None:
            return None
        if self._find(self.nl + FROM_, start - 1, header_end) >= 0:
            return None  # no empty line ends these headers: the block ran into a separator
        target = header_end + int(match.group(1))
        if target > self.size:
            return None
        probe = self._probe(target)
        at_end = probe._end() if probe.eof else None
        blank = probe._eol_len_at(target) if target < probe._end() else 0
        next_sep: int | None
        if target == at_end or (blank and target + blank == at_end):
            next_sep = None
        else:
            for candidate in (target, target + blank) if blank else (target,):
                if (
                    probe._startswith(FROM_, candidate)
                    and probe._byte(candidate - 1) == self.nl_byte
                ):
                    eol = probe._find(self.nl, candidate, candidate + MAX_ENVELOPE)
                    if eol >= 0 and probe._headers_follow(eol + 1):
                        next_sep = candidate
                        break
            else:
                return None
        inside = self._count_separators(header_end, target)
        return target, next_sep, inside

    def _count_separators(self, start: int, stop: int) -> int:
        count = 0
        position = start
        while True:
            found = self._next_separator(position, stop)
            if found is None:
                return count
            count += 1
            position = found + 1

    # -- messages ---------------------------------------------------------------------------
    def _detect_line_ending(self) -> None:
        """Classic Mac files end lines with a bare CR: use CR as the line ending then."""
        head = bytes(self.buf[: min(self.hi, MAX_LOOKAHEAD)])
        lf, cr = head.find(b"\n"), head.find(b"\r")
        if cr >= 0 and (lf < 0 or cr < lf) and not head.startswith(b"\r\n", cr):
            self.nl, self.nl_byte = b"\r", 0x0D

    def _data(self, start: int, end: int, cuts: list[tuple[int, int]]) -> tuple[bytes, bool]:
        """The stored bytes [start, end) without the ``cuts`` spans: from the window (one
        copy), or read again; and whether the file gave fewer bytes than it had (it
        changed meanwhile)."""
        regions = []
        position = start
        for cut_start, cut_end in cuts:
            regions.append((position, cut_start))
            position = cut_end
        regions.append((position, end))
        if start >= self.base:
            if not cuts:
                with memoryview(self.buf) as view:
                    return bytes(view[start - self.base : end - self.base]), False
            with memoryview(self.buf) as view:
                parts = [view[a - self.base : b - self.base] for a, b in regions]
                try:
                    # One allocation for the whole message (bytes.join takes views).
                    return b"".join(parts), False
                finally:
                    for part in parts:
                        part.release()
        assert self.stream is not None
        return _read_regions(self.stream, regions)

    def _cuts(self, header: tuple[int, int]) -> tuple[list[tuple[int, int]], bytes]:
        """Spans of Thunderbird's bookkeeping fields in the header block, and their bytes."""
        low, high = self.msg_start - self.base, header[0] - self.base
        cuts = [
            (match.start() + self.base, match.end() + self.base)
            for match in _MOZILLA_FIELD.finditer(self.buf, low, high)
        ]
        removed = b"".join(bytes(self.buf[a - self.base : b - self.base]) for a, b in cuts)
        return cuts, removed

    def entries(self) -> Iterator[MboxEntry]:
        while self._end() < MAX_LOOKAHEAD and self._fill(0):
            pass
        if not self.hi:
            return
        self._detect_line_ending()
        nl = self.nl
        # A preamble of blank lines before the first From_ line carries nothing.
        first = 0
        while self._eol_len_at(first):
            first += self._eol_len_at(first)
        problems: list[Problem] = []
        sep: int | None = None
        if self._startswith(FROM_, first) and self._find(nl, first, first + MAX_ENVELOPE) >= 0:
            sep = first
        else:
            problems.append(
                Problem(
                    "no-separator",
                    "the file does not start with a 'From ' line; "
                    "the first message starts at byte 0",
                )
            )
        while True:
            envelope: bytes | None = None
            date: datetime | None = None
            if sep is None:
                offset, self.msg_start = 0, 0
            elif self.sep_info[0] == sep:  # just checked by the separator search
                offset = sep
                _, eol, envelope, date, _ = self.sep_info
                self.msg_start = eol + 1
            else:
                offset = sep
                eol = self._find(nl, sep)
                while eol < 0 and self._fill(self._keep_for(sep)):
                    eol = self._find(nl, sep)
                if eol < 0:  # a From_ line at the very end of the file
                    eol = self._end()
                envelope = bytes(self.buf[sep - self.base : eol - self.base]).rstrip(b"\r")
                self.msg_start = min(eol + 1, self._end())
                date = parse_envelope_date(envelope)
            self.quoted = False
            self.quote_cuts = [] if self.unquote else None
            header = self._header_end(self.msg_start)
            cuts: list[tuple[int, int]] = []
            removed: bytes | None = None
            known = None
            if header is not None:
                # Plain searches first: the patterns cost more, and most messages have none.
                buf, low = self.buf, self.msg_start - self.base
                high = header[1] - self.base
                if self.strip_mozilla and nl == b"\n":
                    removed = b""
                    if buf.find(b"ozilla-", low, high) >= 0 or buf.find(b"OZILLA-", low, high) >= 0:
                        cuts, removed = self._cuts(header)  # now, while it is in the window
                if buf.find(b"ength", low, high) >= 0 or buf.find(b"ENGTH", low, high) >= 0:
                    known = self._content_length_end(header)
            next_sep: int | None
            if known is not None:
                end, next_sep, inside = known
                if inside:
                    problems.append(
                        Problem(
                            "content-length",
                            f"its Content-Length covers {inside} line(s) that look like "
                            "message separators; they were kept inside this message",
                        )
                    )
            else:
                next_sep = self._next_separator(self.msg_start)
                if next_sep is not None:
                    info = self.sep_info
                    blank = info[4] if info[0] == next_sep else self._blank_before(next_sep)
                    end = next_sep - blank
                else:
                    end = self._end()
                    # The final blank line belongs to the mbox, as before a separator;
                    # a file with no separator at all is one message, kept whole.
                    ends_line = end > self.msg_start and self._byte(end - 1) == self.nl_byte
                    if envelope is not None and ends_line:
                        end -= self._blank_before(end)
            if header is None or header[1] > end:
                cuts, removed = [], None  # that blank line was not this message's
            # The header block's size saves the reader from looking for it again.
            header_size = None
            if header is not None and header[1] <= end and nl == b"\n":
                header_size = header[0] - self.msg_start - sum(b - a for a, b in cuts)
            # The search for the next separator saw every >From line of the message: their
            # first ">" is cut out while the message is copied (no second pass over it).
            # Messages measured by Content-Length were not searched: their data is.
            quote_cuts = self.quote_cuts if known is None else None
            maybe_quoted = self.unquote and (self.quoted or known is not None)
            if quote_cuts:
                maybe_quoted = False
                if header is not None and header_size is not None and quote_cuts[0] < header[0]:
                    header_size = None
                cuts = sorted(cuts + [(c, c + 1) for c in quote_cuts if c < end])
            elif quote_cuts is not None:
                maybe_quoted = False
            data, short = self._data(self.msg_start, end, cuts)
            if short:
                problems.append(Problem("truncated", "the file shrank while it was read"))
            if maybe_quoted and b">From " in data:
                data = unquote_mboxrd(data, self.nl_byte)
                header_size = None
            if not data:
                problems.append(Problem("empty", "the message has no bytes at all"))
            yield MboxEntry(
                offset, envelope, data, end, tuple(problems), header_size, date, removed
            )
            problems = []
            if next_sep is None:
                return
            sep = next_sep


def unquote_mboxrd(data: bytes, nl: int = 0x0A) -> bytes:
    """``data`` without the first ``>`` of every line matching ``>+From `` (one level of
    mboxrd quoting); ``nl`` is the line ending byte (CR for classic Mac files)."""
    cuts = []
    at = data.find(b">From ")
    while at >= 0:
        first = at
        while first > 0 and data[first - 1] == 0x3E:  # '>'
            first -= 1
        if first == 0 or data[first - 1] == nl:
            cuts.append(first)
        at = data.find(b">From ", at + 6)
    if not cuts:
        return data
    pieces = []
    last = 0
    for cut in cuts:
        pieces.append(data[last:cut])
        last = cut + 1
    pieces.append(data[last:])
    return b"".join(pieces)


def _read_regions(stream: io.FileIO, regions: list[tuple[int, int]]) -> tuple[bytes, bool]:
    """The bytes of the file's ``regions``, one after the other, and whether the file gave
    fewer than asked (it shrank meanwhile). Read straight into the one bytes object
    returned (through a BytesIO, whose getvalue() hands over its buffer without a copy):
    a 200 MB message takes 200 MB, not twice that."""
    total = sum(b - a for a, b in regions)
    if len(regions) == 1 and total <= _READ_MAX and _PREAD is not None:
        data = _PREAD(stream.fileno(), total, regions[0][0])  # no zero-filling first
        return data, len(data) < total
    buffer = io.BytesIO()
    if total:
        buffer.seek(total - 1)
        buffer.write(b"\0")
    written = 0
    with buffer.getbuffer() as view:
        for a, b in regions:
            while a < b:
                with view[written : written + min(b - a, _READ_MAX)] as room:
                    count = _read_at(stream, room, a)
                if not count:
                    break
                written += count
                a += count
            if a < b:
                break
    if written < total:
        buffer.truncate(written)
    return buffer.getvalue(), written < total


def _read_at(stream: io.FileIO, room: memoryview, offset: int) -> int:
    """Read into ``room`` from ``offset`` without moving the stream's position."""
    if _PREADV is not None:
        count: int = _PREADV(stream.fileno(), [room], offset)
        return count
    position = stream.tell()  # Windows has no pread
    try:
        stream.seek(offset)
        return stream.readinto(room) or 0
    finally:
        stream.seek(position)


def _pread(stream: io.FileIO, length: int, offset: int) -> bytes:
    data, _ = _read_regions(stream, [(offset, offset + length)])
    return data


_PREAD = getattr(os, "pread", None)
_PREADV = getattr(os, "preadv", None)
_READ_MAX = 1 << 30
"""The most one read asks for (Linux reads at most about 2 GB at a time)."""


def iter_mbox(
    path: Path,
    *,
    unquote: bool = True,
    block_size: int = BLOCK_SIZE,
    window: int = WINDOW,
    strip_mozilla: bool = False,
    parallel: bool = True,
) -> Iterator[MboxEntry]:
    """Every message of the mbox file at ``path``, one at a time, in file order.

    The file is opened read-only and read once, front to back (a message larger
    than half of ``window`` is read a second time, in one piece). A zero-byte
    file yields nothing. ``strip_mozilla`` cuts Thunderbird's bookkeeping fields
    out while the message is copied (see :attr:`MboxEntry.removed`), which saves
    copying every message a second time. With ``parallel``, a large file is searched
    for separators by a helper process meanwhile (see :mod:`advisor.stores.fromsearch`).
    """
    with open(path, "rb", buffering=0) as stream:
        size = os.fstat(stream.fileno()).st_size
        scanner = _Scanner(stream, size, unquote, block_size, window, strip_mozilla)
        scanner.feed = HitFeed.start(stream.fileno(), size) if parallel else None
        try:
            yield from scanner.entries()
        finally:
            if scanner.feed is not None:
                scanner.feed.close()


# -- header interpretation shared by the mbox and Thunderbird readers ---------------------


@dataclass(slots=True)
class HeaderFacts:
    """What the bookkeeping headers of one message say."""

    flags: frozenset[str]
    deleted: bool
    partial: bool
    received: datetime | None
    mozilla_status: int | None
    """X-Mozilla-Status (and -Status2) bits, None when the message has none."""
    problems: tuple[Problem, ...]
    data: bytes
    """The message without its X-Mozilla-Status, -Status2 and -Keys fields."""


def header_block(data: bytes) -> bytes:
    """The header block of a message: up to (not including) its first empty line.

    A message without an empty line is all header. Bare-CR line endings are
    turned into LF in the result (same length, so offsets still match ``data``)
    so that one set of patterns serves every kind of line ending.
    """
    if b"\n" not in data and b"\r" in data:
        data = data.replace(b"\r", b"\n")
    if data.startswith((b"\n", b"\r\n")):
        return b""
    lf = data.find(b"\n\n")
    crlf = data.find(b"\n\r\n", 0, lf + 1 if lf >= 0 else len(data))
    end = crlf if crlf >= 0 else lf
    return data if end < 0 else data[: end + 1]


def _unfold(value: bytes) -> str:
    if b"\n" in value:
        value = _FOLD.sub(b" ", value)
    return value.strip().decode("utf-8", "replace")


def header_values(block: bytes, pattern: re.Pattern[bytes] = _BOOKKEEPING) -> dict[str, list[str]]:
    """Fields of a header block (see :func:`header_block`) that ``pattern`` picks:
    lower-cased name -> unfolded values, in order."""
    found: dict[str, list[str]] = {}
    for match in pattern.finditer(block):
        found.setdefault(match.group(1).lower().decode(), []).append(_unfold(match.group(2)))
    return found


def strip_mozilla_headers(data: bytes, block: bytes | None = None) -> bytes:
    """``data`` without its X-Mozilla-Status, -Status2 and -Keys fields.

    Only those exact fields (with their folded lines), only in the header
    block; every other byte is kept as it is.
    """
    if block is None:
        block = header_block(data)
    pieces = []
    last = 0
    for match in _MOZILLA_FIELD.finditer(block):
        pieces.append(data[last : match.start()])
        last = match.end()
    if not pieces:
        return data
    pieces.append(data[last:])
    return b"".join(pieces)


def _header_date(value: str) -> datetime | None:
    try:
        return parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def fallback_received(block: bytes) -> datetime | None:
    """Arrival time from a header block: the newest (topmost) Received: field's date,
    else the Date: field."""
    values = header_values(block, _DATE_FIELDS)
    for received in values.get("received", [])[:1]:
        if ";" in received:
            when = _header_date(received.rsplit(";", 1)[1])
            if when is not None:
                return when
    for date in values.get("date", [])[:1]:
        when = _header_date(date)
        if when is not None:
            return when
    return None


def keywords_from(value: str, problems: list[Problem]) -> set[str]:
    """IMAP keywords from a space-separated list (X-Mozilla-Keys, Thunderbird's .msf)."""
    keywords = set()
    for word in value.split():
        if _KEYWORD.match(word) and not word.startswith("\\"):
            keywords.add(word)
        else:
            problems.append(Problem("bad-flags", f"keyword {word!r} is not a valid IMAP keyword"))
    return keywords


def mozilla_flags(status: int) -> set[str]:
    """IMAP flags and keywords for Thunderbird's message flag bits."""
    flags = set()
    if status & MOZ_READ:
        flags.add(SEEN)
    if status & MOZ_REPLIED:
        flags.add(ANSWERED)
    if status & MOZ_MARKED:
        flags.add(FLAGGED)
    if status & MOZ_FORWARDED:
        flags.add(FORWARDED)
    if status & MOZ_MDN_SENT:
        flags.add("$MDNSent")
    label = (status & MOZ_LABELS) >> MOZ_LABEL_SHIFT
    if label:
        # Thunderbird 1.x labels became the tags $label1..$label5.
        flags.add(f"$label{label}")
    return flags


def interpret_headers(
    data: bytes,
    envelope_date: datetime | None = None,
    block: bytes | None = None,
    removed: bytes | None = None,
) -> HeaderFacts:
    """Flags, deletion, partial download and arrival time from a message's own headers
    (``block``: its header block, when already at hand), and the message without
    Thunderbird's bookkeeping fields.

    Thunderbird's X-Mozilla-Status/-Status2/-Keys win when present; otherwise
    the mbox ``Status:`` (R seen) and ``X-Status:`` (A answered, F flagged,
    D deleted, T draft) fields are used. The arrival time is ``envelope_date``,
    else the header block's (see :func:`fallback_received`). ``removed``: the
    bookkeeping lines already cut out of ``data`` (see :attr:`MboxEntry.removed`).
    """
    if block is None:
        block = header_block(data)
    values: dict[bytes, list[bytes]] = {}
    pieces: list[bytes] = []
    last = 0
    if removed:
        for match in _BOOKKEEPING_NL.finditer(b"\n" + removed.replace(b"\r\n", b"\n")):
            values.setdefault(match.group(1).lower(), []).append(match.group(2))
    # One pass finds the fields and the spans to cut (the same fields, with their line end).
    # The block gets a line break in front: the pattern then starts with a literal, which
    # the regex engine finds far faster than a ^ it has to try at every byte.
    for match in _BOOKKEEPING_NL.finditer(b"\n" + block):
        name = match.group(1).lower()
        values.setdefault(name, []).append(match.group(2))
        if name[:10] == b"x-mozilla-" and removed is None:
            start, end = match.start(), match.end() - 1  # offsets in block
            end += block[end : end + 1] == b"\n"
            pieces.append(data[last:start])
            last = end
    if not values:  # the usual case for mail that never met Thunderbird or mutt
        received = envelope_date if envelope_date is not None else fallback_received(block)
        return HeaderFacts(_NO_FLAGS, False, False, received, None, (), data)
    if pieces:
        pieces.append(data[last:])
        data = b"".join(pieces)
    problems: list[Problem] = []
    flags: set[str] = set()
    deleted = partial = False
    mozilla: int | None = None
    if b"x-mozilla-status" in values:
        raw = _unfold(values[b"x-mozilla-status"][0])
        try:
            mozilla = int(raw, 16) & 0xFFFF
        except ValueError:
            problems.append(Problem("bad-flags", f"X-Mozilla-Status {raw!r} is not hexadecimal"))
        for raw_value in values.get(b"x-mozilla-status2", [])[:1]:
            raw2 = _unfold(raw_value)
            try:
                mozilla = (mozilla or 0) | (int(raw2, 16) & 0xFFFF0000)
            except ValueError:
                problems.append(
                    Problem("bad-flags", f"X-Mozilla-Status2 {raw2!r} is not hexadecimal")
                )
    if mozilla is not None:
        flags |= mozilla_flags(mozilla)
        deleted = bool(mozilla & MOZ_EXPUNGED)
        partial = bool(mozilla & MOZ_PARTIAL)
    else:
        status = "".join(_unfold(v) for v in values.get(b"status", []))
        xstatus = "".join(_unfold(v) for v in values.get(b"x-status", []))
        if "R" in status:
            flags.add(SEEN)
        if "A" in xstatus:
            flags.add(ANSWERED)
        if "F" in xstatus:
            flags.add(FLAGGED)
        if "T" in xstatus:
            flags.add(DRAFT)
        deleted = "D" in xstatus
    for keys in values.get(b"x-mozilla-keys", []):
        flags |= keywords_from(_unfold(keys), problems)
    received = envelope_date if envelope_date is not None else fallback_received(block)
    return HeaderFacts(frozenset(flags), deleted, partial, received, mozilla, tuple(problems), data)


PARTIAL_PROBLEM = Problem(
    "partial",
    "only the headers were downloaded (POP3 'headers only'): the body is not on this disk",
)


# -- the reader ---------------------------------------------------------------------------


def quoting_option(options: ReaderOptions) -> bool:
    """``mbox_quoting`` reader option: "mboxrd" (default: remove one level) or "none"."""
    value = options.extra.get("mbox_quoting", "mboxrd").lower()
    if value not in ("mboxrd", "none"):
        raise UsageError(f'mbox_quoting must be "mboxrd" or "none", not {value!r}')
    return value == "mboxrd"


class MboxReader(StoreReader):
    """An mbox file, or a directory tree of them (mutt, Evolution 2, Pine, ...).

    A file is one folder named after it. In a directory, every file that starts
    with ``From `` is a folder; sub-directories nest (``Name.sbd/`` holds the
    children of ``Name``, as Thunderbird and Evolution 2 lay them out).
    """

    kind: ClassVar[str] = "mbox"
    metadata_notes: ClassVar[tuple[str, ...]] = (
        "Flags come from the Status: (R read) and X-Status: (A answered, F flagged, "
        "T draft, D deleted) fields, or Thunderbird's X-Mozilla-Status when present; "
        "keywords from X-Keywords. The fields Dovecot hides (X-IMAP, X-IMAPbase, X-UID, "
        "X-Keywords, Status, X-Status, Content-Length) are not uploaded.",
        "The received date is the From_ line's, in the writer's local time (no zone), "
        "else the newest Received: field's, else the Date: field's.",
        "One level of >From quoting is removed (mboxrd), as Thunderbird does, except in "
        'files kept by c-client or Dovecot, which never remove it; mbox_quoting = "none" '
        "keeps lines as stored.",
    )

    def __init__(self, path: Path, options: ReaderOptions | None = None) -> None:
        super().__init__(path, options)
        self.unquote = quoting_option(self.options)

    @classmethod
    def detect(cls, path: Path) -> bool:
        if path.is_file():
            return looks_like_mbox(path)
        if path.is_dir():
            try:
                return any(
                    child.is_file() and looks_like_mbox(child)
                    for child in sorted(path.iterdir())[:200]
                )
            except OSError:
                return False
        return False

    def _files(self, skipped: list[str] | None = None) -> Iterator[FolderFile]:
        return folder_files(self.path, skipped if skipped is not None else [])

    def folders(self) -> Iterator[SourceFolder]:
        single = not self.path.is_dir()  # a lone file may be a spool or a fetcher's target
        for folder, path, _ in self._files():
            yield SourceFolder(folder, path, inbox_reason(path) if single else None)

    def messages(self) -> Iterator[SourceMessage]:
        self.notes = []
        skipped: list[str] = []
        root = self.path if self.path.is_dir() else self.path.parent
        for folder, path, error in self._files(skipped):
            where = path.relative_to(root).as_posix()
            if error is not None:
                yield unreadable_message(folder, where, error)
            else:
                yield from read_mbox_folder(path, folder, where, self.unquote, skipped)
        self.folder_data = sum(note.endswith(PSEUDO_NOTE) for note in skipped)
        self.notes.extend(skipped)


def read_mbox_folder(
    path: Path, folder: tuple[str, ...], where: str, unquote: bool, notes: list[str]
) -> Iterator[SourceMessage]:
    """The messages of one mbox file; a file that cannot be read becomes one
    unreadable entry (empty data, problem "unreadable") instead of an exception.
    c-client's folder-data record is left out, with a note (see mbox_bookkeeping)."""
    position = 0
    try:
        writer = file_writer(path)
        unquote = unquote and not keeps_quoting(writer)
        for n, entry in enumerate(iter_mbox(path, unquote=unquote, strip_mozilla=True)):
            position = entry.offset
            if not n and writer and is_pseudo_message(entry.envelope, entry_header_block(entry)):
                notes.append(f"{where}:{entry.offset}: {PSEUDO_NOTE}")
                continue
            yield message_from_entry(entry, folder, f"{where}:{entry.offset}")
    except OSError as exc:
        yield unreadable_message(folder, f"{where}:{position}", exc)


def unreadable_message(folder: tuple[str, ...], source_id: str, exc: OSError) -> SourceMessage:
    """A stand-in for mail that could not be read, so the report can name it."""
    reason = exc.strerror or str(exc)
    return SourceMessage(
        folder=folder,
        data=b"",
        flags=frozenset(),
        received=None,
        source_id=source_id,
        problems=(Problem("unreadable", f"{source_id}: cannot be read: {reason}"),),
    )


def message_from_entry(
    entry: MboxEntry,
    folder: tuple[str, ...],
    source_id: str,
) -> SourceMessage:
    """A :class:`SourceMessage` from an mbox entry, trusting only its own headers,
    without the bookkeeping fields Dovecot hides (see mbox_bookkeeping)."""
    data, size = entry.data, entry.header_size
    block = header_block(data) if size is None else data[:size]
    facts = interpret_headers(data, entry.envelope_date, block, entry.removed)
    unix = strip_unix_fields(facts.data, block if facts.data is data else header_block(facts.data))
    problems = [*entry.problems, *facts.problems, *unix.problems]
    if facts.partial:
        problems.append(PARTIAL_PROBLEM)
    return SourceMessage(
        folder=folder,
        data=unix.data,
        flags=facts.flags | unix.keywords,
        received=facts.received,
        source_id=source_id,
        deleted=facts.deleted,
        partial=facts.partial,
        problems=locate(problems, source_id) if problems else (),
    )


def entry_header_block(entry: MboxEntry) -> bytes:
    """The header block of an entry's message (see :func:`header_block`)."""
    if entry.header_size is None:
        return header_block(entry.data)
    return entry.data[: entry.header_size]


def locate(problems: list[Problem], source_id: str) -> tuple[Problem, ...]:
    """Problems keep their code; their message says where (file and byte offset)."""
    return tuple(
        problem
        if problem.message.startswith(source_id)
        else Problem(problem.code, f"{source_id}: {problem.message}")
        for problem in problems
    )
