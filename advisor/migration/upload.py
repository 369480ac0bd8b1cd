"""Batched, pipelined APPEND: many messages per command and per round trip.

imapclient sends one command and waits for its answer; over a link with 50 ms
round trips that caps a migration at 20 messages a second. Here a logged-in
imapclient connection is taken over after login and:

- messages for the same folder travel together in one MULTIAPPEND command
  (RFC 3502) where the server offers it: the server stores them in one
  transaction (Dovecot: 1,000 small messages in 0.1 s instead of 2-5 s one by
  one). MULTIAPPEND is all-or-nothing, so a refused batch is retried one message
  at a time to find the message the server does not want;
- literals are non-synchronising (LITERAL+, RFC 7888), so a command goes out in
  one write, and the next commands follow before earlier answers arrive (a
  window of them per connection). Without LITERAL+ each literal waits for the
  server's go-ahead, as the protocol requires, and for nothing else: the literal,
  its closing CRLF and the next command share one write (TCP_NODELAY is set, so
  no write waits for an ACK), and the connection acknowledges at once what it
  reads (TCP_QUICKACK), because a server writing its ``OK`` and the next ``+``
  separately without TCP_NODELAY (Courier) holds the ``+`` until that ACK.

Memory stays bounded: a :class:`ByteBudget` caps the bytes of all messages in
flight across every connection (a single larger message goes alone).
"""

from __future__ import annotations

import imaplib
import queue
import re
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import imapclient
from imapclient.imap_utf7 import encode as utf7_encode

from advisor.connection.imap import no_delay, quick_ack
from advisor.connection.limits import too_many_connections
from advisor.migration.quota import StorageFull
from advisor.plugins.types import ThrottleAdvice

MAX_LINE = 64 * 1024
"""Longest server line accepted; a hostile server cannot make us buffer more."""
MAX_UNTAGGED = 10_000
"""Untagged lines tolerated while waiting for one answer."""
MAX_DISCARDED_LITERAL = 1024 * 1024
MAX_RETRIES = 5
FLUSH_BYTES = 256 * 1024
"""Buffered output is written once it reaches this: writes stay large but bounded."""
MAX_WAIT = 300.0
"""Longest wait a server's throttling advice can impose at once."""

_TAGGED = re.compile(rb"^(MA\d+) (OK|NO|BAD)(?: (.*))?$", re.S)
_APPENDUID = re.compile(rb"\[APPENDUID (\d+) ([\d:,]+)\]", re.I)
_LITERAL_AT_END = re.compile(rb"\{(\d+)\+?\}$")
_ATOM_SPECIALS = re.compile(r'[(){ %*"\\\]\x00-\x20\x7f]')
SYSTEM_FLAGS = frozenset({"\\Seen", "\\Answered", "\\Flagged", "\\Draft", "\\Deleted"})


class ConnectionLost(Exception):
    """The connection broke; the outcome of messages in flight is unknown."""


class _Reconnect(ConnectionLost):
    """The server asked for a new connection after a wait, and the wait is over."""


class ProtocolViolation(ConnectionLost):
    """The server sent something we will not accept (too long, too much)."""


@dataclass
class UploadJob:
    """One message ready to go: bytes already in CRLF form."""

    source_key: str
    folder: str
    data: bytes
    flags: tuple[str, ...]
    internal_date: datetime | None
    message_id: str | None
    sha256: str
    flags_after: tuple[str, ...] = ()
    """Flags to set with STORE once stored, not with APPEND (the provider drops them)."""
    attempts: int = 0

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class Batch:
    """Messages for one folder that go out in one (MULTI)APPEND command."""

    folder: str
    jobs: list[UploadJob]

    @property
    def size(self) -> int:
        return sum(job.size for job in self.jobs)


@dataclass
class UploadResult:
    job: UploadJob
    ok: bool
    unknown: bool = False
    """The connection broke before the answer: the message may or may not be stored."""
    uidvalidity: int | None = None
    uid: int | None = None
    response: str = ""
    stop: bool = False
    """The server says no more today (daily quota): stop the run, resume later."""


class ByteBudget:
    """Caps the bytes in flight; a message bigger than the cap goes when nothing else is."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.peak = 0
        self._cond = threading.Condition()

    def acquire(self, n: int, cancelled: threading.Event | None = None) -> bool:
        with self._cond:
            while self.used > 0 and self.used + n > self.limit:
                if cancelled is not None and cancelled.is_set():
                    return False
                self._cond.wait(0.2)
            self.used += n
            self.peak = max(self.peak, self.used)
            return True

    def release(self, n: int) -> None:
        with self._cond:
            self.used -= n
            self._cond.notify_all()


def quote_mailbox(name: str, *, utf8: bool = False) -> bytes:
    """A mailbox name as an IMAP quoted string, in modified UTF-7 (or UTF-8, ``utf8``).

    Modified UTF-7 turns every control character (CR, LF, NUL) into base64, so only
    the quote and the backslash need escaping to keep the name inside its string.
    ``utf8`` is for a session that enabled UTF8=ACCEPT (RFC 6855), where names are
    raw UTF-8: a control character there is refused, never sent.
    """
    if utf8:
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
            # Unreachable for source folders (FolderMapper.sanitise replaces them).
            raise ValueError(f"a mailbox name has a control character: {name!r}")
        encoded = name.encode("utf-8")
    else:
        encoded = utf7_encode(name)
    return b'"' + encoded.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def utf8_headers(data: bytes) -> bool:
    """Whether the header section holds 8-bit bytes that are valid UTF-8 (RFC 6532 headers).

    Only those go in APPEND's UTF8 item; raw Latin-1 headers of old mail are sent as
    they always were, since a server may refuse invalid UTF-8 in that item.
    """
    end = data.find(b"\r\n\r\n")
    header = data if end < 0 else data[:end]
    if header.isascii():
        return False
    try:
        header.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def valid_flags(flags: Sequence[str], keywords_allowed: bool) -> tuple[list[str], list[str]]:
    """Split flags into the ones we can send and the ones we must drop (with reasons)."""
    keep: list[str] = []
    dropped: list[str] = []
    for flag in flags:
        if flag in SYSTEM_FLAGS:
            if flag != "\\Deleted":
                keep.append(flag)
        elif flag.startswith("\\") or _ATOM_SPECIALS.search(flag) or not flag.isascii():
            dropped.append(flag)
        elif keywords_allowed:
            keep.append(flag)
        else:
            dropped.append(flag)
    return keep, dropped


def parse_uid_set(text: bytes) -> list[int]:
    """ "3:5,9" -> [3, 4, 5, 9] (APPENDUID's uid-set, in order)."""
    uids: list[int] = []
    for part in text.split(b","):
        first, _, last = part.partition(b":")
        a, b = int(first), int(last or first)
        uids.extend(range(a, b + 1) if a <= b else range(a, b - 1, -1))
    return uids


def imap_date(value: datetime) -> bytes:
    """INTERNALDATE syntax; a naive time is the local time of this machine."""
    if value.tzinfo is None:
        value = value.astimezone()
    return str(imaplib.Time2Internaldate(value)).encode("ascii")


class PipelinedAppender:
    """Takes over a logged-in imapclient connection for pipelined APPENDs."""

    def __init__(
        self,
        client: imapclient.IMAPClient,
        keywords_allowed: bool = True,
        select_target: bool = False,
    ) -> None:
        self.client = client
        self.select_target = select_target
        """SELECT a folder before the first APPEND into it (see upload_plan)."""
        self._selected: str | None = None
        caps = {c.upper() for c in client.capabilities()}
        self.literal_plus = b"LITERAL+" in caps
        self.literal_minus = b"LITERAL-" in caps
        self.keywords_allowed = keywords_allowed
        self.utf8 = bool(getattr(client, "utf8_enabled", False))  # ENABLE UTF8=ACCEPT
        imap: Any = client._imap  # imaplib object: we own its socket from here on
        self._sock = imap.sock
        no_delay(self._sock)  # set by imap_connection already; a connection from elsewhere too
        self._file = imap.file
        self._seq = 0
        self._out: list[bytes] = []
        """Bytes not yet written: the tail of the last command, joined with the next."""
        self._out_bytes = 0

    def _next_tag(self) -> bytes:
        self._seq += 1
        return b"MA%d" % self._seq

    def send(self, batch: Batch) -> tuple[bytes, list[tuple[bytes, bytes, bytes]]]:
        """Queue one APPEND for the batch; returns its tag and answers read meanwhile.

        The command's last bytes (its final literal and CRLF) stay buffered until the
        next command or the next read, so they share a write with what follows.
        """
        if self.select_target and batch.folder != self._selected:
            # Pipelined, never waited for: its answer (tag MS..., not MA...) is not an
            # APPEND's and is skipped like untagged data; if it fails, APPEND still works.
            self._selected = batch.folder
            self._put(
                b"MS%d SELECT %s\r\n" % (self._seq, quote_mailbox(batch.folder, utf8=self.utf8))
            )
        tag = self._next_tag()
        self._put(tag + b" APPEND " + quote_mailbox(batch.folder, utf8=self.utf8))
        early: list[tuple[bytes, bytes, bytes]] = []
        for job in batch.jobs:
            flags, _dropped = valid_flags(job.flags, self.keywords_allowed)
            head = [b" (", " ".join(flags).encode("ascii"), b")"]
            if job.internal_date is not None:
                head += [b" ", imap_date(job.internal_date)]
            size = len(job.data)
            nonsync = self.literal_plus or (self.literal_minus and size <= 4096)
            # RFC 6855 4: after ENABLE UTF8=ACCEPT, UTF-8 headers go in the UTF8 item.
            utf8 = self.utf8 and utf8_headers(job.data)
            opening, closing = (b" UTF8 (~", b")") if utf8 else (b" ", b"")
            head.append(b"%s{%d%s}\r\n" % (opening, size, b"+" if nonsync else b""))
            self._put(b"".join(head))
            # A synchronising literal waits for the server's go-ahead (RFC 3501 7.5),
            # which reads (and so first sends) what is buffered.
            if not nonsync and not self._await_continuation(tag, early):
                return tag, early  # refused before the literal (e.g. too big)
            self._put(job.data)
            if closing:
                self._put(closing)
        self._put(b"\r\n")
        return tag, early

    def _put(self, data: bytes) -> None:
        self._out.append(data)
        self._out_bytes += len(data)
        if self._out_bytes >= FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        """Send everything buffered in one write (TCP_NODELAY is set: no Nagle wait)."""
        if not self._out:
            return
        data = self._out[0] if len(self._out) == 1 else b"".join(self._out)
        self._out.clear()
        self._out_bytes = 0
        try:
            self._sock.sendall(data)
        except OSError as exc:
            raise ConnectionLost(str(exc) or type(exc).__name__) from None

    def _await_continuation(self, tag: bytes, early: list[tuple[bytes, bytes, bytes]]) -> bool:
        for _ in range(MAX_UNTAGGED):
            line = self._read_line()
            if line.startswith(b"+"):
                return True
            answer = self._tagged(line)
            if answer is not None:
                early.append(answer)
                if answer[0] == tag:
                    return False
        raise ProtocolViolation(f"more than {MAX_UNTAGGED} responses without a go-ahead")

    def read_answer(self) -> tuple[bytes, bytes, bytes]:
        """Block until the next tagged answer: (tag, OK|NO|BAD, rest of line)."""
        for _ in range(MAX_UNTAGGED):
            answer = self._tagged(self._read_line())
            if answer is not None:
                return answer
        raise ProtocolViolation(f"more than {MAX_UNTAGGED} untagged responses in a row")

    def _tagged(self, line: bytes) -> tuple[bytes, bytes, bytes] | None:
        if line.startswith(b"* BYE"):
            raise ConnectionLost(
                "server closed the connection: " + line[6:].decode("utf-8", "replace")
            )
        match = _TAGGED.match(line)
        if match is None:
            return None
        return match.group(1), match.group(2), match.group(3) or b""

    def _read_line(self) -> bytes:
        """One response line; untagged data with literals (not expected here) is skipped.

        Only untagged responses carry literals: a tagged answer ending in ``{5}`` is
        text (Dovecot quotes a refused folder name there), and reading it as a literal
        would lose the answer.
        """
        self.flush()  # the server may be waiting for what we hold before it answers
        quick_ack(self._sock)
        untagged = False  # inside an untagged response that had a literal
        for _ in range(MAX_UNTAGGED):
            try:
                line: bytes = self._file.readline(MAX_LINE + 1)
            except OSError as exc:
                raise ConnectionLost(str(exc) or type(exc).__name__) from None
            if not line:
                raise ConnectionLost("the server closed the connection")
            if len(line) > MAX_LINE or not line.endswith(b"\r\n"):
                raise ProtocolViolation("the server sent an over-long or unterminated line")
            line = line[:-2]
            untagged = untagged or line.startswith(b"* ")
            literal = _LITERAL_AT_END.search(line) if untagged else None
            if literal is None:
                return line
            n = int(literal.group(1))
            if n > MAX_DISCARDED_LITERAL:
                raise ProtocolViolation(f"the server announced a {n:,}-byte literal")
            try:
                skipped = self._file.read(n)
            except OSError as exc:
                raise ConnectionLost(str(exc) or type(exc).__name__) from None
            if len(skipped) < n:
                raise ConnectionLost("the server closed the connection inside a literal")
        raise ProtocolViolation(f"more than {MAX_UNTAGGED} literals in one response")

    def close(self) -> None:
        with suppress(ConnectionLost):
            self._put(b"MAZ LOGOUT\r\n")
            self.flush()
        with suppress(Exception):  # already gone
            self.client.shutdown()


Connector = Callable[[], imapclient.IMAPClient]
Classifier = Callable[[str], ThrottleAdvice | None]


@dataclass
class WorkerStats:
    sent: int = 0
    reconnects: int = 0
    error: str | None = None
    retried: int = 0
    waits: list[float] = field(default_factory=list)
    connected: bool = False
    refused: bool = False
    """The server turned the connection away with throttling advice before any upload
    (e.g. Gmail's "Too many simultaneous connections"): use fewer connections."""
    retry_after: float | None = None
    """When the connection ended: seconds to wait before replacing it, as the server
    advised (0 when this worker has waited already); None means no advice."""
    stop: ThrottleAdvice | None = None
    """The server asked to stop for now (daily quota): its advice."""


class UploadWorker(threading.Thread):
    """One connection's loop: send while the window has room, else read an answer."""

    def __init__(
        self,
        connect: Connector,
        batches: queue.Queue[Batch | None],
        results: queue.Queue[UploadResult],
        budget: ByteBudget,
        window: int,
        classify: Classifier,
        cancelled: threading.Event,
        keywords_allowed: bool = True,
        select_target: bool = False,
        *,
        keep_open: bool = False,
    ) -> None:
        super().__init__(daemon=True)
        self._select_target = select_target
        self._keep_open = keep_open
        """The connection is the caller's (its control connection): leave it logged in."""
        self._connect = connect
        self._batches = batches
        self._results = results
        self._budget = budget
        self._window = window
        self._classify = classify
        self._cancelled = cancelled
        self._keywords = keywords_allowed
        self._no_more = False
        self.stats = WorkerStats()

    def _finish(self, job: UploadJob, result: UploadResult) -> None:
        self._budget.release(job.size)
        self._results.put(result)

    def _next_batch(self, block: bool) -> Batch | None:
        if self._no_more:
            return None
        try:
            batch = self._batches.get(block=block)
        except queue.Empty:
            return None
        if batch is None:  # the end-of-work sentinel, one per worker
            self._no_more = True
        return batch

    def run(self) -> None:
        inflight: dict[bytes, Batch] = {}
        retry: list[Batch] = []
        sending: list[Batch] = []  # taken from the queue, not yet in flight
        appender: PipelinedAppender | None = None
        try:
            appender = PipelinedAppender(self._connect(), self._keywords, self._select_target)
            self.stats.connected = True
            while True:
                if len(inflight) < self._window and not self._cancelled.is_set():
                    batch = retry.pop(0) if retry else self._next_batch(block=not inflight)
                    if batch is not None:
                        sending.append(batch)
                        tag, early = appender.send(batch)
                        inflight[tag] = sending.pop()
                        self.stats.sent += len(batch.jobs)
                        for answer in early:
                            self._handle(answer, inflight, retry)
                        continue
                if not inflight:
                    break  # nothing to send and nothing to wait for
                self._handle(appender.read_answer(), inflight, retry)
        except Exception as exc:
            # Broken connection, hostile server, or a bug: messages in flight have an
            # unknown outcome; the caller checks the server before sending them again.
            self.stats.error = str(exc) or type(exc).__name__
            if not isinstance(exc, _Reconnect):
                advice = self._classify(self.stats.error)
                if advice is not None and advice.retry_after_seconds is not None:
                    self.stats.retry_after = advice.retry_after_seconds
                    self.stats.refused = not self.stats.connected
                elif not self.stats.connected and too_many_connections(self.stats.error):
                    self.stats.retry_after = 0.0  # waiting frees nothing: use fewer at once
                    self.stats.refused = True
            for batch in [*sending, *inflight.values(), *retry]:
                for job in batch.jobs:
                    self._finish(
                        job, UploadResult(job, ok=False, unknown=True, response=self.stats.error)
                    )
        finally:
            if appender is not None and not self._keep_open:
                appender.close()

    def _handle(
        self,
        answer: tuple[bytes, bytes, bytes],
        inflight: dict[bytes, Batch],
        retry: list[Batch],
    ) -> None:
        tag, status, rest = answer
        batch = inflight.pop(tag, None)
        if batch is None:
            raise ProtocolViolation(f"answer for a command we never sent ({tag!r})")
        text = rest.decode("utf-8", "replace")
        if status == b"OK":
            match = _APPENDUID.search(rest)
            uids = parse_uid_set(match.group(2)) if match else []
            if len(uids) != len(batch.jobs):
                uids = []
            for i, job in enumerate(batch.jobs):
                self._finish(
                    job,
                    UploadResult(
                        job,
                        ok=True,
                        uidvalidity=int(match.group(1)) if match and uids else None,
                        uid=uids[i] if uids else None,
                        response=text,
                    ),
                )
            return
        advice = self._classify(f"{status.decode()} {text}")
        if isinstance(advice, StorageFull) and len(batch.jobs) > 1:
            # All-or-nothing: the account may still take some of them, one by one; the
            # first single refusal then stops the upload.
            retry.extend(Batch(batch.folder, [job]) for job in batch.jobs)
            return
        if advice is not None and advice.retry_after_seconds is None:
            self.stats.stop = self.stats.stop or advice
            for job in batch.jobs:
                self._finish(job, UploadResult(job, ok=False, response=text, stop=True))
            self._cancelled.set()
            return
        attempts = max(job.attempts for job in batch.jobs)
        if advice is not None and attempts < MAX_RETRIES:
            for job in batch.jobs:
                job.attempts += 1
            self.stats.retried += 1
            wait = float(advice.retry_after_seconds or 0.0)
            self.stats.waits.append(wait)
            time.sleep(min(wait, MAX_WAIT))
            retry.append(batch)
            if advice.reconnect:
                # Microsoft hangs up after its throttling answer: start afresh, having waited.
                self.stats.retry_after = 0.0
                raise _Reconnect(f"reconnecting as the server asked: {status.decode()} {text}")
            return
        if len(batch.jobs) > 1:
            # All-or-nothing: find the message the server refuses by sending them one by one.
            retry.extend(Batch(batch.folder, [job]) for job in batch.jobs)
            return
        (job,) = batch.jobs
        self._finish(job, UploadResult(job, ok=False, response=f"{status.decode()} {text}"))
