"""How ``--help`` looks: no Python types in the type column.

typer 0.29 shows ``<bool>`` in the type column of every on/off flag (``--json``,
``--dry-run``, ``--help``), which reads as if the flag took a value, and
``<list[Path]>`` beside an argument already named ``FILE...``. A flag takes no
value and a parameter with its own metavar is already described, so their type
column stays empty. Kept here, in one place, because it touches typer's parameter
classes rather than our commands.
"""

from __future__ import annotations

from typing import Any

import typer.core


def hide_flag_types() -> None:
    """Leave the type column empty for flags and for arguments named by a metavar."""
    _tidy(getattr(typer.core, "TyperOption", None), flags=True)
    _tidy(getattr(typer.core, "TyperArgument", None), flags=False)


def _tidy(param_class: Any, *, flags: bool) -> None:
    original = getattr(param_class, "display_type_rich", None)
    if original is None or getattr(original, "_mailadvisor_tidied", False):
        return  # another typer, or done already: nothing to tidy, and nothing may break

    def display_type_rich(self: Any, ctx: Any) -> str | None:
        if flags and getattr(self, "is_flag", False) and getattr(self, "metavar", None) is None:
            return None
        if not flags and getattr(self, "metavar", None):
            return None
        result: str | None = original(self, ctx)
        return result

    display_type_rich._mailadvisor_tidied = True  # type: ignore[attr-defined]
    param_class.display_type_rich = display_type_rich
