"""Provider limits pace a migration: a daily upload volume stops a run, the next continues."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from advisor.connection.account import resolve_account
from advisor.migration import Migration, MigrationOptions, MigrationReport
from advisor.migration.journal import MigrationJournal
from advisor.plugins.manager import load_plugins
from advisor.plugins.types import ProviderLimits
from advisor.profile import load_profile
from advisor.stores.maildir import MaildirReader
from tests.harness.dovecot import DovecotServer
from tests.harness.mailgen import crlf, generate, write_maildir
from tests.harness.migrate_helpers import body_counts, write_profile
from tests.test_plugins import FakeEntryPoint, _installed, _module


def test_daily_upload_limit_paces_the_migration(tmp_path: Path, dovecot: DovecotServer) -> None:
    """A provider's daily upload volume stops a run politely; the next day it continues."""

    def limits(provider: str) -> ProviderLimits | None:
        return ProviderLimits(daily_upload_bytes=20_000) if provider == "slowmail" else None

    plugin = _module("slowmail", "slowmail", mailadvisor_limits=limits)
    plugins = load_plugins([*_installed(), FakeEntryPoint("slowmail", plugin, "slowmail")])

    root = tmp_path / "Maildir"
    msgs = write_maildir(root, list(generate(30, [("INBOX",)], seed=4, sizes="small")))
    account = dovecot.add_user()
    path, _ = write_profile(tmp_path, dovecot, account, root, provider="slowmail")
    access = resolve_account(load_profile(path), plugins)
    journal_path = tmp_path / "j.sqlite"

    def run_once(dry_run: bool = False) -> MigrationReport:
        with MigrationJournal(journal_path) as journal:
            return Migration(
                MaildirReader(root), access, plugins, journal, MigrationOptions(dry_run=dry_run)
            ).run()

    plan = run_once(dry_run=True)
    total = sum(len(crlf(m.data)) for m in msgs)
    assert plan.estimated_days == pytest.approx(total / 20_000)
    first = run_once()
    assert 0 < first.uploaded < len(msgs)
    assert first.uploaded_bytes <= 20_000
    assert "a day" in (first.stopped_early or "")
    same_day = run_once()
    assert same_day.uploaded == 0 and same_day.stopped_early
    done = first.uploaded
    for _day in range(10):
        with sqlite3.connect(journal_path) as db:  # a day passes
            db.execute("UPDATE messages SET updated = updated - 90000")
        later = run_once()
        done += later.uploaded
        if later.stopped_early is None:
            break
    assert done == len(msgs)
    assert max(body_counts(dovecot, account).values()) == 1
