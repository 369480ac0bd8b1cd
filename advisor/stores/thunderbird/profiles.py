"""Finding Thunderbird profiles: where each installation keeps profiles.ini, and what it lists.

Linux (plain, snap and flatpak), macOS and Windows locations; relative and absolute profile
paths; the default profile as an ``[Install...]`` section or ``Default=1`` names it.
"""

from __future__ import annotations

import configparser
import contextlib
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

LINUX_DATA_DIRS = (
    ("linux", Path(".thunderbird")),
    ("snap", Path("snap/thunderbird/common/.thunderbird")),
    ("flatpak", Path(".var/app/org.mozilla.Thunderbird/.thunderbird")),
)
MACOS_DATA_DIR = Path("Library/Thunderbird")
WINDOWS_DATA_DIR = Path("AppData/Roaming/Thunderbird")


@dataclass(frozen=True)
class ThunderbirdProfile:
    """A profile listed in a Thunderbird ``profiles.ini`` (or found next to it)."""

    name: str
    path: Path
    """The profile directory (holding prefs.js and Mail/)."""
    data_dir: Path
    """The Thunderbird directory holding profiles.ini."""
    variant: str
    """Which installation: "linux", "snap", "flatpak", "macos" or "windows"."""
    is_default: bool = False
    """The profile Thunderbird opens by default (an [Install...] Default, else Default=1)."""
    exists: bool = True
    """False when profiles.ini names a directory that is not there (an unmounted disk...)."""


def _normalize_platform(platform: str | None) -> str:
    value = (platform or sys.platform).lower()
    if value.startswith(("win", "cygwin", "msys")):
        return "windows"
    if value in ("darwin", "macos", "mac", "osx"):
        return "macos"
    return "linux"


def thunderbird_data_dirs(
    home: Path | None = None, platform: str | None = None
) -> list[tuple[str, Path]]:
    """Where Thunderbird keeps profiles.ini on ``platform``, as (variant, directory).

    ``home`` defaults to the user's home; on Windows without ``home`` the
    ``APPDATA`` environment variable is used when set.
    """
    kind = _normalize_platform(platform)
    if kind == "windows":
        appdata = os.environ.get("APPDATA") if home is None else None
        base = (
            Path(appdata) / "Thunderbird" if appdata else (home or Path.home()) / WINDOWS_DATA_DIR
        )
        return [("windows", base)]
    root = home or Path.home()
    if kind == "macos":
        return [("macos", root / MACOS_DATA_DIR)]
    return [(variant, root / relative) for variant, relative in LINUX_DATA_DIRS]


def _read_ini(path: Path) -> configparser.RawConfigParser | None:
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        with open(path, "rb") as stream:
            text = stream.read(1 << 20).decode("utf-8-sig", "replace")
        parser.read_string(text, source=str(path))
    except (OSError, configparser.Error):
        return None
    return parser


def _profile_path(data_dir: Path, value: str, relative: bool) -> Path:
    if relative:
        return data_dir.joinpath(*[part for part in re.split(r"[/\\]", value) if part])
    return Path(value)


def read_profiles_ini(data_dir: Path, variant: str = "linux") -> list[ThunderbirdProfile]:
    """The profiles of one Thunderbird data directory.

    Relative (``IsRelative=1``) and absolute paths are both understood; the
    default is the profile an ``[Install...]`` section names, else the one with
    ``Default=1``. Without a readable profiles.ini, sub-directories holding a
    ``prefs.js`` are listed instead (a copied or half-broken setup).
    """
    parser = _read_ini(data_dir / "profiles.ini")
    if parser is None:
        return _profiles_by_scan(data_dir, variant)
    install_defaults = {
        parser.get(section, "Default").replace("\\", "/").lower()
        for section in parser.sections()
        if section.startswith("Install") and parser.has_option(section, "Default")
    }
    profiles = []
    for section in parser.sections():
        if not section.startswith("Profile") or not parser.has_option(section, "Path"):
            continue
        value = parser.get(section, "Path")
        relative = parser.get(section, "IsRelative", fallback="1").strip() == "1"
        path = _profile_path(data_dir, value, relative)
        if install_defaults:
            default = value.replace("\\", "/").lower() in install_defaults
        else:
            default = parser.get(section, "Default", fallback="0").strip() == "1"
        profiles.append(
            ThunderbirdProfile(
                name=parser.get(section, "Name", fallback=path.name),
                path=path,
                data_dir=data_dir,
                variant=variant,
                is_default=default,
                exists=(path / "prefs.js").is_file() or (path / "Mail").is_dir(),
            )
        )
    return profiles


def _profiles_by_scan(data_dir: Path, variant: str) -> list[ThunderbirdProfile]:
    found = []
    for parent in (data_dir, data_dir / "Profiles"):
        with contextlib.suppress(OSError):
            for child in sorted(parent.iterdir()):
                if child.is_dir() and (child / "prefs.js").is_file():
                    found.append(ThunderbirdProfile(child.name, child, data_dir, variant))
    return found


def find_thunderbird_profiles(
    home: Path | None = None, platform: str | None = None
) -> list[ThunderbirdProfile]:
    """Every Thunderbird profile of the user: Linux (plain, snap and flatpak), macOS or
    Windows locations, from their profiles.ini files; ``home`` and ``platform``
    (a ``sys.platform`` value) make this testable with a fake home directory."""
    profiles: list[ThunderbirdProfile] = []
    seen: set[Path] = set()
    for variant, data_dir in thunderbird_data_dirs(home, platform):
        if not data_dir.is_dir():
            continue
        for profile in read_profiles_ini(data_dir, variant):
            key = Path(os.path.realpath(profile.path))
            if key not in seen:
                seen.add(key)
                profiles.append(profile)
    return profiles
