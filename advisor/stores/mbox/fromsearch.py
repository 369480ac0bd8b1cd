"""Finding every ``From `` in an mbox file fast: most of the work of reading one.

Two helpers for the mbox scanner (:mod:`advisor.stores.mbox.scanner`):

* :data:`MEMMEM`: libc's ``memmem``. CPython's ``bytes.find`` skips ahead by the
  needle's last byte, which for ``From `` is a space, found everywhere in mail, and
  reaches about 1.8 GB/s; glibc's memmem hashes byte pairs and reaches 4-5 GB/s, and
  releases the GIL. None where the C library has none (Windows): ``bytes.find`` then.
* :class:`HitFeed`: the same search run by a helper process (``python -I -S``) over the
  file past its first :data:`HEAD` bytes, so that on a machine with two or more cores
  it overlaps with the reader's own work (cutting out messages, reading their headers).
  It reads the file through the reader's own descriptor (the same file, even if it is
  renamed or replaced meanwhile), mapping it read-only a stretch at a time (a private
  mapping, never written), and writes the offsets it finds to a pipe. The reader checks
  every offset against its own bytes and the stream's order and bounds; if anything is
  off (the helper died, the file changed or shrank), it goes on searching by itself.

Nothing here writes to the mail file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from array import array
from collections.abc import Callable
from typing import NoReturn

from advisor.platform_compat import usable_cores

MemMem = Callable[[int, int, bytes, int], "int | None"]


def _load_memmem() -> MemMem | None:
    if os.name != "posix":
        return None
    try:
        import ctypes

        function = ctypes.CDLL(None).memmem  # the running program's C library
    except (ImportError, OSError, AttributeError):
        return None
    function.restype = ctypes.c_void_p
    function.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
    found: MemMem = function
    return found


MEMMEM = _load_memmem()
"""``memmem(address, length, needle, needle_length)`` -> address of the hit or None."""


def address_of(buffer: bytearray) -> int:
    """Where ``buffer``'s bytes are in memory, valid until it is resized."""
    import ctypes

    return ctypes.addressof(ctypes.c_char.from_buffer(buffer))


PARALLEL_MIN = 64 << 20
"""Files at least this large are searched by a helper process (when there are two
cores and memmem): below, starting it costs more than it saves."""
HEAD = 32 << 20
"""The helper starts searching this far into the file (a multiple of the mapping
granularity); the reader searches the head itself while the helper starts up."""

# The helper: python -I -S -c _CHILD FD SIZE ORIGIN. It writes int64 records: every offset
# of "From " from ORIGIN on, in order, and after each stretch -1 - (offset below which all
# hits are written).
# It maps the file a stretch at a time (no copy, and its memory stays small); should the
# file shrink meanwhile, touching a page past its end kills the helper (SIGBUS), and the
# reader, seeing the pipe close early, searches by itself: the risk stays out of the
# reader's own process.
MAGIC = b"\x00MAFROM\x01"
"""What the helper writes first: anything else on the pipe is not our helper talking."""
_CHILD = (
    f"MAGIC = {MAGIC!r}\n"
    + r"""
import ctypes, mmap, os, sys
from array import array
fd, size, origin = (int(arg) for arg in sys.argv[1:4])
memmem = ctypes.CDLL(None).memmem
memmem.restype = ctypes.c_void_p
memmem.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
stretch = 16 << 20
out = sys.stdout.buffer
position = origin
try:
    out.write(MAGIC)
    while position < size:
        length = min(stretch + 4, size - position)
        last = position + length >= size
        mapped = mmap.mmap(fd, length, access=mmap.ACCESS_COPY, offset=position)
        anchor = ctypes.c_char.from_buffer(mapped)
        base = ctypes.addressof(anchor)
        limit = length if last else stretch
        hits = array("q")
        at = 0
        while True:
            found = memmem(base + at, length - at, b"From ", 5)
            if not found or found - base >= limit:
                break
            at = found - base
            hits.append(position + at)
            at += 1
        del anchor
        mapped.close()
        position = size if last else position + stretch
        hits.append(-1 - position)
        out.write(hits.tobytes())
        out.flush()
except (BrokenPipeError, OSError, ValueError):
    pass
"""
)


def _cores() -> int:
    return usable_cores()


class FeedBroken(Exception):
    """The helper stopped before covering what was asked: search in-process instead."""


class HitFeed:
    """Offsets of ``From `` in a file, from a helper process, in increasing order."""

    def __init__(self, fd: int, size: int, origin: int = 0) -> None:
        self.size = size
        self.origin = origin
        """The helper finds hits from here on; below, the caller searches by itself."""
        self.hits = array("q")
        self.next = 0
        """Index of the first hit not yet passed."""
        self.covered = origin
        """Every hit from ``origin`` to this offset has been received."""
        self._partial = b""
        self._greeted = False
        self.proc: subprocess.Popen[bytes] | None = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _CHILD, str(fd), str(size), str(origin)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            pass_fds=(fd,),
        )

    @classmethod
    def start(cls, fd: int, size: int) -> HitFeed | None:
        """A feed for a file worth it, on a machine where it helps; None otherwise."""
        if size < PARALLEL_MIN or MEMMEM is None or _cores() < 2:
            return None
        if not sys.executable or getattr(sys, "frozen", False):
            return None  # no interpreter to run the helper with (a bundled application)
        try:
            return cls(fd, size, HEAD if size > HEAD else 0)
        except (OSError, ValueError, subprocess.SubprocessError):
            return None

    def find(self, start: int, end: int) -> int:
        """The first offset in [start, end - 5] where ``From `` starts, or -1 (``start``
        at least :attr:`origin`). Raises :class:`FeedBroken` when the helper cannot
        answer."""
        hits = self.hits
        while True:
            index = self.next
            count = len(hits)
            while index < count and hits[index] < start:
                index += 1
            self.next = index
            if index < count:
                hit = hits[index]
                return hit if hit + 5 <= end else -1
            if self.covered >= end:
                return -1
            self._receive()

    def next_hit(self, start: int) -> int:
        """The first offset at or after ``start`` (at least :attr:`origin`) where ``From ``
        starts; the file's size when there is none. Raises :class:`FeedBroken` when the
        helper cannot answer."""
        hits = self.hits
        while True:
            index = self.next
            count = len(hits)
            while index < count and hits[index] < start:
                index += 1
            self.next = index
            if index < count:
                return hits[index]
            if self.covered >= self.size:
                return self.size
            self._receive()

    def _receive(self) -> None:
        if self.proc is None or self.proc.stdout is None:
            raise FeedBroken
        chunk = os.read(self.proc.stdout.fileno(), 1 << 16)
        if not chunk:
            self._broken()
        data = self._partial + chunk
        if not self._greeted:
            if len(data) < len(MAGIC):
                self._partial = data
                return
            if not data.startswith(MAGIC):
                self._broken()
            self._greeted = True
            data = data[len(MAGIC) :]
        whole = len(data) - len(data) % 8
        self._partial = data[whole:]
        records = array("q")
        records.frombytes(data[:whole])
        if self.next > 4096:  # drop what was passed, so memory stays small
            del self.hits[: self.next]
            self.next = 0
        hits, covered, size = self.hits, self.covered, self.size
        last = hits[-1] if hits else -1
        for record in records:
            # Offsets only grow, and stay inside the file: else this is not our helper.
            if record < 0:
                done = -1 - record
                if not covered <= done <= size:
                    self._broken()
                covered = done
            elif covered <= record < size and record > last:
                hits.append(record)
                last = record
            else:
                self._broken()
        self.covered = covered

    def _broken(self) -> NoReturn:
        self.close()
        raise FeedBroken

    def close(self) -> None:
        """Stop the helper (if it still runs) and release its pipe."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
