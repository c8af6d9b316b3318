"""One SMTP session with one address, the way a sending MTA runs it, recorded step by step.

:class:`Session` connects, reads the greeting, says EHLO (HELO if EHLO is refused), uses STARTTLS when offered
(or required) and says EHLO again, then MAIL, RCPT, and with ``send`` DATA and :func:`probe_message`. It keeps
SMTP's manners: after a 554 greeting it sends only QUIT (RFC 5321 section 3.1), after any 421 it sends nothing
more and lets the server close (section 3.8), and it never sends DATA without an accepted recipient (section
3.3). Every 4yz or 5yz reply is explained by :func:`smtplens.classify` for its stage.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence
from dataclasses import replace
from email.utils import formatdate, make_msgid

from smtplens.classifier import classify
from smtplens.diagnose.probe.model import Attempt, Step, StepName
from smtplens.diagnose.probe.options import Options
from smtplens.diagnose.probe.target import ip_or_none
from smtplens.diagnose.smtp_client import Capabilities, Failure, ServerReply, SmtpClient, SmtpClientError, parse_ehlo
from smtplens.diagnose.tlsinfo import TlsInfo, describe, describing_context, verifying_context
from smtplens.model import Stage
from smtplens.reply import parse_reply

__all__ = ["CLOSE_WAIT", "Session", "probe_message"]

CLOSE_WAIT = 5.0
"""Seconds to wait for the server to close after it sent 421."""

_STAGE = {
    StepName.CONNECT: Stage.CONNECT,
    StepName.GREETING: Stage.CONNECT,
    StepName.EHLO: Stage.HELO,
    StepName.HELO: Stage.HELO,
    StepName.STARTTLS: Stage.STARTTLS,
    StepName.MAIL: Stage.MAIL,
    StepName.RCPT: Stage.RCPT,
    StepName.DATA: Stage.DATA,
    StepName.END_OF_DATA: Stage.END_OF_DATA,
    StepName.QUIT: Stage.QUIT,
}


def probe_message(mail_from: str, rcpt_to: Sequence[str], helo: str, *, now: float | None = None) -> bytes:
    """The small message ``--send`` delivers: headers of RFC 5322 and a body that says what it is."""
    sender = mail_from.strip("<>") or f"postmaster@{helo.strip('[]')}"
    lines = [
        f"From: smtplens probe <{sender}>",
        "To: " + ", ".join(rcpt.strip("<>") for rcpt in rcpt_to),
        "Subject: smtplens probe test message",
        f"Date: {formatdate(now, localtime=False)}",
        f"Message-ID: {make_msgid('smtplens-probe', domain=helo.strip('[]') or None)}",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        "This message was sent by smtplens probe to test mail delivery.",
        "It needs no answer and can be deleted.",
    ]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def _default_helo(local_address: str | None) -> str:
    """This machine's name if it is fully qualified, else the address literal of the local end (RFC 5321
    section 4.1.4). No DNS is asked: a lookup of one's own name can hang."""
    name = socket.gethostname()
    if "." in name and not name.lower().startswith("localhost"):
        return name
    if local_address is None:
        return "[127.0.0.1]"
    return f"[IPv6:{local_address}]" if ":" in local_address else f"[{local_address}]"


class Session:
    """Runs the steps on one connection and records them; never raises for network trouble.

    ``last`` is the last reply received, None once the connection is lost: :meth:`_finish` decides from it how to
    end the session. Each phase returns whether the session goes on.
    """

    def __init__(self, host: str, address: str, options: Options) -> None:
        self.host = host
        self.address = address
        self.options = options
        self.timeouts = options.timeouts
        self.steps: list[Step] = []
        self.client: SmtpClient | None = None
        self.last: ServerReply | None = None
        self.capabilities: Capabilities | None = None
        self.helo = options.helo or ""

    async def run(self) -> Attempt:
        try:
            if await self._open() and await self._hello():
                wants_tls = self.options.starttls or (self.capabilities is not None and self.capabilities.starttls)
                if not wants_tls or await self._starttls():
                    await self._transaction()
            await self._finish()
        finally:
            if self.client is not None:
                await self.client.close()
        return Attempt(self.host, self.address, self.options.port, tuple(self.steps), self.capabilities)

    # the steps

    async def _open(self) -> bool:
        """Connect and read the greeting; only a 2yz greeting goes on."""
        start = time.monotonic()
        client = await self._connect()
        if isinstance(client, SmtpClientError):
            self.steps.append(Step(StepName.CONNECT, None, None, time.monotonic() - start, client.failure, str(client)))
            return False
        self.client = client
        self.steps.append(Step(StepName.CONNECT, None, None, time.monotonic() - start))
        self.helo = self.helo or _default_helo(client.local_address)
        greeting = await self._exchange(StepName.GREETING, None, self.timeouts.greeting)
        return greeting is not None and greeting.positive  # 220 by RFC 5321 section 4.2

    async def _hello(self) -> bool:
        """EHLO, or HELO when EHLO is refused with 5yz (RFC 5321 section 4.1.4)."""
        reply = await self._exchange(StepName.EHLO, f"EHLO {self.helo}", self.timeouts.ehlo)
        if reply is not None and reply.positive:
            self.capabilities = parse_ehlo(reply.lines)
            return True
        if reply is None or reply.digit != 5:
            return False
        reply = await self._exchange(StepName.HELO, f"HELO {self.helo}", self.timeouts.ehlo)
        if reply is None or not reply.positive:
            return False
        self.capabilities = Capabilities(name=reply.lines[0].split(" ", 1)[0] if reply.lines else "")
        return True

    async def _starttls(self) -> bool:
        """STARTTLS (RFC 3207), then EHLO again. Opportunistic unless ``starttls`` requires it: a refused
        STARTTLS then goes on in the clear, a required one that is not offered ends the session before MAIL."""
        if self.capabilities is not None and not self.capabilities.starttls:
            return False
        reply = await self._exchange(StepName.STARTTLS, "STARTTLS", self.timeouts.starttls)
        if reply is None or reply.code != 220:
            return reply is not None and reply.code != 421 and not self.options.starttls
        start = time.monotonic() - self.steps[-1].elapsed
        info = await self._handshake()
        step = replace(self.steps[-1], elapsed=time.monotonic() - start)
        if isinstance(info, SmtpClientError):
            self.steps[-1] = replace(step, error=info.failure, detail=str(info))
            self.last = None  # a failed handshake leaves nothing to talk over
            return False
        self.steps[-1] = replace(step, tls=info)
        self.capabilities = None
        return await self._hello()

    async def _handshake(self) -> TlsInfo | SmtpClientError:
        """Handshake verifying the chain; if only verification fails, describe the certificate over a second
        connection that does not verify, and carry on with the session there."""
        assert self.client is not None
        try:
            session = await self.client.starttls(verifying_context(), self._sni, self.timeouts.starttls)
            return describe(session, self.host)
        except SmtpClientError as exc:
            if exc.verify_error is None:
                return exc
            verify_error = exc.verify_error
        await self.client.close()
        self.client = None
        client = await self._connect()
        if isinstance(client, SmtpClientError):
            return _second_failed(verify_error, str(client))
        self.client = client
        try:
            for command, want, timeout in (
                (None, 220, self.timeouts.greeting),
                (f"EHLO {self.helo}", 250, self.timeouts.ehlo),
                ("STARTTLS", 220, self.timeouts.starttls),
            ):
                reply = await (client.read_reply(timeout) if command is None else client.command(command, timeout))
                if reply.code != want:
                    return _second_failed(verify_error, f"{command or 'the greeting'} got {reply.raw!r}")
            session = await client.starttls(describing_context(), self._sni, self.timeouts.starttls)
        except SmtpClientError as exc:
            return _second_failed(verify_error, str(exc))
        return describe(session, self.host, verify_error=verify_error)

    async def _transaction(self) -> None:
        """MAIL, each RCPT, and with ``send`` DATA and the message."""
        options = self.options
        mail = f"MAIL FROM:{options.mail_from}"
        if not options.mail_from.isascii() and self.capabilities is not None and self.capabilities.smtputf8:
            mail += " SMTPUTF8"  # RFC 6531 section 3.4
        reply = await self._exchange(StepName.MAIL, mail, self.timeouts.mail)
        if reply is None or not reply.positive:
            return
        accepted: list[str] = []
        for rcpt in options.rcpt_to:
            reply = await self._exchange(StepName.RCPT, f"RCPT TO:{rcpt}", self.timeouts.rcpt)
            if reply is None or reply.code == 421:
                return
            if reply.positive:
                accepted.append(rcpt)
        if not options.send or not accepted:  # no DATA without an accepted recipient (RFC 5321 section 3.3)
            return
        reply = await self._exchange(StepName.DATA, "DATA", self.timeouts.data)
        if reply is None or reply.code != 354:  # after 5yz to DATA the data must not be sent (section 3.3)
            return
        await self._exchange(
            StepName.END_OF_DATA,
            ".",
            self.timeouts.end_of_data,
            message=probe_message(options.mail_from, accepted, self.helo),
        )

    async def _finish(self) -> None:
        """End politely: nothing after a lost connection, wait for the server to close after a 421 (RFC 5321
        section 3.8), else QUIT and read its reply (after a 554 greeting too: section 3.1)."""
        if self.client is None or self.last is None:
            return
        if self.last.code == 421:
            await self.client.wait_for_close(min(CLOSE_WAIT, self.timeouts.quit))
            return
        await self._exchange(StepName.QUIT, "QUIT", self.timeouts.quit)

    # plumbing

    @property
    def _sni(self) -> str | None:
        return None if ip_or_none(self.host) is not None else self.host

    async def _connect(self) -> SmtpClient | SmtpClientError:
        try:
            return await SmtpClient.connect(
                self.address, self.options.port, timeout=self.timeouts.connect, source_ip=self.options.source_ip
            )
        except SmtpClientError as exc:
            return exc

    async def _exchange(
        self, name: StepName, command: str | None, timeout: float, *, message: bytes | None = None
    ) -> ServerReply | None:
        """Send ``command`` (nothing for the greeting; the message for the end of data), read the reply and
        record the step. None when no complete reply came."""
        assert self.client is not None
        start = time.monotonic()
        try:
            if message is not None:
                reply = await self.client.send_message(
                    message, block_timeout=self.timeouts.data_block, reply_timeout=timeout
                )
            elif command is None:
                reply = await self.client.read_reply(timeout, name.value)
            else:
                reply = await self.client.command(command, timeout)
        except SmtpClientError as exc:
            self.steps.append(Step(name, command, None, time.monotonic() - start, exc.failure, str(exc)))
            self.last = None
            return None
        stage = _STAGE[name]
        parsed = parse_reply(reply.raw)._replace(stage=stage, remote_host=self.host, remote_ip=self.address)
        explanation = classify(parsed, stage=stage, remote_host=self.host) if reply.failed else None
        self.steps.append(Step(name, command, parsed, time.monotonic() - start, explanation=explanation))
        self.last = reply
        return reply


def _second_failed(verify_error: str, why: str) -> SmtpClientError:
    return SmtpClientError(
        Failure.TLS,
        f"certificate verification failed: {verify_error}; a second connection to describe the certificate "
        f"failed too: {why}",
        verify_error=verify_error,
    )
