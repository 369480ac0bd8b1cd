"""OAuth2 sign-in end to end, without the internet (issue 5, point 6).

A real authorization server on loopback (tests/harness/oauth_server.py) issues the tokens;
the browser step is played by the test; a real Dovecot checks XOAUTH2 and
OAUTHBEARER through its oauth2 passdb against the server's introspection
endpoint. Every test also greps what was logged and printed for every token,
code and verifier that crossed the server.
"""

from __future__ import annotations

import base64
import dataclasses
import importlib.metadata
import json
import logging
import secrets
import socket
import stat
import sys
import threading
import time
import types
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import keyring
import keyring.backends.fail
import pytest

from advisor import hookimpl
from advisor.cli import forget_cmd, run, signin_cmd
from advisor.connection.imap import ImapTarget, connect, imap_oauth2_session, oauth2_login
from advisor.errors import AuthenticationError, UsageError
from advisor.exitcodes import ExitStatus
from advisor.oauth import TokenSource, get_access_token
from advisor.oauth.flows import DevicePrompt
from advisor.oauth.tokens import STORE_ENV, FileTokenStore
from advisor.plugins.manager import PluginHost, load_plugins
from advisor.plugins.types import OAuthConfig, OAuthFlow, ProviderInfo, Security
from advisor.profile import Profile, load_profile
from tests.harness.dovecot import Account, DovecotFactory, DovecotServer
from tests.harness.oauth_server import Browser, OAuthTestServer, dovecot_oauth2_config

PROVIDER = "localidp"
CLIENT_SECRET_ENV = "E2E_CLIENT_SECRET"


@pytest.fixture(scope="module")
def idp() -> Iterator[OAuthTestServer]:
    # A confidential client, like Google's desktop clients: the secret path is exercised.
    with OAuthTestServer(
        client_id="mailadvisor-e2e", client_secret="e2e-client-secret-" + secrets.token_hex(4)
    ) as server:
        yield server


@pytest.fixture(scope="module")
def oauth_dovecot(dovecot_factory: DovecotFactory, idp: OAuthTestServer) -> DovecotServer:
    return dovecot_factory(extra_config=dovecot_oauth2_config(idp, dovecot_factory.root))


@pytest.fixture
def account(oauth_dovecot: DovecotServer) -> Account:
    # The login name is the address: the token's username must match it for Dovecot.
    return oauth_dovecot.add_user(f"ann{secrets.token_hex(3)}@example.test")


@pytest.fixture
def isolated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, idp: OAuthTestServer
) -> Iterator[Path]:
    """No keyring (as on this headless machine), a private state dir, the client secret."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv(STORE_ENV, raising=False)
    assert idp.client_secret is not None
    monkeypatch.setenv(CLIENT_SECRET_ENV, idp.client_secret)
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    try:
        yield tmp_path / "state" / "mailadvisor" / "tokens"
    finally:
        keyring.set_keyring(previous)


def local_config(idp: OAuthTestServer) -> OAuthConfig:
    return OAuthConfig(
        provider=PROVIDER,
        authorization_endpoint=idp.authorize_url,
        token_endpoint=idp.token_url,
        device_authorization_endpoint=idp.device_url,
        scopes=("mail", "offline_access"),
        flows=(OAuthFlow.BROWSER, OAuthFlow.DEVICE),
        client_id_env="E2E_CLIENT_ID",
        sasl=("XOAUTH2", "OAUTHBEARER"),
    )


def write_profile(
    tmp_path: Path, server: DovecotServer, account: Account, auth_extra: str = ""
) -> Path:
    info = server.info
    auth = auth_extra or (
        f'client_id = "mailadvisor-e2e"\nclient_secret_env = "{CLIENT_SECRET_ENV}"\n'
    )
    path = tmp_path / "profile.toml"
    path.write_text(
        "version = 1\n"
        f'[account]\nemail = "{account.email}"\nprovider = "{PROVIDER}"\n'
        f'[server]\nhost = "{info.hostname}"\nport = {info.imaps_port}\n'
        f'security = "tls"\nca_file = "{info.ca_file}"\n'
        f'[auth]\nmethod = "oauth2"\n{auth}'
    )
    return path


def target_of(server: DovecotServer) -> ImapTarget:
    info = server.info
    return ImapTarget(info.hostname, info.imaps_port, Security.TLS, info.ca_file, timeout=10)


def assert_no_secret(idp: OAuthTestServer, *texts: str) -> None:
    """No token, code, verifier or client secret in anything shown or logged."""
    seen = idp.secrets_seen()
    assert len(seen) >= 3
    blob = "\n".join(texts)
    for value in seen:
        assert value not in blob, "a secret leaked into the output"
        encoded = base64.b64encode(value.encode()).decode()
        assert encoded[:-4] not in blob


def sign_in(profile: Profile, idp: OAuthTestServer, **kw: Any) -> Any:
    return get_access_token(
        profile, local_config(idp), interactive=True, open_browser=Browser(), notify=print, **kw
    )


# --- the whole story -----------------------------------------------------------------


def test_browser_sign_in_stores_the_token_and_logs_in_with_both_mechanisms(
    idp: OAuthTestServer,
    oauth_dovecot: DovecotServer,
    account: Account,
    isolated: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    profile = load_profile(write_profile(tmp_path, oauth_dovecot, account))
    browser = Browser()
    got = get_access_token(
        profile, local_config(idp), interactive=True, open_browser=browser, notify=print
    )
    assert got.source is TokenSource.BROWSER
    assert "login_hint=" + account.email.replace("@", "%40") in browser.visited[0]

    # Stored in a private file, since there is no keyring.
    path = FileTokenStore().path(PROVIDER, account.email)
    assert path.parent == isolated and got.stored_in == f"the file {path}"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(isolated.stat().st_mode) == 0o700
    record = json.loads(path.read_text())
    assert record["refresh_token"] in idp.refresh_tokens
    assert record["access_token"] == got.token

    for mechanism in ("XOAUTH2", "OAUTHBEARER"):
        with imap_oauth2_session(
            target_of(oauth_dovecot), account.email, got.token, mechanism
        ) as client:
            assert any(name == "INBOX" for _f, _d, name in client.list_folders())
        log = oauth_dovecot.log_tail(200)
        assert f"Login: user=<{account.email}>, method={mechanism}" in log

    # The next run uses the stored token: no new request to the server.
    requests = len(idp.log)
    again = get_access_token(profile, local_config(idp), interactive=False)
    assert again.source is TokenSource.STORED and again.token == got.token
    assert len([p for p, _ in idp.log[requests:] if p == "/token"]) == 0

    out = capsys.readouterr()
    assert_no_secret(idp, caplog.text, out.out, out.err, repr(got), repr(again))


def test_an_expired_access_token_is_refreshed(
    idp: OAuthTestServer,
    oauth_dovecot: DovecotServer,
    account: Account,
    isolated: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    profile = load_profile(write_profile(tmp_path, oauth_dovecot, account))
    first = sign_in(profile, idp)
    store = FileTokenStore()
    old = store.load(PROVIDER, account.email)
    assert old is not None
    # An hour later: expired at the server and by the record's clock.
    idp.expire_access_tokens()
    store.save(PROVIDER, account.email, dataclasses.replace(old, expires_at=time.time() - 5))

    with (
        pytest.raises(AuthenticationError) as info,
        imap_oauth2_session(target_of(oauth_dovecot), account.email, first.token, "XOAUTH2"),
    ):
        pass
    assert info.value.exit_status is ExitStatus.AUTH_FAILED
    assert "not accepted" in str(info.value) and first.token not in str(info.value)

    fresh = get_access_token(profile, local_config(idp), interactive=False)
    assert fresh.source is TokenSource.REFRESHED and fresh.token != first.token
    assert idp.grants()[-1] == "refresh_token"
    with imap_oauth2_session(target_of(oauth_dovecot), account.email, fresh.token, "XOAUTH2"):
        pass
    kept = store.load(PROVIDER, account.email)
    assert kept is not None and kept.access_token == fresh.token
    assert kept.refresh_token == old.refresh_token  # the server did not rotate it
    out = capsys.readouterr()
    assert_no_secret(idp, caplog.text, out.out, out.err, str(info.value))


@pytest.mark.parametrize("mechanism", ["XOAUTH2", "OAUTHBEARER"])
def test_a_wrong_token_is_exit_3_without_the_token(
    idp: OAuthTestServer,
    oauth_dovecot: DovecotServer,
    account: Account,
    mechanism: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    bogus = "at-" + secrets.token_urlsafe(24)
    other = oauth_dovecot.add_user(f"bob{secrets.token_hex(3)}@example.test")
    valid_for_other, _ = idp.issue(other.email)
    for token in (bogus, valid_for_other):  # unknown, and issued to someone else
        with (
            pytest.raises(AuthenticationError) as info,
            imap_oauth2_session(target_of(oauth_dovecot), account.email, token, mechanism),
        ):
            pass
        message = str(info.value)
        assert info.value.exit_status == 3
        assert f"({mechanism}) for {account.email!r}" in message
        assert "not accepted" in message  # from the server's JSON status
        assert token not in message and token not in caplog.text


def test_device_flow_signs_in(
    idp: OAuthTestServer,
    oauth_dovecot: DovecotServer,
    account: Account,
    isolated: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    profile = load_profile(write_profile(tmp_path, oauth_dovecot, account))
    prompts: list[DevicePrompt] = []
    polls: list[float] = []

    def user_on_phone(seconds: float) -> None:
        polls.append(seconds)
        if len(polls) == 2:  # after one "authorization_pending"
            idp.device_approve(prompts[0].user_code, account.email)

    got = get_access_token(
        profile,
        local_config(idp),
        interactive=True,
        flow=OAuthFlow.DEVICE,
        show_device_prompt=prompts.append,
        sleep=user_on_phone,
    )
    assert got.source is TokenSource.DEVICE and len(polls) >= 2
    with imap_oauth2_session(target_of(oauth_dovecot), account.email, got.token):
        pass
    assert FileTokenStore().load(PROVIDER, account.email) is not None
    assert_no_secret(idp, caplog.text)


def test_device_flow_is_chosen_without_a_desktop(
    idp: OAuthTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from advisor.oauth.access import choose_flow

    config = local_config(idp)
    assert choose_flow(config, None, {}) is OAuthFlow.DEVICE
    assert choose_flow(config, None, {"SSH_CONNECTION": "1 2 3 4", "DISPLAY": ":0"}) == "device"
    assert choose_flow(config, None, {"DISPLAY": ":0"}) is OAuthFlow.BROWSER
    gmail = load_plugins().oauth_config("gmail")
    assert gmail is not None and choose_flow(gmail, None, {}) is OAuthFlow.BROWSER
    with pytest.raises(UsageError, match="does not allow the device sign-in"):
        choose_flow(gmail, OAuthFlow.DEVICE, {})


def test_token_command_is_used_and_nothing_is_stored(
    idp: OAuthTestServer,
    oauth_dovecot: DovecotServer,
    account: Account,
    isolated: Path,
    tmp_path: Path,
) -> None:
    access, _refresh = idp.issue(account.email)
    script = tmp_path / "oama-like.py"
    token_file = tmp_path / "token"
    token_file.write_text(access + "\n")
    script.write_text(f"print(open({str(token_file)!r}).read().strip())\n")
    command = f'token_command = "{sys.executable} {script}"\n'
    profile = load_profile(write_profile(tmp_path, oauth_dovecot, account, command))
    got = get_access_token(profile, None, interactive=False)
    assert got.source is TokenSource.COMMAND and got.token == access
    with imap_oauth2_session(target_of(oauth_dovecot), account.email, got.token, "OAUTHBEARER"):
        pass
    assert not isolated.exists()

    token_file.write_text('{"access_token": "' + access + '"}\n')
    with pytest.raises(UsageError, match="not a valid Bearer token") as info:
        get_access_token(profile, None, interactive=False)
    assert access not in str(info.value)


def test_a_revoked_refresh_token_is_forgotten(
    idp: OAuthTestServer,
    oauth_dovecot: DovecotServer,
    account: Account,
    isolated: Path,
    tmp_path: Path,
) -> None:
    profile = load_profile(write_profile(tmp_path, oauth_dovecot, account))
    sign_in(profile, idp)
    store = FileTokenStore()
    old = store.load(PROVIDER, account.email)
    assert old is not None
    store.save(PROVIDER, account.email, dataclasses.replace(old, expires_at=time.time() - 5))
    idp.revoke_refresh_tokens()
    with pytest.raises(AuthenticationError, match=r"no longer valid.*mailadvisor signin"):
        get_access_token(profile, local_config(idp), interactive=False)
    assert store.load(PROVIDER, account.email) is None
    with pytest.raises(AuthenticationError, match="no stored sign-in"):
        get_access_token(profile, local_config(idp), interactive=False)
    again = sign_in(profile, idp)
    assert again.source is TokenSource.BROWSER


def test_a_world_readable_token_file_is_refused(
    idp: OAuthTestServer,
    oauth_dovecot: DovecotServer,
    account: Account,
    isolated: Path,
    tmp_path: Path,
) -> None:
    profile = load_profile(write_profile(tmp_path, oauth_dovecot, account))
    got = sign_in(profile, idp)
    path = FileTokenStore().path(PROVIDER, account.email)
    path.chmod(0o644)
    with pytest.raises(UsageError) as info:
        get_access_token(profile, local_config(idp), interactive=False)
    assert "can be read by others (mode 0644)" in str(info.value) and str(path) in str(info.value)
    assert got.token not in str(info.value)


def test_missing_client_id_says_how_to_get_one(
    idp: OAuthTestServer, oauth_dovecot: DovecotServer, account: Account, tmp_path: Path
) -> None:
    profile = load_profile(write_profile(tmp_path, oauth_dovecot, account, "keyring = false\n"))
    gmail = load_plugins().oauth_config("gmail")
    assert gmail is not None
    with pytest.raises(UsageError) as info:
        get_access_token(profile, gmail, interactive=True, environ={})
    message = str(info.value)
    assert "client_id" in message and "MAILADVISOR_GMAIL_CLIENT_ID" in message
    assert "Desktop app" in message and "token_command" in message
    # The environment variable the plugin names is used.
    from advisor.oauth import resolve_client

    client = resolve_client(
        profile,
        gmail,
        {"MAILADVISOR_GMAIL_CLIENT_ID": "env-id", "MAILADVISOR_GMAIL_CLIENT_SECRET": "env-s"},
    )
    assert (client.client_id, client.client_secret) == ("env-id", "env-s")
    assert client.scopes == ("https://mail.google.com/",)
    assert ("access_type", "offline") in client.extra_authorize_params


def test_a_server_without_oauth_mechanisms_is_a_clear_error(
    dovecot: DovecotServer, imap_account: Account
) -> None:
    client = connect(target_of(dovecot))
    try:
        with pytest.raises(AuthenticationError, match=r"does not offer OAuth2.*LOGIN, PLAIN"):
            oauth2_login(
                client,
                imap_account.username,
                "at-abcdefgh",
                host=dovecot.info.hostname,
                port=dovecot.info.imaps_port,
            )
    finally:
        client.logout()


# --- Microsoft's "login succeeded but the token is wrong" ------------------------------


class _MicrosoftLike:
    """An IMAP server that accepts any XOAUTH2 token, then fails the next command.

    This is what Exchange Online does with a token for another mailbox; Dovecot cannot
    be made to do it, so a small fake plays that peer (plaintext, loopback only).
    """

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn, conn.makefile("rwb") as f:
            f.write(b"* OK The Microsoft Exchange IMAP4 service is ready.\r\n")
            f.flush()
            while line := f.readline():
                self.received.append(line)
                tag, _, rest = line.decode().strip().partition(" ")
                command = rest.split(" ")[0].upper()
                if command == "CAPABILITY":
                    f.write(b"* CAPABILITY IMAP4 IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR\r\n")
                    f.write(f"{tag} OK CAPABILITY completed.\r\n".encode())
                elif command == "AUTHENTICATE":
                    f.write(b"+ \r\n")
                    f.flush()
                    self.received.append(f.readline())
                    f.write(f"{tag} OK AUTHENTICATE completed.\r\n".encode())
                elif command == "LOGOUT":
                    f.write(b"* BYE Microsoft Exchange Server IMAP4 server signing off.\r\n")
                    f.write(f"{tag} OK LOGOUT completed.\r\n".encode())
                    f.flush()
                    return
                else:
                    f.write(f"{tag} BAD User is authenticated but not connected.\r\n".encode())
                f.flush()

    def close(self) -> None:
        self.sock.close()
        self.thread.join(5)


def test_list_right_after_login_catches_a_token_for_another_mailbox() -> None:
    server = _MicrosoftLike()
    token = "eyJ0eXAiOiJKV1Qi." + secrets.token_urlsafe(30)
    try:
        target = ImapTarget("127.0.0.1", server.port, Security.NONE, allow_insecure=True, timeout=5)
        with (
            pytest.raises(AuthenticationError) as info,
            imap_oauth2_session(target, "sam@contoso.com", token, ("XOAUTH2",)),
        ):
            pass
    finally:
        server.close()
    message = str(info.value)
    assert "accepted the OAuth2 sign-in" in message and "another account" in message
    assert "authenticated but not connected" in message and token not in message
    sent = base64.b64decode(server.received[2].strip())
    assert sent == f"user=sam@contoso.com\x01auth=Bearer {token}\x01\x01".encode()
    assert server.received[3].split(b" ")[1:3] == [b"LIST", b'""']


# --- the commands -----------------------------------------------------------------


class _EntryPoint:
    name = PROVIDER
    dist = None

    def __init__(self, module: types.ModuleType) -> None:
        self.module = module

    def load(self) -> types.ModuleType:
        return self.module


def _host_with_local_provider(config: OAuthConfig) -> PluginHost:
    """The installed plugins plus a real (in-memory) plugin for the local server."""
    module = types.ModuleType("mailadvisor_localidp")

    @hookimpl
    def mailadvisor_providers() -> Sequence[ProviderInfo]:
        return [ProviderInfo(PROVIDER, "Local test IdP", ("example.test",))]

    @hookimpl
    def mailadvisor_oauth_config(provider: str) -> OAuthConfig | None:
        return config if provider == PROVIDER else None

    module.mailadvisor_providers = mailadvisor_providers  # type: ignore[attr-defined]
    module.mailadvisor_oauth_config = mailadvisor_oauth_config  # type: ignore[attr-defined]
    installed = list(importlib.metadata.entry_points(group="mailadvisor"))
    return load_plugins([*installed, _EntryPoint(module)], builtin_only=False)


@pytest.fixture
def cli_plugins(idp: OAuthTestServer, monkeypatch: pytest.MonkeyPatch) -> Browser:
    host = _host_with_local_provider(local_config(idp))
    monkeypatch.setattr(signin_cmd, "load_plugins", lambda: host)
    monkeypatch.setattr(forget_cmd, "load_plugins", lambda: host)
    browser = Browser()
    monkeypatch.setattr("webbrowser.open", browser)
    # A desktop session, where mailadvisor chooses the browser over the device code.
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.delenv("SSH_CONNECTION", raising=False)
    monkeypatch.delenv("SSH_TTY", raising=False)
    return browser


def test_signin_and_forget_commands(
    idp: OAuthTestServer,
    oauth_dovecot: DovecotServer,
    account: Account,
    isolated: Path,
    tmp_path: Path,
    cli_plugins: Browser,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    profile = str(write_profile(tmp_path, oauth_dovecot, account))
    outputs: list[str] = []

    def cli(*args: str) -> int:
        status = run(list(args))
        out = capsys.readouterr()
        outputs.extend((out.out, out.err))
        return status

    assert cli("signin", "--profile", profile) == 0
    assert len(cli_plugins.visited) == 1
    assert "Signed in" in outputs[-2] and "browser sign-in" in outputs[-2]
    assert "with XOAUTH2 works" in outputs[-2]
    path = FileTokenStore().path(PROVIDER, account.email)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    # A second run needs no browser: the stored sign-in is checked on the server.
    assert cli("signin", "--profile", profile, "--json") == 0
    report = json.loads(outputs[-2])
    assert report["token_source"] == "stored sign-in" and report["mechanism"] == "XOAUTH2"
    assert report["server"] == f"localhost:{oauth_dovecot.info.imaps_port}"
    assert len(cli_plugins.visited) == 1

    # Revoked at the server although not yet expired: signin refreshes and goes on.
    idp.expire_access_tokens()
    assert cli("signin", "--profile", profile, "--json") == 0
    assert json.loads(outputs[-2])["token_source"] == "refreshed sign-in"

    assert cli("forget", "--profile", profile) == 0
    assert str(path) in outputs[-2] and not path.exists()
    assert cli("forget", "--profile", profile, "--json") == 0
    assert json.loads(outputs[-2])["removed"] == []

    # A token file others can read stops the command with a clear message, exit 2.
    assert cli("signin", "--profile", profile, "--no-check") == 0
    path.chmod(0o644)
    assert cli("signin", "--profile", profile) == ExitStatus.USAGE
    assert "can be read by others" in outputs[-1]
    assert_no_secret(idp, caplog.text, *outputs)


def test_signin_command_with_a_refused_token_is_exit_3(
    idp: OAuthTestServer,
    oauth_dovecot: DovecotServer,
    account: Account,
    isolated: Path,
    tmp_path: Path,
    cli_plugins: Browser,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bogus = "at-" + secrets.token_urlsafe(24)
    script = tmp_path / "print-token.py"
    script.write_text(f"print({bogus!r})\n")
    command = f'token_command = "{sys.executable} {script}"\n'
    profile = write_profile(tmp_path, oauth_dovecot, account, command)
    assert load_profile(profile).auth.token_command is not None
    status = run(["signin", "--profile", str(profile)])
    out = capsys.readouterr()
    assert status == ExitStatus.AUTH_FAILED
    assert "refused the OAuth2 sign-in" in out.err and "not accepted" in out.err
    assert bogus not in out.out + out.err
    assert "Traceback" not in out.err


def test_migrate_signs_in_with_the_stored_token_and_refreshes_it(
    idp: OAuthTestServer,
    oauth_dovecot: DovecotServer,
    account: Account,
    isolated: Path,
    tmp_path: Path,
    cli_plugins: Browser,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from advisor.cli import migrate_cmd
    from tests.harness.mailgen import generate, write_maildir

    monkeypatch.setattr(migrate_cmd, "load_plugins", signin_cmd.load_plugins)
    store = tmp_path / "Maildir"
    msgs = write_maildir(store, list(generate(12, [("INBOX",), ("Sent",)], seed=3, sizes="small")))
    profile = write_profile(tmp_path, oauth_dovecot, account)
    profile.write_text(profile.read_text() + f'[source]\nkind = "maildir"\npath = "{store}"\n')
    assert run(["signin", "--profile", str(profile)]) == 0
    capsys.readouterr()
    args = ["migrate", "--profile", str(profile), "--journal", str(tmp_path / "j.sqlite"), "--json"]
    assert run(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["uploaded"] == len(msgs) and first["verified"] is True
    idp.expire_access_tokens()  # an hour later: the next run refreshes without the user
    assert run(args) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["already_done"] == len(msgs)
    assert len(cli_plugins.visited) == 1
    assert_no_secret(idp, out.out, out.err, (tmp_path / "j.sqlite").read_bytes().decode("latin-1"))
