"""Distinct reply streams for speed benchmarks: corpus replies with their variable parts varied.

Real streams differ in IP addresses, mail addresses and queue ids; varying exactly those keeps every reply
distinct, so no cache of exact strings can stand in for classification.
"""

from __future__ import annotations

import random
import re

_IPV4 = re.compile(r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b")
_EMAIL = re.compile(r"[\w.+-]+@([\w-]+\.)+[\w-]+")
_QUEUE_ID = re.compile(r"\b(?=[A-Za-z0-9]*\d)(?=[A-Za-z0-9]*[A-Za-z])[A-Za-z0-9]{8,}\b")
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def distinct_stream(templates: list[str], count: int, seed: int = 7) -> list[str]:
    """``count`` distinct replies made from ``templates`` by varying IPs, addresses and ids."""
    rng = random.Random(seed)
    out: list[str] = []
    seen: set[str] = set()
    serial = 0
    while len(out) < count:
        base = templates[serial % len(templates)]
        serial += 1

        def ip(_: re.Match[str]) -> str:
            return f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"

        def email(m: re.Match[str]) -> str:
            local = "".join(rng.choice(_ALNUM[26:52]) for _ in range(rng.randint(4, 10)))
            return f"{local}@{m.group(0).split('@', 1)[1]}"

        def qid(m: re.Match[str]) -> str:
            return "".join(rng.choice(_ALNUM) for _ in range(len(m.group(0))))

        text = _QUEUE_ID.sub(qid, _EMAIL.sub(email, _IPV4.sub(ip, base)))
        if text in seen:
            # a template without variable parts: add a varying recipient so it stays distinct
            text = f"{text} <u{serial}@example.net>"
        seen.add(text)
        out.append(text)
    return out
