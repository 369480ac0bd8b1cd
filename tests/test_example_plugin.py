"""The example third-party plugin (examples/mailadvisor-fastmail) installs with pip and is used.

It goes into a fresh virtual environment that sees the already-installed
mailadvisor and its dependencies (the site directories of the interpreter running
the tests, so no network is needed) but nothing installed into it: the plugin is
absent before ``pip install`` and present after, exactly as for a user.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import site
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path
from typing import Any

import pytest

from advisor.plugins.manager import BUILTIN_ONLY_ENV

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "mailadvisor-fastmail"
DIST = "mailadvisor-fastmail"


def _run(python: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # Nothing from the calling process may decide which plugins load.
    env = {k: v for k, v in os.environ.items() if k not in {BUILTIN_ONLY_ENV, "PYTHONPATH"}}
    return subprocess.run(
        [str(python), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def _json(python: Path, *args: str, cwd: Path) -> Any:
    out = _run(python, "-m", "advisor", *args, "--json", cwd=cwd)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    return json.loads(out.stdout)


def _running_site_dirs() -> list[str]:
    """Where this interpreter finds its packages, whether it is a venv or not.

    ``--system-site-packages`` would show the *base* interpreter's site-packages,
    which lack mailadvisor when the tests run inside a virtual environment.
    """
    dirs = [*site.getsitepackages(), sysconfig.get_paths()["purelib"]]
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    return list(dict.fromkeys(d for d in dirs if Path(d).is_dir()))


def _fresh_venv(env_dir: Path) -> Path:
    """A new venv seeing the running environment's packages; returns its python."""
    venv.EnvBuilder(system_site_packages=False, with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    purelib = _run(
        python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=env_dir
    ).stdout.strip()
    # addsitedir (not a bare path line) so the outer editable installs' .pth files apply too.
    lines = [f"import site; site.addsitedir({d!r})" for d in _running_site_dirs()]
    (Path(purelib) / "_outer_environment.pth").write_text("\n".join(lines) + "\n")
    return python


@pytest.mark.slow
def test_example_plugin_installs_into_a_fresh_venv_and_is_used(tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    # No pip of its own: the outer environment's pip (visible through its site
    # directories) installs into the interpreter that runs it, i.e. this venv.
    # That saves the seconds ensurepip takes and works without the network.
    python = _fresh_venv(env_dir)
    work = tmp_path / "cwd"  # not the source tree, so nothing is imported from the cwd
    work.mkdir()

    # A fresh environment: its own prefix, and the plugin nowhere to be found yet.
    probe = _run(
        python,
        "-c",
        "import importlib.metadata as m, importlib.util as u, sys;"
        "print(sys.prefix);"
        "print(any(d.metadata['Name'] == 'mailadvisor-fastmail' for d in m.distributions()));"
        "print(u.find_spec('mailadvisor_fastmail') is not None)",
        cwd=work,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split() == [str(env_dir), "False", "False"]
    before = _json(python, "plugins", cwd=work)
    names = {p["name"] for p in before["plugins"]}
    assert {"gmail", "outlook", "generic"} <= names
    assert "fastmail" not in names
    assert before["warnings"] == []
    unclaimed = _json(python, "detect", "someone@fastmail.com", "--no-network", cwd=work)
    assert unclaimed["provider"] == "generic"

    install = _run(
        python,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        str(EXAMPLE),
        cwd=work,
    )
    assert install.returncode == 0, install.stderr
    # Installed into the venv, not into the environment running the tests.
    where = _run(python, "-c", "import mailadvisor_fastmail as m; print(m.__file__)", cwd=work)
    assert Path(where.stdout.strip()).is_relative_to(env_dir), where.stdout + where.stderr

    after = _json(python, "plugins", cwd=work)
    assert after["warnings"] == []
    plugins = {p["name"]: p for p in after["plugins"]}
    fastmail = plugins["fastmail"]
    assert fastmail["builtin"] is False
    assert fastmail["distribution"] == DIST
    assert fastmail["version"] == "0.1.0"
    assert fastmail["providers"] == ["fastmail"]
    assert set(fastmail["hooks"]) == {
        "mailadvisor_providers",
        "mailadvisor_match_address",
        "mailadvisor_server_settings",
        "mailadvisor_auth_methods",
        "mailadvisor_preflight",
        "mailadvisor_advice_factors",
    }

    found = _json(python, "detect", "someone@fastmail.com", "--no-network", cwd=work)
    assert found["provider"] == "fastmail"
    assert found["provider_name"] == "Fastmail"
    assert found["matches"][0] == {
        "provider": "fastmail",
        "confidence": 1.0,
        "reason": "fastmail.com is a Fastmail address",
    }
    servers = {s["endpoint"]["protocol"]: s for s in found["servers"]}
    assert {p: (s["endpoint"]["host"], s["endpoint"]["port"]) for p, s in servers.items()} == {
        "imap": ("imap.fastmail.com", 993),
        "pop3": ("pop.fastmail.com", 995),
        "smtp": ("smtp.fastmail.com", 465),
    }
    for s in servers.values():
        assert s["endpoint"]["security"] == "tls"
        assert s["endpoint"]["username"] == "someone@fastmail.com"
        assert s["origin"] == "plugin"
        assert s["via"] == "plugin fastmail"
        assert s["trusted"] is True

    # The plain-text output a user sees names the plugin as the source too.
    text = _run(python, "-m", "advisor", "detect", "someone@fastmail.fm", "--no-network", cwd=work)
    assert text.returncode == 0, text.stderr
    assert "provider fastmail" in text.stdout
    assert "imap.fastmail.com:993" in text.stdout
    assert "from plugin fastmail" in text.stdout

    # The environment running the tests never saw it.
    assert "fastmail" not in {
        ep.name for ep in importlib.metadata.entry_points(group="mailadvisor")
    }
    assert sys.prefix != str(env_dir)


def test_example_plugin_hooks_in_process() -> None:
    """The hooks' answers for a custom domain at Fastmail and for other providers' names."""
    sys.path.insert(0, str(EXAMPLE))
    try:
        import mailadvisor_fastmail as fm
    finally:
        sys.path.remove(str(EXAMPLE))
    match = fm.mailadvisor_match_address(
        "me@example.org", "example.org", ["in1-smtp.messagingengine.com."]
    )
    assert match is not None and match.provider == "fastmail" and match.confidence == 0.8
    assert fm.mailadvisor_match_address("me@example.org", "example.org", ["mx.example.org"]) is None
    # A look-alike domain is no match.
    assert (
        fm.mailadvisor_match_address("me@example.org", "example.org", ["evilmessagingengine.com"])
        is None
    )
    for hook in (
        fm.mailadvisor_server_settings,
        fm.mailadvisor_auth_methods,
        fm.mailadvisor_preflight,
        fm.mailadvisor_advice_factors,
    ):
        assert hook("gmail", "x@gmail.com") is None
    (method,) = fm.mailadvisor_auth_methods("fastmail", "me@fastmail.com") or []
    assert method.mechanism == "app-password"
    (factor,) = fm.mailadvisor_advice_factors("fastmail", "me@fastmail.com") or []
    assert factor.direction == "imap" and 0 < factor.weight <= 1
