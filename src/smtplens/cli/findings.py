"""Text rendering shared by the diagnosis commands: findings grouped by severity, each with its fix."""

from __future__ import annotations

import click

from smtplens.diagnose.findings import Severity
from smtplens.diagnose.report import Report

__all__ = ["findings_lines"]

_HEADINGS = {Severity.ERROR: "Errors", Severity.WARNING: "Warnings", Severity.INFO: "Info"}
_COLOURS = {Severity.ERROR: "red", Severity.WARNING: "yellow", Severity.INFO: "blue"}


def findings_lines(report: Report) -> list[str]:
    """The report's findings, errors first, each with its code and fix; a line saying so when there are none."""
    lines: list[str] = []
    for severity in Severity:
        items = report.by_severity(severity)
        if not items:
            continue
        lines += ["", click.style(f"{_HEADINGS[severity]} ({len(items)})", fg=_COLOURS[severity], bold=True)]
        for item in items:
            lines.append(f"  - {item.message} [{item.code}]")
            if item.fix:
                lines.append(f"    fix: {item.fix}")
    if not report.findings:
        lines += ["", "No problems found."]
    return lines
