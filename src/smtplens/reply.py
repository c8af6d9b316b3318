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
_SIMPLE = re.compile(
    rf"(?P<code>[2-5]\d\d) [ \t]*(?P<lead>[#(\[]?(?P<enh>{_ENH})[)\]]?(?=[\s:;,]|$))?(?P<rest>.*)", re.S
)
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
    if "reply to" in lower:
        m = _IN_REPLY_TO.search(text)
        stage = _stage_from(m.group("cmd")) if m else None
        if stage is not None:
            return stage
    if "after " in lower and "error" in lower:
        m = _AFTER_CMD.search(text)
        stage = _stage_from(m.group("cmd")) if m else None
        if stage is not None:
            return stage
    if ">>>" in text:
        last = None
        for m in _SENDMAIL_CMD.finditer(text):
            last = m
        if last is not None:
            return _stage_from(last.group("cmd"))
    if ("talk to me" in lower or "while connecting" in lower or "greeting" in lower or "banner" in lower) and any(
        phrase in lower for phrase in _GREETING_PHRASES
    ):
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
    if "remote-mta" in lower:
        m = _REMOTE_MTA.search(text)
        if m:
            return m.group("host").rstrip("."), None
    if "talking to" in lower:
        m = _TALKING.search(text)
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


def _unfold_inline(basic: str | None, enhanced: str | None, lines: list[str]) -> list[str]:
    """Split replies whose lines were joined by a log into one line (``550-5.1.1 a 550-5.1.1 b 550 5.1.1 c``)."""
    if not basic or len(lines) != 1:
        return lines
    line = lines[0]
    if f"{basic}-" not in line and (not enhanced or f" {basic} {enhanced}" not in line):
        return lines
    enh = re.escape(enhanced) + r"\s" if enhanced else ""
    splitter = re.compile(rf"\s+{basic}(?:-[#(\[]?{enh}|-| {enh})" if enh else rf"\s+{basic}-")
    parts = [p.strip() for p in splitter.split(line)]
    if len(parts) > 1:
        return [p for p in parts if p] or [""]
    return lines


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


def _enhanced_in_text(basic: str | None, enhanced: str | None, body: str) -> str | None:
    """``550 cuda_nsu 5.1.1 …``, ``… not allowed - 5.7.1``, ``… (#5.7.1)``: an enhanced code elsewhere."""
    if not basic or enhanced:
        return enhanced
    for m in _ANY_ENH.finditer(body):
        if m.group("enh")[0] == basic[0]:
            return m.group("enh")
    return None


def _check(basic: str | None, enhanced: str | None, problems: list[str], notes: list[str]) -> None:
    facts = knowledge().facts
    if basic and basic not in facts:
        problems.append(f"{basic} is not a registered SMTP reply code")
    if enhanced:
        if basic and enhanced[0] != basic[0]:
            b = ReplyClass.from_digit(basic[0])
            e = ReplyClass.from_digit(enhanced[0])
            problems.append(
                f"the basic code {basic} is {b.value if b else 'unknown'} but the enhanced code "
                f"{enhanced} is {e.value if e else 'unknown'}; clients act on the basic code"
            )
        if "X" + enhanced[1:] not in facts and canonical_key(enhanced) not in facts:
            notes.append(f"{enhanced} is not in the IANA registry (a vendor-specific detail code)")
    if not basic and not enhanced and not problems:
        problems.append("no reply code found")


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
    if type(text) is str and _is_plain_line(text):
        simple = _SIMPLE.match(text)
        if simple is not None:
            lower = text.lower()
            if "reply to" not in lower:
                return _parse_simple(text, lower, simple, strict)
    return _parse_general(text, strict)


def _parse_general(text: str | bytes, strict: bool = False) -> Reply:
    """Every shape: multi-line replies, DSN fields, log fragments, bytes, garbage."""
    if not isinstance(text, str | bytes):
        raise TypeError(f"parse_reply() takes str or bytes, not {type(text).__name__}")
    found = _Found()
    source = _normalise_input(text, found)
    lower = source.lower()
    body, marked = _body(source, lower)
    if not _parse_lines(body, found, plain=not marked):
        _search_anywhere(body, found)
    return _finish(
        source,
        lower,
        body,
        basic=found.basic,
        enhanced=found.enhanced,
        lines=found.lines,
        problems=found.problems,
        notes=found.notes,
        strict=strict,
    )


def _is_plain_line(text: str) -> bool:
    """One short ASCII line without NUL: the shape most replies have, parsed by the fast path."""
    return len(text) <= 500 and text.isascii() and "\n" not in text and "\r" not in text and "\x00" not in text


def _parse_simple(text: str, lower: str, m: re.Match[str], strict: bool) -> Reply:
    """``CODE SP [enhanced] text`` on one line: the same result as the general path, with less work."""
    enhanced = m.group("enh")
    rest = text[m.end("lead") :].strip(" \t:") if enhanced else m.group("rest").strip().lstrip(":").strip()
    return _finish(
        text,
        lower,
        text.strip(),
        basic=m.group("code"),
        enhanced=enhanced,
        lines=[rest],
        problems=[],
        notes=[],
        strict=strict,
    )


def _finish(
    source: str,
    lower: str,
    body: str,
    *,
    basic: str | None,
    enhanced: str | None,
    lines: list[str],
    problems: list[str],
    notes: list[str],
    strict: bool,
) -> Reply:
    lines = _unfold_inline(basic, enhanced, lines)
    enhanced = _enhanced_in_text(basic, enhanced, body)
    _check(basic, enhanced, problems, notes)
    stage = _find_stage(source, lower)
    host, ip = _find_host(source, lower)
    if strict and problems:
        raise ParseError(problems, source)
    code = basic or enhanced
    return Reply(
        basic,
        enhanced,
        _CLASS_BY_DIGIT.get(code[0]) if code else None,
        tuple(lines),
        host,
        ip,
        stage,
        tuple(problems + notes) if problems or notes else (),
        source,
    )


_CLASS_BY_DIGIT = {d: c for d in "2345" if (c := ReplyClass.from_digit(d)) is not None}
