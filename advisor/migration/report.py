"""What a migration run tells: its report (per folder, failures) and its progress display.

Plain dataclasses the CLI renders (text or ``--json``) and the wizard shows; nothing here
reads or writes mail. :class:`Progress` is the one interface a progress display offers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from advisor.migration import quota
from advisor.migration.content_check import Altered
from advisor.migration.partial import PartialMessage

if TYPE_CHECKING:  # same_account records through the ledger, which fills this report
    from advisor.migration.same_account import SameAccountReport


@dataclass
class Failure:
    """A message that was not migrated, and why. It stays in the source."""

    folder: str
    source_id: str
    message_id: str | None
    reason: str
    """The server's words, or why it was not sent."""
    subject: str = ""
    """Decoded and shortened, to let the user recognise it."""
    size: int = 0
    """Bytes as they would be uploaded (CRLF line endings); 0 when unreadable."""
    saved: bool = False
    """Its exact bytes are in the report's not-migrated mbox."""


@dataclass
class FolderReport:
    source: str
    target: str
    reason: str
    messages: int = 0
    bytes: int = 0
    uploaded: int = 0
    already_done: int = 0
    """Recorded as done by an earlier run."""
    found_on_server: int = 0
    """Already on the server although not in the journal: not uploaded again."""
    skipped_deleted: int = 0
    partial: int = 0
    failed: int = 0
    to_upload: int = 0
    """Dry run: what a real run would upload."""
    labelled: int = 0
    """Not uploaded: an identical message is stored in another folder (or earlier in
    this one), and this folder became a label on it (Gmail)."""
    to_label: int = 0
    """Dry run: what a real run would add as labels instead of uploading."""
    created: bool = False


@dataclass
class MigrationReport:
    account: str
    server: str
    dry_run: bool
    folders: list[FolderReport]
    failures: list[Failure]
    uploaded: int = 0
    uploaded_bytes: int = 0
    already_done: int = 0
    found_on_server: int = 0
    labelled: int = 0
    """Messages stored once and given each further folder as a label (Gmail)."""
    skipped_deleted: int = 0
    failed: int = 0
    elapsed_seconds: float = 0.0
    messages_per_second: float = 0.0
    connections: int = 0
    verified: bool | None = None
    missing_after_verify: int = 0
    extra_copies: int = 0
    """Copies on the server beyond what the journal accounts for (a message there more
    than once), counted as ``mailadvisor verify`` counts them; never deleted for you."""
    journal: str = ""
    stopped_early: str | None = None
    deferred: int = 0
    """Messages left for the next run because the server asked to stop (daily quota)."""
    notes: list[str] = field(default_factory=list)
    planned_bytes: int = 0
    """Dry run: bytes a real run would upload."""
    estimated_days: float | None = None
    """Dry run: days the upload takes under the provider's daily upload limit, if any."""
    not_migrated_mbox: str | None = None
    """The mbox holding the messages that were not migrated (those whose bytes were read)."""
    same_account: SameAccountReport | None = None
    """Set when the target is the account the store was downloaded from."""
    altered: list[Altered] = field(default_factory=list)
    """Uploads the server stored differently (the closing check compares content)."""
    content_checked: int = 0
    """How many uploads the closing check compared byte for byte."""
    partial_messages: list[PartialMessage] = field(default_factory=list)
    """Headers-only stubs: left out (unless include_partial) or replaced by the full copy."""
    internal_error: str | None = None
    """A bug in mailadvisor stopped the run (exception and place); None normally."""
    room: quota.QuotaCheck | None = None
    """The plan's bytes against the room the server (or provider) reports; None unknown."""
    account_full: bool = False
    """Uploading stopped (or never started) for lack of room: what is left is deferred."""
    deferred_bytes: int = 0
    """Bytes of the deferred messages that are known (those that did not fit)."""
    finished_at: str = ""
    """When this pass ended (ISO 8601, UTC): a catch-up run copies what arrived since."""

    @property
    def complete(self) -> bool:
        return (
            self.failed == 0
            and self.missing_after_verify == 0
            and self.extra_copies == 0
            and self.stopped_early is None
            and self.internal_error is None
        )


class Progress(Protocol):
    """What the migration tells a progress display."""

    def advance(self, messages: int, size: int) -> None: ...

    def note(self, text: str) -> None: ...


class NoProgress:
    """A display that shows nothing."""

    def advance(self, messages: int, size: int) -> None:
        return None

    def note(self, text: str) -> None:
        return None
