"""Access lists: client networks (CIDR), sender and recipient patterns, each mapped to any reply.

``AccessPolicy(clients=..., senders=..., recipients=...)`` takes :class:`AccessRule` lists. A client rule's
pattern is an IP network (``192.0.2.0/24``, ``2001:db8::/32`` or one address), checked at ``client_stage``
(connect by default; rcpt delays the refusal as Postfix's ``smtpd_delay_reject`` does). Sender and recipient
patterns are shell-style globs, case-insensitive, on the address (``*@spam.example``, ``abuse@*``, ``<>`` for the
null sender), checked at MAIL and RCPT. In each list the first matching rule wins; its ``decision`` is the
reply (an acceptance ends the list's check: a whitelist). Without a decision, a rule refuses with Postfix's
texts: ``554 5.7.1 <unknown[ip]>: Client host rejected: Access denied``, ``554 5.7.1 <a>: Sender address
rejected: Access denied``, ``554 5.7.1 <a>: Recipient address rejected: Access denied``.
"""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from smtplens.model import Stage
from smtplens.server.decisions import Decision
from smtplens.server.session import Context

__all__ = ["AccessPolicy", "AccessRule"]


@dataclass(frozen=True, slots=True)
class AccessRule:
    pattern: str
    decision: Decision | None = None


class AccessPolicy:
    def __init__(
        self,
        *,
        clients: Iterable[AccessRule] = (),
        senders: Iterable[AccessRule] = (),
        recipients: Iterable[AccessRule] = (),
        client_stage: Stage = Stage.CONNECT,
        name: str = "access",
    ) -> None:
        if client_stage not in (Stage.CONNECT, Stage.HELO, Stage.MAIL, Stage.RCPT):
            raise ValueError(f"client rules cannot be checked at {client_stage.value}")
        self.name = name
        self.client_stage = client_stage
        self.clients = [(ipaddress.ip_network(rule.pattern, strict=False), rule) for rule in clients]
        self.senders = [(rule.pattern.lower(), rule) for rule in senders]
        self.recipients = [(rule.pattern.lower(), rule) for rule in recipients]
        stages: set[Stage] = set()
        if self.clients:
            stages.add(client_stage)
        if self.senders:
            stages.add(Stage.MAIL)
        if self.recipients:
            stages.add(Stage.RCPT)
        self.stages = frozenset(stages)

    async def check(self, stage: Stage, context: Context) -> Decision | None:
        envelope = context.envelope
        if stage is self.client_stage and self.clients:
            decision = self._client(envelope.client_address)
            if decision is not None:
                return decision
        if stage is Stage.MAIL and envelope.mail is not None:
            address = envelope.mail.address or "<>"
            return _match(self.senders, address, f"<{address}>: Sender address rejected: Access denied")
        if stage is Stage.RCPT and context.recipient is not None:
            address = context.recipient.address
            return _match(self.recipients, address, f"<{address}>: Recipient address rejected: Access denied")
        return None

    def _client(self, ip: str) -> Decision | None:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return None
        for network, rule in self.clients:
            if address.version == network.version and address in network:
                return rule.decision or _deny(f"<unknown[{ip}]>: Client host rejected: Access denied")
        return None


def _match(rules: list[tuple[str, AccessRule]], address: str, text: str) -> Decision | None:
    lowered = address.lower()
    for pattern, rule in rules:
        if fnmatch.fnmatchcase(lowered, pattern):
            return rule.decision or _deny(text)
    return None


def _deny(text: str) -> Decision:
    return Decision.reject(code="554", enhanced="5.7.1", text=text)
