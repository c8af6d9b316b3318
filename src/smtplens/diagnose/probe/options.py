"""The probe's options checked once, before any connection: ports, paths, HELO name, source address."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from smtplens.diagnose.probe.target import ProbeInputError, Target, ip_or_none
from smtplens.diagnose.smtp_client import Timeouts, check_command

__all__ = ["Options", "ip_versions", "make_options"]


@dataclass(frozen=True, slots=True)
class Options:
    port: int
    mail_from: str
    rcpt_to: tuple[str, ...]
    helo: str | None
    starttls: bool
    source_ip: str | None
    send: bool
    timeouts: Timeouts


def make_options(
    target: Target,
    *,
    port: int,
    mail_from: str | None,
    rcpt_to: str | Sequence[str] | None,
    helo: str | None,
    starttls: bool,
    source_ip: str | None,
    send: bool,
    timeouts: Timeouts | None,
) -> Options:
    """The options of :func:`~smtplens.diagnose.probe.probe` for ``target``; :class:`ProbeInputError` if unusable."""
    rcpts = (rcpt_to,) if isinstance(rcpt_to, str) else tuple(rcpt_to or ())
    if send and not rcpts:
        raise ProbeInputError("sending a test message needs at least one recipient (--to)")
    if source_ip is not None and ip_or_none(source_ip) is None:
        raise ProbeInputError(f"--source-ip {source_ip!r} is not an IP address")
    if helo is not None and (not helo.strip() or any(ch.isspace() for ch in helo.strip())):
        raise ProbeInputError(f"--helo {helo!r} must be one name or address literal without spaces")
    options = Options(
        port=target.port or port,
        mail_from=_path(mail_from, "--from"),
        rcpt_to=tuple(_path(rcpt, "--to") for rcpt in rcpts),
        helo=helo.strip() if helo else None,
        starttls=starttls,
        source_ip=ip_or_none(source_ip) if source_ip else None,
        send=send,
        timeouts=timeouts or Timeouts(),
    )
    if options.source_ip and target.kind == "ip" and ip_versions(options.source_ip) != ip_versions(target.host):
        raise ProbeInputError(f"--source-ip {options.source_ip} and the target {target.host} are not of one family")
    if not 0 < options.port < 65536:
        raise ProbeInputError(f"{options.port} is not a port number (1-65535)")
    try:
        for line in (f"MAIL FROM:{options.mail_from} SMTPUTF8", *(f"RCPT TO:{r}" for r in options.rcpt_to)):
            check_command(line)
        if options.helo:
            check_command(f"EHLO {options.helo}")
    except ValueError as exc:
        raise ProbeInputError(str(exc)) from exc
    return options


def ip_versions(source_ip: str | None) -> tuple[int, ...]:
    """The IP versions to connect over (4, 6): that of the source address, else both."""
    if source_ip is None:
        return (4, 6)
    return (ipaddress.ip_address(source_ip).version,)


def _path(address: str | None, what: str) -> str:
    """``<address>`` for MAIL FROM / RCPT TO; ``<>`` for None or empty (the null reverse-path)."""
    text = (address or "").strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1]
    if any(ch in text for ch in "<>\r\n\t ") or (text and "@" not in text and what == "--to"):
        raise ProbeInputError(f"{what} {address!r} is not a mail address")
    return f"<{text}>"
