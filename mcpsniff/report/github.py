"""CI integrations of the gate: the GitHub Actions job summary and annotations, and SARIF.

Under GitHub Actions (``GITHUB_ACTIONS=true``) ``check`` and ``ci`` append a Markdown
verdict table to ``$GITHUB_STEP_SUMMARY`` and print an ``::error`` workflow command per
failing namespace (shown on the run's page).  ``check --sarif FILE`` writes SARIF 2.1.0
for code-scanning dashboards: a rule per stall signature, a result per failing namespace.
Every string from the capture goes through the report's redaction first.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from ..analysis.gate import GateResult
from ..analysis.model import Analysis
from ..config import Config
from ..errors import BadInputError
from .redact import Redactor

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def _md(text: str) -> str:
    """A table cell: no pipes or newlines from the capture."""
    return text.replace("|", "\\|").replace("\n", " ").replace("\r", " ")


def summary_markdown(analysis: Analysis, gate: GateResult, config: Config | None = None) -> str:
    red = Redactor(config)
    diags = {ns.name: ns.diagnosis for ns in analysis.namespaces}
    lines = [f"### mcpsniff: gate {'passed' if gate.passed else 'FAILED'}", "", f"{_md(gate.rule.describe())}; capture {_md(red.text(', '.join(os.path.basename(s) for s in analysis.sources)))}", ""]
    lines += ["| namespace | verdict | basis | signature | stall point / rebind |", "|---|---|---|---|---|"]
    for r in gate.results:
        d = diags.get(r.name)
        basis = (d.basis + (f" ({d.inference})" if d.inference else "")) if d is not None and d.basis else ""
        where = r.stall or (f"rebound {r.rebind_seconds:.2f} s after the server came back" if r.rebind_seconds is not None else "")
        mark = "" if r.passed else " :x:"
        lines.append(f"| {_md(r.name)} | {_md(r.verdict)}{mark} | {_md(basis)} | {_md(r.signature)} | {_md(red.text(where))} |")
    for p in gate.problems:
        lines.append(f"\n- {_md(red.text(p))}")
    for r in gate.failures:
        d = diags.get(r.name)
        if d is not None and (d.explanation or d.advice):
            lines += ["", f"**{_md(r.name)}**: {_md(red.text(r.message))}", ""]
            if d.divergence is not None:
                lines.append(f"- why this one: {_md(red.text(d.divergence.text))}")
            if d.advice:
                lines.append(f"- advice: {_md(d.advice)}")
    return "\n".join(lines) + "\n"


def _escape(value: str, prop: bool = False) -> str:
    """Escaping of workflow commands (data; with ``prop`` also ':' and ',' of properties)."""
    value = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return value.replace(":", "%3A").replace(",", "%2C") if prop else value


def annotations(analysis: Analysis, gate: GateResult, config: Config | None = None) -> list[str]:
    red = Redactor(config)
    return [f"::error title={_escape(f'mcpsniff: {r.name} {r.verdict}', prop=True)}::{_escape(red.text(r.message))}" for r in gate.failures] + [f"::error title=mcpsniff::{_escape(red.text(p))}" for p in gate.problems]


def github_actions(analysis: Analysis, gate: GateResult, config: Config | None = None, env: Mapping[str, str] = os.environ, out: IO[str] | None = None) -> bool:
    """Under GitHub Actions: the job summary and the annotations. Returns whether it ran."""
    if env.get("GITHUB_ACTIONS") != "true":
        return False
    summary = env.get("GITHUB_STEP_SUMMARY")
    if summary:
        try:
            with open(summary, "a", encoding="utf-8") as fh:
                fh.write(summary_markdown(analysis, gate, config))
        except OSError as exc:
            raise BadInputError(f"GITHUB_STEP_SUMMARY={summary}: cannot write the job summary: {exc.strerror or exc}") from None
    for line in annotations(analysis, gate, config):
        print(line, file=out, flush=True)
    return True


def sarif(analysis: Analysis, gate: GateResult, config: Config | None = None) -> dict[str, Any]:
    red = Redactor(config)
    diags = {ns.name: ns.diagnosis for ns in analysis.namespaces}
    rules: dict[str, dict[str, Any]] = {}
    results = []
    uri = red.text(analysis.sources[0]) if analysis.sources else "capture"
    for r in gate.failures:
        d = diags.get(r.name)
        rule_id = r.signature or ("not-proven" if r.verdict == "unknown" else r.verdict)
        if rule_id not in rules:
            rules[rule_id] = {"id": rule_id, "name": rule_id, "shortDescription": {"text": f"MCP namespace did not rebind: {rule_id}"}}
            if d is not None and d.explanation:
                rules[rule_id]["fullDescription"] = {"text": d.explanation}
            if d is not None and d.advice:
                rules[rule_id]["help"] = {"text": d.advice}
        props: dict[str, Any] = {"namespace": r.name, "verdict": r.verdict}
        if d is not None:
            props.update({"basis": d.basis, "inference": d.inference})
            if d.stall_point is not None:
                props.update({"frame": d.stall_point.frame, "time": d.stall_point.t})
        results.append({
            "ruleId": rule_id,
            "level": "error",
            "message": {"text": red.text(f"{r.name}: {r.message}")},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri}}, "logicalLocations": [{"name": r.name, "kind": "namespace"}]}],
            "properties": props,
        })
    for p in gate.problems:
        rules.setdefault("gate", {"id": "gate", "name": "gate", "shortDescription": {"text": "The capture could not be judged"}})
        results.append({"ruleId": "gate", "level": "error", "message": {"text": red.text(p)}, "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri}}}]})
    from importlib.metadata import PackageNotFoundError, version

    try:
        tool_version = version("mcpsniff")
    except PackageNotFoundError:
        tool_version = "0"
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [{"tool": {"driver": {"name": "mcpsniff", "version": tool_version, "informationUri": "https://github.com/mcpsniff/mcpsniff", "rules": list(rules.values())}}, "results": results}]}


def write_sarif(analysis: Analysis, gate: GateResult, path: Path, config: Config | None = None) -> None:
    try:
        path.write_text(json.dumps(sarif(analysis, gate, config), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as exc:
        raise BadInputError(f"{path}: cannot write the SARIF file: {exc.strerror or exc}") from None
