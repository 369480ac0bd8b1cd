"""Splitting an mbox file into messages: :func:`iter_mbox` yields one :class:`MboxEntry`
at a time, opened read-only and read in one pass over blocks, keeping only the current
message in memory (which lines are separators: :mod:`advisor.stores.mbox.separators`).

Quoting: every line matching ``>+From `` loses exactly one ``>`` (mboxrd), in
every file, by default. That is what Thunderbird itself does since 2023 when it
reads any of its mbox files, old or new, so the bytes we return are the bytes
the user sees in the client. Its limit: in an old mboxo file (which quoted only
``From `` lines), a line that was *originally* ``>From `` also loses its ``>``;
mboxo and mboxrd files cannot be told apart when no line has two or more
``>``. ``unquote=False`` (reader option ``mbox_quoting = "none"``) keeps every
line as stored, for files known to be mboxo or mboxcl2.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from advisor.stores.base import Problem
from advisor.stores.mbox.envelope import parse_envelope_date
from advisor.stores.mbox.fromsearch import HitFeed
from advisor.stores.mbox.headers import MOZILLA_FIELD
from advisor.stores.mbox.separators import MAX_ENVELOPE, MAX_LOOKAHEAD, SeparatorSearch
from advisor.stores.mbox.window import BLOCK_SIZE, FROM_, WINDOW, read_regions


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


class _Scanner(SeparatorSearch):
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
        super().__init__(stream, size, block_size, window)
        self.strip_mozilla = strip_mozilla
        self.unquote = unquote

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
        return read_regions(self.stream, regions)

    def _cuts(self, header: tuple[int, int]) -> tuple[list[tuple[int, int]], bytes]:
        """Spans of Thunderbird's bookkeeping fields in the header block, and their bytes."""
        low, high = self.msg_start - self.base, header[0] - self.base
        cuts = [
            (match.start() + self.base, match.end() + self.base)
            for match in MOZILLA_FIELD.finditer(self.buf, low, high)
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
    for separators by a helper process meanwhile (see :mod:`advisor.stores.mbox.fromsearch`).
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
