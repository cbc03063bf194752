"""`kubefence check` output: readable text, JUnit XML, SARIF 2.1.0 and GitHub annotations.

Each is a pure function of the assertion results and lint findings, in the order given (the
caller sorts them). JUnit has one test case per assertion and per lint finding; GitHub
annotations point at the file and line of the intent or policy concerned.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

from analyzer.findings import AssertionResult, Finding, Severity
from policy.errors import Location


def _where(loc: Location) -> str:
    return Location(loc.file, loc.line).render()


def check_text(results: Sequence[AssertionResult], findings: Sequence[Finding],
               failed: bool) -> str:
    lines: list[str] = []
    if results:
        lines.append("Assertions:")
        for r in results:
            mark = "✓" if r.passed else "✗"
            lines.append(f"  {mark} {r.name} ({_where(r.location)}): {r.message}")
            lines += [f"      because of {c.render()}" for c in r.responsible]
    if findings:
        if lines:
            lines.append("")
        lines.append("Lints:")
        for f in findings:
            lines.append(f"  {f.severity.value} {f.code} {f.location.render()}: {f.message}")
            lines.append(f"      fix: {f.hint}")
    failures = sum(not r.passed for r in results)
    lines.append("")
    lines.append(f"{'FAILED' if failed else 'OK'}: {len(results) - failures} of {len(results)} "
                 f"assertions hold; {len(findings)} lint findings")
    return "\n".join(lines) + "\n"


def check_junit(results: Sequence[AssertionResult], findings: Sequence[Finding],
                fail_level: Severity | None) -> str:
    suites = ET.Element("testsuites", name="kubefence check")
    suite = ET.SubElement(suites, "testsuite", name="assertions", tests=str(len(results)),
                          failures=str(sum(not r.passed for r in results)))
    for r in results:
        case = ET.SubElement(suite, "testcase", classname="assertions", name=r.name,
                             file=r.location.file, line=str(r.location.line or 0))
        if not r.passed:
            failure = ET.SubElement(case, "failure", message=r.message)
            failure.text = "\n".join([r.message, *(c.render() for c in r.responsible)])
    failing = [f for f in findings if fail_level and f.severity.rank >= fail_level.rank]
    lint_suite = ET.SubElement(suites, "testsuite", name="lints", tests=str(len(findings)),
                               failures=str(len(failing)))
    for f in findings:
        case = ET.SubElement(lint_suite, "testcase", classname=f"lints.{f.code}",
                             name=f"{f.code} {f.location.obj}".strip(),
                             file=f.location.file, line=str(f.location.line or 0))
        if f in failing:
            failure = ET.SubElement(case, "failure", message=f.message, type=f.severity.value)
            failure.text = f"{f.location.render()}: {f.message}\nfix: {f.hint}"
        else:
            ET.SubElement(case, "system-out").text = f"{f.severity.value}: {f.message}"
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def _escape(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(text: str) -> str:
    return _escape(text).replace(":", "%3A").replace(",", "%2C")


def check_github(results: Sequence[AssertionResult], findings: Sequence[Finding]) -> str:
    """GitHub Actions workflow commands: one annotation per failed assertion and finding."""
    lines = []
    for r in results:
        if not r.passed:
            detail = "; ".join(c.render() for c in r.responsible)
            lines.append(f"::error file={_prop(r.location.file)},line={r.location.line or 1},"
                         f"title={_prop('assertion: ' + r.name)}::"
                         f"{_escape(r.message + (f' (because of {detail})' if detail else ''))}")
    level = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "notice"}
    for f in findings:
        lines.append(f"::{level[f.severity]} file={_prop(f.location.file)},"
                     f"line={f.location.line or 1},title={_prop(f.code)}::"
                     f"{_escape(f.message + ' (fix: ' + f.hint + ')')}")
    return "\n".join(lines) + ("\n" if lines else "")


SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INTENT_RULE = "KF000"  # a failed intent assertion


def _sarif_location(loc: Location) -> dict[str, Any]:
    physical: dict[str, Any] = {"artifactLocation": {"uri": loc.file}}
    if loc.line:
        physical["region"] = {"startLine": loc.line}
    out: dict[str, Any] = {"physicalLocation": physical}
    if loc.obj:
        out["logicalLocations"] = [{"fullyQualifiedName": loc.obj}]
    return out


def check_sarif(results: Sequence[AssertionResult], findings: Sequence[Finding],
                lint_docs: dict[str, str]) -> str:
    """SARIF for code scanning: each result at the file and line of the policy or intent.
    `lint_docs` maps every lint code to its one-line description (the rule list)."""
    rules = [{"id": INTENT_RULE, "name": "IntentAssertion",
              "shortDescription": {"text": "an assertion of the intent file does not hold"}}]
    rules += [{"id": code, "name": code, "shortDescription": {"text": text}}
              for code, text in sorted(lint_docs.items())]
    out: list[dict[str, Any]] = []
    for r in results:
        if r.passed:
            continue
        entry: dict[str, Any] = {
            "ruleId": INTENT_RULE, "level": "error",
            "message": {"text": f"{r.name}: {r.message}"},
            "locations": [_sarif_location(r.location)],
        }
        if r.responsible:
            entry["relatedLocations"] = [{"id": i, **_sarif_location(c),
                                          "message": {"text": c.obj or "policy"}}
                                         for i, c in enumerate(r.responsible)]
        out.append(entry)
    for f in findings:
        out.append({
            "ruleId": f.code, "level": f.severity.value,
            "message": {"text": f"{f.message} (fix: {f.hint})"},
            "locations": [_sarif_location(f.location)],
        })
    doc = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "kubefence", "rules": rules,
                                      "informationUri": "https://kubernetes.io/docs/concepts/"
                                                        "services-networking/network-policies/"}},
                  "results": out}],
    }
    return json.dumps(doc, indent=2) + "\n"
