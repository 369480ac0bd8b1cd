"""How a migration runs: :class:`MigrationOptions`, and where its files go by default.

One place for the choices every front end makes (``mailadvisor migrate``, the wizard,
``verify``): :meth:`MigrationOptions.from_profile` turns a profile into options, with the
account's journal and the not-migrated mbox where the user expects them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from advisor.migration import quota
from advisor.migration.journal import default_journal_path
from advisor.migration.partial import PartialSources

if TYPE_CHECKING:
    from advisor.connection.account import AccountAccess
    from advisor.profile import Profile

DEFAULT_WINDOW = 4
DEFAULT_BUDGET = 8 * 1024 * 1024
BATCH_MESSAGES = 200


@dataclass
class MigrationOptions:
    dry_run: bool = False
    skip_deleted: bool = True
    target_prefix: str = ""
    folder_map: dict[str, str] = field(default_factory=dict)
    connections: int | None = None
    """Parallel upload connections; default 4, never more than the provider allows."""
    window: int = DEFAULT_WINDOW
    """APPEND commands (each a batch of messages) in flight per connection."""
    batch_messages: int = BATCH_MESSAGES
    """Messages per APPEND command, where the server offers MULTIAPPEND."""
    budget_bytes: int = DEFAULT_BUDGET
    """Message bytes in flight across all connections, at least: the budget grows to
    four times the largest message seen, so memory stays a small multiple of it."""
    verify: bool = True
    journal_path: Path | None = None
    """The run's journal (:meth:`from_profile` fills in the account's default)."""
    not_migrated_path: Path | None = None
    """Where the bytes of messages that were not migrated are saved (an mbox, written
    only when something fails; never on a dry run)."""
    same_account: bool | None = None
    """The target is the account the store was downloaded from: None = find out
    (:func:`advisor.migration.same_account.detect`), True/False = the user says so."""
    trash_deleted: bool = False
    """Same account: move the server's copies of messages deleted locally to Trash."""
    include_partial: bool = False
    """Upload headers-only stubs as they are (else they are left out and reported)."""
    partial_sources: PartialSources | None = None
    """Where stubs came from; with a POP3 password, where their full copies are taken."""
    when_full: quota.WhenFull = quota.WhenFull.STOP
    """What to do when the plan does not fit into the room the server reports."""
    unfinished_run: str | None = None
    """Set by the front end when the account's lock shows that the previous run never
    let go of it (killed, crashed): who that was. The run then first lets the server
    finish storing what that run had sent (:mod:`advisor.migration.settle`)."""

    @classmethod
    def from_profile(
        cls,
        profile: Profile,
        access: AccountAccess,
        *,
        dry_run: bool | None = None,
        journal: Path | None = None,
        report_file: Path | None = None,
        when_full: quota.WhenFull | None = None,
        **choices: Any,
    ) -> MigrationOptions:
        """The options of a run of ``profile`` into ``access``'s account, for every front end.

        ``dry_run`` and ``when_full`` default to the profile's; ``journal`` to the account's
        journal in the user's state directory (:attr:`journal_path`); the not-migrated mbox
        goes beside ``report_file`` if given, else beside the journal (none on a dry run).
        ``choices``: the other fields (connections, same_account...), as given.
        """
        m = profile.migration
        path = journal or default_journal_path(access.email, access.target.host, access.target.port)
        dry = m.dry_run if dry_run is None else dry_run
        return cls(
            dry_run=dry,
            skip_deleted=m.skip_deleted,
            target_prefix=m.target_prefix,
            folder_map=dict(m.folder_map),
            when_full=when_full or quota.WhenFull(m.when_full),
            journal_path=path,
            not_migrated_path=None if dry else not_migrated_path(report_file, path),
            **choices,
        )


def not_migrated_path(report_file: Path | None, journal: Path) -> Path:
    """Where this run saves the messages it could not migrate: beside the report file,
    else beside the journal with the run's time in the name (one file per run)."""
    if report_file is not None:
        return report_file.with_name(report_file.stem + ".not-migrated.mbox")
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return journal.with_name(f"{journal.stem}-not-migrated-{stamp}.mbox")
