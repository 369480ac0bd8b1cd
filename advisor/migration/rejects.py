"""The "not migrated" mbox: the exact bytes of every message a run could not upload.

Each message is appended the moment it fails, so nothing is held in memory. The
file is a plain mboxrd mailbox (``From`` lines with the message's date, lines
matching ``>*From `` quoted with one more ``>``, LF line endings), which any mail
program opens; the file is created private (0600) and only when there is something
to write.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from email.header import decode_header, make_header
from pathlib import Path
from types import TracebackType

from advisor.platform_compat import make_private_fd, open_private

_FROM_LINE = re.compile(rb"^(>*From )", re.M)
_SUBJECT = re.compile(rb"^subject:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.I | re.M)
_HEADER_END = re.compile(rb"\r?\n\r?\n")
SUBJECT_CHARS = 80


def subject_of(data: bytes, limit: int = SUBJECT_CHARS) -> str:
    """The decoded Subject header, unfolded and shortened to ``limit`` characters."""
    end = _HEADER_END.search(data)
    match = _SUBJECT.search(data[: end.start()] if end else data)
    if match is None:
        return ""
    raw = " ".join(match.group(1).decode("utf-8", "replace").split())
    try:
        text = str(make_header(decode_header(raw)))
    except (ValueError, LookupError, UnicodeError):  # broken encoded-words: show them raw
        text = raw
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def mboxrd_entry(data: bytes, date: datetime | None) -> bytes:
    """One mbox entry: ``From`` line, the message with LF endings and mboxrd quoting."""
    body = data.replace(b"\r\n", b"\n")
    body = _FROM_LINE.sub(rb">\1", body)
    if not body.endswith(b"\n"):
        body += b"\n"
    when = date or datetime.now(UTC)
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    # asctime form, as mbox(5) wants it: "Thu Jan  1 00:00:00 2024".
    stamp = when.strftime("%a %b ") + f"{when.day:2d}" + when.strftime(" %H:%M:%S %Y")
    return b"From MAILER-DAEMON " + stamp.encode("ascii") + b"\n" + body + b"\n"


class NotMigratedMbox:
    """Appends failed messages to ``path``; created (0600, replacing an old one) on first use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._fd: int | None = None

    def add(self, data: bytes, date: datetime | None) -> None:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # One file per run: a stale file under this name is replaced, never appended to.
            self._fd = open_private(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            make_private_fd(self._fd)
        entry = memoryview(mboxrd_entry(data, date))
        while entry:
            entry = entry[os.write(self._fd, entry) :]
        self.count += 1

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> NotMigratedMbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
