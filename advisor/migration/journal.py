"""The migration journal: what has been uploaded, so a re-run never duplicates.

One SQLite file per account and server in the user's state directory. It holds
message identities, sizes, hashes, outcomes and server UIDs: never a password,
a token or message content. Writes are batched; a crash loses at most the last
batch, and the server-side check in :mod:`advisor.migration.run` covers exactly that.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from advisor.platform_compat import open_private, state_dir

SCHEMA_VERSION = 1


class Status:
    """Outcomes a message can have in the journal."""

    UPLOADED = "uploaded"
    FOUND = "found-on-server"
    """Already on the server (uploaded by an interrupted run or another tool)."""
    FAILED = "failed"
    """The server refused it; it is retried on the next run."""
    LABELLED = "labelled"
    """Not uploaded: an identical message was already stored (in another folder, or
    earlier in the same one), and this folder became a label on it (Gmail)."""

    STORED = (UPLOADED, FOUND)
    """A copy of its own on the server."""
    DONE = (UPLOADED, FOUND, LABELLED)


@dataclass(frozen=True)
class Entry:
    """One message's outcome."""

    source_key: str
    folder: str
    message_id: str | None
    size: int
    sha256: str
    status: str
    uidvalidity: int | None = None
    uid: int | None = None
    detail: str = ""


def default_journal_path(account: str, host: str, port: int) -> Path:
    """The journal for this account on this server, in the user's state directory."""
    slug = re.sub(r"[^A-Za-z0-9@._-]+", "_", f"{account}@{host}_{port}")[:120]
    digest = hashlib.sha256(f"{account}\0{host}\0{port}".encode()).hexdigest()[:10]
    return state_dir() / "journals" / f"{slug}-{digest}.sqlite"


class MigrationJournal:
    """SQLite-backed record of every message's outcome. Use from one thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():
            # Created private: it names folders and Message-IDs.
            os.close(open_private(path, os.O_CREAT | os.O_WRONLY))
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
            CREATE TABLE IF NOT EXISTS messages (
                source_key TEXT PRIMARY KEY,
                folder TEXT NOT NULL,
                message_id TEXT,
                size INTEGER NOT NULL,
                sha256 TEXT NOT NULL,
                status TEXT NOT NULL,
                uidvalidity INTEGER,
                uid INTEGER,
                detail TEXT NOT NULL DEFAULT '',
                updated REAL NOT NULL
            );
            CREATE INDEX IF NOT EXISTS messages_folder ON messages (folder, status);
            CREATE INDEX IF NOT EXISTS messages_sha256 ON messages (sha256);
            CREATE TABLE IF NOT EXISTS folder_names (
                wanted TEXT PRIMARY KEY,
                server TEXT NOT NULL
            );
            """
        )
        self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        self._pending: list[Entry] = []
        self._last_commit = time.monotonic()

    def close(self) -> None:
        self.flush()
        self._db.close()

    def __enter__(self) -> MigrationJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def status(self, source_key: str) -> str | None:
        """The recorded outcome of a message, or None if it was never tried."""
        row = self._db.execute(
            "SELECT status FROM messages WHERE source_key = ?", (source_key,)
        ).fetchone()
        return None if row is None else str(row[0])

    def record(self, entry: Entry) -> None:
        """Remember an outcome; written in batches (see :meth:`flush`)."""
        self._pending.append(entry)
        if len(self._pending) >= 500 or time.monotonic() - self._last_commit > 0.5:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        now = time.time()
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO messages VALUES (?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        e.source_key,
                        e.folder,
                        e.message_id,
                        e.size,
                        e.sha256,
                        e.status,
                        e.uidvalidity,
                        e.uid,
                        e.detail,
                        now,
                    )
                    for e in self._pending
                ],
            )
        self._pending.clear()
        self._last_commit = time.monotonic()

    def done_keys(self, folder: str) -> Counter[tuple[str | None, int]]:
        """(Message-ID, size) of every message recorded as on the server in ``folder``."""
        return Counter((mid, size) for mid, size, _ in self._in_folder(folder))

    def forget_done(self, folder: str, message_id: str | None, size: int, count: int) -> int:
        """Stop counting ``count`` messages with this key as on the server (they are not).

        A later run then uploads them again. Returns how many entries were forgotten.
        """
        self.flush()
        rows = self._db.execute(
            "SELECT source_key FROM messages WHERE folder = ? AND message_id IS ? AND size = ? "
            f"AND status IN ({', '.join('?' * len(Status.DONE))}) ORDER BY rowid DESC LIMIT ?",
            (folder, message_id, size, *Status.DONE, count),
        ).fetchall()
        self.forget(key for (key,) in rows)
        return len(rows)

    def done_hashes(self, folder: str) -> Counter[str]:
        """Content hashes of messages recorded as on the server in ``folder``."""
        return Counter(digest for _, _, digest in self._in_folder(folder))

    def _in_folder(self, folder: str) -> list[tuple[str | None, int, str]]:
        """The messages ``folder`` holds by the journal: (Message-ID, size, sha256) each.

        Each stored copy counts; labelled ones count once per content, and not at all
        where a stored copy of the same content is in the folder: the server keeps one
        message per content in a label (Gmail drops an identical upload too).
        """
        self.flush()
        rows = self._db.execute(
            "SELECT message_id, size, sha256, status FROM messages "
            f"WHERE folder = ? AND status IN ({', '.join('?' * len(Status.DONE))}) "
            "ORDER BY rowid",
            (folder, *Status.DONE),
        ).fetchall()
        out = [(mid, size, digest) for mid, size, digest, status in rows if status in Status.STORED]
        counted = {digest for _, _, digest in out}
        for mid, size, digest, status in rows:
            if status == Status.LABELLED and digest not in counted:
                counted.add(digest)
                out.append((mid, size, digest))
        return out

    def entry(self, source_key: str) -> Entry | None:
        """A message's recorded outcome in full, or None if it was never tried."""
        self.flush()
        row = self._db.execute(
            "SELECT source_key, folder, message_id, size, sha256, status, uidvalidity, uid, "
            "detail FROM messages WHERE source_key = ?",
            (source_key,),
        ).fetchone()
        return None if row is None else Entry(*row)

    def done_with_hash(self, sha256: str) -> list[Entry]:
        """Messages with this content recorded as on the server, in any folder, oldest first.

        Reads what is committed (earlier runs, and this run's flushed writes) without
        flushing, so it stays cheap enough to ask for every message.
        """
        rows = self._db.execute(
            "SELECT source_key, folder, message_id, size, sha256, status, uidvalidity, uid, "
            f"detail FROM messages WHERE sha256 = ? AND status IN "
            f"({', '.join('?' * len(Status.DONE))}) ORDER BY rowid",
            (sha256, *Status.DONE),
        )
        return [Entry(*row) for row in rows]

    def entries(self) -> Iterator[Entry]:
        self.flush()
        for row in self._db.execute(
            "SELECT source_key, folder, message_id, size, sha256, status, uidvalidity, uid, "
            "detail FROM messages ORDER BY rowid"
        ):
            yield Entry(*row)

    def uploaded_bytes_since(self, since: float) -> int:
        """Bytes uploaded (by any run) after the Unix time ``since``: for daily limits."""
        self.flush()
        row = self._db.execute(
            "SELECT COALESCE(SUM(size), 0) FROM messages WHERE status = ? AND updated >= ?",
            (Status.UPLOADED, since),
        ).fetchone()
        return int(row[0])

    def counts(self) -> dict[str, int]:
        self.flush()
        return dict(self._db.execute("SELECT status, COUNT(*) FROM messages GROUP BY status"))

    def unfinished_run(self) -> str | None:
        """When a run that began with :meth:`run_began` never came to its end
        (:meth:`run_ended`): killed, crashed, its connections lost. Its start time (ISO
        8601, UTC), or None when every run ended cleanly."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'run'").fetchone()
        return None if row is None else str(row[0])

    def run_began(self) -> None:
        """A run that may upload starts now (written at once)."""
        started = datetime.now(UTC).isoformat(timespec="seconds")
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('run', ?)", (started,))

    def run_ended(self) -> None:
        """The run ended with every upload answered: nothing of it can still be on its way."""
        self.flush()
        with self._db:
            self._db.execute("DELETE FROM meta WHERE key = 'run'")

    def folder_renames(self) -> dict[str, str]:
        """Server folder names the server refused -> the names it accepted instead."""
        return dict(self._db.execute("SELECT wanted, server FROM folder_names"))

    def remember_rename(self, wanted: str, server: str) -> None:
        """Later runs put ``wanted``'s messages into ``server`` (written at once)."""
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO folder_names VALUES (?, ?)", (wanted, server))

    def forget(self, keys: Iterable[str]) -> None:
        self.flush()
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany("DELETE FROM messages WHERE source_key = ?", [(k,) for k in keys])
