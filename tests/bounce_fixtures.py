"""The project's own bounce fixture mails (tests/fixtures/bounces): where they are, and one decoded."""

from __future__ import annotations

from smtplens.bounce import BounceResult, decode_bounce
from tests.conftest import FIXTURES

__all__ = ["BOUNCES", "decode_fixture"]

BOUNCES = FIXTURES / "bounces"


def decode_fixture(name: str) -> BounceResult:
    """``decode_bounce`` of the fixture mail ``name``."""
    return decode_bounce((BOUNCES / name).read_bytes())
