"""Everything that differs between Linux, macOS and Windows, in one place.

The rest of the package calls these functions instead of POSIX-only ones (``fcntl``,
``os.pread``, ``os.fchmod``, ``os.geteuid``, ``os.sched_getaffinity``, ``O_NONBLOCK``),
so it imports and runs everywhere; ``mypy --platform win32`` and ``--platform darwin``
check that nothing outside this module needs a POSIX-only name (see .ci/run).

Private files: POSIX gets mode 0600 (directories 0700); on Windows the mode bits mean
nothing, and privacy comes from the per-user directories platformdirs gives
(``%LOCALAPPDATA%``, readable only by the user and administrators by default), so no
chmod-based check is made there.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shlex
import stat
import sys
from pathlib import Path

import platformdirs

__all__ = [
    "APP_NAME",
    "NOFOLLOW",
    "NONBLOCK",
    "command_line",
    "command_name",
    "config_dir",
    "fcntl_lock_holder",
    "held_open_elsewhere",
    "is_sharing_violation",
    "make_private",
    "make_private_fd",
    "open_private",
    "outlook_registry_pst_values",
    "owned_by_me",
    "pid_alive",
    "pread",
    "readable_by_others",
    "set_env_secretly_hint",
    "shell_quote",
    "state_dir",
    "usable_cores",
]

APP_NAME = "mailadvisor"
NONBLOCK: int = getattr(os, "O_NONBLOCK", 0)
"""``O_NONBLOCK`` where it exists: a named pipe posing as a message file must not hang
the reader. Windows has no such flag (and no FIFOs in a file system), so it is 0 there."""
NOFOLLOW: int = getattr(os, "O_NOFOLLOW", 0)
CLOEXEC: int = getattr(os, "O_CLOEXEC", 0)
BINARY: int = getattr(os, "O_BINARY", 0)
"""Windows opens files in text mode (CRLF translation) unless told otherwise."""

# Windows error codes of a file another program keeps open without sharing it.
_ERROR_SHARING_VIOLATION = 32
_ERROR_LOCK_VIOLATION = 33


# --- where mailadvisor keeps its own files ---------------------------------------------


def config_dir() -> Path:
    """Profiles: ``~/.config/mailadvisor`` (Linux), ``~/Library/Application Support/
    mailadvisor`` (macOS), ``%LOCALAPPDATA%\\mailadvisor`` (Windows)."""
    return platformdirs.user_config_path(APP_NAME, appauthor=False)


def state_dir() -> Path:
    """Journals and token files: ``~/.local/state/mailadvisor`` (Linux), ``~/Library/
    Application Support/mailadvisor`` (macOS), ``%LOCALAPPDATA%\\mailadvisor`` (Windows)."""
    return platformdirs.user_state_path(APP_NAME, appauthor=False)


# --- private files ---------------------------------------------------------------------


def open_private(path: Path | str, flags: int) -> int:
    """``os.open`` with mode 0600 (ignored by Windows), in binary mode on Windows."""
    return os.open(path, flags | BINARY, 0o600)


def make_private_fd(fd: int) -> None:
    """Mode 0600 on an open file, also when it already existed with another mode."""
    if sys.platform != "win32":
        os.fchmod(fd, 0o600)


def write_private(path: Path | str, data: bytes | str) -> None:
    """Replace ``path``'s content with ``data``, readable by the user alone (0600, also
    when the file existed with another mode); text is written as UTF-8."""
    fd = open_private(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    with os.fdopen(fd, "wb") as out:
        make_private_fd(fd)
        out.write(data.encode("utf-8") if isinstance(data, str) else data)


def make_private(path: Path) -> None:
    """Mode 0600 on a file (on Windows a chmod only sets the read-only bit: skipped)."""
    if sys.platform != "win32":
        path.chmod(0o600)


def owned_by_me(st: os.stat_result) -> bool:
    """Whether a file belongs to this user; always true on Windows, where stat has no
    owner (the per-user directory's ACL is what keeps others out)."""
    if sys.platform == "win32":
        return True
    return st.st_uid == os.geteuid()


def readable_by_others(st: os.stat_result) -> bool:
    """Group or other permission bits set (POSIX); Windows has no such bits."""
    return sys.platform != "win32" and bool(stat.S_IMODE(st.st_mode) & 0o077)


# --- reading -------------------------------------------------------------------------


def pread(fd: int, length: int, offset: int) -> bytes:
    """``length`` bytes at ``offset``; Windows has no ``os.pread``, so it seeks there
    (the file position moves: only for descriptors nothing else reads sequentially)."""
    if sys.platform == "win32":
        os.lseek(fd, offset, os.SEEK_SET)
        return os.read(fd, length)
    return os.pread(fd, length, offset)


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity where the OS tells it)."""
    if sys.platform == "linux":
        try:
            return len(os.sched_getaffinity(0))
        except OSError:
            pass
    return os.cpu_count() or 1


# --- other programs holding files --------------------------------------------------------


def is_sharing_violation(exc: OSError) -> bool:
    """The error Windows gives when another program keeps the file open unshared
    (Thunderbird's parent.lock, a .pst Outlook has open)."""
    return getattr(exc, "winerror", None) in (_ERROR_SHARING_VIOLATION, _ERROR_LOCK_VIOLATION)


def held_open_elsewhere(path: Path) -> bool:
    """Windows: another process holds ``path`` open without sharing it (a running
    Thunderbird keeps parent.lock so). Opening for reading is the test: it creates and
    changes nothing. Always False elsewhere (POSIX has no mandatory share modes)."""
    if sys.platform != "win32":
        return False
    try:
        with open(path, "rb"):
            return False
    except OSError as exc:
        return is_sharing_violation(exc) or isinstance(exc, PermissionError)


def fcntl_lock_holder(path: Path) -> int | None:
    """Linux and macOS: the pid holding an fcntl lock on ``path`` (0 if unknown), None
    when unlocked (or on Windows, which has no fcntl).

    Opens the file read-only (never creating it) and uses F_GETLK, which tests for a
    conflicting lock without taking one.
    """
    if sys.platform == "win32":
        return None
    import fcntl
    import struct

    try:
        fd = os.open(path, os.O_RDONLY | NOFOLLOW | CLOEXEC)
    except OSError:
        return None
    try:
        if sys.platform == "darwin":
            layout = "@qqihh"  # l_start, l_len, l_pid, l_type, l_whence
            request = struct.pack(layout, 0, 0, 0, fcntl.F_WRLCK, os.SEEK_SET)
        else:
            layout = "@hhqqi"  # l_type, l_whence, l_start, l_len, l_pid
            request = struct.pack(layout, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        request += b"\0" * 8  # room for the C struct's tail padding
        try:
            answer = fcntl.fcntl(fd, fcntl.F_GETLK, request)
        except OSError:
            return None
        fields = struct.unpack_from(layout, answer)
        lock_type, pid = (
            (fields[3], fields[2]) if sys.platform == "darwin" else (fields[0], fields[4])
        )
        return None if lock_type == fcntl.F_UNLCK else int(pid)
    finally:
        os.close(fd)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists. On Windows ``os.kill(pid, 0)`` would not ask: it
    sends Ctrl+C to the process, so the process is opened for a query instead."""
    if sys.platform == "win32":
        return _windows_pid_alive(pid)
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _windows_pid_alive(pid: int) -> bool:
    if sys.platform != "win32":  # for mypy on other platforms; never reached there
        return False
    import ctypes

    process_query_limited_information = 0x1000
    still_active = 259
    kernel32 = ctypes.windll.kernel32
    handle = kernel32.OpenProcess(process_query_limited_information, False, pid)
    if not handle:
        # Access denied means it exists (another user's process).
        return bool(kernel32.GetLastError() == 5)
    try:
        code = ctypes.c_ulong()
        if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
            return True
        return code.value == still_active
    finally:
        kernel32.CloseHandle(handle)


# --- commands and the user's shell --------------------------------------------------------


def command_line(command: str) -> str | list[str]:
    """A ``password_command``/``token_command`` for subprocess, without a shell: split
    the POSIX way, or on Windows left whole for CreateProcess to parse (a POSIX split
    would eat the backslashes of ``C:\\Program Files\\...``)."""
    if sys.platform == "win32":
        return command
    return shlex.split(command)


def command_name(command: str) -> str:
    """The program a command line starts, for error messages."""
    if sys.platform == "win32":
        text = command.strip()
        if text.startswith('"'):
            return text[1:].split('"', 1)[0]
        return text.split(" ", 1)[0]
    words = shlex.split(command)
    return words[0] if words else ""


def shell_quote(text: str) -> str:
    """``text`` as one word for the user's shell: POSIX quoting, or on Windows double
    quotes (read alike by PowerShell and cmd.exe) when it holds a space or special."""
    if sys.platform == "win32":
        if text and not any(c in text for c in " \t&|<>^()%!;,'\"`$@{}"):
            return text
        return '"' + text.replace('"', '""') + '"'
    return shlex.quote(text)


def set_env_secretly_hint(variable: str) -> str:
    """A command that sets ``variable`` to a typed secret without echoing it, in the
    user's usual shell (POSIX sh; PowerShell on Windows, 5.1 and 7 alike)."""
    if sys.platform == "win32":
        return (
            f"$env:{variable} = [Net.NetworkCredential]::new('', "
            "(Read-Host -AsSecureString)).Password"
        )
    return f"read -rs {variable} && export {variable}"


# --- the Windows registry ------------------------------------------------------------------

_OUTLOOK_PROFILE_KEYS = (
    # Outlook 2013 (15.0) and later keep mail profiles per Office version...
    *(rf"Software\Microsoft\Office\{v}\Outlook\Profiles" for v in ("16.0", "15.0")),
    # ... older ones in the Windows Messaging Subsystem.
    r"Software\Microsoft\Windows NT\CurrentVersion\Windows Messaging Subsystem\Profiles",
)
_PST_PATH_VALUE = "001f6700"  # PR_PST_PATH_W of a .pst's message-store entry


def outlook_registry_pst_values() -> list[bytes]:
    """Windows: the raw PR_PST_PATH_W values of every Outlook mail profile of this user
    (HKEY_CURRENT_USER, read-only); empty elsewhere or when nothing is readable."""
    found: list[bytes] = []
    if sys.platform == "win32":
        import winreg  # here, not at the top: the module imports everywhere

        def walk(key: winreg.HKEYType, depth: int) -> None:
            with contextlib.suppress(OSError):
                value, kind = winreg.QueryValueEx(key, _PST_PATH_VALUE)
                if kind == winreg.REG_BINARY and isinstance(value, bytes):
                    found.append(value)
            for i in itertools.count() if depth else ():
                try:
                    name = winreg.EnumKey(key, i)
                except OSError:
                    break
                with contextlib.suppress(OSError), winreg.OpenKey(key, name) as child:
                    walk(child, depth - 1)

        for path in _OUTLOOK_PROFILE_KEYS:
            with (
                contextlib.suppress(OSError),
                winreg.OpenKey(winreg.HKEY_CURRENT_USER, path) as key,
            ):
                walk(key, 2)  # Profiles\<profile>\<service key>
    return found
