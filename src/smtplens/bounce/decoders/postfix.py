"""Postfix's own bounce, delay and success notices, as far as the text says what happened.

Postfix sends "Undelivered Mail Returned to Sender" (also "Delayed Mail (still being retried)", "Successful Mail
Delivery Report") from ``MAILER-DAEMON (Mail Delivery System)``. The text part opens with "This is the mail
system at host <name>." (older versions: "This is the Postfix program at host <name>."), an apology and the
signature "The mail system" / "The Postfix program"; then one paragraph per recipient:
``<user@example.org>: host mx.example.org[192.0.2.1] said: 550 5.1.1 No such user (in reply to RCPT TO
command)``, continuation lines indented by four spaces, ``(expanded from <alias@example.org>)`` after an address
reached through an alias, or a local explanation instead of a remote reply ("connect to …: Connection timed
out", "Host or domain name not found"). Current versions add an RFC 3464 part that the standard decoder reads;
this decoder reads the notices without one (old versions, copies forwarded as plain text), and the reports whose
delivery-status part names no recipient ("--- Delivery report unavailable ---"), where the recipients are those of
the returned message. Where no server reply is quoted, Postfix's own words say where the session broke off:
``connect to mx.example.org[192.0.2.1]:25: Connection refused`` (connecting), ``lost connection with
mx.example.org[192.0.2.1] while sending RCPT TO``, ``conversation with … timed out while receiving the initial
server greeting``. A site may rename the program (``mail_name``): "This is the <name> program at host …".

The SMTP server's notice to the postmaster about a client's failed session (``notify_classes``), "Postfix SMTP
server: errors from client.example.net[192.0.2.7]", is also read: after "Transcript of session follows." each line
is `` In:  COMMAND`` (what the client sent) or `` Out: 550 …`` (the server's reply), longer lines wrapped with
four more spaces; a rejected ``RCPT TO:<address>`` names the recipient, a rejected ``DATA`` or message (a reply
after "354" with no command between) concerns every recipient accepted before.
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders import MAX_RECIPIENTS, clean_address
from smtplens.bounce.mime import Mail, addresses
from smtplens.bounce.model import Action, Finding
from smtplens.model import Stage
from smtplens.reply import parse_reply

__all__ = ["decode", "detect", "name"]

name = "postfix"

MAX_TEXT = 200_000
DSN_TYPES = ("message/delivery-status", "message/global-delivery-status")
_SUBJECTS = ("undelivered mail", "delayed mail", "successful mail delivery", "mail delivery status report")
_BODY_SIGNS = ("this is the mail system at host", "this is the postfix program at host", "the postfix program")
# The same opening with another program name: mail_name renamed, "The Postfix on <system> program" of some vendors
_RENAMED_SIGN = re.compile(r"this is the [\w .()/-]{1,60}? program at host")
_SERVER_NOTICE = "smtp server: errors from"
_SERVER_TRANSCRIPT = "transcript of session follows."
_UNAVAILABLE = "delivery report unavailable"
_DSN_IN_TEXT = re.compile(r"^(?:Final-Recipient|Original-Recipient)[ \t]*:", re.I | re.M)
# A recipient paragraph: "<address>" at the start of a line, an optional "(expanded from <alias>)", a colon.
_PARAGRAPH = re.compile(
    r"^<([^<>\s]*@[^<>\s]*|[^<>\s]+)>((?:\s*\(expanded\s+from\s*<[^<>]*>\))?):[ \t]*"
    r"([^\n]*(?:\n[ \t]+[^\n]*)*)",
    re.M,
)
_EXPANDED = re.compile(r"<([^<>]*)>")
_SAID = re.compile(r"^host\s+([A-Za-z0-9][A-Za-z0-9.-]*)\s*\[[^\]]*\](?::\d+)?\s+said:\s*", re.I)
_IN_REPLY = re.compile(r"\s*\(in reply to (?:the )?[A-Za-z][A-Za-z ]{0,30}?\s+command\)\s*$", re.I)
# Postfix's SMTP client where the server gave no reply to quote: the host, then what the client was doing
_BROKEN_OFF = re.compile(
    r"\b(?:lost connection with|conversation with)\s+([A-Za-z0-9][A-Za-z0-9.-]*)\s*\[[^\]]*\]"
    r"(?:\s+timed out)?\s+while\s+([a-z][a-z -]*)",
    re.I,
)
_CONNECT_TO = re.compile(r"\bconnect to\s+([A-Za-z0-9][A-Za-z0-9.-]*)\s*\[[^\]]*\](?::\d+)?:", re.I)
# What the client was doing (smtp_proto.c), by its opening words
_DOING = (
    ("receiving the initial server greeting", Stage.CONNECT),
    ("performing the ehlo handshake", Stage.HELO),
    ("performing the helo handshake", Stage.HELO),
    ("performing the lhlo handshake", Stage.HELO),
    ("receiving the starttls response", Stage.STARTTLS),
    ("sending mail from", Stage.MAIL),
    ("sending rcpt to", Stage.RCPT),
    ("sending data command", Stage.DATA),
    ("sending message body", Stage.DATA),
    ("sending end of data", Stage.END_OF_DATA),
)
# The server's notice: " In:  RCPT TO:<a@example.org>", " Out: 550 5.1.1 …", continuation lines indented further
_CHAT_LINE = re.compile(r"^ ?(In|Out):[ \t]*(.*)$")
_CHAT_MORE = re.compile(r"^ {4,}\S")
_COMMAND_STAGES = {
    "HELO": Stage.HELO,
    "EHLO": Stage.HELO,
    "STARTTLS": Stage.STARTTLS,
    "AUTH": Stage.AUTH,
    "MAIL": Stage.MAIL,
    "RCPT": Stage.RCPT,
    "DATA": Stage.DATA,
    "BDAT": Stage.END_OF_DATA,
    ".": Stage.END_OF_DATA,  # the end of the message sent after "354"
    "QUIT": Stage.QUIT,
}
_RCPT_ARGUMENT = re.compile(r"^RCPT\s+TO:\s*<?([^<>\s]+)>?", re.I)


# detect() is false unless one of these is in the mail's header (dispatch.py)
GATE = ("mail delivery system", *_SUBJECTS, _SERVER_NOTICE)
# ... and unless one of these is in its readable text (dispatch.py): the transcript, the signs, a renamed sign
TEXT_GATE = (_SERVER_TRANSCRIPT, *_BODY_SIGNS, "program at host")


def detect(mail: Mail) -> bool:
    subject = mail.lowered("subject")
    sender = mail.lowered("from")
    if _SERVER_NOTICE in subject:
        return _SERVER_TRANSCRIPT in mail.head(3000)
    if "mail delivery system" not in sender and not _any_in(_SUBJECTS, subject):
        return False
    text = mail.head(MAX_TEXT)
    if not _any_in(_BODY_SIGNS, text) and _RENAMED_SIGN.search(text, 0, 5000) is None:
        return False
    # Reports with a delivery-status part are the standard decoder's, unless that part names nobody: Postfix's
    # "delivery report unavailable", or a part a gateway made unreadable (Proofpoint's URL rewriting re-encodes
    # its fields in base64 under a header of its own) while the notice's text still names each recipient.
    report = mail.find(*DSN_TYPES)
    return report is None or _UNAVAILABLE in text or "-recipient" not in report.text().lower()


def _any_in(words: tuple[str, ...], text: str) -> bool:
    """``any(w in text for w in words)`` without the generator (detect() runs for every mail)."""
    for word in words:  # noqa: SIM110 (a loop: no generator to create)
        if word in text:
            return True
    return False


def decode(mail: Mail) -> list[Finding]:
    text = mail.text[:MAX_TEXT]
    if _SERVER_NOTICE in mail.lowered("subject"):
        return _server_notice(text)
    if mail.find(*DSN_TYPES) is None and _DSN_IN_TEXT.search(text):
        return []  # a whole report written into the text: the standard decoder reads its fields
    action = _action(mail, text)
    findings: list[Finding] = []
    for m in _PARAGRAPH.finditer(text):
        recipient = clean_address(m.group(1))
        if recipient is None:
            continue
        expanded = _EXPANDED.search(m.group(2))
        findings.append(_finding(recipient, expanded.group(1) if expanded else None, m.group(3), action))
        if len(findings) > MAX_RECIPIENTS:
            break
    if not findings and _UNAVAILABLE in text.lower():
        original = mail.original
        if original is not None:
            found = addresses(original.get("to"))[: MAX_RECIPIENTS + 1]
            findings = [Finding(recipient=a, action=Action.FAILED) for a in found]
    return findings


def _action(mail: Mail, text: str) -> Action:
    subject = mail.lowered("subject")
    if "successful mail delivery" in subject:
        return Action.DELIVERED
    if "delayed mail" in subject or "this is a warning only" in text[:5000].lower():
        return Action.DELAYED
    return Action.FAILED


def _finding(recipient: str, expanded_from: str | None, body: str, action: Action) -> Finding:
    explanation = " ".join(body.split())
    stage = parse_reply(explanation).stage if "in reply to" in explanation.lower() else None
    remote_host = None
    said = _SAID.match(explanation)
    if said is not None:
        remote_host = said.group(1).rstrip(".")
        explanation = explanation[said.end() :]
    elif (broken := _BROKEN_OFF.search(explanation)) is not None:
        remote_host = broken.group(1).rstrip(".")
        doing = broken.group(2).lower()
        stage = next((s for words, s in _DOING if doing.startswith(words)), None)
    elif (connect := _CONNECT_TO.search(explanation)) is not None:
        remote_host, stage = connect.group(1).rstrip("."), Stage.CONNECT
    explanation = _IN_REPLY.sub("", explanation)
    original = clean_address(expanded_from) if expanded_from else None
    return Finding(
        recipient=recipient,
        original_recipient=original if original and original != recipient else None,
        action=action,
        diagnostic=explanation or None,
        remote_host=remote_host,
        stage=stage,
    )


def _server_notice(text: str) -> list[Finding]:
    """The recipients the SMTP server refused in the transcript of its notice to the postmaster."""
    start = text.lower().find(_SERVER_TRANSCRIPT)
    if start < 0:
        return []
    chat: list[tuple[str, str]] = []  # ("in" | "out", line), continuation lines joined
    for line in text[start:].split("\n")[1:]:
        m = _CHAT_LINE.match(line)
        if m is not None:
            chat.append((m.group(1).lower(), m.group(2).strip()))
        elif chat and _CHAT_MORE.match(line):
            side, said = chat[-1]
            chat[-1] = (side, f"{said} {line.strip()}")
        elif line.strip():
            break  # "Session aborted, reason: …", "For other details, see the local mail logfile"
    findings: list[Finding] = []
    accepted: list[str] = []  # recipients the server accepted, before DATA
    command = ""
    for side, said in chat:
        if side == "in":
            command = said
            continue
        reply = parse_reply(said)
        if reply.basic is None:
            continue
        if reply.basic.startswith("354"):
            command = "."  # what the server answers next is the message as a whole
            continue
        rcpt = _RCPT_ARGUMENT.match(command)
        stage = _command_stage(command)
        if rcpt is not None:
            recipient = clean_address(rcpt.group(1))
            if recipient and reply.basic[0] in "45":
                findings.append(Finding(recipient, action=Action.FAILED, diagnostic=said, stage=stage))
            elif recipient and reply.basic[0] == "2":
                accepted.append(recipient)
        elif reply.basic[0] in "45" and stage in (Stage.DATA, Stage.END_OF_DATA):
            findings += [Finding(r, action=Action.FAILED, diagnostic=said, stage=stage) for r in accepted]
            accepted = []
        if len(findings) > MAX_RECIPIENTS:
            break
    return findings


def _command_stage(command: str) -> Stage:
    """The stage a reply to this command line answers; a reply before any command is the greeting."""
    words = command.split(None, 1)
    if not words:
        return Stage.CONNECT
    return _COMMAND_STAGES.get(words[0].split(":")[0].upper(), Stage.OTHER)
