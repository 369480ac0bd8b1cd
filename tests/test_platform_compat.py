"""advisor.platform_compat on this machine, and its Windows branches where they can run.

The POSIX branches run for real (an fcntl lock held by another process, file modes);
the Windows branches that need only Python (pread by seeking, no chmod, no owner check)
run with ``sys.platform`` set to "win32". What needs a real Windows (a sharing violation
from a running Thunderbird, OpenProcess, the registry) cannot run here: the sharing
violation is raised by a stand-in ``open`` with the error Windows gives.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path, PureWindowsPath
from typing import Any

import platformdirs.macos
import platformdirs.windows
import pytest

from advisor import platform_compat as pc
from advisor.stores.base import ReaderOptions

HOLD_LOCK = """
import fcntl, sys
f = open(sys.argv[1], "r+b")
fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
print("locked", flush=True)
sys.stdin.read()
"""


def test_fcntl_lock_holder_sees_another_process_lock(tmp_path: Path) -> None:
    lock = tmp_path / ".parentlock"
    lock.write_bytes(b"")
    assert pc.fcntl_lock_holder(lock) is None
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(lock)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        assert pc.fcntl_lock_holder(lock) == holder.pid
    finally:
        holder.communicate("")
    assert pc.fcntl_lock_holder(lock) is None
    assert pc.fcntl_lock_holder(tmp_path / "missing") is None


def test_pread_on_both_branches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "mbox"
    path.write_bytes(b"From a\nxx\nFrom b\n")
    with open(path, "rb", buffering=0) as f:
        assert pc.pread(f.fileno(), 5, 10) == b"From "
        monkeypatch.setattr(sys, "platform", "win32")
        assert pc.pread(f.fileno(), 6, 10) == b"From b"
        assert pc.pread(f.fileno(), 4, 0) == b"From"


def test_private_files_posix_and_windows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "report.json"
    path.write_text("{}")
    path.chmod(0o644)
    fd = pc.open_private(path, os.O_WRONLY)
    try:
        pc.make_private_fd(fd)
    finally:
        os.close(fd)
    assert path.stat().st_mode & 0o777 == 0o600
    assert pc.owned_by_me(path.stat()) and not pc.readable_by_others(path.stat())
    path.chmod(0o644)
    assert pc.readable_by_others(path.stat())
    # Windows: mode bits mean nothing there, so nothing is changed or checked.
    monkeypatch.setattr(sys, "platform", "win32")
    pc.make_private(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        pc.make_private_fd(fd)
    finally:
        os.close(fd)
    assert path.stat().st_mode & 0o777 == 0o644
    assert pc.owned_by_me(os.stat_result((0o100644, 0, 0, 1, 12345, 0, 0, 0, 0, 0)))
    assert not pc.readable_by_others(path.stat())


def test_windows_profile_lock_is_a_sharing_violation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = tmp_path / "parent.lock"
    lock.write_bytes(b"")
    assert not pc.held_open_elsewhere(lock)  # POSIX: there are no share modes
    monkeypatch.setattr(sys, "platform", "win32")
    assert not pc.held_open_elsewhere(lock)  # nobody holds it: it opens

    def sharing_violation(*args: object, **kwargs: object) -> object:
        error = PermissionError(13, "The process cannot access the file", str(lock))
        error.winerror = 32  # type: ignore[attr-defined]  # ERROR_SHARING_VIOLATION
        raise error

    monkeypatch.setattr(pc, "open", sharing_violation, raising=False)
    assert pc.held_open_elsewhere(lock)
    plain = OSError(2, "missing")
    assert not pc.is_sharing_violation(plain)


def test_pid_alive_and_cores() -> None:
    assert pc.pid_alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not pc.pid_alive(child.pid)
    assert 1 <= pc.usable_cores() <= (os.cpu_count() or 1)


def test_where_files_live_on_each_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    # What the README says, as platformdirs computes it for each platform.
    monkeypatch.setenv("XDG_CONFIG_HOME", "/home/zoë/.config")
    monkeypatch.setenv("XDG_STATE_HOME", "/home/zoë/.local/state")
    assert pc.config_dir() == Path("/home/zoë/.config/mailadvisor")
    assert pc.state_dir() == Path("/home/zoë/.local/state/mailadvisor")
    monkeypatch.setenv("LOCALAPPDATA", r"C:\Users\Zoë\AppData\Local")
    # Windows asks the shell for known folders; here the environment answers instead.
    monkeypatch.setattr(
        platformdirs.windows,
        "_RESOLVE_WIN_FOLDER",
        platformdirs.windows.get_win_folder_from_env_vars,
    )
    windows = platformdirs.windows.Windows(appname=pc.APP_NAME, appauthor=False)
    for where in (windows.user_config_dir, windows.user_state_dir):
        assert PureWindowsPath(where) == PureWindowsPath(r"C:\Users\Zoë\AppData\Local\mailadvisor")
    monkeypatch.delenv("XDG_CONFIG_HOME")  # which platformdirs honours on a Mac too
    monkeypatch.delenv("XDG_STATE_HOME")
    mac = platformdirs.macos.MacOS(appname=pc.APP_NAME, appauthor=False)
    support = os.path.expanduser("~/Library/Application Support/mailadvisor")
    assert (mac.user_config_dir, mac.user_state_dir) == (support, support)


def test_commands_and_quoting_for_each_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    command = r'"C:\Program Files\KeePassXC\keepassxc-cli.exe" show -s db.kdbx Mail'
    assert pc.command_line("pass show 'mail/zoë'") == ["pass", "show", "mail/zoë"]
    assert pc.command_name("pass show x") == "pass"
    assert pc.shell_quote("/home/zoë/my profile.toml") == "'/home/zoë/my profile.toml'"
    assert pc.set_env_secretly_hint("PW") == "read -rs PW && export PW"
    monkeypatch.setattr(sys, "platform", "win32")
    # Windows: the line goes to CreateProcess whole; a POSIX split would eat backslashes.
    assert pc.command_line(command) == command
    assert pc.command_name(command) == r"C:\Program Files\KeePassXC\keepassxc-cli.exe"
    assert pc.command_name(r"C:\Tools\pw.exe get mail") == r"C:\Tools\pw.exe"
    assert pc.shell_quote(r"C:\Users\Zoë B\p.toml") == r'"C:\Users\Zoë B\p.toml"'
    assert pc.shell_quote(r"C:\Users\Zoë\p.toml") == r"C:\Users\Zoë\p.toml"  # no special characters
    assert pc.set_env_secretly_hint("PW").startswith("$env:PW = ")


def _sharing_violation(path: Path) -> object:
    """``open`` as Windows answers for ``path`` while another program holds it unshared."""
    real_open = open

    def fake_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        if Path(file) == path:
            error = PermissionError(13, "The process cannot access the file", str(path))
            error.winerror = 32  # type: ignore[attr-defined]
            raise error
        return real_open(file, *args, **kwargs)

    return fake_open


def test_a_running_windows_thunderbird_stops_the_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from advisor.errors import SourceLockedError
    from advisor.stores.thunderbird import ThunderbirdReader, profile_lock
    from tests.harness.scan_builders import TbMessage, message, utc, write_thunderbird_profile

    when = utc(2022, 1, 2)
    profile = write_thunderbird_profile(
        tmp_path / "Thunderbird" / "Profiles", {("Inbox",): [TbMessage(message("a", when), when)]}
    ).profile
    lock = profile / "parent.lock"
    lock.write_bytes(b"")
    monkeypatch.setattr(sys, "platform", "win32")
    assert not profile_lock(profile).held  # Thunderbird is not running: it opens
    monkeypatch.setattr(pc, "open", _sharing_violation(lock), raising=False)
    state = profile_lock(profile)
    assert state.held and state.lock_file == lock
    with pytest.raises(SourceLockedError, match="Quit Thunderbird"):
        list(ThunderbirdReader(profile).messages())
    assert len(list(ThunderbirdReader(profile, ReaderOptions(ignore_lock=True)).messages())) == 1


def test_a_pst_outlook_holds_open_is_a_locked_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from advisor.errors import SourceLockedError
    from advisor.stores import pst_libpff
    from advisor.stores.pst import PstReader

    source = tmp_path / "Outlook.pst"
    source.write_bytes((Path(__file__).parent / "data/pst/tika-testPST.pst").read_bytes())
    monkeypatch.setattr(pst_libpff, "open", _sharing_violation(source), raising=False)
    reader = PstReader(source, ReaderOptions(extra={"pst_reader": "libpff"}))
    with pytest.raises(SourceLockedError, match="close Outlook and try again"):
        list(reader.messages())
