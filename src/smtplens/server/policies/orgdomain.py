"""The organizational domain of RFC 7489 section 3.2: the public suffix of a name plus one label.

The public suffix list comes from the ``publicsuffixlist`` package (in the ``server`` extra), which ships the
list inside the package and works offline. Without it, a documented approximation is used: the last two labels
(right for ``example.com``, wrong for ``example.co.uk``). Names that are a public suffix themselves, or that the
list does not know, are their own organizational domain (RFC 7489 section 3.2, step 4 and the default rule "*").
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

__all__ = ["organizational_domain"]


@cache
def _suffix_list() -> Callable[[str], str | None] | None:
    try:
        from publicsuffixlist import PublicSuffixList
    except ImportError:
        return None
    return PublicSuffixList().privatesuffix


def organizational_domain(domain: str) -> str:
    """The organizational domain of ``domain`` (lower case, no trailing dot)."""
    name = domain.strip().rstrip(".").lower()
    lookup = _suffix_list()
    if lookup is None:
        return ".".join(name.split(".")[-2:])
    return lookup(name) or name
