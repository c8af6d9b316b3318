"""parse_reply: find the reply code, enhanced status code, text, remote host and stage in any reply text.

Pure and total: in lenient mode it never raises, whatever the input; strict mode raises one ParseError that
lists every problem found.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from smtplens.errors import ParseError
from smtplens.knowledge.load import canonical_key, knowledge
from smtplens.model import Reply, ReplyClass, Stage

__all__ = ["MAX_INPUT", "parse_reply"]

MAX_INPUT = 65536
"""Characters of input examined; the rest is ignored with a warning (a reply is at most a few KiB)."""

MAX_REPLY_LINE = 512  # RFC 5321 section 4.5.3.1.5, octets including CRLF

_ENH = r"[245]\.\d{1,3}\.\d{1,3}"
_LINE = re.compile(r"[ \t]*(?P<code>[2-5]\d\d)(?P<sep>[ \t-]|:[ \t]|$)(?P<rest>.*)")
_LEADING_ENH = re.compile(rf"[ \t]*[#(\[]?(?P<enh>{_ENH})[)\]]?(?=[\s:;,]|$)")
_ANY_ENH = re.compile(rf"(?<![\w.])[#(\[]?(?P<enh>{_ENH})[)\]]?(?![\w.]|-\w)")
_CODE_WITH_ENH = re.compile(rf"(?<![\w.:/-])(?P<code>[2-5]\d\d)[ \t-]+['\"]?[#(\[]?(?P<enh>{_ENH})[)\]]?(?![\w.])")
_SEARCH_CODE = re.compile(r"(?:^|[:;,'\"#(=>\[][ \t]*|[ \t]-[ \t])(?P<code>[2-5]\d\d)(?=[ \t:,-]|$)", re.MULTILINE)
_IN_REPLY_TO = re.compile(r"\(?\s*in reply to (?:the )?(?P<cmd>[A-Za-z][A-Za-z ]{1,30}?) command\s*\)?", re.I)
_AFTER_CMD = re.compile(
    r"(?:SMTP error from remote (?:mail server|mailer|server)|error) after (?:pipelined )?"
    r"(?P<cmd>end of (?:data|message)|MAIL FROM|RCPT TO|DATA|BDAT(?: LAST)?|HELO|EHLO|LHLO|STARTTLS|AUTH|QUIT|"
    r"initial connection|connection|greeting)",
    re.I,
)
_SENDMAIL_CMD = re.compile(r">>>\s*(?P<cmd>MAIL FROM|RCPT TO|DATA|HELO|EHLO|LHLO|STARTTLS|AUTH|QUIT|\.)", re.I)
_GREETING_PHRASES = ("refused to talk to me", "while connecting", "greeting failure", "in the greeting", "banner")
_HOST_AT = re.compile(r"\s*(?P<host>[A-Za-z0-9][A-Za-z0-9.-]*)\s?\[(?P<ip>[0-9A-Fa-f:.]+(?:%\w+)?)\]")
_HOST_WORDS = ("host ", "connect to ", " to ")
_REMOTE_MTA = re.compile(r"Remote-MTA:\s*(?:dns|smtp|x-[\w-]+)\s*;\s*(?P<host>[A-Za-z0-9][A-Za-z0-9.-]*)", re.I)
_TALKING = re.compile(r"while talking to (?P<host>[A-Za-z0-9][A-Za-z0-9.-]*[A-Za-z0-9])\.?:", re.I)
_MARKER_WORDS = ("said:", "diagnostic-code:", "<<<", "reply:", "error from remote")
_MARKERS = re.compile(
    r"(?:\bsaid:|Diagnostic-Code:\s*[\w-]+\s*;|<<<|Remote host said:|\breply:|"
    r"error from remote (?:mail server|mailer|server) after [^:]*:|\s\[\d{1,3}(?:\.\d{1,3}){3}\]:)",
    re.I,
)

_COMMANDS: dict[str, Stage] = {
    "mail from": Stage.MAIL,
    "mail": Stage.MAIL,
    "rcpt to": Stage.RCPT,
    "rcpt": Stage.RCPT,
    "data": Stage.DATA,
    "bdat": Stage.END_OF_DATA,
    "bdat last": Stage.END_OF_DATA,
    "end of data": Stage.END_OF_DATA,
    "end of message": Stage.END_OF_DATA,
    ".": Stage.END_OF_DATA,
    "helo": Stage.HELO,
    "ehlo": Stage.HELO,
    "lhlo": Stage.HELO,
    "starttls": Stage.STARTTLS,
    "auth": Stage.AUTH,
    "quit": Stage.QUIT,
    "initial connection": Stage.CONNECT,
    "connection": Stage.CONNECT,
    "connect": Stage.CONNECT,
    "greeting": Stage.CONNECT,
    "initial greeting": Stage.CONNECT,
    "rset": Stage.OTHER,
    "vrfy": Stage.OTHER,
    "expn": Stage.OTHER,
    "noop": Stage.OTHER,
    "help": Stage.OTHER,
    "etrn": Stage.OTHER,
    "xforward": Stage.OTHER,
}


@dataclass
class _Found:
    """Mutable scratch state of one parse."""

    basic: str | None = None
    enhanced: str | None = None
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # make strict mode fail
    notes: list[str] = field(default_factory=list)  # informational only


def _stage_from(cmd: str) -> Stage | None:
    return _COMMANDS.get(" ".join(cmd.lower().split()))


def _find_stage(text: str, lower: str) -> Stage | None:
    # Cheap substring guards first: most replies carry no stage at all.
    for guard, pattern in (("reply to", _IN_REPLY_TO), ("error", _AFTER_CMD)):
        if guard in lower and (pattern is not _AFTER_CMD or "after " in lower):
            m = pattern.search(text)
            if m:
                stage = _stage_from(m.group("cmd"))
                if stage is not None:
                    return stage
    if ">>>" in text:
        last = None
        for m in _SENDMAIL_CMD.finditer(text):
            last = m
        if last is not None:
            return _stage_from(last.group("cmd"))
    if any(phrase in lower for phrase in _GREETING_PHRASES):
        return Stage.CONNECT
    return None


def _find_host(text: str, lower: str) -> tuple[str | None, str | None]:
    if "[" in text:
        for word in _HOST_WORDS:
            at = lower.find(word)
            while at >= 0:
                m = _HOST_AT.match(text, at + len(word))
                if m and (at == 0 or word[0] == " " or not lower[at - 1].isalnum()):
                    return m.group("host").rstrip("."), m.group("ip")
                at = lower.find(word, at + 1)
    for guard, pattern in (("remote-mta", _REMOTE_MTA), ("talking to", _TALKING)):
        if guard in lower:
            m = pattern.search(text)
            if m:
                return m.group("host").rstrip("."), None
    return None, None


def _body(text: str, lower: str) -> tuple[str, bool]:
    """The part of ``text`` that holds the reply, and whether a log/DSN marker introduced it."""
    m = None
    if not _LINE.match(text) and ("]:" in text or any(word in lower for word in _MARKER_WORDS)):
        m = _MARKERS.search(text)
    body = text[m.end() :] if m else text
    if "reply to" in lower:
        body = _IN_REPLY_TO.sub(" ", body)
    body = body.strip()
    if m is not None:  # a log wrapper such as Postfix's "status=bounced (host … said: …)" leaves a ")"
        while body.endswith(")") and body.count(")") > body.count("("):
            body = body[:-1].rstrip()
    return body, m is not None


def _split_rest(rest: str) -> tuple[str | None, str]:
    m = _LEADING_ENH.match(rest)
    if m:
        return m.group("enh"), rest[m.end() :].strip(" \t:")
    return None, rest.strip().lstrip(":").strip()


def _parse_lines(body: str, found: _Found, plain: bool) -> bool:
    """Parse ``CODE[- ]text`` lines at the start of ``body``; return False when the body has none."""
    raw_lines = body.split("\n")
    first = _LINE.match(raw_lines[0])
    if not first:
        return False
    code = first.group("code")
    found.basic = code
    finished = False
    for number, raw in enumerate(raw_lines, start=1):
        m = _LINE.match(raw)
        if m is None or finished:
            if raw.strip():
                if finished or not found.lines:
                    found.problems.append(f"line {number} follows the final line of the reply")
                    found.lines.append(raw.strip())
                else:  # a folded continuation line
                    found.lines[-1] = f"{found.lines[-1]} {raw.strip()}".strip()
            continue
        if plain and len(raw.encode("utf-8", "replace")) + 2 > MAX_REPLY_LINE:
            found.problems.append(f"line {number} is longer than {MAX_REPLY_LINE} octets (RFC 5321 section 4.5.3.1.5)")
        if m.group("code") != code:
            found.problems.append(f"line {number} has code {m.group('code')}, the reply began with {code}")
        enh, rest = _split_rest(m.group("rest"))
        if enh:
            if found.enhanced is None:
                found.enhanced = enh
            elif enh != found.enhanced:
                found.notes.append(f"line {number} has enhanced code {enh}, the first line had {found.enhanced}")
        found.lines.append(rest)
        if m.group("sep") != "-":
            finished = True
    if not finished and len(found.lines) > 1 and plain:
        found.problems.append("the multi-line reply has no final line (CODE SP text)")
    return True


def _unfold_inline(found: _Found) -> None:
    """Split replies whose lines were joined by a log into one line (``550-5.1.1 a 550-5.1.1 b 550 5.1.1 c``)."""
    if not found.basic or len(found.lines) != 1:
        return
    line = found.lines[0]
    if f"{found.basic}-" not in line and (not found.enhanced or f" {found.basic} {found.enhanced}" not in line):
        return
    enh = re.escape(found.enhanced) + r"\s" if found.enhanced else ""
    splitter = re.compile(rf"\s+{found.basic}(?:-[#(\[]?{enh}|-| {enh})" if enh else rf"\s+{found.basic}-")
    parts = [p.strip() for p in splitter.split(found.lines[0])]
    if len(parts) > 1:
        found.lines = [p for p in parts if p] or [""]


def _search_anywhere(body: str, found: _Found) -> None:
    m = _CODE_WITH_ENH.search(body)
    if m:
        found.basic, found.enhanced = m.group("code"), m.group("enh")
        rest = body[m.end() :].strip(" \t:'\"")
        found.lines = [line.strip() for line in rest.split("\n") if line.strip()]
        return
    m = _SEARCH_CODE.search(body)
    if m:
        found.basic = m.group("code")
        enh, rest = _split_rest(body[m.end() :].lstrip(" \t-"))
        found.enhanced = enh
        found.lines = [line.strip() for line in rest.split("\n") if line.strip()]
        return
    m = _LEADING_ENH.match(body) or _ANY_ENH.search(body)
    if m:
        found.enhanced = m.group("enh")
        rest = body[m.end() :] if m.start() == 0 else body
        found.lines = [line.strip() for line in rest.split("\n") if line.strip()]
        return
    found.lines = [line.strip() for line in body.split("\n") if line.strip()]
    found.problems.append("no reply code or enhanced status code found")


def _enhanced_in_text(found: _Found, body: str) -> None:
    """``550 cuda_nsu 5.1.1 …``, ``… not allowed - 5.7.1``, ``… (#5.7.1)``: an enhanced code elsewhere."""
    if not found.basic or found.enhanced:
        return
    for m in _ANY_ENH.finditer(body):
        if m.group("enh")[0] == found.basic[0]:
            found.enhanced = m.group("enh")
            return


def _check(found: _Found) -> None:
    kb = knowledge()
    if found.basic and found.basic not in kb.facts:
        found.problems.append(f"{found.basic} is not a registered SMTP reply code")
    if found.enhanced:
        if found.basic and found.enhanced[0] != found.basic[0]:
            b = ReplyClass.from_digit(found.basic[0])
            e = ReplyClass.from_digit(found.enhanced[0])
            found.problems.append(
                f"the basic code {found.basic} is {b.value if b else 'unknown'} but the enhanced code "
                f"{found.enhanced} is {e.value if e else 'unknown'}; clients act on the basic code"
            )
        if canonical_key(found.enhanced) not in kb.facts:
            found.notes.append(f"{found.enhanced} is not in the IANA registry (a vendor-specific detail code)")
    if not found.basic and not found.enhanced and not found.problems:
        found.problems.append("no reply code found")


def _normalise_input(text: str | bytes, found: _Found) -> str:
    if isinstance(text, bytes):
        data = text
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("utf-8", "replace")
            found.problems.append("the input is not valid UTF-8; undecodable bytes were replaced")
    if len(text) > MAX_INPUT:
        text = text[:MAX_INPUT]
        found.problems.append(f"the input is longer than {MAX_INPUT} characters; only the start was read")
    if "\x00" in text:
        text = text.replace("\x00", "")
        found.problems.append("the input contains NUL characters")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def parse_reply(text: str | bytes, *, strict: bool = False) -> Reply:
    """Parse an SMTP reply, a DSN ``Diagnostic-Code`` field or an MTA log fragment into a :class:`Reply`.

    Lenient by default: never raises, reports what looked wrong in ``Reply.warnings``. With ``strict=True``
    raises :class:`ParseError` listing every problem (informational notes do not count as problems).
    """
    if not isinstance(text, str | bytes):
        raise TypeError(f"parse_reply() takes str or bytes, not {type(text).__name__}")
    found = _Found()
    source = _normalise_input(text, found)
    lower = source.lower()
    body, marked = _body(source, lower)
    if not _parse_lines(body, found, plain=not marked):
        _search_anywhere(body, found)
    _unfold_inline(found)
    _enhanced_in_text(found, body)
    _check(found)
    stage = _find_stage(source, lower)
    host, ip = _find_host(source, lower)
    if strict and found.problems:
        raise ParseError(found.problems, source)
    if found.basic:
        reply_class = ReplyClass.from_digit(found.basic[0])
    elif found.enhanced:
        reply_class = ReplyClass.from_digit(found.enhanced[0])
    else:
        reply_class = None
    return Reply(
        basic=found.basic,
        enhanced=found.enhanced,
        reply_class=reply_class,
        text=tuple(found.lines),
        remote_host=host,
        remote_ip=ip,
        stage=stage,
        warnings=tuple(found.problems + found.notes),
        raw=source,
    )
