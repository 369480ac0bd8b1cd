"""Which ``From `` lines of an mbox file are message separators.

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

``Content-Length:`` (mboxcl/mboxcl2) is used only when it points exactly at a
separator line (or its preceding blank line) or at the end of the file;
otherwise it is a lie (often copied from elsewhere) and ignored.
"""

from __future__ import annotations

import io
import re
from datetime import datetime

from advisor.stores.mbox.envelope import parse_envelope_date
from advisor.stores.mbox.fromsearch import FeedBroken
from advisor.stores.mbox.window import FROM_, LOOKBACK, Window, read_span

MAX_ENVELOPE = 4096
"""A ``From_`` line longer than this is a body line (real ones are < 300 bytes)."""
MAX_LOOKAHEAD = 64 * 1024
"""How far past a candidate separator the header look-ahead may read."""
MAX_HEADER_BLOCK = 256 * 1024
"""How far into a message we look for the end of its header block (for Content-Length)."""

_HEADER_NAME = re.compile(rb"[\x21-\x39\x3b-\x7e]+:")
_CONTENT_LENGTH = re.compile(rb"^content-length[ \t]*:[ \t]*(\d{1,15})[ \t]*\r?$", re.I | re.M)


class SeparatorSearch(Window):
    """Finds the separator lines of a file through its window (the rule is the module's),
    and checks a header block's Content-Length against them."""

    def __init__(
        self,
        stream: io.FileIO | None,
        size: int,
        block_size: int,
        window: int,
    ) -> None:
        super().__init__(stream, size, block_size, window)
        self.quoted = False
        """A ``>From `` was seen in the current message: it may need unquoting."""
        self.quote_cuts: list[int] | None = []
        """The first ``>`` of every ``>+From `` line of the current message, in order
        (found by the separator search); None when one could not be placed."""
        self.sep_info: tuple[int, int, bytes, datetime | None, int] = (-1, -1, b"", None, 0)
        """The last separator accepted: (where, its line end, its envelope line, the
        envelope's date, the length of the blank line before it)."""

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

    def _probe(self, position: int) -> SeparatorSearch:
        """A scanner over the bytes around ``position``, read without moving the window."""
        assert self.stream is not None
        start = max(0, position - LOOKBACK)
        length = position - start + MAX_ENVELOPE + MAX_LOOKAHEAD + 8
        probe = SeparatorSearch(None, self.size, self.block_size, self.window)
        probe.buf = bytearray(read_span(self.stream, length, start))
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
