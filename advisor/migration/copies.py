"""Counting copies on the server the way ``mailadvisor verify`` does.

For each message expected in a folder (by Message-ID and size), the server may hold
it fewer times (missing) or more times (extra copies) than expected. Mail not
expected at all (not from the source) is not counted. Messages without a
Message-ID share the key (None, size), so where such a key has extra copies only
identical content counts: the caller hashes the server's messages of those sizes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TypeVar

K = TypeVar("K")

IdKey = tuple[str | None, int]
"""(Message-ID, size); None for a message without a Message-ID."""


def extra_copies(expected: Counter[K], found: Counter[K]) -> Counter[K]:
    """Copies beyond the expected number, per expected key."""
    return Counter({k: found[k] - n for k, n in expected.items() if found[k] > n})


def count_extra(
    expected: Counter[IdKey],
    found: Counter[IdKey],
    expected_hashes: Callable[[], Counter[str]],
    found_hashes: Callable[[set[int]], Counter[str]],
) -> int:
    """Extra copies in one folder. ``found_hashes(sizes)``: content hashes of the
    server's messages without a Message-ID of those sizes (asked only when needed)."""
    doubled = extra_copies(expected, found)
    extra = sum(n for (message_id, _), n in doubled.items() if message_id is not None)
    sizes = {size for (message_id, size) in doubled if message_id is None}
    if sizes:
        extra += sum(extra_copies(expected_hashes(), found_hashes(sizes)).values())
    return extra
