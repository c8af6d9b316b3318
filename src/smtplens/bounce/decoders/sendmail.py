"""Bounces of Sendmail (8.x): "Returned mail: …" from the Mail Delivery Subsystem.

Sendmail writes a text part with the reason in words ("----- The following addresses had permanent fatal
errors -----", the addresses one a line) and "----- Transcript of session follows -----": its SMTP dialogue
with the remote server, where ``... while talking to HOST.:`` names the server, ``>>> COMMAND`` what Sendmail
sent, ``<<< 550 …`` the server's reply (one ``<<<`` line per line of a multi-line reply) and
``550 5.1.1 <address>... User unknown`` Sendmail's verdict on one recipient (a temporary failure without a code:
``<address>... Deferred: …``); a ``<<<`` reply before any ``>>>`` line answered the greeting. Since 8.8 a
``message/delivery-status`` part follows (RFC 3464), whose Diagnostic-Code keeps only the first line of the
reply and no command. This decoder reads the DSN as :mod:`rfc3464` does and completes each recipient from the
transcript: the whole reply, the command it answered, the server. Without a DSN part (old Sendmail, other
MTAs that copy its wording) the transcript alone gives the recipients; :func:`read_transcript` is shared with
the decoder of Sendmail 5.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from smtplens.bounce.decoders import MAX_RECIPIENTS, clean_address, parse_date, rfc3464
from smtplens.bounce.mime import Mail
from smtplens.bounce.model import Action, Finding
from smtplens.model import Stage

__all__ = ["Exchange", "decode", "detect", "from_sendmail", "name", "read_transcript"]

name = "sendmail"

_TRANSCRIPT = re.compile(r"^[ \t]*-+[ \t]*Transcript of session follows[ \t]*-+[ \t]*$", re.M | re.I)
# The same lines found after a line break: a pattern that opens with a literal is scanned for quickly, where "^" of a
# case-insensitive multi-line pattern is tried at every position (several times slower on a page of text).
_TRANSCRIPT_AFTER_BREAK = re.compile(r"\n[ \t]*-+[ \t]*Transcript of session follows[ \t]*-+[ \t]*$", re.M | re.I)
_SECTION_END_AFTER_BREAK = re.compile(r"\n(?:[ \t]*-{3,}[ \t]*\S|--\S)")
_TALKING = re.compile(r"^(?:\.\.\.[ \t]*)?while talking to ([^\s:]+?)\.?:[ \t]*$", re.I)
_SENT = re.compile(r"^>>>[ \t]*(.*)$")
_RECEIVED = re.compile(r"^<<<[ \t]?(.*)$")
# Sendmail's line about a recipient: "550 5.1.1 <addr>... User unknown"; a local delivery to a program or a file
# names it quoted instead of an address ("|/usr/bin/procmail"... Service unavailable). A temporary failure is
# written without a reply code: "<addr>... Deferred: 450 4.7.1 …", "<addr>... Deferred: Connection refused by …".
_VERDICT = re.compile(
    r"^(?:([245]\d\d)(?:[ -]([245]\.\d{1,3}\.\d{1,3}))?[ \t]+)?"
    r"(?:<?([^\s<>]+@[^\s<>]+?)>?|(\"[|/][^\"\n]*\"))\.\.\.[ \t]*(.*)$"
)
_CODE = re.compile(r"^[245]\d\d\b")
_STAGES = (
    ("mail from", Stage.MAIL),
    ("rcpt to", Stage.RCPT),
    ("data", Stage.DATA),
    ("ehlo", Stage.HELO),
    ("helo", Stage.HELO),
    ("starttls", Stage.STARTTLS),
    ("auth", Stage.AUTH),
    ("quit", Stage.QUIT),
    (".", Stage.END_OF_DATA),
)
MAX_TRANSCRIPT = 100_000


@dataclass
class Exchange:
    """What the transcript says about one recipient (``recipient`` None: a dialogue no verdict line follows)."""

    recipient: str | None
    host: str | None = None
    command: str | None = None
    replies: list[str] = field(default_factory=list)
    verdict: str | None = None  # Sendmail's own line about the recipient, after "<address>..."
    code: str | None = None
    # What a local delivery program printed before Sendmail's verdict ("maildrop: maildir over quota."): the
    # lines of a section without a remote dialogue that are neither a command, a reply nor a verdict
    output: list[str] = field(default_factory=list)
    # Opened by "... while talking to HOST.:": a reply before any ">>>" line is the server's greeting
    greeting: bool = False

    @property
    def stage(self) -> Stage | None:
        cmd = (self.command or "").strip().lower()
        if not cmd:
            return Stage.CONNECT if self.greeting and self.replies else None
        return next((s for words, s in _STAGES if cmd.startswith(words)), None)

    @property
    def diagnostic(self) -> str | None:
        """The remote reply, lines joined; else Sendmail's verdict with its reply code."""
        if self.replies:
            return " ".join(" ".join(self.replies).split())
        if self.verdict:
            text = " ".join(self.verdict.split())
            return text if _CODE.match(text) or not self.code else f"{self.code} {text}"
        return None


# Sendmail sends its notices from "Mail Delivery Subsystem <MAILER-DAEMON@host>" with one of these subjects:
# "Returned mail: <why>" (the message is returned), "Warning: could not send message for past 4 hours" (a delay),
# and, for the copy sent to the postmaster, "Postmaster notify: <why>" or "Postmaster warning: <why>".
_SENDERS = ("mailer-daemon", "mail delivery subsystem")
_SUBJECTS = ("returned mail", "warning: could not send", "postmaster notify", "postmaster warning")
_WARNING = re.compile(r"(?:postmaster )?warning:")

# detect() is false unless one of these is in the mail's header (dispatch.py)
GATE = (*_SENDERS, *_SUBJECTS)
# ... and unless this is in its readable text (dispatch.py)
TEXT_GATE = ("transcript of session follows",)


def from_sendmail(mail: Mail) -> bool:
    """Whether the sender or the subject is one Sendmail writes on its notices."""
    sender = mail.lowered("from")
    subject = mail.lowered("subject")
    return any(s in sender for s in _SENDERS) or subject.startswith(_SUBJECTS)


def detect(mail: Mail) -> bool:
    if not from_sendmail(mail):
        return False
    text = mail.text
    return "Transcript of session follows" in text and bool(_transcript_ends(text))


def decode(mail: Mail) -> list[Finding]:
    exchanges = read_transcript(mail.text)
    # the DSN fields, in a delivery-status part or (when the MIME structure was lost) written into the text
    findings = rfc3464.decode(mail)
    if not findings:
        return _from_transcript(mail, exchanges)
    by_address = {e.recipient.lower(): e for e in exchanges if e.recipient}
    dialogue = [e for e in exchanges if e.replies]
    for f in findings:
        found = by_address.get(f.recipient.lower())
        if (found is None or not found.replies) and len(findings) == 1:
            # the one recipient: the last dialogue with the DSN's reply (a reply to a later command may follow:
            # "<<< 503 5.0.0 Need RCPT (recipient)"), else the last dialogue, else the one verdict (a program the
            # address was aliased to)
            agreeing = [e for e in dialogue if f.diagnostic and _same_reply(f.diagnostic, e.diagnostic or "")]
            found = (agreeing or dialogue)[-1] if dialogue else exchanges[0] if len(exchanges) == 1 else found
        if found is not None:
            _complete(f, found)
    return findings


def _complete(f: Finding, e: Exchange) -> None:
    """The transcript's whole reply where the DSN kept only its first line, or none (then Sendmail's verdict line
    will do); the command and host. For a local delivery program whose DSN gives only its exit status
    (``Diagnostic-Code: X-Unix; 77``), what the program printed says why it failed."""
    if e.output and f.diagnostic_type == "x-unix" and (f.diagnostic or "").isdigit():
        f.diagnostic = " ".join(" ".join(e.output).split())
        return
    whole = e.diagnostic if e.replies or not f.diagnostic else None
    if whole and (not f.diagnostic or _same_reply(f.diagnostic, whole)):
        f.diagnostic = whole
    elif not (e.replies and e.verdict and f.diagnostic and e.verdict in f.diagnostic):
        return
    # the same reply, or a DSN that quotes Sendmail's verdict on this recipient: the dialogue's stage and host
    if f.stage is None:
        f.stage = e.stage
    if f.remote_host is None and e.host:
        f.remote_host = e.host


def _same_reply(dsn: str, whole: str) -> bool:
    a, b = " ".join(dsn.split()).lower(), whole.lower()
    return b.startswith(a[: max(12, min(len(a), 60))])


def _from_transcript(mail: Mail, exchanges: list[Exchange]) -> list[Finding]:
    timestamp = parse_date(mail.headers.get("date"))
    action = Action.DELAYED if _WARNING.match(mail.lowered("subject")) else Action.FAILED
    findings = []
    for e in exchanges:
        recipient = clean_address(e.recipient) if e.recipient else None
        if not recipient:
            continue
        findings.append(
            Finding(
                recipient=recipient,
                action=action,
                diagnostic=e.diagnostic,
                remote_host=e.host if e.replies else None,
                stage=e.stage if e.replies else None,
                timestamp=timestamp,
            )
        )
        if len(findings) > MAX_RECIPIENTS:
            break
    return findings


def read_transcript(text: str) -> list[Exchange]:
    """The exchanges of every ``Transcript of session follows`` section of ``text``, in order."""
    out: list[Exchange] = []
    for start in _transcript_ends(text):
        end = _SECTION_END_AFTER_BREAK.search(text, start)  # the line after the break ends the section
        section = text[start : end.start() + 1 if end else start + MAX_TRANSCRIPT]
        out += _read_section(section[:MAX_TRANSCRIPT])
    return out


def _transcript_ends(text: str) -> list[int]:
    """Where each ``Transcript of session follows`` heading line ends (``m.end()`` of each match of
    ``_TRANSCRIPT.finditer(text)``): the first line is matched in place, the others after their line break."""
    ends = []
    first = _TRANSCRIPT.match(text)
    if first is not None:
        ends.append(first.end())
    ends += [m.end() for m in _TRANSCRIPT_AFTER_BREAK.finditer(text, first.end() if first is not None else 0)]
    return ends


def _read_section(section: str) -> list[Exchange]:
    out: list[Exchange] = []
    current = Exchange(None)
    last_final = True  # the last "<<<" line ended a reply ("550 text"; "550-text" continues it)
    for raw in section.split("\n"):
        line = raw.strip()
        if not line:
            continue
        talking = _TALKING.match(line)
        if talking:
            _keep(out, current)
            current = Exchange(None, host=talking.group(1), greeting=True)
            continue
        sent = _SENT.match(line)
        if sent:
            _keep(out, current)
            current = Exchange(None, host=current.host, command=sent.group(1).strip())
            continue
        received = _RECEIVED.match(line)
        if received:
            reply = received.group(1).strip()
            if last_final and current.replies and current.recipient is None:
                current.replies = []  # a new reply to the same command replaces the earlier one
            current.replies.append(reply)
            last_final = len(reply) < 4 or reply[3:4] != "-"
            continue
        verdict = _VERDICT.match(line)
        if verdict:
            code, _, address, program, rest = verdict.groups()
            address = address or program
            if current.recipient is None:
                current.recipient, current.code, current.verdict = address, code, rest
            else:
                current = Exchange(
                    address,
                    host=current.host,
                    command=current.command,
                    code=code,
                    verdict=rest,
                    greeting=current.greeting,
                )
            _keep(out, current)
            current = Exchange(None, host=current.host)
            continue
        if current.host is None and current.command is None and not current.replies:
            current.output.append(line)  # a local delivery program's own words
    _keep(out, current)
    return out


def _keep(out: list[Exchange], e: Exchange) -> None:
    if (e.recipient or e.replies) and (not out or out[-1] is not e):
        out.append(e)
