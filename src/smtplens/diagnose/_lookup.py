"""Lookups that may fail: await one and keep its :class:`~smtplens.diagnose.dns.DnsError` as a value, so that
concurrent checks go on without it, and report such a failure as a finding."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

from smtplens.diagnose import findings as f
from smtplens.diagnose.dns import DnsError
from smtplens.diagnose.findings import Finding

__all__ = ["attempt", "lookup_failed"]

_T = TypeVar("_T")


async def attempt(job: Awaitable[_T]) -> _T | DnsError:
    """The result of ``job``, or the DnsError it raised."""
    try:
        return await job
    except DnsError as exc:
        return exc


def lookup_failed(kind: str, what: str, exc: DnsError) -> Finding:
    """The ``KIND.lookup_failed`` warning: ``what`` (a phrase naming the records) could not be looked up."""
    return f.warning(
        f"{kind}.lookup_failed",
        f"Could not look up {what}: {exc}.",
        "Check that the domain's name servers answer (and your resolver, with --dns), then run the check again.",
    )
