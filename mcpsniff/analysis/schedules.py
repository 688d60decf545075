"""Known client reconnect schedules (mcp-wire.md) and matching observed attempt gaps."""

from __future__ import annotations

SCHEDULES: dict[str, tuple[float, ...]] = {
    "Claude Code (1, 2, 4, 8, 16 s)": (1.0, 2.0, 4.0, 8.0, 16.0),
    "TS SDK GET reconnect (1.0 s, 1.5 s; 2 retries)": (1.0, 1.5),
    "Python SDK GET reconnect (1 s fixed, 2 attempts)": (1.0, 1.0),
}


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
        if _fits(gaps, schedule) and len(gaps) >= min(2, len(schedule)):
            return name
    return None
