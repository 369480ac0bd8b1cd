"""Every module imports where the POSIX-only stdlib modules do not exist (Windows).

Each check runs in a fresh interpreter whose meta path refuses fcntl, pwd, grp, termios
and resource, then imports every module of advisor/ and of the built-in and example
plugins from this checkout. The "win32" run also sets ``sys.platform`` to "win32" before
our modules load, so their platform branches take the Windows side at import time (the
third-party libraries are loaded first under the real platform: their Windows code needs
a real Windows). ``mypy --platform win32/darwin`` in .ci/run covers what is only called.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from advisor import platform_compat

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIRS = [
    ROOT,
    ROOT / "plugins" / "gmail",
    ROOT / "plugins" / "outlook",
    ROOT / "plugins" / "generic",
    ROOT / "plugins" / "providers",
    ROOT / "examples" / "mailadvisor-fastmail",
]
HIDDEN = ("fcntl", "pwd", "grp", "termios", "resource")
THIRD_PARTY = (
    "typer",
    "rich",
    "questionary",
    "prompt_toolkit",
    "pluggy",
    "imapclient",
    "platformdirs",
    "keyring",
    "httpx",
    "httpcore",
    "dns.resolver",
    "defusedxml",
    "publicsuffixlist",
    "tomli_w",
    "filelock",
    "segno",
)

SCRIPT = r"""
import importlib, importlib.abc, json, sys

hidden, pretend, first, modules, paths = json.loads(sys.argv[1])
sys.path[:0] = paths
for name in first:
    importlib.import_module(name)

class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in hidden:
            raise ImportError(f"No module named {name!r} (hidden: POSIX only)")
        return None

for name in list(sys.modules):
    if name.split(".")[0] in hidden:
        del sys.modules[name]
sys.meta_path.insert(0, Blocker())
if pretend:
    sys.platform = pretend
failed = {}
where = {}
for name in modules:
    try:
        module = importlib.import_module(name)
        where[name] = getattr(module, "__file__", None)
    except Exception as exc:
        failed[name] = f"{type(exc).__name__}: {exc}"
print(json.dumps({"failed": failed, "where": where}))
"""


def _modules() -> list[str]:
    names = []
    for base in PACKAGE_DIRS:
        for top in sorted(base.iterdir()):
            if top.name not in ("advisor",) and not top.name.startswith("mailadvisor_"):
                continue
            for file in sorted(top.rglob("*.py")):
                parts = file.relative_to(base).with_suffix("").parts
                if parts[-1] == "__main__":
                    continue
                names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _import_all(pretend: str | None, first: tuple[str, ...]) -> dict[str, dict[str, str]]:
    modules = _modules()
    arg = json.dumps([HIDDEN, pretend, first, modules, [str(p) for p in PACKAGE_DIRS]])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in PACKAGE_DIRS)}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, arg],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    answer: dict[str, dict[str, str]] = json.loads(result.stdout.splitlines()[-1])
    return answer


def test_the_list_covers_the_package_and_the_plugins() -> None:
    modules = _modules()
    assert len(modules) > 70
    for name in (
        "advisor.stores.thunderbird",
        "advisor.stores.message_files",
        "advisor.cli.migrate_cmd",
        "advisor.oauth.tokens",
        "mailadvisor_gmail",
        "mailadvisor_outlook.oauth",
        "mailadvisor_generic",
        "mailadvisor_fastmail",
    ):
        assert name in modules


@pytest.mark.parametrize(
    ("pretend", "first"), [(None, ()), ("win32", THIRD_PARTY)], ids=["hidden", "win32"]
)
def test_every_module_imports_without_posix_only_modules(
    pretend: str | None, first: tuple[str, ...]
) -> None:
    answer = _import_all(pretend, first)
    assert answer["failed"] == {}
    # Our checkout's modules were imported, not an installed copy.
    assert all(str(f).startswith(str(ROOT)) for f in answer["where"].values())
    assert len(answer["where"]) == len(_modules())


def test_the_blocker_would_catch_a_posix_only_import(tmp_path: Path) -> None:
    # The check itself can fail: a module importing fcntl at the top is reported.
    (tmp_path / "posix_only_probe.py").write_text("import fcntl\n")
    arg = json.dumps([HIDDEN, "win32", (), ["posix_only_probe"], [str(tmp_path)]])
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, arg], capture_output=True, text=True, check=True
    )
    failed = json.loads(result.stdout.splitlines()[-1])["failed"]
    assert failed == {
        "posix_only_probe": "ImportError: No module named 'fcntl' (hidden: POSIX only)"
    }


def test_compat_module_is_the_only_one_naming_posix_only_calls() -> None:
    # The one-module rule: POSIX-only names appear in platform_compat and nowhere else.
    posix_only = re.compile(
        r"^\s*(?:import|from) (?:fcntl|pwd|grp|termios|resource)\b"
        r"|\bos\.(?:pread|fchmod|geteuid|getuid|sched_getaffinity|O_NONBLOCK)\b",
        re.M,
    )
    offenders = [
        f"{path.relative_to(ROOT)}: {match.group(0).strip()}"
        for path in sorted((ROOT / "advisor").rglob("*.py"))
        if path.name != "platform_compat.py"
        for match in posix_only.finditer(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
    assert Path(platform_compat.__file__).name == "platform_compat.py"
