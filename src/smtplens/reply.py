"""parse_reply: find the reply code, enhanced status code, text, remote host and stage in any reply text.

Pure and total: in lenient mode it never raises, whatever the input; strict mode raises one ParseError that
lists every problem found.

Speed (the classifier parses every reply it classifies): the common shape, one ``CODE SP text`` line, takes a
fast path that gives the same result as the general parser. Elsewhere a regular expression that sre would try at
every position of the text (one that opens with a look-behind or an optional part, or is case-insensitive) is
guarded by a cheap test of something each of its matches contains, or started where its first match can begin.
"""

from __future__ import annotations

import re

from smtplens._accel import install as install_accelerator
from smtplens._accel import is_compiled
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
# The look-behind follows the code's first digit ("[2-5](?<!…[2-5])" is "(?<!…)[2-5]"): a pattern that opens with a
# character set is scanned for quickly by sre, one that opens with a look-behind is tried at every position.
_CODE_WITH_ENH = re.compile(rf"(?P<code>[2-5](?<![\w.:/-][2-5])\d\d)[ \t-]+['\"]?[#(\[]?(?P<enh>{_ENH})[)\]]?(?![\w.])")
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
_MARKER_WORDS = ("said:", "diagnostic-code:", "<<<", "reply:", "error from remote", "]:")  # one in each match
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


# Each match of _CODE_WITH_ENH, _SEARCH_CODE and _ANY_ENH holds a digit 2 to 5 that no word character or dot
# precedes, where its code or enhanced code begins. One scan for those digits (sre finds a pattern that opens
# with a character set quickly) leaves few places to try the patterns at; most digits of IP addresses and ids
# are left out by the look-behind.
_CODE_STARTS = re.compile(r"[2-5](?<![\w.][2-5])")
_CLASS_ENH_CORE = {d: re.compile(rf"{d}\.\d{{1,3}}\.\d") for d in "245"}  # in an enhanced code of one class


def _scan_start(text: str, lower: str, word: str, back: int = 0) -> int:
    """Where to start searching ``text`` for a case-insensitive pattern each of whose matches holds ``word`` at
    most ``back`` characters after its start: no match begins earlier. -1 when no match can exist.

    Exact only where ``lower`` is ``text`` lower-cased character for character, that is for ASCII text;
    otherwise 0 (search everything)."""
    if not text.isascii():
        return 0
    at = lower.find(word)
    return -1 if at < 0 else max(at - back, 0)


def _in_reply_to_start(text: str, lower: str) -> int:
    """:func:`_scan_start` for _IN_REPLY_TO, whose matches may open with any run of white space and a "("."""
    at = _scan_start(text, lower, "in reply to")
    while at > 0 and (lower[at - 1].isspace() or lower[at - 1] == "("):
        at -= 1
    return at


def _search_from(pattern: re.Pattern[str], text: str, start: int) -> re.Match[str] | None:
    """``pattern.search(text)`` when no match can begin before ``start`` (look-behinds still see the text before
    it; a ``start`` of -1 says there is no match)."""
    return None if start < 0 else pattern.search(text, start)


_Found = tuple[str | None, str | None, list[str]]  # basic code, enhanced code, text lines


# Signs: which guard words a text may hold, as bits, found in one pass (the compiled build only).
# Each guard above and below (``"reply to" in lower`` …) is a scan of the whole text; a plain reply meets a dozen.
# Compiled, one loop over the lower-cased text looks up each pair of neighbouring characters in a table of the
# pairs named here and sets the bits of the words the pair belongs to: a word whose pair is absent is absent, so
# its guard is skipped. A bit may be set without its word (the pair occurs elsewhere); the guard then decides, as
# before. Interpreted, the loop would cost more than the scans it saves: there every bit is set (_ALL_SIGNS).
# The pair of each word is the one found in the fewest texts of the benchmark stream (bench/speed_classify.py).
_SIGN_PAIRS = {  # guard word -> characters of it that the table looks for (one character: anywhere)
    "reply to": "ep",
    "after ": "ft",
    "error": "rr",
    ">>>": ">>",
    "talk to me": "lk",
    "while connecting": "wh",
    "greeting": "gr",
    "banner": "ba",
    "[": "[",
    "remote-mta": "-m",
    "talking to": "lk",
    ":": ":",
    "<<<": "<<",
    "said:": "d:",
    "diagnostic-code:": "c-",
    "reply:": "y:",
    "error from remote": "fr",
    "]:": "]:",
}
_SIGN = {word: 1 << bit for bit, word in enumerate(_SIGN_PAIRS)}
_ALL_SIGNS = -1
_S_REPLY_TO, _S_BRACKET, _S_REMOTE_MTA, _S_TALKING = (
    _SIGN["reply to"],
    _SIGN["["],
    _SIGN["remote-mta"],
    _SIGN["talking to"],
)
_S_AFTER_ERROR = _SIGN["after "] | _SIGN["error"]
_S_SENDMAIL = _SIGN[">>>"]
_S_GREETING = _SIGN["talk to me"] | _SIGN["while connecting"] | _SIGN["greeting"] | _SIGN["banner"]
_S_MARKER_ANY = _SIGN[":"] | _SIGN["<<<"]


def _sign_table() -> tuple[bytes, tuple[int, ...]]:
    """The pair table of :func:`_sign_scan`: for the pair (previous character, character), both ASCII, at
    ``128 * previous + character``, the index of its bits in the second value (0: none)."""
    cells: dict[int, int] = {}
    for word, pair in _SIGN_PAIRS.items():
        if pair not in word or not pair.isascii() or not 0 < len(pair) <= 2:
            raise ValueError(f"the sign of {word!r} is not one or two of its ASCII characters: {pair!r}")
        places = [128 * ord(pair[0]) + ord(pair[1])] if len(pair) == 2 else [128 * p + ord(pair) for p in range(128)]
        for cell in places:
            cells[cell] = cells.get(cell, 0) | _SIGN[word]
    masks = [0, *sorted(set(cells.values()))]
    table = bytearray(128 * 128)
    for cell, mask in cells.items():
        table[cell] = masks.index(mask)
    return bytes(table), tuple(masks)


_SIGN_TABLE, _SIGN_MASKS = _sign_table()


def _sign_scan(lower: str) -> int:
    """The bits of the guard words that ``lower`` (ASCII, lower-cased) may hold: one pass over its characters."""
    table = _SIGN_TABLE
    signs = 0
    prev = 0
    for ch in lower:
        code = ord(ch)
        cell = table[128 * prev + code]
        if cell:
            signs |= _SIGN_MASKS[cell]
        prev = code
    return signs


def _signs(lower: str) -> int:
    """:func:`_sign_scan` where it pays (compiled, ASCII text); else every bit (each guard then decides)."""
    return _sign_scan(lower) if _COMPILED and lower.isascii() else _ALL_SIGNS


def _stage_from(cmd: str) -> Stage | None:
    lower = cmd.lower()
    # A key of _COMMANDS is its own normal form (single spaces): most commands are found without normalising.
    stage = _COMMANDS.get(lower)
    return stage if stage is not None else _COMMANDS.get(" ".join(lower.split()))


def _find_stage(text: str, lower: str, signs: int) -> Stage | None:
    # Cheap substring guards first: most replies carry no stage at all.
    if signs & _S_REPLY_TO and "reply to" in lower:
        m = _search_from(_IN_REPLY_TO, text, _in_reply_to_start(text, lower))
        stage = _stage_from(m.group("cmd")) if m else None
        if stage is not None:
            return stage
    if signs & _S_AFTER_ERROR == _S_AFTER_ERROR and "after " in lower and "error" in lower:
        m = _search_from(_AFTER_CMD, text, _scan_start(text, lower, "error", len("smtp ")))
        stage = _stage_from(m.group("cmd")) if m else None
        if stage is not None:
            return stage
    if signs & _S_SENDMAIL and ">>>" in text:
        last = None
        for m in _SENDMAIL_CMD.finditer(text):
            last = m
        if last is not None:
            return _stage_from(last.group("cmd"))
    if (
        signs & _S_GREETING
        and ("talk to me" in lower or "while connecting" in lower or "greeting" in lower or "banner" in lower)
        and _holds_any(lower, _GREETING_PHRASES)
    ):
        return Stage.CONNECT
    return None


def _holds_any(text: str, words: tuple[str, ...]) -> bool:
    """Whether one of ``words`` is in ``text``: a function of its own, called only where a sign says so, because
    compiled, a generator's closure is made on every call of the function that holds it."""
    return any(word in text for word in words)


def _find_host(text: str, lower: str, signs: int) -> tuple[str | None, str | None]:
    last = text.rfind("[") if signs & _S_BRACKET else -1
    if last >= 0:
        for word in _HOST_WORDS:
            at = lower.find(word)
            while 0 <= at < last - len(word):  # a match has a host name, then a "[", after the word
                m = _HOST_AT.match(text, at + len(word))
                if m and (at == 0 or word[0] == " " or not lower[at - 1].isalnum()):
                    return m.group("host").rstrip("."), m.group("ip")
                at = lower.find(word, at + 1)
    if signs & _S_REMOTE_MTA and "remote-mta" in lower:
        m = _search_from(_REMOTE_MTA, text, _scan_start(text, lower, "remote-mta:"))
        if m:
            return m.group("host").rstrip("."), None
    if signs & _S_TALKING and "talking to" in lower:
        m = _search_from(_TALKING, text, _scan_start(text, lower, "while talking to "))
        if m:
            return m.group("host").rstrip("."), None
    return None, None


def _body(text: str, lower: str, signs: int) -> tuple[str, bool]:
    """The part of ``text`` that holds the reply, and whether a log/DSN marker introduced it."""
    m = None
    if not _LINE.match(text):
        start = _markers_start(text, lower, signs)
        if start >= 0:
            m = _MARKERS.search(text, start)
    offset = m.end() if m else 0
    body = text[offset:]
    if signs & _S_REPLY_TO and "reply to" in lower:
        body = _strip_in_reply_to(body)
    body = body.strip()
    if m is not None:  # a log wrapper such as Postfix's "status=bounced (host … said: …)" leaves a ")"
        while body.endswith(")") and body.count(")") > body.count("("):
            body = body[:-1].rstrip()
    return body, m is not None


def _markers_start(text: str, lower: str, signs: int) -> int:
    """Where to start searching for _MARKERS (see :func:`_scan_start`): the earliest place where the first
    occurrence of one of _MARKER_WORDS can open a match; -1 when none occurs."""
    # every marker holds one of them ("error from … after …:")
    if not signs & _S_MARKER_ANY or (":" not in lower and "<<<" not in lower):
        return -1
    start = -1
    for word in _MARKER_WORDS:
        at = lower.find(word) if signs & _SIGN[word] else -1
        if at < 0:
            continue
        if not text.isascii():
            return 0
        if word == "said:" and lower.endswith("remote host ", 0, at):
            at -= len("remote host ")
        elif word == "]:":  # " [192.0.2.1]:" opens with the blank before the last "[" (an IP has none)
            at = max(lower.rfind("[", 0, at) - 1, 0)
        if start < 0 or at < start:
            start = at
    return start


def _strip_in_reply_to(body: str) -> str:
    """``_IN_REPLY_TO.sub(" ", body)``: the pattern has no anchor nor look-around, so the text before the first
    place a match can begin is left as it is without searching it."""
    start = _in_reply_to_start(body, body.lower())
    if start < 0:
        return body
    return body[:start] + _IN_REPLY_TO.sub(" ", body[start:])


def _split_rest(rest: str) -> tuple[str | None, str]:
    m = _LEADING_ENH.match(rest)
    if m:
        return m.group("enh"), rest[m.end() :].strip(" \t:")
    return None, rest.strip().lstrip(":").strip()


def _parse_lines(body: str, problems: list[str], notes: list[str], plain: bool) -> _Found | None:
    """Parse ``CODE[- ]text`` lines at the start of ``body``; None when the body has none."""
    if "\n" not in body:  # one line, the common case: what the loop below does for it, written out
        m = _LINE.match(body)
        if m is None:
            return None
        if plain and _octets(body) + 2 > MAX_REPLY_LINE:
            problems.append(f"line 1 is longer than {MAX_REPLY_LINE} octets (RFC 5321 section 4.5.3.1.5)")
        enh, rest = _split_rest(m.group("rest"))
        return m.group("code"), enh, [rest]
    raw_lines = body.split("\n")
    first = _LINE.match(raw_lines[0])
    if not first:
        return None
    code = first.group("code")
    enhanced: str | None = None
    lines: list[str] = []
    finished = False
    for number, raw in enumerate(raw_lines, start=1):
        m = first if number == 1 else _LINE.match(raw)
        if m is None or finished:
            if raw.strip():
                if finished or not lines:
                    problems.append(f"line {number} follows the final line of the reply")
                    lines.append(raw.strip())
                else:  # a folded continuation line
                    lines[-1] = f"{lines[-1]} {raw.strip()}".strip()
            continue
        if plain and _octets(raw) + 2 > MAX_REPLY_LINE:
            problems.append(f"line {number} is longer than {MAX_REPLY_LINE} octets (RFC 5321 section 4.5.3.1.5)")
        if m.group("code") != code:
            problems.append(f"line {number} has code {m.group('code')}, the reply began with {code}")
        enh, rest = _split_rest(m.group("rest"))
        if enh:
            if enhanced is None:
                enhanced = enh
            elif enh != enhanced:
                notes.append(f"line {number} has enhanced code {enh}, the first line had {enhanced}")
        lines.append(rest)
        if m.group("sep") != "-":
            finished = True
    if not finished and len(lines) > 1 and plain:
        problems.append("the multi-line reply has no final line (CODE SP text)")
    return code, enhanced, lines


def _octets(line: str) -> int:
    """The length of ``line`` in UTF-8 (encoded only when it is not ASCII)."""
    return len(line) if line.isascii() else len(line.encode("utf-8", "replace"))


def _unfold_inline(basic: str | None, enhanced: str | None, lines: list[str]) -> list[str]:
    """Split replies whose lines were joined by a log into one line (``550-5.1.1 a 550-5.1.1 b 550 5.1.1 c``)."""
    if not basic or len(lines) != 1:
        return lines
    line = lines[0]
    if f"{basic}-" not in line and (not enhanced or f" {basic} {enhanced}" not in line):
        return lines
    parts = [p.strip() for p in _split_at_codes(line, _line_prefix(basic, enhanced))]
    if len(parts) > 1:
        return [p for p in parts if p] or [""]
    return lines


_PREFIXES: dict[tuple[str, str | None], re.Pattern[str]] = {}
_PREFIXES_SIZE = 1024  # code pairs remembered; emptied when full (a stream has a few hundred)


def _line_prefix(basic: str, enhanced: str | None) -> re.Pattern[str]:
    """What opens a joined line of a reply with these codes (``550-5.7.1 ``, ``550-``, ``550 5.7.1 ``), compiled
    once per pair of codes. It opens with the code itself, a literal that sre finds quickly; the white space that
    must precede it is checked by :func:`_split_at_codes`."""
    key = (basic, enhanced)
    pattern = _PREFIXES.get(key)
    if pattern is None:
        enh = re.escape(enhanced) + r"\s" if enhanced else ""
        pattern = re.compile(rf"{basic}(?:-[#(\[]?{enh}|-| {enh})" if enh else rf"{basic}-")
        if len(_PREFIXES) >= _PREFIXES_SIZE:
            _PREFIXES.clear()
        _PREFIXES[key] = pattern
    return pattern


def _split_at_codes(line: str, prefix: re.Pattern[str]) -> list[str]:
    r"""``re.split(r"\s+" + prefix.pattern, line)``: the pieces between the places where white space, then a
    match of ``prefix``, stand. A pattern that opens with ``\s+`` is tried at every blank of the line; this
    searches for the prefix and looks back for the blanks (the run of blanks right before it, from the end of the
    last split on)."""
    pieces = []
    last = pos = 0
    m = prefix.search(line, 1)
    while m is not None:
        at = blanks = m.start()
        while blanks > last and line[blanks - 1].isspace():
            blanks -= 1
        if blanks < at:
            pieces.append(line[last:blanks])
            last = pos = m.end()
        else:
            pos = at + 1
        m = prefix.search(line, pos)
    pieces.append(line[last:])
    return pieces


def _search_anywhere(body: str, problems: list[str]) -> _Found:
    """A reply code, an enhanced code or both anywhere in ``body``, and the text after them."""
    starts = _code_starts(body)
    m = _first_match(_CODE_WITH_ENH, body, starts, 0)  # _CODE_WITH_ENH.search(body)
    if m:
        rest = body[m.end() :].strip(" \t:'\"")
        return m.group("code"), m.group("enh"), _text_lines(rest)
    m = _search_code(body, starts)
    if m:
        enh, rest = _split_rest(body[m.end() :].lstrip(" \t-"))
        return m.group("code"), enh, _text_lines(rest)
    m = _LEADING_ENH.match(body) or _first_match(_ANY_ENH, body, starts, 1)
    if m:
        rest = body[m.end() :] if m.start() == 0 else body
        return None, m.group("enh"), _text_lines(rest)
    problems.append("no reply code or enhanced status code found")
    return None, None, _text_lines(body)


def _text_lines(text: str) -> list[str]:
    if "\n" not in text:  # the common case, without splitting
        line = text.strip()
        return [line] if line else []
    return [line.strip() for line in text.split("\n") if line.strip()]


def _code_starts(text: str) -> list[int]:
    """Where the matches of _CODE_WITH_ENH, _SEARCH_CODE and _ANY_ENH can have their code (_CODE_STARTS)."""
    if _COMPILED:
        return _code_starts_scan(text)
    starts = []
    m = _CODE_STARTS.search(text)  # most texts have none or one: cheaper than finditer
    while m is not None:
        starts.append(m.start())
        m = _CODE_STARTS.search(text, m.end())
    return starts


def _code_starts_scan(text: str) -> list[int]:
    """The places of _CODE_STARTS by one loop over the characters (compiled, a C loop): a digit 2 to 5 that is
    first or follows neither a word character (``\\w``: alphanumeric or "_", as sre reads it) nor a dot."""
    starts = []
    prev = " "  # the first character follows nothing
    for at, ch in enumerate(text):
        if "2" <= ch <= "5" and not (prev.isalnum() or prev in "_."):
            starts.append(at)
        prev = ch
    return starts


def _first_match(
    pattern: re.Pattern[str], text: str, starts: list[int], back: int, pos: int = 0
) -> re.Match[str] | None:
    """``pattern.search(text, pos)`` for a pattern each of whose matches holds one of ``starts`` (ascending) at
    most ``back`` characters after its beginning: only the places so near one are tried, in order."""
    tried = pos  # every place before this one was tried
    for at in starts:
        for start in range(max(tried, at - back), at + 1):
            m = pattern.match(text, start)
            if m:
                return m
        tried = max(tried, at + 1)
    return None


def _search_code(body: str, starts: list[int]) -> re.Match[str] | None:
    """``_SEARCH_CODE.search(body)``: a match opens with a line start, a punctuation mark and blanks, or " - ",
    right before its code, so it begins on one of ``starts``, three characters before, or one before the blanks
    that precede it."""
    tried = 0  # every place before this one was tried
    for code_at in starts:
        blanks = code_at
        while blanks > 0 and body[blanks - 1] in " \t":
            blanks -= 1
        for start in range(max(tried, min(blanks - 1, code_at - 3)), code_at + 1):
            m = _SEARCH_CODE.match(body, start)
            if m:
                return m
        tried = code_at + 1
    return None


def _enhanced_in_text(basic: str | None, enhanced: str | None, body: str) -> str | None:
    """``550 cuda_nsu 5.1.1 …``, ``… not allowed - 5.7.1``, ``… (#5.7.1)``: an enhanced code elsewhere."""
    if not basic or enhanced:
        return enhanced
    core = _CLASS_ENH_CORE.get(basic[0])
    if core is None or core.search(body) is None:  # no enhanced code of the basic code's class
        return None
    starts = _code_starts(body)
    m = _first_match(_ANY_ENH, body, starts, 1)
    while m is not None:  # _ANY_ENH.finditer(body)
        if m.group("enh")[0] == basic[0]:
            return m.group("enh")
        m = _first_match(_ANY_ENH, body, starts, 1, m.end())
    return None


def _check(basic: str | None, enhanced: str | None, problems: list[str], notes: list[str]) -> None:
    found = _code_findings(basic, enhanced)
    if found is not _NO_FINDINGS:
        problems += found[0]
        notes += found[1]
    if not basic and not enhanced and not problems:
        problems.append("no reply code found")


_Findings = tuple[tuple[str, ...], tuple[str, ...]]  # problems, notes
_NO_FINDINGS: _Findings = ((), ())
_FINDINGS: dict[tuple[str | None, str | None], _Findings] = {}
_FINDINGS_SIZE = 4096  # pairs remembered; emptied when full (a stream has a few hundred)


def _code_findings(basic: str | None, enhanced: str | None) -> _Findings:
    """What is wrong with, or worth noting about, a pair of codes: a pure function of the pair, remembered
    (the same few pairs come back in every stream of replies)."""
    key = (basic, enhanced)
    found = _FINDINGS.get(key)
    if found is None:
        found = _judge_codes(basic, enhanced)
        if len(_FINDINGS) >= _FINDINGS_SIZE:
            _FINDINGS.clear()
        _FINDINGS[key] = found
    return found


def _judge_codes(basic: str | None, enhanced: str | None) -> _Findings:
    facts = knowledge().facts
    problems: list[str] = []
    notes: list[str] = []
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
    return (tuple(problems), tuple(notes)) if problems or notes else _NO_FINDINGS


def _normalise_input(text: str | bytes, problems: list[str]) -> str:
    if isinstance(text, bytes):
        data = text
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("utf-8", "replace")
            problems.append("the input is not valid UTF-8; undecodable bytes were replaced")
    if len(text) > MAX_INPUT:
        text = text[:MAX_INPUT]
        problems.append(f"the input is longer than {MAX_INPUT} characters; only the start was read")
    if "\x00" in text:
        text = text.replace("\x00", "")
        problems.append("the input contains NUL characters")
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def parse_reply(text: str | bytes, *, strict: bool = False) -> Reply:
    """Parse an SMTP reply, a DSN ``Diagnostic-Code`` field or an MTA log fragment into a :class:`Reply`.

    Lenient by default: never raises, reports what looked wrong in ``Reply.warnings``. With ``strict=True``
    raises :class:`ParseError` listing every problem (informational notes do not count as problems).
    """
    if type(text) is str and _is_plain_line(text):
        simple = _SIMPLE.match(text)
        if simple is not None:
            lower = text.lower()
            signs = _signs(lower)
            if not (signs & _S_REPLY_TO and "reply to" in lower):
                return _parse_simple(text, lower, signs & ~_S_REPLY_TO, simple, strict)
    return _parse_general(text, strict)


def _parse_general(text: str | bytes, strict: bool = False) -> Reply:
    """Every shape: multi-line replies, DSN fields, log fragments, bytes, garbage."""
    if not isinstance(text, (str, bytes)):  # a tuple is checked faster than a union
        raise TypeError(f"parse_reply() takes str or bytes, not {type(text).__name__}")
    problems: list[str] = []  # make strict mode fail
    notes: list[str] = []  # informational only
    source = _normalise_input(text, problems)
    lower = source.lower()
    signs = _signs(lower)
    body, marked = _body(source, lower, signs)
    if body.startswith("220-"):
        body = _after_banner(body)
    basic, enhanced, lines = _parse_lines(body, problems, notes, not marked) or _search_anywhere(body, problems)
    return _finish(source, lower, signs, body, basic, enhanced, lines, problems, notes, strict)


# A failure reply after a greeting line: a code of class 4 or 5 after white space, then a blank, "-" or the end.
_FAILURE_AFTER_BANNER = re.compile(r"\s(?P<reply>[45]\d\d(?:[ \t-]|$))", re.MULTILINE)


def _after_banner(body: str) -> str:
    """The reply that follows a greeting line caught with it: some MTAs report the first line of the server's
    banner together with the refusal that came after it (``220-laposte 421 4.2.1 Service refuse …``, or a
    ``220-`` line above a ``421`` line). The banner is not the answer that failed; the reply after it is.
    ``body`` starts with "220-"; it is returned unchanged when no failure reply follows."""
    m = _FAILURE_AFTER_BANNER.search(body, 4)
    return body[m.start("reply") :] if m else body


def _is_plain_line(text: str) -> bool:
    """One short ASCII line without NUL: the shape most replies have, parsed by the fast path."""
    return len(text) <= 500 and text.isascii() and "\n" not in text and "\r" not in text and "\x00" not in text


def _parse_simple(text: str, lower: str, signs: int, m: re.Match[str], strict: bool) -> Reply:
    """``CODE SP [enhanced] text`` on one line: the same result as the general path (:func:`_finish` written
    out for one line of a plain reply), with less work. ``signs``: see :func:`_signs` (the caller found no
    "reply to")."""
    basic, enhanced = m.group("code", "enh")
    body = text.strip()
    if enhanced:
        rest = text[m.end("lead") :].strip(" \t:")
        # both forms of a joined line hold the code again: one scan for it first (most lines have none)
        if basic in rest and (basic + "-" in rest or f" {basic} {enhanced}" in rest):
            lines = tuple(_unfold_inline(basic, enhanced, [rest]))
        else:
            lines = (rest,)
    else:
        rest = m.group("rest").strip().lstrip(":").strip()
        lines = tuple(_unfold_inline(basic, enhanced, [rest])) if basic in rest and basic + "-" in rest else (rest,)
        enhanced = _enhanced_in_text(basic, enhanced, body)
    problems, notes = _code_findings(basic, enhanced)
    stage = _find_stage(text, lower, signs)
    host, ip = _find_host(text, lower, signs)
    if strict and problems:
        raise ParseError(list(problems), text)
    reply_class = _CLASS_BY_DIGIT.get(basic[0])
    return _new_reply(Reply, (basic, enhanced, reply_class, lines, host, ip, stage, problems + notes, text))


def _finish(  # noqa: PLR0917 (see the docstring)
    source: str,
    lower: str,
    signs: int,
    body: str,
    basic: str | None,
    enhanced: str | None,
    lines: list[str],
    problems: list[str],
    notes: list[str],
    strict: bool,
) -> Reply:
    """The parts every shape shares: inline continuation lines, an enhanced code later in the text, the checks
    of the codes, stage and host. Positional parameters: a call with keywords costs more, for every reply."""
    if (
        basic
        and len(lines) == 1
        and basic in lines[0]  # both forms of a joined line hold the code again (most lines have none)
        and (basic + "-" in lines[0] or (enhanced and f" {basic} {enhanced}" in lines[0]))
    ):
        lines = _unfold_inline(basic, enhanced, lines)
    if basic and not enhanced:
        enhanced = _enhanced_in_text(basic, enhanced, body)
    _check(basic, enhanced, problems, notes)
    stage = _find_stage(source, lower, signs)
    host, ip = _find_host(source, lower, signs)
    if strict and problems:
        raise ParseError(problems, source)
    code = basic or enhanced
    warnings = tuple(problems + notes) if problems or notes else ()
    reply_class = _CLASS_BY_DIGIT.get(code[0]) if code else None
    return _new_reply(Reply, (basic, enhanced, reply_class, tuple(lines), host, ip, stage, warnings, source))


_CLASS_BY_DIGIT = {d: c for d in "2345" if (c := ReplyClass.from_digit(d)) is not None}
_new_reply = tuple.__new__  # Reply(...) without the Python-level __new__ of a NamedTuple (all nine fields given)


# The compiled accelerator (smtplens._accel): a Cython build of this very file replaces these entry points when it
# was built from this file as it is now; the interpreted ones stay reachable (tests compare both).
_pure_parse_reply = parse_reply
_COMPILED = is_compiled(_judge_codes)  # whether this is the compiled build (set there, where it is imported)
install_accelerator("reply", globals(), ("parse_reply",))
