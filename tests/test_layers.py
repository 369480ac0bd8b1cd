"""The house rules of docs/architecture.md, checked on the source: imports only run
downwards, nothing below the CLI talks to the terminal, no module grows past ~600 lines.

Each module of ``advisor/`` belongs to the layer of its longest matching prefix in
``LAYERS`` (lowest first); it may import its own layer and those below, never one above.
A module no layer names fails the test, so a new package must be placed on the map.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "advisor"

# Lowest first; keep in step with docs/architecture.md ("Layers").
LAYERS: list[tuple[str, ...]] = [
    ("advisor.errors", "advisor.exitcodes", "advisor.platform_compat"),
    # The package root re-exports the plugin markers: ``from advisor import hookimpl``.
    ("advisor.plugins", "advisor.advice.model", "advisor.advice.sizes", "=advisor"),
    ("advisor.profile", "advisor.profile_examples", "advisor.secrets", "advisor.stores.fsnames"),
    ("advisor.oauth",),
    ("advisor.connection",),  # the wire: TLS, IMAP sessions, logins, probes, limits
    ("advisor.discovery",),
    ("advisor.connection.account", "advisor.connection.signin"),  # profile -> signed-in account
    ("advisor.stores", "advisor.checks", "advisor.advice", "advisor.forget"),
    ("advisor.migration",),
    ("advisor.devices",),
    ("advisor.cli", "advisor.__main__"),
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _layer(name: str) -> int:
    best, best_len = -1, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if prefix.startswith("="):  # this module only, not the package below it
                if name == prefix[1:] and len(prefix) > best_len:
                    best, best_len = index, len(prefix)
                continue
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    return best


def _imports(path: Path, module: str) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[int, str]] = []
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("advisor")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target.startswith("advisor"):
                found.append((node.lineno, target))
    return found


MODULES = sorted(ROOT.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT.parent)))
def test_imports_run_downwards(path: Path) -> None:
    module = _module_name(path)
    own = _layer(module)
    assert own >= 0, f"{module} is on no layer: add it to LAYERS"
    upward = [
        f"line {line}: {target}" for line, target in _imports(path, module) if _layer(target) > own
    ]
    assert not upward, f"{module} imports from a layer above it: {upward}"


def test_the_map_names_a_real_package_for_each_layer() -> None:
    for prefixes in LAYERS:
        for prefix in prefixes:
            rel = Path(*prefix.lstrip("=").split("."))
            assert (ROOT.parent / rel).is_dir() or (ROOT.parent / rel).with_suffix(
                ".py"
            ).exists(), prefix


# The helper process run by ``stores/mbox/fromsearch.py`` speaks to its parent on stdout.
MAY_WRITE_STDOUT = {"advisor.stores.mbox.fromsearch"}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT.parent)))
def test_nothing_below_the_cli_prints_or_exits(path: Path) -> None:
    module = _module_name(path)
    if module.startswith("advisor.cli") or module in MAY_WRITE_STDOUT:
        return
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in ("print", "exit", "input"):
                found.append(f"line {node.lineno}: {node.func.id}()")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id == "sys" and node.attr in ("stdout", "stderr", "exit"):
                found.append(f"line {node.lineno}: sys.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rich"):
            found.append(f"line {node.lineno}: from {node.module} import")
    assert not found, f"{module} talks to the terminal itself: {found}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT.parent)))
def test_no_module_is_a_second_house(path: Path) -> None:
    """About 600 lines at most: a module past that mixes jobs and should be split."""
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= 600, f"{path.name} has {lines} lines: split it along its responsibilities"
