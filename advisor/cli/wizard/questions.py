"""Questions for interactive commands, asked through an injectable :class:`Asker`.

A :class:`Prompt` says what to ask, the one-line hint under it and the suggested
answer; :class:`QuestionaryAsker` turns it into a questionary prompt in the terminal
(or on a prompt_toolkit input and output that a test gives it). Ctrl-C and Ctrl-D
become :class:`WizardCancelled`, so a caller never mistakes them for an answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from typing import Protocol as TypingProtocol

import questionary
from prompt_toolkit.input import Input
from prompt_toolkit.output import Output


class QuestionKind(StrEnum):
    """The kinds of question the wizard asks."""

    SELECT = "select"
    CONFIRM = "confirm"
    TEXT = "text"
    PASSWORD = "password"


@dataclass(frozen=True)
class Option:
    """One answer of a select question."""

    title: str
    value: Any
    """What the question returns when this option is chosen (never None)."""
    disabled: str | None = None
    """Why it cannot be chosen (shown next to it), or None."""


@dataclass(frozen=True)
class Prompt:
    """One question: what to ask, the hint under it, and the suggested answer."""

    key: str
    """A stable name for the question ("devices", "email"...): tests script by it."""
    kind: QuestionKind
    message: str
    hint: str
    """One line that tells a newcomer what is meant."""
    default: Any
    """The suggested answer: Enter takes it."""
    options: tuple[Option, ...] = ()
    validate: Callable[[str], bool | str] | None = None
    """For text: True, or a message saying what is wrong."""


class WizardCancelled(Exception):
    """The user pressed Ctrl-C (or Ctrl-D) at a question."""


class Asker(TypingProtocol):
    """Asks one question and returns the answer; raises :class:`WizardCancelled` on Ctrl-C."""

    def ask(self, prompt: Prompt) -> Any: ...


class QuestionaryAsker:
    """Asks with questionary, in the terminal (or on the ``input``/``output`` given)."""

    def __init__(self, input: Input | None = None, output: Output | None = None) -> None:
        self.input = input
        self.output = output

    def build(self, prompt: Prompt) -> questionary.Question:
        """The questionary question for ``prompt`` (not yet asked)."""
        io: dict[str, Any] = {}
        if self.input is not None:
            io["input"] = self.input
        if self.output is not None:
            io["output"] = self.output
        hint = f"({prompt.hint}) " if prompt.hint else ""
        # questionary puts a space on each side of a text prompt's instruction itself.
        text_hint = hint.rstrip() or None
        if prompt.kind is QuestionKind.SELECT:
            shortcuts = len(prompt.options) <= 9
            choices = [
                questionary.Choice(o.title, value=o.value, disabled=o.disabled)
                for o in prompt.options
            ]
            keys = f"1-{len(choices)} or arrows, Enter" if shortcuts else "arrows, Enter"
            return questionary.select(
                prompt.message,
                choices,
                default=prompt.default,
                instruction=f"{hint}[{keys}]",
                use_shortcuts=shortcuts,
                use_jk_keys=False,
                **io,
            )
        if prompt.kind is QuestionKind.CONFIRM:
            yes_no = "Y/n" if prompt.default else "y/N"
            return questionary.confirm(
                prompt.message, default=bool(prompt.default), instruction=f"{hint}[{yes_no}] ", **io
            )
        if prompt.kind is QuestionKind.PASSWORD:
            return questionary.password(
                prompt.message,
                instruction=text_hint,
                validate=prompt.validate or not_empty,
                **io,
            )
        return questionary.text(
            prompt.message,
            default=str(prompt.default or ""),
            instruction=text_hint,
            validate=prompt.validate or (lambda _text: True),
            **io,
        )

    def ask(self, prompt: Prompt) -> Any:
        try:
            # .ask() turns Ctrl-C into None (after printing kbi_msg); Ctrl-D is EOFError.
            answer = self.build(prompt).ask(kbi_msg="")
        except EOFError:
            raise WizardCancelled from None
        if answer is None:
            raise WizardCancelled
        return answer


def not_empty(text: str) -> bool | str:
    """A validator: anything but an empty answer."""
    return True if text else "Type it, or press Ctrl-C to stop."
