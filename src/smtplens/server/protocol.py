"""The SMTP protocol as data and pure functions: limits, capabilities, the reply catalogue, command and body parsing.

Nothing here keeps a connection's state; :mod:`smtplens.server.session` drives these pieces. Section numbers
are RFC 5321's unless another RFC is named.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import lru_cache
from typing import NamedTuple

from smtplens.model import Reply, ReplyClass, Stage
from smtplens.server.message_data import BodyFacts, DataReader, MessageBuffer  # message content, re-exported

__all__ = [
    "DECISION_STAGES",
    "BodyFacts",
    "BodyType",
    "Command",
    "DataReader",
    "Limits",
    "MailFrom",
    "MessageBuffer",
    "RcptTo",
    "Replies",
    "SessionConfig",
    "Verb",
    "auth_offered",
    "ehlo_keywords",
    "encode_reply",
    "make_reply",
    "parse_command",
    "parse_mail",
    "parse_rcpt",
]

DECISION_STAGES = frozenset(
    {Stage.CONNECT, Stage.HELO, Stage.AUTH, Stage.MAIL, Stage.RCPT, Stage.DATA, Stage.END_OF_DATA},
)
"""The stages at which a session asks its policies (``NeedDecision``)."""


# --------------------------------------------------------------------------------------------- limits, config


@dataclass(frozen=True, slots=True)
class Limits:
    """The numeric limits of a session. Lowering them below the RFC minimums is allowed (to test senders)."""

    command_line: int = 512  # octets with CRLF, section 4.5.3.1.4
    auth_line: int = 12288  # an AUTH command or SASL response line, RFC 4954 section 4
    text_line: int = 1000  # octets with CRLF in DATA, section 4.5.3.1.6
    message_size: int = 10 * 1024 * 1024  # SIZE, RFC 1870; 0 means no limit
    recipients: int = 100  # per transaction; at least 100 by section 4.5.3.1.8
    errors: int = 10  # protocol errors before "421 4.7.0 too many errors"
    buffer: int = 4 * 1024 * 1024  # input held while the session waits for the adapter
    transcript: int = 2000  # transcript lines kept per session

    def __post_init__(self) -> None:
        for name in ("command_line", "auth_line", "text_line", "recipients", "errors", "buffer", "transcript"):
            if getattr(self, name) < 1:
                raise ValueError(f"Limits.{name} must be positive")
        if self.message_size < 0:
            raise ValueError("Limits.message_size must be 0 (no limit) or positive")


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """What every session of one server shares.

    ``tls_available`` says a certificate is configured (STARTTLS is offered). ``credentials(user, password)``
    verifies AUTH PLAIN/LOGIN; AUTH is offered only under TLS unless ``auth_without_tls``. ``decision_stages``
    lists the stages where the session asks for a :class:`~smtplens.server.decisions.Decision`; the others
    accept at once. Timeouts are seconds; the adapter runs the clock (section 4.5.3.2).
    """

    hostname: str = "localhost"
    banner: str = "ESMTP smtplens"
    limits: Limits = Limits()
    tls_available: bool = False
    credentials: Callable[[str, str], bool] | None = None
    auth_without_tls: bool = False
    require_tls: bool = False
    require_auth: bool = False
    chunking: bool = False
    reject_bare_lf: bool = False
    decision_stages: frozenset[Stage] = DECISION_STAGES
    idle_timeout: float = 300.0  # at least 5 minutes, section 4.5.3.2.7
    data_timeout: float = 180.0  # the client's data block timeout, section 4.5.3.2.5

    def __post_init__(self) -> None:
        if not self.hostname or not _PRINTABLE_WORD.fullmatch(self.hostname):
            raise ValueError(f"SessionConfig.hostname must be one printable ASCII word, not {self.hostname!r}")
        if not _PRINTABLE.fullmatch(self.banner):
            raise ValueError("SessionConfig.banner must be printable ASCII")
        if self.idle_timeout <= 0 or self.data_timeout <= 0:
            raise ValueError("SessionConfig timeouts must be positive")


_PRINTABLE_WORD = re.compile(r"[\x21-\x7e]+")
_PRINTABLE = re.compile(r"[\x20-\x7e]*")


def auth_offered(config: SessionConfig, *, tls_active: bool) -> bool:
    """AUTH is offered when credentials are configured, under TLS unless ``auth_without_tls`` (RFC 4954 §4)."""
    return config.credentials is not None and (tls_active or config.auth_without_tls)


def ehlo_keywords(config: SessionConfig, *, tls_active: bool) -> tuple[str, ...]:
    """The EHLO keywords the server advertises, in the order it sends them."""
    keywords = ["PIPELINING", f"SIZE {config.limits.message_size}"]  # RFC 2920, RFC 1870 ("SIZE 0": no limit)
    if config.tls_available and not tls_active:
        keywords.append("STARTTLS")  # RFC 3207: not offered again once TLS is active
    if auth_offered(config, tls_active=tls_active):
        keywords.append("AUTH PLAIN LOGIN")  # RFC 4954
    keywords += ["ENHANCEDSTATUSCODES", "8BITMIME", "DSN", "SMTPUTF8"]  # RFC 2034, 6152, 3461, 6531
    if config.chunking:
        keywords += ["BINARYMIME", "CHUNKING"]  # RFC 3030
    return tuple(keywords)


# --------------------------------------------------------------------------------------------------- replies


def make_reply(code: str, enhanced: str | None, text: str) -> Reply:
    """A reply value; ``text`` may hold several lines separated by newlines."""
    lines = tuple(text.splitlines()) or ("",)
    return Reply(basic=code, enhanced=enhanced, reply_class=ReplyClass.from_digit(code[:1]), text=lines)


_UNPRINTABLE = re.compile(r"[^\t\x20-\x7e]")
_MAX_REPLY_TEXT = 510  # a reply line is at most 512 octets with CRLF, section 4.5.3.1.5


@lru_cache(maxsize=512)
def encode_reply(reply: Reply) -> bytes:
    """The reply on the wire: every line ``code[-| ]enhanced text``, ASCII, at most 512 octets with CRLF.

    RFC 2034 puts the enhanced code on every line of every reply except the greeting and the answer to
    HELO/EHLO; RFC 3463 has no class 3, so 334 and 354 carry none either (``enhanced`` is then ``None``).
    """
    code = reply.basic or "451"
    prefix = f"{reply.enhanced} " if reply.enhanced else ""
    lines = reply.text or ("",)
    out: list[str] = []
    for index, text in enumerate(lines):
        separator = " " if index == len(lines) - 1 else "-"
        line = f"{code}{separator}{prefix}{_UNPRINTABLE.sub('?', text)}"
        out.append(line[:_MAX_REPLY_TEXT])
    return ("\r\n".join(out) + "\r\n").encode("ascii")


class Replies:
    """The catalogue of the session's fixed replies. Texts follow Postfix where it has one, else the RFC's."""

    OK = make_reply("250", "2.0.0", "Ok")
    SENDER_OK = make_reply("250", "2.1.0", "Ok")
    RECIPIENT_OK = make_reply("250", "2.1.5", "Ok")
    BYE = make_reply("221", "2.0.0", "Bye")
    HELP = make_reply("214", "2.0.0", "See RFC 5321: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY AUTH STARTTLS")
    VRFY = make_reply("252", "2.0.0", "Cannot VRFY user, but will accept message and attempt delivery")
    START_DATA = make_reply("354", None, "End data with <CR><LF>.<CR><LF>")
    START_TLS = make_reply("220", "2.0.0", "Ready to start TLS")
    AUTH_OK = make_reply("235", "2.7.0", "Authentication successful")
    STORE_FAILED = make_reply("451", "4.3.0", "Error: queue file write error")
    TOO_MANY_RECIPIENTS = make_reply("452", "4.5.3", "Error: too many recipients")  # section 4.5.3.1.10
    AUTH_TEMPORARY = make_reply("454", "4.7.0", "Temporary authentication failure")  # RFC 4954 section 6
    LINE_TOO_LONG = make_reply("500", "5.5.6", "Error: line too long")  # section 4.5.3.1.4
    UNKNOWN_COMMAND = make_reply("500", "5.5.2", "Error: command not recognized")
    BAD_SYNTAX = make_reply("500", "5.5.2", "Error: bad syntax")
    BAD_UTF8 = make_reply("500", "5.5.2", "Error: bad UTF-8 syntax")
    BAD_SENDER = make_reply("501", "5.1.7", "Bad sender address syntax")
    BAD_RECIPIENT = make_reply("501", "5.1.3", "Bad recipient address syntax")
    BAD_PARAMETER = make_reply("501", "5.5.4", "Error: bad parameter syntax")
    DUPLICATE_PARAMETER = make_reply("501", "5.5.4", "Error: parameter given twice")
    AUTH_ABORTED = make_reply("501", "5.7.0", "Authentication aborted")  # RFC 4954 section 4
    AUTH_BASE64 = make_reply("501", "5.5.2", "Cannot Base64-decode Client responses")  # RFC 4954 section 4
    NOT_IMPLEMENTED = make_reply("502", "5.5.1", "Error: command not implemented")
    EXPN_DISABLED = make_reply("502", "5.5.1", "Error: EXPN command is disabled")
    NEED_HELO = make_reply("503", "5.5.1", "Error: send HELO/EHLO first")
    NEED_EHLO = make_reply("503", "5.5.1", "Error: send EHLO first")
    NESTED_MAIL = make_reply("503", "5.5.1", "Error: nested MAIL command")
    NEED_MAIL = make_reply("503", "5.5.1", "Error: need MAIL command")
    IN_TRANSACTION = make_reply("503", "5.5.1", "Error: MAIL transaction in progress")
    TLS_ACTIVE = make_reply("503", "5.5.1", "Error: TLS already active")
    AUTH_NOT_ENABLED = make_reply("503", "5.5.1", "Error: authentication not enabled")
    AUTH_ALREADY = make_reply("503", "5.5.1", "Error: already authenticated")
    BINARY_NEEDS_BDAT = make_reply("503", "5.5.1", "Error: BODY=BINARYMIME needs BDAT")  # RFC 3030 section 3
    DATA_AFTER_BDAT = make_reply("503", "5.5.1", "Error: DATA after BDAT")
    BDAT_FAILED = make_reply("503", "5.5.1", "Error: message transfer failed, send RSET")
    REFUSED = make_reply("503", "5.7.0", "Error: access denied")  # after a 554 greeting, section 3.1
    AUTH_MECHANISM = make_reply("504", "5.5.4", "Unrecognized authentication type")  # RFC 4954 section 4
    TLS_REQUIRED = make_reply("530", "5.7.0", "Must issue a STARTTLS command first")  # RFC 3207 section 4
    AUTH_REQUIRED = make_reply("530", "5.7.0", "Authentication required")  # RFC 4954 section 6
    AUTH_FAILED = make_reply("535", "5.7.8", "Authentication credentials invalid")  # RFC 4954 section 6
    AUTH_NEEDS_TLS = make_reply("538", "5.7.11", "Encryption required for requested authentication mechanism")
    SIZE_DECLARED = make_reply("552", "5.3.4", "Message size exceeds fixed maximum message size")  # RFC 1870
    SIZE_EXCEEDED = make_reply("552", "5.3.4", "Error: message file too big")
    NEED_SMTPUTF8 = make_reply("553", "5.6.7", "Error: non-ASCII address without SMTPUTF8")  # RFC 6531 3.5
    NO_RECIPIENTS = make_reply("554", "5.5.1", "Error: no valid recipients")  # section 3.3
    TEXT_LINE_TOO_LONG = make_reply("554", "5.6.0", "Error: message line too long")  # section 4.5.3.1.6
    BARE_LF = make_reply("554", "5.6.0", "Error: bare <LF> received")

    @staticmethod
    def usage(syntax: str) -> Reply:
        return make_reply("501", "5.5.4", f"Syntax: {syntax}")

    @staticmethod
    def unsupported(parameter: str) -> Reply:
        return make_reply("555", "5.5.4", f"Unsupported option: {parameter}")  # section 4.1.1.11

    @staticmethod
    def greeting(hostname: str, text: str) -> Reply:
        return make_reply("220", None, f"{hostname} {text}")

    @staticmethod
    def queued(queue_id: str | None) -> Reply:
        return make_reply("250", "2.0.0", f"Ok: queued as {queue_id}" if queue_id else "Ok")

    @staticmethod
    def chunk_received(octets: int) -> Reply:
        return make_reply("250", "2.0.0", f"Ok: {octets} octets received")

    @staticmethod
    def timeout(hostname: str) -> Reply:
        return make_reply("421", "4.4.2", f"{hostname} Error: timeout exceeded")

    @staticmethod
    def too_many_errors(hostname: str) -> Reply:
        return make_reply("421", "4.7.0", f"{hostname} Error: too many errors")

    @staticmethod
    def overflow(hostname: str) -> Reply:
        return make_reply("421", "4.7.0", f"{hostname} Error: too much pipelined input")

    @staticmethod
    def shutting_down(hostname: str) -> Reply:
        return make_reply("421", "4.3.2", f"{hostname} Service shutting down, closing transmission channel")


# ---------------------------------------------------------------------------------------------------- commands


class Verb(StrEnum):
    HELO = "HELO"
    EHLO = "EHLO"
    MAIL = "MAIL"
    RCPT = "RCPT"
    DATA = "DATA"
    BDAT = "BDAT"
    RSET = "RSET"
    NOOP = "NOOP"
    QUIT = "QUIT"
    VRFY = "VRFY"
    EXPN = "EXPN"
    HELP = "HELP"
    STARTTLS = "STARTTLS"
    AUTH = "AUTH"


_VERBS = {verb.value: verb for verb in Verb}
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class Command(NamedTuple):
    verb: Verb
    argument: str


_tuple = tuple.__new__


def parse_command(line: bytes) -> Command | Reply:
    """A command line without its line ending → the verb and its argument, or the 500 reply it deserves."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return Replies.BAD_UTF8
    if _CONTROL.search(text):
        return Replies.BAD_SYNTAX  # NUL, bare CR and other controls have no place in a command (section 2.3.8)
    word, _, argument = text.partition(" ")
    verb = _VERBS.get(word.upper()) if word.isascii() else None
    if verb is None:
        return Replies.UNKNOWN_COMMAND
    return _tuple(Command, (verb, argument.strip(" \t")))  # Command(verb, ...) without its Python __new__


# ------------------------------------------------------------------------------------- MAIL FROM and RCPT TO


class BodyType(StrEnum):
    """The BODY parameter of MAIL (RFC 6152, RFC 3030); 7BIT when none is given."""

    SEVEN_BIT = "7BIT"
    EIGHT_BIT_MIME = "8BITMIME"
    BINARY_MIME = "BINARYMIME"


@dataclass(frozen=True, slots=True)
class MailFrom:
    """A parsed MAIL command. ``address`` is "" for the null reverse-path; xtext values are decoded."""

    address: str
    size: int | None = None
    body: BodyType = BodyType.SEVEN_BIT
    smtputf8: bool = False
    ret: str | None = None  # RFC 3461: FULL or HDRS
    envid: str | None = None  # RFC 3461
    auth: str | None = None  # RFC 4954 section 5; "<>" when the client says it does not know


@dataclass(frozen=True, slots=True)
class RcptTo:
    """A parsed RCPT command; ``notify`` and ``orcpt`` are the RFC 3461 parameters."""

    address: str
    notify: tuple[str, ...] = ()
    orcpt: str | None = None


_NON_ASCII = "\u0080-\U0010ffff"  # allowed in addresses with SMTPUTF8, RFC 6531 section 3.3
_ATEXT = rf"[A-Za-z0-9!#$%&'*+/=?^_`{{|}}~\-{_NON_ASCII}]"
_LOCAL = rf"(?:{_ATEXT}+(?:\.{_ATEXT}+)*|\"(?:[\x20\x21\x23-\x5b\x5d-\x7e{_NON_ASCII}]|\\[\x20-\x7e])*\")"
_LABEL = rf"[A-Za-z0-9{_NON_ASCII}](?:[A-Za-z0-9\-{_NON_ASCII}]*[A-Za-z0-9{_NON_ASCII}])?"
_DOMAIN = rf"{_LABEL}(?:\.{_LABEL})*"
_MAILBOX = re.compile(rf"(?P<local>{_LOCAL})@(?:(?P<domain>{_DOMAIN})|\[(?P<literal>[\x21-\x5a\x5e-\x7e]+)\])")
_ROUTE = re.compile(rf"@{_DOMAIN}(?:,@{_DOMAIN})*:")
_GENERAL_LITERAL = re.compile(r"[A-Za-z0-9-]*[A-Za-z0-9]:[\x21-\x5a\x5e-\x7e]+")
_KEYWORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
_VALUE = re.compile(rf"[\x21-\x3c\x3e-\x7e{_NON_ASCII}]+")  # esmtp-value, section 4.1.2; UTF-8 by RFC 6531
_XTEXT = re.compile(r"(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})+")  # RFC 3461 section 4
_XCHAR = re.compile(r"\+([0-9A-F]{2})")
_MAX_PATH = 256  # section 4.5.3.1.3
_MAX_LOCAL = 64  # section 4.5.3.1.1
_MAX_DOMAIN = 255  # section 4.5.3.1.2
_MAX_LABEL = 63
_MAX_ENVID = 100  # RFC 3461 section 4.4
_NOTIFY = frozenset({"SUCCESS", "FAILURE", "DELAY"})


def parse_mail(argument: str, *, extended: bool, config: SessionConfig) -> MailFrom | Reply:
    """The argument of MAIL (``FROM:<path> params``) → :class:`MailFrom`, or the reply refusing it."""
    split = _split_argument(argument, "FROM:")
    if split is None:
        return Replies.usage("MAIL FROM:<address>")
    path, rest = split
    params = _parse_params(rest, extended=extended)
    if isinstance(params, Reply):
        return params
    mail = _mail_params(params, config)
    if isinstance(mail, Reply):
        return mail
    address = _check_path(path, smtputf8=mail.smtputf8, null_ok=True)
    if address is None:
        return Replies.BAD_SENDER
    if isinstance(address, Reply):
        return address
    return MailFrom(address, mail.size, mail.body, mail.smtputf8, mail.ret, mail.envid, mail.auth)


def parse_rcpt(argument: str, *, extended: bool, smtputf8: bool) -> RcptTo | Reply:
    """The argument of RCPT (``TO:<path> params``) → :class:`RcptTo`, or the reply refusing it."""
    split = _split_argument(argument, "TO:")
    if split is None:
        return Replies.usage("RCPT TO:<address>")
    path, rest = split
    params = _parse_params(rest, extended=extended)
    if isinstance(params, Reply):
        return params
    notify: tuple[str, ...] = ()
    orcpt = None
    for key, value in params.items():
        if key == "NOTIFY" and value:
            notify = tuple(item.upper() for item in value.split(","))
            if not (notify == ("NEVER",) or (set(notify) <= _NOTIFY and len(set(notify)) == len(notify))):
                return make_reply("501", "5.5.4", "Bad NOTIFY parameter syntax")
        elif key == "ORCPT" and value:
            orcpt = _orcpt(value, smtputf8=smtputf8)
            if orcpt is None:
                return make_reply("501", "5.5.4", "Bad ORCPT parameter syntax")
        else:
            return Replies.unsupported(key if value is None else f"{key}={value}")
    if path.lower() == "postmaster":
        return RcptTo(path, notify, orcpt)  # "Postmaster" without a domain must be accepted, section 4.1.1.3
    address = _check_path(path, smtputf8=smtputf8, null_ok=False)
    if address is None:
        return Replies.BAD_RECIPIENT
    if isinstance(address, Reply):
        return address
    return RcptTo(address, notify, orcpt)


def _split_argument(argument: str, keyword: str) -> tuple[str, str] | None:
    """``FROM:<path> rest`` → (path without brackets, rest); a bare path without brackets is tolerated."""
    if argument[: len(keyword)].upper() != keyword:
        return None
    text = argument[len(keyword) :].lstrip(" ")
    if not text.startswith("<"):
        path, _, rest = text.partition(" ")  # Postfix accepts it too; a space ends such a path
        return (path, rest) if path and ">" not in path and "<" not in path else None
    if '"' not in text:  # no quoted local part: the first ">" ends the path
        end = text.find(">")
        if end < 0:
            return None
        rest = text[end + 1 :]
        return (text[1:end], rest) if not rest or rest.startswith(" ") else None
    quoted = False
    index = 1
    while index < len(text):
        char = text[index]
        if quoted and char == "\\":
            index += 1
        elif char == '"':
            quoted = not quoted
        elif char == ">" and not quoted:
            rest = text[index + 1 :]
            return (text[1:index], rest) if not rest or rest.startswith(" ") else None
        index += 1
    return None


def _check_path(path: str, *, smtputf8: bool, null_ok: bool) -> str | Reply | None:
    """The mailbox of a path (source route dropped, section 4.1.1.3), a 553 reply, or None if malformed."""
    if path == "":
        return "" if null_ok else None
    route = _ROUTE.match(path)
    mailbox = path[route.end() :] if route else path
    match = _MAILBOX.fullmatch(mailbox)
    if match is None or len(path) + 2 > _MAX_PATH or len(match["local"]) > _MAX_LOCAL:
        return None
    domain = match["domain"]
    if domain is not None:
        if len(domain) > _MAX_DOMAIN or max(map(len, domain.split("."))) > _MAX_LABEL:
            return None
    elif not _valid_literal(match["literal"]):
        return None
    if not smtputf8 and not mailbox.isascii():
        return Replies.NEED_SMTPUTF8
    return mailbox


def _valid_literal(literal: str) -> bool:
    """An address literal: IPv4, ``IPv6:…`` or a general ``tag:content`` one (section 4.1.3)."""
    tag, colon, content = literal.partition(":")
    try:
        if not colon:
            ipaddress.IPv4Address(literal)
        elif tag.upper() == "IPV6":
            ipaddress.IPv6Address(content)
    except ValueError:
        return False
    return not colon or tag.upper() == "IPV6" or bool(_GENERAL_LITERAL.fullmatch(literal))


def _parse_params(text: str, *, extended: bool) -> dict[str, str | None] | Reply:
    """``KEY=value KEY`` → {KEY: value or None}; parameters need EHLO (section 4.1.2)."""
    params: dict[str, str | None] = {}
    for token in text.split(" "):
        if not token:
            continue
        key, equals, value = token.partition("=")
        if not _KEYWORD.fullmatch(key) or (equals and not _VALUE.fullmatch(value)):
            return Replies.BAD_PARAMETER
        key = key.upper()
        if not extended:
            return Replies.unsupported(key)
        if key in params:
            return Replies.DUPLICATE_PARAMETER
        params[key] = value if equals else None
    return params


_NO_PARAMETERS = MailFrom("")


def _mail_params(params: dict[str, str | None], config: SessionConfig) -> MailFrom | Reply:
    """The parameters of MAIL, checked one by one; the result's address is filled in by the caller."""
    mail = _NO_PARAMETERS
    for key, value in params.items():
        parser = _MAIL_PARAMETERS.get(key)
        if parser is None:
            return Replies.unsupported(key if value is None else f"{key}={value}")
        parsed = parser(mail, value, config)
        if isinstance(parsed, Reply):
            return parsed
        mail = parsed
    return mail


def _size(mail: MailFrom, value: str | None, config: SessionConfig) -> MailFrom | Reply:
    if value is None or not value.isdigit() or not value.isascii() or len(value) > 20:
        return make_reply("501", "5.5.4", "Bad SIZE parameter syntax")  # RFC 1870 section 6
    size = int(value)
    limit = config.limits.message_size
    if limit and size > limit:
        return Replies.SIZE_DECLARED
    return replace(mail, size=size)


def _body(mail: MailFrom, value: str | None, config: SessionConfig) -> MailFrom | Reply:
    try:
        body = BodyType((value or "").upper())
    except ValueError:
        return make_reply("501", "5.5.4", "Bad BODY parameter syntax")
    if body is BodyType.BINARY_MIME and not config.chunking:
        return Replies.unsupported("BODY=BINARYMIME")
    return replace(mail, body=body)


def _smtputf8(mail: MailFrom, value: str | None, config: SessionConfig) -> MailFrom | Reply:
    if value is not None:
        return make_reply("501", "5.5.4", "Bad SMTPUTF8 parameter syntax")  # RFC 6531 section 3.4: no value
    return replace(mail, smtputf8=True)


def _ret(mail: MailFrom, value: str | None, config: SessionConfig) -> MailFrom | Reply:
    if value is None or value.upper() not in ("FULL", "HDRS"):
        return make_reply("501", "5.5.4", "Bad RET parameter syntax")
    return replace(mail, ret=value.upper())


def _envid(mail: MailFrom, value: str | None, config: SessionConfig) -> MailFrom | Reply:
    if value is None or len(value) > _MAX_ENVID or not _XTEXT.fullmatch(value):
        return make_reply("501", "5.5.4", "Bad ENVID parameter syntax")
    return replace(mail, envid=_decode_xtext(value))


def _auth(mail: MailFrom, value: str | None, config: SessionConfig) -> MailFrom | Reply:
    if value is None or not (value == "<>" or _XTEXT.fullmatch(value)):
        return make_reply("501", "5.5.4", "Bad AUTH parameter syntax")
    return replace(mail, auth=value if value == "<>" else _decode_xtext(value))


_MAIL_PARAMETERS: dict[str, Callable[[MailFrom, str | None, SessionConfig], MailFrom | Reply]] = {
    "SIZE": _size,
    "BODY": _body,
    "SMTPUTF8": _smtputf8,
    "RET": _ret,
    "ENVID": _envid,
    "AUTH": _auth,
}


def _orcpt(value: str, *, smtputf8: bool) -> str | None:
    """``addr-type;xtext`` (RFC 3461 section 4.2), decoded; UTF-8 forms are kept as sent (RFC 6533)."""
    kind, semicolon, address = value.partition(";")
    if not semicolon or not _KEYWORD.fullmatch(kind) or not address:
        return None
    if _XTEXT.fullmatch(address):
        return f"{kind};{_decode_xtext(address)}"
    if smtputf8 and kind.lower() == "utf-8":
        return value
    return None


def _decode_xtext(value: str) -> str:
    """RFC 3461 xtext: each ``+XX`` is one octet. The octets are read as UTF-8, as senders encode non-ASCII
    addresses (Postfix: ``ORCPT=rfc822;dbr+C3+B8d@…``), and as Latin-1 only when they are not valid UTF-8."""
    octets = bytearray()
    start = 0
    for match in _XCHAR.finditer(value):
        octets += value[start : match.start()].encode("utf-8", "replace")
        octets.append(int(match[1], 16))
        start = match.end()
    octets += value[start:].encode("utf-8", "replace")
    try:
        return octets.decode("utf-8")
    except UnicodeDecodeError:
        return octets.decode("latin-1")
