"""Write the files for the chosen devices into one folder, privately."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from advisor import platform_compat
from advisor.devices import DeviceAccount
from advisor.devices.android import qr_payload, write_qr
from advisor.devices.apple import mobileconfig
from advisor.devices.autoconfig import client_config
from advisor.devices.guide import DeviceKind
from advisor.devices.old_pop3 import Pop3Habit, thunderbird_pop3_habits


def file_name(kind: DeviceKind, account: DeviceAccount) -> str | None:
    """The file written for ``kind`` (None: that device gets the settings as text)."""
    safe = account.email.replace("@", "-at-").replace("/", "_")
    if kind is DeviceKind.APPLE:
        return None if account.oauth2 else f"{safe}.mobileconfig"
    if kind is DeviceKind.ANDROID:
        return f"{safe}-android-qr.png"
    if kind is DeviceKind.THUNDERBIRD:
        return f"{safe}-config-v1.1.xml"
    return None


def write_device_files(
    account: DeviceAccount, folder: Path, kinds: Iterable[DeviceKind]
) -> dict[DeviceKind, Path]:
    """One file per device kind that takes one; returns where each went."""
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[DeviceKind, Path] = {}
    for kind in dict.fromkeys(kinds):
        name = file_name(kind, account)
        if name is None:
            continue
        path = folder / name
        if kind is DeviceKind.APPLE:
            written[kind] = write_private(path, mobileconfig(account))
        elif kind is DeviceKind.ANDROID:
            write_private(path, b"")
            written[kind] = write_qr(qr_payload(account), path)
        elif kind is DeviceKind.THUNDERBIRD:
            written[kind] = write_private(path, client_config(account))
    return written


def write_private(path: Path, data: bytes) -> Path:
    """A file only the user can read: the files name the account (and, if asked, its
    password). Returns ``path``."""
    platform_compat.write_private(path, data)
    return path


def old_program_habits(source: Path | None) -> list[Pop3Habit]:
    """The POP3 habits of the program whose store ``source`` is (Thunderbird today)."""
    if source is None:
        return []
    for folder in (source, *source.parents):
        if (folder / "prefs.js").is_file():
            return thunderbird_pop3_habits(folder)
    return []
