"""JUnit XML for CI systems: one testcase per namespace, judged by the gate.

A failed testcase's ``message`` names the stall point and the signature (what a
CI UI shows in one line); its text holds the explanation, evidence and advice.
Namespaces the rule does not cover are ``skipped``.  Everything that came from the
capture is redacted (secrets in URLs and bodies) and stripped of characters XML
1.0 cannot hold; ElementTree escapes the rest.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

from ..analysis.gate import GateResult
from ..analysis.model import Analysis
from ..config import Config
from ..errors import BadInputError
from .redact import Redactor

SUITE = "mcpsniff.rebind"
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def render_junit(analysis: Analysis, gate: GateResult, config: Config | None = None, extra_cases: list[tuple[str, str]] | None = None) -> str:
    """The JUnit document; ``extra_cases`` adds testcases (name, failure message or "" for a pass), e.g. the CI command."""
    redactor = Redactor(config)

    def clean(text: str) -> str:
        return _NOT_XML.sub("\ufffd", redactor.text(text))

    cases = []
    for r in gate.results:
        case = ET.Element("testcase", classname=SUITE, name=clean(r.name), time=f"{r.rebind_seconds or 0.0:.3f}")
        props = {"verdict": r.verdict, "signature": r.signature, "stall_point": r.stall}
        if r.rebind_seconds is not None:
            props["rebind_seconds"] = f"{r.rebind_seconds:.3f}"
        _properties(case, {k: clean(v) for k, v in props.items() if v})
        if not r.checked:
            ET.SubElement(case, "skipped", message=f"not covered by the rule ({r.verdict})")
        elif not r.passed:
            failure = ET.SubElement(case, "failure", message=clean(f"{r.name}: {r.message}"), type=clean(r.signature or r.verdict))
            failure.text = clean("\n".join(r.details))
        cases.append(case)
    for name, message in [*(("capture", p) for p in gate.problems), *(extra_cases or [])]:
        case = ET.Element("testcase", classname=SUITE, name=clean(name), time="0.000")
        if message:
            ET.SubElement(case, "failure", message=clean(message), type="error").text = clean(message)
        cases.append(case)

    failures = sum(1 for c in cases if c.find("failure") is not None)
    skipped = sum(1 for c in cases if c.find("skipped") is not None)
    stamp = datetime.fromtimestamp(analysis.t0, UTC).strftime("%Y-%m-%dT%H:%M:%S") if analysis.t0 else ""
    counts = {"tests": str(len(cases)), "failures": str(failures), "errors": "0", "skipped": str(skipped)}
    duration = f"{max(0.0, analysis.t_last - analysis.t0):.3f}"
    root = ET.Element("testsuites", attrib={"name": "mcpsniff", "time": duration, **counts})
    suite = ET.SubElement(root, "testsuite", attrib={"name": SUITE, "timestamp": stamp, "time": duration, **counts})
    _properties(suite, {"rule": gate.rule.describe(), "sources": clean(", ".join(analysis.sources)), "restarts": str(len(analysis.restarts))})
    suite.extend(cases)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _properties(parent: ET.Element, values: dict[str, str]) -> None:
    if values:
        props = ET.SubElement(parent, "properties")
        for name, value in values.items():
            ET.SubElement(props, "property", name=name, value=value)


def write_junit(analysis: Analysis, gate: GateResult, path: Path, config: Config | None = None, extra_cases: list[tuple[str, str]] | None = None) -> None:
    try:
        path.write_text(render_junit(analysis, gate, config, extra_cases), encoding="utf-8")
    except OSError as exc:
        raise BadInputError(f"{path}: cannot write the JUnit report: {exc.strerror or exc}") from None
