"""The date on an mbox ``From_`` line: when the writer says it stored the message.

asctime form (``From sender Tue Jan  2 13:45:00 2024``), optionally with a numeric zone or
one of RFC 5322's zone names before or after the year. The scanner uses it to tell
separators from body lines; the readers use it as the received date.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

# An envelope date in asctime form, optionally with a zone before or after the year.
_ENVELOPE_DATE = re.compile(
    rb"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),?\s+"
    rb"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\s+"
    rb"(\d{1,2})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s+"
    rb"(?:([A-Za-z]{1,5}|[+-]\d{4})\s+)?"
    rb"(\d{4})"
    rb"(?:\s+([+-]\d{4}|[A-Za-z]{1,5}))?\s*$"
)
_ASCTIME_TAIL = re.compile(
    rb"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) "
    rb"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    rb"([ \d]\d) (\d\d):(\d\d):(\d\d) (\d{4})\Z"
)
_MONTHS = {
    m: i + 1 for i, m in enumerate(b"Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split())
}
_UTC_NAMES = {b"UT", b"UTC", b"GMT", b"Z"}
# Zones of RFC 5322 section 4.3 (the only names with a defined offset).
_NAMED_ZONES = {b"EST": -5, b"EDT": -4, b"CST": -6, b"CDT": -5}
_NAMED_ZONES |= {b"MST": -7, b"MDT": -6, b"PST": -8, b"PDT": -7}


def parse_envelope_date(envelope: bytes) -> datetime | None:
    """The date of a ``From_`` line, or None when it has none or it is invalid.

    asctime dates carry no zone: the result is naive (local time of the writer;
    Thunderbird writes ``From - Tue Jan 02 13:45:00 2024`` in local time). A
    numeric zone, or UT/UTC/GMT or one of RFC 5322's US zone names, gives an
    aware datetime.
    """
    fast = _ASCTIME_TAIL.match(envelope, max(0, len(envelope) - 24))
    if fast is not None:  # the usual case, checked first because it is cheap
        mon, day, hour, minute, second, year = fast.groups()
        try:
            return datetime(int(year), _MONTHS[mon], int(day), int(hour), int(minute), int(second))
        except ValueError:
            return None
    match = _ENVELOPE_DATE.search(envelope)
    if match is None:
        return None
    mon, day, hour, minute, second, zone1, year, zone2 = match.groups()
    try:
        naive = datetime(
            int(year), _MONTHS[mon], int(day), int(hour), int(minute), int(second or 0)
        )
    except ValueError:
        return None
    zone = zone2 or zone1
    if zone is None:
        return naive
    tz = _zone(zone)
    return naive if tz is None else naive.replace(tzinfo=tz)


def _zone(zone: bytes) -> timezone | None:
    if zone[:1] in (b"+", b"-"):
        sign = -1 if zone[:1] == b"-" else 1
        hours, minutes = int(zone[1:3]), int(zone[3:5])
        if hours > 14 or minutes > 59:
            return None
        return timezone(sign * timedelta(hours=hours, minutes=minutes))
    upper = zone.upper()
    if upper in _UTC_NAMES:
        return UTC
    if upper in _NAMED_ZONES:
        return timezone(timedelta(hours=_NAMED_ZONES[upper]))
    return None
