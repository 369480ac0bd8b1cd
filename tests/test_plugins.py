"""The plugin manager: discovery, isolation of broken plugins, listing."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import types
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from advisor import hookimpl
from advisor.cli import run
from advisor.errors import PluginError
from advisor.plugins.manager import BUILTIN_ONLY_ENV, load_plugins
from advisor.plugins.types import FolderRole, ProviderInfo, ServerFolder

BUILTINS = {"gmail", "outlook", "generic", "providers"}
HERE = Path(__file__).parent


class _FakeDist:
    def __init__(self, name: str, version: str = "9.9") -> None:
        self.metadata = {"Name": name}
        self.version = version


@dataclass
class FakeEntryPoint:
    """Stands in for importlib.metadata.EntryPoint, without installing anything."""

    name: str
    target: Any
    dist_name: str

    @property
    def dist(self) -> Any:
        return _FakeDist(self.dist_name)

    def load(self) -> Any:
        if isinstance(self.target, BaseException):
            raise self.target
        return self.target


def _module(name: str, provider: str, **hooks: Any) -> types.ModuleType:
    mod = types.ModuleType(name)

    @hookimpl
    def mailadvisor_providers() -> Sequence[ProviderInfo]:
        return [ProviderInfo(provider, provider.title())]

    mod.mailadvisor_providers = mailadvisor_providers  # type: ignore[attr-defined]
    for hook_name, fn in hooks.items():
        setattr(mod, hook_name, hookimpl(fn))
    return mod


def _installed() -> list[Any]:
    return list(importlib.metadata.entry_points(group="mailadvisor"))


def test_builtins_ship_inside_the_mailadvisor_distribution() -> None:
    host = load_plugins()
    by_name = {r.name: r for r in host.records}
    assert set(by_name) >= BUILTINS
    for name in BUILTINS:
        record = by_name[name]
        assert record.builtin
        assert record.distribution == "mailadvisor"
        assert record.version
        assert "mailadvisor_server_settings" in record.hooks
        # Each serves its own provider; the data-driven one serves many (icloud, yahoo...).
        assert record.providers == (name,) or (name == "providers" and "icloud" in record.providers)
    # No top-level package called "plugins" may be importable from site-packages.
    dist_files = importlib.metadata.files("mailadvisor") or []
    assert not any(str(f).startswith("plugins/") for f in dist_files)


def test_broken_third_party_plugin_is_a_warning_naming_its_distribution() -> None:
    broken = FakeEntryPoint("broken", ImportError("no module named x"), "mailadvisor-broken")
    eps = [*_installed(), broken]
    host = load_plugins(eps, builtin_only=False)
    assert {r.name for r in host.records} >= BUILTINS
    assert "broken" not in {r.name for r in host.records}
    (warning,) = host.warnings
    assert warning.distribution == "mailadvisor-broken"
    assert "pip uninstall mailadvisor-broken" in warning.message


def test_misspelt_hook_is_refused_with_a_warning() -> None:
    mod = _module("typo", "typo", mailadvisor_server_setings=lambda provider, email: None)
    host = load_plugins(
        [*_installed(), FakeEntryPoint("typo", mod, "mailadvisor-typo")], builtin_only=False
    )
    assert "typo" not in {r.name for r in host.records}
    assert "mailadvisor_server_setings" in host.warnings[0].message


def test_third_party_cannot_take_a_builtin_provider_name() -> None:
    mod = _module("fake_gmail", "gmail")
    host = load_plugins(
        [FakeEntryPoint("evil", mod, "mailadvisor-evil"), *_installed()], builtin_only=False
    )
    gmail = [r for r in host.records if "gmail" in r.providers]
    assert [r.distribution for r in gmail] == ["mailadvisor"]
    assert "already served by mailadvisor" in host.warnings[0].message


def test_broken_builtin_is_an_error_not_a_warning() -> None:
    eps = [FakeEntryPoint("gmail", ImportError("boom"), "mailadvisor")]
    with pytest.raises(PluginError, match="Reinstall mailadvisor"):
        load_plugins(eps)


def test_builtin_only_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    extra = FakeEntryPoint("extra", _module("extra", "extra"), "mailadvisor-extra")
    installed = _installed()
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [*installed, extra])
    assert "extra" in {r.name for r in load_plugins().records}
    monkeypatch.setenv(BUILTIN_ONLY_ENV, "1")
    assert {r.name for r in load_plugins().records} == BUILTINS


def test_typed_wrappers_reach_the_right_plugin() -> None:
    host = load_plugins(_installed(), builtin_only=True)
    assert host.match_address("someone@gmail.com")[0].provider == "gmail"
    assert host.match_address("x@hotmail.com")[0].provider == "outlook"
    mx = ["corp-example.mail.protection.outlook.com"]
    assert host.match_address("x@corp.example", mx_hosts=mx)[0].provider == "outlook"
    assert host.match_address("x@example.org")[0].provider == "generic"
    settings = host.server_settings("gmail", "someone@gmail.com")
    assert settings is not None and settings.imap is not None
    assert settings.imap.host == "imap.gmail.com" and settings.imap.port == 993
    assert host.limits("gmail").max_connections == 15
    assert host.limits("outlook").max_message_bytes == 35 * 1024 * 1024
    all_mail = ServerFolder("[Gmail]/All Mail", "/", frozenset({"\\All"}))
    folders = [ServerFolder("Calendar", "/"), all_mail]
    assert "Calendar" in host.folder_policy("outlook", folders).never_upload
    assert host.folder_policy("outlook", folders).roles[FolderRole.SENT] == "Sent Items"
    assert host.folder_policy("gmail", folders).never_upload == {"[Gmail]/All Mail"}
    advice = host.classify_response(
        "outlook", "BAD Request is throttled. Suggested Backoff Time: 1500 milliseconds"
    )
    assert advice is not None and advice.retry_after_seconds == 1.5
    assert host.classify_response("outlook", "NO [TRYCREATE] no such folder") is None
    assert host.auth_methods("outlook", "x@hotmail.com")[0].mechanism == "oauth2"
    assert host.preflight("generic", "x@example.org") == []


def test_plugins_command_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["plugins", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    names = {p["name"]: p for p in data["plugins"]}
    assert set(names) >= BUILTINS
    assert names["gmail"]["builtin"] is True
    assert names["gmail"]["distribution"] == "mailadvisor"
    assert "mailadvisor_limits" in names["gmail"]["hooks"]


def test_plugins_command_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["plugins"]) == 0
    out = capsys.readouterr().out
    for name in BUILTINS:
        assert name in out
    assert "mailadvisor" in out and "built-in" in out


@pytest.mark.slow
def test_real_pip_install_of_a_third_party_plugin(tmp_path: Path) -> None:
    """An example plugin installed with pip shows up as third-party; a broken one warns."""
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(HERE / "data" / "mailadvisor-example"),
        ],
        check=True,
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run(
        [sys.executable, "-m", "advisor", "plugins", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    plugins = {p["name"]: p for p in json.loads(out.stdout)["plugins"]}
    assert plugins["example"]["builtin"] is False
    assert plugins["example"]["distribution"] == "mailadvisor-example"
    assert plugins["example"]["version"] == "1.2.3"

    # Break it: the command still works and names the distribution.
    (target / "mailadvisor_example" / "__init__.py").write_text("raise RuntimeError('broken')\n")
    out = subprocess.run(
        [sys.executable, "-m", "advisor", "plugins", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0
    assert "mailadvisor-example" in out.stderr and "Traceback" not in out.stderr
    assert "example" not in {p["name"] for p in json.loads(out.stdout)["plugins"]}

    # And the documented switch leaves it out without a warning.
    out = subprocess.run(
        [sys.executable, "-m", "advisor", "plugins", "--json"],
        env={**env, BUILTIN_ONLY_ENV: "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stderr == ""
