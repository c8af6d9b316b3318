"""The decoders, in the order they are tried (the first that recognises a mail and reads a recipient wins).

Explicit on purpose: no directory is scanned at run time, and a test checks that every module of
``smtplens.bounce.decoders`` is listed here. The order matters where formats overlap: decoders of one MTA or
provider go first (they read more than the standard fields say), then the standard formats: feedback reports
before delivery status notifications (both are ``multipart/report``), and automatic replies last (some MTAs mark
their bounces ``Auto-Submitted: auto-replied`` too).
"""

from __future__ import annotations

from smtplens.bounce.decoders import Decoder, arf, rfc3464, rfc3834

__all__ = ["DECODERS", "by_name"]

DECODERS: tuple[Decoder, ...] = (
    arf,
    rfc3464,
    rfc3834,
)


def by_name(name: str) -> Decoder:
    """The registered decoder of that name (KeyError if there is none)."""
    for decoder in DECODERS:
        if decoder.name == name:
            return decoder
    raise KeyError(name)
