"""The guided wizard, driven like a user drives it.

Every question is a real questionary prompt: the test types its keys into a
prompt_toolkit pipe (as questionary's own tests/utils.py does) and the prompt reads
them. The account is a user of the real Dovecot fixture, the local mail a generated
Maildir in a fake home directory. One test runs the installed ``mailadvisor`` in a
pseudo-terminal and reads the screen.
"""

from __future__ import annotations

import json
import os
import plistlib
import shutil
import signal
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import keyring
import pexpect
import pytest
from jaraco.classes.properties import classproperty
from keyring.backend import KeyringBackend
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from advisor.cli import run
from advisor.cli.wizard.flow import Wizard, run_wizard
from advisor.cli.wizard.questions import (
    Option,
    Prompt,
    QuestionaryAsker,
    QuestionKind,
    WizardCancelled,
)
from advisor.cli.wizard.steps.copying import MigrationProgress
from advisor.devices.guide import DeviceKind
from advisor.exitcodes import ExitStatus
from advisor.migration.run_lock import AccountLock
from advisor.plugins.manager import load_plugins
from advisor.plugins.types import Protocol
from advisor.profile import AuthKind, load_profile
from advisor.secrets import KEYRING_SERVICE, resolve_secret
from tests.harness.dovecot import Account, DovecotServer
from tests.harness.mailgen import generate, write_maildir
from tests.harness.migrate_helpers import body_counts, server_messages, write_profile

CTRL_C = "\x03"
CTRL_U = "\x15"  # clears a pre-filled answer (emacs "kill line")
ENTER = "\r"
FOLDERS = [("INBOX",), ("Sent",), ("Work", "Projects")]


class ScriptedAsker(QuestionaryAsker):
    """Answers each question by typing its keys into a pipe, in the order scripted.

    The prompt is the real questionary one; only its input is a pipe and its output a
    DummyOutput. The pipe is closed after the keys, so keys that do not finish the
    question end it (EOF) instead of hanging the test.
    """

    def __init__(self, script: list[tuple[str, str]]) -> None:
        super().__init__()
        self.script = list(script)
        self.asked: list[Prompt] = []

    def ask(self, prompt: Prompt) -> Any:
        self.asked.append(prompt)
        assert self.script, f"unexpected question {prompt.key!r}: {prompt.message}"
        key, keys = self.script.pop(0)
        assert key == prompt.key, f"expected question {key!r}, got {prompt.key!r}: {prompt.message}"
        with create_pipe_input() as pipe:
            pipe.send_text(keys)
            pipe.close()
            self.input, self.output = pipe, DummyOutput()
            try:
                return super().ask(prompt)
            except WizardCancelled:
                assert CTRL_C in keys, f"the keys {keys!r} did not answer {prompt.key!r}"
                raise
            finally:
                self.input = self.output = None


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home directory whose ~/Maildir holds 30 generated messages in 3 folders."""
    home = tmp_path / "home"
    write_maildir(home / "Maildir", list(generate(30, FOLDERS, seed=11, sizes="small")))
    return home


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Where the wizard may write: the journal (state) and profiles; both start empty."""
    state, profiles = tmp_path / "state", tmp_path / "profiles"
    monkeypatch.setenv("XDG_STATE_HOME", str(state))  # the default journal lives here
    monkeypatch.delenv("EMAIL", raising=False)
    return {"state": state, "profiles": profiles}


def wizard(asker: ScriptedAsker, home: Path, places: dict[str, Path], **kw: Any) -> Wizard:
    return Wizard(
        asker,
        plugins=load_plugins(builtin_only=True),
        home=home,
        spool_dirs=(),
        profile_dir=places["profiles"],
        **kw,
    )


def imap_questions(account: Account, info: Any) -> list[tuple[str, str]]:
    """Answers up to a working IMAP sign-in, through a TLS and a login failure."""
    return [
        ("devices", "3" + ENTER),
        ("webmail", "y"),
        ("sync_state", ENTER),
        ("connectivity", ENTER),
        ("backups", ENTER),
        ("keep_off_server", ENTER),
        ("shared_mailbox", ENTER),
        ("email", account.email + ENTER),
        ("protocol", ENTER),  # IMAP, as advised
        # Offline, the servers are a guess (imap.example.test): the user types the real one.
        ("server_check", "2" + ENTER),
        ("server", f"{info.hostname}:{info.imaps_port}" + ENTER),
        ("password", account.password + ENTER),
        # The server's certificate comes from a private CA: the user gives its file.
        ("fix", ENTER),
        ("ca_file", str(info.ca_file) + ENTER),
        # The login name is not the address here: refused, then typed again.
        ("fix", ENTER),
        ("username", CTRL_U + account.username + ENTER),
        ("password", account.password + ENTER),
    ]


def one_device_signin(account: Account, info: Any) -> list[tuple[str, str]]:
    """Answers for one device, IMAP as first advised, through a TLS and a login failure."""
    return [
        ("devices", "1" + ENTER),
        ("webmail", ENTER),
        ("connectivity", ENTER),
        ("backups", "y"),
        ("keep_off_server", ENTER),
        ("shared_mailbox", ENTER),
        ("email", account.email + ENTER),
        ("protocol", ENTER),
        ("server_check", "2" + ENTER),
        ("server", f"{info.hostname}:{info.imaps_port}" + ENTER),
        ("password", account.password + ENTER),
        ("fix", ENTER),
        ("ca_file", str(info.ca_file) + ENTER),
        ("fix", ENTER),
        ("username", CTRL_U + account.username + ENTER),
        ("password", account.password + ENTER),
    ]


def test_imap_wizard_migrates_saves_a_profile_and_the_profile_reruns_with_nothing_to_do(
    tmp_path: Path,
    home: Path,
    places: dict[str, Path],
    dovecot: DovecotServer,
    imap_account: Account,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    info = dovecot.info
    profile_path = tmp_path / "mine.toml"
    asker = ScriptedAsker(
        [
            *imap_questions(imap_account, info),
            ("store", ENTER),  # the one store found: ~/Maildir
            ("migrate", ENTER),
            ("save", ENTER),
            ("profile_path", CTRL_U + str(profile_path) + ENTER),
            ("secret_source", ENTER),  # no keyring on a headless machine: env is first
            ("password_env", CTRL_U + "MA_WIZARD_PW" + ENTER),
            # Three devices: this computer and two others, offered in turn.
            ("device", ENTER),  # iPhone
            ("device", ENTER),  # Android
            ("device", ENTER),  # no more
        ]
    )
    w = wizard(asker, home, places)
    result = w.run()
    out = capsys.readouterr().out
    assert not asker.script, "the wizard ended before every scripted question"
    assert result.status is ExitStatus.OK, out

    # Every question had a hint and a suggested answer; nothing measurable was asked.
    for prompt in asker.asked:
        assert prompt.hint, prompt.key
        if prompt.kind in (QuestionKind.SELECT, QuestionKind.CONFIRM):
            assert prompt.default is not None, prompt.key
    asked = {p.key for p in asker.asked}
    assert not asked & {"mail_size", "free_disk", "quota", "quota_used"}
    assert result.advice is not None and result.advice.answers.mail_size is not None
    assert result.advice.answers.free_disk is not None
    assert result.advice.answers.quota == 1024**3  # measured with GETQUOTAROOT after sign-in

    # The conversation, in plain words: advice, failures explained, plan, report.
    assert "My advice: IMAP" in out
    assert "Measured:" in out and "of mail" in out
    assert "certificate" in out and "That did not work" in out
    assert "did not accept the user name or the password" in out
    assert "Plan (dry run: nothing was changed)" in out and "Migration report" in out
    assert imap_account.password not in out

    # The mail is on the server, once, in its folders.
    assert result.report is not None and result.report.uploaded == 30
    on_server = server_messages(dovecot, imap_account)
    assert {name for name, msgs in on_server.items() if msgs} == {"INBOX", "Sent", "Work/Projects"}
    assert sum(body_counts(dovecot, imap_account).values()) == 30

    # The profile: private, no password, the tested server and the store.
    assert result.profile_path == profile_path
    text = profile_path.read_text()
    assert imap_account.password not in text
    assert stat.S_IMODE(profile_path.stat().st_mode) == 0o600
    saved = load_profile(profile_path)
    assert saved.auth.password_env == "MA_WIZARD_PW" and not saved.auth.keyring
    assert saved.server is not None and saved.server.port == info.imaps_port
    assert saved.server.username == imap_account.username
    assert saved.server.ca_file == Path(info.ca_file).resolve()
    assert saved.source.path == home / "Maildir"
    assert saved.advice.devices == 3 and saved.advice.webmail is True
    assert saved.advice.mail_size is None  # measured values are not answers to keep
    assert not list(profile_path.parent.glob(".mine.toml.*")), "a temporary file was left"

    # The other devices: a file each, no password in them, and the switch in order.
    assert set(result.device_files) == {DeviceKind.APPLE, DeviceKind.ANDROID}
    (mail,) = plistlib.loads(result.device_files[DeviceKind.APPLE].read_bytes())["PayloadContent"]
    assert mail["IncomingMailServerPortNumber"] == info.imaps_port
    assert "IncomingPassword" not in mail
    qr_image = result.device_files[DeviceKind.ANDROID].read_bytes()
    assert imap_account.password.encode() not in qr_image
    flat = " ".join(out.split())
    assert "Switching from POP3 without losing mail" in flat
    assert f"mailadvisor migrate --profile {profile_path}" in flat

    # The same run again from the profile: nothing to upload, the journal knows it all.
    monkeypatch.setenv("MA_WIZARD_PW", imap_account.password)
    assert run(["migrate", "--profile", str(profile_path), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["uploaded"] == 0
    assert again["already_done"] == 30
    assert sum(body_counts(dovecot, imap_account).values()) == 30


def test_ctrl_c_at_a_question_exits_130_and_writes_nothing(
    tmp_path: Path, home: Path, places: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    asker = ScriptedAsker([("devices", ENTER), ("webmail", CTRL_C)])
    status = run_wizard(
        asker,
        plugins=load_plugins(builtin_only=True),
        home=home,
        spool_dirs=(),
        profile_dir=places["profiles"],
    )
    assert status == ExitStatus.INTERRUPTED == 130
    assert "Nothing was changed" in capsys.readouterr().out
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_ctrl_c_at_the_plan_leaves_the_server_and_the_state_untouched(
    home: Path,
    places: dict[str, Path],
    dovecot: DovecotServer,
    imap_account: Account,
    capsys: pytest.CaptureFixture[str],
) -> None:
    info = dovecot.info
    asker = ScriptedAsker(
        [*imap_questions(imap_account, info), ("store", ENTER), ("migrate", CTRL_C)]
    )
    status = wizard(asker, home, places).main()
    out = capsys.readouterr().out
    assert status == 130
    assert "Plan (dry run: nothing was changed)" in out and "Nothing was changed" in out
    assert sum(body_counts(dovecot, imap_account).values()) == 0
    # The plan used a throwaway journal: no state was written for this account; only the
    # answers so far are kept, as a draft without the password.
    assert not places["state"].exists()
    (draft,) = places["profiles"].iterdir()
    assert draft.name.endswith(".draft.toml")
    assert imap_account.password not in draft.read_text()


def test_while_another_run_moves_mail_into_the_account_the_wizard_copies_nothing(
    home: Path,
    places: dict[str, Path],
    dovecot: DovecotServer,
    imap_account: Account,
    capsys: pytest.CaptureFixture[str],
) -> None:
    info = dovecot.info
    # Another run (a cron job's `mailadvisor migrate`, say) holds the account's lock.
    other = AccountLock(info.hostname.upper(), info.imaps_port, imap_account.username)
    other.acquire()
    try:
        asker = ScriptedAsker(
            [
                *imap_questions(imap_account, info),
                ("store", ENTER),
                ("migrate", ENTER),
                ("save", "n"),
            ]
        )
        status = wizard(asker, home, places).main()
    finally:
        other.release()
    out = " ".join(capsys.readouterr().out.split())
    assert status == ExitStatus.ACCOUNT_BUSY == 5, out
    assert f"another mailadvisor run is moving mail into {imap_account.email} on " in out
    assert f"(pid {os.getpid()} on " in out and "Nothing was copied" in out
    assert sum(body_counts(dovecot, imap_account).values()) == 0


class InterruptingWizard(Wizard):
    """Sends itself a real SIGINT (what Ctrl-C does) in the middle of the copying."""

    after = 250

    @contextmanager
    def migration_progress(self, total: int) -> Iterator[MigrationProgress]:
        outer = self

        class Interrupting:
            seen = 0
            fired = False

            def advance(self, messages: int, size: int) -> None:
                Interrupting.seen += messages
                # ">=": answers are counted in batches, which may step over `after`.
                if Interrupting.seen >= outer.after and not Interrupting.fired:
                    Interrupting.fired = True
                    signal.raise_signal(signal.SIGINT)

            def note(self, text: str) -> None:
                return None

        yield Interrupting()


def test_ctrl_c_while_copying_leaves_a_consistent_journal(
    tmp_path: Path,
    places: dict[str, Path],
    dovecot: DovecotServer,
    imap_account: Account,
    capsys: pytest.CaptureFixture[str],
) -> None:
    home = tmp_path / "home"
    write_maildir(home / "Maildir", list(generate(400, [("INBOX",)], seed=5, sizes="small")))
    info = dovecot.info
    asker = ScriptedAsker(
        [*imap_questions(imap_account, info), ("store", ENTER), ("migrate", ENTER)]
    )
    w = InterruptingWizard(
        asker,
        plugins=load_plugins(builtin_only=True),
        home=home,
        spool_dirs=(),
        profile_dir=places["profiles"],
    )
    status = w.main()
    out = capsys.readouterr().out
    assert status == 130, out
    copied = sum(body_counts(dovecot, imap_account).values())
    assert f"Stopped while copying. {copied:,} messages were copied" in " ".join(out.split())
    # No profile after Ctrl-C: only a draft of the answers, without the password.
    assert [p.name for p in places["profiles"].iterdir()] == [f"{imap_account.email}.draft.toml"]
    assert imap_account.password not in next(places["profiles"].iterdir()).read_text()
    assert 0 < copied < 400  # the first batch went, the rest did not

    # What the journal says is exactly what is on the server: a run from a profile
    # for the same account continues without a duplicate.
    profile, _env = write_profile(tmp_path, dovecot, imap_account, home / "Maildir")
    assert run(["migrate", "--profile", str(profile), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["already_done"] == copied and report["found_on_server"] == 0
    assert report["uploaded"] == 400 - copied
    counts = body_counts(dovecot, imap_account)
    assert sum(counts.values()) == 400 and max(counts.values()) == 1


def test_pop3_wizard_tests_the_login_and_explains_the_settings(
    home: Path,
    places: dict[str, Path],
    dovecot: DovecotServer,
    imap_account: Account,
    capsys: pytest.CaptureFixture[str],
) -> None:
    info = dovecot.info
    asker = ScriptedAsker(
        [
            ("devices", "1" + ENTER),
            ("webmail", ENTER),
            ("connectivity", "3" + ENTER),  # rarely online
            ("backups", "y"),
            ("keep_off_server", "y"),
            ("shared_mailbox", ENTER),
            ("email", imap_account.email + ENTER),
            ("protocol", ENTER),  # the advice: POP3
            ("server_check", "2" + ENTER),
            ("server", f"{info.hostname}:{info.pop3s_port}" + ENTER),
            ("password", imap_account.password + ENTER),
            ("fix", ENTER),  # the certificate: use the private CA's file
            ("ca_file", str(info.ca_file) + ENTER),
            ("fix", ENTER),
            ("username", CTRL_U + imap_account.username + ENTER),
            ("password", imap_account.password + ENTER),
            ("save", "n"),
        ]
    )
    result = wizard(asker, home, places).run()
    out = capsys.readouterr().out
    assert not asker.script
    assert result.status is ExitStatus.OK, out
    assert "My advice: POP3" in out
    assert "Counting the mail waiting there" in out  # the POP3 login and STAT passed
    assert f"server {info.hostname}, port {info.pop3s_port}" in " ".join(out.split())
    assert "Leave messages on server" in out and "Backups" in out
    assert "Do not leave a copy on the server" in " ".join(out.split())
    assert result.report is None and result.profile_path is None
    assert not places["profiles"].exists() and not places["state"].exists()


def test_without_a_terminal_it_points_to_profiles_and_exits_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run([]) == ExitStatus.USAGE
    err = capsys.readouterr().err
    assert "needs a terminal" in err and "mailadvisor migrate --profile FILE" in err
    assert "mailadvisor --help" in err
    done = subprocess.run(
        ["mailadvisor"], stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert "mailadvisor migrate --profile FILE" in done.stderr and "Traceback" not in done.stderr


def test_in_a_real_terminal_it_asks_advises_and_stops_on_ctrl_c(home: Path, tmp_path: Path) -> None:
    exe = shutil.which("mailadvisor")
    assert exe, "the mailadvisor console script is installed"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "TERM": "xterm-256color",
        "LANG": "C.UTF-8",
        "PROMPT_TOOLKIT_NO_CPR": "1",  # pexpect does not answer cursor-position requests
        "MAILADVISOR_BUILTIN_PLUGINS_ONLY": "1",
    }
    child = pexpect.spawn(
        exe, env=env, dimensions=(50, 120), timeout=20, encoding="utf-8", cwd=str(tmp_path)
    )
    try:
        child.expect("I found:")
        child.expect(r"30\s+messages\s+in\s+3\s+folders")  # ~/Maildir, counted
        child.expect("On how many devices do you read this mail")
        child.send("1" + ENTER)
        child.expect("web browser")
        child.send("n")
        child.expect("How is this computer connected")  # one device, no webmail: no sync
        child.send(ENTER)
        child.expect("back up this computer")
        child.send("n")
        child.expect("removed from your provider")
        child.send(ENTER)
        child.expect("other people work in this mailbox")
        child.send(ENTER)
        child.expect("My advice: (IMAP|POP3)")
        child.expect("Why")
        child.expect("What is your email address")
        child.send(CTRL_C)
        child.expect("Nothing was changed")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 130, child.before
    assert not (tmp_path / "state").exists() and not (tmp_path / "config").exists()


def pipe_answer(prompt: Prompt, keys: str) -> Any:
    with create_pipe_input() as pipe:
        pipe.send_text(keys)
        pipe.close()
        return QuestionaryAsker(input=pipe, output=DummyOutput()).ask(prompt)


def test_questions_take_defaults_shortcuts_validation_and_stop_on_ctrl_c_or_ctrl_d() -> None:
    confirm = Prompt("backups", QuestionKind.CONFIRM, "Backups?", "A disk.", default=False)
    assert pipe_answer(confirm, ENTER) is False
    assert pipe_answer(confirm, "y") is True
    select = Prompt(
        "n",
        QuestionKind.SELECT,
        "How many?",
        "Count them.",
        2,
        (Option("One", 1), Option("Two", 2), Option("Three", 3, disabled="not here")),
    )
    assert pipe_answer(select, ENTER) == 2
    assert pipe_answer(select, "1" + ENTER) == 1
    email = Prompt(
        "email",
        QuestionKind.TEXT,
        "Address?",
        "Yours.",
        "x",
        validate=lambda t: "@" in t or "an address has an @",
    )
    # A refused answer stays on screen to be corrected; the prompt returns the good one.
    assert pipe_answer(email, "y" + ENTER + CTRL_U + "a@b.example" + ENTER) == "a@b.example"
    for keys in (CTRL_C, "\x04"):  # Ctrl-C anywhere, Ctrl-D on an empty line
        with pytest.raises(WizardCancelled):
            pipe_answer(replace_default(email, ""), keys)


def replace_default(prompt: Prompt, default: Any) -> Prompt:
    return Prompt(prompt.key, prompt.kind, prompt.message, prompt.hint, default, prompt.options)


def test_a_small_quota_turns_the_advice_to_pop3_and_the_wizard_follows(
    tmp_path: Path,
    places: dict[str, Path],
    dovecot: DovecotServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    home = tmp_path / "home"
    write_maildir(home / "Maildir", list(generate(40, [("INBOX",)], seed=3, sizes="small")))
    account = dovecot.add_user(quota_kb=20)  # far less than the 60-odd kB of mail
    info = dovecot.info
    asker = ScriptedAsker(
        [
            ("devices", "1" + ENTER),
            ("webmail", ENTER),
            ("connectivity", ENTER),
            ("backups", "y"),
            ("keep_off_server", ENTER),
            ("shared_mailbox", ENTER),
            ("email", account.email + ENTER),
            ("protocol", ENTER),  # IMAP, as advised so far (a close call)
            ("server_check", "2" + ENTER),
            ("server", f"{info.hostname}:{info.imaps_port}" + ENTER),
            ("password", account.password + ENTER),
            ("fix", ENTER),
            ("ca_file", str(info.ca_file) + ENTER),
            ("fix", ENTER),
            ("username", CTRL_U + account.username + ENTER),
            ("password", account.password + ENTER),
            # Measured: 20 kB of storage for this mail. The advice turns to POP3.
            ("imap_anyway", ENTER),
            # POP3 then: same password, same CA file, same user name; only the server.
            ("server_check", "2" + ENTER),
            ("server", f"{info.hostname}:{info.pop3s_port}" + ENTER),
            ("save", "n"),
        ]
    )
    result = wizard(asker, home, places).run()
    out = " ".join(capsys.readouterr().out.split())
    assert not asker.script
    assert result.status is ExitStatus.OK, out
    assert "My advice: IMAP" in out and "What the storage limit changes" in out
    assert "My advice: POP3" in out
    assert result.advice is not None and result.advice.answers.quota == 20 * 1024
    assert result.protocol is Protocol.POP3
    assert result.report is None  # nothing was copied into the too-small account
    assert "Leave messages on server" in out


def test_a_provider_without_passwords_gets_a_profile_for_signin(
    tmp_path: Path, home: Path, places: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    asker = ScriptedAsker(
        [
            ("devices", ENTER),
            ("webmail", ENTER),
            ("sync_state", ENTER),
            ("connectivity", ENTER),
            ("backups", ENTER),
            ("keep_off_server", ENTER),
            ("shared_mailbox", ENTER),
            ("email", "alex@outlook.com" + ENTER),
            ("protocol", ENTER),
            ("store", ENTER),
            ("save", ENTER),
            ("profile_path", ENTER),  # the suggested place
            ("device", "2" + ENTER),  # Android
            ("device", "4" + ENTER),  # no more
        ]
    )
    result = wizard(asker, home, places).run()
    out = " ".join(capsys.readouterr().out.split())
    assert not asker.script, out
    assert "switched on" in out  # Outlook's constraint, as a step to take first
    assert "mailadvisor signin --profile" in out and "To copy your mail" in out
    assert result.profile_path == places["profiles"] / "alex@outlook.com.toml"
    saved = load_profile(result.profile_path)
    assert saved.auth.method is AuthKind.OAUTH2 and saved.account.provider == "outlook"
    assert saved.source.path == home / "Maildir"
    assert not {p.key for p in asker.asked} & {"password", "secret_source"}
    # The phone signs in through Outlook's page too: the QR code says OAuth2, no password.
    qr = result.device_files[DeviceKind.ANDROID]
    decoded = subprocess.run(
        ["zbarimg", "--raw", "-q", "-Sbinary", str(qr)], capture_output=True, check=True
    ).stdout.decode()
    assert json.loads(decoded)[2][4] == 6


class MemoryKeyring(KeyringBackend):
    """A keyring in memory: this headless machine has no keyring service to talk to."""

    @classproperty
    def priority(cls) -> float:
        # A backend class registers itself when defined; not viable means keyring never
        # picks it by itself (other tests must keep this machine's "no keyring").
        raise RuntimeError("a test keyring, used only when set explicitly")

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.items.pop((service, username), None)


def test_the_password_goes_to_the_keyring_or_a_checked_command_never_to_the_profile(
    home: Path, places: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "s3cret-typed"
    memory = MemoryKeyring()
    previous = keyring.get_keyring()
    keyring.set_keyring(memory)
    try:
        w = wizard(ScriptedAsker([("secret_source", ENTER)]), home, places)
        w.profile.account.email = "alex@example.org"
        w._password = secret
        auth = w._secret_source()
        assert auth.keyring and not auth.password_env
        assert memory.items == {(KEYRING_SERVICE, "alex@example.org"): secret}
        assert resolve_secret(auth, "alex@example.org") == secret
    finally:
        keyring.set_keyring(previous)

    # Without a keyring: a password command is run once, and must print the same password.
    wrong, right = tmp_path / "wrong.sh", tmp_path / "right.sh"
    wrong.write_text("#!/bin/sh\necho not-it\n")
    right.write_text(f"#!/bin/sh\necho {secret}\n")
    for script in (wrong, right):
        script.chmod(0o700)
    asker = ScriptedAsker(
        [
            ("secret_source", "2" + ENTER),
            ("password_command", f"{wrong}" + ENTER),
            ("secret_source", "2" + ENTER),
            ("password_command", f"{right}" + ENTER),
        ]
    )
    w = wizard(asker, home, places)
    w.profile.account.email = "alex@example.org"
    w._password = secret
    auth = w._secret_source()
    assert auth.password_command == str(right) and not auth.keyring
    out = capsys.readouterr().out
    assert "prints a different password" in out and secret not in out


def test_mail_that_does_not_fit_is_a_question_not_thousands_of_failures(
    tmp_path: Path,
    places: dict[str, Path],
    dovecot: DovecotServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    home = tmp_path / "home"
    write_maildir(home / "Maildir", list(generate(40, [("INBOX",)], seed=3, sizes="small")))
    account = dovecot.add_user(quota_kb=20)  # far less than the 60-odd kB of mail
    info = dovecot.info
    asker = ScriptedAsker(
        [
            *one_device_signin(account, info),
            ("imap_anyway", "y"),  # the user wants IMAP although the account is small
            ("store", ENTER),
            ("when_full", "1" + ENTER),  # the newest messages that fit
            ("migrate", ENTER),
            ("save", "n"),
        ]
    )
    result = wizard(asker, home, places).run()
    out = " ".join(capsys.readouterr().out.split())
    assert not asker.script, out
    assert result.status is ExitStatus.ACCOUNT_FULL, out
    assert "does not fit" in out and "Your account is full" in out
    report = result.report
    assert report is not None and report.failures == [] and report.not_migrated_mbox is None
    assert report.uploaded > 0 and report.deferred == 40 - report.uploaded
    assert sum(body_counts(dovecot, account).values()) == report.uploaded
