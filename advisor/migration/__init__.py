"""The migration: every message of a local store into the right IMAP folder, exactly once.

How exactly-once holds:

1. The journal (:mod:`advisor.migration.journal`) records each message's outcome; a
   re-run skips what is done.
2. Before the first upload into a server folder, its messages are compared with
   what the journal says should be there. Anything the journal cannot explain
   (a run killed between the server's OK and the journal's commit, a lost
   journal, mail uploaded by another tool) is indexed
   (:mod:`advisor.migration.server_index`: Message-ID and a tolerant size pick
   candidates, the hash of the normalised message decides), and local messages found
   there are not uploaded again.
3. A message whose answer was lost with its connection is checked the same way
   before it is sent again.
4. At the end every folder is verified: each message the journal counts as on
   the server must be found there, once; extra copies (a run on another machine
   uploading at the same moment, copies there before) are counted and reported.

Where the provider keeps one message under several labels (Gmail, rule
``labels_for_copies``), a message whose exact bytes are in several local folders
is uploaded once, into the first folder met; each other folder becomes a label on
it (``UID STORE +X-GM-LABELS``), also when the first copy went up in an earlier
run. Identical copies within one folder are stored once, as Gmail keeps only one.

When the target is the account the store was downloaded from
(:mod:`advisor.migration.same_account`), the server's own copies in INBOX are the local
messages: they get the local flags and are moved into the folder the user put them in,
instead of being uploaded again. Otherwise nothing on the server is changed or deleted
(labels and flags are only added); the source is only read.

The public face is :class:`Migration` (build it, call ``run()``), its
:class:`MigrationOptions` (``MigrationOptions.from_profile`` for every front end) and the
:class:`MigrationReport` it returns. The parts, in the order a message meets them:
``plan`` (folders, the per-message steps), ``duplicates`` and ``server_index`` (is it on
the server already?), ``pool`` and ``upload`` (the connections, APPEND), ``labels``
(Gmail), ``ledger`` and ``journal`` (every outcome), ``rejects`` (the not-migrated
mbox), ``verify`` (the closing check and ``mailadvisor verify``).
"""

from advisor.migration.options import MigrationOptions, not_migrated_path
from advisor.migration.report import MigrationReport, Progress
from advisor.migration.run import Migration

__all__ = ["Migration", "MigrationOptions", "MigrationReport", "Progress", "not_migrated_path"]
