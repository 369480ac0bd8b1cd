"""Profile files: a whole mailadvisor run written down in TOML.

* :mod:`advisor.profile.model`: :class:`Profile` and its tables (the wizard fills the
  same dataclass);
* :mod:`advisor.profile.load`: reading and checking a file, every error naming the
  file, the key and its line;
* :mod:`advisor.profile.write`: writing one back (0600).

Callers import from here: ``from advisor.profile import Profile, load_profile``.
"""

from __future__ import annotations

from advisor.profile.load import POP3_URL, check_profile, load_profile, parse_profile
from advisor.profile.model import (
    PROFILE_VERSION,
    SECRET_WAYS,
    AccountConfig,
    AuthConfig,
    AuthKind,
    MigrationConfig,
    Profile,
    ServerConfig,
    SourceConfig,
    SourceKind,
)
from advisor.profile.write import dump_profile, profile_to_dict, save_profile

__all__ = [
    "POP3_URL",
    "PROFILE_VERSION",
    "SECRET_WAYS",
    "AccountConfig",
    "AuthConfig",
    "AuthKind",
    "MigrationConfig",
    "Profile",
    "ServerConfig",
    "SourceConfig",
    "SourceKind",
    "check_profile",
    "dump_profile",
    "load_profile",
    "parse_profile",
    "profile_to_dict",
    "save_profile",
]
