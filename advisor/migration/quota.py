"""Room on the server: how much an account can still take, and what to do when it is full.

One reader of IMAP QUOTA (RFC 9208) for the migration, ``mailadvisor test`` and the
wizard; the comparison of a plan's bytes with the room; the choice of the newest
messages that fit when the user asks for a partial move; and the recognition of the
answers servers give when an upload does not fit ("[OVERQUOTA]" and its relatives),
which end the upload for that account at once instead of failing message by message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

import imapclient
import imapclient.exceptions

from advisor.plugins.types import ProviderLimits, ThrottleAdvice

if TYPE_CHECKING:
    from advisor.connection.account import AccountAccess

KIB = 1024
"""RFC 9208: STORAGE is counted in units of 1024 octets."""


class WhenFull(StrEnum):
    """What ``migrate`` does when the plan does not fit into the room left."""

    STOP = "stop"
    """Upload nothing and say how much does not fit (the default)."""
    NEWEST_FIRST = "newest-first"
    """Upload the newest messages that fit; the rest waits for the next run."""


@dataclass(frozen=True)
class Room:
    """An account's storage as the server (or the provider) tells it."""

    used_bytes: int | None
    limit_bytes: int | None
    origin: str
    """Where the numbers come from, in plain words (the quota root, or the provider)."""
    authoritative: bool = True
    """The server's own quota (it will refuse what does not fit); False for a figure the
    provider publishes, which may not be this account's (a paid plan holds more): that
    one only warns, it never stops a run."""

    @property
    def free_bytes(self) -> int | None:
        if self.limit_bytes is None or self.used_bytes is None:
            return None
        return max(0, self.limit_bytes - self.used_bytes)


@dataclass
class QuotaCheck:
    """The plan's bytes against the room: does it fit, and by how much not.

    Built by :func:`weigh`; every value is a plain field, so ``--json`` carries them.
    """

    planned_bytes: int
    planned_messages: int
    room: Room | None
    fits: bool | None
    """True or False when the room is known; None when it is not."""
    blocks: bool
    """The server's own quota says the plan does not fit: a run stops before uploading
    unless a partial move was chosen."""
    shortfall_bytes: int
    fitting_messages: int
    """The newest messages that fit into the free room (all of them when it fits)."""
    fitting_bytes: int
    summary: str
    """One plain sentence for the plan and the report."""
    advice: str = ""
    """What the user can do when it does not fit."""


def weigh(
    candidates: Sequence[tuple[float, int, str]], room: Room | None, at_most: int | None = None
) -> QuotaCheck:
    """Compare the messages to upload, (received timestamp, size, key), with ``room``.

    ``at_most``: instead of the messages, a bound known to be no smaller (the store's
    bytes on disk, when that alone shows it fits and measuring is not worth a pass).
    """
    planned = sum(size for _when, size, _key in candidates) if at_most is None else at_most
    count = len(candidates)
    need = (
        f"{fmt_bytes(planned)} to upload ({count:,} messages)"
        if at_most is None
        else f"at most {fmt_bytes(planned)} to upload"
    )
    fits: bool | None = None
    shortfall = 0
    fitting, fitting_bytes = count, planned
    if room is None:
        summary = f"{need}; the server does not say how much room the account has"
    elif room.free_bytes is None:
        limit = room.limit_bytes or 0
        if planned > limit:
            fits, shortfall = False, planned - limit
            summary = (
                f"{need}, more than the whole account holds ({fmt_bytes(limit)}, "
                f"{room.origin}): it cannot all fit"
            )
        else:
            summary = (
                f"{need}; the account holds {fmt_bytes(limit)} ({room.origin}), "
                "how much of it is used is unknown"
            )
    else:
        assert room.used_bytes is not None and room.limit_bytes is not None
        free = room.free_bytes
        state = (
            f"{fmt_bytes(room.used_bytes)} of {fmt_bytes(room.limit_bytes)} used, "
            f"{fmt_bytes(free)} free ({room.origin})"
        )
        fits = planned <= free
        if fits:
            summary = f"{need}; it fits: {state}"
        else:
            shortfall = planned - free
            keys, fitting_bytes = newest_that_fit(candidates, free)
            fitting = len(keys)
            summary = f"{need}; it does not fit: {state}, {fmt_bytes(shortfall)} too much"
    blocks = fits is False and room is not None and room.authoritative
    advice = ""
    if fits is False:
        advice = (
            "free space in the account (empty Trash and Spam, delete large old mail), buy "
            "more storage, or move part of it: --when-full newest-first (or when_full = "
            f'"newest-first" in the profile) uploads the newest {fitting:,} messages '
            f"({fmt_bytes(fitting_bytes)}) that fit and leaves the rest in the source for a "
            "later run"
        )
    return QuotaCheck(
        planned, count, room, fits, blocks, shortfall, fitting, fitting_bytes, summary, advice
    )


def read_room(
    client: imapclient.IMAPClient,
    capabilities: Iterable[str],
    limits: ProviderLimits | None = None,
    provider_name: str = "",
    mailbox: str = "INBOX",
) -> Room | None:
    """The storage of the quota root holding ``mailbox``; else what the provider publishes.

    None when neither knows. A failing GETQUOTAROOT is not an error: the room is then
    unknown, as on a server without QUOTA.
    """
    if "QUOTA" in {c.upper() for c in capabilities}:
        try:
            _roots, quotas = client.get_quota_root(mailbox)
        except (OSError, imapclient.exceptions.IMAPClientError):
            quotas = []
        for q in quotas:
            if str(q.resource).upper() == "STORAGE" and int(q.limit) > 0:
                root = str(q.quota_root) or "the account"
                return Room(int(q.usage) * KIB, int(q.limit) * KIB, f"the server's quota {root!r}")
    if limits is not None and limits.mailbox_bytes:
        who = provider_name or "the provider"
        return Room(None, limits.mailbox_bytes, f"what {who} publishes", authoritative=False)
    return None


def measure_quota(access: AccountAccess) -> tuple[int, int] | None:
    """(used, limit) in bytes of the account's storage (IMAP GETQUOTAROOT), or None.

    None when the server has no QUOTA capability, reports no storage limit, or the
    question fails: an unknown quota only means it is not weighed.
    """
    try:
        client = access.open()
    except (OSError, imapclient.exceptions.IMAPClientError):
        return None
    try:
        caps = [c.decode("ascii", "replace") for c in client.capabilities()]
        room = read_room(client, caps)
    except (OSError, imapclient.exceptions.IMAPClientError):
        return None
    finally:
        try:
            client.logout()
        except Exception:  # already broken; the answer matters more than a clean goodbye
            client.shutdown()
    if room is None or room.used_bytes is None or room.limit_bytes is None:
        return None
    return room.used_bytes, room.limit_bytes


def newest_that_fit(
    candidates: Sequence[tuple[float, int, str]], free_bytes: int
) -> tuple[set[str], int]:
    """Keys of the newest messages whose sizes add up to at most ``free_bytes``.

    ``candidates`` are (received timestamp, size, key). Newest first; a message too big
    for what is left is passed over so smaller older ones may still fit. Returns the
    keys and their bytes.
    """
    chosen: set[str] = set()
    used = 0
    for _when, size, key in sorted(candidates, key=lambda c: (-c[0], c[2])):
        if used + size <= free_bytes:
            chosen.add(key)
            used += size
    return chosen, used


# RFC 5530 [OVERQUOTA]; Microsoft's and hosting servers' plain words for a full mailbox.
_FULL = re.compile(
    r"\[OVERQUOTA\]|mailbox (is )?full|quota exceeded|over quota|exceeds? (the )?quota|"
    r"insufficient (storage|space)",
    re.I,
)


@dataclass(frozen=True)
class StorageFull(ThrottleAdvice):
    """The server refused an upload for lack of room: stop uploading to this account."""


def storage_full(response: str) -> StorageFull | None:
    """Advice to stop when ``response`` says the account has no room left."""
    if not _FULL.search(response):
        return None
    return StorageFull(
        None,
        message=(
            "the account is full: the server refused an upload for lack of room "
            f"({response.strip()[:200]}); free space or raise the quota, then run again: "
            "it continues where it stopped"
        ),
    )


def fmt_bytes(n: int) -> str:
    value = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"  # unreachable; keeps type checkers content
