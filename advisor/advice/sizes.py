"""Sizes in bytes, read from what people type and written for people to read.

Our own small parser and formatter (decimal units, as disks and providers count),
so the advice and the profile need nothing from a rendering library.
"""

from __future__ import annotations

import re
from typing import Final

_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgtp]?)(i?)(b?)\s*$", re.IGNORECASE)
_POWERS: Final = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5}


def parse_size(text: str) -> int:
    """Bytes in a size like "4GB", "500 MB", "1.5 GiB", "2 TB" or "1048576".

    Units without an "i" are decimal (1 GB = 1000³ bytes, as disks and providers
    count); with an "i" they are binary (1 GiB = 1024³ bytes). Raises
    :class:`ValueError` with a plain message for anything else.
    """
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f'expected a size like "4GB", "500 MB" or "1.5 GiB", got {text!r}')
    number, prefix, binary, _unit = match.groups()
    if binary and not prefix:
        raise ValueError(f'expected a size like "4GB", "500 MB" or "1.5 GiB", got {text!r}')
    base = 1024 if binary else 1000
    return round(float(number) * float(base ** _POWERS[prefix.lower()]))


_DECIMAL_UNITS: Final = ("kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


def format_size(size: int) -> str:
    """A byte count for people: "4.0 GB" (decimal units, as disks are sold)."""
    if size == 1:
        return "1 byte"
    if size < 1000:
        return f"{size:,} bytes"
    for power, suffix in enumerate(_DECIMAL_UNITS, 2):  # noqa: B007
        unit = 1000**power
        if size < unit:
            break
    return f"{1000 * size / unit:,.1f} {suffix}"
