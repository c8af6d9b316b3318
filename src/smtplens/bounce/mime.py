"""A lenient, fast reader of mail structure: header fields, MIME parts, transfer encodings, charsets.

Total: :func:`parse_mail` never raises; broken MIME gives what can be read. Line endings are normalised first
(CRLF, CR and LF all become LF). The mail is held as a ``latin-1`` string, which maps every byte to one
character and back, so the structure is found with fast string operations and a part's bytes are recovered
exactly when its content is decoded (transfer encoding first, then the charset).

The standard library's ``email`` package supplies the pieces whose rules are intricate: RFC 2047 encoded words
(:func:`email.header.decode_header`), RFC 2231 parameters (:func:`email.utils.decode_params`) and address
parsing (:func:`email.utils.getaddresses`). Splitting the structure itself is done here: the package's feed
parser reads line by line in Python and costs several times the budget of a whole bounce (the speed target of
issue #4 is five times Sisimai's ~1,800 mails/s on one core).
"""

from __future__ import annotations

import binascii
import codecs
import html
import itertools
import re
from collections.abc import Iterator
from email.errors import HeaderParseError
from email.header import decode_header
from email.utils import collapse_rfc2231_value, decode_params, getaddresses

from smtplens._accel import install as install_accelerator
from smtplens._accel import is_compiled

__all__ = [
    "Headers",
    "LinePattern",
    "Mail",
    "Part",
    "addresses",
    "decode_bytes",
    "field_blocks",
    "field_lists",
    "first_address",
    "html_text",
    "parse_headers",
    "parse_mail",
    "split_headers",
]

MAX_DEPTH = 10  # nesting of multiparts and attached messages followed; deeper content stays one opaque part
MAX_PARTS = 500  # parts read in one mail; the rest is ignored
MAX_TEXT_PART = 4_000_000  # characters of one part's body decoded as text (Part.text); the rest is not read
MAX_HEADER_PART = 1_000_000  # characters of a text/rfc822-headers part read for the returned message's fields
MAX_ENCODED_MESSAGE = 16_000_000  # characters of a base64 or quoted-printable message/rfc822 part decoded
ORIGINAL_TYPES = frozenset({"message/rfc822", "message/global", "text/rfc822-headers", "message/global-headers"})
HEADERS_ONLY_TYPES = frozenset({"text/rfc822-headers", "message/global-headers"})

# RFC 5322 section 3.6.8: a field name is printable US-ASCII except the colon; the value may be folded.
# (Possessive quantifiers: no part of a match is ever given back, which spares the engine its backtracking
# records; the classes are disjoint from what follows them, so the matches are those of plain quantifiers.)
_FIELD_LINE = re.compile(r"^([!-9;-~]++)[ \t]*+:[ \t]*+([^\n]*+(?:\n[ \t][^\n]*+)*+)", re.M)
# The contiguous field lines at a position (each a field line and its continuation lines); ends at the first
# line that is neither, which is the blank separator line in a well-formed mail.
_HEADER_BLOCK = re.compile(r"(?:[!-9;-~]++[ \t]*+:[^\n]*+(?:\n[ \t][^\n]*+)*+(?:\n|\Z))*+")
_FOLD = re.compile(r"[ \t]*\n[ \t]*")
# The same replacement where no white space stands before a line break (nearly always): a pattern that begins
# with the line break is found by a fast scan; one that may begin with white space is tried at every position.
_FOLD_AFTER = re.compile(r"\n[ \t]*")
_PARAM = re.compile(r';\s*([^\s=;]+)\s*=\s*("[^"\\]*(?:\\.[^"\\]*)*"?|[^;]*)')
# HTML as a browser shows it (html_text): what is never shown (scripts, styles, the head, comments) left out; white
# space, line breaks included, is one space except in <pre>; <br> ends a line, so does a run of block edges, a
# paragraph's edges leave a blank line; table cells are apart; other tags are left out. Hidden parts and <pre>
# blocks are found by their ends, not by a pattern of the whole block, and tags only where a ">" follows: linear
# time on any input (a hostile body of unclosed tags included).
_HTML_HIDDEN = re.compile(r"<(script|style|head|title)\b|<!--", re.I)
_HTML_PRE = re.compile(r"<pre\b", re.I)
_HTML_LINE_TAG = re.compile(r"<(?:br|hr|/?(?:p|div|tr|li|ul|ol|h[1-6]|table|pre|blockquote|center))\b", re.I)
# a tag: a name, "/", "!" or "?" after the "<", up to the next ">" (only text before the last ">" is searched, so
# that no search reads to the end in vain: linear time); an address in angle brackets written unescaped, or a "<"
# before a blank or a digit, is text
_HTML_TAG = re.compile(r"<(?![^<>\s]*@[^<>\s]*>)(/?[A-Za-z][A-Za-z0-9]*|[!?/])[^>]*>")
# what a tag leaves in the text before white space is collapsed: marks that are not white space
_BREAK, _BLOCK_EDGE, _PARAGRAPH_EDGE = "\x00", "\x01", "\x02"
_HTML_BLOCKS: tuple[str, ...] = ("hr", "div", "tr", "li", "ul", "ol", "table", "blockquote", "center")
_HTML_BLOCKS += ("h1", "h2", "h3", "h4", "h5", "h6")
_TAG_MARKS = {
    "br": _BREAK,
    "p": _PARAGRAPH_EDGE,
    "/p": _PARAGRAPH_EDGE,
    "/td": " ",  # table cells are apart
    "/th": " ",
    **{name: _BLOCK_EDGE for block in _HTML_BLOCKS for name in (block, "/" + block)},
}  # (any other tag leaves nothing)
_HTML_EDGE_RUN = re.compile(r"\x01(?: ?\x01)*")  # block edges one after the other: one line end
_HTML_BLANK_LINES = re.compile(r"\n{3,}")
_HTML_TRAILING_SPACE = re.compile(r" +\n")
_BLANK_LINES = re.compile(r"\n[ \t]*\n")

# Names that mail software writes but Python's codec registry does not know, and supersets worth preferring.
_CHARSET_ALIASES = {
    "x-sjis": "cp932",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "windows-31j": "cp932",
    "iso-2022-jp": "iso2022_jp_ext",
    "iso-2022-jp-1": "iso2022_jp_ext",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "us-ascii": "utf-8",  # mislabelled 8-bit text is far more often UTF-8 than anything else
    "ascii": "utf-8",
    "iso-8859-1": "cp1252",  # the superset mail clients use (HTML5 does the same)
    "latin1": "cp1252",
    "unknown-8bit": "utf-8",
    "x-unknown": "utf-8",
    "x-user-defined": "utf-8",
}


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Bytes as text in ``charset``; an unknown or wrong charset falls back to UTF-8, then Windows-1252.

    Never raises. ISO-2022-JP is decoded with its extended variant, which also reads the JIS X 0212 and
    half-width katakana that Japanese mailers add.
    """
    if data.isascii():
        if b"\x1b" not in data:
            return data.decode("ascii")
        charset = charset or "iso-2022-jp"  # escape sequences: a 7-bit Japanese text without a label
    name = (charset or "utf-8").strip().strip('"').lower()
    name = _CHARSET_ALIASES.get(name, name)
    try:
        codecs.lookup(name)
    except (LookupError, ValueError):  # an unknown name, or one that is no name at all (a NUL in it)
        name = "utf-8"
    try:
        return data.decode(name)
    except UnicodeDecodeError:
        pass
    if name != "utf-8":
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        return data.decode(name, errors="replace")
    return data.decode("cp1252", errors="replace")


def _fix_8bit(value: str) -> str:
    """A header value held as latin-1 with raw 8-bit bytes (RFC 6532 UTF-8, or a legacy charset) as text."""
    if value.isascii():
        return value
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:
        return value
    return decode_bytes(raw)


def decode_words(value: str) -> str:
    """RFC 2047 encoded words (``=?ISO-2022-JP?B?…?=``) and raw 8-bit bytes decoded as far as they can be;
    never raises (a word the standard library cannot read is left as written)."""
    value = _fix_8bit(value)
    if "=?" not in value:
        return value
    try:
        chunks = decode_header(value)
    except (HeaderParseError, ValueError, LookupError):
        return value
    out = []
    for chunk, charset in chunks:
        out.append(decode_bytes(chunk, charset) if isinstance(chunk, bytes) else chunk)
    return "".join(out)


_SCAN = 6  # fields up to which get() scans instead of indexing


class Headers:
    """Header fields in their order; names compare case-insensitively, values are unfolded when read.

    Values are held as read (``latin-1`` text of the raw bytes); :meth:`text` decodes RFC 2047 words and 8-bit
    bytes for display. The index by name is built on first use: most fields of a mail are never read.
    """

    __slots__ = ("_fields", "_index")

    def __init__(self, fields: list[tuple[str, str]]) -> None:
        self._fields = fields  # (name as written, value as written, folded)
        self._index: dict[str, str] | None = None

    def _lookup(self) -> dict[str, str]:
        index = self._index
        if index is None:
            index = self._index = {name.lower(): value for name, value in reversed(self._fields)}
        return index

    def get(self, name: str) -> str | None:
        """The first field of that name (lower-case name), unfolded, or None."""
        index = self._index
        if index is None:
            fields = self._fields
            if len(fields) <= _SCAN:
                for n, v in fields:  # a part's few fields: scanning beats building an index
                    if len(n) == len(name) and n.lower() == name:  # (names are ASCII: lowering keeps the length)
                        return _unfold(v)
                return None
            index = self._index = {n.lower(): v for n, v in reversed(fields)}
        value = index.get(name)
        if value is None:
            return None
        if "\n" in value:
            # unfolding is idempotent: the unfolded value replaces the folded one for the next reader
            value = index[name] = _unfolded(value).rstrip()
            return value
        return value.rstrip()

    def get_all(self, name: str) -> list[str]:
        return [_unfold(v) for n, v in self._fields if n.lower() == name]

    def text(self, name: str) -> str | None:
        """The first field of that name, decoded for display."""
        value = self.get(name)
        return None if value is None else decode_words(value)

    def __contains__(self, name: object) -> bool:
        return name in self._lookup()

    def __len__(self) -> int:
        return len(self._fields)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        """``(lower-case name, unfolded value)`` of every field, in order."""
        return ((n.lower(), _unfold(v)) for n, v in self._fields)

    def __bool__(self) -> bool:
        return bool(self._fields)

    def __repr__(self) -> str:
        return f"Headers({self._fields!r})"


def _unfold(value: str) -> str:
    if "\n" in value:
        value = _unfolded(value)
    return value.rstrip()


def _unfolded(value: str) -> str:
    """Every line break of a folded value, with the white space around it, as one space (RFC 5322 2.2.3)."""
    if " \n" in value or "\t\n" in value:
        return _FOLD.sub(" ", value)
    return _FOLD_AFTER.sub(" ", value)


def split_headers(text: str, start: int = 0, *, mbox: bool = False, end: int | None = None) -> tuple[Headers, int]:
    """The header fields that begin at ``start`` (and end by ``end``, the end of ``text`` by default) and the index
    where the body begins.

    A blank line ends the fields; so does the first line that is neither a field nor a continuation (the
    lenient reading of a mail whose separator line is missing). With ``mbox``, a ``From `` line at the start is
    skipped.
    """
    stop = len(text) if end is None else end
    pos = start
    if mbox and text.startswith("From ", pos, stop):
        nl = text.find("\n", pos, stop)
        pos = stop if nl < 0 else nl + 1
    if _COMPILED:
        fields: list[tuple[str, str]] = []
        at = _header_fields(text, pos, stop, fields)[1]
    else:
        at = _block_end(text, pos, stop)
        fields = _FIELD_LINE.findall(text, pos, at) if at > pos else []
    if text.startswith("\n", at, stop):
        at += 1  # the blank line that separates the body
    return Headers(fields), at


def _header_fields(  # noqa: PLR0917 (a cdef function of the compiled build: no keyword-only arguments)
    text: str,
    pos: int,
    stop: int,
    fields: list[tuple[str, str]] | None,
    names: frozenset[str] | None = None,
    lenient: bool = False,
) -> tuple[int, int]:
    """The header block that ``_HEADER_BLOCK.match(text, pos, stop)`` finds, in one pass: how many field lines it
    holds and where it ends; into ``fields``, when given, what ``_FIELD_LINE.findall`` finds in it (with ``names``,
    only the fields of those lower-case names). With ``lenient``, a line that is not a field is passed over instead
    of ending the block: the fields are what ``_FIELD_LINE.findall(text, pos, stop)`` finds. The compiled build's
    way (its loops over a line's name and white space are C loops, a value is found by its line breaks);
    interpreted, the regular expressions cost less."""
    length = len(text)
    pos = min(max(pos, 0), length)  # as the regular expressions take their bounds
    stop = min(max(stop, 0), length)
    count = 0
    report = pos == 0 or text[pos - 1] == "\n"  # findall's "^" matches at pos only where a line begins
    line = pos
    while line < stop:
        name_end = line
        while name_end < stop:
            ch = text[name_end]
            if ch < "!" or ch > "~" or ch == ":":  # not in [!-9;-~]
                break
            name_end += 1
        colon = name_end
        while colon < stop and text[colon] in " \t":
            colon += 1
        if name_end == line or colon == stop or text[colon] != ":":
            if not lenient:
                break  # not a field: the block ends before this line
            next_line = text.find("\n", line, stop) + 1
            line = next_line if next_line > 0 else stop
            report = True
            continue
        value = colon + 1
        while value < stop and text[value] in " \t":
            value += 1
        end = text.find("\n", value, stop)
        while 0 <= end < stop - 1 and text[end + 1] in " \t":  # a continuation line
            end = text.find("\n", end + 1, stop)
        if end < 0:
            end = stop
        count += 1
        wanted = names is None or (name_end - line in _NAME_LENGTHS and text[line:name_end].lower() in names)
        if report and fields is not None and wanted:
            fields.append((text[line:name_end], text[value:end]))
        report = True
        line = end + 1 if end < stop else stop
    return count, line


def parse_headers(text: str) -> Headers:
    """The header fields at the start of ``text`` (a header block, ``text/rfc822-headers``, DSN fields)."""
    return split_headers(text)[0]


def field_blocks(text: str) -> list[Headers]:
    """Blocks of ``Name: value`` fields separated by blank lines (the body of ``message/delivery-status`` or
    ``message/feedback-report``); lines that are not fields are skipped."""
    blocks = []
    for chunk in _BLANK_LINES.split(text):
        fields = _chunk_fields(chunk)
        if fields:
            blocks.append(Headers(fields))
    return blocks


def _chunk_fields(chunk: str) -> list[tuple[str, str]]:
    """``_FIELD_LINE.findall(chunk)``: the compiled build walks the lines instead."""
    if not _COMPILED:
        found: list[tuple[str, str]] = _FIELD_LINE.findall(chunk)
        return found
    fields: list[tuple[str, str]] = []
    _header_fields(chunk, 0, len(chunk), fields, None, True)
    return fields


def field_lists(text: str) -> list[list[tuple[str, str]]]:
    """The blocks of :func:`field_blocks` as plain lists of ``(lower-case name, unfolded value)``.

    For readers that look at every field of every block (a delivery-status part): each name is lowered and each
    value unfolded once, where a :class:`Headers` would do it again on every pass over its fields.
    """
    blocks = []
    for chunk in _BLANK_LINES.split(text):
        fields = _chunk_fields(chunk)
        if fields:
            blocks.append([(n.lower(), _unfolded(v).rstrip() if "\n" in v else v.rstrip()) for n, v in fields])
    return blocks


MAX_TYPES = 2048  # Content-Type values remembered by content_type()
_TYPES: dict[str, tuple[str, dict[str, str]]] = {}


def content_type(value: str | None) -> tuple[str, dict[str, str]]:
    """``type/subtype`` in lower case and the parameters (RFC 2045 section 5.1, RFC 2231 values collapsed).

    Results are remembered and shared: the parameter dict must not be changed. Only values that recur from mail to
    mail are kept (``text/plain; charset=us-ascii``, ``message/delivery-status``), up to ``MAX_TYPES`` of them: a
    multipart's value names its own boundary, which no other mail repeats, so it is read each time (keeping it
    would only push the recurring values out, and would make a benchmark that reads the same mails again faster
    than real mail streams are).
    """
    if not value:
        return "text/plain", {}
    found = _TYPES.get(value)
    if found is not None:
        return found
    found = _content_type(value)
    if "boundary" not in found[1] and len(_TYPES) < MAX_TYPES:
        _TYPES[value] = found
    return found


def _content_type(value: str) -> tuple[str, dict[str, str]]:
    head, _, rest = value.partition(";")
    ctype = head.strip().lower()
    if "/" not in ctype:
        ctype = "text/plain"  # RFC 2045 section 5.2: a syntactically invalid type is text/plain
    if not rest:
        return ctype, {}
    params: dict[str, str] = {}
    for name, raw_value in _PARAM.findall(value, len(head)):
        key = name.lower()
        if "*" in key:  # RFC 2231 continuations, charsets or languages: the general way
            return ctype, _rfc2231_params(ctype, rest)
        if key not in params:
            params[key] = _unquoted(raw_value.strip())
    return ctype, params


def _rfc2231_params(ctype: str, rest: str) -> dict[str, str]:
    raw = [(k.lower(), v.strip()) for k, v in _PARAM.findall(";" + rest)]
    try:
        pairs = [(k, collapse_rfc2231_value(v)) for k, v in decode_params([(ctype, ""), *raw])[1:]]
    except (ValueError, LookupError, IndexError):
        pairs = raw
    params: dict[str, str] = {}
    for key, raw_value in pairs:
        params.setdefault(key, _unquoted(raw_value))
    return params


def _unquoted(value: str) -> str:
    """A parameter value without its quotes (and quoted-pair backslashes); an unclosed quote is dropped."""
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return value[1:] if value.startswith('"') else value


class Part:
    """One MIME entity: its header fields, type and body; ``children`` for multiparts and attached messages.

    A part does not hold a copy of its body: it keeps the span of the mail's text where the body stands, so that a
    mail is held once however deeply its parts nest (a 50 MB attachment is not copied at every level). Children
    are split on first use, so that the structure of a returned message is read only if asked for.
    """

    __slots__ = (
        "_budget",
        "_children",
        "_depth",
        "_end",
        "_head",
        "_src",
        "_start",
        "_text",
        "ctype",
        "headers",
        "maintype",
        "params",
    )

    def __init__(
        self,
        headers: Headers,
        source: str,
        span: tuple[int, int, int] | None = None,
        *,
        default_type: str = "text/plain",
        budget: _Budget | None = None,
        depth: int = 0,
    ) -> None:
        self.headers = headers
        self._src = source  # latin-1 text of the raw, still transfer-encoded bytes, of the mail (or more)
        # where the entity begins, where its body begins and where it ends in the source (all of it by default)
        self._head, self._start, self._end = span if span is not None else (0, 0, len(source))
        raw_type = headers.get("content-type")
        self.ctype, self.params = content_type(raw_type) if raw_type else (default_type, {})
        self.maintype = self.ctype.partition("/")[0]  # "multipart" of "multipart/report"
        self._children: list[Part] | None = None
        self._budget = budget or _Budget()
        self._depth = depth
        self._text: str | None = None

    @property
    def body(self) -> str:
        """The body as written (latin-1 text of the raw bytes, transfer encoding not undone); a copy."""
        return self._src[self._start : self._end]

    @property
    def size(self) -> int:
        """The length of the body as written."""
        return self._end - self._start

    def header_text(self) -> str:
        """The header of the entity as written (its fields up to the blank line)."""
        return self._src[self._head : self._start]

    @property
    def children(self) -> list[Part]:
        """The parts of a multipart, or the one message of a ``message/rfc822`` part; else empty."""
        if self._children is None:
            self._children = _children(self)
        return self._children

    @property
    def charset(self) -> str | None:
        return self.params.get("charset")

    def payload(self, limit: int | None = None) -> bytes:
        """The body with its transfer encoding (base64, quoted-printable) undone; with ``limit``, only the body's
        first ``limit`` characters as written, cut at a line end, are decoded."""
        end = self._end
        if limit is not None and end - self._start > limit:
            cut = self._src.rfind("\n", self._start, self._start + limit)
            end = cut if cut > self._start else self._start + limit
        raw = self._src[self._start : end].encode("latin-1", errors="replace")
        cte = (self.headers.get("content-transfer-encoding") or "").strip().lower()
        if cte == "base64":
            return _base64(raw)
        if cte == "quoted-printable":
            return binascii.a2b_qp(raw)
        return raw

    def text(self) -> str:
        """The body as text: transfer encoding undone, then decoded in its charset. Only the first
        ``MAX_TEXT_PART`` characters of a body as written are read: no report's text is longer, and what a decoder
        looks for stands at its start (a longer body is an attachment that was mislabelled, or a hostile mail)."""
        if self._text is None:
            text = self._plain_ascii()
            if text is None:
                text = decode_bytes(self.payload(MAX_TEXT_PART), self.charset)
                if "\r" in text:
                    # a base64 text is encoded in its canonical form, lines ending in CRLF (RFC 2045 section 6.8),
                    # and a quoted-printable one may spell out "=0D": the line ends of the mail as a whole were
                    # made LF before it was parsed, those of a decoded body are made LF here
                    text = text.replace("\r\n", "\n").replace("\r", "\n")
            self._text = text
        return self._text

    def _plain_ascii(self) -> str | None:
        """The body as text where it needs no decoding (no transfer encoding, only ASCII without escape
        sequences): what :meth:`text` would give, read without a round trip through bytes; else None."""
        start, end = self._start, self._end
        if end - start > MAX_TEXT_PART or _transfer_encoded(self):
            return None
        body = self._src[start:end]
        return body if body.isascii() and "\x1b" not in body else None

    def walk(self) -> Iterator[Part]:
        """This part and every part below it, in order, including inside attached messages."""
        yield self
        for child in self.children:
            yield from child.walk()

    def __repr__(self) -> str:
        return f"Part({self.ctype!r}, {self.size} chars)"


def _base64(raw: bytes) -> bytes:
    try:
        return binascii.a2b_base64(raw)
    except binascii.Error:
        pass
    clean = _NOT_BASE64.sub(b"", raw)  # line noise, stray characters and misplaced padding
    rest = len(clean) % 4
    clean = clean[:-1] if rest == 1 else clean + b"=" * ((4 - rest) % 4)
    try:
        return binascii.a2b_base64(clean)
    except binascii.Error:
        return b""


_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]+")


class _Budget:
    """Parts read so far in one mail (shared by its parts), to bound the work on a hostile mail."""

    __slots__ = ("parts",)

    def __init__(self) -> None:
        self.parts = 0


def _entity(text: str, span: tuple[int, int], budget: _Budget, depth: int, default_type: str = "text/plain") -> Part:
    """The entity that stands in ``text[start:end]`` (its header, then its body)."""
    start, end = span
    headers, at = split_headers(text, start, mbox=depth == 0, end=end)
    budget.parts += 1
    return Part(headers, text, (start, at, end), default_type=default_type, budget=budget, depth=depth)


def _children(part: Part) -> list[Part]:
    budget, depth = part._budget, part._depth
    if depth >= MAX_DEPTH or budget.parts >= MAX_PARTS:
        return []
    if part.maintype == "multipart":
        boundary = part.params.get("boundary") or _lost_boundary(part)
        if not boundary:
            return []
        child_type = "message/rfc822" if part.ctype == "multipart/digest" else "text/plain"
        out = []
        for start, end in _split_spans(part._src, boundary, part._start, part._end):
            if budget.parts >= MAX_PARTS:
                break
            out.append(_entity(part._src, (start, end), budget, depth + 1, child_type))
        return out
    if part.ctype in ("message/rfc822", "message/global"):
        cte = (part.headers.get("content-transfer-encoding") or "").strip().lower()
        if cte in ("base64", "quoted-printable"):
            inner = part.payload(MAX_ENCODED_MESSAGE).replace(b"\r\n", b"\n").decode("latin-1")
            return [_entity(inner, (0, len(inner)), budget, depth + 1)]
        return [_entity(part._src, (part._start, part._end), budget, depth + 1)]
    return []


_DELIMITER_TAIL = re.compile(r"(--)?\s*")  # what may follow "--boundary" on a delimiter line
# A line that may be a delimiter: "--" and a boundary of RFC 2046's characters (1 to 70, not ending in a space).
_BCHAR = "[0-9A-Za-z'()+_,./:=?-]"
_DELIMITER_LIKE = re.compile(rf"^--({_BCHAR}(?:[ 0-9A-Za-z'()+_,./:=?-]{{0,68}}{_BCHAR})?)[ \t]*$", re.M)
MAX_BOUNDARY_SEARCH = 8192  # characters at the start of a multipart's body searched for a lost boundary


def _lost_boundary(part: Part) -> str | None:
    """The boundary of a multipart whose Content-Type has none: where the header's ``boundary=`` line was folded
    without leading white space (as in copies of the ARF draft's examples), it is no continuation and ends the
    header, so the parameter is lost and the line opens the body. The first line near the body's start that looks
    like a delimiter is taken when the same delimiter comes back later in the body; else None (the body stays one
    opaque part, as before)."""
    start, end = part._start, part._end
    found = _DELIMITER_LIKE.search(part._src, start, min(end, start + MAX_BOUNDARY_SEARCH))
    if found is None:
        return None
    boundary = found.group(1)
    return boundary if part._src.find("\n--" + boundary, found.end(), end) >= 0 else None


def _split_multipart(body: str, boundary: str) -> list[str]:
    """The bodies between the delimiter lines of ``boundary``, as copies (see :func:`_split_spans`)."""
    return [body[start:end] for start, end in _split_spans(body, boundary, 0, len(body))]


def _split_spans(text: str, boundary: str, first: int, stop: int) -> list[tuple[int, int]]:
    """Where the bodies between the delimiter lines of ``boundary`` stand in ``text[first:stop]`` (RFC 2046
    section 5.1.1).

    A delimiter is ``--boundary`` at the start of a line, followed only by white space (or by ``--`` for the
    last one). Lines that merely begin with the delimiter (a nested boundary that extends this one) are content.
    Without a closing delimiter the last part runs to the end (a truncated mail). Nothing is copied.
    """
    delim = "--" + boundary
    spans: list[tuple[int, int]] = []
    start: int | None = None  # where the current part's content begins
    at_first = text.startswith(delim, first, stop)
    pos = first if at_first else text.find("\n" + delim, first, stop)
    while pos >= 0:
        line_start = pos if pos == first and at_first else pos + 1
        after = line_start + len(delim)
        nl = text.find("\n", after, stop)
        line_end = stop if nl < 0 else nl
        if line_end == after or (line_end == after + 2 and text.startswith("--", after)):
            # the usual delimiter lines, "--boundary" and "--boundary--", told apart without the pattern
            delimiter, closing = True, line_end > after
        else:
            tail = _DELIMITER_TAIL.fullmatch(text, after, line_end)
            delimiter, closing = tail is not None, tail is not None and tail.group(1) is not None
        if delimiter:  # a delimiter line, not content that starts like one
            if start is not None:
                spans.append((start, max(line_start - 1, start)))
            if closing:
                return spans
            start = line_end + 1
            if len(spans) >= MAX_PARTS:
                return spans
        pos = text.find("\n" + delim, line_end, stop)
    if start is not None and start <= stop:
        spans.append((start, stop))
    return spans


def addresses(value: str | None) -> list[str]:
    """The mail addresses in an address-list field (``"Neko" <neko@example.jp>, b@example.org``)."""
    if not value:
        return []
    simple = _SIMPLE_ADDRESS.fullmatch(value)
    if simple is not None:
        return [simple[1] or simple[2]]
    try:
        pairs = getaddresses([value])
    except (ValueError, IndexError, TypeError):
        return []
    return [addr for _, addr in pairs if "@" in addr]


# One address, bare or in angle brackets after a display name without specials: most fields; the rest goes to
# email.utils.getaddresses (comments, quoted names with commas, groups).
_SIMPLE_ADDRESS = re.compile(
    r'\s*(?:(?:[^<>()",;:@\\]*|"[^"\\]*")\s*<([^<>()\s",;:@]+@[^<>()\s",;:@]+)>|([^<>()\s",;:@]+@[^<>()\s",;:@]+))\s*'
)


def first_address(value: str | None) -> str | None:
    found = addresses(value)
    return found[0] if found else None


class Mail:
    """A parsed mail: its top-level header fields, its MIME tree, its readable text and its attached original.

    ``parts`` lists the leaves of the mail's own structure in order; an attached message (``message/rfc822``) is
    one leaf, not descended into, so that the parts of a bounce are never confused with those of the message it
    returns. Everything here is computed on first use.
    """

    __slots__ = ("_found", "_heads", "_lowered", "_original", "_original_found", "_parts", "_text", "raw", "root")

    def __init__(self, root: Part, raw: str) -> None:
        self.root = root
        self.raw = raw  # the whole mail, line endings normalised, as latin-1 text
        self._parts: list[Part] | None = None
        self._text: str | None = None
        self._original: Headers | None = None
        self._original_found = False
        # What the decoders' detect() functions ask of every mail, worked out once per mail (never across mails).
        self._lowered: dict[str, str] = {}
        self._heads: dict[int, str] = {}
        self._found: dict[tuple[str, ...], Part | None] = {}

    def lowered(self, name: str) -> str:
        """The first top-level field of that name (lower-case name), unfolded, its encoded words decoded (a gateway
        or a name that is not ASCII may have encoded a subject that is plain English) and in lower case; "" if
        absent. The same as ``(mail.headers.text(name) or "").lower()``, computed once per mail."""
        value = self._lowered.get(name)
        if value is None:
            value = self._lowered[name] = (self.root.headers.text(name) or "").lower()
        return value

    def head(self, size: int) -> str:
        """The first ``size`` characters of :attr:`text` in lower case (``mail.text[:size].lower()``), computed
        once per mail and size."""
        value = self._heads.get(size)
        if value is None:
            value = self._heads[size] = self.text[:size].lower()
        return value

    def in_header(self, piece: str) -> bool:
        """Whether ``piece`` (text without white space, case as given) stands in the top-level header as written: a
        necessary condition of its standing in an unfolded field value, checked without unfolding any."""
        return self.raw.find(piece, 0, self.root._start) >= 0

    @property
    def headers(self) -> Headers:
        return self.root.headers

    @property
    def ctype(self) -> str:
        return self.root.ctype

    @property
    def parts(self) -> list[Part]:
        if self._parts is None:
            out: list[Part] = []
            stack = [self.root]
            while stack:
                part = stack.pop()
                if part.maintype == "multipart" and part.children:
                    stack.extend(reversed(part.children))
                else:
                    out.append(part)
            self._parts = out
        return self._parts

    def find(self, *ctypes: str) -> Part | None:
        """The first leaf of one of these types, outside attached messages."""
        found = self._found
        if ctypes in found:
            return found[ctypes]
        result = None
        for part in self.parts:
            if part.ctype in ctypes:
                result = part
                break
        found[ctypes] = result
        return result

    def find_all(self, *ctypes: str) -> list[Part]:
        return [part for part in self.parts if part.ctype in ctypes]

    def text_attachments(self) -> list[Part]:
        """The ``text/plain`` parts sent as attachments, outside attached messages, in order: where a notice may
        quote the returned message's header, or carry its report relabelled as a text file."""
        return [part for part in self.parts if part.ctype == "text/plain" and not _is_readable(part)]

    @property
    def text(self) -> str:
        """The readable text of the mail: its ``text/plain`` parts (else ``text/html`` without tags), outside
        attached messages; for a single-part mail, its body."""
        if self._text is None:
            self._text = self._readable()
        return self._text

    def _readable(self) -> str:
        if self.root.maintype != "multipart":
            if self.root.maintype == "text" or not self.root.children:
                body = self.root.text()
                return html_text(body) if self.root.ctype == "text/html" else body
            return ""
        plain = [p.text() for p in self.parts if _is_readable(p)]
        if plain:
            return "\n".join(plain)
        markup = [p.text() for p in self.parts if p.ctype == "text/html"]
        return html_text("\n".join(markup))

    @property
    def original(self) -> Headers | None:
        """The header fields of the returned original message (``message/rfc822`` or ``text/rfc822-headers``)."""
        if not self._original_found:
            self._original = self._find_original()
            self._original_found = True
        return self._original

    def original_identity(self) -> Headers | None:
        """The fields of the returned original message that identify it: From, Return-Path, Message-ID, Subject
        and List-Id (a :class:`Headers` with only those; None when the mail returns no message).

        The same values as :attr:`original` gives for these names, read without splitting the whole header of
        the returned message (it is long: Received, DKIM and ARC fields) when nothing else needed it. A mail
        without an attached message may quote the message in its text, after its notice (qmail's "Below this line
        is a copy of the message", Exim's "This is a copy of the message, including all the headers"): then its
        first header block there that names the message.
        """
        if self._original_found:
            return self._original or self._quoted_identity()
        for part in self.parts:
            if part.ctype not in ORIGINAL_TYPES:
                continue
            if part._children is not None or _transfer_encoded(part):
                return self.original  # read already, or to be decoded first: the general way
            start = part._start
            end = part._end if part.ctype not in HEADERS_ONLY_TYPES else min(part._end, start + MAX_HEADER_PART)
            blank = _STRAY_BLANK_LINES.match(part._src, start, end)  # a stray blank line before the header
            start = blank.end() if blank is not None else start
            _, block_end, fields = _identity_block(part._src, start, end)
            if block_end > start:
                return Headers(fields)
        return self._quoted_identity()

    def _quoted_identity(self) -> Headers | None:
        """The identifying fields of a message quoted in the mail's text, else in a text attachment ("the
        attachment contains the original mail headers"): the first block of two field lines or more with a
        Message-ID field, else the first with a Subject or From field. A notice's own lines ("Reporting-MTA:",
        "X-…:") name no message; a block with the mail's own Subject or from a mailer daemon is a notice quoted in
        turn (a bounce of a bounce, a summary of the mail itself)."""
        own = self.lowered("subject").strip()
        fallback: Headers | None = None
        attached = (p.text() for p in self.text_attachments() if p.size > 0)
        for text in itertools.chain((self.text,), attached):  # an attachment is decoded only when it is looked at
            found, named = _quoted_block(text, own)
            if found is not None:
                return found
            fallback = fallback or named
        return fallback

    def _find_original(self) -> Headers | None:
        for part in self.parts:
            if part.ctype not in ORIGINAL_TYPES:
                continue
            if part.ctype in HEADERS_ONLY_TYPES:
                headers = _headers_part(part)
            elif part.children:
                headers = part.children[0].headers
            else:
                headers = split_headers(part._src, part._start, end=part._end)[0]
            if headers:
                return headers
        return None


class LinePattern:
    """A pattern that must match where a line begins (``^`` of a multi-line pattern), searched for quickly: a
    pattern that opens with a literal line break is scanned for by the regular expression engine's fast search,
    where the "^" of a multi-line pattern is tried at every position of the text. Same matches as
    ``re.compile("^" + pattern, re.M | flags).search``."""

    __slots__ = ("_after_break", "_at_start")

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self._at_start = re.compile(pattern, flags)
        self._after_break = re.compile("\n" + pattern, flags)

    def search(self, text: str, at: int = 0, stop: int | None = None) -> tuple[int, int]:
        """Where the first match in ``text[at:stop]`` begins and ends; ``(-1, -1)`` if none. A line begins at
        ``at`` only at the start of the text or after a line break; every later line begins after a break."""
        end = len(text) if stop is None else stop
        if at == 0 or text[at - 1] == "\n":
            first = self._at_start.match(text, at, end)
            if first is not None:
                return at, first.end()
        later = self._after_break.search(text, at, end)
        return (-1, -1) if later is None else (later.start() + 1, later.end())


_STRAY_BLANK_LINES = re.compile(r"(?:[ \t]*+\n){1,3}")
# A quoted message (Mail._quoted_identity): where its header may begin, how far the text is searched, how many
# candidate blocks are tried, and the fields of which one must be there.
_QUOTED_NAMES = (
    r"(?:received|return-path|message-id|from|subject|date|to|mime-version|dkim-signature|delivered-to|reply-to"
    r"|content-type|list-id|x-[!-9;-~]+)[ \t]*:"
)
_QUOTED_START = LinePattern(_QUOTED_NAMES, re.I)
# the same in an ASCII text in lower case (the same positions): letters compared as they are, not case-folded
_QUOTED_START_LOWER = LinePattern(_QUOTED_NAMES)
MAX_QUOTED_SEARCH = 1_000_000
MAX_QUOTED_BLOCKS = 20
_NAMING = frozenset({"message-id", "subject", "from"})
_DAEMONS = ("mailer-daemon", "mail delivery")


def _quoted_block(text: str, own_subject: str) -> tuple[Headers | None, Headers | None]:
    """In ``text``: the first quoted header block with a Message-ID, and the first that names a message at
    all (see Mail._quoted_identity)."""
    stop = min(len(text), MAX_QUOTED_SEARCH)
    named: Headers | None = None
    at = 0
    searched, start_pattern = (text[:stop].lower(), _QUOTED_START_LOWER) if text.isascii() else (text, _QUOTED_START)
    for _ in range(MAX_QUOTED_BLOCKS):
        start, name_end = start_pattern.search(searched, at, stop)
        if start < 0:
            break
        count, block_end, fields = _identity_block(text, start, stop)
        at = max(block_end, name_end)
        if count < 2:
            continue
        names = {name.lower() for name, value in fields if value.strip()}
        if not names & _NAMING:
            continue
        found = Headers(fields)
        if _is_notice(found, own_subject):
            continue
        if "message-id" in names:
            return found, found
        named = named or found
    return None, named


def _block_end(text: str, start: int, end: int) -> int:
    """Where the header block at ``start`` ends (``_HEADER_BLOCK.match(text, start, end).end()``)."""
    if _COMPILED:
        return _header_fields(text, start, end, None)[1]
    block = _HEADER_BLOCK.match(text, start, end)  # matches at least the empty string
    return block.end() if block is not None else start


def _is_notice(found: Headers, own_subject: str) -> bool:
    """Whether quoted fields are those of a notice rather than of the returned message: the mail's own Subject
    or a From of a mailer daemon."""
    if own_subject and (found.get("subject") or "").strip().lower() == own_subject:
        return True
    sender = (found.get("from") or "").lower()
    return any(daemon in sender for daemon in _DAEMONS)


def _field_lines(block: str) -> int:
    """The number of fields in a block of field lines (continuation lines begin with white space)."""
    return sum(1 for line in block.split("\n") if line and line[0] not in " \t")


# The fields Mail.original_identity reads, as _FIELD_LINE reads them.
_IDENTITY_FIELDS = re.compile(
    r"^(from|return-path|message-id|subject|list-id)[ \t]*+:[ \t]*+([^\n]*+(?:\n[ \t][^\n]*+)*+)", re.M | re.I
)
# The same fields after a line break: a pattern that opens with a literal is scanned for quickly, where the "^" of
# a multi-line pattern is tried at every position.
_IDENTITY_AFTER_BREAK = re.compile(
    r"\n(from|return-path|message-id|subject|list-id)[ \t]*+:[ \t]*+([^\n]*+(?:\n[ \t][^\n]*+)*+)", re.I
)


_IDENTITY_NAMES = frozenset({"from", "return-path", "message-id", "subject", "list-id"})
_NAME_LENGTHS = frozenset(len(name) for name in _IDENTITY_NAMES)  # (names of other lengths are not lowered)


def _identity_block(text: str, start: int, stop: int) -> tuple[int, int, list[tuple[str, str]]]:
    """The header block at ``start`` (by ``stop``): how many field lines it holds, where it ends, and its fields
    that identify a message (``_identity_fields`` of the block); the compiled build finds all three in one pass."""
    if _COMPILED:
        fields: list[tuple[str, str]] = []
        count, end = _header_fields(text, start, stop, fields, _IDENTITY_NAMES)
        return count, end, fields
    end = _block_end(text, start, stop)
    return _field_lines(text[start:end]), end, _identity_fields(text, start, end)


def _identity_fields(src: str, start: int, end: int) -> list[tuple[str, str]]:
    """``_IDENTITY_FIELDS.findall(src, start, end)``: a header block starts after a line break (except at the start
    of the mail), so the fields are found after line breaks from the one before ``start`` on."""
    if start > 0 and src[start - 1] == "\n":
        fields: list[tuple[str, str]] = _IDENTITY_AFTER_BREAK.findall(src, start - 1, end)
        return fields
    return _IDENTITY_FIELDS.findall(src, start, end)


def _transfer_encoded(part: Part) -> bool:
    return (part.headers.get("content-transfer-encoding") or "").strip().lower() in ("base64", "quoted-printable")


def _headers_part(part: Part) -> Headers:
    """The fields of a ``text/rfc822-headers`` part: read in place, or decoded first if it is base64 or
    quoted-printable."""
    if not _transfer_encoded(part):
        return split_headers(part._src, part._start, end=min(part._end, part._start + MAX_HEADER_PART))[0]
    return parse_headers(part.payload(MAX_HEADER_PART).replace(b"\r\n", b"\n").decode("latin-1"))


def html_text(markup: str) -> str:
    """The text of an HTML body as a browser shows it, one line per line shown: hidden parts left out, white space
    collapsed outside <pre>, lines ended where <br> and blocks end them, other tags left out, entities (``&lt;``,
    ``&nbsp;``, ``&#233;``) decoded. A body without any tag that ends a line is plain text with an HTML label: its
    lines stay as written."""
    markup = _without_hidden(markup)
    if _HTML_LINE_TAG.search(markup) is None:
        text = _tags_replaced(markup, marks=False)
    else:
        pieces = _pre_split(markup)
        for i, piece in enumerate(pieces):
            if i % 2:  # a <pre> block (the odd pieces): its lines as written, on lines of their own
                before = "" if pieces[i - 1].endswith("\n") else "\n"
                pieces[i] = before + _tags_replaced(piece, marks=False) + "\n"
                continue
            pieces[i] = _html_flow(piece)
        text = _HTML_BLANK_LINES.sub("\n\n", "".join(pieces)).strip("\n")
    if "&" in text:
        text = html.unescape(text)
        if "\xa0" in text:  # &nbsp;: a space like any other
            text = _HTML_TRAILING_SPACE.sub("\n", text.replace("\xa0", " ")).rstrip(" ")
    return text


def _without_hidden(markup: str) -> str:
    """``markup`` without its scripts, styles, head, title and comments (one left open hides the rest)."""
    start = _HTML_HIDDEN.search(markup)
    if start is None:
        return markup
    lower = markup.lower()
    kept: list[str] = []
    pos = 0
    while start is not None:
        kept.append(markup[pos : start.start()])
        name = start.group(1)
        pos = _closed_at(lower, "-->" if name is None else f"</{name.lower()}", start.end())  # (None: a comment)
        start = _HTML_HIDDEN.search(markup, pos)
    kept.append(markup[pos:])
    return "".join(kept)


def _pre_split(markup: str) -> list[str]:
    """``markup`` cut at its <pre> blocks: text outside them at the even places, the blocks at the odd ones (one
    left open runs to the end)."""
    pieces: list[str] = []
    lower = ""
    pos = 0
    start = _HTML_PRE.search(markup)
    while start is not None:
        lower = lower or markup.lower()
        stop = _closed_at(lower, "</pre", start.end())
        pieces += [markup[pos : start.start()], markup[start.start() : stop]]
        pos = stop
        start = _HTML_PRE.search(markup, pos)
    pieces.append(markup[pos:])
    return pieces


def _closed_at(lower: str, closing: str, at: int) -> int:
    """Where an element that ``closing`` ends ("</pre", "-->") is over, looked for from ``at`` in ``lower`` (the
    markup in lower case): past the ">" after it; the end of the text where it is never closed."""
    end = lower.find(closing, at)
    return len(lower) if end < 0 else (lower.find(">", end) + 1 or len(lower))


def _html_flow(markup: str) -> str:
    """HTML outside <pre> as lines: white space one space, line ends where <br>, paragraphs and blocks are. The
    tags go first (one pass; they leave marks), then the white space of what is left is collapsed."""
    flow = " ".join(_tags_replaced(markup, marks=True).split())
    flow = _HTML_EDGE_RUN.sub("\n", flow).replace(_BREAK, "\n").replace(_PARAGRAPH_EDGE, "\n\n")
    return "\n".join(line.strip(" ") for line in flow.split("\n"))


def _tags_replaced(markup: str, marks: bool) -> str:
    """``markup`` without its tags; with ``marks``, each tag replaced by what it leaves in the text (``_TAG_MARKS``:
    a mark for a line end, a block's or a paragraph's edge, a space for the end of a table cell, else nothing).
    Tags stand where a ">" closes them: after the last ">", a "<" opens no tag."""
    end = markup.rfind(">") + 1
    if not end:
        return markup
    if not marks:
        return _HTML_TAG.sub("", markup[:end]) + markup[end:]
    pieces = _HTML_TAG.split(markup[:end])  # text, tag name, text, tag name, ..., text
    get = _TAG_MARKS.get
    pieces[1::2] = [get(name.lower(), "") for name in pieces[1::2]]
    return "".join(pieces) + markup[end:]


def _is_readable(part: Part) -> bool:
    """A ``text/plain`` part that is not an attachment, or a multipart whose boundary was never found."""
    if part.ctype == "text/plain":
        disposition = part.headers.get("content-disposition")
        return disposition is None or not disposition.lstrip().lower().startswith("attachment")
    return part.maintype == "multipart" and not part.children


_COMPILED = is_compiled(split_headers)  # whether this is the compiled build (set there, where it is imported)


def parse_mail(data: bytes | str) -> Mail:
    """Parse a mail (bytes as read from a file, or text). Never raises."""
    if isinstance(data, bytes):
        text = (_lf_line_ends(data) if b"\r" in data else data).decode("latin-1")
    else:
        if "\r" in data:
            data = data.replace("\r\n", "\n").replace("\r", "\n")
        text = data if data.isascii() else data.encode("utf-8", errors="replace").decode("latin-1")
    return Mail(_entity(text, (_header_start(text), len(text)), _Budget(), 0), text)


def _lf_line_ends(data: bytes) -> bytes | bytearray:
    """``data`` with each CRLF and each lone CR made LF. The compiled build copies it in one C loop over its bytes;
    interpreted, two replaces cost less (the second only for a mail that still has a CR, which spares the usual CRLF
    mail a copy: memory stays near the mail's size)."""
    if not _COMPILED:
        data = data.replace(b"\r\n", b"\n")
        return data.replace(b"\r", b"\n") if b"\r" in data else data
    size = len(data)
    out = bytearray(size)
    src = data  # (compiled: a pointer to the bytes of each)
    dst = out
    at = 0
    kept = 0
    while at < size:
        byte = src[at]
        if byte == 13:  # CR: LF in its place, and the LF of a CRLF is passed over
            byte = 10
            if at + 1 < size and src[at + 1] == 10:
                at += 1
        dst[kept] = byte
        kept += 1
        at += 1
    del out[kept:]
    return out


MAX_LEADING_BLANK = 4096  # characters of white space before the header that are skipped


def _header_start(text: str) -> int:
    """Where a mail's header begins: after lines of white space only, as copies of mails pasted into files may
    have, when a header field follows them (else 0: a mail may begin with its blank line and no header)."""
    if not text or text[0] not in " \t\n":
        return 0
    head = text[:MAX_LEADING_BLANK]
    at = len(head) - len(head.lstrip(" \t\n"))  # the first visible character
    line = text.rfind("\n", 0, at) + 1  # the start of its line
    if line == 0:
        return 0
    fields = _HEADER_BLOCK.match(text, line)  # (always a match: it takes no field as well)
    return line if fields is not None and fields.end() > line else 0


# The compiled accelerator (smtplens._accel): a Cython build of this very file replaces these entry points (its
# classes too, so that every Mail, Part and Headers is of one class) when it was built from this file as it is now.
# content_type stays this module's: its store of values (_TYPES) is this module's, as tests/ read it.
install_accelerator(
    "mime",
    globals(),
    (
        "Headers",
        "Part",
        "Mail",
        "LinePattern",
        "parse_mail",
        "parse_headers",
        "split_headers",
        "field_blocks",
        "field_lists",
        "decode_bytes",
        "decode_words",
        "addresses",
        "first_address",
        "html_text",
    ),
)
