"""Exit statuses shared by every mailadvisor command (documented in the README)."""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """What a finished command tells the shell."""

    OK = 0
    """Everything asked for was done."""
    INCOMPLETE = 1
    """The command finished, but some messages were not migrated (see the report)."""
    USAGE = 2
    """A usage error or an invalid profile file."""
    AUTH_FAILED = 3
    """The server refused the credentials."""
    CONNECT_FAILED = 4
    """The server could not be reached, or TLS failed (certificate, version, STARTTLS)."""
    ACCOUNT_BUSY = 5
    """Another mailadvisor run is moving mail into the same account (``--wait`` waits)."""
    ACCOUNT_FULL = 6
    """The account has no room for (all of) the mail: nothing, or only the part that
    fits, was uploaded; the rest waits in the source for a run after space is freed."""
    INTERNAL_ERROR = 70
    """A bug in mailadvisor stopped the command (EX_SOFTWARE); a migration still writes
    its report, and running it again is safe."""
    INTERRUPTED = 130
    """Interrupted by the user (Ctrl-C)."""
