"""The verdict of a probe: :func:`assess` turns the attempts into the report's verdict line and findings, each
with its fix, without touching the network."""

from __future__ import annotations

from collections.abc import Sequence

from smtplens.diagnose import findings as f
from smtplens.diagnose.findings import Finding
from smtplens.diagnose.probe.model import Attempt, Step, StepName
from smtplens.diagnose.probe.target import Target, ip_or_none
from smtplens.diagnose.smtp_client import Failure
from smtplens.model import Reply

__all__ = ["assess"]

_CONNECT_FIX = {
    Failure.REFUSED: "Check that an SMTP server listens on this address and port and that no firewall rejects "
    "the connection.",
    Failure.TIMEOUT: "Check the network path: a firewall may drop the packets, and many networks and cloud "
    "providers block outgoing connections to port 25.",
    Failure.UNREACHABLE: "Check this machine's network connection and routes to that address.",
    Failure.BIND: "Give --source-ip an address configured on this machine, of the same family as the server's.",
}
_STEP_FIX = "Retry later; if it persists, the server or the network path between you drops the session."
_GREETING_HINT = {
    4: "the server is overloaded or is limiting your connections; retry later",
    5: "the server refuses your connections; check your IP address's blocklist listings",
}
_LABEL = {
    StepName.GREETING: "the greeting",
    StepName.EHLO: "EHLO",
    StepName.HELO: "HELO",
    StepName.STARTTLS: "STARTTLS",
    StepName.MAIL: "MAIL FROM",
    StepName.RCPT: "RCPT TO",
    StepName.DATA: "DATA",
    StepName.END_OF_DATA: "the end of data",
    StepName.QUIT: "QUIT",
}


def _where(attempt: Attempt) -> str:
    host = attempt.host if attempt.host == attempt.address else f"{attempt.host} [{attempt.address}]"
    return f"{host} port {attempt.port}"


def _first_line(reply: Reply, limit: int = 200) -> str:
    """A reply on one line: code, enhanced code and the text lines joined (shortened past ``limit``)."""
    text = " ".join(part for part in (reply.basic, reply.enhanced, reply.message) if part)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _asked(step: Step) -> str:
    """What was asked: the command as sent (``RCPT TO:<bob@example.test>``), else the step's label."""
    if step.command and step.name not in (StepName.EHLO, StepName.HELO, StepName.END_OF_DATA):
        return step.command
    return _LABEL[step.name]


def _reply_finding(attempt: Attempt, step: Step) -> Finding:
    assert step.reply is not None
    code = step.code or 0
    what = f"{_where(attempt)} answered {_asked(step)} with {_first_line(step.reply)}"
    explanation = step.explanation
    if explanation is not None:
        what += f" ({explanation.reason_title}: {explanation.meaning})"
    make = f.error if code >= 500 else f.warning
    return make(f"probe.{step.name.value}_{code // 100}xx", what, explanation.action if explanation else "")


def _tls_findings(attempt: Attempt, required: bool) -> list[Finding]:
    out: list[Finding] = []
    where = _where(attempt)
    caps = attempt.capabilities
    starttls = attempt.step(StepName.STARTTLS)
    if starttls is None:
        if caps is not None and not caps.starttls and (attempt.step(StepName.EHLO) or attempt.step(StepName.HELO)):
            make = f.error if required else f.info
            out.append(
                make(
                    "probe.no_starttls",
                    f"{where} does not offer STARTTLS; mail to it travels unencrypted",
                    "Enable STARTTLS on the server (Postfix: smtpd_tls_security_level = may).",
                )
            )
        return out
    info = starttls.tls
    if starttls.error is not None or info is None:
        return out
    not_verified = f.warning if required else f.info
    if not info.verified:
        out.append(
            not_verified(
                "probe.tls_unverified",
                f"the certificate of {where} could not be verified: {info.verify_error}",
                "Use a certificate from a public CA with its full chain "
                "(opportunistic SMTP TLS still encrypts without it; MTA-STS and DANE senders refuse).",
            )
        )
    if not info.name_match and ip_or_none(attempt.host) is None:  # MX hosts are names; an IP target has none to match
        out.append(
            not_verified(
                "probe.tls_name_mismatch",
                f"the certificate of {where} does not cover the name "
                f"{attempt.host} (it names {', '.join(info.names) or 'nothing'})",
                "Add the MX host name to the certificate's subjectAltName.",
            )
        )
    if info.expired:
        out.append(
            f.warning(
                "probe.tls_expired", f"the certificate of {where} expired on {info.not_after}", "Renew the certificate."
            )
        )
    return out


def _session_findings(attempt: Attempt, required: bool) -> tuple[list[Finding], str | None]:
    """Findings of a greeted attempt and the first problem in one phrase (None when the session went well)."""
    out: list[Finding] = []
    problem: str | None = None
    ehlo = attempt.step(StepName.EHLO)
    for step in attempt.steps:
        if step.name is StepName.QUIT:  # the session's outcome is known by then
            continue
        if step.error is not None:
            out.append(
                f.error(f"probe.{step.name.value}_{step.error.value}", f"{_where(attempt)}: {step.detail}", _STEP_FIX)
            )
            problem = problem or f"{_LABEL.get(step.name, step.name.value)} failed: {step.detail}"
        elif step.reply is not None and step.failed:
            if step.name is StepName.EHLO and attempt.step(StepName.HELO) is not None:
                helo = attempt.step(StepName.HELO)
                if helo is not None and not helo.failed:
                    out.append(
                        f.info(
                            "probe.ehlo_refused",
                            f"{_where(attempt)} refused EHLO ({_first_line(step.reply)}) and accepted HELO: "
                            "no SMTP extensions",
                        )
                    )
                    continue
            if step.name is StepName.STARTTLS and not required and step.code != 421:
                out.append(
                    f.warning(
                        "probe.starttls_refused",
                        f"{_where(attempt)} offered STARTTLS but answered "
                        f"{_first_line(step.reply)}; the session went on unencrypted",
                        step.explanation.action if step.explanation else "",
                    )
                )
                continue
            out.append(_reply_finding(attempt, step))
            if problem is None:
                hint = _GREETING_HINT.get((step.code or 0) // 100) if step.name is StepName.GREETING else None
                reason = hint or (step.explanation.reason_title.lower() if step.explanation else "refused")
                problem = f"{_asked(step)} got {_first_line(step.reply)}: {reason}"
    if required and ehlo is not None and attempt.step(StepName.STARTTLS) is None and problem is None:
        problem = "STARTTLS is required (--starttls) but not offered"
    out += _tls_findings(attempt, required)
    return out, problem


def _success(attempt: Attempt, mail_from: str) -> str:
    parts: list[str] = []
    mail = attempt.step(StepName.MAIL)
    if mail is not None and mail.reply is not None:
        parts.append(f"MAIL FROM:{mail_from} {mail.reply.basic}")
    rcpts = [s for s in attempt.steps if s.name is StepName.RCPT and s.reply is not None]
    if rcpts:
        parts.append(f"{sum(1 for s in rcpts if not s.failed)} of {len(rcpts)} RCPT TO accepted")
    end = attempt.step(StepName.END_OF_DATA)
    if end is not None and end.reply is not None:
        parts.append(f"message accepted ({_first_line(end.reply)})")
    tls = attempt.tls
    if tls is not None:
        parts.append(f"{tls.version}, certificate {'verified' if tls.verified else 'not verified'}")
    return f"{_where(attempt)} accepts mail: " + ", ".join(parts or ["greeting and EHLO fine"])


def assess(
    target: Target,
    plan_findings: Sequence[Finding],
    attempts: Sequence[Attempt],
    *,
    null_mx: bool = False,
    starttls_required: bool = False,
    mail_from: str = "<>",
) -> tuple[str, tuple[Finding, ...]]:
    """The verdict line and the findings of a probe (pure)."""
    findings = list(plan_findings)
    name = target.host
    if null_mx:
        findings.append(
            f.error(
                "probe.null_mx",
                f"{name} does not accept mail (RFC 7505 null MX)",
                "Do not send to this domain; ask the recipient for another address.",
            )
        )
        return f"{name}: the domain does not accept mail (RFC 7505)", tuple(findings)
    reached = next((a for a in attempts if a.greeted), None)
    for attempt in attempts:
        if attempt is reached:
            break
        step = attempt.steps[-1] if attempt.steps else None
        failure = step.error if step is not None else None
        make = f.warning if reached is not None else f.error
        fix = _CONNECT_FIX.get(failure, _STEP_FIX) if failure is not None else _STEP_FIX
        detail = step.detail if step is not None and step.detail else "no greeting"
        findings.append(
            make(f"probe.connect_{failure.value if failure else 'failed'}", f"{_where(attempt)}: {detail}", fix)
        )
    if reached is None:
        if not attempts:
            if not any(item.is_error for item in findings):
                findings.append(
                    f.error(
                        "probe.no_mail_host",
                        f"no address to connect to was found for {name}",
                        "Publish MX records, or A/AAAA records for the domain itself.",
                    )
                )
            return f"{name}: no mail host to connect to", tuple(findings)
        last = attempts[-1].steps[-1] if attempts[-1].steps else None
        why = last.detail if last is not None and last.detail else "no greeting"
        return f"{name}: could not reach any mail host ({_where(attempts[-1])}: {why})", tuple(findings)
    session, problem = _session_findings(reached, starttls_required)
    findings += session
    if problem is not None:
        return f"{_where(reached)}: {problem}", tuple(findings)
    return _success(reached, mail_from), tuple(findings)
