"""Finding every ``From `` in an mbox file fast: most of the work of reading one.

Two helpers for :mod:`advisor.stores.mbox`:

* :data:`MEMMEM`: libc's ``memmem``. CPython's ``bytes.find`` skips ahead by the
  needle's last byte, which for ``From `` is a space, found everywhere in mail, and
  reaches about 1.8 GB/s; glibc's memmem hashes byte pairs and reaches 4-5 GB/s, and
  releases the GIL. None where the C library has none (Windows): ``bytes.find`` then.
* :class:`HitFeed`: the same search run by a helper process over the whole file, so
  that on a machine with two or more cores it overlaps with the reader's own work
  (cutting out messages, reading their headers). It reads the file through the
  reader's own descriptor (the same file, even if it is renamed or replaced
  meanwhile), with ``pread`` only, and writes the offsets it finds to a pipe. The
  reader checks every offset against its own bytes; if anything is off (the helper
  died, the file changed), it goes on searching by itself.

Nothing here writes to the mail file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from array import array
from collections.abc import Callable

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


PARALLEL_MIN = 32 << 20
"""Files at least this large are searched by a helper process (when there are two
cores and memmem): below, starting it costs more than it saves."""

# The helper: python -I -S -c _CHILD FD SIZE. It writes int64 records: every offset of
# "From " in order, and after each block -1 - (offset below which all hits are written).
_CHILD = r"""
import ctypes, os, sys
from array import array
fd, size = int(sys.argv[1]), int(sys.argv[2])
memmem = ctypes.CDLL(None).memmem
memmem.restype = ctypes.c_void_p
memmem.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
block = 4 << 20
buf = bytearray(block)
view = memoryview(buf)
base = ctypes.addressof(ctypes.c_char.from_buffer(buf))
out = sys.stdout.buffer
position = 0
try:
    while position < size:
        count = os.preadv(fd, [view[: min(block, size - position)]], position)
        if count <= 0:
            break
        hits = array("q")
        at = 0
        while True:
            found = memmem(base + at, count - at, b"From ", 5)
            if not found:
                break
            at = found - base
            hits.append(position + at)
            at += 1
        done = position + count if position + count >= size else position + count - 4
        hits.append(-1 - done)
        out.write(hits.tobytes())
        out.flush()
        if done >= size or count < 5:
            break
        position = done
except (BrokenPipeError, OSError):
    pass
"""


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class FeedBroken(Exception):
    """The helper stopped before covering what was asked: search in-process instead."""


class HitFeed:
    """Offsets of ``From `` in a file, from a helper process, in increasing order."""

    def __init__(self, fd: int, size: int) -> None:
        self.size = size
        self.hits = array("q")
        self.next = 0
        """Index of the first hit not yet passed."""
        self.covered = 0
        """Every hit below this offset has been received."""
        self._partial = b""
        self.proc: subprocess.Popen[bytes] | None = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _CHILD, str(fd), str(size)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            pass_fds=(fd,),
        )

    @classmethod
    def start(cls, fd: int, size: int) -> HitFeed | None:
        """A feed for a file worth it, on a machine where it helps; None otherwise."""
        if size < PARALLEL_MIN or MEMMEM is None or not sys.executable or _cores() < 2:
            return None
        try:
            return cls(fd, size)
        except (OSError, ValueError, subprocess.SubprocessError):
            return None

    def find(self, start: int, end: int) -> int:
        """The first offset in [start, end - 5] where ``From `` starts, or -1.
        Raises :class:`FeedBroken` when the helper cannot answer."""
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

    def _receive(self) -> None:
        if self.proc is None or self.proc.stdout is None:
            raise FeedBroken
        chunk = os.read(self.proc.stdout.fileno(), 1 << 16)
        if not chunk:
            self.close()
            raise FeedBroken
        data = self._partial + chunk
        whole = len(data) - len(data) % 8
        self._partial = data[whole:]
        records = array("q")
        records.frombytes(data[:whole])
        if self.next > 4096:  # drop what was passed, so memory stays small
            del self.hits[: self.next]
            self.next = 0
        for record in records:
            if record < 0:
                self.covered = -1 - record
            else:
                self.hits.append(record)

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
