"""What a probe records: the steps of a session (:class:`Step`), one connection (:class:`Attempt`) and the
report (:class:`ProbeReport`)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from smtplens.classifier import Verdict
from smtplens.diagnose.report import Report
from smtplens.diagnose.smtp_client import Capabilities, Failure
from smtplens.diagnose.tlsinfo import TlsInfo
from smtplens.model import Reply

__all__ = ["Attempt", "ProbeReport", "Step", "StepName"]


class StepName(StrEnum):
    CONNECT = "connect"
    GREETING = "greeting"
    EHLO = "ehlo"
    HELO = "helo"
    STARTTLS = "starttls"
    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"
    END_OF_DATA = "end_of_data"
    QUIT = "quit"


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a session: the command as sent (None for connect and greeting), the reply, the time it took.

    ``error`` says how a step without a complete reply failed and ``detail`` describes it; ``explanation`` is the
    classifier's verdict on a 4yz/5yz reply; ``tls`` describes the session a STARTTLS step established.
    """

    name: StepName
    command: str | None
    reply: Reply | None
    elapsed: float
    error: Failure | None = None
    detail: str | None = None
    explanation: Verdict | None = None
    tls: TlsInfo | None = None

    @property
    def code(self) -> int | None:
        return int(self.reply.basic) if self.reply is not None and self.reply.basic else None

    @property
    def failed(self) -> bool:
        """The step failed on the network, or got a 4yz/5yz reply."""
        code = self.code
        return self.error is not None or (code is not None and code >= 400)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One connection to one address of one host: the transcript and what EHLO advertised."""

    host: str
    address: str
    port: int
    steps: tuple[Step, ...]
    capabilities: Capabilities | None = None

    def step(self, name: StepName | str) -> Step | None:
        """The last step of this name, if any."""
        for item in reversed(self.steps):
            if item.name == name:
                return item
        return None

    @property
    def greeted(self) -> bool:
        """The server answered the connection with a greeting (of any code)."""
        greeting = self.step(StepName.GREETING)
        return greeting is not None and greeting.reply is not None

    @property
    def tls(self) -> TlsInfo | None:
        starttls = self.step(StepName.STARTTLS)
        return starttls.tls if starttls is not None else None


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeReport(Report):
    """What a probe found. ``mx`` lists the domain's MX records (preference, host); ``implicit_mx`` is true when
    the domain had none and its own address was used; ``attempts`` are in the order they were made."""

    target: str
    port: int
    mx: tuple[tuple[int, str], ...] = ()
    implicit_mx: bool = False
    null_mx: bool = False
    attempts: tuple[Attempt, ...] = ()

    @property
    def reached(self) -> Attempt | None:
        """The attempt that got a greeting, if any."""
        for attempt in self.attempts:
            if attempt.greeted:
                return attempt
        return None
