"""The POP3-or-IMAP advice: a pure engine, no I/O.

The caller (``mailadvisor advise``, the wizard) fills an :class:`AdviceAnswers`
(what the user said, plus what it measured: the size of the mail on disk, the
free disk space, the server's quota), asks the provider plugins for their
:class:`~advisor.plugins.types.AdviceFactor` objects and server settings, and calls
:func:`advise`. The result, :class:`Advice`, holds the recommendation, how sure
it is, every factor in plain words, what to watch out for and the settings to
use.

How it decides: each answer becomes one :class:`Factor` that pushes toward IMAP,
toward POP3 or neither, with a weight from 0 to 1. The side with the larger
total wins (a tie goes to IMAP, today's usual choice). A *constraint* is not a
preference: when the provider offers no POP3, the advice is IMAP whatever the
answers say, and the advice says so. Every weight and every sentence the user
reads lives in :data:`RULES` and the small tables after it, so they can be
reviewed in one place. They are written for someone who has never heard of
IMAP or POP3.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import Any, Final

from rich.filesize import decimal as _decimal_size

from advisor.plugins.types import (
    AdviceFactor,
    Direction,
    Endpoint,
    Protocol,
    Security,
    ServerSettings,
)

# --- inputs ------------------------------------------------------------------


class Connectivity(StrEnum):
    """How often the computer is online, and on what kind of connection."""

    ALWAYS = "always"
    """Online nearly all the time, on a good connection."""
    MOSTLY = "mostly"
    """Online most of the time, sometimes not (travel, trains)."""
    RARELY = "rarely"
    """Online only now and then."""
    METERED = "metered"
    """A connection that is paid by the megabyte, slow or high-latency (mobile data, satellite)."""


@dataclass
class AdviceAnswers:
    """What the advice is based on. Every field is optional: None means "not asked / unknown".

    The wizard fills this in question by question; ``mailadvisor advise`` fills it
    from options and the ``[advice]`` table of a profile. Sizes are in bytes.
    """

    devices: int | None = None
    """How many devices (computers, phones, tablets) read this mail; webmail not counted."""
    webmail: bool | None = None
    """Whether the mail is also read in a web browser (the provider's webmail)."""
    sync_state: bool | None = None
    """Whether read/flagged state, folders and sent mail should look the same on every device."""
    connectivity: Connectivity | None = None
    backups: bool | None = None
    """Whether this computer is backed up regularly (external disk, backup service)."""
    keep_off_server: bool | None = None
    """Whether the user wants the mail off the provider's servers (privacy, retention)."""
    shared_mailbox: bool | None = None
    """Whether other people work in this mailbox too (shared or delegated mailbox)."""
    mail_size: int | None = None
    """Size of the mail kept on this computer (measured by scanning the local store)."""
    free_disk: int | None = None
    """Free space on the disk that holds the mail (measured with shutil.disk_usage)."""
    quota: int | None = None
    """The storage limit of the mail account on the server (IMAP QUOTA), if it has one."""
    quota_used: int | None = None
    """How much of that limit is already used (IMAP QUOTA)."""

    def given(self) -> list[str]:
        """Names of the answers that are known (not None), in question order."""
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]

    def merged(self, override: AdviceAnswers) -> AdviceAnswers:
        """A copy where every known answer of ``override`` replaces ours (options over profile)."""
        changes = {name: getattr(override, name) for name in override.given()}
        return replace(self, **changes)

    def problems(self) -> list[str]:
        """Why these answers cannot be used (empty when they can)."""
        found: list[str] = []
        if self.devices is not None and (
            not isinstance(self.devices, int) or isinstance(self.devices, bool) or self.devices < 1
        ):
            found.append(f"devices must be a whole number of at least 1, not {self.devices!r}")
        for name in ("webmail", "sync_state", "backups", "keep_off_server", "shared_mailbox"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, bool):
                found.append(f"{name} must be yes or no (true/false), not {value!r}")
        if self.connectivity is not None and not isinstance(self.connectivity, Connectivity):
            choices = ", ".join(c.value for c in Connectivity)
            found.append(f"connectivity must be one of {choices}, not {self.connectivity!r}")
        for name in SIZE_ANSWERS:
            value = getattr(self, name)
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or value < 0
            ):
                found.append(f"{name} must be a size in bytes (0 or more), not {value!r}")
        return found


SIZE_ANSWERS: Final = ("mail_size", "free_disk", "quota", "quota_used")
"""The answers that are sizes in bytes (usually measured, not asked)."""


@dataclass(frozen=True)
class AnswerHelp:
    """How to ask for one answer: the question and a one-line hint."""

    question: str
    hint: str


ANSWER_HELP: Final[dict[str, AnswerHelp]] = {
    "devices": AnswerHelp(
        "On how many devices do you read this mail?",
        "Count computers, phones and tablets; do not count webmail.",
    ),
    "webmail": AnswerHelp(
        "Do you also read this mail in a web browser (your provider's website)?",
        "For example mail.google.com or outlook.com in the browser.",
    ),
    "sync_state": AnswerHelp(
        "Should what you read, flag, file and send look the same on every device?",
        "Say no if you never read the same mail in two places.",
    ),
    "connectivity": AnswerHelp(
        "How is this computer connected to the internet?",
        "always (online nearly all the time), mostly, rarely, or metered (paid per megabyte, "
        "or slow).",
    ),
    "backups": AnswerHelp(
        "Do you back up this computer regularly?",
        "An external disk or a backup service that copies your files on a schedule.",
    ),
    "keep_off_server": AnswerHelp(
        "Do you want your mail removed from your provider's servers?",
        "For privacy, or because you do not want the provider to keep it for years.",
    ),
    "shared_mailbox": AnswerHelp(
        "Do other people work in this mailbox too?",
        "A shared team address, or an assistant who handles your mail.",
    ),
    "mail_size": AnswerHelp(
        "How much mail is kept on this computer?",
        'Measured by scanning your mail program\'s folders; as an option: "4GB", "500 MB".',
    ),
    "free_disk": AnswerHelp(
        "How much free space is on the disk that holds your mail?",
        "Measured on the disk that holds the mail.",
    ),
    "quota": AnswerHelp(
        "How much storage does your mail account have on the server?",
        "Measured by asking the server (IMAP QUOTA); your provider's website shows it too.",
    ),
    "quota_used": AnswerHelp(
        "How much of that storage is already used?",
        "Measured by asking the server, together with the storage limit.",
    ),
}
"""One entry per :class:`AdviceAnswers` field, in question order (the wizard asks from it)."""


# --- outputs -----------------------------------------------------------------


class Push(StrEnum):
    """Where one factor pushes the advice."""

    IMAP = "imap"
    POP3 = "pop3"
    NEITHER = "neither"
    """Known, but it does not tip the balance."""
    CONSTRAINT = "constraint"
    """Not a preference: something that must be so or must be done."""


class Confidence(StrEnum):
    """How sure the advice is, in a word."""

    CLEAR = "clear"
    LIKELY = "likely"
    CLOSE_CALL = "close call"


@dataclass(frozen=True)
class Factor:
    """One reason in the advice, in plain words."""

    name: str
    """The answer's name ("devices", "disk"...) or the plugin's factor name."""
    title: str
    """What it is about, in a few words ("your devices", "space on this disk")."""
    answer: str
    """What was known, in words ("3 devices", "yes", "4.0 GB of mail, 20.0 GB free")."""
    direction: Push
    weight: float
    """0..1, how strongly it pushes."""
    strength: str
    """The weight in a word: "strong", "moderate", "slight" or "none"."""
    reason: str
    """Why, for someone who has never heard of IMAP."""
    answers: tuple[str, ...] = ()
    """The :class:`AdviceAnswers` fields this factor is based on."""
    source: str = "your answers"
    """"your answers" or "provider <name>"."""


@dataclass(frozen=True)
class UnknownAnswer:
    """An answer that was not given, so it did not count."""

    name: str
    question: str


@dataclass(frozen=True)
class ClientSettings:
    """What to enter in the mail program for the recommended protocol."""

    protocol: Protocol
    endpoint: Endpoint | None
    """Server, port and security; None when the provider's settings are not known."""
    found_by: str | None
    """Where the endpoint came from ("plugin gmail", "guess"...)."""
    leave_copy_on_server: bool | None
    """POP3 only: keep a copy on the server after downloading. None for IMAP."""
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Advice:
    """The engine's answer. Render it; it holds no I/O and no secrets."""

    recommendation: Protocol
    confidence: float
    """0..1: 0 is a coin toss, 1 leaves no doubt (always 1 when a constraint decides)."""
    confidence_word: Confidence
    summary: str
    """Two or three sentences: what to use, what it means, and the main reason."""
    preferred: Protocol
    """What the answers alone point to, before any constraint."""
    constraint: str | None
    """Set when a constraint overrode the answers: why."""
    factors: tuple[Factor, ...]
    unknown: tuple[UnknownAnswer, ...]
    caveats: tuple[str, ...]
    steps: tuple[str, ...]
    """Things to do before the mail program works (switch POP or IMAP on...)."""
    settings: ClientSettings
    imap_total: float
    pop3_total: float
    answers: AdviceAnswers


# --- the table: every weight and every sentence ------------------------------


@dataclass(frozen=True)
class Rule:
    """One possible outcome of one answer: direction, weight and the reason in plain words.

    ``reason`` is a :meth:`str.format` template over the answers and the values
    computed from them (``{devices}``, ``{mail}``, ``{free}``, ``{room}``...).
    """

    direction: Push
    weight: float
    reason: str


RULES: Final[dict[str, Rule]] = {
    # devices and webmail
    "devices.several": Rule(
        Push.IMAP,
        1.0,
        "You read this mail on {devices} devices. IMAP keeps the mail on your provider's "
        "server and shows the same mailbox on all of them. POP3 downloads each message to "
        "whichever device asks first, so the others may never see it.",
    ),
    "devices.one": Rule(
        Push.NEITHER,
        0.0,
        "You read this mail on one device only, so POP3's main weakness (mail that lives on "
        "one device and nowhere else) does not get in your way today.",
    ),
    "webmail.yes": Rule(
        Push.IMAP,
        0.8,
        "You also read mail in the web browser. The browser shows what is on the server; "
        "with IMAP that is all your mail, in the same folders. With POP3 the mail leaves the "
        "server (or only a copy stays there), so the browser and your mail program drift apart.",
    ),
    "webmail.no": Rule(
        Push.NEITHER,
        0.0,
        "You do not use webmail, so nothing needs the mail to stay on the server for it.",
    ),
    # state that follows the user
    "sync_state.yes": Rule(
        Push.IMAP,
        1.0,
        "You want what you read, flag, file into folders and send to look the same everywhere. "
        "Only IMAP does that: it keeps those marks on the server. POP3 only downloads new "
        "messages; it never tells the server what you did with them.",
    ),
    "sync_state.no": Rule(
        Push.NEITHER,
        0.0,
        "You do not need read marks and folders to follow you between devices, so this does "
        "not decide anything.",
    ),
    # connectivity
    "connectivity.always": Rule(
        Push.IMAP,
        0.2,
        "You are nearly always online, so IMAP's need to reach the server costs you nothing.",
    ),
    "connectivity.mostly": Rule(
        Push.NEITHER,
        0.0,
        "You are online most of the time. Both work: an IMAP mail program keeps a copy to "
        "read offline and catches up when you reconnect.",
    ),
    "connectivity.rarely": Rule(
        Push.POP3,
        0.8,
        "You are rarely online. POP3 fetches all new mail in one go and then needs no "
        "connection at all. IMAP works best connected: what you do offline waits until you "
        "reconnect.",
    ),
    "connectivity.metered": Rule(
        Push.POP3,
        0.6,
        "Your connection is metered, slow or has long delays. POP3 downloads each message "
        "once and is done; IMAP keeps talking to the server to keep every device in step, "
        "which costs data and time.",
    ),
    # local disk against the mail
    "disk.short": Rule(
        Push.IMAP,
        0.7,
        "Your mail takes {mail}, but the disk has only {free} free. With POP3 every message "
        "must stay on this disk; with IMAP it lives on the server and your mail program can "
        "keep just the recent messages here.",
    ),
    "disk.tight": Rule(
        Push.IMAP,
        0.3,
        "Your mail takes {mail} and the disk has {free} free: it fits, without much room to "
        "grow. With IMAP your mail program can keep just the recent messages on this disk.",
    ),
    "disk.plenty": Rule(
        Push.NEITHER,
        0.0,
        "Your mail takes {mail} and the disk has {free} free: plenty of room either way.",
    ),
    "disk.free_only": Rule(
        Push.NEITHER,
        0.0,
        "The disk has {free} free, but the size of your mail is not known, so the two "
        "cannot be compared.",
    ),
    # the server's storage limit (quota) against the mail
    "quota.short": Rule(
        Push.POP3,
        0.9,
        "Your mail takes {mail}, but your account's storage limit on the server leaves only "
        "{room} free. IMAP keeps all mail on the server, so it would not fit. POP3 with "
        "'delete from server after download' keeps the server nearly empty.",
    ),
    "quota.tight": Rule(
        Push.POP3,
        0.3,
        "Your mail ({mail}) fits in the {room} left on the server, but only just: new mail "
        "would soon fill it, and then the server refuses new messages.",
    ),
    "quota.plenty": Rule(
        Push.NEITHER,
        0.0,
        "Your mail ({mail}) fits easily in the {room} left on the server.",
    ),
    "quota.unknown_size": Rule(
        Push.NEITHER,
        0.0,
        "The server leaves {room} free, but the size of your mail is not known, so the two "
        "cannot be compared.",
    ),
    "quota.unknown_limit": Rule(
        Push.NEITHER,
        0.0,
        "The server says {used} is in use, but not how much storage you have in all.",
    ),
    "mail_size.alone": Rule(
        Push.NEITHER,
        0.0,
        "Your mail takes {mail}. Neither the free disk space nor the server's storage limit is "
        "known, so there is nothing to compare it with.",
    ),
    # backups
    "backups.no": Rule(
        Push.IMAP,
        0.6,
        "You keep no backups. With POP3 your mail lives only on this computer, so one disk "
        "failure or theft loses all of it. With IMAP your provider holds a copy.",
    ),
    "backups.yes": Rule(
        Push.NEITHER,
        0.0,
        "You keep backups, so the mail on this computer is protected whichever you choose.",
    ),
    # keeping mail off the provider's servers
    "keep_off_server.yes": Rule(
        Push.POP3,
        0.9,
        "You want your mail off your provider's servers. Only POP3, set to delete mail from "
        "the server after downloading it, does that. IMAP by design keeps everything on the "
        "server.",
    ),
    "keep_off_server.no": Rule(
        Push.NEITHER,
        0.0,
        "You do not mind your provider keeping your mail, so this does not decide anything.",
    ),
    # shared mailboxes
    "shared_mailbox.yes": Rule(
        Push.IMAP,
        1.0,
        "Other people work in this mailbox too. POP3 sees only the inbox, and whoever "
        "downloads a message first takes it away from the others. With IMAP everyone sees "
        "the same mailbox and its folders.",
    ),
    "shared_mailbox.no": Rule(
        Push.NEITHER,
        0.0,
        "Nobody else works in this mailbox, so this does not decide anything.",
    ),
    # provider settings: constraints
    "provider.no_pop3": Rule(
        Push.CONSTRAINT,
        0.0,
        "{provider} offers no POP3 at all, only IMAP.",
    ),
    "provider.no_imap": Rule(
        Push.CONSTRAINT,
        0.0,
        "{provider} offers no IMAP at all, only POP3.",
    ),
}
"""Every factor the answers can produce. Weights: 1 is as strong as a reason gets, 0 does
not push. Constraints carry no weight: they decide by ruling a protocol out."""

TIE_GOES_TO: Final = Protocol.IMAP
"""With no reason either way: IMAP keeps a copy on the server and works on any device."""

PRIOR_WEIGHT: Final = 0.5
"""Added to the total weight when computing confidence, so one slight reason is not "clear"."""

CONFIDENCE_LEVELS: Final[tuple[tuple[float, Confidence], ...]] = (
    (0.6, Confidence.CLEAR),
    (0.25, Confidence.LIKELY),
    (0.0, Confidence.CLOSE_CALL),
)
"""Lowest confidence for each word, highest first."""

STRENGTH_WORDS: Final[tuple[tuple[float, str], ...]] = (
    (0.8, "strong"),
    (0.5, "moderate"),
    (0.0, "slight"),
)
"""A positive weight in a word, highest first; a weight of 0 is "none"."""

DISK_SHORT_BELOW: Final = 1.0
"""free disk / mail size below this: the mail does not fit on this disk."""
DISK_TIGHT_BELOW: Final = 3.0
"""...below this: it fits, with little room to grow."""
QUOTA_SHORT_BELOW: Final = 1.0
"""free server storage / mail size below this: the mail does not fit on the server."""
QUOTA_TIGHT_BELOW: Final = 1.5

FACTOR_TITLES: Final[dict[str, str]] = {
    "devices": "your devices",
    "webmail": "webmail",
    "sync_state": "the same state everywhere",
    "connectivity": "your connection",
    "disk": "space on this disk",
    "quota": "storage on the server",
    "mail_size": "the size of your mail",
    "backups": "backups",
    "keep_off_server": "mail off the provider's servers",
    "shared_mailbox": "a shared mailbox",
    "provider": "your provider",
}

CONNECTIVITY_WORDS: Final[dict[Connectivity, str]] = {
    Connectivity.ALWAYS: "always online",
    Connectivity.MOSTLY: "mostly online",
    Connectivity.RARELY: "rarely online",
    Connectivity.METERED: "metered or slow connection",
}

PROTOCOL_MEANING: Final[dict[Protocol, str]] = {
    Protocol.IMAP: (
        "IMAP keeps your mail on your provider's server and shows the same mailbox, "
        "with the same folders and read marks, on every device."
    ),
    Protocol.POP3: (
        "POP3 downloads your mail to this computer, where it then lives; the server "
        "keeps a copy only if you ask it to."
    ),
}

SUMMARY: Final[dict[str, str]] = {
    "verdict": "Use {protocol} ({word}).",
    "main_reason": "The main reason: {reason}",
    "balanced": (
        "Nothing you told me tips the balance, so {protocol} is the safer default: your "
        "provider keeps a copy and any device you add later sees all your mail."
    ),
    "constrained": "Your answers lean toward {preferred}, but this is not a choice here: {why}",
    "constrained_agrees": "It is also the only choice here: {why}",
}

CAVEATS: Final[dict[str, str]] = {
    "pop3_one_device": (
        "With POP3 and one device, one disk failure loses all your mail. Keep a backup: "
        "copy your mail program's folder (its profile) to an external disk or a backup "
        "service regularly{copy_hint}."
    ),
    "pop3_copy_hint": ", or leave a copy on the server as a safety net",
    "pop3_no_state": (
        "Leaving a copy on the server is a middle ground: your other devices and the "
        "webmail can still see new mail, but what you read, flag or file on one device "
        "does not show on the others."
    ),
    "pop3_against": (
        "You give up something with POP3: {against}. If that matters more to you than "
        "it seems here, choose IMAP."
    ),
    "imap_no_backup": (
        "IMAP is no backup either: a message deleted on one device is deleted everywhere, "
        "on the server too. Keep a backup or an export of mail you cannot lose."
    ),
    "imap_against": (
        "You give up something with IMAP: {against}. If that matters more to you than it "
        "seems here, choose POP3."
    ),
    "imap_over_quota": (
        "Your mail ({mail}) does not fit in the {room} left on the server. Keep the older "
        "mail in local folders on this computer (an archive that stays off the server) and "
        "move only recent mail, or buy more storage from your provider."
    ),
    "imap_disk": (
        "Set your mail program to keep only recent messages on this computer (Thunderbird: "
        "Account Settings, Synchronization & Storage), and delete the old POP3 copy once "
        "the move to IMAP has been checked: until then your mail is on this disk twice."
    ),
    "imap_offline": (
        "Set your mail program to keep messages for offline use, so you can read without "
        "a connection; what you do offline is sent to the server when you reconnect."
    ),
    "pop3_over_quota": (
        "The server's storage is nearly full for your mail, so set POP3 to delete mail "
        "from the server after downloading; make sure your backups run."
    ),
    "untrusted_settings": (
        "These server settings were found indirectly, outside your address's domain: "
        "check them on your provider's help pages before you type your password."
    ),
    "both_unavailable": (
        "Your provider's settings list neither POP3 nor IMAP that can be used; ask your "
        "provider how to read mail in a mail program."
    ),
}

SECURITY_WORDS: Final[dict[Security, str]] = {
    Security.TLS: (
        "Security: SSL/TLS (encrypted from the first byte); your mail program may call it "
        "'SSL/TLS' or 'SSL'."
    ),
    Security.STARTTLS: (
        "Security: STARTTLS (the connection starts plain and is encrypted before you sign in)."
    ),
    Security.NONE: (
        "Security: none. Your password and mail would travel unencrypted; use this only on a "
        "network you control."
    ),
}

LEAVE_COPY: Final[dict[str, str]] = {
    "delete_wanted": (
        "Do not leave a copy on the server: taking the mail off the server is why you chose POP3."
    ),
    "delete_quota": (
        "Do not leave a copy on the server (or only for a few days): its storage is too "
        "small for all your mail."
    ),
    "keep": (
        "Leave a copy on the server (for a few weeks at least): it is a safety net if this "
        "disk fails, and your other devices or the webmail still see new mail."
    ),
}

GIVE_UP: Final[dict[str, str]] = {
    "devices": "the same mail on all your devices",
    "webmail": "complete mail in the web browser",
    "sync_state": "read marks and folders that follow you",
    "shared_mailbox": "working in the same mailbox as others",
    "backups": "a second copy held by your provider",
    "disk": "room on this disk",
    "connectivity": "reading everything without a connection",
    "keep_off_server": "keeping your mail off your provider's servers",
    "quota": "staying within the server's storage limit",
}
"""What the user gives up when a strong factor is overruled, keyed by factor name."""

EXCLUDING_SUFFIXES: Final[dict[Protocol, tuple[str, ...]]] = {
    Protocol.POP3: ("no-pop3", "no-pop"),
    Protocol.IMAP: ("no-imap",),
}
"""A plugin's constraint factor whose name ends like this rules that protocol out
(e.g. ``icloud-no-pop3``); any other constraint is a step the user must take."""


# --- the engine --------------------------------------------------------------


def advise(
    answers: AdviceAnswers,
    *,
    provider_factors: Sequence[AdviceFactor] = (),
    settings: ServerSettings | None = None,
    provider: str | None = None,
) -> Advice:
    """Recommend POP3 or IMAP for ``answers``.

    ``provider_factors`` are what ``PluginHost.advice_factors(provider, email)``
    returned; ``settings`` what ``PluginHost.server_settings`` returned (a POP3
    or IMAP endpoint of None means the provider does not offer it); ``provider``
    is the provider's display name for the sentences. Raises :class:`ValueError`
    when an answer is out of range (see :meth:`AdviceAnswers.problems`).
    """
    problems = answers.problems()
    if problems:
        raise ValueError("; ".join(problems))
    name = provider or "Your provider"
    factors = _answer_factors(answers)
    excluded: dict[Protocol, str] = {}
    steps: list[str] = []
    for pf in provider_factors:
        factor = _plugin_factor(pf, provider)
        factors.append(factor)
        if pf.direction is Direction.CONSTRAINT:
            ruled_out = _ruled_out(pf.name)
            if ruled_out is None:
                steps.append(factor.reason)
            else:
                excluded.setdefault(ruled_out, factor.reason)
    if settings is not None and (settings.imap is None) != (settings.pop3 is None):
        # Only one protocol offered: the other is ruled out. (Both None says nothing.)
        missing = Protocol.POP3 if settings.pop3 is None else Protocol.IMAP
        if missing not in excluded:
            key = "provider.no_pop3" if missing is Protocol.POP3 else "provider.no_imap"
            factor = _factor(key, "provider", name, {"provider": name}, source="provider settings")
            factors.append(factor)
            excluded[missing] = factor.reason

    imap_total = math.fsum(f.weight for f in factors if f.direction is Push.IMAP)
    pop3_total = math.fsum(f.weight for f in factors if f.direction is Push.POP3)
    if math.isclose(imap_total, pop3_total, abs_tol=1e-9):
        preferred = TIE_GOES_TO
    else:
        preferred = Protocol.IMAP if imap_total > pop3_total else Protocol.POP3
    confidence = abs(imap_total - pop3_total) / (imap_total + pop3_total + PRIOR_WEIGHT)

    recommendation = preferred
    constraint: str | None = None
    caveats: list[str] = []
    if Protocol.IMAP in excluded and Protocol.POP3 in excluded:
        caveats.append(CAVEATS["both_unavailable"])
    elif preferred in excluded:
        recommendation = _other(preferred)
        constraint = excluded[preferred]
        confidence = 1.0
    elif _other(preferred) in excluded:
        constraint = excluded[_other(preferred)]
        confidence = 1.0
    # Rounded first, so the word always matches the number the user sees.
    confidence = round(min(1.0, max(0.0, confidence)), 3)
    word = next(w for low, w in CONFIDENCE_LEVELS if confidence >= low)

    ctx = _context(answers)
    leave_copy, leave_copy_note = _leave_copy(answers, recommendation, ctx)
    caveats.extend(_caveats(answers, recommendation, factors, leave_copy, ctx))
    if settings is not None and not settings.trusted:
        caveats.append(CAVEATS["untrusted_settings"])
    client = _client_settings(recommendation, settings, leave_copy, leave_copy_note)

    factors.sort(key=lambda f: (f.direction is not Push.CONSTRAINT, -f.weight))
    return Advice(
        recommendation=recommendation,
        confidence=confidence,
        confidence_word=word,
        summary=_summary(recommendation, preferred, word, factors, constraint),
        preferred=preferred,
        constraint=constraint,
        factors=tuple(factors),
        unknown=tuple(
            UnknownAnswer(n, ANSWER_HELP[n].question)
            for n in ANSWER_HELP
            if getattr(answers, n) is None
        ),
        caveats=tuple(caveats),
        steps=tuple(steps),
        settings=client,
        imap_total=round(imap_total, 3),
        pop3_total=round(pop3_total, 3),
        answers=answers,
    )


def _other(protocol: Protocol) -> Protocol:
    return Protocol.POP3 if protocol is Protocol.IMAP else Protocol.IMAP


def _ruled_out(factor_name: str) -> Protocol | None:
    lowered = factor_name.lower()
    for protocol, suffixes in EXCLUDING_SUFFIXES.items():
        if lowered.endswith(suffixes):
            return protocol
    return None


def strength_word(weight: float) -> str:
    """A weight (0..1) in a word: "strong", "moderate", "slight" or "none"."""
    if weight <= 0:
        return "none"
    return next(w for low, w in STRENGTH_WORDS if weight >= low)


def _factor(
    key: str,
    name: str,
    answer: str,
    ctx: dict[str, Any],
    answers: tuple[str, ...] = (),
    source: str = "your answers",
) -> Factor:
    rule = RULES[key]
    return Factor(
        name=name,
        title=FACTOR_TITLES[name],
        answer=answer,
        direction=rule.direction,
        weight=rule.weight,
        strength="must" if rule.direction is Push.CONSTRAINT else strength_word(rule.weight),
        reason=rule.reason.format(**ctx),
        answers=answers,
        source=source,
    )


def _plugin_factor(pf: AdviceFactor, provider: str | None) -> Factor:
    weight = pf.weight if math.isfinite(pf.weight) else 0.0
    weight = min(1.0, max(0.0, weight))
    direction = {
        Direction.IMAP: Push.IMAP,
        Direction.POP3: Push.POP3,
        Direction.CONSTRAINT: Push.CONSTRAINT,
    }[pf.direction]
    if direction is Push.CONSTRAINT:
        weight = 0.0  # a constraint decides by ruling out, never by weight
    return Factor(
        name=pf.name,
        title=FACTOR_TITLES["provider"],
        answer=provider or "",
        direction=direction,
        weight=weight,
        strength="must" if direction is Push.CONSTRAINT else strength_word(weight),
        reason=pf.explanation,
        source=f"provider {provider}" if provider else "provider",
    )


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


def _context(a: AdviceAnswers) -> dict[str, Any]:
    """Values the rule templates may use."""
    ctx: dict[str, Any] = {"devices": a.devices}
    if a.mail_size is not None:
        ctx["mail"] = format_size(a.mail_size)
    if a.free_disk is not None:
        ctx["free"] = format_size(a.free_disk)
    if a.quota is not None:
        ctx["room_bytes"] = max(0, a.quota - (a.quota_used or 0))
        ctx["room"] = format_size(ctx["room_bytes"])
    if a.quota_used is not None:
        ctx["used"] = format_size(a.quota_used)
    return ctx


def _ratio(have: int, need: int) -> float:
    return math.inf if need == 0 else have / need


def _answer_factors(a: AdviceAnswers) -> list[Factor]:
    """One factor per known answer (the size answers share the disk and quota factors)."""
    ctx = _context(a)
    out: list[Factor] = []
    if a.devices is not None:
        key = "devices.several" if a.devices >= 2 else "devices.one"
        word = "device" if a.devices == 1 else "devices"
        out.append(_factor(key, "devices", f"{a.devices} {word}", ctx, ("devices",)))
    for name in ("webmail", "sync_state", "backups", "keep_off_server", "shared_mailbox"):
        value = getattr(a, name)
        if value is not None:
            key = f"{name}.{'yes' if value else 'no'}"
            out.append(_factor(key, name, _yes_no(value), ctx, (name,)))
    if a.connectivity is not None:
        c = a.connectivity
        out.append(
            _factor(
                f"connectivity.{c.value}",
                "connectivity",
                CONNECTIVITY_WORDS[c],
                ctx,
                ("connectivity",),
            )
        )
    if a.free_disk is not None:
        if a.mail_size is None:
            out.append(
                _factor("disk.free_only", "disk", f"{ctx['free']} free", ctx, ("free_disk",))
            )
        else:
            ratio = _ratio(a.free_disk, a.mail_size)
            if ratio < DISK_SHORT_BELOW:
                key = "disk.short"
            elif ratio < DISK_TIGHT_BELOW:
                key = "disk.tight"
            else:
                key = "disk.plenty"
            answer = f"{ctx['mail']} of mail, {ctx['free']} free"
            out.append(_factor(key, "disk", answer, ctx, ("mail_size", "free_disk")))
    if a.quota is not None:
        used = ("quota", "quota_used") if a.quota_used is not None else ("quota",)
        answer = f"{ctx['room']} free on the server"
        if a.mail_size is None:
            out.append(_factor("quota.unknown_size", "quota", answer, ctx, used))
        else:
            ratio = _ratio(ctx["room_bytes"], a.mail_size)
            if ratio < QUOTA_SHORT_BELOW:
                key = "quota.short"
            elif ratio < QUOTA_TIGHT_BELOW:
                key = "quota.tight"
            else:
                key = "quota.plenty"
            answer = f"{ctx['mail']} of mail, {answer}"
            out.append(_factor(key, "quota", answer, ctx, ("mail_size", *used)))
    elif a.quota_used is not None:
        out.append(
            _factor("quota.unknown_limit", "quota", f"{ctx['used']} in use", ctx, ("quota_used",))
        )
    if a.mail_size is not None and a.free_disk is None and a.quota is None:
        out.append(_factor("mail_size.alone", "mail_size", ctx["mail"], ctx, ("mail_size",)))
    return out


def _quota_short(a: AdviceAnswers, ctx: dict[str, Any], below: float) -> bool:
    if a.quota is None or a.mail_size is None:
        return False
    return _ratio(ctx["room_bytes"], a.mail_size) < below


def _leave_copy(
    a: AdviceAnswers, recommendation: Protocol, ctx: dict[str, Any]
) -> tuple[bool | None, str]:
    if recommendation is not Protocol.POP3:
        return None, ""
    if a.keep_off_server:
        return False, LEAVE_COPY["delete_wanted"]
    if _quota_short(a, ctx, QUOTA_TIGHT_BELOW):
        return False, LEAVE_COPY["delete_quota"]
    return True, LEAVE_COPY["keep"]


def _against(factors: Iterable[Factor], recommendation: Protocol) -> list[str]:
    """What the user gives up: moderate or strong factors that pushed the other way."""
    other = Push.POP3 if recommendation is Protocol.IMAP else Push.IMAP
    return [
        GIVE_UP.get(f.name, f.name)
        for f in sorted(factors, key=lambda f: -f.weight)
        if f.direction is other and f.weight >= 0.5 and f.source == "your answers"
    ]


def _caveats(
    a: AdviceAnswers,
    recommendation: Protocol,
    factors: Sequence[Factor],
    leave_copy: bool | None,
    ctx: dict[str, Any],
) -> list[str]:
    out: list[str] = []
    against = _against(factors, recommendation)
    if recommendation is Protocol.POP3:
        if a.devices in (None, 1) and a.backups is not True:
            hint = CAVEATS["pop3_copy_hint"] if leave_copy else ""
            out.append(CAVEATS["pop3_one_device"].format(copy_hint=hint))
        if leave_copy:
            out.append(CAVEATS["pop3_no_state"])
        if _quota_short(a, ctx, QUOTA_TIGHT_BELOW) and not a.keep_off_server:
            out.append(CAVEATS["pop3_over_quota"])
        if against:
            out.append(CAVEATS["pop3_against"].format(against="; ".join(against)))
    else:
        if a.backups is not True:
            out.append(CAVEATS["imap_no_backup"])
        if _quota_short(a, ctx, QUOTA_SHORT_BELOW):
            out.append(CAVEATS["imap_over_quota"].format(**ctx))
        if (
            a.free_disk is not None
            and a.mail_size is not None
            and _ratio(a.free_disk, a.mail_size) < DISK_TIGHT_BELOW
        ):
            out.append(CAVEATS["imap_disk"])
        if a.connectivity in (Connectivity.RARELY, Connectivity.METERED):
            out.append(CAVEATS["imap_offline"])
        if against:
            out.append(CAVEATS["imap_against"].format(against="; ".join(against)))
    return out


def _client_settings(
    recommendation: Protocol,
    settings: ServerSettings | None,
    leave_copy: bool | None,
    leave_copy_note: str,
) -> ClientSettings:
    endpoint = None
    if settings is not None:
        endpoint = settings.imap if recommendation is Protocol.IMAP else settings.pop3
    notes: list[str] = []
    if leave_copy_note:
        notes.append(leave_copy_note)
    if endpoint is not None:
        notes.append(SECURITY_WORDS[endpoint.security])
    return ClientSettings(
        protocol=recommendation,
        endpoint=endpoint,
        found_by=settings.source if settings is not None and endpoint is not None else None,
        leave_copy_on_server=leave_copy,
        notes=tuple(notes),
    )


def _summary(
    recommendation: Protocol,
    preferred: Protocol,
    word: Confidence,
    factors: Sequence[Factor],
    constraint: str | None,
) -> str:
    parts = [
        SUMMARY["verdict"].format(protocol=recommendation.name, word=_verdict_word(word)),
        PROTOCOL_MEANING[recommendation],
    ]
    if constraint is not None:
        key = "constrained" if preferred is not recommendation else "constrained_agrees"
        parts.append(SUMMARY[key].format(preferred=preferred.name, why=constraint))
        return " ".join(parts)
    toward = Push.IMAP if recommendation is Protocol.IMAP else Push.POP3
    pushing = [f for f in factors if f.direction is toward and f.weight > 0]
    if pushing:
        top = max(pushing, key=lambda f: f.weight)
        parts.append(SUMMARY["main_reason"].format(reason=_lower_first(top.reason)))
    elif not any(f.weight > 0 for f in factors if f.direction in (Push.IMAP, Push.POP3)):
        parts.append(SUMMARY["balanced"].format(protocol=recommendation.name))
    return " ".join(parts)


def _verdict_word(word: Confidence) -> str:
    return {
        Confidence.CLEAR: "a clear choice",
        Confidence.LIKELY: "the better fit",
        Confidence.CLOSE_CALL: "a close call",
    }[word]


def _lower_first(text: str) -> str:
    # "You read..." -> "you read..."; keep acronyms and names ("IMAP", "iCloud") as they are.
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        return text[0].lower() + text[1:]
    return text


# --- sizes ---------------------------------------------------------------------

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


def format_size(size: int) -> str:
    """A byte count for people: "4.0 GB" (decimal units, as disks are sold)."""
    return _decimal_size(size)
