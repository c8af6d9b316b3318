"""Trend Micro InterScan Messaging Security Suite (InterScan MSS) notices.

A ``multipart/mixed`` with the boundary ``------------InterScan_NT_MIME_Boundary``, often from ``"InterScan
MSS" <postmaster@…>``, with the subject "Mail could not be delivered" (the Japanese edition: "メッセージを配信で
きません。" or "メール配信に失敗しました"): the text part ends with a line ``*****  End of message  *****`` and
either quotes the SMTP exchange (``Sent <<< RCPT TO:<address>`` then ``Received >>> 550 …``) or says ``Unable to
deliver message to <address>``; the returned message is attached. The Japanese edition labels the exchange in
Japanese and turns the arrows round: the command it sent after ``>>>``, the reply it received after ``<<<``; so
a line is read by what follows its arrow (a command word, or a reply code), whichever way the arrow points.
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders import MAX_RECIPIENTS, clean_address
from smtplens.bounce.mime import Mail
from smtplens.bounce.model import Action, Finding
from smtplens.model import Stage

__all__ = ["decode", "detect", "name"]

name = "trendmicro"

# "Sent <<< RCPT TO:<a@example.jp>" (English), "送信 >>> RCPT TO:<…>" (Japanese): a label, an arrow, a command
_SENT = re.compile(
    r"^[^<>\n]*?(?:<<<|>>>)[ \t]*(HELO|EHLO|MAIL|RCPT|DATA|RSET|QUIT)\b[^<\n]*(?:<([^<>\s]+@[^<>\s]+)>)?", re.I
)
# "Received >>> 550 5.1.1 …" (English), "受信 <<< 550 …" (Japanese): a label, an arrow, a reply with its code
_RECEIVED = re.compile(r"^[^<>\n]*?(?:<<<|>>>)[ \t]*([2-5][0-9][0-9](?:[ \t-].*)?)$")
_ADDRESS = re.compile(r"<([^<>\s]+@[^<>\s]+)>")
_UNABLE = re.compile(r"Unable to deliver message to\s*<([^<>\s]+@[^<>\s]+)>(.*)$", re.I)
_STAGES = {"HELO": Stage.HELO, "EHLO": Stage.HELO, "MAIL": Stage.MAIL, "RCPT": Stage.RCPT, "DATA": Stage.DATA}
MAX_TEXT = 100_000
_ARROW = re.compile(r"^[^<>\n]*(?:<<<|>>>)[ \t]*(?:rcpt|mail|data|[45][0-9][0-9])\b", re.M)
_SUBJECTS = ("mail could not be delivered", "メッセージを配信できません。", "メール配信に失敗しました")


# detect() is false unless one of these is in the mail's header (dispatch.py): the product's name (in the boundary
# or the sender) or one of its subjects
GATE = ("interscan", *_SUBJECTS)
# ... and unless one of these is in its readable text, or the product's name in the header (dispatch.py)
TEXT_GATE = ("interscan", "unable to deliver message to <", "<<<", ">>>")
HEADER_SIGNS = ("interscan",)


def detect(mail: Mail) -> bool:
    if "interscan" in mail.root.params.get("boundary", "").lower():
        return True
    if "interscan" in mail.lowered("from"):
        return True
    if mail.lowered("subject").strip() not in _SUBJECTS:  # (the Japanese ones come as encoded words)
        return False
    # the product's subject alone is common words: its name, or its quoted exchange, must be in the notice too
    head = mail.head(3000)
    return "interscan" in head or "unable to deliver message to <" in head or _ARROW.search(head) is not None


def decode(mail: Mail) -> list[Finding]:
    part = mail.find("text/plain")
    text = (part.text() if part is not None else mail.text)[:MAX_TEXT]
    findings: list[Finding] = []
    stage = None
    for line in text.split("\n"):
        if len(findings) > MAX_RECIPIENTS:
            break
        sent = _SENT.match(line)
        if sent is not None:
            stage = _STAGES.get(sent.group(1).upper())
            address = clean_address(sent.group(2))
            if address is not None and stage is Stage.RCPT:
                findings.append(Finding(recipient=address, action=Action.FAILED, stage=stage))
            continue
        received = _RECEIVED.match(line)
        if received is not None and not findings:
            # a reply quoted without the command before it names the recipient itself ("550 5.1.1 <a@…>…")
            named = _ADDRESS.search(received.group(1))
            address = clean_address(named.group(1)) if named else None
            if address is not None:
                findings.append(Finding(recipient=address, action=Action.FAILED, stage=stage))
        if received is not None and findings:
            last = findings[-1]
            reply = received.group(1).strip()
            last.diagnostic = f"{last.diagnostic} {reply}" if last.diagnostic else reply
            last.stage = stage
            continue
        unable = _UNABLE.search(line)
        if unable is not None:
            address = clean_address(unable.group(1))
            # the summary line after the session's transcript names a recipient already read from it
            if address is not None and not any(f.recipient.lower() == address.lower() for f in findings):
                findings.append(Finding(recipient=address, action=Action.FAILED, diagnostic=line.strip()))
    return findings
