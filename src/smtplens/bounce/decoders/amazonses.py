"""Amazon SES event notifications delivered by e-mail through Amazon SNS (``no-reply@sns.amazonaws.com``,
subject "AWS Notification Message", ``x-amz-sns-*`` header fields).

The body is one JSON object and a footer after a ``--`` line (how to unsubscribe from the topic). The object is
SES's event, or SNS's envelope (``{"Type": "Notification", "Message": "<the event as a JSON string>"}``):
``notificationType`` (or ``eventType``, when the event comes through a configuration set's event publishing) is
``Bounce``, ``Complaint``, ``Delivery`` or, for event publishing only, ``DeliveryDelay``. A bounce lists
``bouncedRecipients`` with ``emailAddress``, ``action``, ``status`` and ``diagnosticCode`` (``smtp; 550 ...``),
plus ``bounceType``/``bounceSubType`` (``Permanent``/``Suppressed`` when SES did not even try), ``reportingMTA``
and, when a server answered, its address ``remoteMtaIp``; a delay lists ``delayedRecipients`` (``emailAddress``,
``status``, ``diagnosticCode``) with a ``delayType`` and the ``expirationTime`` when SES gives up; a complaint
lists ``complainedRecipients`` and ``complaintFeedbackType``; a delivery lists ``recipients``, the ``smtpResponse``
and the ``remoteMtaIp``. Mail transports fold long lines, so the JSON may be broken by
``!`` + newline + space (sendmail's line-length limit) or by a plain newline; both are undone.

SES's bounce mails in the RFC 3464 format are left to the standard decoder.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from smtplens.bounce.decoders import MAX_RECIPIENTS, clean_address
from smtplens.bounce.mime import Mail
from smtplens.bounce.model import Action, Finding, Kind

__all__ = ["decode", "detect", "name"]

name = "amazonses"

_FOLD = re.compile(r"!?\n ?")
_FOOTER = re.compile(r"\n--[ \t]*\n")
MAX_JSON = 2_000_000


# detect() is false unless one of these is in the mail's header (dispatch.py)
GATE = ("x-amz-sns-message-id", "sns.amazonaws.com")


def detect(mail: Mail) -> bool:
    if "x-amz-sns-message-id" not in mail.headers and "sns.amazonaws.com" not in (mail.headers.get("from") or ""):
        return False
    text = mail.text[:MAX_JSON]
    return "notificationType" in text or "eventType" in text


def decode(mail: Mail) -> list[Finding]:
    event = _event(mail.text[:MAX_JSON])
    if event is None:
        return []
    kind = str(event.get("notificationType") or event.get("eventType") or "").lower()
    if kind == "bounce":
        return _bounce(_dict(event.get("bounce")))
    if kind == "complaint":
        return _complaint(_dict(event.get("complaint")))
    if kind == "delivery":
        return _delivery(_dict(event.get("delivery")))
    if kind == "deliverydelay":
        return _delay(_dict(event.get("deliveryDelay")))
    return []


def _event(text: str) -> dict[str, Any] | None:
    """The SES event in the body (unwrapped from an SNS envelope), or None."""
    start = text.find("{")
    if start < 0:
        return None
    footer = _FOOTER.search(text, start)
    body = text[start : footer.start() if footer else len(text)]
    body = body[: body.rfind("}") + 1]
    data = _loads(body) or _loads(_FOLD.sub("", body))
    if data is not None and "Message" in data and isinstance(data["Message"], str):
        data = _loads(data["Message"])  # an SNS envelope around the event
    return data


def _loads(text: str) -> dict[str, Any] | None:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value[: MAX_RECIPIENTS + 1] if isinstance(value, list) else []


def _str(value: object) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _time(value: object) -> datetime | None:
    text = _str(value)
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _host(value: object) -> str | None:
    text = _str(value)
    if text is None:
        return None
    return text.split(";", 1)[-1].strip() or None


def _bounce(bounce: dict[str, Any]) -> list[Finding]:
    subtype = (_str(bounce.get("bounceSubType")) or "").lower()
    transient = (_str(bounce.get("bounceType")) or "").lower() == "transient"
    findings = _recipients(bounce, "bouncedRecipients", Action.DELAYED if transient else Action.FAILED)
    for finding in findings:
        if "suppress" in subtype and not finding.diagnostic:
            finding.reason = "suppressed"  # on SES's suppression list: not attempted
    return findings


def _delay(delay: dict[str, Any]) -> list[Finding]:
    """A DeliveryDelay event: SES keeps trying each delayed recipient until ``expirationTime``."""
    return _recipients(delay, "delayedRecipients", Action.DELAYED)


def _recipients(report: dict[str, Any], key: str, default: Action) -> list[Finding]:
    """One finding per entry of ``report[key]`` (``emailAddress``, ``action``, ``status``, ``diagnosticCode``), with
    the report's ``reportingMTA``, ``remoteMtaIp`` and ``timestamp``."""
    reporting = _host(report.get("reportingMTA"))
    remote = _str(report.get("remoteMtaIp"))
    when = _time(report.get("timestamp"))
    findings: list[Finding] = []
    for item in _list(report.get(key)):
        entry = _dict(item)
        recipient = clean_address(_str(entry.get("emailAddress")))
        if not recipient:
            continue
        diagnostic_type, diagnostic = None, _str(entry.get("diagnosticCode"))
        if diagnostic and ";" in diagnostic[:20]:
            head, _, rest = diagnostic.partition(";")
            diagnostic_type, diagnostic = head.strip().lower() or None, rest.strip() or None
        findings.append(
            Finding(
                recipient=recipient,
                action=Action.parse(_str(entry.get("action"))) or default,
                status=_str(entry.get("status")),
                diagnostic=diagnostic,
                diagnostic_type=diagnostic_type,
                remote_host=remote,
                reporting_mta=reporting,
                timestamp=when,
            )
        )
    return findings


def _complaint(complaint: dict[str, Any]) -> list[Finding]:
    feedback_type = _str(complaint.get("complaintFeedbackType"))
    when = _time(complaint.get("timestamp"))
    agent = _str(complaint.get("userAgent"))
    findings = []
    for entry in _list(complaint.get("complainedRecipients")):
        recipient = clean_address(_str(_dict(entry).get("emailAddress")))
        if recipient:
            findings.append(
                Finding(
                    recipient=recipient,
                    reason="feedback",
                    kind=Kind.FEEDBACK,
                    feedback_type=feedback_type,
                    diagnostic=agent,
                    timestamp=when,
                )
            )
    return findings


def _delivery(delivery: dict[str, Any]) -> list[Finding]:
    response = _str(delivery.get("smtpResponse"))
    reporting = _host(delivery.get("reportingMTA"))
    remote = _str(delivery.get("remoteMtaIp"))
    when = _time(delivery.get("timestamp"))
    findings = []
    for entry in _list(delivery.get("recipients")):
        recipient = clean_address(_str(entry))
        if recipient:
            findings.append(
                Finding(
                    recipient=recipient,
                    action=Action.DELIVERED,
                    diagnostic=response,
                    remote_host=remote,
                    reporting_mta=reporting,
                    timestamp=when,
                )
            )
    return findings
