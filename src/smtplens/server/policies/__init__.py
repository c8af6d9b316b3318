"""Built-in policies for :class:`smtplens.server.pipeline.Pipeline`, one module each (docs/server.md)."""

from __future__ import annotations

from smtplens.server.policies.access import AccessPolicy, AccessRule
from smtplens.server.policies.dnsbl import DnsblPolicy
from smtplens.server.policies.greylist import GreylistPolicy
from smtplens.server.policies.ratelimit import RateLimit, RateLimitPolicy
from smtplens.server.policies.relay import RelayPolicy

__all__ = [
    "AccessPolicy",
    "AccessRule",
    "DnsblPolicy",
    "GreylistPolicy",
    "RateLimit",
    "RateLimitPolicy",
    "RelayPolicy",
]
