"""Turning command results (plain dataclasses) into text or JSON."""

from __future__ import annotations

import dataclasses
import json
import os
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from advisor.stores.fsnames import has_surrogates, printable

stdout = Console(highlight=False)
stderr = Console(stderr=True, highlight=False)


def to_jsonable(value: Any) -> Any:
    """Dataclasses, enums, paths, dates (ISO 8601) and sets as JSON-friendly values.

    Text is always valid UTF-8: a file name that is not (lone surrogates, PEP 383) has
    its odd bytes written ``\\xE9``; a dataclass field holding such a path or name also
    gets ``<field>_bytes``, the exact bytes in hex, to find the file again.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            out[f.name] = to_jsonable(item)
            if isinstance(item, str | Path) and has_surrogates(str(item)):
                out[f"{f.name}_bytes"] = os.fsencode(item).hex()
        return out
    if isinstance(value, Enum):
        return to_jsonable(value.value)
    if isinstance(value, Path):
        return printable(str(value))
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(to_jsonable(k)): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted(to_jsonable(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return value


def print_json(value: Any) -> None:
    """Write ``value`` as indented JSON on stdout (plain print: no markup, no wrapping)."""
    print(json.dumps(to_jsonable(value), indent=2, ensure_ascii=False))


def error(message: str) -> None:
    """An error line on stderr, without rich markup interpretation of the message."""
    stderr.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)


def warning(message: str) -> None:
    stderr.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)
