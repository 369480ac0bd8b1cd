"""Profile files: the examples load, bad ones say exactly what is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from advisor.cli import run
from advisor.errors import ProfileError
from advisor.plugins.types import Security
from advisor.profile import (
    AuthKind,
    Profile,
    SourceKind,
    dump_profile,
    load_profile,
    save_profile,
)

ROOT = Path(__file__).parent.parent
EXAMPLES = sorted((ROOT / "profiles").glob("*.toml"))
GOOD = """\
version = 1
[account]
email = "pat@example.org"
[auth]
password_env = "PAT_PASSWORD"
"""


def write(tmp_path: Path, text: str, name: str = "p.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_three_examples_exist_and_load() -> None:
    names = {p.name for p in EXAMPLES}
    expected = {"gmail-from-thunderbird.toml", "outlook-from-pst.toml", "imap-from-maildir.toml"}
    assert names >= expected
    for path in EXAMPLES:
        profile = load_profile(path)
        assert profile.version == 1
        assert "@" in profile.account.email
        assert "#" in path.read_text(), f"{path.name} should explain itself with comments"


def test_example_values_are_read() -> None:
    p = load_profile(ROOT / "profiles" / "imap-from-maildir.toml")
    assert p.server is not None
    assert p.server.host == "imap.example.org"
    assert (p.server.port, p.server.security) == (993, Security.TLS)
    assert p.server.username == "alex"
    assert p.auth.method is AuthKind.PASSWORD and p.auth.password_env == "MAIL_PASSWORD"
    assert p.source.kind is SourceKind.MAILDIR
    assert p.source.path == Path("~/Maildir").expanduser()
    assert p.migration.target_prefix == "Imported"
    g = load_profile(ROOT / "profiles" / "gmail-from-thunderbird.toml")
    assert g.migration.folder_map == {"Local Folders/Receipts": "Receipts"}
    assert g.auth.method is AuthKind.OAUTH2 and g.auth.keyring


def test_defaults_for_a_minimal_profile(tmp_path: Path) -> None:
    p = load_profile(write(tmp_path, GOOD))
    assert p.account.provider == "auto"
    assert p.server is None
    assert p.source.kind is SourceKind.AUTO and p.source.path is None
    assert (p.migration.dry_run, p.migration.skip_deleted, p.migration.target_prefix) == (
        False,
        True,
        "",
    )


def test_default_port_follows_security(tmp_path: Path) -> None:
    p = load_profile(write(tmp_path, GOOD + '[server]\nhost = "h"\nsecurity = "starttls"\n'))
    assert p.server is not None and p.server.port == 143
    p = load_profile(write(tmp_path, GOOD + '[server]\nhost = "h"\n'))
    assert p.server is not None and p.server.port == 993


def test_relative_paths_are_relative_to_the_profile(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("x")
    text = GOOD + '[server]\nhost = "h"\nca_file = "ca.pem"\n'
    text += '[source]\nkind = "mbox"\npath = "mail/inbox"\n'
    p = load_profile(write(tmp_path, text))
    assert p.server is not None and p.server.ca_file == tmp_path / "ca.pem"
    assert p.source.path == tmp_path / "mail" / "inbox"


def test_round_trip_through_dump(tmp_path: Path) -> None:
    original = load_profile(ROOT / "profiles" / "imap-from-maildir.toml")
    saved = save_profile(original, tmp_path / "sub" / "saved.toml")
    assert saved.stat().st_mode & 0o777 == 0o600
    again = load_profile(saved)
    original.path = again.path = None
    assert again == original
    assert isinstance(Profile(), Profile)  # the wizard starts from an empty one
    assert "version = 1" in dump_profile(Profile())


BAD = [
    # (text appended to or replacing GOOD, expected line, expected key, expected words)
    (
        'version = 1\n[account]\nemail = "a@b.c"\n[server]\nhost = "h"\nsecurity = "none"\n'
        "[auth]\nkeyring = true\n",
        6,
        "[server] security",
        "allow_insecure = true",
    ),
    (
        GOOD + '[server]\nhost = "h"\nsecurity = "ssl"\n',
        8,
        "[server] security",
        'one of "tls", "starttls", "none"',
    ),
    (GOOD + '[server]\nhost = "h"\nport = 99999\n', 8, "[server] port", "port number"),
    (GOOD + "[server]\nport = 993\n", 6, "[server] host", "missing"),
    (GOOD + '[source]\nkind = "mbx"\n', 7, "[source] kind", '"thunderbird"'),
    (GOOD + '[migration]\ndry_run = "yes"\n', 7, "[migration] dry_run", "true or false"),
    (GOOD + "[migration]\nfolder_map = { Inbox = 3 }\n", 7, "[migration] folder_map", "table"),
    (GOOD + "[migration]\nskip_deletd = true\n", 7, "[migration] skip_deletd", "skip_deleted"),
    (GOOD.replace("version = 1", "version = 2"), 1, "version", "newer mailadvisor"),
    (GOOD.replace("version = 1\n", ""), None, "version", "version = 1"),
    (GOOD.replace("pat@example.org", "not-an-address"), 3, "[account] email", "email address"),
    ('version = 1\n[account]\nemail = "a@b.c"\n', None, "[auth]", "password_env"),
    (GOOD + "keyring = true\n", 6, "[auth] keyring", "choose one"),
    (
        'version = 1\n[account]\nemail = "a@b.c"\n[auth]\nmethod = "oauth2"\npassword_env = "X"\n',
        6,
        "[auth] password_env",
        "oauth2",
    ),
    ('version = 1\nmystery = 3\n[account]\nemail = "a@b.c"\n', 2, "mystery", "unknown key"),
]


@pytest.mark.parametrize(("text", "line", "key", "words"), BAD)
def test_bad_profiles_name_file_line_key_and_expectation(
    tmp_path: Path, text: str, line: int | None, key: str, words: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    err = info.value
    assert err.path == str(path)
    assert err.key == key
    assert err.line == line
    assert words in str(err)
    assert str(err).startswith(f"{path}:{line}:" if line else f"{path}:")


@pytest.mark.parametrize(
    "snippet",
    [
        '[auth]\npassword = "Tr0ub4dor&3"\n',
        '[auth]\nmethod = "oauth2"\nrefresh_token = "Tr0ub4dor&3"\n',
        '[server]\nhost = "h"\npassword = "Tr0ub4dor&3"\n',
        '[auth]\nclient_secret = "Tr0ub4dor&3"\n',
    ],
)
def test_literal_secrets_are_refused_without_echoing_them(tmp_path: Path, snippet: str) -> None:
    text = 'version = 1\n[account]\nemail = "a@b.c"\n' + snippet
    with pytest.raises(ProfileError) as info:
        load_profile(write(tmp_path, text))
    message = str(info.value)
    assert "Tr0ub4dor" not in message
    for way in ("password_env", "password_command", "keyring"):
        assert way in message


def test_invalid_toml_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(ProfileError) as info:
        load_profile(write(tmp_path, 'version = 1\n[account\nemail = "a@b.c"\n'))
    assert info.value.line == 2 and "not valid TOML" in str(info.value)


def test_missing_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="no such profile file"):
        load_profile(tmp_path / "absent.toml")
    with pytest.raises(ProfileError, match="not UTF-8"):
        load_profile(
            tmp_path.joinpath("bin.toml")
            if tmp_path.joinpath("bin.toml").write_bytes(b"\xff\xfe\x00")
            else tmp_path
        )


def test_check_command_examples_pass(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["profile", "check", *map(str, EXAMPLES)]) == 0
    out = capsys.readouterr().out
    assert sum(line.startswith("ok ") for line in out.splitlines()) == len(EXAMPLES)


def test_check_command_bad_profile_exit_2_no_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write(tmp_path, GOOD + '[server]\nhost = "h"\nsecurity = "ssl"\n')
    assert run(["profile", "check", str(bad)]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    assert f"{bad}:8: [server] security" in captured.err


def test_check_command_unknown_provider_and_missing_ca(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = write(
        tmp_path,
        GOOD.replace('email = "pat@example.org"', 'email = "pat@example.org"\nprovider = "yahooo"'),
        "a.toml",
    )
    b = write(tmp_path, GOOD + '[server]\nhost = "h"\nca_file = "nope.pem"\n', "b.toml")
    c = write(tmp_path, GOOD, "c.toml")
    assert run(["profile", "check", "--json", str(a), str(b), str(c)]) == 2
    results = {Path(r["file"]).name: r for r in json.loads(capsys.readouterr().out)["profiles"]}
    assert not results["a.toml"]["ok"] and '"gmail"' in results["a.toml"]["error"]
    assert "[account] provider" in results["a.toml"]["error"]
    assert not results["b.toml"]["ok"] and "nope.pem" in results["b.toml"]["error"]
    assert results["c.toml"]["ok"]
