"""Gmail labels (X-GM-EXT-1): which label a server folder shows, and how a label is written.

On Gmail a folder is a view of one label: APPEND into a folder applies its label, and
``UID STORE <uid> +X-GM-LABELS (<label>)`` adds another folder's label to a stored
message. User labels are the folder names, as astrings in modified UTF-7 like mailbox
names. The special folders are system labels with names of their own (``\\Inbox``,
``\\Sent``, ``\\Draft``...), found by the folder's special-use attribute, never by its
localised name; All Mail is every message and no label.
"""

from __future__ import annotations

from collections.abc import Iterable

from imapclient.imap_utf7 import decode as utf7_decode

from advisor.upload import quote_mailbox

CAPABILITY = "X-GM-EXT-1"
INBOX_LABEL = "\\Inbox"
ATTRIBUTE_LABELS = {
    "\\sent": "\\Sent",
    "\\drafts": "\\Draft",
    "\\flagged": "\\Starred",
    "\\important": "\\Important",
    "\\trash": "\\Trash",
    "\\junk": "\\Spam",
}
"""Special-use attribute (lower case) -> the system label its folder shows."""
SYSTEM_LABELS = frozenset({INBOX_LABEL, *ATTRIBUTE_LABELS.values()})
NOT_SHARED = frozenset({"\\Trash", "\\Spam"})
"""Labels a kept message must never get: Gmail hides it from every other label and
deletes it after 30 days. A message there is uploaded as its own copy."""
_CANONICAL = {label.casefold(): label for label in SYSTEM_LABELS}


def label_for(name: str, attributes: Iterable[str] = ()) -> str | None:
    """The label the server folder ``name`` (with its LIST attributes) shows.

    None for a folder that is no single label: All Mail (``\\All``), or a folder that
    cannot hold messages.
    """
    lowered = {a.lower() for a in attributes}
    if "\\all" in lowered or "\\noselect" in lowered or "\\nonexistent" in lowered:
        return None
    if name.upper() == "INBOX":
        return INBOX_LABEL
    for attribute in sorted(lowered):
        if attribute in ATTRIBUTE_LABELS:
            return ATTRIBUTE_LABELS[attribute]
    return name


def shareable(label: str | None) -> bool:
    """Whether a message may carry ``label`` besides others (and so be stored only once).

    Not Trash and Spam (see :data:`NOT_SHARED`), and not a user folder whose name starts
    with a backslash: Gmail would read it as a system label.
    """
    if label is None or label in NOT_SHARED:
        return False
    return label in SYSTEM_LABELS or not label.startswith("\\")


def wire(label: str, *, utf8: bool = False) -> bytes:
    """``label`` as it goes into ``+X-GM-LABELS (...)``.

    System labels go bare, as Google documents them (``\\Inbox``). Any other label is a
    quoted string in modified UTF-7, so spaces, quotes, backslashes, brackets and
    non-ASCII letters survive and nothing in a name can end the string or the command.
    """
    if label in SYSTEM_LABELS:
        return label.encode("ascii")
    return quote_mailbox(label, utf8=utf8)


def parse(raw: bytes | str | int, *, utf8: bool = False) -> str:
    """One label from a FETCH X-GM-LABELS answer, as :func:`label_for` names it.

    The parser hands labels over unquoted; a label made of digits arrives as an int.
    System labels compare without regard to case (Gmail has sent both spellings).
    """
    if isinstance(raw, int):
        return str(raw)
    data = raw if isinstance(raw, bytes) else raw.encode("utf-8")
    if data.startswith(b"\\"):
        text = data.decode("utf-8", "replace")
        return _CANONICAL.get(text.casefold(), text)
    if utf8:  # the session enabled UTF8=ACCEPT: labels come in UTF-8
        return data.decode("utf-8", "replace")
    return str(utf7_decode(data))
