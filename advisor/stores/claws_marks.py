"""Claws Mail and Sylpheed message marks (``.claws_mark`` / ``.sylpheed_mark``).

Both clients keep MH folders but write an empty ``.mh_sequences``: a message's state
lives in the folder's mark file instead. Format (Claws' msgcache.c
``msgcache_read_mark`` / ``msgcache_write_flags``, Sylpheed's procmsg.c): a 32-bit
version (``MARK_VERSION`` = 2), then per message its number and its permanent flags,
two 32-bit integers, in the writing machine's byte order (little-endian on every PC;
Claws reads a big-endian file by its byte-swapped version). A message without an entry
is one the client has not seen yet: new and unread.

Flags (procmsg.h): 1<<0 new, 1<<1 unread, 1<<2 marked, 1<<3 deleted (marked for
deletion), 1<<4 replied, 1<<5 forwarded; the colour label is a number in bits 7-9
(value = bit 7 + 2*bit 8 + 4*bit 9), to which Claws Mail 3.x adds bit 6 as the fourth
bit (+8) for its 15 labels; Claws also has 1<<13 spam. Claws reads ``.claws_mark`` and
falls back to ``.sylpheed_mark`` (its old name); Sylpheed only has ``.sylpheed_mark``
with 7 labels, so bit 6 of that file is not read.

IMAP has no colour labels: each becomes a keyword named after the client's default
label name (colorlabel.c), spaces removed:

====  ===========  ====  ===========  ====  ===========
1     Orange       6     Green        11    DarkPink
2     Red          7     Brown        12    SteelBlue
3     Pink         8     Grey         13    Gold
4     SkyBlue      9     LightBrown   14    BrightGreen
5     Blue         10    DarkRed      15    Magenta
====  ===========  ====  ===========  ====  ===========

Users who renamed their labels in Claws get these default names.

Claws Mail's tags (3.x/4.x) are kept per folder in ``.claws_tags`` (msgcache.c
``msgcache_write_tags``: a 32-bit ``TAGS_VERSION`` 1, then per message its number, the
ids of its tags and -1) and named in ``~/.claws-mail/tagsrc`` (tags.c: a ``max_id N``
line, then ``id<TAB>name`` lines). Claws stores tags on IMAP servers as keywords of the
same name, and so does the migration; a character an IMAP keyword cannot hold becomes
``_``. A tag whose name is unknown (no tagsrc beside the mailbox) becomes
``ClawsTag<id>`` and the folder says so.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

from advisor.stores.base import ANSWERED, FLAGGED, FORWARDED, Problem
from advisor.stores.message_files import read_bytes
from advisor.stores.thunderbird.junk import JUNK

CLAWS_MARK = ".claws_mark"
CLAWS_TAGS = ".claws_tags"
TAGS_RC = Path(".claws-mail") / "tagsrc"
TAGS_VERSION = 1
SYLPHEED_MARK = ".sylpheed_mark"
MARK_VERSION = 2

MSG_NEW = 1 << 0
MSG_UNREAD = 1 << 1
MSG_MARKED = 1 << 2
MSG_DELETED = 1 << 3
MSG_REPLIED = 1 << 4
MSG_FORWARDED = 1 << 5
MSG_SPAM = 1 << 13
LABEL_KEYWORDS = (
    "Orange", "Red", "Pink", "SkyBlue", "Blue", "Green", "Brown", "Grey",
    "LightBrown", "DarkRed", "DarkPink", "SteelBlue", "Gold", "BrightGreen", "Magenta",
)  # fmt: skip


@dataclass(frozen=True)
class Mark:
    """One message's state as the client recorded it."""

    seen: bool
    flags: frozenset[str]
    """IMAP flags other than \\Seen, and keywords (colour label, $Junk)."""
    deleted: bool


def color_label(perm_flags: int, claws: bool) -> int:
    """The colour label number (0 for none) of a message's flags."""
    value = (perm_flags >> 7) & 7
    if claws and perm_flags & (1 << 6):
        value |= 8
    return value


def mark_of(perm_flags: int, claws: bool) -> Mark:
    flags: set[str] = set()
    if perm_flags & MSG_MARKED:
        flags.add(FLAGGED)
    if perm_flags & MSG_REPLIED:
        flags.add(ANSWERED)
    if perm_flags & MSG_FORWARDED:
        flags.add(FORWARDED)
    if claws and perm_flags & MSG_SPAM:
        flags.add(JUNK)
    label = color_label(perm_flags, claws)
    if label:
        flags.add(LABEL_KEYWORDS[label - 1])
    seen = not perm_flags & (MSG_NEW | MSG_UNREAD)
    return Mark(seen, frozenset(flags), bool(perm_flags & MSG_DELETED))


def read_marks(directory: Path) -> tuple[dict[int, Mark] | None, list[Problem]]:
    """The marks of an MH folder, by message number; None when it has no mark file."""
    for name, claws in ((CLAWS_MARK, True), (SYLPHEED_MARK, False)):
        try:
            data = read_bytes(directory / name)
        except FileNotFoundError:
            continue
        except OSError as exc:
            why = f"{directory / name}: {exc.strerror or exc}; flags unknown"
            return None, [Problem("bad-flags", why)]
        return parse_marks(data, claws, directory / name)
    return None, []


def parse_marks(
    data: bytes, claws: bool, where: Path
) -> tuple[dict[int, Mark] | None, list[Problem]]:
    if len(data) < 4:
        return None, [Problem("bad-flags", f"{where}: too short for a mark file; flags unknown")]
    for order in ("<", ">"):
        if struct.unpack_from(order + "I", data)[0] == MARK_VERSION:
            break
    else:
        version = struct.unpack_from("<I", data)[0]
        why = f"{where}: mark file version {version} is not {MARK_VERSION}; flags unknown"
        return None, [Problem("bad-flags", why)]
    problems = []
    end = 4 + (len(data) - 4) // 8 * 8
    if end != len(data):  # the client stops at a short record too
        problems.append(Problem("bad-flags", f"{where}: ends inside a record; its tail ignored"))
    marks: dict[int, Mark] = {}
    for number, perm in struct.iter_unpack(order + "II", data[4:end]):
        marks[number] = mark_of(perm, claws)  # a later entry wins, as in the client
    return marks, problems


_NOT_IN_ATOM = re.compile(r"[\x00-\x20\x7f-\U0010ffff(){%*\"\\\]]")


def tag_keyword(name: str) -> str:
    """A Claws tag's name as an IMAP keyword (what Claws itself stores on IMAP)."""
    keyword = _NOT_IN_ATOM.sub("_", name.strip())
    return keyword.lstrip("\\") or "_"


def read_tag_names(mailbox: Path) -> dict[int, str] | None:
    """Tag names by id from ``tagsrc`` in ``.claws-mail`` beside the mailbox directory
    (``~/Mail`` -> ``~/.claws-mail/tagsrc``), None when there is none."""
    try:
        text = read_bytes(mailbox.parent / TAGS_RC).decode("utf-8", "replace")
    except OSError:
        return None
    names: dict[int, str] = {}
    for line in text.splitlines()[1:]:  # the first line is "max_id N"
        number, sep, name = line.partition("\t")
        if sep and number.strip().isdigit() and name.strip():
            names[int(number)] = name.strip()
    return names


def read_tags(
    directory: Path, names: dict[int, str] | None
) -> tuple[dict[int, frozenset[str]], list[Problem]]:
    """The tags (as keywords) of an MH folder's messages, by number."""
    try:
        data = read_bytes(directory / CLAWS_TAGS)
    except FileNotFoundError:
        return {}, []
    except OSError as exc:
        return {}, [Problem("bad-flags", f"{directory / CLAWS_TAGS}: {exc.strerror or exc}")]
    where = directory / CLAWS_TAGS
    if len(data) < 4 or len(data) % 4:
        return {}, [Problem("bad-flags", f"{where}: not a tags file; tags unknown")]
    for order in ("<", ">"):
        if struct.unpack_from(order + "I", data)[0] == TAGS_VERSION:
            break
    else:
        return {}, [Problem("bad-flags", f"{where}: unknown tags file version; tags unknown")]
    values = [v for (v,) in struct.iter_unpack(order + "i", data[4:])]
    tags: dict[int, frozenset[str]] = {}
    unnamed: set[int] = set()
    i = 0
    while i < len(values):
        number, i = values[i], i + 1
        ids = []
        while i < len(values) and values[i] > 0:
            ids.append(values[i])
            i += 1
        i += 1  # the -1 that ends the list
        keywords = set()
        for tag in ids:
            name = (names or {}).get(tag)
            if name is None:
                unnamed.add(tag)
                keywords.add(f"ClawsTag{tag}")
            else:
                keywords.add(tag_keyword(name))
        tags[number & 0xFFFFFFFF] = frozenset(keywords)
    problems = []
    if unnamed:
        why = "no tagsrc beside the mailbox" if names is None else "not in tagsrc"
        problems.append(
            Problem(
                "bad-flags",
                f"{where}: tag ids {sorted(unnamed)} have no name ({why}); kept as ClawsTag<id>",
            )
        )
    return tags, problems
