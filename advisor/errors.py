"""The exceptions mailadvisor raises for problems a user can act on.

Each carries the exit status the CLI turns it into, so a user mistake becomes
a clear one-line message and a documented status, never a traceback.
"""

from __future__ import annotations

from advisor.exitcodes import ExitStatus


class MailadvisorError(Exception):
    """Base class: a problem the user can understand and fix."""

    exit_status: ExitStatus = ExitStatus.USAGE


class UsageError(MailadvisorError):
    """The command line or its inputs do not make sense."""

    exit_status = ExitStatus.USAGE


class ProfileError(MailadvisorError):
    """A profile file is missing, malformed or invalid.

    The message names the file, the key (and line where known) and what is expected.
    """

    exit_status = ExitStatus.USAGE

    def __init__(
        self, path: str, message: str, *, key: str | None = None, line: int | None = None
    ) -> None:
        self.path = path
        self.key = key
        self.line = line
        self.detail = message
        where = path if line is None else f"{path}:{line}"
        what = f"{key}: {message}" if key else message
        super().__init__(f"{where}: {what}")


class AuthenticationError(MailadvisorError):
    """The server refused the credentials (never includes the secret itself)."""

    exit_status = ExitStatus.AUTH_FAILED


class CredentialCharactersError(AuthenticationError):
    """A server refused a password (or user name) with characters outside ASCII.

    It offered no sign-in that carries UTF-8 (no SASL PLAIN), so the refusal may mean
    it cannot take those characters at all; the message says what to do instead.
    """


class ConnectError(MailadvisorError):
    """The server could not be reached, or the secure channel could not be set up."""

    exit_status = ExitStatus.CONNECT_FAILED


class TLSError(ConnectError):
    """TLS failed: certificate, protocol version, or a missing/broken STARTTLS."""


class ProtocolError(ConnectError):
    """The server sent something mailadvisor refuses to buffer or believe.

    An over-long line, a huge literal, an endless stream of responses: a broken or
    hostile server. The connection is dropped; memory stays bounded.
    """


class PluginError(MailadvisorError):
    """A provider plugin is missing or misbehaves."""

    exit_status = ExitStatus.USAGE


class SourceLockedError(UsageError):
    """The mail client is running and holds its lock on the store being read.

    Reading while the client writes (compacting, filing new mail) could see a
    half-written file; the user can quit the client or ask to read it anyway.
    """
