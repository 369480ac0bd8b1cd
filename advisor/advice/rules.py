"""Every weight and every sentence of the advice, in one place to review.

:data:`ANSWER_HELP` is how each answer is asked; :data:`RULES` what each answer
weighs and says; the small tables after it the caveats, security words, the POP3
"leave a copy" advice and what the user gives up. They are written for someone who
has never heard of IMAP or POP3. The engine (:mod:`advisor.advice.engine`) only picks
from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from advisor.advice.model import AnswerHelp, Confidence, Connectivity, Push
from advisor.plugins.types import (
    Protocol,
    Security,
)

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
