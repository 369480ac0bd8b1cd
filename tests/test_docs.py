"""The documentation stays true to the code."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pluggy
import pytest

from advisor.exitcodes import ExitStatus
from advisor.plugins import hookspecs

ROOT = Path(__file__).parent.parent
SPECS = sorted(
    name
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
    if name.startswith("mailadvisor_")
)


def test_there_are_hookspecs() -> None:
    assert len(SPECS) >= 9


@pytest.mark.parametrize("name", SPECS)
def test_hookspec_is_documented_in_plugins_md(name: str) -> None:
    doc = (ROOT / "docs" / "plugins.md").read_text()
    assert re.search(rf"^### {name}$", doc, re.M), f"docs/plugins.md lacks a '### {name}' section"
    signature = inspect.signature(getattr(hookspecs, name))
    for param in signature.parameters:
        section = doc.split(f"### {name}")[1].split("\n### ")[0]
        assert param in section, f"{name}: parameter {param!r} is not documented"


@pytest.mark.parametrize("name", SPECS)
def test_hookspec_is_typed_and_says_when_and_what(name: str) -> None:
    fn = getattr(hookspecs, name)
    assert fn.__doc__ and "Called" in fn.__doc__, f"{name}: docstring must say when it is called"
    assert "Return" in fn.__doc__, f"{name}: docstring must say what it returns"
    first = bool(getattr(fn, hookspecs.PROJECT_NAME + "_spec", {}).get("firstresult", False))
    says = "First result wins" in " ".join(fn.__doc__.split())
    assert first == says, f"{name}: firstresult={first} but the docstring disagrees"
    sig = inspect.signature(fn)
    assert sig.return_annotation is not inspect.Signature.empty
    assert all(p.annotation is not inspect.Parameter.empty for p in sig.parameters.values())


def test_hookspec_module_holds_only_specs_and_markers() -> None:
    for name, value in vars(hookspecs).items():
        if name.startswith("_") or name == "annotations":
            continue
        if inspect.ismodule(value) or isinstance(value, type):
            continue
        if inspect.isfunction(value):
            assert name.startswith("mailadvisor_")
        else:
            assert isinstance(value, pluggy.HookspecMarker | pluggy.HookimplMarker | str), name


def test_readme_documents_every_exit_status() -> None:
    readme = (ROOT / "README.md").read_text()
    for status in ExitStatus:
        row = rf"^\|\s*{int(status)}\s*\|"
        assert re.search(row, readme, re.M), f"exit status {status} is not in the README"


def test_readme_and_ci_run_the_same_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    match = re.search(r"```sh\n(?P<cmd>[^`]*scripts/test[^`]*)```", readme)
    assert match, "README must give the test command in a sh block"
    assert "scripts/test" in ci
