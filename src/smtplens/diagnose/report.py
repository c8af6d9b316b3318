"""The shape every live check returns: a one-line verdict, findings, ``ok`` and a JSON-ready ``to_dict``.

:class:`Report` is a frozen keyword-only dataclass; each check subclasses it with its own fields (``IpReport``,
``DomainReport``, ``ProbeReport``). :func:`jsonable` turns any field value (dataclasses, named tuples, enums,
tuples, bytes) into plain JSON data, so subclasses need no ``to_dict`` of their own.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Mapping
from enum import Enum
from typing import Any

from smtplens.diagnose.findings import Finding, Severity

__all__ = ["Report", "jsonable"]

_PROBLEMS = (Severity.ERROR, Severity.WARNING)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """What a check found: ``verdict`` sums it up in one line, ``findings`` lists each problem with its fix."""

    verdict: str
    findings: tuple[Finding, ...] = ()

    @property
    def ok(self) -> bool:
        """True when no finding is an error or a warning."""
        return not any(item.severity in _PROBLEMS for item in self.findings)

    def by_severity(self, severity: Severity) -> tuple[Finding, ...]:
        """The findings of one severity, in report order."""
        return tuple(item for item in self.findings if item.severity is severity)

    def to_dict(self) -> dict[str, object]:
        """Every field plus ``ok``, as JSON-ready data (the ``--json`` output of the commands)."""
        out: dict[str, object] = {"verdict": self.verdict, "ok": self.ok}
        for item in dataclasses.fields(self):
            if item.name != "verdict":
                out[item.name] = jsonable(getattr(self, item.name))
        return out


def jsonable(value: Any) -> object:
    """``value`` as JSON data: objects with ``to_dict`` use it, dataclasses and named tuples become objects,
    enums their value, sequences lists, bytes base64 text; anything else unknown becomes its ``str``."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Enum):
        return jsonable(value.value)
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return jsonable(to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {item.name: jsonable(getattr(value, item.name)) for item in dataclasses.fields(value)}
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return {str(key): jsonable(item) for key, item in value._asdict().items()}
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(item) for item in value]
    return str(value)
