"""compare: a complete, localised side-by-side explanation of any two codes."""

from __future__ import annotations

from dataclasses import dataclass

from smtplens.i18n import join_list, stage_phrase, ui
from smtplens.knowledge.catalogue import CodeInfo, lookup, resolve_language
from smtplens.knowledge.entries import Kind, Reference
from smtplens.knowledge.load import BASE_LANGUAGE
from smtplens.model import ReplyClass

__all__ = ["Comparison", "compare"]


@dataclass(frozen=True, slots=True)
class Comparison:
    """Two codes side by side; every text is made of complete sentences in ``lang``."""

    a: CodeInfo
    b: CodeInfo
    lang: str
    title: str
    summary: str
    differences: tuple[str, ...]
    when_to_use: tuple[str, ...]
    references: tuple[Reference, ...]

    def to_dict(self) -> dict[str, object]:
        """The ``compare --json`` contract (see docs/json.md)."""
        return {
            "a": self.a.to_dict(),
            "b": self.b.to_dict(),
            "lang": self.lang,
            "title": self.title,
            "summary": self.summary,
            "differences": list(self.differences),
            "when_to_use": list(self.when_to_use),
            "references": [r.to_dict() for r in self.references],
        }


def _cls(info: CodeInfo) -> str:
    return info.reply_class.value if info.reply_class else "none"


def _pair_of(a: CodeInfo, b: CodeInfo, first: ReplyClass, second: ReplyClass) -> tuple[CodeInfo, CodeInfo] | None:
    if a.reply_class is first and b.reply_class is second:
        return a, b
    if b.reply_class is first and a.reply_class is second:
        return b, a
    return None


def _is_pair(a: CodeInfo, b: CodeInfo) -> tuple[CodeInfo, CodeInfo] | None:
    """(basic, enhanced) when one is a usual enhanced counterpart of the other."""
    for basic, enh in ((a, b), (b, a)):
        if (
            basic.kind is Kind.BASIC
            and enh.kind is Kind.ENHANCED
            and (enh.code in basic.counterparts or basic.code in enh.counterparts)
        ):
            return basic, enh
    return None


def _summary(a: CodeInfo, b: CodeInfo, lang: str) -> str:
    parts = [
        ui(
            lang,
            "summary_code",
            code=x.code,
            title=x.title,
            class_np=ui(lang, f"class_np_{_cls(x)}"),
            summary=x.summary,
        )
        for x in (a, b)
    ]
    pair = _is_pair(a, b)
    tp = _pair_of(a, b, ReplyClass.TRANSIENT, ReplyClass.PERMANENT)
    if pair:
        parts.append(ui(lang, "summary_pair", basic=pair[0].code, enhanced=pair[1].code))
    elif tp:
        parts.append(ui(lang, "summary_transient_permanent", t=tp[0].code, p=tp[1].code))
    elif a.reply_class is b.reply_class:
        parts.append(ui(lang, "summary_same_class", class_np_plural=ui(lang, f"class_np_plural_{_cls(a)}")))
    elif a.reply_class is ReplyClass.POSITIVE or b.reply_class is ReplyClass.POSITIVE:
        ok, fail = (a, b) if a.reply_class is ReplyClass.POSITIVE else (b, a)
        parts.append(
            ui(
                lang,
                "summary_success_failure",
                ok=ok.code,
                fail=fail.code,
                class_np_fail=ui(lang, f"class_np_{_cls(fail)}"),
            )
        )
    else:
        parts.append(ui(lang, "summary_other"))
    return " ".join(parts)


def _differences(a: CodeInfo, b: CodeInfo, lang: str) -> list[str]:
    out = []
    if a.reply_class is b.reply_class:
        out.append(
            ui(
                lang,
                "diff_same_class",
                a=a.code,
                b=b.code,
                class_np_plural=ui(lang, f"class_np_plural_{_cls(a)}"),
            )
        )
        out.append(ui(lang, f"retry_{_cls(a)}", code=f"{a.code} / {b.code}"))
    else:
        out.append(
            ui(
                lang,
                "diff_class",
                a=a.code,
                b=b.code,
                class_np_a=ui(lang, f"class_np_{_cls(a)}"),
                class_np_b=ui(lang, f"class_np_{_cls(b)}"),
            )
        )
        out.extend(ui(lang, f"retry_{_cls(x)}", code=x.code) for x in (a, b))
    if set(a.stages) == set(b.stages):
        out.append(ui(lang, "diff_same_stages", stages=stage_phrase(lang, a.stages)))
    else:
        out.append(
            ui(
                lang,
                "diff_stages",
                a=a.code,
                b=b.code,
                stages_a=stage_phrase(lang, a.stages),
                stages_b=stage_phrase(lang, b.stages),
            )
        )
    if a.closes_connection and b.closes_connection:
        out.append(ui(lang, "diff_closes_both"))
    elif a.closes_connection or b.closes_connection:
        closer, other = (a, b) if a.closes_connection else (b, a)
        out.append(ui(lang, "diff_closes_one", closer=closer.code, other=other.code))
    else:
        out.append(ui(lang, "diff_closes_none", a=a.code, b=b.code))
    out.extend(ui(lang, "diff_causes", code=x.code, causes=join_list(lang, list(x.causes))) for x in (a, b))
    for x in (a, b):
        if x.counterparts:
            key = "diff_counterparts_basic" if x.kind is Kind.BASIC else "diff_counterparts_enhanced"
            out.append(ui(lang, key, code=x.code, codes=join_list(lang, list(x.counterparts))))
    return out


def _when_to_use(a: CodeInfo, b: CodeInfo, lang: str) -> list[str]:
    out = [ui(lang, "use_code", code=x.code, text=x.use_when) for x in (a, b)]
    tp = _pair_of(a, b, ReplyClass.TRANSIENT, ReplyClass.PERMANENT)
    if _is_pair(a, b):
        return out
    if tp:
        out.append(ui(lang, "choose_transient_permanent", t=tp[0].code, p=tp[1].code))
    elif a.reply_class is b.reply_class:
        out.append(ui(lang, "choose_same_class"))
    elif a.reply_class is ReplyClass.POSITIVE or b.reply_class is ReplyClass.POSITIVE:
        ok, fail = (a, b) if a.reply_class is ReplyClass.POSITIVE else (b, a)
        out.append(ui(lang, "choose_success_failure", ok=ok.code, fail=fail.code))
    return out


def _references(a: CodeInfo, b: CodeInfo) -> tuple[Reference, ...]:
    seen: dict[str, Reference] = {}
    for ref in a.references + b.references:
        seen.setdefault(ref.url, ref)
    return tuple(seen.values())


def compare(a: str, b: str, lang: str = BASE_LANGUAGE) -> Comparison:
    """Compare two codes (basic or enhanced) in ``lang``: summary, differences, when to use which, references."""
    lang = resolve_language(lang)
    info_a, info_b = lookup(a, lang), lookup(b, lang)
    return Comparison(
        a=info_a,
        b=info_b,
        lang=lang,
        title=ui(lang, "compare_title", a=info_a.code, a_title=info_a.title, b=info_b.code, b_title=info_b.title),
        summary=_summary(info_a, info_b, lang),
        differences=tuple(_differences(info_a, info_b, lang)),
        when_to_use=tuple(_when_to_use(info_a, info_b, lang)),
        references=_references(info_a, info_b),
    )
