"""The classifier: reply text → Verdict (pure). Phrases decide first, then provider codes, enhanced and basic codes."""

from smtplens.classifier.engine import classify
from smtplens.classifier.verdict import Evidence, Verdict

__all__ = ["Evidence", "Verdict", "classify"]
