"""The example profiles shipped with mailadvisor (the repository's profiles/ folder).

In an installed wheel they are package data under ``advisor/example_profiles``; in a
source checkout (editable install, tests) they are read from the checkout itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from advisor.errors import UsageError

_PACKAGED = Path(__file__).resolve().parent / "example_profiles"
_CHECKOUT = Path(__file__).resolve().parent.parent / "profiles"


@dataclass(frozen=True)
class ExampleProfile:
    """One example: its name (the file name without .toml), where it is, what it does."""

    name: str
    path: Path
    description: str


def examples_dir() -> Path:
    """The folder holding the example profiles of this installation."""
    return _PACKAGED if _PACKAGED.is_dir() else _CHECKOUT


def example_profiles() -> list[ExampleProfile]:
    """Every example profile, by name; the description is its first comment line."""
    found: list[ExampleProfile] = []
    folder = examples_dir()
    for path in sorted(folder.glob("*.toml")) if folder.is_dir() else ():
        first = path.read_text(encoding="utf-8").splitlines()[:1]
        description = first[0].lstrip("#").strip() if first and first[0].startswith("#") else ""
        found.append(ExampleProfile(path.stem, path, description))
    return found


def example_profile(name: str) -> ExampleProfile:
    """The example called ``name`` (with or without .toml); :class:`UsageError` if none."""
    wanted = name.removesuffix(".toml")
    examples = example_profiles()
    for example in examples:
        if example.name == wanted:
            return example
    known = ", ".join(e.name for e in examples) or "none installed"
    raise UsageError(f"no example profile called {name!r} (examples: {known})")
