"""The project's own bounce fixture mails (tests/fixtures/bounces): where they are, and one decoded."""

from __future__ import annotations

from smtplens.bounce import BounceResult, decode_bounce
from tests.conftest import FIXTURES

__all__ = ["BOUNCES", "decode_cut_copies", "decode_fixture"]

BOUNCES = FIXTURES / "bounces"


def decode_fixture(name: str) -> BounceResult:
    """``decode_bounce`` of the fixture mail ``name``."""
    return decode_bounce((BOUNCES / name).read_bytes())


def decode_cut_copies(name: str, pieces: int = 40) -> None:
    """Decode copies of the fixture mail ``name`` cut short at ``pieces`` lengths: none may raise."""
    data = (BOUNCES / name).read_bytes()
    for size in range(0, len(data), max(1, len(data) // pieces)):
        decode_bounce(data[:size])
