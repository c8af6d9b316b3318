"""The openspf.org SPF test suites (../shared/conformance/spf), every scenario answered from its zone data.

The RFC 7208 suite is the requirement; the older RFC 4408 suite runs too (``test_rfc4408_scenario``).
The ids are ``document/test``, the document being the slug of its description.

The suite's conventions, as its header and README describe them:

* ``SPF`` entries (type 99) are never asked for: RFC 7208 uses TXT only. As the suite's header asks of its
  drivers, the zone copies them to TXT for names that list no TXT entry of their own, because most sections
  publish their policies as ``SPF`` and rely on that copy; the "Record lookup" and "Selecting records"
  sections give such names an explicit ``TXT`` (``TXT: NONE`` for none) to test that type 99 is ignored.
* ``TIMEOUT`` makes every query of the name that has no answer in the zone time out.
* ``explanation: DEFAULT`` stands for the driver's default explanation, i.e. no ``exp`` text was used.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from smtplens.diagnose.dns import Answer, DnsTempError
from smtplens.diagnose.spf import SpfResult, check_host, mail_from_identity
from tests.conftest import SHARED, shared_path

SUITE = ("conformance", "spf", "rfc7208-tests.yml")
SUITE_4408 = ("conformance", "spf", "rfc4408-tests.yml")


@dataclass
class _Node:
    records: dict[str, list[str]] = field(default_factory=dict)
    cname: str | None = None
    timeout: bool = False


def _key(name: str) -> str:
    return name.lower().removesuffix(".")


def _zone(zonedata: dict[str, list[Any]]) -> dict[str, _Node]:
    zone: dict[str, _Node] = {}
    for name, entries in zonedata.items():
        node = zone.setdefault(_key(name), _Node())
        explicit_txt = any(isinstance(e, dict) and "TXT" in e for e in entries)
        for entry in entries:
            if entry == "TIMEOUT" or (isinstance(entry, dict) and entry.get("TIMEOUT") is True):
                node.timeout = True
                continue
            ((rtype, value),) = entry.items()
            if rtype == "SPF":
                if explicit_txt:
                    continue
                rtype = "TXT"
            if value == "NONE":
                continue
            if rtype == "TXT":
                text = "".join(value) if isinstance(value, list) else str(value)
                node.records.setdefault("TXT", []).append(text)
            elif rtype == "MX":
                preference, exchange = value
                node.records.setdefault("MX", []).append(f"{preference} {str(exchange).removesuffix('.')}")
            elif rtype == "CNAME":
                node.cname = _key(str(value))
            elif rtype in ("A", "AAAA", "PTR"):
                node.records.setdefault(rtype, []).append(str(value).removesuffix("."))
            else:
                raise AssertionError(f"unknown record type {rtype} in the zone data of {name}")
    return zone


class ZoneResolver:
    """A :class:`smtplens.diagnose.dns.Resolver` over one scenario's zone data (CNAMEs followed, loops fail)."""

    def __init__(self, zone: dict[str, _Node]) -> None:
        self.zone = zone
        self.queries: list[tuple[str, str]] = []

    async def _answer(self, name: str, rtype: str) -> Answer:
        self.queries.append((rtype, name))
        key, seen = _key(name), set[str]()
        while True:
            node = self.zone.get(key)
            if node is None:
                return Answer((), nxdomain=True)
            if rtype in node.records:
                return Answer(tuple(node.records[rtype]))
            if node.cname is not None:
                if key in seen:
                    raise DnsTempError(f"CNAME loop at {key}")
                seen.add(key)
                key = node.cname
                continue
            if node.timeout:
                raise DnsTempError(f"timeout asking {rtype} of {name}")
            return Answer(())

    async def txt(self, name: str) -> Answer:
        return await self._answer(name, "TXT")

    async def a(self, name: str) -> Answer:
        return await self._answer(name, "A")

    async def aaaa(self, name: str) -> Answer:
        return await self._answer(name, "AAAA")

    async def mx(self, name: str) -> Answer:
        return await self._answer(name, "MX")

    async def ptr(self, ip: str) -> Answer:
        return await self._answer(ipaddress.ip_address(ip).reverse_pointer, "PTR")

    async def cname(self, name: str) -> Answer:
        self.queries.append(("CNAME", name))
        node = self.zone.get(_key(name))
        return Answer((node.cname,) if node is not None and node.cname is not None else ())


@dataclass(frozen=True)
class Scenario:
    document: str
    name: str
    test: dict[str, Any]
    zonedata: dict[str, list[Any]]

    @property
    def id(self) -> str:
        return f"{re.sub(r'[^a-z0-9]+', '-', self.document.lower()).strip('-')}/{self.name}"


def load_scenarios(path: Path) -> list[Scenario]:
    scenarios = []
    for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
        for name, test in document["tests"].items():
            scenarios.append(Scenario(document["description"], name, test, document.get("zonedata") or {}))
    return scenarios


async def run_scenario(scenario: Scenario) -> SpfResult:
    test = scenario.test
    helo = str(test["helo"])
    sender, domain = mail_from_identity(str(test["mailfrom"]), helo)
    resolver = ZoneResolver(_zone(scenario.zonedata))
    return await check_host(test["host"], domain, sender, helo=helo, resolver=resolver)


def expected(scenario: Scenario) -> list[str]:
    result = scenario.test["result"]
    return [str(r) for r in result] if isinstance(result, list) else [str(result)]


def _params(suite: tuple[str, ...]) -> list[Any]:
    path = SHARED.joinpath(*suite)
    scenarios = load_scenarios(path) if path.exists() else []
    return [pytest.param(s, id=s.id) for s in scenarios] or [pytest.param(None, id="suite-missing")]


def _check(suite: tuple[str, ...], scenario: Scenario | None) -> None:
    shared_path(*suite)
    assert scenario is not None
    got = asyncio.run(run_scenario(scenario))
    assert got.result in expected(scenario), (got, scenario.test)
    if "explanation" in scenario.test:
        want = str(scenario.test["explanation"])
        if want == "DEFAULT":
            assert got.explanation is None, got
        else:
            # The suite writes the nibbles of %{i} in upper case; RFC 7208 section 7.4 shows them in lower
            # case and the case of hex digits carries no meaning, so the comparison ignores case.
            assert got.explanation is not None and got.explanation.lower() == want.lower(), got


@pytest.mark.parametrize("scenario", _params(SUITE))
def test_rfc7208_scenario(scenario: Scenario | None) -> None:
    _check(SUITE, scenario)


@pytest.mark.parametrize("scenario", _params(SUITE_4408))
def test_rfc4408_scenario(scenario: Scenario | None) -> None:
    # The older suite: its expected results allow the RFC 7208 behaviour wherever the two RFCs differ.
    _check(SUITE_4408, scenario)


@pytest.mark.parametrize(("suite", "count"), [(SUITE, 203), (SUITE_4408, 191)])
def test_the_whole_suite_is_loaded(suite: tuple[str, ...], count: int) -> None:
    scenarios = load_scenarios(shared_path(*suite))
    assert len(scenarios) == count
    assert len({s.id for s in scenarios}) == count
