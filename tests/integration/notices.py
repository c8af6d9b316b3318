"""What the real-MTA notice tests share: the message they send, reading the notices a Maildir receives, and the
fields of a recipient they compare."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from smtplens import classify
from smtplens.bounce import Recipient, decode_bounce
from smtplens.model import Stage
from smtplens.server.scenarios import ScenarioBook, ScenarioPolicy
from smtplens.server.scenarios.model import fill
from smtplens.server.scenarios.presets import presets

__all__ = ["NOTICE_TIMEOUT", "PresetRefusals", "cli_rows", "message", "summary", "wait_for_notices"]

NOTICE_TIMEOUT = 30.0


def message(sender: str, recipients: list[str], subject: str, message_id: str, greeting: str) -> bytes:
    """A short message from ``sender`` with a Message-ID, CRLF line ends."""
    return (
        f"From: {sender}\r\nTo: {', '.join(recipients)}\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\n"
        f"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\n{greeting}\r\n"
    ).encode("ascii")


def wait_for_notices(maildir: Path, recipients: int, log: Callable[[], str]) -> list[Recipient]:
    """The recipients of the notices delivered to ``maildir`` so far, sorted by address, once there are
    ``recipients`` of them (an MTA names the recipients it gives up on together in one notice: one or several
    notices in all). Fails with ``log()`` when they do not come in time."""
    new = maildir / "new"
    deadline = time.monotonic() + NOTICE_TIMEOUT
    while time.monotonic() < deadline:
        paths = list(new.iterdir()) if new.is_dir() else []  # a Maildir file appears in new/ complete
        found = [r for path in paths for r in decode_bounce(path.read_bytes()).recipients]
        if len(found) >= recipients:
            return sorted(found, key=lambda r: r.recipient)
        time.sleep(0.1)
    pytest.fail(f"fewer than {recipients} recipients in the notices in {new} within {NOTICE_TIMEOUT:.0f} s:\n{log()}")


def summary(r: Recipient) -> tuple[object, ...]:
    """What the tests compare of a recipient: address, reason, action, status, reply code, stage, hard bounce."""
    return (r.recipient, r.reason, r.action, r.status, r.reply_code, r.stage, r.hard_bounce)


def cli_rows(maildir: Path) -> list[dict[str, object]]:
    """What ``smtplens bounce MAILDIR --json`` prints, one object per recipient (the command must succeed)."""
    done = subprocess.run(
        [sys.executable, "-m", "smtplens", "bounce", str(maildir), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


class PresetRefusals:
    """The scenario presets that refuse every message after the greeting (not a first attempt only, not by
    chance), each bound to a message of its own: at MAIL by the envelope sender ``alice+NAME@``, else by the
    recipient ``NAME@domain``. ``expected`` maps each recipient to what its reply says on its own, seen at its
    stage: the classifier's reason, the enhanced status and the reply code."""

    def __init__(self, domain: str, hostname: str, sender_domain: str) -> None:
        self.hostname = hostname
        self.book = ScenarioBook()
        self.expected: dict[str, tuple[str, str | None, str | None]] = {}
        self.names = sorted(
            name
            for name, scenario in presets().items()
            if scenario.effect.code
            and not scenario.trigger.attempts
            and scenario.trigger.probability == 1.0
            and scenario.trigger.stages & {Stage.MAIL, Stage.RCPT, Stage.END_OF_DATA}
        )
        self._envelopes: list[tuple[str, str, str]] = []
        for name in self.names:
            envelope_sender, recipient = f"alice+{name}@{sender_domain}", f"{name}@{domain}"
            at_mail = Stage.MAIL in presets()[name].trigger.stages
            scenario = self.book.add(
                {"preset": name, "sender": f"alice+{name}@*"} if at_mail else {"preset": name, "recipient": recipient}
            )
            values = {"client": "127.0.0.1", "recipient": recipient, "recipient_domain": domain, "hostname": hostname}
            values |= {"sender": envelope_sender, "sender_domain": sender_domain}
            effect = scenario.effect
            reply = " ".join(part for part in (effect.code, effect.enhanced, fill(effect.text or "", values)) if part)
            stage = next(iter(scenario.trigger.stages))
            self.expected[recipient] = (classify(reply, stage=stage).reason, effect.enhanced, effect.code)
            self._envelopes.append((envelope_sender, recipient, f"{name}@{sender_domain}"))

    def policy(self) -> ScenarioPolicy:
        return ScenarioPolicy(self.book, hostname=self.hostname)

    def envelopes(self) -> list[tuple[str, str, str]]:
        """(envelope sender, recipient, Message-ID) of each preset's message."""
        return list(self._envelopes)

    def message_ids(self) -> dict[str, str]:
        return {recipient: message_id for _, recipient, message_id in self._envelopes}
