"""Thunderbird: finding its profiles, and reading the mail POP3 accounts left in them.

The parts: :mod:`.profiles` (profiles.ini on each platform), :mod:`.lock` (is Thunderbird
running on the profile?), :mod:`.prefs` (prefs.js: each account's mail directory),
:mod:`.folders` (which files are folders, their names), :mod:`.mork` and
:mod:`.msf_index` (the ``.msf`` summaries), :mod:`.folder_cache` (115+ folder names),
:mod:`.junk` (junk scores as keywords), :mod:`.pop3_accounts` (its POP3 accounts and
their UIDLs) and :mod:`.reader` (:class:`ThunderbirdReader`). The mbox files themselves
are read by :mod:`advisor.stores.mbox`, which also reads the X-Mozilla-* headers.
"""

from advisor.stores.thunderbird.folders import (
    NOT_MAIL,
    SkippedEntry,
    ThunderbirdFolder,
    folder_display_name,
    walk_mail_root,
)
from advisor.stores.thunderbird.lock import ProfileLock, profile_lock
from advisor.stores.thunderbird.msf_index import FolderIndex, load_index
from advisor.stores.thunderbird.prefs import MailRoot, mail_roots, read_prefs
from advisor.stores.thunderbird.profiles import (
    ThunderbirdProfile,
    find_thunderbird_profiles,
    read_profiles_ini,
    thunderbird_data_dirs,
)
from advisor.stores.thunderbird.reader import ThunderbirdReader

__all__ = [
    "NOT_MAIL",
    "FolderIndex",
    "MailRoot",
    "ProfileLock",
    "SkippedEntry",
    "ThunderbirdFolder",
    "ThunderbirdProfile",
    "ThunderbirdReader",
    "find_thunderbird_profiles",
    "folder_display_name",
    "load_index",
    "mail_roots",
    "profile_lock",
    "read_prefs",
    "read_profiles_ini",
    "thunderbird_data_dirs",
    "walk_mail_root",
]
