"""Bounce mails → per-recipient results (pure): what happened to each recipient, and why.

``decode_bounce(data)`` parses a mail, lets the registered decoders (``registry.DECODERS``; ``dispatch`` picks
those whose signs stand in the mail's header) read it, and explains each recipient they find: the reason from
the classifier (the diagnostic with its stage and remote host), the status and reply code, whether the address
is dead (hard bounce), and the original message's identity. ``decode_bounces(datas)`` does the same for a
stream of mails, in groups that are decoded step by step (``decode_batch``), which is faster.
``iter_mails(paths)`` reads mails from files, directories, Maildir folders, mbox files and stdin.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import TypeVar

from smtplens._accel import install as install_accelerator
from smtplens.bounce.decoders import MAX_RECIPIENTS, looks_like_bounce, parse_date
from smtplens.bounce.dispatch import Dispatcher, Entry
from smtplens.bounce.inputs import DEFAULT_LIMIT, InputError, iter_mails
from smtplens.bounce.mime import Headers, Mail, first_address, parse_mail
from smtplens.bounce.model import SUCCESS_ACTIONS, Action, BounceResult, Finding, Kind, Recipient
from smtplens.bounce.registry import DECODERS
from smtplens.classifier import Verdict, classify
from smtplens.classifier.engine import SPECIFIC_PHRASE
from smtplens.knowledge.reasons import reason_table
from smtplens.model import Reply, ReplyClass
from smtplens.reply import parse_reply

__all__ = [
    "BATCH",
    "BATCH_BYTES",
    "DEFAULT_LIMIT",
    "Action",
    "BounceResult",
    "InputError",
    "Kind",
    "Recipient",
    "batches",
    "decode_batch",
    "decode_bounce",
    "decode_bounces",
    "decode_mail",
    "iter_mails",
]

DELIVERED = "delivered"
EXPIRED, NETWORK_ERROR = "expired", "network_error"
_DISPATCH = Dispatcher(DECODERS)  # which registered decoders to ask about a mail
# decode_bounces decodes mails in groups of at most BATCH mails and BATCH_BYTES bytes (a larger mail alone): enough
# mails for the code and tables of a step to be used again while cached (on the benchmark corpus 64 decodes 2-9%
# faster than 32, 32 faster than 16 or 8; 128 no faster), and memory bounded by the largest mail, as when decoding
# one by one.
BATCH = 64
BATCH_BYTES = 1 << 20

_T = TypeVar("_T")


def decode_bounce(data: bytes | str) -> BounceResult:
    """Decode one mail (its bytes as read, any line endings). Never raises for any input."""
    return _decode_mails([parse_mail(data)])[0]


def decode_mail(mail: Mail) -> BounceResult:
    """Decode an already parsed mail."""
    return _decode_mails([mail])[0]


def decode_batch(datas: Sequence[bytes | str]) -> list[BounceResult]:
    """What :func:`decode_bounce` gives for each mail of ``datas``, in order, worked out step by step for all of
    them: every mail is parsed, then its candidate decoders are chosen, then it is decoded; then the returned
    messages are named, the replies read and the recipients classified, each step for the whole group before the
    next. A step's code and tables (the MIME reader, the dispatcher's and the classifier's automata, the decoders,
    the reply parser) are then used again while the processor still caches them, where decoding mail after mail
    evicts them for every mail: the benchmark corpus decodes 25–31% faster in groups of :data:`BATCH` in its order,
    17–31% shuffled (three runs each, compiled build). Never raises for any input."""
    return _decode_mails([parse_mail(data) for data in datas])


def decode_bounces(datas: Iterable[bytes | str]) -> Iterator[BounceResult]:
    """What :func:`decode_bounce` gives for each mail of the stream ``datas``, in order, decoded in groups
    (:func:`batches`, :func:`decode_batch`). Never raises for any input."""
    for group in batches(datas, len):
        yield from decode_batch(group)


def batches(items: Iterable[_T], size: Callable[[_T], int]) -> Iterator[list[_T]]:
    """``items`` in consecutive groups of at most :data:`BATCH` items whose ``size`` adds up to at most
    :data:`BATCH_BYTES` (an item larger than that forms a group of its own)."""
    group: list[_T] = []
    total = 0
    for item in items:
        weight = size(item)
        if group and (len(group) >= BATCH or total + weight > BATCH_BYTES):
            yield group
            group, total = [], 0
        group.append(item)
        total += weight
    if group:
        yield group


_Recognised = tuple[Mail, str, list[Finding]]  # a mail, the decoder that recognised it, what it read


def _decode_mails(mails: list[Mail]) -> list[BounceResult]:
    # Indexes, not zip(): a loop over a range is a C loop in the compiled build.
    count = len(mails)
    candidates = [_DISPATCH.candidates(mail) for mail in mails]
    recognised = [_recognised(mails[i], candidates[i]) for i in range(count)]
    found = [r for r in recognised if r is not None]
    explained = _explain_all(found) if found else []
    if len(found) == count:
        return explained
    results: list[BounceResult] = []
    at = 0
    for i in range(count):
        if recognised[i] is None:
            results.append(_unrecognised(mails[i]))
        else:
            results.append(explained[at])
            at += 1
    return results


def _unrecognised(mail: Mail) -> BounceResult:
    """The result of a mail that no decoder recognised: a notice forwarded as its attachment, else not a bounce."""
    forwarded = _forwarded(mail)
    if forwarded is not None:
        return forwarded
    warnings: tuple[str, ...] = ()
    if looks_like_bounce(mail):
        warnings = ("looks like a bounce, but no decoder recognised its format",)
    return BounceResult(Kind.NOT_BOUNCE, None, (), warnings)


FORWARDED = "read from a notice attached to this mail (a forwarded notice)"
MAX_ATTACHED = 3  # attached messages looked at in a mail that no decoder recognised


def _forwarded(mail: Mail) -> BounceResult | None:
    """A notice forwarded as an attachment (``message/rfc822``) of a mail that no decoder recognised: a gateway
    that wraps the notices it passes on, a user who forwards a bounce to a help desk. The attached message is read
    as a mail of its own, one level deep (its own attachments are the message it returns)."""
    for part in mail.find_all("message/rfc822")[:MAX_ATTACHED]:
        attached = parse_mail(part.payload())
        found = _recognised(attached, _DISPATCH.candidates(attached))
        if found is not None:
            result = _explain_all([found])[0]
            return result._replace(warnings=(*result.warnings, FORWARDED))
    return None


def _recognised(mail: Mail, candidates: tuple[Entry, ...]) -> _Recognised | None:
    """The mail, the name and the findings of the first of its candidate decoders that recognises it and reads a
    recipient, else None."""
    for detect, decode, name in candidates:
        if detect(mail):
            findings = decode(mail)
            if findings:
                return mail, name, findings
    return None


def _explain_all(recognised: list[_Recognised]) -> list[BounceResult]:
    """The results of recognised mails, each step for every mail (or recipient) before the next: the returned
    message's identity, the replies read, the verdicts, the recipients."""
    contexts = [_Context(mail) for mail, _, _ in recognised]
    flat: list[Finding] = []
    for _, _, findings in recognised:
        flat += findings[:MAX_RECIPIENTS]
    readings = [_reading(f) for f in flat]
    decided = [_decided(flat[i], readings[i]) for i in range(len(flat))]
    results: list[BounceResult] = []
    at = 0
    for m in range(len(recognised)):
        _, decoder, findings = recognised[m]
        context = contexts[m]
        end = at + min(len(findings), MAX_RECIPIENTS)
        recipients = tuple([_recipient(flat[i], decoder, context, readings[i], decided[i]) for i in range(at, end)])
        at = end
        warnings: tuple[str, ...] = ()
        if len(findings) > MAX_RECIPIENTS:
            warnings = (f"more than {MAX_RECIPIENTS} recipients: only the first {MAX_RECIPIENTS} are explained",)
        kinds = {r.kind for r in recipients}
        # A report of failures and successes is a bounce; a delivery notice only when nothing failed.
        kind = kinds.pop() if len(kinds) == 1 else Kind.BOUNCE
        results.append(BounceResult(kind, decoder, recipients, warnings))
    return results


class _Context:
    """What the mail as a whole says about the returned message: its sender, id, subject, list and date."""

    __slots__ = ("_date", "_date_read", "headers", "list_id", "message_id", "sender", "subject")

    def __init__(self, mail: Mail) -> None:
        original = mail.original_identity()
        self.headers = mail.headers
        self.sender = _sender(original) or first_address(self.headers.get("to"))
        self.message_id = _bracketed(original.get("message-id")) if original else None
        if self.message_id is None:
            # The message the notice answers, where it returns none of it: RFC 3834 section 3.1.6 has an automatic
            # response name it in In-Reply-To, and some MTAs (Zoho, for one) do so in their delivery notices too.
            self.message_id = _bracketed(self.headers.get("in-reply-to"))
        self.subject = original.text("subject") if original else None
        self.list_id = _bracketed(original.text("list-id")) if original else None
        self._date: datetime | None = None
        self._date_read = False

    @property
    def date(self) -> datetime | None:
        """The date of the bounce itself, for recipients whose report gives no date (read once per mail)."""
        if not self._date_read:
            self._date = parse_date(self.headers.get("date"))
            self._date_read = True
        return self._date


def _sender(original: Headers | None) -> str | None:
    if original is None:
        return None
    return first_address(original.get("from")) or first_address(original.get("return-path"))


def _bracketed(value: str | None) -> str | None:
    """The part in angle brackets (``<id@host>`` → ``id@host``; a List-Id's ``Name <list.example>`` →
    ``list.example``), else the whole value; None when empty."""
    if not value:
        return None
    start = value.find("<")
    end = value.find(">", start + 1)
    inner = value[start + 1 : end] if start >= 0 and end > start else value.replace("<", "").replace(">", "")
    return inner.strip() or None


def _reply_text(diagnostic: str, diagnostic_type: str | None) -> str:
    """The text the reply parser reads: the diagnostic with its type (``x-unix`` says a local delivery program
    answered, not a server). An SMTP diagnostic that begins with a failure reply code is the reply as it is: the
    type adds nothing, and the reply is read on its fast path."""
    if diagnostic_type is None or (diagnostic_type == "smtp" and _FAILURE_REPLY.match(diagnostic)):
        return diagnostic
    return f"{diagnostic_type}; {diagnostic}"


_FAILURE_REPLY = re.compile(r"[45][0-9][0-9][ -]")
# A reply quoted in a diagnostic with its enhanced code of the same class: "421 4.4.2", "550-5.1.1"
_QUOTED_REPLY = re.compile(r"(?<![\w.])([245])[0-9][0-9][ -]\1\.[0-9]{1,3}\.[0-9]{1,3}\b")


def _quoted_reply_code(diagnostic: str, outcome: str) -> str | None:
    """The basic code of the first reply quoted in ``diagnostic`` with an enhanced code of the class ``outcome``
    (the status's first digit), else None."""
    for m in _QUOTED_REPLY.finditer(diagnostic):
        if m.group(1) == outcome:
            return m.group(0)[:3]
    return None


def _given_up(action: Action | None, status: str | None, reason: str) -> str:
    """The reason of a recipient, seen as a whole report: a connection or DNS failure with a transient status
    (``4.4.1``, "no answer from host", which RFC 3463 section 3.5 calls "useful only as a persistent transient
    error"; Exchange Online's ``4.4.316``, connection refused) or with none (Gmail's final notice after days of "did
    not accept our requests to connect"), reported as ``failed``, was retried until the reporting MTA gave up: the
    delivery expired (Postfix writes this after its queue lifetime, for one)."""
    if action is Action.FAILED and reason == NETWORK_ERROR and (status is None or status[0] == "4"):
        return EXPIRED
    return reason


def _hinted(verdict: Verdict, hint: str | None) -> str:
    """The verdict's reason, or the reporting MTA's own category of the failure where no specific phrase of the
    reply decided (only its codes or a weak phrase spoke, or nothing did): "554 Transaction failed" with PowerMTA's
    "bad-mailbox"."""
    return verdict.reason if hint is None or verdict.confidence >= SPECIFIC_PHRASE else hint


def _hard_bounce(reason: str, verdict: Verdict | None, action: Action | None) -> bool:
    """Whether the address itself is bad: the classifier's verdict on the reply, or, where the decoder named the
    reason from the notice's own words, the taxonomy's for that reason. A delay is never a hard bounce, nor a
    recipient reported delivered or relayed. A recipient reported ``failed`` after transient replies (the
    reporting MTA retried until it gave up) has a permanent outcome: its reason decides, as the taxonomy has it."""
    if action is Action.DELAYED or action in SUCCESS_ACTIONS:
        return False
    if verdict is not None and (verdict.permanent or action is not Action.FAILED):
        return verdict.hard_bounce
    return reason_table().reasons[reason].hard


def _qualified(local: str, diagnostic: str | None) -> str:
    """A recipient named without its domain ("erin", as Sendmail names a local user) with the domain of the address
    its diagnostic quotes for it ("550 5.1.1 <erin@example.net>... User unknown"), else as it was."""
    if not diagnostic or not local:
        return local
    start = diagnostic.lower().find(f"<{local.lower()}@")
    end = diagnostic.find(">", start) if start >= 0 else -1
    domain = diagnostic[start + len(local) + 2 : end] if end > 0 else ""
    return f"{local}@{domain}" if domain and not any(c in domain for c in " <@") else local


# What a recipient's finding says before classification: the reply read from its diagnostic, the reply the
# classifier is to decide on (None where the finding's reason is already known), the status code, the reason (where
# known, else "") and the kind. A plain tuple: built and unpacked at C speed in the compiled build.
_Reading = tuple[Reply | None, Reply | None, str | None, str, Kind]


def _reading(f: Finding) -> _Reading:
    status = f.status
    reply = None
    if f.diagnostic:
        reply = parse_reply(_reply_text(f.diagnostic, f.diagnostic_type))
        if status and reply.enhanced and reply.enhanced[0] == status[0]:
            # The remote server's own code (its reply, quoted in the diagnostic) is more precise than the status
            # the reporting MTA derived from it: "Status: 5.0.0" or "5.1.1" for "552 5.2.2 Over quota".
            status = reply.enhanced
        if status and reply.basic and reply.basic[0] != status[0]:
            # not a reply code of this outcome (an exit status, a count), unless the text quotes the reply that
            # was: "554 4.4.7 Message expired: … <421 4.4.2 Connection timed out>"
            reply = reply._replace(basic=_quoted_reply_code(f.diagnostic, status[0]))
    if f.reason is not None:
        return reply, None, status, f.reason, f.kind
    if f.action in SUCCESS_ACTIONS or (status or "").startswith("2."):
        return reply, None, status, DELIVERED, Kind.DELIVERY_NOTICE
    reply = reply or parse_reply("")
    if status and (reply.enhanced is None or reply.enhanced[0] != status[0]):
        # the DSN Status decides the class where the diagnostic has none or disagrees (RFC 3464 2.3.4)
        reply = reply._replace(enhanced=status, reply_class=ReplyClass.from_digit(status[0]))
    if reply.reply_class is None and f.action is Action.DELAYED:
        reply = reply._replace(reply_class=ReplyClass.TRANSIENT)
    return reply, reply, status, "", f.kind


def _decided(f: Finding, reading: _Reading) -> tuple[Verdict | None, str]:
    """The classifier's verdict on the reading's reply, where it is asked, and the recipient's reason."""
    _, ask, status, reason, _ = reading
    if ask is None:
        return None, reason
    verdict = classify(ask, stage=f.stage, remote_host=f.remote_host)
    return verdict, _given_up(f.action, status or ask.enhanced, _hinted(verdict, f.hint))


def _recipient(
    f: Finding, decoder: str, ctx: _Context, reading: _Reading, decided: tuple[Verdict | None, str]
) -> Recipient:
    reply, _, status, _, kind = reading
    verdict, reason = decided
    reply_code, stage, remote_host = f.reply_code, f.stage, f.remote_host
    if reply is not None:
        reply_code = reply_code or reply.basic
        status = status or reply.enhanced
        stage = stage or reply.stage
        remote_host = remote_host or reply.remote_host
    return Recipient(
        f.recipient if "@" in f.recipient else _qualified(f.recipient, f.diagnostic),
        reason,
        kind,
        decoder,
        f.action,
        status,
        reply_code,
        f.diagnostic,
        f.diagnostic_type,
        remote_host,
        f.reporting_mta,
        stage,
        _hard_bounce(reason, verdict, f.action),
        f.timestamp or ctx.date,
        f.original_recipient,
        f.sender or ctx.sender,
        ctx.message_id,
        ctx.subject,
        ctx.list_id,
        f.feedback_type,
        verdict,
    )


# The compiled accelerator (smtplens._accel): a Cython build of this very file replaces these entry points when it
# was built from this file as it is now.
install_accelerator("bounce", globals(), ("decode_bounce", "decode_mail", "decode_batch"))
