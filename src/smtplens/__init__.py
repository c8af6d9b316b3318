"""smtplens: understand, diagnose and reproduce SMTP replies.

The public API is re-exported here; everything else is private.
"""

from __future__ import annotations

from smtplens.classifier import Evidence, Verdict, classify
from smtplens.compare import Comparison, compare
from smtplens.errors import KnowledgeError, ParseError, SmtplensError, UnknownCodeError, UnknownLanguageError
from smtplens.knowledge.catalogue import CodeInfo, list_codes, lookup, normalize_code
from smtplens.knowledge.entries import Kind, Level
from smtplens.model import STAGES, Reply, ReplyClass, Stage
from smtplens.reply import parse_reply

__version__ = "0.1.0"

__all__ = [
    "STAGES",
    "CodeInfo",
    "Comparison",
    "Evidence",
    "Kind",
    "KnowledgeError",
    "Level",
    "ParseError",
    "Reply",
    "ReplyClass",
    "SmtplensError",
    "Stage",
    "UnknownCodeError",
    "UnknownLanguageError",
    "Verdict",
    "__version__",
    "classify",
    "compare",
    "languages",
    "list_codes",
    "lookup",
    "normalize_code",
    "parse_reply",
]


def languages() -> dict[str, str]:
    """The languages smtplens has texts for, with their own names (``{"de": "Deutsch", …}``)."""
    from smtplens.knowledge.load import knowledge

    return dict(knowledge().language_names)
