"""Checked reading of parsed TOML tables for the configuration of ``smtplens serve`` (docs/server-config.md).

A :class:`Table` is one table with its dotted key path; its getters check types and ranges and raise
:class:`ConfigError` naming the file and the key; ``done()`` refuses keys that were never read (typos).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from smtplens.errors import SmtplensError

__all__ = ["ConfigError", "Table", "parse_address"]

T = TypeVar("T")
S = TypeVar("S", bound=str)


class ConfigError(SmtplensError, ValueError):
    """A configuration value is missing, of the wrong type or out of range; the message says where."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        self.source = source
        self.key = key
        self.problem = problem
        super().__init__(f"{source}: {key}: {problem}" if key else f"{source}: {problem}")


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPv6]:PORT`` as (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT, not {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


class Table:
    """One TOML table with its dotted key path; records which keys were read so ``done()`` finds typos."""

    def __init__(self, data: Mapping[str, Any], path_name: str, source: str, base: Path) -> None:
        self.data = data
        self.path_name = path_name
        self.source = source
        self.base = base
        self.seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path_name}.{name}" if self.path_name else name

    def raw(self) -> dict[str, Any]:
        self.seen.update(self.data)
        return dict(self.data)

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            name = unknown[0]
            close = difflib.get_close_matches(name, sorted(self.seen), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(self.source, self.key(name), f"unknown key{hint}")

    def get(self, name: str, kind: type[T], default: T) -> T:
        self.seen.add(name)
        if name not in self.data:
            return default
        value = self.data[name]
        if kind is object or (isinstance(value, kind) and not (kind is int and isinstance(value, bool))):
            return value  # type: ignore[no-any-return]
        raise ConfigError(self.source, self.key(name), f"must be {_KIND_NAMES.get(kind, kind.__name__)}")

    def text(self, name: str) -> str | None:
        """An optional string."""
        value = self.get(name, object, None)
        if value is not None and not isinstance(value, str):
            raise ConfigError(self.source, self.key(name), "must be a string")
        return value

    def number(self, name: str, kind: type[T], default: T, *, minimum: float) -> T:
        self.seen.add(name)
        if name not in self.data:
            return default
        value = self.data[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and isinstance(value, float)):
            raise ConfigError(self.source, self.key(name), f"must be {_KIND_NAMES[kind]}")
        if value < minimum:
            raise ConfigError(self.source, self.key(name), f"must be at least {minimum:g}")
        return kind(value)  # type: ignore[call-arg]

    def choice(self, name: str, allowed: Sequence[S], default: S | None = None) -> S:
        """One of ``allowed`` (typed as they are: a tuple of a Literal's values gives that Literal)."""
        value = self.get(name, object, default)
        if value is None:
            raise ConfigError(self.source, self.key(name), f"required (one of {', '.join(allowed)})")
        if value not in allowed:
            raise ConfigError(self.source, self.key(name), f"must be one of {', '.join(allowed)}, not {value!r}")
        return allowed[allowed.index(value)]

    def strings(self, name: str) -> list[str]:
        values = self.get(name, list, [])
        if not all(isinstance(value, str) and value for value in values):
            raise ConfigError(self.source, self.key(name), "must be a list of non-empty strings")
        return values

    def address(self, name: str, default: tuple[str, int] | None) -> tuple[str, int] | None:
        value = self.get(name, object, None)
        if value is None:
            return default
        if value is False or value == "":
            return None
        if not isinstance(value, str):
            raise ConfigError(self.source, self.key(name), 'must be "HOST:PORT" (or false for none)')
        try:
            return parse_address(value)
        except ValueError as exc:
            raise ConfigError(self.source, self.key(name), str(exc)) from exc

    def path(self, name: str, default: Path | None) -> Path | None:
        value = self.get(name, str, None)
        if value is None:
            return default
        return self.base / Path(value).expanduser()

    def table(self, name: str) -> Table:
        value = self.get(name, dict, {})
        return Table(value, self.key(name), self.source, self.base)

    def tables(self, name: str) -> list[Table]:
        value = self.get(name, list, [])
        if not all(isinstance(row, dict) for row in value):
            raise ConfigError(self.source, self.key(name), f"must be an array of tables ([[{self.key(name)}]])")
        return [Table(row, f"{self.key(name)}[{i}]", self.source, self.base) for i, row in enumerate(value)]


_KIND_NAMES: dict[type, str] = {
    bool: "true or false",
    str: "a string",
    int: "an integer",
    float: "a number",
    list: "a list",
    dict: "a table",
}
