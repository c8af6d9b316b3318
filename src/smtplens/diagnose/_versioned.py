"""What MTA-STS and TLS-RPT discovery share: keep the TXT strings that begin with the record's version tag, and
say why there is no record when none is left."""

from __future__ import annotations

import re
from collections.abc import Sequence

from smtplens.diagnose.findings import Finding

__all__ = ["absence", "candidates"]


def candidates(txts: Sequence[str], start: re.Pattern[str]) -> tuple[str, ...]:
    """The TXT strings that begin with the version tag; the others are discarded (RFC 8461 3.1, RFC 8460 3)."""
    return tuple(txt for txt in txts if start.match(txt))


def absence(txts: Sequence[str], kept: Sequence[str], *, wrong_version: Finding, no_record: Finding) -> list[Finding]:
    """No finding when a candidate exists; else ``wrong_version`` if TXT records exist, ``no_record`` if none do."""
    if kept:
        return []
    return [wrong_version if txts else no_record]
