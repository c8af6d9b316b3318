"""A scenario spec (a flat mapping read from JSON or a TOML ``[[scenario]]`` table) to a checked Scenario.

Fields (all optional but an effect; docs/scenarios.md has examples):

* ``id`` (letters, digits, ``. _ : -``; the book assigns one when missing), ``name``, ``enabled`` (true),
  ``source`` (where a quoted text comes from), ``preset`` (a preset to start from; the other fields override it).
* Trigger: ``stage`` (``connect helo auth mail rcpt data end_of_data``, one or a list; when missing: ``data`` with
  ``cut_after``, else ``rcpt`` with a recipient pattern, ``mail`` with a sender, ``helo`` with a HELO pattern,
  else ``connect``); ``client`` (networks such as ``127.0.0.2`` or ``192.0.2.0/24``), ``helo``, ``sender``,
  ``recipient`` (case-insensitive globs such as ``421@*`` or ``*+greylist@*``; ``<>`` is the null sender; a
  string or a list); ``attempts`` (``1``, ``"3"``, ``"2-4"``, ``"3-"`` or a list of them), ``per`` (what attempts
  are counted for: ``triplet``, ``client``, ``sender``, ``recipient`` or ``all``), ``probability`` (0 to 1).
* Effect: ``reply`` (``"550 5.1.1 text"``) or ``code``, ``enhanced``, ``text`` (placeholders ``{client}``,
  ``{helo}``, ``{sender}``, ``{sender_domain}``, ``{recipient}``, ``{recipient_domain}``, ``{hostname}``);
  ``outcome`` (``accept reject defer``, else from the code); ``disconnect``; ``drop`` (close with no reply);
  ``delay`` (seconds before the reply); ``slow`` (octets per second from then on); ``cut_after`` (at data: 354,
  then close after that many octets of message data).
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import re
import string
from collections.abc import Collection, Mapping

from smtplens.model import Stage
from smtplens.server.decisions import DecisionError, Outcome
from smtplens.server.scenarios.model import (
    PLACEHOLDERS,
    Attempts,
    Effect,
    Network,
    Per,
    Scenario,
    ScenarioError,
    Trigger,
)

__all__ = ["FIELDS", "ID_PATTERN", "STAGES", "merge_preset", "parse_scenario"]

FIELDS = frozenset(
    {
        "id", "name", "enabled", "source", "preset",
        "stage", "client", "helo", "sender", "recipient", "attempts", "per", "probability",
        "reply", "code", "enhanced", "text", "outcome", "disconnect", "drop", "delay", "slow", "cut_after",
    }
)  # fmt: skip
_REPLY_FIELDS = ("reply", "code", "enhanced", "text", "outcome")

STAGES: dict[str, Stage] = {
    stage.value: stage
    for stage in (Stage.CONNECT, Stage.HELO, Stage.AUTH, Stage.MAIL, Stage.RCPT, Stage.DATA, Stage.END_OF_DATA)
}
# where each pattern is known: the HELO name from helo on, the sender from mail on, recipients from rcpt on
_KNOWN_FROM: dict[str, frozenset[Stage]] = {
    "helo": frozenset({Stage.HELO, Stage.AUTH, Stage.MAIL, Stage.RCPT, Stage.DATA, Stage.END_OF_DATA}),
    "sender": frozenset({Stage.MAIL, Stage.RCPT, Stage.DATA, Stage.END_OF_DATA}),
    "recipient": frozenset({Stage.RCPT, Stage.DATA, Stage.END_OF_DATA}),
}
_CONNECT_CODES = {Outcome.REJECT: ("554", "521"), Outcome.DEFER: ("421",)}  # RFC 5321 3.1, RFC 7504

ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_REPLY = re.compile(r"([2-5][0-9][0-9])(?:[ -]([245]\.[0-9]{1,3}\.[0-9]{1,3}))?(?:[ -](.*))?", re.DOTALL)
_ATTEMPTS = re.compile(r"([0-9]{1,9})(?:(-)([0-9]{1,9})?)?")
_MAX_DELAY = 3600.0
_MAX_TEXT = 2000


def merge_preset(spec: Mapping[str, object], preset: Mapping[str, object]) -> dict[str, object]:
    """``preset`` with the fields of ``spec`` over it; a reply given in ``spec`` replaces the preset's whole
    reply (``reply``, ``code``, ``enhanced``, ``text`` and ``outcome``) when ``spec`` uses ``reply``."""
    merged = dict(preset)
    if "reply" in spec:
        for key in _REPLY_FIELDS:
            merged.pop(key, None)
    elif isinstance(merged.get("reply"), str) and any(key in spec for key in _REPLY_FIELDS):
        match = _REPLY.fullmatch(str(merged.pop("reply")).strip())  # split, so that one part can be replaced
        if match is not None:
            parts = {"code": match.group(1), "enhanced": match.group(2), "text": (match.group(3) or "").strip()}
            merged.update({key: value for key, value in parts.items() if value})
    merged.update(spec)
    return merged


def parse_scenario(spec: Mapping[str, object], scenario_id: str) -> Scenario:
    """The scenario ``spec`` describes, with id ``scenario_id`` (``spec["id"]`` is checked by the caller);
    :class:`ScenarioError` names the field and the problem."""
    return _Parser(spec, scenario_id).scenario()


class _Parser:
    def __init__(self, spec: Mapping[str, object], scenario_id: str) -> None:
        self.spec = spec
        self.id = scenario_id

    def fail(self, field: str, problem: str) -> ScenarioError:
        return ScenarioError(f"scenario {self.id!r}: {field}: {problem}")

    # --- the whole scenario -----------------------------------------------------------------------------------

    def scenario(self) -> Scenario:
        unknown = sorted(key for key in self.spec if key not in FIELDS)
        if unknown:
            close = difflib.get_close_matches(unknown[0], FIELDS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise self.fail(unknown[0], f"unknown field{hint}; known fields: {', '.join(sorted(FIELDS))}")
        trigger = self.trigger()
        effect = self.effect(trigger.stages)
        try:
            effect.decision({}, "scenario")  # the decision's own checks (code and enhanced class, …)
        except DecisionError as exc:
            raise self.fail("reply", str(exc)) from exc
        return Scenario(
            self.id,
            self.text_field("name", 200) or self.id,
            trigger,
            effect,
            self.boolean("enabled", default=True),
            self.text_field("source", 500),
            self.text_field("preset", 100),
        )

    # --- trigger ----------------------------------------------------------------------------------------------

    def trigger(self) -> Trigger:
        clients = tuple(self.network(item) for item in self.strings("client"))
        patterns = {field: tuple(item.lower() for item in self.strings(field)) for field in _KNOWN_FROM}
        stages = self.stages(patterns)
        for field, known in _KNOWN_FROM.items():
            early = sorted(stage.value for stage in stages - known)
            if patterns[field] and early:
                raise self.fail(field, f"the {field} is not known yet at {', '.join(early)}")
        per = Per(self.choice("per", [item.value for item in Per]) or Per.TRIPLET)
        if per.value in _KNOWN_FROM and stages - _KNOWN_FROM[per.value]:
            raise self.fail("per", f"attempts cannot be counted per {per.value} at a stage that does not know it")
        probability = self.number("probability", 1.0, 0.0, 1.0)
        return Trigger(
            stages,
            clients,
            patterns["helo"],
            patterns["sender"],
            patterns["recipient"],
            self.attempts(),
            per,
            probability,
        )

    def stages(self, patterns: dict[str, tuple[str, ...]]) -> frozenset[Stage]:
        if "stage" not in self.spec:
            if "cut_after" in self.spec:
                return frozenset({Stage.DATA})
            for field, stage in (("recipient", Stage.RCPT), ("sender", Stage.MAIL), ("helo", Stage.HELO)):
                if patterns[field]:
                    return frozenset({stage})
            return frozenset({Stage.CONNECT})
        names = self.strings("stage")
        if not names:
            raise self.fail("stage", "at least one stage is needed")
        stages: set[Stage] = set()
        for name in names:
            found = STAGES.get(name.lower())
            if found is None:
                raise self.fail("stage", f"{name!r} is not one of {', '.join(STAGES)}")
            stages.add(found)
        return frozenset(stages)

    def network(self, text: str) -> Network:
        try:
            return ipaddress.ip_network(text, strict=False)
        except ValueError as exc:
            raise self.fail("client", f"{text!r} is not an IP address or network") from exc

    def attempts(self) -> tuple[Attempts, ...]:
        value = self.spec.get("attempts")
        if value is None:
            return ()
        items = value if isinstance(value, list) else [value]
        ranges: list[Attempts] = []
        for item in items:
            if isinstance(item, bool) or not isinstance(item, int | str):
                raise self.fail("attempts", f"{item!r} is not an attempt number or range such as 3, '2-4', '3-'")
            match = _ATTEMPTS.fullmatch(str(item).strip())
            if match is None:
                raise self.fail("attempts", f"{item!r} is not an attempt number or range such as 3, '2-4', '3-'")
            first = int(match.group(1))
            last = first if not match.group(2) else (int(match.group(3)) if match.group(3) else None)
            if first < 1 or (last is not None and last < first):
                raise self.fail("attempts", f"{item!r}: attempts count from 1 and a range may not run backwards")
            ranges.append(Attempts(first, last))
        return tuple(ranges)

    # --- effect -----------------------------------------------------------------------------------------------

    def effect(self, stages: frozenset[Stage]) -> Effect:
        code, enhanced, text = self.reply()
        drop = self.boolean("drop", default=False)
        disconnect = self.boolean("disconnect", default=False)
        delay = self.number("delay", 0.0, 0.0, _MAX_DELAY)
        slow = self.number("slow", 0.0, 0.0, math.inf)
        if "slow" in self.spec and slow <= 0:
            raise self.fail("slow", "a slow link needs a positive number of octets per second")
        cut_after = self.integer("cut_after")
        outcome = self.outcome(code, enhanced, text, drop)
        if drop and (code or enhanced or text):
            raise self.fail("drop", "a dropped connection sends no reply: leave out reply, code, enhanced and text")
        if disconnect and outcome is Outcome.ACCEPT:
            raise self.fail("disconnect", "only a refusal (4yz or 5yz) can disconnect")
        if disconnect and outcome is Outcome.DEFER and code not in (None, "421"):
            raise self.fail("code", f"a deferral that disconnects is a 421 (RFC 5321 3.8), not {code}")
        if cut_after is not None:
            if outcome is not Outcome.ACCEPT or drop:
                raise self.fail("cut_after", "a cut accepts DATA with 354 first: no refusal, no drop")
            if stages != {Stage.DATA}:
                raise self.fail("cut_after", "a cut happens at the data stage only (stage = 'data')")
        if Stage.CONNECT in stages and code is not None and outcome in _CONNECT_CODES:
            allowed = _CONNECT_CODES[outcome]
            if code not in allowed:
                raise self.fail("code", f"a greeting may be 220, 554, 521 or 421 (RFC 5321 3.1, RFC 7504), not {code}")
        if not (code or text or drop or delay or slow or cut_after is not None or outcome is not Outcome.ACCEPT):
            raise self.fail("reply", "a scenario needs an effect: reply/code/text, drop, delay, slow or cut_after")
        return Effect(outcome, code, enhanced, text, disconnect, drop, delay, slow, cut_after)

    def reply(self) -> tuple[str | None, str | None, str | None]:
        reply = self.text_field("reply", _MAX_TEXT)
        code = self.text_field("code", 3)
        enhanced = self.text_field("enhanced", 11)
        text = self.text_field("text", _MAX_TEXT)
        if reply is not None:
            if code or enhanced or text:
                raise self.fail("reply", "give either reply or code/enhanced/text, not both")
            match = _REPLY.fullmatch(reply.strip())
            if match is None:
                raise self.fail("reply", f"{reply!r} does not start with a reply code such as '550 5.1.1 …'")
            code, enhanced, text = match.group(1), match.group(2), (match.group(3) or "").strip() or None
        if code is not None and not re.fullmatch(r"[2-5][0-9][0-9]", code):
            raise self.fail("code", f"{code!r} is not an SMTP reply code (2yz, 4yz or 5yz)")
        if enhanced is not None and not re.fullmatch(r"[245]\.[0-9]{1,3}\.[0-9]{1,3}", enhanced):
            raise self.fail("enhanced", f"{enhanced!r} is not an enhanced status code such as 5.1.1 (RFC 3463)")
        if text is not None:
            self.check_text(text)
        return code, enhanced, text

    def check_text(self, text: str) -> None:
        if "\r" in text or not text.strip():
            raise self.fail("text", "a reply text must not be empty and not contain CR (use \\n for a new line)")
        if any(not (" " <= char <= "~" or char == "\n") for char in text):
            raise self.fail("text", "a reply text is printable ASCII (RFC 5321 4.2)")
        try:
            names = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
        except ValueError as exc:
            raise self.fail("text", f"bad placeholder: {exc} (write {{{{ and }}}} for literal braces)") from exc
        unknown = sorted(names - PLACEHOLDERS)
        if unknown:
            raise self.fail("text", f"unknown placeholder {{{unknown[0]}}}; known: {', '.join(sorted(PLACEHOLDERS))}")

    def outcome(self, code: str | None, enhanced: str | None, text: str | None, drop: bool) -> Outcome:
        chosen = self.choice("outcome", [item.value for item in Outcome])
        given = Outcome(chosen) if chosen else None
        implied = {"2": Outcome.ACCEPT, "4": Outcome.DEFER, "5": Outcome.REJECT}
        derived = implied[code[0]] if code else (implied[enhanced[0]] if enhanced else None)
        if given is not None and derived is not None and given is not derived:
            raise self.fail("outcome", f"{given.value} does not agree with the code {code or enhanced}")
        if drop:
            if given is Outcome.ACCEPT:
                raise self.fail("outcome", "a dropped connection is not an acceptance")
            return Outcome.DEFER
        outcome = given or derived
        if outcome is None and text is not None:
            raise self.fail("text", "a text needs a code (or reply) or an outcome to say what it answers")
        return outcome or Outcome.ACCEPT

    # --- plain values -----------------------------------------------------------------------------------------

    def strings(self, field: str) -> list[str]:
        value = self.spec.get(field)
        if value is None:
            return []
        items = value if isinstance(value, list) else [value]
        for item in items:
            if not isinstance(item, str) or not item.strip():
                raise self.fail(field, f"expected a non-empty string or a list of them, got {item!r}")
        return [item.strip() for item in items if isinstance(item, str)]

    def text_field(self, field: str, limit: int) -> str | None:
        value = self.spec.get(field)
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool) and field == "code":
            value = str(value)  # code = 550 in TOML is fine
        if not isinstance(value, str) or not value.strip():
            raise self.fail(field, f"expected a non-empty string, got {value!r}")
        if len(value) > limit:
            raise self.fail(field, f"longer than {limit} characters")
        return value.strip() if field not in ("text", "reply") else value

    def boolean(self, field: str, *, default: bool) -> bool:
        value = self.spec.get(field, default)
        if not isinstance(value, bool):
            raise self.fail(field, f"expected true or false, got {value!r}")
        return value

    def number(self, field: str, default: float, low: float, high: float) -> float:
        value = self.spec.get(field, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(field, f"expected a number, got {value!r}")
        number = float(value)
        if not (low <= number <= high):
            raise self.fail(field, f"{value!r} is not between {low:g} and {high:g}")
        return number

    def integer(self, field: str) -> int | None:
        value = self.spec.get(field)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.fail(field, f"expected a positive whole number of octets, got {value!r}")
        return value

    def choice(self, field: str, names: Collection[str]) -> str | None:
        value = self.spec.get(field)
        if value is None:
            return None
        if not isinstance(value, str) or value.lower() not in names:
            raise self.fail(field, f"{value!r} is not one of {', '.join(names)}")
        return value.lower()
