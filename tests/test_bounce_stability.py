"""Decoders read a bounce by what it says, not by how one MTA happened to spell it: rewriting a mail the way a
relay or a mail store may (header field names in another case, CRLF line ends, other MIME boundaries, a body put
in base64 or quoted-printable, the subject as an encoded word) leaves every recipient's result unchanged. Run over
the project's own fixtures and, when present, the shared corpus."""

from __future__ import annotations

import base64
import quopri
import re
from collections.abc import Callable
from email.header import Header
from pathlib import Path

import pytest

from smtplens.bounce import decode_bounce
from smtplens.bounce.mime import parse_mail
from tests.conftest import shared_path

FIXTURES = Path(__file__).parent / "fixtures" / "bounces"
_FIELD = re.compile(rb"^([!-9;-~]+)(:)")  # a header field name (RFC 5322 section 2.2) and its colon
_BOUNDARY = re.compile(rb'boundary\s*=\s*"?([^";\r\n]+)"?', re.IGNORECASE)


def _rename_fields(data: bytes, rename: Callable[[bytes], bytes]) -> bytes:
    """``rename`` applied to the field names of the mail's header and of every MIME part's header (the lines
    from the start, or from a boundary line, to the next empty line); bodies are left alone."""
    boundaries = {b"--" + b for b in _BOUNDARY.findall(data)}
    closings = {b + b"--" for b in boundaries}
    lines = data.splitlines(keepends=True)
    in_header = True
    out: list[bytes] = []
    for line in lines:
        bare = line.rstrip(b"\r\n")
        if bare in boundaries:  # a part starts with its header
            in_header = True
        elif bare in closings or not bare:
            in_header = False
        elif in_header:
            out.append(_FIELD.sub(lambda m: rename(m.group(1)) + m.group(2), line, count=1))
            continue
        out.append(line)
    return b"".join(out)


def _new_boundaries(data: bytes) -> bytes:
    for number, boundary in enumerate(sorted(set(_BOUNDARY.findall(data)), key=len, reverse=True)):
        data = data.replace(boundary, b"=_rewritten_boundary_%d_Q" % number)
    return data


def _crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")


_MULTIPART_OR_ENCODED = re.compile(
    rb"^content-(?:type:[ \t]*(?:multipart|message)/|transfer-encoding:[ \t]*(?:base64|quoted-printable))", re.I | re.M
)
_TRANSFER_ENCODING = re.compile(rb"^content-transfer-encoding:[^\n]*\n", re.I | re.M)


def _encoded_body(data: bytes, name: bytes, encode: Callable[[bytes], bytes]) -> bytes:
    """A single-part mail with its body in the transfer encoding ``name`` (as a gateway or a mail store may put
    it: base64 text in its canonical form, CRLF line ends, RFC 2045 section 6.8); other mails as they are."""
    head, blank, body = data.replace(b"\r\n", b"\n").partition(b"\n\n")
    if not blank or _MULTIPART_OR_ENCODED.search(head):
        return data
    head = _TRANSFER_ENCODING.sub(b"", head + b"\n")
    return head + b"Content-Transfer-Encoding: " + name + b"\n\n" + encode(body)


_SUBJECT = re.compile(rb"^subject:[ \t]*([^\n]*(?:\n[ \t][^\n]*)*)\n", re.I | re.M)


def _encoded_subject(data: bytes) -> bytes:
    """The mail's subject as one UTF-8 encoded word (RFC 2047), as a gateway or a name that is not ASCII may write
    it; a mail whose subject is encoded already, or has none, as it is."""
    data = data.replace(b"\r\n", b"\n")
    end = data.find(b"\n\n")
    found = _SUBJECT.search(data, 0, end if end >= 0 else len(data))
    if found is None or b"=?" in found.group(1):
        return data
    value = b" ".join(found.group(1).split()).decode("latin-1")
    encoded = Header(value, "utf-8").encode().encode("ascii")
    return data[: found.start()] + b"Subject: " + encoded + b"\n" + data[found.end() :]


REWRITES: dict[str, Callable[[bytes], bytes]] = {
    "lower-case field names": lambda data: _rename_fields(data, bytes.lower),
    "upper-case field names": lambda data: _rename_fields(data, bytes.upper),
    "other MIME boundaries": _new_boundaries,
    "CRLF line ends": _crlf,
    "body in base64": lambda data: _encoded_body(
        data, b"base64", lambda body: base64.encodebytes(body.replace(b"\n", b"\r\n"))
    ),
    "body in quoted-printable": lambda data: _encoded_body(data, b"quoted-printable", quopri.encodestring),
    "subject as an encoded word": _encoded_subject,
}


def _summary(data: bytes) -> tuple[object, ...]:
    """What a user gets per recipient. Not the decoder's name: a vendor's own boundary string (InterScan's) is a
    fair sign of its format, and without it the generic decoder may read the same report."""
    result = decode_bounce(data)
    rows = tuple((r.recipient, r.reason, r.status, r.reply_code, r.action) for r in result.recipients)
    return result.kind, rows


def _unstable(paths: list[Path], rewrite: Callable[[bytes], bytes]) -> list[str]:
    changed = []
    for path in paths:
        data = path.read_bytes()
        if _summary(data) != _summary(rewrite(data)):
            changed.append(path.name)
    return changed


@pytest.mark.parametrize("rewrite", REWRITES, ids=list(REWRITES))
def test_rewritten_fixtures_decode_the_same(rewrite: str) -> None:
    paths = sorted(FIXTURES.glob("*.eml"))
    assert len(paths) > 40
    assert _unstable(paths, REWRITES[rewrite]) == []


@pytest.mark.parametrize("rewrite", REWRITES, ids=list(REWRITES))
def test_rewritten_corpus_mails_decode_the_same(rewrite: str) -> None:
    paths = sorted((shared_path("corpus", "sisimai") / "maildir" / "bsd").glob("*.eml"))
    assert _unstable(paths, REWRITES[rewrite]) == []


def test_the_rewrites_touch_headers_only() -> None:
    mail = (
        b'From: a@example.org\r\nContent-Type: multipart/report; boundary="B1"\r\n\r\n'
        b"Body: stays\r\n--B1\r\nContent-Type: text/plain\r\n\r\nSMTP: stays too\r\n--B1--\r\n"
    )
    lowered = REWRITES["lower-case field names"](mail)
    assert b"from: a@example.org" in lowered and b"content-type: text/plain" in lowered
    assert b"Body: stays" in lowered and b"SMTP: stays too" in lowered
    assert b"B1" not in REWRITES["other MIME boundaries"](mail)
    assert REWRITES["body in base64"](mail) == mail  # multipart: left alone


def test_the_body_rewrites_encode_a_single_part_body() -> None:
    mail = b"From: a@example.org\nContent-Transfer-Encoding: 7bit\n\nline one\nline two\n"
    encoded = REWRITES["body in base64"](mail)
    assert encoded.count(b"Content-Transfer-Encoding") == 1
    assert base64.b64decode(encoded.partition(b"\n\n")[2]) == b"line one\r\nline two\r\n"
    assert b"quoted-printable" in REWRITES["body in quoted-printable"](mail)


def test_the_subject_rewrite_encodes_the_subject() -> None:
    mail = b"From: a@example.org\nSubject: Undelivered Mail\n Returned to Sender\n\nSubject: body\n"
    rewritten = REWRITES["subject as an encoded word"](mail)
    assert rewritten.startswith(b"From: a@example.org\nSubject: =?utf-8?")
    assert rewritten.endswith(b"\n\nSubject: body\n")
    assert parse_mail(rewritten).headers.text("subject") == "Undelivered Mail Returned to Sender"
