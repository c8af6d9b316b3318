"""Microsoft Exchange Server 2007 and later: the text form of their non-delivery reports.

Exchange writes a ``multipart/report`` whose human-readable part ends with ``Diagnostic information for
administrators:`` (localised: "Informations de diagnostic pour les administrateurs", "Diagnoseinformationen
für Administratoren", …): ``Generating server: <host>``, then per recipient its address on a line of its own,
sometimes the remote host on the next line, and the reply: ``#550 5.1.1 RESOLVER.ADR.RecipNotFound; not
found ##`` (on-premises) or ``Remote Server returned '550 5.1.1 …'`` (Exchange Online; the quote may wrap onto
more lines). ``Original message headers:`` follows. When the report also has a standard delivery-status part,
the RFC 3464 decoder reads it (its fields say as much); this decoder reads the reports that lost it.
"""

from __future__ import annotations

import re

from smtplens.bounce.decoders import MAX_RECIPIENTS, clean_address
from smtplens.bounce.decoders.rfc3464 import DSN_TYPES
from smtplens.bounce.mime import Mail
from smtplens.bounce.model import Action, Finding

__all__ = ["decode", "detect", "name", "read_report"]

name = "exchange2007"

_MARKER = re.compile(
    r"^\s*(?:Diagnostic information for administrators|Informations de diagnostic pour les administrateurs"
    r"|Diagnoseinformationen f\S*r Administratoren|Informaci\S*n de diagn\S*stico para administradores"
    r"|Informazioni di diagnostica per gli amministratori|Diagnostische informatie voor beheerders"
    r"|管理者向けの診断情報)\s*:?\s*$",
    re.I | re.M,
)
_GENERATING = re.compile(
    r"^\s*(?:Generating server|Serveur de g\S*n\S*ration|Generierender Server|Servidor de generaci\S*n"
    r"|Server di generazione|生成サーバー)\s*:\s*(\S+)",
    re.I,
)
_ADDRESS = re.compile(r"^\s*<?([^\s<>\"@:]+@[^\s<>\":]+?)>?\s*$")
_HOST = re.compile(r"^\s*([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)\s*$")
# "Remote Server returned '…'", or with the time and server of the attempt: "5/25/2018 8:21:10 AM - Server at
# mx.example.net (192.0.2.1) returned '…'" (the last attempt first).
_RETURNED = re.compile(
    r"^\s*(?:[\d/.-]+ [\d:]+(?: [AP]M)? - )?(?:Remote )?Server(?: at ([^\s']+)(?: \([^)]*\))?)? returned\s*'(.*)$", re.I
)
_HASHED = re.compile(r"^\s*#(.*?)(?:##.*)?$")
_HEADERS = re.compile(r"^\s*(?:Original message headers|[A-Za-z-]+:\s)", re.I)
MAX_TEXT = 200_000


# detect() is false unless one of these is in the mail's header (dispatch.py)
GATE = ("x-ms-exchange-message-is-ndr", "content-language")


def detect(mail: Mail) -> bool:
    headers = mail.headers
    if "x-ms-exchange-message-is-ndr" not in headers and "content-language" not in headers:
        return False
    if mail.find(*DSN_TYPES) is not None:
        return False
    return "x-ms-exchange-message-is-ndr" in headers or _MARKER.search(mail.text[:MAX_TEXT]) is not None


def decode(mail: Mail) -> list[Finding]:
    return read_report(mail.text[:MAX_TEXT])


def read_report(text: str) -> list[Finding]:
    """The recipients of the administrators' section of an Exchange report (empty if there is none)."""
    marker = _MARKER.search(text)
    if marker is None:
        return []
    findings: list[Finding] = []
    generating = None
    quoted: list[str] | None = None
    for line in text[marker.end() :].split("\n"):
        if quoted is not None:
            quoted.append(line.strip())
            if line.rstrip().endswith("'"):
                _set(findings, " ".join(quoted).rstrip("'"))
                quoted = None
            continue
        if not line.strip():
            continue
        m = _GENERATING.match(line)
        if m is not None:
            generating = m.group(1).rstrip(".")
            continue
        m = _ADDRESS.match(line)
        if m is not None:
            address = clean_address(m.group(1))
            if address is None or len(findings) > MAX_RECIPIENTS:
                break
            findings.append(Finding(recipient=address, action=Action.FAILED, reporting_mta=generating))
            continue
        if not findings:
            continue
        m = _RETURNED.match(line)
        if m is not None:
            quoted = _returned(findings[-1], m)
            continue
        m = _HASHED.match(line)
        if m is not None and findings[-1].diagnostic is None:
            _set(findings, m.group(1))
            continue
        m = _HOST.match(line)
        if m is not None and findings[-1].diagnostic is None:
            findings[-1].remote_host = m.group(1)
            continue
        if _HEADERS.match(line):
            break
    if quoted:
        _set(findings, " ".join(quoted))
    return findings


def _returned(finding: Finding, m: re.Match[str]) -> list[str] | None:
    """Read a "Server returned '…'" line into ``finding``; the start of the quote if it goes on (else None)."""
    if finding.diagnostic is not None:
        return None  # an earlier attempt
    if m.group(1) and finding.remote_host is None:
        finding.remote_host = m.group(1).rstrip(".")
    rest = m.group(2).rstrip()
    if rest.endswith("'"):
        finding.diagnostic = " ".join(rest[:-1].split()) or None
        return None
    return [rest]


def _set(findings: list[Finding], diagnostic: str) -> None:
    text = " ".join(diagnostic.split())
    if findings and text:
        findings[-1].diagnostic = text
