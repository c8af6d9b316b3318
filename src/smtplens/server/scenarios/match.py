"""Pure matching of scenarios against a session: patterns, attempt keys, attempt numbers and probability.

* Patterns: ``client`` networks contain the client address; ``helo``, ``sender`` and ``recipient`` are shell
  globs compared case-insensitively (``fnmatch``): ``421@*``, ``*+greylist@*``, ``*@example.test``; the null
  sender is ``<>``. At rcpt the recipient is the one being asked about; at data and end of data a recipient
  pattern matches when any accepted recipient matches.
* Attempts: each time a scenario is tried at one of its stages and its patterns match, the counter of its key
  goes up by one, and the attempt number is the counter's new value. The key (``per``) is by default the
  triplet of client address, sender and recipient, as greylisting does — whichever the stage knows (only the
  client at connect, helo and auth; at data and end of data all accepted recipients) — or only the client, the sender,
  the recipient, or ``all`` (one counter). So ``attempts = 1`` with ``per = "triplet"`` defers the first try of
  a message and lets the retry through; ``attempts = "3"`` fails only the third.
* Probability: a fired attempt still needs ``rng.random() < probability`` (no draw when it is 1).
"""

from __future__ import annotations

import fnmatch
import ipaddress
import random
from collections.abc import Iterable

from smtplens.model import Stage
from smtplens.server.scenarios.model import Per, Trigger
from smtplens.server.session import Context

__all__ = ["attempt_key", "attempt_selected", "fires", "matches", "placeholder_values"]


def matches(trigger: Trigger, stage: Stage, context: Context) -> bool:
    """True when the scenario is tried at ``stage`` and its patterns hold (attempts and probability aside)."""
    if stage not in trigger.stages:
        return False
    envelope = context.envelope
    if trigger.clients and not _in_networks(envelope.client_address, trigger):
        return False
    if trigger.helo and not _any_glob([envelope.helo or ""], trigger.helo):
        return False
    sender = envelope.mail.address or "<>" if envelope.mail is not None else None
    if trigger.senders and (sender is None or not _any_glob([sender], trigger.senders)):
        return False
    return not trigger.recipients or _any_glob(_recipients(stage, context), trigger.recipients)


def attempt_key(per: Per, stage: Stage, context: Context) -> tuple[str, ...]:
    """What the attempt counter is kept for at ``stage``; see the module docstring."""
    envelope = context.envelope
    sender = (envelope.mail.address or "<>").lower() if envelope.mail is not None else ""
    recipients = ",".join(sorted(address.lower() for address in _recipients(stage, context)))
    if per is Per.CLIENT:
        return (envelope.client_address,)
    if per is Per.SENDER:
        return (sender,)
    if per is Per.RECIPIENT:
        return (recipients,)
    if per is Per.ALL:
        return ()
    return (envelope.client_address, sender, recipients)


def attempt_selected(trigger: Trigger, attempt: int) -> bool:
    """True when ``attempt`` (1-based) is one of the trigger's attempts (all are, when none are given)."""
    return not trigger.attempts or any(attempt in attempts for attempts in trigger.attempts)


def fires(trigger: Trigger, attempt: int, rng: random.Random) -> bool:
    """True when a matching scenario fires on this ``attempt``: the attempt is selected and the dice agree."""
    if not attempt_selected(trigger, attempt):
        return False
    if trigger.probability >= 1.0:
        return True
    return trigger.probability > 0.0 and rng.random() < trigger.probability


def placeholder_values(stage: Stage, context: Context, hostname: str) -> dict[str, str]:
    """The values of the reply text placeholders (``{client}``, ``{recipient}``, …) at ``stage``."""
    envelope = context.envelope
    sender = envelope.mail.address if envelope.mail is not None else ""
    recipients = _recipients(stage, context)
    recipient = recipients[0] if recipients else ""
    return {
        "client": envelope.client_address,
        "helo": envelope.helo or "",
        "sender": sender,
        "sender_domain": sender.rpartition("@")[2],
        "recipient": recipient,
        "recipient_domain": recipient.rpartition("@")[2],
        "hostname": hostname,
    }


def _recipients(stage: Stage, context: Context) -> list[str]:
    if stage is Stage.RCPT:
        return [context.recipient.address] if context.recipient is not None else []
    if stage in (Stage.DATA, Stage.END_OF_DATA):
        return [recipient.address for recipient in context.envelope.recipients]
    return []


def _in_networks(address: str, trigger: Trigger) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip.version == network.version and ip in network for network in trigger.clients)


def _any_glob(values: Iterable[str], patterns: tuple[str, ...]) -> bool:
    lowered = [value.lower() for value in values]
    return any(fnmatch.fnmatchcase(value, pattern) for value in lowered for pattern in patterns)
