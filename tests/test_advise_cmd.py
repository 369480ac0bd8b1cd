"""``mailadvisor advise``: answers from options and profiles, JSON and text, provider plugins."""

from __future__ import annotations

import importlib.metadata
import json
import re
import types
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

import pytest

from advisor import hookimpl
from advisor.advice import ANSWER_HELP, AdviceAnswers
from advisor.cli import run
from advisor.cli.advise_cmd import option_for
from advisor.exitcodes import ExitStatus
from advisor.plugins.types import (
    AddressMatch,
    AdviceFactor,
    Direction,
    Endpoint,
    Protocol,
    ProviderInfo,
    Security,
    ServerSettings,
)

ROOT = Path(__file__).parent.parent
PROFILE = """\
version = 1
[account]
email = "pat@gmail.com"
[auth]
method = "oauth2"
keyring = true
"""


def flat(text: str) -> str:
    """Rendered text as one line of words: rich wraps to the terminal and draws boxes."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def advise_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert run(["advise", "--json", *args]) == ExitStatus.OK
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


def factor(data: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [f for f in data["factors"] if f["name"] == name]
    return found


def test_json_has_recommendation_confidence_and_factors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = advise_json(capsys, "--devices", "3", "--webmail", "--connectivity", "always")
    assert data["recommendation"] == "imap"
    assert data["confidence_word"] == "clear"
    assert 0.6 <= data["confidence"] <= 1.0
    devices = factor(data, "devices")
    assert devices["direction"] == "imap" and devices["strength"] == "strong"
    assert devices["answer"] == "3 devices" and devices["answers"] == ["devices"]
    assert factor(data, "webmail")["direction"] == "imap"
    assert factor(data, "connectivity")["answer"] == "always online"
    assert "backups" in {u["name"] for u in data["unknown"]}
    assert data["answers"]["devices"] == 3 and data["answers"]["sync_state"] is None
    assert data["provider"] is None and data["settings"]["endpoint"] is None


def test_pop3_advice_with_every_kind_of_option(capsys: pytest.CaptureFixture[str]) -> None:
    data = advise_json(
        capsys,
        "--devices=1",
        "--no-webmail",
        "--no-sync-state",
        "--connectivity",
        "METERED",
        "--backups",
        "--keep-off-server",
        "--no-shared-mailbox",
        "--mail-size",
        "4GB",
        "--free-disk",
        "1.5 GiB",
        "--quota",
        "500 MB",
        "--quota-used",
        "100MB",
    )
    assert data["recommendation"] == "pop3"
    assert data["unknown"] == []
    assert data["answers"] == {
        "devices": 1,
        "webmail": False,
        "sync_state": False,
        "connectivity": "metered",
        "backups": True,
        "keep_off_server": True,
        "shared_mailbox": False,
        "mail_size": 4_000_000_000,
        "free_disk": 1_610_612_736,
        "quota": 500_000_000,
        "quota_used": 100_000_000,
    }
    assert factor(data, "quota")["direction"] == "pop3"
    assert factor(data, "disk")["direction"] == "imap"  # the disk is too small: a conflict
    assert data["settings"]["leave_copy_on_server"] is False


def test_text_reads_like_advice(capsys: pytest.CaptureFixture[str]) -> None:
    code = run(
        ["advise", "--devices", "1", "--connectivity", "rarely", "--email", "pat@example.org"]
    )
    assert code == ExitStatus.OK
    out = capsys.readouterr().out
    assert "My advice: POP3" in out
    assert "POP3 downloads your mail to this computer" in flat(out)
    for heading in ("Why", "Not answered", "Keep in mind", "Settings to use"):
        assert re.search(rf"^{heading}", out, re.M), heading
    words = flat(out)  # the text is wrapped to the terminal's width
    assert "rarely online" in words
    # Unknown answers say how to give them.
    assert "--webmail / --no-webmail" in words and "--mail-size SIZE" in words
    # The generic plugin's guess for the address, and the copy-on-server advice.
    assert "server pop.example.org, port 995" in words
    assert "a guess from your address" in words and "User name: pat@example.org" in words
    assert "Leave a copy on the server" in words
    assert "one disk failure loses all your mail" in words


def test_profile_answers_and_options_override_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        PROFILE + '[advice]\nconnectivity = "rarely"\nkeep_off_server = true\nwebmail = true\n'
    )
    data = advise_json(capsys, "--profile", str(path))
    assert data["recommendation"] == "pop3"
    assert data["answers"]["webmail"] is True
    # The address comes from [account]: Gmail's plugin adds its factor and its settings.
    assert data["provider"] == "gmail" and data["email"] == "pat@gmail.com"
    assert factor(data, "gmail-pop")["direction"] == "imap"
    assert data["settings"]["endpoint"]["host"] == "pop.gmail.com"

    data = advise_json(
        capsys, "--profile", str(path), "--no-webmail", "--devices", "3", "--sync-state"
    )
    assert data["recommendation"] == "imap"
    assert data["answers"]["webmail"] is False  # the option won
    assert data["answers"]["connectivity"] == "rarely"  # the profile still counts
    assert data["settings"]["endpoint"]["host"] == "imap.gmail.com"


def test_profile_errors_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "p.toml"
    path.write_text(PROFILE + "[advice]\nlaptops = 2\n")
    assert run(["advise", "--profile", str(path)]) == ExitStatus.USAGE
    err = capsys.readouterr().err
    assert "[advice] laptops" in err and "unknown key" in err and "devices" in err
    assert "Traceback" not in err


def test_outlook_needs_a_switch_before_anything_works(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(["advise", "--provider", "outlook", "--devices", "2"]) == ExitStatus.OK
    out = capsys.readouterr().out
    before = out.split("Before you start", 1)[1]
    assert "switched on" in before
    # Shown once, as a step, not again among the reasons.
    assert flat(out).count("switched on in its web settings") == 1
    # Without an address the server settings are not looked up.
    assert "Give --email ADDRESS" in flat(out)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mail-size", "4 XB"], '--mail-size: expected a size like "4GB"'),
        (["--quota", "-1GB"], "--quota: expected a size"),
        (["--email", "not-an-address"], "--email: expected an address"),
        (["--provider", "nosuch"], "no plugin provides 'nosuch'"),
        (["--devices", "0"], "--devices"),
        (["--connectivity", "sometimes"], "--connectivity"),
        (["--profile", "/nonexistent/p.toml"], "no such profile file"),
    ],
)
def test_bad_input_is_a_usage_error(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["advise", *args]) == ExitStatus.USAGE
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_help_documents_every_answer(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")  # narrow help columns would fold long names
    assert run(["advise", "--help"]) == 0
    out = flat(capsys.readouterr().out)
    for name in ANSWER_HELP:
        assert f"[advice] {name}" in out, name
        assert option_for(name).split()[0] in out, name
    assert "4GB" in out and "1.5 GiB" in out


def test_readme_documents_the_command_and_every_answer() -> None:
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"^\| `mailadvisor advise", readme, re.M)
    section = readme.split("## The advice", 1)[1].split("\n## ", 1)[0]
    for f in fields(AdviceAnswers):
        assert re.search(rf"^\| `{f.name}` \|", section, re.M), f.name
        assert option_for(f.name).split()[0] in section, f.name


# --- a third-party provider without POP3, through the real plugin manager ------------


class _Dist:
    metadata: ClassVar[dict[str, str]] = {"Name": "mailadvisor-nopop"}
    version = "1.0"


@dataclass
class _EntryPoint:
    """A stand-in for an installed entry point (the plugin itself is real code)."""

    name: str
    module: types.ModuleType

    @property
    def dist(self) -> Any:
        return _Dist()

    def load(self) -> Any:
        return self.module


def _nopop_plugin() -> types.ModuleType:
    mod = types.ModuleType("mailadvisor_nopop")

    @hookimpl
    def mailadvisor_providers() -> Sequence[ProviderInfo]:
        return [ProviderInfo("nopop", "NoPop Mail", domains=("nopop.example",))]

    @hookimpl
    def mailadvisor_match_address(
        email: str, domain: str, mx_hosts: Sequence[str]
    ) -> AddressMatch | None:
        return AddressMatch("nopop", 1.0, "owned") if domain == "nopop.example" else None

    @hookimpl
    def mailadvisor_server_settings(provider: str, email: str) -> ServerSettings | None:
        if provider != "nopop":
            return None
        return ServerSettings(
            imap=Endpoint(Protocol.IMAP, "imap.nopop.example", 993, Security.TLS),
            source="plugin nopop",
        )

    @hookimpl
    def mailadvisor_advice_factors(provider: str, email: str) -> Sequence[AdviceFactor] | None:
        if provider != "nopop":
            return None
        return [AdviceFactor("nopop-no-pop3", Direction.CONSTRAINT, 1.0, "NoPop has no POP3.")]

    for fn in (
        mailadvisor_providers,
        mailadvisor_match_address,
        mailadvisor_server_settings,
        mailadvisor_advice_factors,
    ):
        setattr(mod, fn.__name__, fn)
    return mod


def test_a_provider_without_pop3_overrides_the_answers(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    installed = list(importlib.metadata.entry_points(group="mailadvisor"))
    extra = _EntryPoint("nopop", _nopop_plugin())
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [*installed, extra])
    args = ["--connectivity", "rarely", "--keep-off-server", "--email", "me@nopop.example"]
    data = advise_json(capsys, *args)
    assert data["recommendation"] == "imap" and data["preferred"] == "pop3"
    assert data["constraint"] == "NoPop has no POP3."
    assert data["confidence"] == 1.0 and data["provider"] == "nopop"
    assert data["settings"]["endpoint"]["host"] == "imap.nopop.example"

    assert run(["advise", *args]) == ExitStatus.OK
    words = flat(capsys.readouterr().out)
    assert "My advice: IMAP" in words
    assert "Your answers lean toward POP3, but this is not a choice here" in words
    assert "a rule, not a choice" in words
