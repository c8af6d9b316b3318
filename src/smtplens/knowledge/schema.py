"""Typed readers for TOML tables: each raises KnowledgeError naming file, entry and field."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources.abc import Traversable

from smtplens.errors import KnowledgeError


@dataclass(frozen=True, slots=True)
class Where:
    """The place a value is read from, for error messages."""

    file: str
    entry: str | None = None

    def error(self, field: str, problem: str) -> KnowledgeError:
        return KnowledgeError(self.file, field, problem, self.entry)


def table(where: Where, data: object, field: str) -> Mapping[str, object]:
    if not isinstance(data, Mapping):
        raise where.error(field, f"expected a table, found {type(data).__name__}")
    return data


def text(where: Where, data: Mapping[str, object], field: str, *, required: bool = True) -> str | None:
    value = data.get(field)
    if value is None:
        if required:
            raise where.error(field, "missing")
        return None
    if not isinstance(value, str):
        raise where.error(field, f"expected a string, found {type(value).__name__}")
    return value.strip()


def req_text(where: Where, data: Mapping[str, object], field: str, *, allow_empty: bool = False) -> str:
    value = text(where, data, field)
    assert value is not None
    if not value and not allow_empty:
        raise where.error(field, "is empty")
    return value


def text_list(where: Where, data: Mapping[str, object], field: str, *, required: bool = True) -> list[str] | None:
    value = data.get(field)
    if value is None:
        if required:
            raise where.error(field, "missing")
        return None
    if not isinstance(value, list):
        raise where.error(field, f"expected a list of strings, found {type(value).__name__}")
    out: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise where.error(f"{field}[{i}]", "expected a non-empty string")
        out.append(item.strip())
    return out


def req_list(where: Where, data: Mapping[str, object], field: str) -> list[str]:
    value = text_list(where, data, field)
    assert value is not None
    return value


def flag(where: Where, data: Mapping[str, object], field: str) -> bool:
    value = data.get(field)
    if not isinstance(value, bool):
        raise where.error(field, "expected true or false")
    return value


def tables(where: Where, data: Mapping[str, object], field: str) -> list[Mapping[str, object]]:
    value = data.get(field)
    if value is None:
        return []
    if not isinstance(value, list):
        raise where.error(field, "expected an array of tables")
    return [table(where, item, f"{field}[{i}]") for i, item in enumerate(value)]


def read_toml(node: Traversable, label: str) -> dict[str, object]:
    """Parse a data file; a syntax or encoding error names the file (``label``)."""
    try:
        return tomllib.loads(node.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise KnowledgeError(label, "(file)", f"not valid TOML: {exc}") from exc
