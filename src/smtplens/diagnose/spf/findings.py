"""The findings of the domain check about SPF: the record and its include/redirect tree (RFC 7208 limits, broken
includes, ptr, the final ``all``), and the result for one sending address."""

from __future__ import annotations

from smtplens.diagnose import findings as f
from smtplens.diagnose._lookup import lookup_failed
from smtplens.diagnose.dns import DnsError
from smtplens.diagnose.findings import Finding
from smtplens.diagnose.spf.record import Qualifier, SpfRecord
from smtplens.diagnose.spf.result import SpfOutcome, SpfResult
from smtplens.diagnose.spf.tree import NodeStatus, SpfTree

__all__ = ["spf_findings", "spf_result_findings"]

_SPF_EXAMPLE = "'v=spf1 mx -all' (or the include of your mail provider)"


def spf_findings(domain: str, tree: SpfTree) -> list[Finding]:
    """The findings about the SPF record of ``domain`` and the records it includes or redirects to."""
    root = tree.root
    if root.status is NodeStatus.NO_RECORD:
        return [
            f.warning(
                "spf.missing",
                f"{domain} has no SPF record: receivers cannot tell which hosts may send its mail.",
                f"Publish a TXT record at {domain} such as {_SPF_EXAMPLE}.",
            )
        ]
    if root.status is NodeStatus.SEVERAL_RECORDS:
        return [
            f.error(
                "spf.several_records",
                f"{root.problem}; receivers treat SPF as a permanent error.",
                "Merge the records into one 'v=spf1' record.",
            )
        ]
    if root.status is NodeStatus.SYNTAX_ERROR:
        return [
            f.error(
                "spf.syntax",
                f"SPF syntax error: {root.problem}.",
                "Correct the term named in the message; one bad term makes the whole record a permanent error.",
            )
        ]
    if root.status is NodeStatus.DNS_ERROR:
        return [lookup_failed("spf", f"the SPF record of {domain}", DnsError(root.problem or "no answer"))]
    return [*_limit_findings(tree), *_tree_findings(tree), *_root_findings(root.record)]


def _limit_findings(tree: SpfTree) -> list[Finding]:
    out: list[Finding] = []
    if tree.too_many_lookups:
        where = ", ".join(f"{node.domain} {node.lookups}" for node in tree.root.walk() if node.lookups)
        out.append(
            f.error(
                "spf.too_many_lookups",
                f"too many DNS lookups: {tree.lookups} (RFC 7208 section 4.6.4 allows {tree.limits.dns_terms}; "
                f"per record: {where}); receivers stop with a permanent error.",
                "Replace include/a/mx terms with ip4/ip6 ranges, or drop includes of services you no longer use, "
                f"until the whole tree needs {tree.limits.dns_terms} lookups or fewer.",
            )
        )
    if tree.too_many_void_lookups:
        terms = ", ".join(f"{term} ({node.domain})" for node in tree.root.walk() for term in node.void_terms)
        out.append(
            f.error(
                "spf.too_many_void_lookups",
                f"too many void lookups: {tree.void_lookups} terms find no DNS records ({terms}); RFC 7208 section "
                f"4.6.4 allows {tree.limits.void_lookups}, then the result is a permanent error.",
                "Remove the terms that point at names without records.",
            )
        )
    return out


def _tree_findings(tree: SpfTree) -> list[Finding]:
    out: list[Finding] = []
    for node in tree.root.walk():
        if node is not tree.root and node.status is not NodeStatus.OK:
            broken = node.status is not NodeStatus.DNS_ERROR
            out.append(
                (f.error if broken else f.warning)(
                    "spf.include_broken" if broken else "spf.include_lookup_failed",
                    f"{node.term}: {node.problem}; "
                    + ("the whole SPF check ends in a permanent error." if broken else "receivers get a temperror."),
                    f"Fix or remove '{node.term}' in the record that names it.",
                )
            )
        out += [
            f.warning("spf.term_problem", f"{node.domain}: {text}.", "Correct or remove the term.")
            for text in node.warnings
        ]
        if node.record is not None:
            out += [
                f.warning(
                    "spf.ptr",
                    f"{node.domain} uses '{m.text}': RFC 7208 section 5.5 says not to use ptr (slow, unreliable, "
                    "and some receivers skip it).",
                    "Replace the ptr mechanism with ip4/ip6, a or include terms.",
                )
                for m in node.record.mechanisms
                if m.kind == "ptr"
            ]
    return out


def _root_findings(record: SpfRecord | None) -> list[Finding]:
    if record is None:
        return []
    final = next((m for m in record.mechanisms if m.kind == "all"), None)
    if final is None:
        if record.redirect is not None:
            return []
        return [
            f.info(
                "spf.no_all",
                "The record ends without 'all' or a redirect: mail from any other host gets 'neutral'.",
                "End the record with '~all' (soft) or '-all' (strict).",
            )
        ]
    if final.qualifier is Qualifier.PASS:
        return [
            f.warning(
                "spf.pass_all",
                f"'{final.text}' lets every host on the internet pass SPF for this domain.",
                "End the record with '~all' or '-all' after listing your real senders.",
            )
        ]
    if final.qualifier is Qualifier.NEUTRAL:
        return [
            f.warning(
                "spf.neutral_all",
                f"'{final.text}' gives unlisted hosts 'neutral', so SPF protects nothing.",
                "End the record with '~all' or '-all' after listing your real senders.",
            )
        ]
    return []


def spf_result_findings(domain: str, ip: str, result: SpfResult) -> list[Finding]:
    """The finding about the SPF result for mail from ``ip`` (none for pass and none)."""
    outcome = result.result
    decided = f"'{result.mechanism.text}' matches" if result.mechanism else "no mechanism matches"
    add = f"If {ip} sends mail for {domain}, list it (ip4:/ip6: or your provider's include) before "
    add += f"'{result.mechanism.text}'." if result.mechanism else "the end of the record."
    if outcome is SpfOutcome.FAIL:
        why = f" The domain explains: {result.explanation}" if result.explanation else ""
        return [f.error("spf.ip_fail", f"SPF fails for {ip}: {decided}; receivers may reject the mail.{why}", add)]
    if outcome is SpfOutcome.SOFTFAIL:
        return [f.warning("spf.ip_softfail", f"SPF soft-fails for {ip}: {decided}; mail may go to spam.", add)]
    if outcome is SpfOutcome.NEUTRAL:
        return [f.info("spf.ip_neutral", f"SPF gives 'neutral' for {ip}: {decided}.", add)]
    if outcome is SpfOutcome.PERMERROR:
        detail = result.problems[-1] if result.problems else "the record is broken"
        return [
            f.error(
                "spf.ip_permerror",
                f"SPF evaluation for {ip} ends in a permanent error: {detail}.",
                "Fix the SPF problems reported above; receivers treat a permerror like a failure or ignore SPF.",
            )
        ]
    if outcome is SpfOutcome.TEMPERROR:
        detail = result.problems[-1] if result.problems else "a DNS lookup failed"
        return [
            f.warning(
                "spf.ip_temperror",
                f"SPF evaluation for {ip} ends in a temporary error: {detail}.",
                "Check that every name the SPF record uses answers quickly, then run the check again.",
            )
        ]
    return []
