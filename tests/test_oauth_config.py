"""OAuth2 settings: the profile's client id, and what the Gmail and Outlook plugins give."""

from __future__ import annotations

from pathlib import Path

import pytest

from advisor.errors import ProfileError, UsageError
from advisor.oauth import resolve_client
from advisor.plugins.manager import load_plugins
from advisor.plugins.types import OAuthConfig, OAuthFlow
from advisor.profile import AuthKind, dump_profile, load_profile

OAUTH = """\
version = 1
[account]
email = "pat@example.org"
provider = "gmail"
[auth]
method = "oauth2"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.toml"
    path.write_text(text)
    return path


def test_profile_takes_a_client_id_and_the_name_of_the_secret_variable(tmp_path: Path) -> None:
    text = OAUTH + 'client_id = "123-abc.apps.example"\nclient_secret_env = "MY_SECRET"\n'
    profile = load_profile(write(tmp_path, text))
    assert profile.auth.method is AuthKind.OAUTH2
    assert profile.auth.client_id == "123-abc.apps.example"
    assert profile.auth.client_secret_env == "MY_SECRET"
    again = load_profile(write(tmp_path, dump_profile(profile)))
    assert again.auth == profile.auth


@pytest.mark.parametrize("key", ["client_id", "client_secret_env"])
def test_client_settings_need_oauth2(tmp_path: Path, key: str) -> None:
    text = 'version = 1\n[account]\nemail = "a@b.c"\n[auth]\npassword_env = "P"\n'
    with pytest.raises(ProfileError) as info:
        load_profile(write(tmp_path, text + f'{key} = "x"\n'))
    assert info.value.key == f"[auth] {key}" and "oauth2" in str(info.value)
    assert info.value.line == 6


def test_a_literal_client_secret_is_still_refused(tmp_path: Path) -> None:
    with pytest.raises(ProfileError) as info:
        load_profile(write(tmp_path, OAUTH + 'client_secret = "GOCSPX-abcdef"\n'))
    assert "GOCSPX" not in str(info.value) and "must not hold a secret" in str(info.value)


CONFIG = OAuthConfig(
    provider="x",
    authorization_endpoint="https://id.example/auth",
    token_endpoint="https://id.example/token",
    scopes=("mail",),
    client_id_env="X_CLIENT_ID",
    client_secret_env="X_CLIENT_SECRET",
)


def test_client_id_order_profile_then_environment_then_builtin(tmp_path: Path) -> None:
    plain = load_profile(write(tmp_path, OAUTH))
    env = {"X_CLIENT_ID": "from-env", "X_CLIENT_SECRET": "env-secret"}
    assert resolve_client(plain, CONFIG, env).client_id == "from-env"
    assert resolve_client(plain, CONFIG, env).client_secret == "env-secret"
    builtin = OAuthConfig(**{**CONFIG.__dict__, "client_id": "shipped"})
    assert resolve_client(plain, builtin, {}).client_id == "shipped"
    assert resolve_client(plain, builtin, {}).client_secret is None

    own = load_profile(
        write(tmp_path, OAUTH + 'client_id = "mine"\nclient_secret_env = "MINE_SECRET"\n')
    )
    client = resolve_client(own, CONFIG, {**env, "MINE_SECRET": "sek-RET-42"})
    assert (client.client_id, client.client_secret) == ("mine", "sek-RET-42")
    assert "sek-RET-42" not in repr(client)
    with pytest.raises(UsageError, match=r"MINE_SECRET .* is not set"):
        resolve_client(own, CONFIG, env)


def test_gmail_oauth_settings() -> None:
    gmail = load_plugins().oauth_config("gmail")
    assert gmail is not None
    assert gmail.scopes == ("https://mail.google.com/",)
    assert gmail.authorization_endpoint == "https://accounts.google.com/o/oauth2/v2/auth"
    assert gmail.token_endpoint == "https://oauth2.googleapis.com/token"
    # Google's device flow refuses the mail scope: browser with loopback and PKCE only.
    assert gmail.flows == (OAuthFlow.BROWSER,) and gmail.device_authorization_endpoint is None
    assert gmail.redirect_host == "127.0.0.1"
    assert (gmail.client_id_env, gmail.client_secret_env) == (
        "MAILADVISOR_GMAIL_CLIENT_ID",
        "MAILADVISOR_GMAIL_CLIENT_SECRET",
    )
    assert set(gmail.sasl) == {"XOAUTH2", "OAUTHBEARER"}


def test_outlook_oauth_settings() -> None:
    outlook = load_plugins().oauth_config("outlook")
    assert outlook is not None
    common = "https://login.microsoftonline.com/common/oauth2/v2.0/"
    assert outlook.authorization_endpoint == common + "authorize"
    assert outlook.token_endpoint == common + "token"
    assert outlook.device_authorization_endpoint == common + "devicecode"
    assert outlook.scopes == (
        "https://outlook.office.com/IMAP.AccessAsUser.All",
        "https://outlook.office.com/POP.AccessAsUser.All",
        "https://outlook.office.com/SMTP.Send",
        "offline_access",
    )
    assert set(outlook.flows) == {OAuthFlow.BROWSER, OAuthFlow.DEVICE}
    assert outlook.redirect_host == "localhost" and outlook.sasl == ("XOAUTH2",)
    assert outlook.client_id_env == "MAILADVISOR_OUTLOOK_CLIENT_ID"
    assert outlook.client_secret_env is None  # a public client


def test_generic_has_no_oauth() -> None:
    assert load_plugins().oauth_config("generic") is None
