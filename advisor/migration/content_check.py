"""The closing check's look at content: did the server store what was sent?

Message-ID and size say a message is there; only its bytes say whether the server
changed it (Cyrus' munge8bit turns raw 8-bit header bytes into ``X`` and keeps the
size). A migration keeps the identity (:class:`advisor.migration.server_index.Identity`, no
bytes) of a sample of its uploads: every one servers are known to change (8-bit
header bytes, no final line break) and a few per folder; at the end it fetches those
and names each message the server altered.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import imapclient
import imapclient.exceptions

from advisor.migration.server_index import Identity, ServerMessage, describe_change, fetch_bodies

SAMPLE_PER_FOLDER = 10
SAMPLE_MAX = 500
"""Identities kept at most (a few hundred bytes each)."""

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_EIGHT_BIT = re.compile(rb"[\x80-\xff]")


@dataclass
class Altered:
    """A message the server stored with other bytes than it was sent: still the same
    message (or not, as ``change`` says), but changed."""

    folder: str
    """The local folder."""
    target: str
    source_id: str
    subject: str
    change: str
    """What changed, in words."""


@dataclass
class _Sample:
    key: str
    folder: str
    target: str
    source_id: str
    subject: str
    identity: Identity


def risky(data: bytes) -> bool:
    """Bytes that servers are known to change: no final line break, raw 8-bit headers."""
    end = _HEADER_END.search(data)
    return (
        not data.endswith(b"\n")
        or _EIGHT_BIT.search(data, 0, end.start() if end else len(data)) is not None
    )


class ContentSample:
    """Uploads to compare with the server's copies once the run is done."""

    def __init__(self, per_folder: int = SAMPLE_PER_FOLDER, limit: int = SAMPLE_MAX) -> None:
        self.per_folder = per_folder
        self.limit = limit
        self._samples: list[_Sample] = []
        self._offered: Counter[str] = Counter()
        self._random = random.Random(0)

    def offer(
        self, key: str, folder: str, target: str, source_id: str, subject: str, data: bytes
    ) -> None:
        """One upload; kept if risky, among the first per folder, or drawn at random."""
        if len(self._samples) >= self.limit:
            return
        self._offered[target] += 1
        seen = self._offered[target]
        thinned = self._random.random() > self.per_folder / seen
        if seen > self.per_folder and thinned and not risky(data):
            return
        self._samples.append(_Sample(key, folder, target, source_id, subject, Identity.of(data)))

    def check(
        self,
        control: imapclient.IMAPClient,
        uid_of: Callable[[str], int | None],
        select: Callable[[str], None],
    ) -> tuple[int, list[Altered]]:
        """Fetch the sample (``uid_of`` a source key: its UID, if uploaded); how many were
        compared, and which the server altered."""
        by_target: dict[str, list[tuple[_Sample, int]]] = {}
        for sample in self._samples:
            uid = uid_of(sample.key)
            if uid is not None:
                by_target.setdefault(sample.target, []).append((sample, uid))
        checked, altered = 0, []
        for target, group in sorted(by_target.items()):
            try:
                select(target)
            except imapclient.exceptions.IMAPClientAbortError:
                raise
            except imapclient.exceptions.IMAPClientError:
                continue  # gone: the journal check reports it
            wanted = [
                ServerMessage(uid, s.identity.message_id, s.identity.size) for s, uid in group
            ]
            got = {m.uid: m for m, _ in fetch_bodies(control, wanted)}
            for sample, uid in group:
                server = got.get(uid)
                if server is None or server.features is None:
                    continue
                checked += 1
                if server.exact == sample.identity.exact:
                    continue
                change = (
                    describe_change(sample.identity.features, server.features)
                    if server.digest == sample.identity.digest
                    else "its content differs from what was sent"
                )
                altered.append(
                    Altered(sample.folder, target, sample.source_id, sample.subject, change)
                )
        self._samples.clear()
        return checked, altered
