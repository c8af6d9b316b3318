"""Built-in policies for :class:`smtplens.server.pipeline.Pipeline`, one module each (docs/server.md)."""

from __future__ import annotations

from smtplens.server.policies.access import AccessPolicy, AccessRule
from smtplens.server.policies.auth import AuthenticationPolicy
from smtplens.server.policies.content import ContentPolicy
from smtplens.server.policies.dkim import DkimPolicy
from smtplens.server.policies.dmarc import DmarcPolicy
from smtplens.server.policies.dnsbl import DnsblPolicy
from smtplens.server.policies.greylist import GreylistPolicy
from smtplens.server.policies.ratelimit import RateLimit, RateLimitPolicy
from smtplens.server.policies.relay import RelayPolicy
from smtplens.server.policies.rspamd import RspamdClient
from smtplens.server.policies.spam import SpamPolicy, SpamRule
from smtplens.server.policies.spamd import SpamdClient
from smtplens.server.policies.spf import SpfPolicy, spf_actions

__all__ = [
    "AccessPolicy",
    "AccessRule",
    "AuthenticationPolicy",
    "ContentPolicy",
    "DkimPolicy",
    "DmarcPolicy",
    "DnsblPolicy",
    "GreylistPolicy",
    "RateLimit",
    "RateLimitPolicy",
    "RelayPolicy",
    "RspamdClient",
    "SpamPolicy",
    "SpamRule",
    "SpamdClient",
    "SpfPolicy",
    "spf_actions",
]
