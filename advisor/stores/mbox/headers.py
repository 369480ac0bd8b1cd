"""What a message's own bookkeeping headers say; shared by the mbox and Thunderbird readers.

mbox writers keep flags in ``Status:`` and ``X-Status:``; Thunderbird keeps them in
``X-Mozilla-Status`` / ``-Status2`` (nsMsgMessageFlags bits) and its tags in
``X-Mozilla-Keys``, its bookkeeping, cut out of the bytes uploaded. Also here: the header
block itself, and the arrival time from Received: or Date: when the envelope has none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime

from advisor.stores.base import ANSWERED, DRAFT, FLAGGED, FORWARDED, SEEN, Problem

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
MOZILLA_FIELD = re.compile(
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
    for match in MOZILLA_FIELD.finditer(block):
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
