"""Attributing refused connections (no request, no path) to namespaces by timing (analysis/attempts.py).

Table-driven: each case is a set of plans (what the namespaces' own traffic says) and the
refusal times of one downtime, as the real captures show them; the expected result is, per
namespace, the schedule fitted and the refusals it was given.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from mcpsniff.analysis.attempts import Plan, Refusal, attribute
from mcpsniff.analysis.schedules import CLAUDE_CODE, PY_GET, STREAM_SCHEDULES, TS_GET


def refusals(*times: float, address: str = "127.0.0.1") -> list[Refusal]:
    return [Refusal(t, frame=i, address=address, conn=f"c{i}") for i, t in enumerate(times, start=100)]


def ts_idle(ns: str, cut: float, address: str = "127.0.0.1") -> Plan:
    return Plan(ns, trouble=cut - 0.2, address=address, cut=cut, idle=True, stream_delays=STREAM_SCHEDULES[TS_GET], stream_name=TS_GET)


def busy(ns: str, trouble: float, *, first_visible: float | None = None, cut: float | None = None, next_call: float | None = None, period: float | None = None) -> Plan:
    return Plan(ns, trouble=trouble, address="127.0.0.1", cut=cut, idle=False, first_visible=first_visible, next_call=next_call, period=period)


@dataclass
class Case:
    plans: list[Plan]
    refused: list[Refusal]
    want: dict[str, tuple[str, list[float]]]  # ns -> (schedule, refusal times of its steps)


CASES = {
    "an idle TS namespace's two GET retries, amid its busy siblings' host retries": Case(
        [ts_idle("sprint", 10.0), busy("tasks", 9.8, next_call=10.2), busy("ci-infra", 9.8, next_call=10.25)],
        refusals(10.2, 10.25, 11.0, 11.2, 11.25, 12.5, 13.2, 13.25, 17.2, 17.25),
        {"sprint": (TS_GET, [11.0, 12.5]), "tasks": (CLAUDE_CODE, [11.2, 13.2, 17.2]), "ci-infra": (CLAUDE_CODE, [11.25, 13.25, 17.25])},
    ),
    "a host's backoff fitted backwards from its initialize once the server is back": Case(
        [busy("tasks", 9.9, first_visible=25.0)],
        refusals(10.0, 11.0, 13.0, 17.0),
        {"tasks": (CLAUDE_CODE, [11.0, 13.0, 17.0])},
    ),
    "a host that reacts to the stream cut: its whole schedule ran out (the downtime outlasted it)": Case(
        [busy("tasks", 9.8, cut=10.0)],
        refusals(11.0, 13.0, 17.0, 25.0, 41.0),
        {"tasks": (CLAUDE_CODE, [11.0, 13.0, 17.0, 25.0, 41.0])},
    ),
    "a Python host's own overhead per attempt (0.2 s) does not add up: each step is timed from the last": Case(
        [busy("dev-agents", 9.9, first_visible=17.6)],
        refusals(10.0, 11.2, 13.4),
        {"dev-agents": (CLAUDE_CODE, [11.2, 13.4])},
    ),
    "a client that keeps calling every 0.7 s: its rhythm after the restart continued into the downtime": Case(
        [busy("dev-agents", 9.9, first_visible=14.2, period=0.7)],
        refusals(10.0, 10.7, 11.4, 12.1, 12.8, 13.5),
        {"dev-agents": ("a fixed 0.7 s interval", [10.7, 11.4, 12.1, 12.8, 13.5])},
    ),
    "the client address tells two idle namespaces apart": Case(
        [ts_idle("a", 10.0, address="127.0.0.2"), ts_idle("b", 10.0, address="127.0.0.3")],
        refusals(11.0, 12.5, address="127.0.0.3") + refusals(11.01, 12.51, address="127.0.0.2"),
        {"a": (TS_GET, [11.01, 12.51]), "b": (TS_GET, [11.0, 12.5])},
    ),
    "one re-initialize when the failed call was due, then nothing: a one-step fit": Case(
        [busy("sprint", 9.9, next_call=10.0)],
        refusals(10.0, 11.0),
        {"sprint": (CLAUDE_CODE, [11.0])},
    ),
    "one step is a coincidence when the failure was not when a call was due": Case(
        [busy("sprint", 9.9, next_call=12.0)],
        refusals(10.0, 11.0),
        {},
    ),
    "a single try that 'stopped' while unexplained attempts went on is not told apart": Case(
        [busy("sprint", 9.9, next_call=10.0)],
        refusals(10.0, 11.0, 14.6, 19.9),
        {},
    ),
    "irregular refusals fit no known schedule": Case(
        [busy("gone", 9.9, first_visible=30.0)],
        refusals(10.1, 10.5, 12.9),
        {},
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_attribution(case: Case) -> None:
    fits, _ = attribute(case.plans, case.refused, {p.ns: 2.0 for p in case.plans})
    got = {ns: (fit.schedule, [round(got.t, 2) for _, got in fit.steps]) for ns, fit in fits.items()}
    assert got == case.want


def test_a_python_idle_namespace_has_one_retry_and_then_the_schedule_is_complete() -> None:
    plan = Plan("sprint", trouble=9.8, cut=10.0, idle=True, stream_delays=STREAM_SCHEDULES[PY_GET], stream_name=PY_GET)
    fit = attribute([plan], refusals(11.05), {})[0]["sprint"]
    assert fit.complete and fit.next_due() is None and fit.kind == "stream"


def test_a_schedule_still_running_says_when_its_next_step_is_due() -> None:
    fit = attribute([busy("tasks", 9.8, cut=10.0)], refusals(11.0, 13.0), {})[0]["tasks"]
    assert not fit.complete and fit.next_due() == pytest.approx(17.0)
