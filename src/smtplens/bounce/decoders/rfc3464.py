"""RFC 3464 delivery status notifications, in an RFC 6522 ``multipart/report`` or less well-formed.

The machine-readable part (``message/delivery-status``; ``message/global-delivery-status`` of RFC 6533) holds one
block of per-message fields (Reporting-MTA, Arrival-Date, …) and one block per recipient (Final-Recipient,
Original-Recipient, Action, Status, Remote-MTA, Diagnostic-Code, Last-Attempt-Date), blocks separated by blank
lines (RFC 3464 section 2.1). Real reports bend this: blocks without separating lines, the fields written into
the text body when the MIME structure was lost, the reason only in the human-readable part. Each is read here.
"""

from __future__ import annotations

import re
from operator import itemgetter

from smtplens._accel import install as install_accelerator
from smtplens.bounce.decoders import MAX_RECIPIENTS, clean_address, mta_host, parse_date, response_under_heading
from smtplens.bounce.mime import LinePattern, Mail, Part, field_lists
from smtplens.bounce.model import Action, Finding
from smtplens.reply import parse_reply

__all__ = ["decode", "detect", "name"]

name = "rfc3464"

DSN_TYPES = ("message/delivery-status", "message/global-delivery-status")
_RECIPIENT_FIELDS = ("final-recipient", "original-recipient")
_MESSAGE_FIELDS = frozenset(
    {"reporting-mta", "received-from-mta", "arrival-date", "original-envelope-id", "dsn-gateway"}
)
_PER_RECIPIENT_FIELDS = frozenset({"action", "status", "remote-mta", "diagnostic-code", "last-attempt-date"})
_DSN_FIELDS = _MESSAGE_FIELDS | _PER_RECIPIENT_FIELDS | frozenset(_RECIPIENT_FIELDS)
Block = list[tuple[str, str]]  # one block of DSN fields: (lower-case name, unfolded value), in order
# A DSN written into a text body: its first field at the start of a line.
_DSN_IN_TEXT = LinePattern(r"(?:Final-Recipient|Original-Recipient)[ \t]*:[ \t]*\S", re.I)
_DSN_START = LinePattern(
    r"(?:Reporting-MTA|Received-From-MTA|Arrival-Date|Final-Recipient|Original-Recipient)[ \t]*:", re.I
)
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_TYPE = re.compile(r"^\s*([A-Za-z][\w.-]{0,30})\s*;")
_REPLY_CODE = re.compile(r"\b[245]\d\d\b")
_PARAGRAPH_END = re.compile(r"\n[ \t]*\n")
_FIRST_OF_MANY = re.compile(r"[245]\d\d-")  # the first line of a multi-line reply (RFC 5321 section 4.2.1)
_TRANSCRIPT_LINE = "<<< "  # Sendmail's session transcript: what the server answered
# PowerMTA's category of a failure ("X-PowerMTA-BounceCategory: bad-mailbox", the names of its
# bounce-category-patterns), in the taxonomy's ids: a hint where the reply itself says nothing ("554 Transaction
# failed")
_POWERMTA_CATEGORIES = {
    "bad-mailbox": "user_unknown",
    "inactive-mailbox": "mailbox_disabled",
    "quota-issues": "mailbox_full",
    "bad-domain": "domain_invalid",
    "no-answer-from-host": "network_error",
    "bad-connection": "network_error",
    "routing-errors": "network_error",
    "message-expired": "expired",
    "policy-related": "policy_rejected",
    "spam-related": "spam_detected",
    "virus-related": "virus_detected",
    "content-related": "content_rejected",
    "invalid-sender": "sender_rejected",
    "relaying-issues": "relay_denied",
    "protocol-errors": "protocol_error",
}
_EXPIRED = "expired"
MAX_REPLY_LINES = 40
MAX_PARAGRAPH = 1000
MAX_REPORT = 2_000_000  # characters of a delivery-status part read (a report of 1,000 recipients is ~300 KB)
MAX_TEXT = 1_000_000  # characters of the human-readable part searched for a recipient's paragraph


def detect(mail: Mail) -> bool:
    if mail.find(*DSN_TYPES) is not None:
        return True
    if mail.ctype == "multipart/report" and mail.root.params.get("report-type", "").lower() == "delivery-status":
        return True
    if _DSN_IN_TEXT.search(mail.text)[0] >= 0:
        return True
    return any(_DSN_IN_TEXT.search(part.text())[0] >= 0 for part in _attached_texts(mail))


def decode(mail: Mail) -> list[Finding]:
    findings: list[Finding] = []
    for part in mail.find_all(*DSN_TYPES):  # usually one; a digest of reports has several
        findings += _read(field_lists(part.text()[:MAX_REPORT]))
    if findings:
        _complete_from_text(findings, _human_text(mail))
        return findings
    text = mail.text
    start = _DSN_START.search(text)[0]
    if start >= 0:
        findings = _read(_blocks_in_text(text[start : start + MAX_REPORT]))
        _complete_from_text(findings, text[:start])
        return findings
    for part in _attached_texts(mail):
        report = part.text()
        start = _DSN_START.search(report)[0]
        if start >= 0:
            findings = _read(_blocks_in_text(report[start : start + MAX_REPORT]))
            _complete_from_text(findings, text)
            return findings
    return []


MAX_ATTACHED_TEXTS = 3  # text attachments looked at for a report's fields


def _attached_texts(mail: Mail) -> list[Part]:
    """The first ``text/plain`` attachments of the mail, outside attached messages: where a report's fields stand
    when a gateway or a client relabelled the delivery-status part ("details.txt", as some clients show it), or a
    notice was forwarded with the report as a text file."""
    return mail.text_attachments()[:MAX_ATTACHED_TEXTS]


def _blocks_in_text(text: str) -> list[Block]:
    """The DSN field blocks of a report whose fields were written into the text (``text`` starts with them)."""
    blocks = []
    for block in field_lists(text):
        if _DSN_FIELDS.isdisjoint(map(_NAME, block)):
            break  # the returned message's header follows the report
        blocks.append(block)
    return blocks


def _records(blocks: list[Block]) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The per-message fields and one dict of fields per recipient (first value of a field wins).

    A block that names a recipient is one recipient's fields, in any order (some MTAs write ``Action`` first);
    a recipient field that repeats within a block starts the next recipient (blocks written without blank
    lines). Per-message fields are taken wherever they stand.
    """
    message: dict[str, str] = {}
    records: list[dict[str, str]] = []
    for block in blocks:
        if _RECIPIENT_SET.isdisjoint(map(_NAME, block)):
            _read_other_block(block, message, records)
            continue
        if len(records) > MAX_RECIPIENTS:
            break
        current: dict[str, str] = {}
        records.append(current)
        for n, v in block:
            if n in _PER_RECIPIENT_FIELDS:  # the common case first
                if n not in current:
                    current[n] = v
            elif n in _MESSAGE_FIELDS or _is_sender_field(n):
                message.setdefault(n, v)
            else:
                if n in _RECIPIENT_SET and n in current:
                    if len(records) > MAX_RECIPIENTS:
                        break
                    current = {}
                    records.append(current)
                current.setdefault(n, v)
    return message, [r for r in records if not _RECIPIENT_SET.isdisjoint(r)]


_RECIPIENT_SET = frozenset(_RECIPIENT_FIELDS)
_NAME = itemgetter(0)  # the name of a (name, value) field


def _read_other_block(block: Block, message: dict[str, str], records: list[dict[str, str]]) -> None:
    """A block without a recipient field: per-message fields, or (after a stray blank line) more fields of the
    last recipient."""
    for n, v in block:
        if not records or n in _MESSAGE_FIELDS or _is_sender_field(n):
            message.setdefault(n, v)
        elif n in _DSN_FIELDS:
            records[-1].setdefault(n, v)


def _is_sender_field(name: str) -> bool:
    """``X-Postfix-Sender``, ``X-Outbound-Mail-Relay-Sender``: the envelope sender, as some MTAs add it."""
    return name.startswith("x-") and name.endswith("-sender")


def _read(blocks: list[Block]) -> list[Finding]:
    message, records = _records(blocks)
    reporting_mta = mta_host(message.get("reporting-mta"))
    arrival_field = message.get("arrival-date")
    sender = None
    for n, v in message.items():
        if n.startswith("x-") and n.endswith("-sender"):  # _is_sender_field, inline: read for every report
            sender = clean_address(v)
            break
    findings = []
    for rec in records:
        final = clean_address(rec.get("final-recipient"))
        original = clean_address(rec.get("original-recipient"))
        recipient = final or original
        if recipient is final and final is not None and not _internet_address(final):
            recipient = _from_x400(final) or (original if original and _internet_address(original) else final)
        if not recipient:
            continue
        status_field = rec.get("status") or ""
        status_match = _STATUS.search(status_field)
        status = status_match.group(0) if status_match else None
        diag_type, diagnostic = diagnostic_parts(rec.get("diagnostic-code"))
        if not diagnostic and "(" in status_field:
            # "Status: 4.0.0 (cat.example.net: host name lookup failure)": the comment is the explanation
            diagnostic = status_field[status_field.find("(") + 1 :].rstrip(") ").strip() or None
        action_field = rec.get("action")
        category = rec.get("x-powermta-bouncecategory")
        findings.append(
            Finding(
                recipient=recipient,
                original_recipient=original if original and original != recipient else None,
                action=Action.parse(action_field),
                # "Action: expired" (SendGrid, not an RFC 3464 value): the delivery expired, whatever the last reply
                reason=_EXPIRED if action_field and _EXPIRED in action_field.lower() else None,
                hint=_POWERMTA_CATEGORIES.get(category.strip().lower()) if category else None,
                status=status,
                diagnostic=diagnostic,
                diagnostic_type=diag_type,
                remote_host=mta_host(rec.get("remote-mta")),
                reporting_mta=reporting_mta,
                timestamp=parse_date(rec.get("last-attempt-date") or arrival_field),
                sender=sender,
            )
        )
    return findings


def _internet_address(address: str) -> bool:
    """Whether a recipient field names an Internet mail address: a local part, "@" and a domain of two labels or
    more (or an address literal). Not so: an X.400 O/R address (``x400; /S=name/OU=unit/…``), an MTA's internal
    routing name (``user@sims-ms-daemon``, ``user@mailhub0``), a mailbox file path."""
    at = address.rfind("@")
    if at <= 0 or " " in address or address.startswith("/"):
        return False
    domain = address[at + 1 :]
    return "." in domain.strip(".") or domain.startswith("[")


# RFC 2156 section 4.2.1: the characters an RFC 822 address in an X.400 "RFC-822" attribute is written without
_X400_ESCAPES = {"(a)": "@", "(p)": "%", "(b)": "!", "(q)": '"', "(u)": "_", "(l)": "(", "(r)": ")"}
_X400_RFC822 = re.compile(r"/RFC-822=([^/]+)", re.I)
_X400_ESCAPE = re.compile(r"\([apbqulr]\)", re.I)


def _from_x400(address: str) -> str | None:
    """The Internet address an X.400 O/R address carries in its RFC-822 attribute (RFC 2156: ``/RFC-822=
    pr(a)example.com/`` is pr@example.com), else None."""
    m = _X400_RFC822.search(address)
    if m is None:
        return None
    decoded = _X400_ESCAPE.sub(lambda e: _X400_ESCAPES[e.group(0).lower()], m.group(1))
    return decoded if _internet_address(decoded) else None


def diagnostic_parts(value: str | None) -> tuple[str | None, str | None]:
    """``smtp; 550 5.1.1 …`` → ``("smtp", "550 5.1.1 …")`` (RFC 3464 section 2.3.6)."""
    if not value:
        return None, None
    m = _TYPE.match(value)
    if m is None:
        return None, value.strip() or None
    return m.group(1).lower(), value[m.end() :].strip() or None


def _complete_from_text(findings: list[Finding], text: str) -> None:
    """Where the DSN fields give no explanation or no SMTP command, read the human-readable part: the paragraph
    that names the recipient (``host mx said: 550 … (in reply to RCPT TO command)``)."""
    text = text[:MAX_TEXT]
    if _TRANSCRIPT_LINE in text:
        for f in findings:
            if f.diagnostic and _FIRST_OF_MANY.match(f.diagnostic) and "\n" not in f.diagnostic:
                f.diagnostic = _whole_reply(f.diagnostic, text) or f.diagnostic
    if len(findings) == 1:
        _complete_from_response(findings[0], text)
    lower = text.lower()
    names_commands = "command" in lower or ">>>" in lower or " after " in lower
    for f in findings:
        if f.diagnostic and (f.stage is not None or not names_commands):
            continue  # nothing to add: a paragraph is read for its command only (see below)
        quoting = not f.diagnostic  # the paragraph is the diagnostic: one that quotes a reply is worth a search
        paragraph = _paragraph_about(text, lower, f.recipient, quoting)
        if paragraph is None and f.original_recipient:
            paragraph = _paragraph_about(text, lower, f.original_recipient, quoting)
        if paragraph is None:
            continue
        if not f.diagnostic:
            f.diagnostic = paragraph  # its code, stage and host are read with it
            continue
        plower = paragraph.lower()
        if "command" not in plower and ">>>" not in plower and " after " not in plower:
            continue  # no SMTP command named: nothing to add
        reply = parse_reply(paragraph)
        code = _REPLY_CODE.search(f.diagnostic)
        if reply.stage is not None and (code is None or code.group() == reply.basic):
            f.stage = reply.stage  # the same reply as the Diagnostic-Code, with the command it answered
            if f.remote_host is None:
                f.remote_host = reply.remote_host


def _complete_from_response(f: Finding, text: str) -> None:
    """The reply under "The response was:" (Gmail's notices) for a report's only recipient, where its fields give
    no diagnostic or only the reply's code ("Diagnostic-Code: smtp; 552" for "552 5.2.2 … quota exceeded")."""
    if f.diagnostic and not (_REPLY_CODE.fullmatch(f.diagnostic) and f.diagnostic_type in (None, "smtp")):
        return
    found = response_under_heading(text)
    response = found[1] if found is not None else ""
    if response and (not f.diagnostic or response.startswith(f.diagnostic)):
        f.diagnostic = response


def _whole_reply(first: str, text: str) -> str | None:
    """The whole multi-line reply whose first line is ``first``, from the session transcript in ``text``.

    Sendmail writes only the first line of a multi-line reply into ``Diagnostic-Code`` (``552-5.7.0 This message
    was blocked because its content presents a potential``), which may leave out what the reply is about; its
    transcript (``<<< `` lines) has every line. The lines are joined with blanks, as a log joins them."""
    at = text.find(_TRANSCRIPT_LINE + first)
    if at < 0:
        return None
    lines: list[str] = []
    for line in text[at:].split("\n", MAX_REPLY_LINES)[:MAX_REPLY_LINES]:
        if not line.startswith(_TRANSCRIPT_LINE):
            break
        reply_line = line[len(_TRANSCRIPT_LINE) :].strip()
        lines.append(reply_line)
        if not _FIRST_OF_MANY.match(reply_line):
            break  # the final line, "CODE SP text"
    return " ".join(lines) if len(lines) > 1 else None


def _human_text(mail: Mail) -> str:
    part = mail.find("text/plain")
    return part.text() if part is not None else mail.text


def _dsn_fields(paragraph: str) -> bool:
    """Whether a paragraph opens with a DSN field ("Final-Recipient: …")."""
    name, colon, _ = paragraph.partition(":")
    return bool(colon) and name.lower() in _DSN_FIELDS


def _paragraph_about(text: str, lower: str, address: str, quoting: bool = False) -> str | None:
    """The first paragraph of ``text`` (``lower`` is it in lower case) that names ``address`` and says more than
    the address (up to the next blank line), whitespace collapsed. With ``quoting``, a later one that quotes a reply
    code where the first does not (a notice that names the recipient in its prose, then in its technical details
    with the remote server's reply: Exchange's "Diagnostic information for administrators")."""
    needle = address.lower()
    if not needle:
        return None
    first: str | None = None
    at = lower.find(needle)
    for _ in range(MAX_PARAGRAPHS_ABOUT):
        if at < 0:
            break
        start = text.rfind("\n", 0, at) + 1
        end_match = _PARAGRAPH_END.search(text, at, start + MAX_PARAGRAPH)
        end = end_match.start() if end_match else start + MAX_PARAGRAPH
        paragraph = " ".join(text[start:end].split())
        # what the paragraph says besides the address ("(expanded from: <address>)" is no explanation, nor are
        # the DSN's own fields, where a report came without its human-readable part)
        rest = paragraph.lower().replace(needle, "").replace("expanded from", "").strip(" <>.:;,()\"'")
        if len(rest) > 3 and not _dsn_fields(paragraph):
            if not quoting or _QUOTED_CODE.search(paragraph) is not None:
                return paragraph
            first = first or paragraph
        at = lower.find(needle, max(at + len(needle), end))
    return first


MAX_PARAGRAPHS_ABOUT = 10  # paragraphs naming a recipient looked at for one that quotes a reply code
_QUOTED_CODE = re.compile(r"(?<![\w.])#?[245][0-9][0-9][ -][245]\.[0-9]{1,3}\.[0-9]{1,3}\b|(?<![\w.#])[245][0-9][0-9] ")


# The compiled accelerator (smtplens._accel): a Cython build of this very file replaces these entry points when it
# was built from this file as it is now.
install_accelerator("rfc3464", globals(), ("detect", "decode"))
