"""mbox files: a streaming, read-only reader that neither loses nor invents messages.

The stdlib :mod:`mailbox` module is not safe for real mbox files (see
docs in ``shared/reference/local-stores.md``): it splits messages at unquoted
body lines, never removes mboxrd quoting, and silently returns nothing for a
file without a leading ``From`` line. This package reads the file in binary,
opened read-only, in one pass over blocks, and keeps only the current message
in memory.

Its parts: :mod:`.scanner` splits a file into messages, with :mod:`.separators` (which
``From `` lines are separators), :mod:`.window` (the buffer and positioned reads),
:mod:`.envelope` (the ``From_`` line's date) and :mod:`.fromsearch` (the fast search);
:mod:`.headers` reads the bookkeeping headers, for the Thunderbird reader too;
:mod:`.tree` says which files of a directory are folders; :mod:`.bookkeeping` what Unix
mail programs keep in the file; :mod:`.reader` is the :class:`MboxReader`.
"""

from advisor.stores.mbox.envelope import parse_envelope_date
from advisor.stores.mbox.headers import (
    MOZ_PARTIAL,
    PARTIAL_PROBLEM,
    HeaderFacts,
    fallback_received,
    header_block,
    header_values,
    interpret_headers,
    keywords_from,
    mozilla_flags,
    strip_mozilla_headers,
)
from advisor.stores.mbox.reader import (
    MboxReader,
    entry_header_block,
    message_from_entry,
    quoting_option,
    read_mbox_folder,
)
from advisor.stores.mbox.scanner import MboxEntry, iter_mbox, unquote_mboxrd

__all__ = [
    "MOZ_PARTIAL",
    "PARTIAL_PROBLEM",
    "HeaderFacts",
    "MboxEntry",
    "MboxReader",
    "entry_header_block",
    "fallback_received",
    "header_block",
    "header_values",
    "interpret_headers",
    "iter_mbox",
    "keywords_from",
    "message_from_entry",
    "mozilla_flags",
    "parse_envelope_date",
    "quoting_option",
    "read_mbox_folder",
    "strip_mozilla_headers",
    "unquote_mboxrd",
]
