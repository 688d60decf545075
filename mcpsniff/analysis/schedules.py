"""Known client reconnect schedules (mcp-wire.md) and matching observed attempt gaps."""

from __future__ import annotations

CLAUDE_CODE = "Claude Code reconnect (1, 2, 4, 8, 16 s; 5 tries)"
TS_GET = "TS SDK GET reconnect (1.0 s, 1.5 s; 2 retries)"
PY_GET = "Python SDK GET reconnect (1 s; 2 attempts in all)"

# Finite schedules: after the last delay the client stops trying.
HOST_SCHEDULES: dict[str, tuple[float, ...]] = {CLAUDE_CODE: (1.0, 2.0, 4.0, 8.0, 16.0)}
STREAM_SCHEDULES: dict[str, tuple[float, ...]] = {TS_GET: (1.0, 1.5), PY_GET: (1.0,)}
SCHEDULES: dict[str, tuple[float, ...]] = {**HOST_SCHEDULES, **STREAM_SCHEDULES}


def attempt_gaps(times: list[float]) -> list[float]:
    """Seconds between consecutive attempts (near-simultaneous ones count once)."""
    distinct: list[float] = []
    for t in sorted(times):
        if not distinct or t - distinct[-1] > 0.05:
            distinct.append(t)
    return [round(b - a, 3) for a, b in zip(distinct, distinct[1:])]


def _fits(gaps: list[float], schedule: tuple[float, ...]) -> bool:
    return 0 < len(gaps) <= len(schedule) and all(abs(g - s) <= max(0.25, 0.15 * s) for g, s in zip(gaps, schedule))


def match_schedule(gaps: list[float]) -> str | None:
    """Name of the known schedule whose delays the gaps follow (longest match first)."""
    for name, schedule in sorted(SCHEDULES.items(), key=lambda item: -len(item[1])):
        if len(gaps) >= 2 and _fits(gaps, schedule):
            return name
    return None
