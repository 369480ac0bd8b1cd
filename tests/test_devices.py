"""`mailadvisor devices`: the files each device takes in, read back as the device reads them.

The Apple profile is parsed back with plistlib and checked for every key Apple's
``com.apple.mail.managed`` payload requires; the QR code is decoded with a real decoder
(zbar's ``zbarimg``) and its payload read by a reader that follows thunderbird-android's
importer rules (docs/qr-code-format.md, format version 1); the autoconfig file is parsed
as the ISPDB's clientConfig 1.1. prefs.js cases are shaped as Thunderbird writes them.
"""

from __future__ import annotations

import json
import plistlib
import shutil
import stat
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from advisor.cli import run
from advisor.devices.old_pop3 import thunderbird_pop3_habits
from advisor.exitcodes import ExitStatus

EMAIL = "alex@example.org"
PASSWORD = "pässwört€1 secret"

# Apple's Device Management reference: the keys a com.apple.mail.managed payload must have.
APPLE_REQUIRED = {
    "PayloadType",
    "PayloadVersion",
    "PayloadIdentifier",
    "PayloadUUID",
    "EmailAccountType",
    "IncomingMailServerAuthentication",
    "IncomingMailServerHostName",
    "IncomingMailServerUsername",
    "OutgoingMailServerAuthentication",
    "OutgoingMailServerHostName",
    "OutgoingMailServerUsername",
}


def _profile(tmp_path: Path, *, oauth: bool = False, source: Path | None = None) -> Path:
    auth = (
        'method = "oauth2"\ntoken_command = "echo token"'
        if oauth
        else 'method = "password"\npassword_env = "MA_DEVICES_PW"'
    )
    provider, email = ("gmail", "alex@gmail.com") if oauth else ("generic", EMAIL)
    server = (
        ""
        if oauth
        else '[server]\nhost = "imap.example.org"\nport = 993\nsecurity = "tls"\n'
        'username = "alex"\n'
    )
    src = source or tmp_path / "Maildir"
    src.mkdir(exist_ok=True)
    path = tmp_path / "p.toml"
    path.write_text(
        f'version = 1\n[account]\nemail = "{email}"\nprovider = "{provider}"\n{server}'
        f'[auth]\n{auth}\n[source]\nkind = "maildir"\npath = "{src}"\n'
    )
    return path


def _devices(profile: Path, capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    status = run(["devices", "--profile", str(profile), "--json", *args])
    captured = capsys.readouterr()
    assert status == ExitStatus.OK, captured.err
    result: dict[str, Any] = json.loads(captured.out)
    return result


def read_qr_payload(text: str) -> dict[str, Any]:
    """A reader of format version 1 that validates every property, as the spec demands."""
    data = json.loads(text)
    assert isinstance(data, list) and data[0] == 1, "FormatVersion must be 1"
    (number, end), *accounts = data[1], *data[2:]
    assert 1 <= number <= end
    assert len(accounts) % 2 == 0, "IncomingServer and OutgoingServerGroups come in pairs"
    incoming, groups = accounts[0], accounts[1]
    protocol, host, port, security, auth, username, *rest = incoming
    assert protocol in (0, 1) and isinstance(host, str) and host.isascii()
    assert 1 <= port <= 65535 and security in (0, 2, 3) and auth in range(7)
    assert isinstance(username, str)
    account_name = rest[0] if rest else None
    password = rest[1] if len(rest) > 1 else None
    (group,) = groups
    outgoing, *identities = group
    o_protocol, o_host, o_port, o_security, o_auth, o_user, *o_rest = outgoing
    assert o_protocol == 0 and 1 <= o_port <= 65535 and o_security in (0, 2, 3)
    (email, display_name), *_ = identities
    assert email.isascii() and isinstance(display_name, str)
    return {
        "imap": (host, port, security, auth, username),
        "smtp": (o_host, o_port, o_security, o_auth, o_user),
        "account_name": account_name or email,
        "password": password or None,
        "smtp_password": (o_rest[0] if o_rest else None) or None,
        "identity": (email, display_name),
    }


def _zbar(path: Path) -> str:
    zbarimg = shutil.which("zbarimg")
    assert zbarimg, "zbarimg (Debian's zbar-tools) is needed to decode the QR code"
    done = subprocess.run(
        [zbarimg, "--raw", "-q", "-Sbinary", str(path)],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return done.stdout.decode("utf-8").rstrip("\n")


def test_every_device_file_reads_back_as_the_device_reads_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MA_DEVICES_PW", PASSWORD)
    profile = _profile(tmp_path)
    out = tmp_path / "out"
    result = _devices(
        profile, capsys, "--out", str(out), "--smtp", "starttls://smtp.example.org:587"
    )
    files = {k: Path(v) for k, v in result["files"].items()}
    assert set(files) == {"apple", "android", "thunderbird"}
    for path in files.values():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert PASSWORD.encode() not in path.read_bytes()  # no password unless asked

    config = plistlib.loads(files["apple"].read_bytes())
    assert config["PayloadType"] == "Configuration" and config["PayloadVersion"] == 1
    (mail,) = config["PayloadContent"]
    assert set(mail) >= APPLE_REQUIRED
    assert mail["PayloadType"] == "com.apple.mail.managed"
    assert mail["EmailAccountType"] == "EmailTypeIMAP" and mail["EmailAddress"] == EMAIL
    assert (mail["IncomingMailServerHostName"], mail["IncomingMailServerPortNumber"]) == (
        "imap.example.org",
        993,
    )
    assert mail["IncomingMailServerUseSSL"] is True and mail["IncomingMailServerUsername"] == "alex"
    assert (mail["OutgoingMailServerHostName"], mail["OutgoingMailServerPortNumber"]) == (
        "smtp.example.org",
        587,
    )
    assert mail["IncomingMailServerAuthentication"] == "EmailAuthPassword"
    assert "IncomingPassword" not in mail

    payload = read_qr_payload(_zbar(files["android"]))
    assert payload["imap"] == ("imap.example.org", 993, 3, 1, "alex")
    assert payload["smtp"] == ("smtp.example.org", 587, 2, 1, "alex")
    assert payload["password"] is None and payload["identity"][0] == EMAIL

    root = ET.fromstring(files["thunderbird"].read_bytes())
    assert root.tag == "clientConfig" and root.get("version") == "1.1"
    provider = root.find("emailProvider")
    assert provider is not None and provider.get("id") == "example.org"
    assert provider.findtext("domain") == "example.org"
    incoming = provider.find("incomingServer")
    outgoing = provider.find("outgoingServer")
    assert incoming is not None and incoming.get("type") == "imap"
    assert [incoming.findtext(t) for t in ("hostname", "port", "socketType", "username")] == [
        "imap.example.org",
        "993",
        "SSL",
        "alex",
    ]
    assert incoming.findtext("authentication") == "password-cleartext"
    assert outgoing is not None and outgoing.get("type") == "smtp"
    assert outgoing.findtext("socketType") == "STARTTLS" and outgoing.findtext("port") == "587"

    # Steps for each device, the switch in order, with the exact commands.
    assert "Profile Downloaded" in " ".join(result["steps"]["apple"])
    assert "Scan QR code" in " ".join(result["steps"]["android"])
    assert any("IMAP" in line for line in result["settings"])
    switch = result["switch"]
    assert "Stop the old POP3 account" in switch[1]
    assert f"mailadvisor migrate --profile {profile}" in switch[2]
    assert f"mailadvisor verify --profile {profile}" in switch[3]


def test_password_only_when_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MA_DEVICES_PW", PASSWORD)
    profile = _profile(tmp_path)
    apple, qr = tmp_path / "a.mobileconfig", tmp_path / "q.png"
    args = ["--apple", str(apple), "--qr", str(qr), "--smtp", "smtp.example.org"]
    result = _devices(profile, capsys, *args, "--with-password")
    assert result["password_included"] is True
    (mail,) = plistlib.loads(apple.read_bytes())["PayloadContent"]
    assert mail["IncomingPassword"] == PASSWORD
    payload = read_qr_payload(_zbar(qr))
    assert payload["password"] == PASSWORD and payload["smtp_password"] == PASSWORD
    run(["devices", "--profile", str(profile), *args, "--with-password"])
    assert "carry your password" in " ".join(capsys.readouterr().out.split())


def test_oauth_accounts_get_oauth_files_and_no_apple_profile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = _profile(tmp_path, oauth=True)
    out = tmp_path / "out"
    result = _devices(profile, capsys, "--out", str(out))
    assert set(result["files"]) == {"android", "thunderbird"}  # Apple's payload has no OAuth2
    assert "Add Account" in " ".join(result["steps"]["apple"])
    payload = read_qr_payload(_zbar(Path(result["files"]["android"])))
    assert payload["imap"] == ("imap.gmail.com", 993, 3, 6, "alex@gmail.com")
    assert payload["smtp"][3] == 6
    auth = ET.fromstring(Path(result["files"]["thunderbird"]).read_bytes()).findtext(
        "emailProvider/incomingServer/authentication"
    )
    assert auth == "OAuth2"
    assert any("When messages are accessed with POP" in w for w in result["warnings"])


def test_unknown_outgoing_server_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = _profile(tmp_path)
    assert run(["devices", "--profile", str(profile)]) == ExitStatus.USAGE
    err = " ".join(capsys.readouterr().err.split())
    assert "outgoing (SMTP) server" in err and "--smtp" in err and "Traceback" not in err


def test_qr_in_the_terminal_and_as_svg(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    profile = _profile(tmp_path)
    svg = tmp_path / "code.svg"
    assert run(["devices", "--profile", str(profile), "--smtp", "smtp.example.org",
                "--qr", "-"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "█" in out or "▀" in out
    _devices(profile, capsys, "--smtp", "smtp.example.org", "--qr", str(svg))
    assert ET.fromstring(svg.read_bytes()).tag.endswith("svg")


PREFS_HEAD = "// Mozilla User Preferences\n\n// DO NOT EDIT THIS FILE.\n"


def _tb_profile(tmp_path: Path, servers: dict[str, dict[str, object]]) -> Path:
    """A prefs.js as Thunderbird writes it: sorted user_pref lines, JSON-ish values."""
    lines = []
    for server, prefs in servers.items():
        for key, value in prefs.items():
            shown = json.dumps(value) if not isinstance(value, bool) else str(value).lower()
            lines.append(f'user_pref("mail.server.{server}.{key}", {shown});')
    profile = tmp_path / "abcd1234.default-release"
    (profile / "Mail" / "pop.example.org").mkdir(parents=True)
    (profile / "prefs.js").write_text(PREFS_HEAD + "\n".join(sorted(lines)) + "\n")
    return profile


def _pop(**prefs: object) -> dict[str, object]:
    return {
        "type": "pop3",
        "hostname": "pop.example.org",
        "userName": "alex",
        "directory-rel": "[ProfD]Mail/pop.example.org",
        **prefs,
    }


@pytest.mark.parametrize(
    ("prefs", "expected"),
    [
        ({}, "removes every message from the server"),  # Thunderbird's default
        ({"leave_on_server": False}, "removes every message from the server"),
        (
            {"leave_on_server": True, "delete_by_age_from_server": True,
             "num_days_to_leave_on_server": 14},
            "14 days after",
        ),
        ({"leave_on_server": True, "delete_by_age_from_server": True}, "7 days after"),
        (
            {"leave_on_server": True, "delete_mail_left_on_server": True},
            "when you delete it in Thunderbird",
        ),
        ({"leave_on_server": True}, None),
    ],
)  # fmt: skip
def test_thunderbird_pop3_settings_say_what_deletes_from_the_server(
    tmp_path: Path, prefs: dict[str, object], expected: str | None
) -> None:
    profile = _tb_profile(
        tmp_path,
        {"server1": {"type": "none", "hostname": "Local Folders"}, "server2": _pop(**prefs)},
    )
    (habit,) = thunderbird_pop3_habits(profile)
    assert (habit.host, habit.username) == ("pop.example.org", "alex")
    warning = habit.warning()
    if expected is None:
        assert warning is None and not habit.deletes_from_server
    else:
        assert warning is not None and expected in warning and habit.deletes_from_server


def test_devices_warns_when_the_old_thunderbird_deletes_from_the_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tb = _tb_profile(tmp_path, {"server2": _pop(check_new_mail=True)})
    profile = _profile(tmp_path, source=tb / "Mail" / "pop.example.org")
    result = _devices(profile, capsys, "--smtp", "smtp.example.org")
    (warning,) = result["warnings"]
    assert "alex@pop.example.org" in warning and "removes every message" in warning


def test_advice_for_imap_says_what_to_do_on_each_device(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["advise", "--devices", "3", "--webmail", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["recommendation"] == "imap"
    assert "all 3 of your devices" in data["devices"][0]
    assert run(["advise", "--devices", "3", "--webmail"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "On your devices" in text and "mailadvisor devices --profile FILE" in text
