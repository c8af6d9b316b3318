"""Build a format-neutral document (sections of paragraphs, lists, facts, links) from the core's values."""

from __future__ import annotations

from dataclasses import dataclass, field

from smtplens.compare import Comparison
from smtplens.i18n import join_list, ui
from smtplens.knowledge.catalogue import CodeInfo
from smtplens.knowledge.entries import Kind, Reference

__all__ = ["Block", "Document", "Section", "code_document", "comparison_document"]


@dataclass(frozen=True, slots=True)
class Block:
    """``para`` (items[0] is the text), ``bullets``, ``facts`` (pairs) or ``links`` (pairs of title, url)."""

    kind: str
    items: tuple[str, ...] = ()
    pairs: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True)
class Section:
    heading: str
    blocks: list[Block] = field(default_factory=list)
    subsections: list[Section] = field(default_factory=list)


@dataclass(slots=True)
class Document:
    title: str
    lang: str
    sections: list[Section] = field(default_factory=list)


def _para(text: str) -> Block:
    return Block("para", (text,))


def _bullets(items: tuple[str, ...] | list[str]) -> Block:
    return Block("bullets", tuple(items))


def _links(refs: tuple[Reference, ...]) -> Block:
    return Block("links", pairs=tuple((r.title, r.url) for r in refs))


def _class_label(info: CodeInfo) -> str:
    cls = info.reply_class.value if info.reply_class else "none"
    return ui(info.lang, f"class_{cls}")


def _facts(info: CodeInfo) -> Block:
    lang = info.lang
    kind = ui(lang, "label_kind_basic" if info.kind is Kind.BASIC else "label_kind_enhanced")
    pairs = [(ui(lang, "label_code"), f"{info.code} ({kind})"), (ui(lang, "label_class"), _class_label(info))]
    if info.class_heading:
        pairs.append((info.class_heading.code, f"{info.class_heading.title}: {info.class_heading.summary}"))
    if info.subject_heading:
        head = info.subject_heading
        pairs.append((ui(lang, "label_subject"), f"{head.code} {head.title}: {head.summary}"))
    stages = ", ".join(ui(lang, f"stage_short_{s.value}") for s in info.stages) or ui(lang, "stage_none")
    pairs.append((ui(lang, "label_stages"), stages))
    if info.commands:
        pairs.append((ui(lang, "label_commands"), ", ".join(info.commands)))
    pairs.append((ui(lang, "label_closes"), ui(lang, "yes" if info.closes_connection else "no")))
    if info.counterparts:
        label = "label_enhanced" if info.kind is Kind.BASIC else "label_basic"
        pairs.append((ui(lang, label), ", ".join(info.counterparts)))
    if info.kind is Kind.ENHANCED and info.iana_basic:
        pairs.append((ui(lang, "label_iana_basic"), info.iana_basic))
    defined = "; ".join(f"{d.rfc} {d.section}".strip() for d in info.official)
    pairs.append((ui(lang, "label_defined_in"), defined))
    return Block("facts", pairs=tuple(pairs))


def _code_sections(info: CodeInfo, *, with_refs: bool = True) -> list[Section]:
    lang = info.lang
    official = [f"{d.text} ({d.rfc} {d.section})".replace(" )", ")") for d in info.official]
    sections = [
        Section(ui(lang, "heading_description"), [_para(info.summary), _para(info.description)]),
        Section(ui(lang, "heading_official"), [_bullets(official)]),
        Section(ui(lang, "heading_facts"), [_facts(info)]),
        Section(ui(lang, "heading_when"), [_bullets(info.when)]),
        Section(
            ui(lang, "heading_fix"),
            subsections=[
                Section(ui(lang, "heading_fix_sender"), [_bullets(info.fix_sender)]),
                Section(ui(lang, "heading_fix_operator"), [_bullets(info.fix_operator)]),
            ],
        ),
        Section(ui(lang, "heading_use_when"), [_para(info.use_when)]),
        Section(ui(lang, "heading_causes"), [_para(join_list(lang, list(info.causes)))]),
    ]
    if info.related:
        sections.append(Section(ui(lang, "heading_related"), [_para(", ".join(info.related))]))
    if info.notes:
        sections.append(Section(ui(lang, "heading_notes"), [_bullets(info.notes)]))
    if info.fallback:
        sections.append(Section(ui(lang, "heading_fallback"), [_para(", ".join(info.fallback))]))
    if with_refs:
        sections.append(Section(ui(lang, "heading_references"), [_links(info.references)]))
    return sections


def code_document(info: CodeInfo) -> Document:
    """The page of one code."""
    title = ui(info.lang, "code_title", code=info.code, title=info.title)
    return Document(title, info.lang, _code_sections(info))


def comparison_document(cmp: Comparison) -> Document:
    """The page comparing two codes."""
    lang = cmp.lang
    sections = [Section(ui(lang, "heading_summary"), [_para(cmp.summary)])]
    for info in (cmp.a, cmp.b):
        head = ui(lang, "code_title", code=info.code, title=info.title)
        sections.append(Section(head, subsections=_code_sections(info, with_refs=False)))
    sections.append(Section(ui(lang, "heading_differences"), [_bullets(cmp.differences)]))
    sections.append(Section(ui(lang, "heading_when_to_use"), [_bullets(cmp.when_to_use)]))
    sections.append(Section(ui(lang, "heading_references"), [_links(cmp.references)]))
    return Document(cmp.title, lang, sections)
