"""The decoders, in the order they are tried (the first that recognises a mail and reads a recipient wins).

Explicit on purpose: no directory is scanned at run time, and a test checks that every module of
``smtplens.bounce.decoders`` is listed here. The order matters where formats overlap: decoders of one MTA or
provider go first (they read more than the standard fields say), then the standard formats: feedback reports and
refusals sent as disposition notifications before delivery status notifications (all are ``multipart/report``),
then automatic replies (some MTAs mark their bounces ``Auto-Submitted: auto-replied`` too, as Dovecot does its
refusals), and last the plain-text reading of a mail that looks like a bounce in no known format.
"""

from __future__ import annotations

from smtplens.bounce.decoders import (
    Decoder,
    activehunter,
    amazonses,
    aol,
    apachejames,
    arf,
    biglobe,
    courier,
    domino,
    dragonfly,
    exchange2003,
    exchange2007,
    exim,
    ezweb,
    fml,
    gmail,
    gmx,
    googlegroups,
    googleworkspace,
    imailserver,
    kddi,
    mailfoundry,
    mailmarshal,
    mailru,
    mdn,
    messagingserver,
    mfilter,
    mimecast,
    mxlogic,
    notes,
    office365,
    opensmtpd,
    plaintext,
    postfix,
    qmail,
    rfc3464,
    rfc3834,
    sendmail,
    trendmicro,
    v5sendmail,
    verizon,
    x1,
    x2,
    x3,
    x4,
    x5,
    x6,
    yahoo,
    zoho,
)

__all__ = ["DECODERS", "by_name"]

DECODERS: tuple[Decoder, ...] = (
    amazonses,
    gmail,
    googlegroups,
    googleworkspace,
    yahoo,
    aol,
    mailru,
    zoho,
    gmx,
    office365,
    exchange2007,
    exchange2003,
    mimecast,
    mxlogic,
    trendmicro,
    mailmarshal,
    mailfoundry,
    imailserver,
    mfilter,
    notes,
    domino,
    messagingserver,
    ezweb,
    kddi,
    verizon,
    dragonfly,
    qmail,
    exim,
    postfix,
    courier,
    opensmtpd,
    v5sendmail,
    sendmail,
    x1,
    x2,
    x3,
    x4,
    x5,
    x6,
    activehunter,
    apachejames,
    biglobe,
    fml,
    arf,
    mdn,
    rfc3464,
    rfc3834,
    plaintext,
)


def by_name(name: str) -> Decoder:
    """The registered decoder of that name (KeyError if there is none)."""
    for decoder in DECODERS:
        if decoder.name == name:
            return decoder
    raise KeyError(name)
