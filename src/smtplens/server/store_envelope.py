"""From the session's envelope dict to the metadata a message file and its index row hold."""

from __future__ import annotations

import copy
import datetime as dt
import email.parser
import email.policy
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import fields, is_dataclass
from typing import TYPE_CHECKING, Any, TypeAlias, cast

from smtplens.server.store_model import StoreError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

EnvelopeLike: TypeAlias = "Mapping[str, object] | DataclassInstance"

__all__ = ["ENVELOPE_KEYS", "EnvelopeLike", "complete_metadata", "json_copy", "normalize_envelope", "subject_of"]

# The named envelope fields and the other names they are accepted under; any other key is kept, as JSON, in
# the row's ``envelope`` column (MAIL and RCPT parameters, SIZE, BODY, SMTPUTF8, DSN fields, …).
ENVELOPE_KEYS: dict[str, tuple[str, ...]] = {
    "mail_from": ("mail_from", "sender"),
    "recipients": ("recipients", "rcpt_to", "rcpt_tos"),
    "client_address": ("client_address", "client", "peer"),
    "helo": ("helo", "ehlo", "helo_name"),
    "tls": ("tls",),
    "auth_identity": ("auth_identity", "auth"),
    "received_at": ("received_at", "received"),
}
_NAMED_KEYS = frozenset(key for keys in ENVELOPE_KEYS.values() for key in keys)
_MAX_SUBJECT = 998  # RFC 5322 section 2.1.1: a line is at most 998 characters
_HEADER_SCAN = 256 * 1024
_ATOMS = frozenset((str, int, float, bool, type(None)))  # exactly these types: immutable, JSON writes them as is
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}  # per dataclass type (there are only a few)


def _field_names(value: object) -> tuple[str, ...] | None:
    """The field names of a dataclass instance (cached per type: there are only a few); None for other values."""
    kind = type(value)
    names = _FIELD_NAMES.get(kind)
    if names is None and is_dataclass(value) and not isinstance(value, type):
        names = _FIELD_NAMES[kind] = tuple(field.name for field in fields(value))
    return names


def _as_dict(value: object) -> object:
    """What ``dataclasses.asdict`` gives (dataclasses, named tuples, lists, tuples and dicts inside too),
    without its deep copy of strings, numbers and None, which are immutable."""
    kind = type(value)
    if kind in _ATOMS:
        return value
    names = _field_names(value)
    if names is not None:
        return {name: _as_dict(getattr(value, name)) for name in names}
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return kind(*[_as_dict(item) for item in value])
    if isinstance(value, list | tuple):
        return kind(_as_dict(item) for item in value)  # type: ignore[call-arg]
    if isinstance(value, dict):
        return kind((_as_dict(key), _as_dict(item)) for key, item in value.items())  # type: ignore[call-arg]
    return copy.deepcopy(value)


class _NotPlain(Exception):  # noqa: N818 - internal signal: take the JSON round trip
    pass


def _plain(value: object) -> object:
    """``value`` rebuilt from JSON types when it holds nothing else (exact dicts with string keys, lists,
    tuples, strings, numbers, None, dataclasses as ``asdict`` gives them; string enums become their text);
    ``_NotPlain`` otherwise."""
    kind = type(value)
    if kind in _ATOMS:
        return value
    if kind is dict:
        copied: dict[str, object] = {}
        for key, item in cast(dict[object, object], value).items():
            if type(key) is not str:
                raise _NotPlain
            copied[key] = _plain(item)
        return copied
    if kind is list or kind is tuple:
        return [_plain(item) for item in cast(Sequence[object], value)]
    names = _field_names(value)
    if names is not None:
        copied = {}
        for name in names:
            item = getattr(value, name)
            copied[name] = item if type(item) in _ATOMS else _plain(item)
        return copied
    if isinstance(value, str):
        return str.__str__(value)  # a string enum: JSON writes its text
    raise _NotPlain


def json_copy(value: object) -> Any:
    """What ``json.loads(json.dumps(value, default=str))`` gives, dataclasses inside taken as ``asdict`` gives
    them; without the text in between when ``value`` holds only such values (the common case: the MAIL and
    RCPT parameters of every stored message)."""
    try:
        return _plain(value)
    except _NotPlain:
        return json.loads(json.dumps(value, default=_json_default))


def _json_default(value: object) -> object:
    """For ``json.dumps``: a dataclass as its fields, anything else it cannot write as its ``str``."""
    names = _field_names(value)
    return str(value) if names is None else {name: getattr(value, name) for name in names}


def _pick(envelope: Mapping[str, object], field: str) -> object:
    for key in ENVELOPE_KEYS[field]:
        if key in envelope:
            return envelope[key]
    return None


def _text(value: object, field: str, *, required: bool = False) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise StoreError(f"envelope field {field!r} must be a string, not {type(value).__name__}")
    return value


def _client(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) >= 2:
        host, port = str(value[0]), value[1]  # an asyncio peername
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return str(_text(value, "client_address"))


def _tls(value: object) -> str | None:
    if value is None or value is False:
        return None
    if value is True:
        return "yes"
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return json.dumps(value, sort_keys=True, default=str)
    raise StoreError(f"envelope field 'tls' must be a string, a bool or a mapping, not {type(value).__name__}")


def _received(value: object, now: float) -> float:
    if value is None:
        return now
    if isinstance(value, dt.datetime):
        return value.timestamp()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise StoreError(f"envelope field 'received_at' must be a timestamp, not {type(value).__name__}")


def _address(value: object) -> object:
    """An address, or the ``address`` of a parsed command (``MailFrom``, ``RcptTo``, or either after ``asdict``)."""
    if type(value) is str:
        return value
    if _field_names(value) is not None:
        return getattr(value, "address", None)
    if isinstance(value, Mapping):
        return value.get("address")
    return value


def _parsed(value: object) -> bool:
    """A parsed command (``MailFrom``, ``RcptTo``): a mapping, or a dataclass."""
    return _field_names(value) is not None or isinstance(value, Mapping)


def _recipients(value: object) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence | set | frozenset) or not value:
        raise StoreError("envelope field 'recipients' must be a non-empty list of addresses")
    recipients = [_address(r) for r in value]
    if not all(isinstance(r, str) for r in recipients):
        raise StoreError("envelope field 'recipients' must hold addresses (strings)")
    return cast(list[str], recipients)


def subject_of(message: bytes) -> str | None:
    """The decoded Subject header, for listings and search; ``None`` when absent or undecodable."""
    head = message[:_HEADER_SCAN]
    for separator in (b"\r\n\r\n", b"\n\n"):
        end = head.find(separator)
        if end >= 0:
            head = head[: end + len(separator)]
            break
    plain, subject_text = _plain_subject(head)
    if plain:
        return subject_text
    try:
        parsed = email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(head)
        subject = parsed["subject"]
    except Exception:  # a malformed header must never stop a message from being stored
        return None
    if subject is None:
        return None
    return " ".join(str(subject).split())[:_MAX_SUBJECT]


_HEADER_NAME = frozenset(range(0x21, 0x7F)) - {0x3A}  # printable ASCII but ":" (RFC 5322 section 2.2)


def _plain_subject(head: bytes) -> tuple[bool, str | None]:
    """``(True, subject)`` for a plain header block, read without the email parser (about 40 µs a message
    otherwise), with what :func:`subject_of` gives through the parser (None: no Subject field);
    ``(False, None)`` when the block needs the parser: encoded words, 8-bit or control octets, a line that is
    not a header field, a first line that continues nothing, an mbox ``From`` line, a bare CR."""
    if not head.isascii() or b"=?" in head or head.startswith((b"From ", b" ", b"\t")):
        return False, None
    text = head.replace(b"\r\n", b"\n")
    if b"\r" in text:
        return False, None  # the parser breaks lines there too
    subject: list[bytes] | None = None
    in_subject = False
    for line in text.split(b"\n"):
        if not line:
            break  # the blank line that ends the header (or the end of the scanned part)
        if line[:1] in (b" ", b"\t"):
            if in_subject:
                assert subject is not None
                subject.append(line)
            continue
        name, colon, value = line.partition(b":")
        if not colon or not name or not _HEADER_NAME.issuperset(name):
            return False, None
        in_subject = subject is None and name.lower() == b"subject"
        if in_subject:
            subject = [value]
    if subject is None:
        return True, None
    joined = b" ".join(subject)
    if any((octet < 0x20 and octet != 0x09) or octet == 0x7F for octet in joined):
        return False, None  # control characters: the parser decides
    return True, " ".join(joined.decode("ascii").split())[:_MAX_SUBJECT]


def normalize_envelope(envelope: EnvelopeLike, session_id: str | None, now: float) -> dict[str, Any]:
    """The envelope's fields, checked and copied (the caller may reuse its dict); ``StoreError`` when wrong.

    A dataclass (the session's ``Envelope``) is taken as ``dataclasses.asdict`` gives it: the sender from
    ``mail.address``, the recipients from each ``address``; MAIL and RCPT parameters are kept as JSON.
    """
    if session_id is not None and not isinstance(session_id, str):
        raise StoreError(f"the session id must be a string, not {type(session_id).__name__}")
    names = _field_names(envelope)
    if names is not None:  # its fields, converted where they are read below (as asdict would convert them)
        envelope = {name: getattr(envelope, name) for name in names}
    if not isinstance(envelope, Mapping):
        raise StoreError(f"the envelope must be a mapping, not {type(envelope).__name__}")
    extra = {str(k): v for k, v in envelope.items() if k not in _NAMED_KEYS}
    recipients = _pick(envelope, "recipients")
    if isinstance(recipients, Sequence) and any(_parsed(r) for r in recipients):
        extra["recipient_parameters"] = recipients  # RFC 3461 NOTIFY and ORCPT per recipient
    mail_from = _pick(envelope, "mail_from")
    if mail_from is None and _parsed(envelope.get("mail")):
        mail_from = _address(envelope["mail"])  # the MAIL parameters stay in ``extra["mail"]``
    return {
        "received_at": _received(_as_dict(_pick(envelope, "received_at")), now),
        "client_address": _client(_as_dict(_pick(envelope, "client_address"))),
        "helo": _text(_pick(envelope, "helo"), "helo"),
        "mail_from": _text(mail_from, "mail_from", required=True),
        "recipients": _recipients(recipients),
        "tls": _tls(_as_dict(_pick(envelope, "tls"))),
        "auth_identity": _text(_pick(envelope, "auth_identity"), "auth_identity"),
        "session_id": session_id,
        "envelope": json_copy(extra),
    }


def complete_metadata(meta: dict[str, Any], queue_id: str, message: bytes) -> dict[str, Any]:
    """Add what the message bytes give (size, SHA-256, subject): the work for a worker thread."""
    return {
        **meta,
        "queue_id": queue_id,
        "size": len(message),
        "sha256": hashlib.sha256(message).hexdigest(),
        "subject": subject_of(message),
    }
