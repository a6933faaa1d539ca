"""How a benchmark tells its figures: a table on stdout and the same figures as JSON under `.data/bench/`.

Every benchmark ends with `report(name, rows, figures)`: `rows` are what a person reads (label, value and
the goal where the benchmark has one), `figures` everything measured, for the next run to compare against.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.processes import ROOT

OUT = Path(os.environ.get("BENCH_OUT") or ROOT / ".data" / "bench")
"""Where the figures (and a run's work directory) go: `.data/bench/`, or `BENCH_OUT` (the tests' small runs
write to a temporary directory, not over the figures of a real run)."""


@dataclass(frozen=True)
class Row:
    label: str
    value: str
    goal: str = ""


def percentile(samples: Sequence[float], p: float) -> float:
    """The nearest-rank percentile (p in 0..100): a figure that was measured, never interpolated."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def latency_ms(samples: Sequence[float]) -> dict[str, float]:
    """p50, p99, mean and max of `samples` (seconds), in milliseconds."""
    if not samples:
        return {"count": 0}
    return {
        "count": len(samples),
        "p50_ms": round(percentile(samples, 50) * 1000, 1),
        "p99_ms": round(percentile(samples, 99) * 1000, 1),
        "mean_ms": round(statistics.fmean(samples) * 1000, 1),
        "max_ms": round(max(samples) * 1000, 1),
    }


def against(goal: str, met: bool | None) -> str:
    """A row's goal with its verdict: `>= 0.6x: met`, `<= 100 ms: NOT MET`, or not measured (None)."""
    if met is None:
        return f"{goal}: not measured"
    return f"{goal}: {'met' if met else 'NOT MET'}"


def at_least(value: float, goal: float) -> bool | None:
    """`value >= goal`; None where `value` was not measured (NaN)."""
    return None if math.isnan(value) else value >= goal


def at_most(value: float, goal: float) -> bool | None:
    """`value <= goal`; None where `value` was not measured (NaN)."""
    return None if math.isnan(value) else value <= goal


def machine() -> dict[str, Any]:
    """Cores and memory of the machine the figures came from."""
    memory_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kib / 1024**2, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def render(title: str, rows: Sequence[Row]) -> str:
    width = max(len(r.label) for r in rows)
    value_width = max(len(r.value) for r in rows)
    lines = ["", title, "-" * len(title)]
    for r in rows:
        goal = f"   goal: {r.goal}" if r.goal else ""
        lines.append(f"{r.label:<{width}}  {r.value:>{value_width}}{goal}")
    return "\n".join(lines)


def report(name: str, title: str, rows: Sequence[Row], figures: dict[str, Any]) -> Path:
    """Print the table and write `.data/bench/<name>.json`; returns the JSON file's path."""
    print(render(title, rows), flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    document = {
        "benchmark": name,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "table": [{"label": r.label, "value": r.value, "goal": r.goal} for r in rows],
        "figures": figures,
    }
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    print(f"\nfigures: {path}", flush=True)
    return path


def rss_mib(pid: int | None) -> dict[str, float]:
    """A process's resident memory now and at its peak (VmRSS, VmHWM), in MiB; empty if it is gone."""
    if pid is None:
        return {}
    figures: dict[str, float] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                figures["rss_mib" if key == "VmRSS" else "peak_rss_mib"] = round(
                    int(rest.split()[0]) / 1024, 1
                )
    except OSError:
        return {}
    return figures


def memory(figures: dict[str, float]) -> str:
    """`rss_mib`'s figures as a table shows them: now / peak."""
    return f"{figures.get('rss_mib')} / {figures.get('peak_rss_mib')} MiB"
