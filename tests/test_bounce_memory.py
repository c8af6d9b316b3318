"""Memory stays bounded on an enormous bounce (issue #4): a mail of ~50 MB is decoded with little more memory
than the mail itself.

How much is allowed, and why: the mail is held once as text (``latin-1``, one character per byte, 1x its
size); a mail with CRLF line endings is copied once more while its line endings are normalised (bytes, then
text: at most 2x at any moment). Parts are spans of that one text, never copies, however deeply they nest.
What is decoded from a part as text is cut at ``MAX_TEXT_PART`` characters, a base64 or quoted-printable
attached message at ``MAX_ENCODED_MESSAGE``. So the peak of what decoding allocates (tracemalloc, the input
bytes themselves not counted) must stay under ``2 x size + 3 x MAX_TEXT_PART`` (the copies one part's text
takes while it is decoded). Before parts were spans, the peak was 4x the size of the mail (each level of
nesting copied the body); measured now: 1.0x to 1.2x with LF line endings, 2.0x with CRLF.
"""

from __future__ import annotations

import base64
import tracemalloc
from collections.abc import Callable

import pytest

from smtplens.bounce import BATCH, BATCH_BYTES, BounceResult, Kind, decode_bounce, decode_bounces
from smtplens.bounce.mime import MAX_TEXT_PART
from tests.conftest import FIXTURES

SIZE = 50 * 1024 * 1024
REPORT = (
    b"From: MAILER-DAEMON@mx.example.org\n"
    b"To: sender@example.com\n"
    b"Subject: Undelivered Mail Returned to Sender\n"
    b"MIME-Version: 1.0\n"
    b'Content-Type: multipart/report; report-type=delivery-status; boundary="outer"\n'
    b"\n"
    b"--outer\n"
    b"Content-Type: text/plain\n"
    b"\n"
    b"<rcpt@example.net>: host mx.example.net[192.0.2.1] said: 550 5.1.1 <rcpt@example.net>: User unknown\n"
    b"    (in reply to RCPT TO command)\n"
    b"\n"
    b"--outer\n"
    b"Content-Type: message/delivery-status\n"
    b"\n"
    b"Reporting-MTA: dns; mx.example.org\n"
    b"\n"
    b"Final-Recipient: rfc822; rcpt@example.net\n"
    b"Action: failed\n"
    b"Status: 5.1.1\n"
    b"Diagnostic-Code: smtp; 550 5.1.1 <rcpt@example.net>: User unknown\n"
    b"\n"
    b"--outer\n"
    b"Content-Type: message/rfc822\n"
    b"\n"
    b"From: sender@example.com\n"
    b"To: rcpt@example.net\n"
    b"Subject: holiday pictures\n"
    b"Message-ID: <big.1@example.com>\n"
    b"MIME-Version: 1.0\n"
    b'Content-Type: multipart/mixed; boundary="inner"\n'
    b"\n"
    b"--inner\n"
    b"Content-Type: text/plain\n"
    b"\n"
    b"see attachment\n"
    b"--inner\n"
)


def _huge_base64() -> bytes:
    """A DSN whose returned message carries a ~50 MB base64 attachment."""
    line = base64.b64encode(bytes(range(57)))  # 76 characters
    body = (line + b"\n") * (SIZE // 77)
    attachment = b"Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
    return REPORT + attachment + body + b"--inner--\n\n--outer--\n"


def _huge_text() -> bytes:
    """A DSN whose returned message is ~50 MB of plain text (one long attachment without structure)."""
    body = b"All work and no play makes a very large message.\n" * (SIZE // 50)
    return REPORT + b"Content-Type: text/plain\n\n" + body + b"--inner--\n\n--outer--\n"


def _huge_readable() -> bytes:
    """A bounce whose human-readable part itself is ~50 MB (a broken or hostile mail)."""
    filler = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\n" * (SIZE // 74)
    head, _, tail = REPORT.partition(b"    (in reply to RCPT TO command)\n")
    return head + b"    (in reply to RCPT TO command)\n" + filler + tail + b"--inner--\n\n--outer--\n"


def _encoded_original() -> bytes:
    """A DSN whose returned message (~50 MB) is itself base64-encoded as a message/rfc822 part."""
    head, _, _ = REPORT.partition(b"Content-Type: message/rfc822\n")
    original = _huge_text()[len(head) + len(b"Content-Type: message/rfc822\n\n") :]
    encoded = base64.encodebytes(original)
    return head + b"Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n" + encoded + b"--outer--\n"


def _peak(data: bytes) -> tuple[int, BounceResult]:
    decode_bounce(b"Subject: warm up\n\nload the tables first\n")
    tracemalloc.start()
    try:
        result = decode_bounce(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, result


@pytest.mark.parametrize(
    ("build", "crlf"),
    [
        (_huge_base64, False),
        (_huge_base64, True),
        (_huge_text, False),
        (_huge_readable, False),
        (_encoded_original, False),
    ],
    ids=["base64-attachment", "base64-attachment-crlf", "text-original", "huge-readable-part", "encoded-original"],
)
def test_a_50_mb_bounce_decodes_within_bounded_memory(build: Callable[[], bytes], crlf: bool) -> None:
    data = build()
    if crlf:
        data = data.replace(b"\n", b"\r\n")
    assert len(data) > 45 * 1024 * 1024
    peak, result = _peak(data)
    assert result.kind is Kind.BOUNCE
    [recipient] = result.recipients
    assert recipient.recipient == "rcpt@example.net"
    assert recipient.reason == "user_unknown"
    assert recipient.message_id == "big.1@example.com"
    assert peak < 2 * len(data) + 3 * MAX_TEXT_PART, f"peak {peak / 1e6:.0f} MB for a {len(data) / 1e6:.0f} MB mail"


def test_a_50_mb_bounce_in_a_stream_is_decoded_alone() -> None:
    """In a stream (decode_bounces, as ``smtplens bounce`` decodes), mails are decoded in groups of at most
    BATCH_BYTES: a 50 MB mail forms a group of its own, and the peak is that of decoding it alone, plus what a group
    of small mails takes (a few MB here)."""
    big = _huge_base64()
    small = (FIXTURES / "bounces" / "postfix-dsn.eml").read_bytes()
    stream = [small] * BATCH + [big] + [small] * BATCH
    decode_bounce(b"Subject: warm up\n\nload the tables first\n")
    tracemalloc.start()
    try:
        results = list(decode_bounces(stream))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(results) == len(stream)
    assert results[BATCH].recipients[0].message_id == "big.1@example.com"
    assert all(r.recipients[0].reason == "user_unknown" for r in results)
    assert peak < 2 * len(big) + 3 * MAX_TEXT_PART + 8 * BATCH_BYTES, f"peak {peak / 1e6:.0f} MB"
