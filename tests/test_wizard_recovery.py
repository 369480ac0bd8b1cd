"""The wizard never strands a user: STARTTLS and LAN plaintext offered in plain words, a bad
certificate file fixed in place, POP3 settings shown to one who stops, answers kept after
Ctrl-C. Through the same pipe-input harness as tests/test_wizard.py, against real Dovecot."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from advisor.exitcodes import ExitStatus
from advisor.migration.plan import to_crlf
from advisor.plugins.types import Security
from advisor.profile import load_profile
from advisor.stores.mbox import MboxReader
from tests.harness.dovecot import DovecotFactory, DovecotServer
from tests.harness.mailgen import GeneratedMessage, crlf, generate, write_maildir
from tests.harness.migrate_helpers import SIZE_LIMIT_CONFIG
from tests.test_wizard import (
    CTRL_C,
    CTRL_U,
    ENTER,
    ScriptedAsker,
    home,
    one_device_signin,
    places,
    wizard,
)

__all__ = ["home", "places"]  # the fixtures, shared with test_wizard

ANSWERS = [
    ("devices", "1" + ENTER),
    ("webmail", ENTER),
    ("connectivity", ENTER),
    ("backups", "y"),
    ("keep_off_server", "y"),  # with one device: POP3 is advised
    ("shared_mailbox", ENTER),
]


def test_a_starttls_port_gets_starttls_offered_and_saved(
    home: Path, places: dict[str, Path], dovecot: DovecotServer, capsys: pytest.CaptureFixture[str]
) -> None:
    account = dovecot.add_user()
    info = dovecot.info
    asker = ScriptedAsker(
        [
            ("devices", "3" + ENTER),
            ("webmail", ENTER),
            ("sync_state", ENTER),
            *ANSWERS[2:],
            ("email", account.email + ENTER),
            ("protocol", ENTER),
            ("server_check", "2" + ENTER),
            # The user types the STARTTLS port; the TLS handshake there fails.
            ("server", f"{info.hostname}:{info.imap_starttls_port}" + ENTER),
            ("password", account.password + ENTER),
            ("fix", ENTER),  # the first offer: STARTTLS on that port
            ("fix", ENTER),  # then the server's own certificate authority
            ("ca_file", str(info.ca_file) + ENTER),
            ("fix", ENTER),
            ("username", CTRL_U + account.username + ENTER),
            ("password", account.password + ENTER),
            ("store", ENTER),
            ("migrate", "n"),
            ("save", ENTER),
            ("profile_path", ENTER),
            ("secret_source", ENTER),
            ("password_env", CTRL_U + "MA_WIZ_PW" + ENTER),
            ("device", "5" + ENTER),
        ]
    )
    result = wizard(asker, home, places).run()
    out = " ".join(capsys.readouterr().out.split())
    assert not asker.script, out
    assert result.status is ExitStatus.OK, out
    assert "does not speak encrypted connections (TLS)" in out and "STARTTLS" in out
    assert result.profile_path is not None
    saved = load_profile(result.profile_path)
    assert saved.server is not None and saved.server.security is Security.STARTTLS
    assert saved.server.port == info.imap_starttls_port and not saved.server.allow_insecure


def test_a_certificate_file_that_is_no_certificate_is_asked_for_again(
    tmp_path: Path,
    home: Path,
    places: dict[str, Path],
    dovecot: DovecotServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    account = dovecot.add_user()
    info = dovecot.info
    bad = tmp_path / "not-a-certificate.pem"
    bad.write_text("this is not a certificate\n")
    asker = ScriptedAsker(
        [
            *ANSWERS,
            ("email", account.email + ENTER),
            ("protocol", "2" + ENTER),  # IMAP, not the advised POP3
            ("server_check", "2" + ENTER),
            ("server", f"{info.hostname}:{info.imaps_port}" + ENTER),
            ("password", account.password + ENTER),
            ("fix", ENTER),  # the server's own certificate authority (offered first)
            ("ca_file", str(bad) + ENTER),
            # Not the end: asked again, the right file works.
            ("ca_file", CTRL_U + str(info.ca_file) + ENTER),
            ("fix", ENTER),
            ("username", CTRL_U + account.username + ENTER),
            ("password", account.password + ENTER),
            ("imap_anyway", "y"),
            ("store", ENTER),
            ("migrate", "n"),
            ("save", "n"),
            ("device", ENTER),  # one device: this computer; nothing else to set up
        ]
    )
    result = wizard(asker, home, places).run()
    out = " ".join(capsys.readouterr().out.split())
    assert not asker.script, out
    assert result.status is ExitStatus.OK, out
    assert "The certificate file cannot be used" in out


def test_stopping_after_pop3_advice_still_shows_the_pop3_settings(
    home: Path, places: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    asker = ScriptedAsker(
        [*ANSWERS, ("email", "someone@gmx.net" + ENTER), ("protocol", "3" + ENTER)]
    )
    result = wizard(asker, home, places).run()
    out = " ".join(capsys.readouterr().out.split())
    assert not asker.script, out
    assert result.protocol is None and "My advice: POP3" in out
    assert "pop.gmx.net" in out and "port 995" in out and "Leave messages on server" in out
    assert "Fine: nothing was changed" in out


def test_ctrl_c_keeps_the_answers_so_far_in_a_draft_without_password(
    home: Path, places: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    asker = ScriptedAsker([*ANSWERS, ("email", "someone@gmx.net" + ENTER), ("protocol", CTRL_C)])
    status = wizard(asker, home, places).main()
    out = " ".join(capsys.readouterr().out.split())
    assert status == ExitStatus.INTERRUPTED
    draft = places["profiles"] / "someone@gmx.net.draft.toml"
    assert f"kept in {draft}" in out
    assert stat.S_IMODE(draft.stat().st_mode) == 0o600
    text = draft.read_text()
    assert 'email = "someone@gmx.net"' in text and "devices = 1" in text


def test_the_wizards_migration_keeps_refused_messages_in_the_not_migrated_mbox(
    tmp_path: Path,
    places: dict[str, Path],
    dovecot_factory: DovecotFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = dovecot_factory(extra_config=SIZE_LIMIT_CONFIG)  # refuses messages over 100 kB
    home = tmp_path / "home"
    small = list(generate(6, [("INBOX",)], seed=4, sizes="small"))
    big = GeneratedMessage(("INBOX",), small[0].data + b"x" * 200_000 + b"\n", small[0].date)
    write_maildir(home / "Maildir", [*small, big])
    account = server.add_user()
    info = server.info
    asker = ScriptedAsker(
        [
            *one_device_signin(account, info),
            ("store", ENTER),
            ("migrate", ENTER),
            ("save", "n"),
        ]
    )
    result = wizard(asker, home, places).run()
    out = " ".join(capsys.readouterr().out.split())
    assert not asker.script, out
    assert result.status is ExitStatus.INCOMPLETE, out
    report = result.report
    assert report is not None and report.uploaded == 6 and len(report.failures) == 1
    assert report.not_migrated_mbox is not None
    saved = list(MboxReader(Path(report.not_migrated_mbox)).messages())
    assert [to_crlf(m.data) for m in saved] == [crlf(big.data)]
