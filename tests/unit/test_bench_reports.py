"""bench/reports' ratio in the sandbox's time, and row 8's verdict taken from it."""

from __future__ import annotations

from typing import Any

import pytest

from bench.reports import server_time_ratio


def run(seconds: float, server_cpu: float, count: int = 1_000_000) -> dict[str, Any]:
    return {"seconds": seconds, "rate": count / seconds, "server_cpu_seconds": server_cpu}


def test_a_machine_that_slows_down_cancels_out() -> None:
    # The limits cost the sandbox 21 ms per 1,000 before, 30 after; the export, run while it was slow,
    # kept the sandbox as busy as the limits did: 1.0 in its time, however the wall-clock ratio reads.
    before, after = run(21.0, 20.58), run(30.0, 29.4)
    export = run(31.0, 30.38)
    assert export["rate"] / ((before["rate"] + after["rate"]) / 2) == pytest.approx(0.80, abs=0.01)
    assert server_time_ratio(export, before, after) == pytest.approx(1.0)


def test_a_client_that_keeps_the_sandbox_waiting_lowers_it() -> None:
    # Same machine speed throughout (25 ms per 1,000); the export took 10% longer for the same work.
    before, after = run(25.0, 24.5), run(25.0, 24.5)
    assert server_time_ratio(run(27.5, 24.5), before, after) == pytest.approx(1 / 1.1)


def test_none_without_the_sandboxs_cpu() -> None:
    assert server_time_ratio(run(25.0, 0.0), run(25.0, 24.5), run(25.0, 24.5)) is None
    assert server_time_ratio(run(25.0, 24.5), run(25.0, 0.0), run(25.0, 0.0)) is None


def row8(ratio: float, server_ratios: list[float | None]) -> str:
    """Row 8's line for one sink whose median round had ``ratio`` and these ratios in the sandbox's time."""
    from bench.run import QUICK, table

    limit = {**run(25.0, 24.5), "cpu_seconds": 10.0}
    export = {**run(25.0 / ratio, 24.5), "cpu_seconds": 15.0, "idle_rss_mb": 200.0, "peak_above_idle_mb": 5.0,
              "limit_before": limit, "limit_after": limit, "ratio": ratio, "ratios": [ratio],
              "server_ratios": server_ratios,
              "server_ratio_median": sorted(server_ratios)[(len(server_ratios) - 1) // 2] if all(server_ratios)
              else None}  # fmt: skip
    results = {"report_export": {"count": 1_000_000, "latency_ms": 5.0, "concurrency": 8,
                                 "rows": {"limit": limit, "listing": limit, "sql": export}}}  # fmt: skip
    return next(line for line in table(QUICK, {**results, "machine": {}}).splitlines() if "→ sql" in line)


@pytest.mark.parametrize(
    ("ratio", "server_ratios", "shown", "met"),
    [
        (0.76, [0.95, 0.93, 0.94], "in the sandbox's time **0.94x** (rounds: 0.95, 0.93, 0.94)", "yes"),
        (0.95, [0.88, 0.85, 0.89], "in the sandbox's time **0.88x**", "**no**"),
        (0.92, [None], "**0.92x**", "yes"),  # no sandbox CPU: the wall-clock ratio
        (0.85, [None], "**0.85x**", "**no**"),
    ],
)
def test_row_8_is_judged_in_the_sandboxs_time_where_it_was_measured(
    ratio: float, server_ratios: list[float | None], shown: str, met: str
) -> None:
    line = row8(ratio, server_ratios)
    assert shown in line
    assert f"**{ratio:.2f}x**" in line  # the wall-clock ratio stays in the table
    assert line.endswith(f"| {met} |")
