"""Relay control: smtplens is never an open relay.

``RelayPolicy(domains, recipients)`` answers at RCPT. A recipient whose domain is in ``domains`` or whose address
is in ``recipients`` (both compared case-insensitively), and ``postmaster`` (RFC 5321 section 4.5.1), is
accepted; every other recipient gets Postfix's ``554 5.7.1 <address>: Relay access denied``. ``reply`` replaces
that refusal (for example a deferral, as Postfix's ``defer_unauth_destination``: ``454 4.7.1``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from smtplens.model import Stage
from smtplens.server.decisions import Decision
from smtplens.server.session import Context

__all__ = ["RelayPolicy"]


class RelayPolicy:
    stages: ClassVar[frozenset[Stage]] = frozenset({Stage.RCPT})

    def __init__(
        self,
        domains: Iterable[str] = (),
        recipients: Iterable[str] = (),
        *,
        reply: Decision | None = None,
        name: str = "relay",
    ) -> None:
        self.name = name
        self.domains = frozenset(d.lower().rstrip(".") for d in domains)
        self.recipients = frozenset(r.lower() for r in recipients)
        self.reply = reply
        self._accepted = Decision.accept(policy=name)  # made once: the answer to nearly every RCPT

    def accepts(self, address: str) -> bool:
        lowered = address.lower()
        domain = lowered.rpartition("@")[2].rstrip(".")
        return lowered in self.recipients or domain in self.domains or lowered == "postmaster"

    async def check(self, stage: Stage, context: Context) -> Decision | None:
        return self.check_now(stage, context)

    def check_now(self, stage: Stage, context: Context) -> Decision | None:
        """:meth:`check` without awaiting (the pipeline's synchronous path)."""
        if stage is not Stage.RCPT or context.recipient is None:
            return None
        address = context.recipient.address
        if self.accepts(address):
            return self._accepted
        if self.reply is not None:
            return self.reply
        return Decision.reject(code="554", enhanced="5.7.1", text=f"<{address}>: Relay access denied", policy=self.name)
