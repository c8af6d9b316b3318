"""classify: reply text → Verdict (pure). Phrases decide first, then provider codes, enhanced and basic codes."""

from smtplens.classify.classifier import classify
from smtplens.classify.verdict import Evidence, Verdict

__all__ = ["Evidence", "Verdict", "classify"]
