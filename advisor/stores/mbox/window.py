"""The sliding window the mbox scanner reads a file through, and positioned reads.

One buffer, reused (never reallocated for each block), filled block by block from the
file opened read-only; ``From `` is searched in it with libc's memmem or taken from a
helper process's hits (:mod:`advisor.stores.mbox.fromsearch`). A message larger than
half the window is read again in one piece with positioned reads, which leave the
stream where it is.
"""

from __future__ import annotations

import io
import os

from advisor.stores.mbox.fromsearch import MEMMEM, FeedBroken, HitFeed, address_of

FROM_ = b"From "
BLOCK_SIZE = 512 << 10
"""Bytes read from the file at a time."""
WINDOW = 4 << 20
"""Bytes of the file kept in memory at most (plus one block), besides the current message."""
LOOKBACK = 8
"""Bytes kept before a position still needed (to see the blank line before a separator)."""


class Window:
    """A sliding window over an open binary file, read block by block.

    Every position is a file offset; ``buf`` holds the bytes from ``base`` on. A probe
    window has no stream: its bytes were read for it (see ``SeparatorSearch._probe``).
    """

    def __init__(
        self,
        stream: io.FileIO | None,
        size: int,
        block_size: int,
        window: int,
    ) -> None:
        self.stream = stream
        self.size = size
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
        self.addr = 0
        """Where ``buf``'s bytes are in memory, for memmem (kept up to date on resize)."""
        self.feed: HitFeed | None = None
        """Offsets of ``From `` found by a helper process, for large files."""

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


def read_regions(stream: io.FileIO, regions: list[tuple[int, int]]) -> tuple[bytes, bool]:
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


def read_span(stream: io.FileIO, length: int, offset: int) -> bytes:
    data, _ = read_regions(stream, [(offset, offset + length)])
    return data


_PREAD = getattr(os, "pread", None)
_PREADV = getattr(os, "preadv", None)
_READ_MAX = 1 << 30
"""The most one read asks for (Linux reads at most about 2 GB at a time)."""
