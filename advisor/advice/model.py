"""The advice's data: what it is based on (`AdviceAnswers`) and what it answers (`Advice`).

Plain dataclasses and enums shared by the engine, the rules, the profile (its
``[advice]`` table) and the front ends that ask and render; no logic beyond checking
the answers.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import Final

from advisor.plugins.types import (
    Endpoint,
    Protocol,
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
