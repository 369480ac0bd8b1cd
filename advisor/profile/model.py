"""What a profile holds: the :class:`Profile` dataclass and its tables.

The wizard fills the same dataclass that :func:`~advisor.profile.load_profile`
produces; reading lives in :mod:`advisor.profile.load`, writing in
:mod:`advisor.profile.write`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from advisor.advice.model import AdviceAnswers
from advisor.plugins.types import Security

PROFILE_VERSION = 1

SECRET_WAYS = (
    'password_env = "VAR" (read it from an environment variable), '
    'password_command = "..." (run a command that prints it), '
    "or keyring = true (keep it in the system keyring)"
)


class AuthKind(StrEnum):
    """How the account signs in."""

    PASSWORD = "password"
    OAUTH2 = "oauth2"


class SourceKind(StrEnum):
    """Which local store (or live POP3 account) to read."""

    AUTO = "auto"
    THUNDERBIRD = "thunderbird"
    MBOX = "mbox"
    MAILDIR = "maildir"
    MH = "mh"
    EML = "eml"
    EMLX = "emlx"
    PST = "pst"
    POP3 = "pop3"


@dataclass
class AccountConfig:
    email: str = ""
    provider: str = "auto"
    """"auto" (detect from the address) or a provider plugin's name."""


@dataclass
class ServerConfig:
    """An explicit IMAP server; overrides what the provider plugin says."""

    host: str
    port: int
    security: Security = Security.TLS
    username: str | None = None
    ca_file: Path | None = None
    allow_insecure: bool = False


@dataclass
class AuthConfig:
    method: AuthKind = AuthKind.PASSWORD
    password_env: str | None = None
    password_command: str | None = None
    keyring: bool = False
    token_command: str | None = None
    """A command printing an OAuth2 access token (oama, mutt_oauth2.py...)."""
    client_id: str | None = None
    """oauth2: the id of the user's own OAuth client registration (not a secret)."""
    client_secret_env: str | None = None
    """oauth2: the environment variable holding that client's secret, if it has one."""


@dataclass
class SourceConfig:
    kind: SourceKind = SourceKind.AUTO
    path: Path | None = None
    """None: find the installed clients' stores on this machine."""
    url: str | None = None
    """For kind "pop3": ``pop3s://user@host[:port]`` (implicit TLS) or ``pop3://...``
    (STARTTLS, enforced); the password is the account's ([auth])."""


@dataclass
class MigrationConfig:
    target_prefix: str = ""
    dry_run: bool = False
    skip_deleted: bool = True
    folder_map: dict[str, str] = field(default_factory=dict)
    when_full: str = "stop"
    """"stop" or "newest-first": what migrate does when the mail does not fit."""


@dataclass
class Profile:
    """Everything a run needs, from a profile file or from the wizard."""

    account: AccountConfig = field(default_factory=AccountConfig)
    server: ServerConfig | None = None
    auth: AuthConfig = field(default_factory=AuthConfig)
    source: SourceConfig = field(default_factory=SourceConfig)
    migration: MigrationConfig = field(default_factory=MigrationConfig)
    advice: AdviceAnswers = field(default_factory=AdviceAnswers)
    """Answers for the POP3-or-IMAP advice (the optional ``[advice]`` table); None = unknown."""
    version: int = PROFILE_VERSION
    path: Path | None = None
    """The file it was loaded from, if any (relative paths in it are resolved against it)."""
