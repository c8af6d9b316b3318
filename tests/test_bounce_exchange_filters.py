"""Decoders of Microsoft Exchange / Microsoft 365, Lotus Notes / Domino, Japanese mobile carriers and mail
gateways (IMail, m-FILTER, MX Logic, InterScan, MailFoundry, MailMarshal, Mimecast, Verizon): the project's own
fixture mails, broken input, and the shared corpus of real bounces."""

from __future__ import annotations

import json

import pytest

from smtplens.bounce import Action, BounceResult, Kind, decode_bounce
from smtplens.bounce.decoders import (
    domino,
    exchange2003,
    exchange2007,
    ezweb,
    imailserver,
    kddi,
    mailfoundry,
    mailmarshal,
    mfilter,
    mimecast,
    mxlogic,
    notes,
    office365,
    trendmicro,
    verizon,
)
from smtplens.bounce.mime import parse_mail
from smtplens.bounce.registry import DECODERS
from smtplens.model import Stage
from tests.conftest import FIXTURES, shared_path

BOUNCES = FIXTURES / "bounces"
MINE = (
    domino,
    exchange2003,
    exchange2007,
    ezweb,
    imailserver,
    kddi,
    mailfoundry,
    mailmarshal,
    mfilter,
    mimecast,
    mxlogic,
    notes,
    office365,
    trendmicro,
    verizon,
)


def decode(name: str) -> BounceResult:
    return decode_bounce((BOUNCES / name).read_bytes())


def test_registered_before_the_standard_decoders() -> None:
    standard = DECODERS.index(next(d for d in DECODERS if d.name == "arf"))
    for module in MINE:
        assert module in DECODERS[:standard], module.name


def test_exchange2003_recipients_and_reason() -> None:
    result = decode("exchange2003-unknown.eml")
    assert result.decoder == "exchange2003"
    assert [r.recipient for r in result.recipients] == ["alice@mail.test", "bob@mail.test"]
    first = result.recipients[0]
    assert first.reason == "user_unknown" and first.hard_bounce and first.action is Action.FAILED
    assert first.diagnostic is not None and "MTS-ID" not in first.diagnostic
    assert "(000C05A6) Unknown Recipient" in first.diagnostic
    assert first.timestamp is not None and first.timestamp.hour == 10


def test_office365_without_delivery_status_reads_the_administrators_section() -> None:
    result = decode("office365-no-dsn.eml")
    assert result.decoder == "office365"
    (r,) = result.recipients
    assert r.recipient == "carol@dest.test"
    assert r.reason == "user_unknown" and r.status == "5.1.1" and r.reply_code == "550"
    assert r.remote_host == "mx.dest.test"
    assert r.reporting_mta == "AB1PR01MB0001.eurprd01.prod.outlook.com"
    assert r.diagnostic is not None and r.diagnostic.endswith("virtual mailbox table")  # the wrapped quote


def test_exchange2007_report_forms() -> None:
    text = (
        "Diagnostic information for administrators:\n\nGenerating server: ex1.corp.test\n\n"
        "a@corp.test\n#550 5.1.1 RESOLVER.ADR.RecipNotFound; not found ##\n\n"
        "b@far.test\n3/09/2016 8:05:56 PM - Remote Server at mx.far.test (192.0.2.3) returned "
        "'550 4.4.7 QUEUE.Expired; message expired'\n"
        "3/09/2016 7:58:27 PM - Remote Server at mx.far.test (192.0.2.3) returned '441 4.4.1 earlier'\n\n"
        "Original message headers:\n\nSubject: x\n"
    )
    a, b = exchange2007.read_report(text)
    assert (a.recipient, a.diagnostic, a.reporting_mta) == (
        "a@corp.test",
        "550 5.1.1 RESOLVER.ADR.RecipNotFound; not found",
        "ex1.corp.test",
    )
    assert (b.recipient, b.remote_host, b.diagnostic) == (
        "b@far.test",
        "mx.far.test",
        "550 4.4.7 QUEUE.Expired; message expired",
    )


def test_ezweb_filter_and_transcript() -> None:
    result = decode("ezweb-filter.eml")
    assert result.decoder == "ezweb"
    filtered, unknown = result.recipients
    assert filtered.recipient == "dave@ezweb.ne.jp" and filtered.reason == "content_rejected"
    assert not filtered.hard_bounce
    assert unknown.reason == "user_unknown" and unknown.reply_code == "550" and unknown.stage is Stage.RCPT


def test_imailserver_reason_lines_and_generated_response() -> None:
    result = decode("imailserver-response.eml")
    assert result.decoder == "imailserver"
    frank, grace = result.recipients  # the quoted "To:" line is not a recipient
    assert (frank.recipient, frank.reason, frank.diagnostic) == ("frank@relay.test", "user_unknown", "Unknown user")
    assert grace.recipient == "grace@far.test" and grace.reply_code == "552" and grace.status == "5.2.2"
    assert grace.diagnostic is not None and grace.diagnostic.startswith("552-5.2.2 Mailbox")


def test_mfilter_sections() -> None:
    result = decode("mfilter-server.eml")
    assert result.decoder == "mfilter"
    (r,) = result.recipients
    assert r.recipient == "heidi@dest.test" and r.stage is Stage.RCPT
    assert r.status == "5.1.1" and r.reply_code == "550"


def test_mimecast_alert() -> None:
    result = decode("mimecast-alert.eml")
    assert result.decoder == "mimecast"
    (r,) = result.recipients
    assert r.recipient == "ivan@corp.test" and r.reason == "mailbox_full" and r.status == "4.2.2"


def test_notes_failure_reasons() -> None:
    result = decode("notes-failure.eml")
    assert result.decoder == "notes"
    assert [r.recipient for r in result.recipients] == ["judy@notes.test", "mallory@notes.test"]
    assert all(r.reason == "user_unknown" and r.hard_bounce for r in result.recipients)


def test_domino_plain_text() -> None:
    result = decode("domino-plain.eml")
    assert result.decoder == "domino"
    (r,) = result.recipients
    assert r.recipient == "oscar@notes.test" and r.reason == "user_unknown"
    assert r.diagnostic == "User Oscar (oscar@notes.test) not listed in Domino Directory"


def test_mxlogic_wrapped_reply() -> None:
    result = decode("mxlogic-failed.eml")
    assert result.decoder == "mxlogic"
    (r,) = result.recipients
    assert r.recipient == "peggy@dest.test" and r.reason == "user_unknown" and r.status == "5.1.1"
    assert r.diagnostic is not None and r.diagnostic.endswith("local recipient table")


def test_kddi_mailbox_full() -> None:
    result = decode("kddi-full.eml")
    assert result.decoder == "kddi"
    (r,) = result.recipients
    assert r.recipient == "rupert@mx01.dion.ne.jp" and r.reason == "mailbox_full" and not r.hard_bounce
    assert r.timestamp is not None and r.timestamp.minute == 59


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"Subject: failure notice\n\n-------server message\n",
        b"Subject: DELIVERY FAILURE: x\n\nwas not delivered to:\n\nbecause:\n",
        b"X-MS-Embedded-Report: \nSubject: Undeliverable\n\ndid not reach the following recipient(s):\n\n\x00\xff",
        b"From: Postmaster@ezweb.ne.jp\nSubject: Mail System Error - Returned Mail\n\n<<< 550\n>>> RCPT\n",
        b"Subject: Undeliverable Mail\nSender: x\n\nBody of message generated response:\n550 x\n",
        b"X-MX-Bounce: x\n\nThe following address failed:\n\n  <\n",
        b"Subject: Undeliverable message\n\n------- Failure Reasons --------\n",
        b"X-Mimecast-Originator: <>\n\nfollowing address could not be delivered:\n-- \n",
        b"Content-Type: multipart/mixed; boundary=InterScan_NT_MIME_Boundary\n\nSent <<< RCPT TO:<\n",
        b"From: x@vzwpix.com\n\nOriginal Message:\nTo: ,,,\n",
        b"Subject: Message delivery has failed\n\nDelivery failed for the following reason:\nServer [ failed with:\n",
        b'Subject: Undeliverable Mail: "x"\n\nCould not be delivered because of\n',
        b"X-OriginatorOrg: x\n\nDiagnostic information for administrators:\nRemote Server returned '\n",
        b"From: no-reply@x.dion.ne.jp\n\nCould not be delivered to: <>\n",
    ],
)
def test_broken_input_never_raises(data: bytes) -> None:
    mail = parse_mail(data)
    for module in MINE:
        if module.detect(mail):
            assert isinstance(module.decode(mail), list)
    assert decode_bounce(data).kind in set(Kind)


CORPUS_FAMILIES = {
    "exchange2003": "exchange2003",
    "ezweb": "ezweb",
    "kddi": "kddi",
    "imailserver": "imailserver",
    "mfilter": "mfilter",
    "notes": "notes",
    "mxlogic": "mxlogic",
    "mailfoundry": "mailfoundry",
    "mailmarshal": "mailmarshal",
    "verizon": "verizon",
    "mimecast": "mimecast",
    "trendmicro": "trendmicro",
}


def test_corpus_families_are_decoded_by_their_decoder() -> None:
    """Every corpus mail of these families gets as many recipients as expected, from its own decoder."""
    corpus = shared_path("corpus", "sisimai")
    rows: dict[str, int] = {}
    for line in (corpus / "expected.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            file = json.loads(line)["file"]
            rows[file] = rows.get(file, 0) + 1
    checked = 0
    for file, count in rows.items():
        family = file.rsplit("/", 1)[-1].removeprefix("lhost-").rsplit("-", 1)[0]
        if not file.rsplit("/", 1)[-1].startswith("lhost-") or family not in CORPUS_FAMILIES:
            continue
        result = decode_bounce((corpus / file).read_bytes())
        assert result.decoder == CORPUS_FAMILIES[family], file
        assert len(result.recipients) == count, file
        checked += 1
    assert checked >= 20


def test_office365_and_domino_leave_standard_reports_to_rfc3464() -> None:
    mail = parse_mail(
        b"Subject: DELIVERY FAILURE: x\nX-OriginatorOrg: x\nContent-Type: multipart/report; "
        b"report-type=delivery-status; boundary=b\n\n--b\nContent-Type: message/delivery-status\n\n"
        b"Final-Recipient: rfc822; a@b.test\nAction: failed\nStatus: 5.1.1\n\n--b--\n"
    )
    assert not office365.detect(mail) and not domino.detect(mail) and not exchange2007.detect(mail)
