"""Which server message is this local message? One answer for the migration and the check.

A message seldom reaches the disk exactly as the server holds it, and seldom reaches the
server exactly as it was sent up:

* the program that downloaded it over POP3 put its own lines on top (:data:`FETCHERS`:
  getmail6's ``Return-Path``/``Delivered-To``/``Received``, mpop's and fetchmail's
  ``Received``, Thunderbird's ``X-Account-Key``/``X-UIDL``/``X-Mozilla-*``);
* the server changed what it stored (Courier adds a final CRLF, some servers drop
  trailing blanks, Cyrus' munge8bit replaces raw 8-bit header bytes with ``X``).

So identity is decided in two steps. The Message-ID (with a size within the known
deltas) only picks candidates, cheaply, from RFC822.SIZE and the Message-ID header;
the SHA-256 of the :func:`normalise` d message decides, which sees through both lists
above. A message without a Message-ID is found by that hash alone.

:class:`ServerIndex` holds one server folder's messages (UID, size, Message-ID, flags)
and fetches full bodies only when a hash is needed, a few MB per FETCH, keeping only
digests. Matching claims a server message, so one server copy never stands for two
local ones. Self-contained: it needs an IMAP client (imapclient) and nothing else of
mailadvisor.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import imapclient

FETCH_CHUNK = 1000
"""UIDs per FETCH of sizes and headers."""
BODY_CHUNK_BYTES = 4 * 1024 * 1024
BODY_CHUNK_MESSAGES = 50
"""Full bodies are fetched a few MB at a time: memory stays small whatever the sizes."""
SIZE_SLACK = 2
"""Bytes a server may add or drop at the end (Courier adds a final CRLF)."""
MAX_TRACE_BLOCKS = 8
"""At most this many fetchers' blocks are removed from the top (a message fetched twice)."""

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.I | re.M)
_FIELD = re.compile(rb"([!-9;-~]+)[ \t]*:(.*(?:\n[ \t].*)*)\n?")
_EIGHT_BIT = re.compile(rb"[\x80-\xff]")
_TRAILING_BLANKS = re.compile(rb"[ \t]+$", re.M)
_FROM_QUOTING = re.compile(rb"^>+(?=From )", re.M)
_GETMAIL_MSGID = re.compile(rb"\bmsgid:([!-:<-~]+)")


# --- what fetching programs add ---------------------------------------------------------


@dataclass(frozen=True)
class TraceField:
    """One header field a fetching program writes on top of the message."""

    name: bytes
    """Lower-case field name."""
    value: re.Pattern[bytes] | None = None
    """The value must match (searched, over the unfolded value), if given."""
    required: bool = False
    """The program's block is only recognised when this field is there."""


@dataclass(frozen=True)
class Fetcher:
    """A program that downloads mail over POP3, and the fields it puts on top, in order."""

    program: str
    fields: tuple[TraceField, ...]


def _pattern(text: bytes) -> re.Pattern[bytes]:
    return re.compile(text, re.I | re.S)


FETCHERS: tuple[Fetcher, ...] = (
    # getmail6 (Maildir and mbox destinations): its options delivered_to, received and
    # record the envelope sender as Return-Path; each may be switched off, so only the
    # Received line (naming getmail) is required; seen as
    # "Received: from pop.host (1.2.3.4:995) by here with POP3-SSL\n  getmail6 msgid:UIDL; date".
    Fetcher(
        "getmail6",
        (
            TraceField(b"return-path"),
            TraceField(b"delivered-to"),
            TraceField(b"received", _pattern(rb"\bwith (?:POP3|IMAP|SDPS)\S*.*\bgetmail"), True),
        ),
    ),
    # mpop: "Received: from pop.host (pop.host [1.2.3.4])\n\tby here (mpop-1.4.18) with POP3\n\t..."
    Fetcher("mpop", (TraceField(b"received", _pattern(rb"\(mpop-[\w.]+\) with POP3"), True),)),
    # fetchmail: "Received: from pop.host [1.2.3.4]\n\tby here with POP3 (fetchmail-6.4.37)\n\t..."
    Fetcher(
        "fetchmail",
        (TraceField(b"received", _pattern(rb"\bwith \S+ \(fetchmail-[\w.]+\)"), True),),
    ),
    # Thunderbird's POP3 code writes these five before the message (the reader already
    # removes the three X-Mozilla ones; other readers of its mbox files may not).
    Fetcher(
        "thunderbird",
        (
            TraceField(b"x-account-key"),
            TraceField(b"x-uidl"),
            TraceField(b"x-mozilla-status"),
            TraceField(b"x-mozilla-status2"),
            TraceField(b"x-mozilla-keys"),
        ),
    ),
)


@dataclass(frozen=True)
class Trace:
    """What fetching programs put on top of one message."""

    programs: tuple[str, ...] = ()
    """Their names, outermost first."""
    length: int = 0
    """Bytes of the header (in LF form) they account for."""
    uidl: str | None = None
    """The POP3 UIDL a program recorded in the message (Thunderbird's X-UIDL, getmail's
    ``msgid:``), if any."""


def _top_fields(head: bytes) -> Iterator[tuple[bytes, bytes, int, int]]:
    """(lower-case name, unfolded value, start, end) of the header fields from the top (LF form)."""
    position = 0
    while position < len(head):
        match = _FIELD.match(head, position)
        if match is None:
            return
        value = b" ".join(match.group(2).split())
        yield match.group(1).lower(), value, match.start(), match.end()
        position = match.end()


def find_trace(head: bytes) -> Trace:
    """The blocks of :data:`FETCHERS` at the top of a header (LF line endings)."""
    fields = []
    for n, item in enumerate(_top_fields(head)):
        fields.append(item)
        if n > 8 * MAX_TRACE_BLOCKS:
            break
    position, programs, uidl = 0, [], None
    for _ in range(MAX_TRACE_BLOCKS):
        for fetcher in FETCHERS:
            consumed = _match_block(fetcher, fields, position)
            if consumed:
                programs.append(fetcher.program)
                for name, value, _, _ in fields[position : position + consumed]:
                    uidl = uidl or _uidl_in(name, value)
                position += consumed
                break
        else:
            break
    end = fields[position - 1][3] if position else 0
    return Trace(tuple(programs), end, uidl)


def _match_block(
    fetcher: Fetcher, fields: list[tuple[bytes, bytes, int, int]], position: int
) -> int:
    """How many fields from ``position`` are ``fetcher``'s block (0: it is not there)."""
    n = position
    for spec in fetcher.fields:
        here = fields[n] if n < len(fields) else None
        if (
            here is not None
            and here[0] == spec.name
            and (spec.value is None or spec.value.search(here[1]))
        ):
            n += 1
        elif spec.required:
            return 0
    return n - position


def _uidl_in(name: bytes, value: bytes) -> str | None:
    if name == b"x-uidl":
        return value.decode("ascii", "replace").strip() or None
    if name == b"received":
        match = _GETMAIL_MSGID.search(value)
        if match is not None and b"getmail" in value.lower():
            return match.group(1).decode("ascii", "replace").rstrip(";")
    return None


# --- the normalised message -------------------------------------------------------------


def _lf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def _split(lf: bytes) -> tuple[bytes, bytes]:
    """Header (with its last line break) and body of an LF message."""
    if lf.startswith(b"\n"):
        return b"", lf[1:]
    end = lf.find(b"\n\n")
    if end < 0:
        return lf if lf.endswith(b"\n") else lf + b"\n", b""
    return lf[: end + 1], lf[end + 2 :]


def normalise(data: bytes) -> bytes:
    """The message as identity sees it: what fetchers added and servers change left out.

    Line endings become LF; the fetchers' blocks on top of the header go; raw 8-bit
    header bytes become ``X`` (Cyrus munge8bit does that, so both sides agree); trailing
    blanks of every line and line breaks at the very end go; mbox ``>From`` quoting is
    undone. Two messages with the same normalised form are the same message.
    """
    return _normalise_lf(_lf(data))[0]


def _has_blanks(lf: bytes) -> bool:
    # A plain search first: the regexes cost far more than the bytes they rarely change.
    return b" \n" in lf or b"\t\n" in lf or lf.endswith((b" ", b"\t"))


def _normalise_lf(lf: bytes) -> tuple[bytes, int]:
    """:func:`normalise` of an LF message, and how many trailing blanks it dropped."""
    blanks = _has_blanks(lf)
    head, body = _split(lf)
    head = head[find_trace(head).length :]
    head = _EIGHT_BIT.sub(b"X", head)
    dropped = 0
    if blanks:
        size = len(head) + len(body)
        head, body = _TRAILING_BLANKS.sub(b"", head), _TRAILING_BLANKS.sub(b"", body)
        dropped = size - len(head) - len(body)
    if b">From " in body:
        body = _FROM_QUOTING.sub(b"", body)
    return head + b"\n" + body.rstrip(b"\n"), dropped


@dataclass(frozen=True)
class Features:
    """What servers are known to change, measured on one message, to say what changed."""

    final_eol: bool
    """It ends with a line break."""
    header_8bit: int
    """Raw bytes >= 0x80 in its header."""
    trailing_blanks: int
    """Spaces and tabs at ends of lines."""


def features_of(data: bytes, blanks: int | None = None) -> Features:
    """``blanks``: the trailing blanks :func:`_normalise_lf` dropped, if known."""
    head = data[: m.start()] if (m := _HEADER_END.search(data)) else data
    if blanks is None:
        blanks = _normalise_lf(_lf(data))[1]
    return Features(data.endswith(b"\n"), len(_EIGHT_BIT.findall(head)), blanks)


def describe_change(local: Features, server: Features) -> str:
    """In words, how the server's copy differs from the local one (same normalised form)."""
    changes = []
    if local.header_8bit and server.header_8bit < local.header_8bit:
        changes.append(
            f"{local.header_8bit - server.header_8bit} raw 8-bit header bytes were replaced "
            "(Cyrus munge8bit writes X)"
        )
    if server.final_eol and not local.final_eol:
        changes.append("a final line break was added")
    elif local.final_eol and not server.final_eol:
        changes.append("the final line break was removed")
    if server.trailing_blanks != local.trailing_blanks:
        changes.append("spaces at line ends were changed")
    return "; ".join(changes) or "line endings or layout were changed"


def message_id_of(data: bytes) -> str | None:
    """The Message-ID as the server will report it (unfolded, whitespace squeezed)."""
    end = _HEADER_END.search(data)
    match = _MESSAGE_ID.search(data[: end.start()] if end else data)
    if match is None:
        return None
    value = b" ".join(match.group(1).split()).decode("utf-8", "replace")
    return value or None


@dataclass(frozen=True)
class Identity:
    """A message's identity; from :meth:`of` (CRLF bytes as uploaded)."""

    message_id: str | None
    size: int
    """Bytes as uploaded."""
    bare_size: int
    """Bytes without the fetchers' blocks: the server's original is about this size."""
    exact: str
    """SHA-256 of the bytes as uploaded."""
    bare_exact: str
    """SHA-256 of the bytes without the fetchers' blocks (the server's original, if any)."""
    digest: str
    """SHA-256 of :func:`normalise`: what decides."""
    features: Features
    trace: Trace = field(default_factory=Trace)

    @classmethod
    def of(cls, data: bytes, message_id: str | None = None) -> Identity:
        lf = _lf(data)
        head, _ = _split(lf[: m.end()] if (m := _HEADER_END.search(lf)) else lf)
        trace = find_trace(head)
        # The trace's LF length, counted back in the CRLF bytes.
        cut = trace.length + head[: trace.length].count(b"\n") if b"\r\n" in data else trace.length
        normalised, blanks = _normalise_lf(lf)
        return cls(
            message_id if message_id is not None else message_id_of(data),
            len(data),
            len(data) - cut,
            hashlib.sha256(data).hexdigest(),
            hashlib.sha256(data[cut:]).hexdigest() if cut else "",
            hashlib.sha256(normalised).hexdigest(),
            features_of(data, blanks),
            trace,
        )

    def fits(self, size: int) -> bool:
        """A server size within the known deltas of this message (as sent, or its original)."""
        slack = SIZE_SLACK + self.features.trailing_blanks
        return any(
            base - slack <= size <= base + SIZE_SLACK for base in {self.size, self.bare_size}
        )


# --- one server folder ------------------------------------------------------------------


@dataclass(slots=True)
class ServerMessage:
    uid: int
    message_id: str | None
    size: int
    flags: tuple[str, ...] = ()
    digest: str | None = None
    exact: str | None = None
    features: Features | None = None
    claimed: bool = False


class ServerIndex:
    """The messages of one server folder, for matching local messages against.

    ``select`` must make ``folder`` the client's selected folder (EXAMINE is enough)
    when bodies are fetched: the owner of the connection knows what is selected.
    """

    def __init__(
        self,
        client: imapclient.IMAPClient,
        folder: str,
        messages: Iterable[ServerMessage],
        select: Callable[[], None],
    ) -> None:
        self.client = client
        self.folder = folder
        self.select = select
        self.messages = sorted(messages, key=lambda m: m.uid)
        self._position = {m.uid: n for n, m in enumerate(self.messages)}
        self._by_id: dict[str | None, list[ServerMessage]] = {}
        for m in self.messages:
            self._by_id.setdefault(m.message_id, []).append(m)
        self.bodies_fetched = 0
        """How many full bodies were downloaded (the cost of proving identity)."""

    @classmethod
    def empty(cls, folder: str = "") -> ServerIndex:
        return cls(None, folder, (), lambda: None)  # never fetches

    @classmethod
    def read(
        cls,
        client: imapclient.IMAPClient,
        folder: str,
        select: Callable[[], None],
        *,
        flags: bool = False,
    ) -> ServerIndex:
        """Index the folder ``select`` just selected: UID, size, Message-ID (and FLAGS)."""
        select()
        items = ["RFC822.SIZE", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]
        if flags:
            items.append("FLAGS")
        found = []
        for uid, data in _fetch_all(client, items):
            if b"RFC822.SIZE" not in data:
                continue  # expunged meanwhile
            found.append(
                ServerMessage(
                    uid,
                    message_id_of(_header(data)),
                    int(data[b"RFC822.SIZE"]),
                    tuple(_text(f) for f in data.get(b"FLAGS", ())),
                )
            )
        return cls(client, folder, found, select)

    def __len__(self) -> int:
        return sum(1 for m in self.messages if not m.claimed)

    def unclaimed(self) -> list[ServerMessage]:
        return [m for m in self.messages if not m.claimed]

    # -- what a journal already explains --------------------------------------------------
    def explain(
        self, keys: Counter[tuple[str | None, int]], hashes: Counter[str] | None = None
    ) -> Counter[tuple[str | None, int]]:
        """Set aside the messages records (Message-ID, size as stored) account for; the
        records that found none.

        A record takes a message with its Message-ID (or none) of its size, or within
        :data:`SIZE_SLACK`. With ``hashes`` (exact content hashes of the records without
        Message-ID), those are matched by content instead, and not returned.
        """
        left: Counter[tuple[str | None, int]] = Counter()
        for (message_id, size), count in sorted(keys.items(), key=lambda kv: str(kv[0])):
            if message_id is None and hashes is not None:
                continue
            pool = [m for m in self._by_id.get(message_id, ()) if not m.claimed]
            pool.sort(key=lambda m: abs(m.size - size))
            for m in pool:
                if count <= 0 or abs(m.size - size) > SIZE_SLACK:
                    break
                m.claimed = True
                count -= 1
            if count > 0:
                left[(message_id, size)] = count
        nameless = [m for m in self._by_id.get(None, ()) if not m.claimed]
        if nameless and hashes:
            self.hash(nameless)
            wanted = Counter(hashes)
            for m in nameless:
                if m.exact is not None and wanted[m.exact] > 0:
                    wanted[m.exact] -= 1
                    m.claimed = True
        return left

    def keys_like(self, keys: Counter[tuple[str | None, int]]) -> Counter[tuple[str | None, int]]:
        """Every message as a (Message-ID, size) key, its size taken as that of a key in
        ``keys`` with its Message-ID within :data:`SIZE_SLACK` (what servers add)."""
        sizes: dict[str | None, list[int]] = {}
        for message_id, size in keys:
            sizes.setdefault(message_id, []).append(size)
        found: Counter[tuple[str | None, int]] = Counter()
        for m in self.messages:
            near = [s for s in sizes.get(m.message_id, ()) if abs(s - m.size) <= SIZE_SLACK]
            found[(m.message_id, min(near, key=lambda s: abs(s - m.size)) if near else m.size)] += 1
        return found

    def exact_hashes(self, sizes: set[int]) -> Counter[str]:
        """Exact content hashes of the messages without a Message-ID of these sizes (or
        within :data:`SIZE_SLACK` of one)."""
        nameless = [
            m
            for m in self._by_id.get(None, ())
            if any(abs(m.size - size) <= SIZE_SLACK for size in sizes)
        ]
        self.hash(nameless)
        return Counter(m.exact for m in nameless if m.exact)

    # -- matching ---------------------------------------------------------------------------
    def candidates(self, identity: Identity) -> list[ServerMessage]:
        """Unclaimed messages that may be this one: same Message-ID and a fitting size;
        without a Message-ID, every message without one of a fitting size."""
        pool = self._by_id.get(identity.message_id, ())
        return [m for m in pool if not m.claimed and identity.fits(m.size)]

    def claim_uid(self, uid: int) -> ServerMessage | None:
        """Claim the message with this UID (known by other means: its POP3 UIDL)."""
        position = self._position.get(uid)
        if position is None or self.messages[position].claimed:
            return None
        self.messages[position].claimed = True
        return self.messages[position]

    def find(self, identity: Identity, *, proof: bool = True) -> ServerMessage | None:
        """Claim the server's copy of this message, if it holds one.

        With ``proof`` (always for a message without Message-ID) the normalised hash
        decides; without it a Message-ID with a fitting size is taken as enough (a quick
        check, never used to decide what to upload).
        """
        pool = self.candidates(identity)
        if not pool:
            return None
        if not proof and identity.message_id is not None:
            pick = min(pool, key=lambda m: (m.size != identity.size, m.uid))
            pick.claimed = True
            return pick
        self.hash(pool)
        exact = [m for m in pool if m.exact == identity.exact]
        same = exact or [m for m in pool if m.digest == identity.digest]
        if not same:
            return None
        same[0].claimed = True
        return same[0]

    def hash(self, wanted: list[ServerMessage]) -> None:
        """Digests for ``wanted``; fetched with the unhashed messages after each (local
        stores are usually read in the server's order, so those are asked for next)."""
        missing = [m for m in wanted if m.digest is None]
        if not missing:
            return
        self.select()
        chosen: dict[int, ServerMessage] = {m.uid: m for m in missing}
        budget = sum(m.size for m in missing)
        start = self._position[missing[-1].uid] + 1
        for m in self.messages[start:]:
            if len(chosen) >= BODY_CHUNK_MESSAGES or budget >= BODY_CHUNK_BYTES:
                break
            if m.digest is None and not m.claimed:
                chosen[m.uid] = m
                budget += m.size
        for _ in fetch_bodies(self.client, [chosen[uid] for uid in sorted(chosen)]):
            self.bodies_fetched += 1
        for m in missing:
            if m.digest is None:
                m.digest = m.exact = ""  # gone meanwhile: matches nothing


def _remember_body(message: ServerMessage, body: bytes) -> None:
    normalised, blanks = _normalise_lf(_lf(body))
    message.exact = hashlib.sha256(body).hexdigest()
    message.digest = hashlib.sha256(normalised).hexdigest()
    message.features = features_of(body, blanks)


def fetch_bodies(
    client: imapclient.IMAPClient, messages: list[ServerMessage]
) -> Iterator[tuple[ServerMessage, bytes]]:
    """Full bodies of ``messages`` of the selected folder, a few MB per FETCH."""
    by_uid = {m.uid: m for m in messages}
    batch: list[int] = []
    size = 0
    for n, m in enumerate(messages):
        batch.append(m.uid)
        size += m.size
        if size >= BODY_CHUNK_BYTES or len(batch) >= BODY_CHUNK_MESSAGES or n == len(messages) - 1:
            for uid, data in client.fetch(batch, ["BODY.PEEK[]"]).items():
                body = data.get(b"BODY[]")
                if uid in by_uid and isinstance(body, bytes):
                    _remember_body(by_uid[uid], body)
                    yield by_uid[uid], body
            batch, size = [], 0


def _fetch_all(
    client: imapclient.IMAPClient, items: list[str]
) -> Iterator[tuple[int, dict[bytes, Any]]]:
    """FETCH ``items`` for every message of the selected folder, in bounded chunks."""
    uids = client.search("ALL")
    for start in range(0, len(uids), FETCH_CHUNK):
        yield from client.fetch(uids[start : start + FETCH_CHUNK], items).items()


def _header(data: dict[bytes, Any]) -> bytes:
    for key, value in data.items():
        if key.startswith(b"BODY[HEADER.FIELDS") and isinstance(value, bytes):
            return value
    return b""


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


__all__ = [
    "FETCHERS",
    "Features",
    "Fetcher",
    "Identity",
    "ServerIndex",
    "ServerMessage",
    "Trace",
    "TraceField",
    "describe_change",
    "features_of",
    "fetch_bodies",
    "find_trace",
    "message_id_of",
    "normalise",
]
