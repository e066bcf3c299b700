"""bench/peer's targets (issue #17), and the servers' memory over the run.

Each target is said met or **missed** from the figures of this one run: the
per-turn time at turns 300 and 1,000 (the median of the 10 turns up to it, as
in the tables; the median of 100 beside it, which a burst of other work on the
machine moves less), the turns/s under 50 clients (bench/peer_load.py, each
server's runs taken together), and the RSS of Threadline's server from after
the warm-up to the last report point.
"""

from __future__ import annotations

from bench.peer_load import LoadRun, Pooled
from bench.peer_process import megabytes
from bench.peer_sides import WIDE, WINDOW, Side

TURN_RATIO = 0.2  # Threadline's turn at most 0.2x Aegra's, at each of TURN_POINTS
TURN_POINTS = (300, 1000)
THROUGHPUT_RATIO = 3.0  # Threadline's turns/s at least 3x Aegra's, under 50 clients
RSS_FLAT = 1.2  # RSS at the last report point at most 1.2x that after the warm-up
KINDS = ("Threadline", "Aegra")  # the load phase's servers' names start so


def verdict(met: bool) -> str:
    return "met" if met else "**missed**"


def targets(ours: Side, theirs: Side, runs: list[LoadRun], last: int) -> list[str]:
    """Every target of #17, each with the figures it is judged on."""
    return [*turn_targets(ours, theirs, last), throughput_target(runs), rss_target(ours)]


def turn_targets(ours: Side, theirs: Side, last: int) -> list[str]:
    """Threadline's per-turn time over Aegra's at each target point reached."""
    lines = []
    for n in TURN_POINTS:
        said = f"- ≤ {TURN_RATIO:g}x Aegra's per-turn time at turn {n}"
        if n > last:
            lines.append(f"{said}: not measured (this run stopped at turn {last})")
            continue
        short = ours.p50("total_ms", n) / theirs.p50("total_ms", n)
        wide = ours.p50("total_ms", n, window=WIDE) / theirs.p50("total_ms", n, window=WIDE)
        lines.append(
            f"{said}: {ours.p50('total_ms', n):.1f} ÷ {theirs.p50('total_ms', n):.1f} ms = "
            f"{short:.2f}x (medians of turns {n - WINDOW + 1}–{n}; {wide:.2f}x over turns "
            f"{max(1, n - WIDE + 1)}–{n}): {verdict(short <= TURN_RATIO)}"
        )
    return lines


def throughput_target(runs: list[LoadRun]) -> str:
    """Threadline's turns/s over Aegra's under the clients of bench/peer_load.py."""
    said = f"- ≥ {THROUGHPUT_RATIO:g}x Aegra's turns/s"
    if not runs:
        return f"{said}: not measured (this run had no clients at once)"
    ours, theirs = (Pooled([r for r in runs if r.server.startswith(k)]) for k in KINDS)
    ratio = ours.turns_per_s / theirs.turns_per_s
    return (
        f"{said} at {runs[0].clients} clients: {ours.turns_per_s:.1f} ÷ "
        f"{theirs.turns_per_s:.1f} turns/s = {ratio:.2f}x (server CPU per turn "
        f"{ours.cpu_ms_per_turn:.0f} vs {theirs.cpu_ms_per_turn:.0f} ms): "
        f"{verdict(ratio >= THROUGHPUT_RATIO)}"
    )


def rss_growth(side: Side) -> float:
    """RSS at the last report point over RSS after the warm-up."""
    return side.rss[max(side.rss)] / side.rss[0]


def rss_target(ours: Side) -> str:
    last = max(ours.rss)
    return (
        f"- {ours.name}'s RSS flat over the run (at most {RSS_FLAT:g}x its RSS after the "
        f"warm-up): {megabytes(ours.rss[last])} at turn {last} ÷ {megabytes(ours.rss[0])} "
        f"= {rss_growth(ours):.2f}x: {verdict(rss_growth(ours) <= RSS_FLAT)}"
    )


def rss_lines(sides: list[Side]) -> list[str]:
    """Each server's RSS at each report point."""
    lines = []
    for s in sides:
        series = ", ".join(
            f"{megabytes(n)} {'after warm-up' if at == 0 else f'at turn {at}'}"
            for at, n in sorted(s.rss.items())
        )
        lines.append(f"- {s.name}, server RSS: {series} ({rss_growth(s):.2f}x)")
    return lines
