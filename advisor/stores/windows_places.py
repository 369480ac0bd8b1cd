"""Where Windows mail programs keep their mail, from the user's known folders.

Windows does not put everything below the home directory: ``%APPDATA%`` (roaming) and
``%LOCALAPPDATA%`` can be redirected elsewhere, to another drive or to a UNC share
(``\\\\server\\profiles$\\name``) on a company network, and OneDrive may move Documents.
So the places are computed from the environment (``APPDATA``, ``LOCALAPPDATA``,
``USERPROFILE``, ``OneDrive``), each falling back to its default below the home.

Everything here is pure: paths are :class:`~pathlib.PureWindowsPath` so the same code
reasons about ``C:\\Users\\Zoë`` and UNC paths on any machine (the tests run on Linux);
:func:`host_path` turns one into a path of the running system for listing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath, PureWindowsPath

__all__ = ["WindowsFolders", "host_path", "pst_path_from_registry", "windows_folders"]


@dataclass(frozen=True)
class WindowsFolders:
    """The user's known folders, as Windows paths (each list best first, no repeats)."""

    appdata: PureWindowsPath
    localappdata: PureWindowsPath
    userprofile: PureWindowsPath
    documents: tuple[PureWindowsPath, ...]

    def thunderbird(self) -> PureWindowsPath:
        """Thunderbird's data directory (profiles.ini, Profiles\\)."""
        return self.appdata / "Thunderbird"

    def store_packages(self) -> PureWindowsPath:
        """Where Microsoft Store (MSIX) apps keep their data (``Packages\\<name>\\``)."""
        return self.localappdata / "Packages"

    def outlook(self) -> tuple[tuple[PureWindowsPath, str], ...]:
        """Folders Outlook puts .pst files in by default, with a name for the user."""
        places = [(d / "Outlook Files", f"{self._shown(d)}\\Outlook Files") for d in self.documents]
        places += [
            (self.localappdata / "Microsoft" / "Outlook", "%LOCALAPPDATA%\\Microsoft\\Outlook"),
            (self.appdata / "Microsoft" / "Outlook", "%APPDATA%\\Microsoft\\Outlook"),
            (
                self.userprofile / "Local Settings" / "Application Data" / "Microsoft" / "Outlook",
                "Local Settings\\Application Data\\Microsoft\\Outlook (Windows XP)",
            ),
        ]
        return tuple(_unique(places))

    def _shown(self, path: PureWindowsPath) -> str:
        try:
            return str(path.relative_to(self.userprofile))
        except ValueError:
            return str(path)

    def windows_live_mail(self) -> PureWindowsPath:
        return self.localappdata / "Microsoft" / "Windows Live Mail"

    def windows_mail(self) -> PureWindowsPath:
        """Windows Vista's Windows Mail: .eml files below ``Local Folders``."""
        return self.localappdata / "Microsoft" / "Windows Mail" / "Local Folders"

    def identities(self) -> tuple[PureWindowsPath, ...]:
        """Outlook Express keeps .dbx files in ``Identities\\{GUID}\\Microsoft\\Outlook
        Express`` below these."""
        return tuple(
            p
            for p, _ in _unique(
                (p, "")
                for p in (
                    self.localappdata / "Identities",
                    self.userprofile / "Local Settings" / "Application Data" / "Identities",
                )
            )
        )


def windows_folders(home: PurePath, environ: Mapping[str, str]) -> WindowsFolders:
    """The known folders from ``environ``, else their defaults below ``home``."""
    profile = _env_path(environ, "USERPROFILE") or PureWindowsPath(home)
    appdata = _env_path(environ, "APPDATA") or profile / "AppData" / "Roaming"
    local = _env_path(environ, "LOCALAPPDATA") or profile / "AppData" / "Local"
    documents = [profile / "Documents", profile / "My Documents"]
    for name in ("OneDrive", "OneDriveConsumer", "OneDriveCommercial"):
        onedrive = _env_path(environ, name)
        if onedrive is not None:
            documents.insert(0, onedrive / "Documents")  # OneDrive's backup moves it there
    return WindowsFolders(
        appdata=appdata,
        localappdata=local,
        userprofile=profile,
        documents=tuple(p for p, _ in _unique((d, "") for d in documents)),
    )


def host_path(path: PureWindowsPath) -> Path:
    """``path`` as a path of the running system: itself on Windows; elsewhere its
    slash form, so a test's Windows-shaped tree below a POSIX directory is found (and a
    real ``C:\\`` or UNC path simply is not there)."""
    if isinstance(PurePath(), PureWindowsPath):  # this system's paths are Windows paths
        return Path(path)
    return Path(path.as_posix())


def pst_path_from_registry(value: bytes | str) -> PureWindowsPath | None:
    """The .pst path an Outlook profile's registry value names (``001f6700``,
    PR_PST_PATH_W: UTF-16-LE with a terminating NUL), or None if it names none."""
    if isinstance(value, bytes):
        try:
            text = value.decode("utf-16-le")
        except UnicodeDecodeError:
            return None
    else:
        text = value
    text = text.split("\0", 1)[0].strip()
    if not text.lower().endswith((".pst", ".ost")):
        return None
    path = PureWindowsPath(text)
    return path if path.drive or path.root else None  # not relative to some directory


def _env_path(environ: Mapping[str, str], name: str) -> PureWindowsPath | None:
    value = environ.get(name, "").strip().strip('"')
    if not value:
        return None
    path = PureWindowsPath(value)
    # A relative value (a broken setting) would be taken below the current directory.
    return path if path.drive or path.root else None


def _unique(
    items: Iterable[tuple[PureWindowsPath, str]],
) -> Iterable[tuple[PureWindowsPath, str]]:
    """In order, each path once (Windows paths compare without regard to case)."""
    seen: set[PureWindowsPath] = set()
    for path, name in items:
        if path not in seen:
            seen.add(path)
            yield path, name
