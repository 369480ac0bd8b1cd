"""Realistic generated mail for tests and the benchmark (standard library only).

Sizes follow the mix the migration benchmark asks for: about 70% of 1-8 KB,
25% of 10-80 KB and 5% of 0.1-1.5 MB (with base64 attachments). Every message
gets a unique Message-ID unless asked otherwise, a Date, and Received lines.
"""

from __future__ import annotations

import base64
import os
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

WORDS = (
    "mail",
    "meeting",
    "project",
    "invoice",
    "holiday",
    "family",
    "photo",
    "report",
    "budget",
    "garden",
    "train",
    "friday",
    "coffee",
    "thanks",
    "question",
    "answer",
    "schedule",
    "review",
    "draft",
    "final",
    "update",
    "club",
    "weekend",
    "dinner",
    "school",
    "doctor",
    "insurance",
    "flight",
    "hotel",
    "ticket",
    "birthday",
    "summer",
)


@dataclass
class GeneratedMessage:
    folder: tuple[str, ...]
    data: bytes
    date: datetime
    flags: frozenset[str] = field(default_factory=frozenset)
    message_id: str | None = None


def _text(rng: random.Random, size: int) -> bytes:
    lines = []
    total = 0
    while total < size:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 12)))
        lines.append(line)
        total += len(line) + 1
    return ("\n".join(lines) + "\n").encode()


def target_size(rng: random.Random) -> int:
    roll = rng.random()
    if roll < 0.70:
        return rng.randint(1_000, 8_000)
    if roll < 0.95:
        return rng.randint(10_000, 80_000)
    return rng.randint(100_000, 1_500_000)


def make_message(
    rng: random.Random,
    n: int,
    size: int,
    date: datetime,
    *,
    with_message_id: bool = True,
    subject: str | None = None,
) -> tuple[bytes, str | None]:
    """One RFC 5322 message of about ``size`` bytes with LF line endings."""
    mid = f"<gen-{n}-{rng.getrandbits(48):012x}@example.test>" if with_message_id else None
    headers = [
        f"Received: from mx.example.test by mail.example.test; {format_datetime(date)}",
        f"From: Sender {n % 17} <sender{n % 17}@example.test>",
        "To: Pat <pat@example.test>",
        f"Subject: {subject or ' '.join(rng.choice(WORDS) for _ in range(4))} #{n}",
        f"Date: {format_datetime(date)}",
    ]
    if mid:
        headers.append(f"Message-ID: {mid}")
    headers.append("MIME-Version: 1.0")
    if size <= 60_000:
        headers.append("Content-Type: text/plain; charset=utf-8")
        body = _text(rng, max(100, size - 400))
        return ("\n".join(headers) + "\n\n").encode() + body, mid
    boundary = f"b{n}x{rng.getrandbits(32):08x}"
    headers.append(f'Content-Type: multipart/mixed; boundary="{boundary}"')
    blob = rng.randbytes(int((size - 2_000) * 3 / 4))
    encoded = base64.encodebytes(blob)
    body = (
        f"--{boundary}\nContent-Type: text/plain; charset=utf-8\n\n".encode()
        + _text(rng, 600)
        + f'--{boundary}\nContent-Type: application/octet-stream; name="file{n}.bin"\n'
        f"Content-Transfer-Encoding: base64\n\n".encode()
        + encoded
        + f"--{boundary}--\n".encode()
    )
    return ("\n".join(headers) + "\n\n").encode() + body, mid


def generate(
    count: int,
    folders: Sequence[tuple[str, ...]] = (("INBOX",),),
    seed: int = 1,
    sizes: str = "realistic",
    without_message_id: float = 0.0,
) -> Iterator[GeneratedMessage]:
    """``count`` messages spread over ``folders``; ``sizes`` "realistic" or "small"."""
    rng = random.Random(seed)
    start = datetime(2015, 3, 1, 8, 0, tzinfo=UTC)
    for n in range(count):
        size = target_size(rng) if sizes == "realistic" else rng.randint(600, 3_000)
        date = start + timedelta(minutes=37 * n + rng.randint(0, 30))
        data, mid = make_message(
            rng, n, size, date, with_message_id=rng.random() >= without_message_id
        )
        flags = set()
        if rng.random() < 0.8:
            flags.add("\\Seen")
        if rng.random() < 0.1:
            flags.add("\\Flagged")
        if rng.random() < 0.15:
            flags.add("\\Answered")
        yield GeneratedMessage(folders[n % len(folders)], data, date, frozenset(flags), mid)


_MAILDIR_FLAGS = {
    "\\Seen": "S",
    "\\Flagged": "F",
    "\\Answered": "R",
    "\\Draft": "D",
    "$Forwarded": "P",
}


def write_maildir(
    root: Path,
    messages: Sequence[GeneratedMessage] | Iterator[GeneratedMessage],
    deleted: Sequence[int] = (),
    keep: bool = True,
) -> list[GeneratedMessage]:
    """Write Maildir++ (INBOX at the root, ``.A.B`` children); returns what was written.

    Message ``n`` lands in cur/ with its flags (``T`` too when ``n`` is in ``deleted``);
    the file name starts with the message's date, which readers use as INTERNALDATE.
    """
    written = []
    for n, msg in enumerate(messages):
        folder = root if msg.folder == ("INBOX",) else root / ("." + ".".join(msg.folder))
        for sub in ("cur", "new", "tmp"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        letters = "".join(sorted(_MAILDIR_FLAGS[f] for f in msg.flags if f in _MAILDIR_FLAGS))
        if n in deleted:
            letters = "".join(sorted(letters + "T"))
        name = f"{int(msg.date.timestamp())}.M{n}P{n}.gen,S={len(msg.data)}:2,{letters}"
        path = folder / "cur" / name
        path.write_bytes(msg.data)
        stamp = int(msg.date.timestamp())
        os.utime(path, (stamp, stamp))  # as delivered: the mtime is the delivery time
        if keep:  # the benchmark writes thousands: it keeps nothing
            written.append(msg)
    return written


def crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
