"""Bounce decoding over the real mails of ../shared/corpus/sisimai (present in CI): every mail decodes without an
exception, the standard formats (RFC 3464, ARF, RFC 3834) decode with their recipients, and mutated mails never
make an exception escape (hypothesis)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smtplens.bounce import BounceResult, Kind, decode_bounce, iter_mails
from tests.conftest import shared_path

# Named after Sisimai's RFC 3464 module, but not delivery status notifications: plain-text bounces without DSN
# fields, which Sisimai reads with a scanner of unstructured text. They need a decoder of their own.
UNSTRUCTURED = {"maildir/bsd/rfc3464-37.eml", "maildir/bsd/rfc3464-38.eml"}
STANDARD = {"RFC3464": ("rfc3464", Kind.BOUNCE), "ARF": ("arf", Kind.FEEDBACK), "RFC3834": ("rfc3834", Kind.AUTO_REPLY)}
# Standard reports that an MTA's own decoder reads, because the MTA says more than the DSN fields: a Sendmail
# report whose transcript gives the reply of a program the address was aliased to.
READ_BY_MTA = {"maildir/bsd/rfc3464-04.eml": "sendmail"}


def _corpus() -> Path:
    return shared_path("corpus", "sisimai")


def _mails(root: Path) -> list[Path]:
    return sorted((root / "maildir").rglob("*.eml"))


def _decode(path: Path) -> BounceResult:
    """The file's mails decoded (a file may be an mbox of several), their recipients in one result."""
    results = [decode_bounce(data) for _, data in iter_mails([path]) if isinstance(data, bytes)]
    first = results[0]
    return BounceResult(first.kind, first.decoder, tuple(r for res in results for r in res.recipients))


def _expected(root: Path) -> dict[str, list[dict[str, object]]]:
    rows: dict[str, list[dict[str, object]]] = defaultdict(list)
    for line in (root / "expected.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            rows[str(row["file"])].append(row)
    return rows


def test_every_corpus_mail_decodes() -> None:
    mails = _mails(_corpus())
    assert len(mails) > 500
    kinds: defaultdict[Kind, int] = defaultdict(int)
    for path in mails:
        result = _decode(path)
        kinds[result.kind] += 1
        for r in result.recipients:
            assert r.reason and r.decoder == result.decoder
            assert r.to_dict()["recipient"] == r.recipient
    assert kinds[Kind.BOUNCE] > 250 and kinds[Kind.FEEDBACK] >= 10 and kinds[Kind.AUTO_REPLY] >= 4


def test_standard_formats_decode_with_their_recipients() -> None:
    root = _corpus()
    checked = 0
    for name, rows in sorted(_expected(root).items()):
        module = str(rows[0]["module"])
        if module not in STANDARD or name in UNSTRUCTURED:
            continue
        decoder, kind = STANDARD[module]
        decoder = READ_BY_MTA.get(name, decoder)
        result = _decode(root / name)
        assert result.decoder == decoder, name
        assert len(result.recipients) == len(rows), name
        allowed = {kind, Kind.DELIVERY_NOTICE} if kind is Kind.BOUNCE else {kind}  # a DSN may report success
        assert result.kind in allowed, name
        if module == "ARF":
            assert [r.feedback_type for r in result.recipients] == [row["feedbacktype"] for row in rows], name
        checked += 1
    assert checked >= 40


def test_dsn_status_codes_agree() -> None:
    """Where Sisimai's expected status is a real enhanced code, an RFC 3464 recipient has the same one."""
    root = _corpus()
    agree = total = 0
    for name, rows in sorted(_expected(root).items()):
        if str(rows[0]["module"]) != "RFC3464" or name in UNSTRUCTURED:
            continue
        result = _decode(root / name)
        for row, got in zip(rows, result.recipients, strict=False):
            status = str(row["status"])
            if status and len(status.rsplit(".", 1)[-1]) < 3:  # 5.0.912 and the like are Sisimai's own codes
                total += 1
                agree += got.status == status
    assert total >= 20 and agree == total


def _mutate(data: bytes, draw: st.DrawFn) -> bytes:
    size = len(data)
    at = draw(st.integers(min_value=0, max_value=size))
    end = draw(st.integers(min_value=at, max_value=min(size, at + 4000)))
    op = draw(st.sampled_from(["cut", "drop", "insert", "repeat", "flip", "endings", "boundary"]))
    if op == "cut":
        return data[:at]
    if op == "drop":
        return data[:at] + data[end:]
    if op == "insert":
        return data[:at] + draw(st.binary(max_size=200)) + data[at:]
    if op == "repeat":
        return data[:end] + data[at:end] * draw(st.integers(min_value=2, max_value=20)) + data[end:]
    if op == "flip":
        noise = draw(st.binary(min_size=end - at, max_size=end - at))
        return data[:at] + bytes(a ^ b for a, b in zip(data[at:end], noise, strict=True)) + data[end:]
    if op == "endings":
        return data.replace(b"\n", draw(st.sampled_from([b"\r", b"\r\n", b"\r\r\n", b"\n\n", b""])))
    return data.replace(b"boundary=", draw(st.sampled_from([b"boundary*=", b'boundary=""', b"x="])))


@st.composite
def _mutated(draw: st.DrawFn, mails: list[bytes]) -> bytes:
    data = draw(st.sampled_from(mails))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        data = _mutate(data, draw)
    return data


def test_mutated_corpus_mails_never_raise() -> None:
    mails = [p.read_bytes() for p in _mails(_corpus())]

    @settings(
        max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
    )
    @given(_mutated(mails))
    def check(data: bytes) -> None:
        result = decode_bounce(data)
        for r in result.recipients:
            r.to_dict()

    check()
