"""Writing a profile as TOML that :func:`~advisor.profile.load_profile` reads back.

Separate from reading: the wizard and ``mailadvisor profile`` write, every command
reads. A profile never holds a secret, only where to get it; the file is 0600 anyway.
"""

from __future__ import annotations

import os
import tempfile
from enum import Enum
from pathlib import Path
from typing import Any

import tomli_w

from advisor.profile.load import load_profile
from advisor.profile.model import Profile


def profile_to_dict(profile: Profile) -> dict[str, Any]:
    """The TOML structure of a profile (never a secret: the dataclass holds none)."""
    out: dict[str, Any] = {"version": profile.version}
    out["account"] = {"email": profile.account.email, "provider": profile.account.provider}
    if profile.server is not None:
        s = profile.server
        server: dict[str, Any] = {"host": s.host, "port": s.port, "security": s.security.value}
        if s.username:
            server["username"] = s.username
        if s.ca_file:
            server["ca_file"] = str(s.ca_file)
        if s.allow_insecure:
            server["allow_insecure"] = True
        out["server"] = server
    a = profile.auth
    auth: dict[str, Any] = {"method": a.method.value}
    for key in (
        "password_env",
        "password_command",
        "token_command",
        "client_id",
        "client_secret_env",
    ):
        if getattr(a, key):
            auth[key] = getattr(a, key)
    if a.keyring:
        auth["keyring"] = True
    out["auth"] = auth
    source: dict[str, Any] = {"kind": profile.source.kind.value}
    if profile.source.url is not None:
        source["path"] = profile.source.url
    elif profile.source.path is not None:
        source["path"] = str(profile.source.path)
    out["source"] = source
    m = profile.migration
    out["migration"] = {
        "target_prefix": m.target_prefix,
        "dry_run": m.dry_run,
        "skip_deleted": m.skip_deleted,
        "folder_map": dict(m.folder_map),
        "when_full": m.when_full,
    }
    answers = {name: getattr(profile.advice, name) for name in profile.advice.given()}
    if answers:
        out["advice"] = {k: v.value if isinstance(v, Enum) else v for k, v in answers.items()}
    return out


def dump_profile(profile: Profile) -> str:
    """Render a profile as TOML text that :func:`load_profile` reads back."""
    return tomli_w.dumps(profile_to_dict(profile))


def save_profile(profile: Profile, path: str | Path) -> Path:
    """Save ``profile`` at ``path`` in one step (0600: it names where the secrets live),
    and check that it reads back.

    The file appears complete or not at all: it is written beside its final name and
    renamed, so a Ctrl-C leaves no half-written profile.
    """
    path = Path(path).expanduser().absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = dump_profile(profile)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:  # mkstemp makes it 0600
            f.write(text)
        load_profile(tmp)  # a profile written must be one that runs
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    profile.path = path
    return path
