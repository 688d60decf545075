"""The CI gate: which namespaces break the rule a pipeline sets (pure: Analysis in, results out).

Used by ``mcpsniff check``, ``mcpsniff ci`` and the pytest plugin's
``assert_all_rebound``, so all three fail for the same reasons with the same words.

The rule:
- default: no namespace may be ``stalled`` (what ``mcpsniff analyze`` exits 1 for);
- ``require`` (``"all"`` or names): those namespaces must be proven fine, i.e.
  ``rebound`` or ``not-affected``; ``unknown`` fails too, and a named namespace that
  is not in the capture fails;
- ``same_tools``: a namespace whose tool catalog after the rebind differs from the one
  before (or that calls a tool its new session did not list) fails;
- ``within`` (seconds): a namespace that rebound must have made its first
  successful call in the new session at most that long after the server came back
  (when the server's return is not in the capture there is nothing to measure, and
  ``rebind_seconds`` stays None).
A capture without any MCP traffic fails: a gate that checked nothing must not pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .catalog import DRIFT, UNLISTED
from .model import REBOUND, STALLED, UNKNOWN, Analysis, NamespaceLifecycle

ALL = "all"


@dataclass(frozen=True)
class GateRule:
    """``require``: None (only "nothing stalled"), ALL, or a tuple of namespace names."""

    require: str | tuple[str, ...] | None = None
    within: float | None = None
    same_tools: bool = False  # a namespace whose tool catalog changed across the rebind fails too

    def requires(self, name: str) -> bool:
        return self.require == ALL or (isinstance(self.require, tuple) and name in self.require)

    def describe(self) -> str:
        if self.require is None:
            text, joiner = "no namespace stalled", ", and each rebound"
        else:
            text, joiner = ("every namespace" if self.require == ALL else ", ".join(self.require)) + " rebound", ""
        if self.within is not None:
            text += f"{joiner} within {self.within:g} s after the server came back"
        if self.same_tools:
            text += ", with the same tools as before"
        return text


@dataclass
class NamespaceResult:
    """One namespace judged against the rule (one JUnit testcase)."""

    name: str
    verdict: str  # analysis verdict, or "missing" for a required namespace not in the capture
    passed: bool
    checked: bool  # False: not covered by the rule (JUnit "skipped")
    message: str = ""  # why it failed: names the stall point and the signature
    signature: str = ""
    stall: str = ""  # StallPoint.describe()
    t_back: float | None = None  # when the server came back (epoch s)
    rebind_seconds: float | None = None  # t_rebound - t_back
    details: list[str] = field(default_factory=list)  # explanation, evidence, advice


@dataclass
class GateResult:
    rule: GateRule
    results: list[NamespaceResult]
    problems: list[str] = field(default_factory=list)  # failures not tied to a namespace

    @property
    def passed(self) -> bool:
        return not self.problems and all(r.passed for r in self.results)

    @property
    def failures(self) -> list[NamespaceResult]:
        return [r for r in self.results if not r.passed]

    def summary(self) -> str:
        """One line per failure (or "gate passed: ..."), for terminals and assertion messages."""
        if self.passed:
            return f"gate passed: {self.rule.describe()}"
        lines = [f"gate failed ({self.rule.describe()}):"]
        lines += [f"  {p}" for p in self.problems]
        lines += [f"  {r.name}: {r.message}" for r in self.failures]
        return "\n".join(lines)


def parse_require(text: str | None) -> str | tuple[str, ...] | None:
    """``"all"`` -> ALL, ``"tasks,sprint"`` -> ("tasks", "sprint"), None/"" -> None."""
    if not text or not text.strip():
        return None
    if text.strip().lower() == ALL:
        return ALL
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    return names or None


def server_back(ns: NamespaceLifecycle) -> float | None:
    """When the server came back from the restart the diagnosis judged this namespace against."""
    return ns.diagnosis.t_server_back


def _details(ns: NamespaceLifecycle) -> list[str]:
    d = ns.diagnosis
    lines = [d.explanation] if d.explanation else []
    if d.basis:
        lines.append(f"basis: {d.basis}" + (f" ({d.inference}): {d.inference_detail}" if d.inference else " (the wire shows it)"))
    lines += [f"- {item}" for item in d.evidence]
    if d.divergence is not None:
        lines.append(f"why this one: {d.divergence.text}")
    lines += [f"known report: {item}" for item in d.known_reports]
    lines += [f"- finding: {item}" for item in d.findings]
    if d.missing:
        lines.append(f"missing evidence: {d.missing}")
    if d.advice:
        lines.append(f"advice: {d.advice}")
    return lines


def judge(ns: NamespaceLifecycle, analysis: Analysis, rule: GateRule) -> NamespaceResult:
    """One namespace against the rule; a namespace the rule does not name is reported, not judged."""
    d = ns.diagnosis
    back = server_back(ns)
    rebind = None if d.t_rebound is None or back is None else max(0.0, d.t_rebound - back)
    stall = d.stall_point.describe(analysis.t0) if d.stall_point else ""
    checked = rule.require is None or rule.requires(ns.name)
    result = NamespaceResult(ns.name, d.verdict, True, checked, signature=d.signature, stall=stall, t_back=back, rebind_seconds=rebind, details=_details(ns))
    if not checked:
        return result
    if d.verdict == STALLED:
        where = f" at {stall}" if stall else ""
        how = f" ({d.basis}" + (f": {d.inference})" if d.inference else ")") if d.basis else ""
        result.passed, result.message = False, f"stalled{where} [{d.signature or 'no-rebind'}]{how}"
    elif d.verdict == UNKNOWN and rule.require is not None:
        result.passed, result.message = False, f"not proven to rebind [{d.signature or 'unknown'}]: {d.missing or 'not enough evidence in the capture'}"
    elif d.verdict == REBOUND and rule.within is not None and rebind is not None and rebind > rule.within:
        result.passed, result.message = False, f"rebound {rebind:.2f} s after the server came back, later than the allowed {rule.within:g} s [{d.signature}]"
    elif rule.same_tools and (drift := [f for f in d.findings if f.startswith((DRIFT, UNLISTED))]):
        result.passed, result.message = False, "; ".join(drift)
    return result


def evaluate(analysis: Analysis, rule: GateRule) -> GateResult:
    """Judge every namespace of ``analysis`` against ``rule``."""
    results = [judge(ns, analysis, rule) for ns in analysis.namespaces]
    problems = []
    if not analysis.namespaces:
        problems.append("no MCP traffic in the capture (wrong port, or the clients never talked to the server?)")
    if isinstance(rule.require, tuple):
        seen = {ns.name for ns in analysis.namespaces}
        for name in rule.require:
            if name not in seen:
                results.append(NamespaceResult(name, "missing", False, True, message="required, but not seen in the capture"))
    return GateResult(rule, results, problems)
