"""The benchmark's outputs: a markdown table, a JSON file per run, and bench/RESULTS.md.

A row compares one workload across Granero, Feast and raw Redis; a cell is the median over runs
with the (min–max) range. The ratio is Granero's median over Feast's: read it with the row's
arrow (↑ higher is better for rates, ↓ lower is better for latencies and times).
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

Spread = dict[str, float]


@dataclass
class Row:
    workload: str
    unit: str
    better: Literal["higher", "lower"]
    granero: Spread | None = None
    feast: Spread | None = None
    redis: Spread | None = None


@dataclass
class Results:
    scale: str
    parameters: dict
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    details: dict = field(default_factory=dict)
    machine: dict = field(default_factory=dict)

    def add(self, row: Row) -> None:
        self.rows.append(row)


def _number(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if value >= 0.1 else f"{value:.3f}"


def cell(spread: Spread | None) -> str:
    if not spread:
        return "n/a"
    if spread["runs"] == 1:
        return _number(spread["median"])
    return f"{_number(spread['median'])} ({_number(spread['min'])}–{_number(spread['max'])})"


def ratio(row: Row) -> str:
    if not row.granero or not row.feast or not row.feast["median"]:
        return "n/a"
    return f"{row.granero['median'] / row.feast['median']:.2f}x"


def markdown_table(rows: list[Row]) -> str:
    lines = ["| workload | Granero | Feast | raw Redis | Granero/Feast |",
             "|---|---:|---:|---:|---:|"]
    for row in rows:
        arrow = "↑" if row.better == "higher" else "↓"
        cells = [f"{row.workload} ({row.unit} {arrow})", cell(row.granero), cell(row.feast),
                 cell(row.redis), ratio(row)]
        lines.append(f"| {' | '.join(cells)} |")
    return "\n".join(lines)


def _first_line(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    output = (done.stdout or done.stderr).strip()
    return output.splitlines()[0] if output else "unknown"


def machine_details() -> dict:
    """CPU, cores, memory, OS, Python and Java of this machine: the context every number needs."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    mem_kib = re.search(r"^MemTotal:\s*(\d+)", meminfo, re.M)
    return {
        "cpu": model[1].strip() if model else platform.processor() or "unknown",
        "cores": os.cpu_count(),
        "ram_gib": round(int(mem_kib[1]) / 1024**2, 1) if mem_kib else None,
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "java": _first_line(["java", "-version"]),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def write_json(results: Results, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"results-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(asdict(results), indent=1, default=str))
    return path


def results_markdown(results: Results, command: str) -> str:
    """The whole of bench/RESULTS.md: the latest table, its notes and the machine it ran on."""
    m = results.machine
    versions = ", ".join(f"{name} {version}" for name, version in m.get("versions", {}).items())
    notes = "\n".join(f"- {note}" for note in results.notes)
    parameters = ", ".join(f"{k}={v}" for k, v in results.parameters.items())
    return f"""# Benchmark results

The latest run of `{command}` (scale **{results.scale}**), written by bench/run.py. A cell is
the median over runs with (min–max); the ratio is Granero's median over Feast's, read with the
arrow (↑ higher is better, ↓ lower is better). bench/README.md says what each row measures.

{markdown_table(results.rows)}

Notes:
{notes}

Parameters: {parameters}.

Machine: {m.get("cpu")}, {m.get("cores")} cores, {m.get("ram_gib")} GiB RAM; {m.get("os")};
Python {m.get("python")}; {m.get("java")}; {versions}. Run on {m.get("date")}.
"""
