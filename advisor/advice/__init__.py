"""The POP3-or-IMAP advice: a pure engine, no I/O.

* :mod:`advisor.advice.model`: :class:`AdviceAnswers` (the input) and :class:`Advice`
  with its factors (the output);
* :mod:`advisor.advice.rules`: every weight and every sentence, in one place to review;
* :mod:`advisor.advice.engine`: :func:`advise`, which weighs the answers by the rules;
* :mod:`advisor.advice.sizes`: :func:`parse_size` and :func:`format_size`.

The names callers use are exported here: ``from advisor.advice import advise``.
"""

from __future__ import annotations

from advisor.advice.engine import advise, strength_word
from advisor.advice.model import (
    SIZE_ANSWERS,
    Advice,
    AdviceAnswers,
    AnswerHelp,
    ClientSettings,
    Confidence,
    Connectivity,
    Factor,
    Push,
    UnknownAnswer,
)
from advisor.advice.rules import ANSWER_HELP, CAVEATS, RULES, SECURITY_WORDS, Rule
from advisor.advice.sizes import format_size, parse_size

__all__ = [
    "ANSWER_HELP",
    "CAVEATS",
    "RULES",
    "SECURITY_WORDS",
    "SIZE_ANSWERS",
    "Advice",
    "AdviceAnswers",
    "AnswerHelp",
    "ClientSettings",
    "Confidence",
    "Connectivity",
    "Factor",
    "Push",
    "Rule",
    "UnknownAnswer",
    "advise",
    "format_size",
    "parse_size",
    "strength_word",
]
