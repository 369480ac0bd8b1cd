"""What a POP3 program remembers having downloaded, and the server's own POP3 UIDLs.

A program that leaves mail on the server keeps the UIDL of every message it took,
so it never takes one twice:

* Thunderbird: ``popstate.dat`` in the account's mail directory (``*HOST USER`` then
  ``k UIDL TIME`` lines; ``d``, ``b``, ``f`` for to-delete, too-big and fetch-later);
  each message also carries its UIDL in ``X-UIDL``;
* getmail6: ``oldmail-HOST-PORT-USER`` in its getmail directory (``UIDL\\0TIME`` lines);
  each message carries it as ``msgid:`` in getmail's Received line;
* mpop: its ``uidls`` file (`` COUNT HOST USER`` then one UIDL per line);
* fetchmail: ``.fetchids`` (``USER@HOST UIDL`` lines).

On the same account these say which of the server's INBOX messages the program had
downloaded: one whose UIDL is on the server but whose message is in no local folder
was deleted locally (POP3 left it on the server). The server's POP3 maildrop is its
INBOX in UID order (Dovecot, Cyrus, Courier); :func:`map_to_imap` trusts that only when
the POP3 sizes equal the IMAP sizes message for message.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

MAX_STATE_BYTES = 16 << 20


@dataclass
class Pop3State:
    """The UIDLs one program downloaded from one POP3 account."""

    program: str
    host: str
    user: str
    port: int | None = None
    uidls: set[str] = field(default_factory=set)


def _read(path: Path) -> str | None:
    try:
        with open(path, "rb") as stream:
            return stream.read(MAX_STATE_BYTES).decode("utf-8", "replace")
    except OSError:
        return None


def thunderbird_state(path: Path) -> list[Pop3State]:
    """A Thunderbird ``popstate.dat``."""
    text = _read(path)
    states: list[Pop3State] = []
    for line in (text or "").splitlines():
        if line.startswith("*"):
            host, _, user = line[1:].strip().partition(" ")
            states.append(Pop3State("Thunderbird", host, user.strip()))
        elif states and line[:2] in ("k ", "d ", "b ", "f "):
            parts = line.split()
            if len(parts) >= 2:
                states[-1].uidls.add(parts[1])
    return states


def getmail_state(path: Path) -> Pop3State | None:
    """A getmail ``oldmail-HOST-PORT-USER`` file."""
    parts = path.name[len("oldmail-") :].split("-", 2)
    if not path.name.startswith("oldmail-") or len(parts) != 3 or not parts[1].isdigit():
        return None
    text = _read(path)
    if text is None:
        return None
    uidls = {line.split("\0", 1)[0] for line in text.splitlines() if line.strip()}
    return Pop3State("getmail", parts[0], parts[2], int(parts[1]), uidls)


def mpop_state(path: Path) -> list[Pop3State]:
    """An mpop ``uidls`` file."""
    states: list[Pop3State] = []
    for line in (_read(path) or "").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if line.startswith(" "):
            parts = line.split()
            if len(parts) == 3:
                states.append(Pop3State("mpop", parts[1], parts[2]))
        elif states:
            states[-1].uidls.add(line.strip())
    return states


def fetchmail_state(path: Path) -> list[Pop3State]:
    """A fetchmail ``.fetchids`` file."""
    by_account: dict[str, Pop3State] = {}
    for line in (_read(path) or "").splitlines():
        who, _, uidl = line.strip().partition(" ")
        user, _, host = who.rpartition("@")
        if user and host and uidl:
            state = by_account.setdefault(who, Pop3State("fetchmail", host, user))
            state.uidls.add(uidl.split()[0])
    return list(by_account.values())


def states_in(places: Iterable[Path]) -> list[Pop3State]:
    """Every program state file directly in ``places``."""
    found: list[Pop3State] = []
    for place in places:
        with contextlib.suppress(OSError):
            for entry in sorted(place.iterdir()):
                name = entry.name
                if name == "popstate.dat":
                    found.extend(thunderbird_state(entry))
                elif name.startswith("oldmail-"):
                    if (state := getmail_state(entry)) is not None:
                        found.append(state)
                elif name in ("uidls", ".mpop_uidls"):
                    found.extend(mpop_state(entry))
                elif name in (".fetchids", "fetchids"):
                    found.extend(fetchmail_state(entry))
    return found


def map_to_imap(pop3: list[tuple[str, int]], imap: list[tuple[int, int]]) -> dict[str, int] | None:
    """UIDL -> IMAP UID, from the POP3 listing (UIDL, size) and INBOX (UID, size), both in
    order; None unless the sizes agree one for one (then the maildrop is INBOX)."""
    if len(pop3) != len(imap) or any(p[1] != i[1] for p, i in zip(pop3, imap, strict=True)):
        return None
    return {uidl: uid for (uidl, _), (uid, _) in zip(pop3, imap, strict=True)}
