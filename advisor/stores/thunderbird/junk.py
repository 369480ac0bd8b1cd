"""Thunderbird's junk classification, as IMAP keywords.

Thunderbird keeps a message's junk state in its folder's ``.msf`` row, not in the mbox:
the string column ``junkscore`` is "100" (nsIJunkMailPlugin::IS_SPAM_SCORE) for junk and
"0" (IS_HAM_SCORE) for a message the user or the filter called good; ``junkscoreorigin``
says who decided ("plugin", "user", "filter", "whitelist", "imapflag"). A message never
classified has no score. Thunderbird itself treats a score above 50 as junk (its views
compare against that), and on IMAP servers it stores the state as the keywords
``$Junk`` / ``$NotJunk`` (RFC 5788 registry), which is what the migration sets.
"""

from __future__ import annotations

JUNK = "$Junk"
NOT_JUNK = "$NotJunk"
JUNK_COLUMNS = ("junkscore", "junkscoreorigin")
_THRESHOLD = 50


def junk_keywords(score: bytes | str | None) -> frozenset[str]:
    """``{"$Junk"}``, ``{"$NotJunk"}`` or nothing, for a ``junkscore`` cell."""
    if score is None:
        return frozenset()
    text = score.decode("ascii", "replace") if isinstance(score, bytes) else score
    text = text.strip()
    if not text.isdigit():
        return frozenset()  # absent or unreadable: unclassified
    return frozenset({JUNK if int(text) > _THRESHOLD else NOT_JUNK})
