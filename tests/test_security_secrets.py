"""Secrets never leak: every output and every written file is searched for the password.

A real migration into the Dovecot fixture, ``mailadvisor test``, the failure paths
(a wrong password, a password command that fails after printing the secret) and
the wizard run with a distinctive password. Then everything is searched for it,
raw and in base64 (as AUTHENTICATE PLAIN would carry it): stdout and stderr, a
DEBUG log of every logger (including imapclient's protocol trace), and every
file below a sandbox that HOME and the XDG directories point to (the journal,
profiles, the state directory). ``mailadvisor forget`` then removes the password
from the keyring. Token files (0600, refused when others can read them) are
tested with the token store in tests/test_oauth_tokens.py.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest

from advisor.cli import run
from advisor.cli.wizard.flow import Wizard
from advisor.exitcodes import ExitStatus
from advisor.plugins.manager import load_plugins
from advisor.secrets import KEYRING_SERVICE
from tests.harness.dovecot import Account, DovecotServer
from tests.harness.mailgen import generate, write_maildir
from tests.harness.mitm import credential_forms
from tests.test_oauth_tokens import MemoryKeyring
from tests.test_wizard import ENTER, ScriptedAsker, imap_questions

CANARY = "Zx9!secret-canary-7Q"
WRONG = "Zx9!wrong-canary-8R"
# Beyond ASCII: it travels by AUTHENTICATE PLAIN in UTF-8, in base64 (searched for too).
CANARY_8BIT = "Zx9!sécrét-cänary-€7Q"
WRONG_8BIT = "Zx9!wröng-cänary-€8R"
FOLDERS = [("INBOX",), ("Projects",)]


class Leaks:
    """Collects everything mailadvisor showed or wrote, and searches it for secrets."""

    def __init__(self, root: Path, log: io.StringIO, capsys: pytest.CaptureFixture[str]) -> None:
        self.root = root
        self.log = log
        self.capsys = capsys
        self.shown: list[str] = []

    def cli(self, *argv: str) -> int:
        status = run(list(argv))
        out = self.capsys.readouterr()
        self.shown += [out.out, out.err]
        return status

    def last(self) -> str:
        return self.shown[-2] + self.shown[-1]

    def files(self) -> dict[Path, bytes]:
        return {p: p.read_bytes() for p in sorted(self.root.rglob("*")) if p.is_file()}

    def find(self, username: str, *secrets: str) -> list[str]:
        needles = [f for s in secrets for f in credential_forms(username, s)]
        found = []
        for text in [*self.shown, self.log.getvalue()]:
            found += [n.decode() for n in needles if n.decode() in text]
        for path, data in self.files().items():
            found += [f"{path}: {n!r}" for n in needles if n in data]
        return found


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HOME and every XDG directory below one tree, so every file written can be read."""
    root = tmp_path / "sandbox"
    for var, sub in (
        ("HOME", "home"),
        ("XDG_STATE_HOME", "state"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_CACHE_HOME", "cache"),
    ):
        (root / sub).mkdir(parents=True)
        monkeypatch.setenv(var, str(root / sub))
    monkeypatch.delenv("MAILADVISOR_TOKEN_STORE", raising=False)
    monkeypatch.delenv("EMAIL", raising=False)
    return root


@pytest.fixture
def debug_log() -> Iterator[io.StringIO]:
    """Every log record of every logger at DEBUG, imapclient's IMAP trace included."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture
def account(dovecot: DovecotServer) -> Account:
    return dovecot.add_user(password=CANARY)


@pytest.fixture
def leaks(sandbox: Path, debug_log: io.StringIO, capsys: pytest.CaptureFixture[str]) -> Leaks:
    return Leaks(sandbox, debug_log, capsys)


def _profile(sandbox: Path, name: str, dovecot: DovecotServer, account: Account, auth: str) -> Path:
    info = dovecot.info
    path = sandbox / "profiles" / f"{name}.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(
        f"""version = 1
[account]
email = "{account.email}"
provider = "generic"
[server]
host = "{info.hostname}"
port = {info.imap_starttls_port}
security = "starttls"
username = "{account.username}"
ca_file = "{info.ca_file}"
[auth]
method = "password"
{auth}
[source]
kind = "maildir"
path = "{sandbox / "home" / "Maildir"}"
"""
    )
    return path


def _script(sandbox: Path, name: str, body: str) -> Path:
    """A password command; it reads the secret from the environment, never holds it."""
    path = sandbox / "bin" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o700)
    return path


def test_no_secret_in_any_output_log_or_file(
    sandbox: Path,
    leaks: Leaks,
    dovecot: DovecotServer,
    account: Account,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_maildir(sandbox / "home" / "Maildir", generate(12, FOLDERS, sizes="small"))
    monkeypatch.setenv("MA_CANARY", CANARY)
    monkeypatch.setenv("MA_WRONG", WRONG)
    env = _profile(sandbox, "env", dovecot, account, 'password_env = "MA_CANARY"')

    # The migration, its re-run, and the connection test: all work.
    assert leaks.cli("migrate", "--profile", str(env)) == ExitStatus.OK, leaks.last()
    assert leaks.cli("migrate", "--profile", str(env), "--json") == ExitStatus.OK
    assert '"already_done": 12' in leaks.last()
    assert leaks.cli("test", "--profile", str(env)) == ExitStatus.OK, leaks.last()
    assert leaks.cli("test", "--profile", str(env), "--json") == ExitStatus.OK

    # A password command that works, and one that prints the secret and then fails.
    good = _script(sandbox, "good", 'printf "%s\\n" "$MA_CANARY"\n')
    bad = _script(sandbox, "bad", 'printf "%s\\n" "$MA_CANARY"; echo "$MA_CANARY" >&2; exit 3\n')
    cmd = _profile(sandbox, "cmd", dovecot, account, f'password_command = "{good}"')
    assert leaks.cli("migrate", "--profile", str(cmd), "--json") == ExitStatus.OK
    failing = _profile(sandbox, "failing", dovecot, account, f'password_command = "{bad}"')
    assert leaks.cli("migrate", "--profile", str(failing)) == ExitStatus.USAGE
    assert "failed with status 3" in leaks.last()
    assert leaks.cli("test", "--profile", str(failing)) == ExitStatus.USAGE

    # A wrong password: refused, and the refusal does not quote it.
    wrong = _profile(sandbox, "wrong", dovecot, account, 'password_env = "MA_WRONG"')
    assert leaks.cli("migrate", "--profile", str(wrong)) == ExitStatus.AUTH_FAILED
    assert account.username in leaks.last()
    assert leaks.cli("test", "--profile", str(wrong), "--json") == ExitStatus.AUTH_FAILED

    # The search covered what it should: a journal in the state directory, the protocol trace.
    files = leaks.files()
    assert any(p.suffix == ".sqlite" and "state" in p.parts for p in files), sorted(files)
    assert "LOGIN **REDACTED**" in leaks.log.getvalue()
    assert leaks.find(account.username, CANARY, WRONG) == []


def test_forget_removes_the_password_from_the_keyring(
    sandbox: Path, leaks: Leaks, dovecot: DovecotServer, account: Account
) -> None:
    write_maildir(sandbox / "home" / "Maildir", generate(3, sizes="small"))
    memory = MemoryKeyring()
    previous = keyring.get_keyring()
    keyring.set_keyring(memory)
    try:
        keyring.set_password(KEYRING_SERVICE, account.email, CANARY)
        profile = _profile(sandbox, "keyring", dovecot, account, "keyring = true")
        assert leaks.cli("migrate", "--profile", str(profile)) == ExitStatus.OK, leaks.last()

        assert leaks.cli("forget", "--profile", str(profile)) == ExitStatus.OK
        assert "Removed" in leaks.last() and KEYRING_SERVICE in leaks.last()
        assert (KEYRING_SERVICE, account.email) not in memory.entries

        # Forgotten means forgotten: the next run cannot sign in, and says why.
        assert leaks.cli("migrate", "--profile", str(profile)) == ExitStatus.USAGE
        assert "keyring" in leaks.last()
        assert leaks.cli("forget", "--profile", str(profile), "--json") == ExitStatus.OK
        assert '"removed": []' in leaks.last()
    finally:
        keyring.set_keyring(previous)
    assert leaks.find(account.username, CANARY) == []


def test_the_wizard_leaves_no_secret_behind(
    sandbox: Path, leaks: Leaks, dovecot: DovecotServer, account: Account
) -> None:
    home = sandbox / "home"
    write_maildir(home / "Maildir", generate(5, FOLDERS, sizes="small"))
    profile_path = sandbox / "profiles" / "wizard.toml"
    asker = ScriptedAsker(
        [
            *imap_questions(account, dovecot.info),  # with a refused login on the way
            ("store", ENTER),
            ("migrate", ENTER),
            ("save", ENTER),
            ("profile_path", "\x15" + str(profile_path) + ENTER),
            ("secret_source", ENTER),
            ("password_env", "\x15MA_WIZARD_CANARY" + ENTER),
            ("device", "1" + ENTER),  # the iPhone profile: no password in it either
            ("device", "4" + ENTER),  # no more
        ]
    )
    wizard = Wizard(
        asker,
        plugins=load_plugins(builtin_only=True),
        home=home,
        spool_dirs=(),
        profile_dir=sandbox / "profiles",
    )
    result = wizard.run()
    out = leaks.capsys.readouterr()
    leaks.shown += [out.out, out.err]
    assert result.status is ExitStatus.OK, out.out
    assert not asker.script
    assert profile_path.is_file()
    assert "MA_WIZARD_CANARY" in profile_path.read_text()
    assert leaks.find(account.username, CANARY) == []
    assert "MA_WIZARD_CANARY" not in os.environ  # the wizard did not put it anywhere either


def test_no_secret_beyond_ascii_in_any_output_log_or_file(
    sandbox: Path,
    leaks: Leaks,
    dovecot: DovecotServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    account = dovecot.add_user(password=CANARY_8BIT)
    write_maildir(sandbox / "home" / "Maildir", generate(4, FOLDERS, sizes="small"))
    monkeypatch.setenv("MA_CANARY", CANARY_8BIT)
    monkeypatch.setenv("MA_WRONG", WRONG_8BIT)
    env = _profile(sandbox, "env8", dovecot, account, 'password_env = "MA_CANARY"')
    assert leaks.cli("migrate", "--profile", str(env)) == ExitStatus.OK, leaks.last()
    assert leaks.cli("test", "--profile", str(env), "--json") == ExitStatus.OK, leaks.last()
    good = _script(sandbox, "good8", 'printf "%s\\n" "$MA_CANARY"\n')
    cmd = _profile(sandbox, "cmd8", dovecot, account, f'password_command = "{good}"')
    assert leaks.cli("migrate", "--profile", str(cmd), "--json") == ExitStatus.OK
    wrong = _profile(sandbox, "wrong8", dovecot, account, 'password_env = "MA_WRONG"')
    assert leaks.cli("migrate", "--profile", str(wrong)) == ExitStatus.AUTH_FAILED
    assert "Traceback" not in leaks.last() and account.username in leaks.last()
    assert leaks.cli("test", "--profile", str(wrong)) == ExitStatus.AUTH_FAILED
    assert leaks.find(account.username, CANARY_8BIT, WRONG_8BIT) == []
    # The search looks for the UTF-8 forms a leak would take (raw and in base64).
    assert CANARY_8BIT.encode() in credential_forms(account.username, CANARY_8BIT)
