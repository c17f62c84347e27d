"""Run every ``bench/bench_*.py`` (sorted by name) and print one table of their figures.

Usage: ``python bench/run.py [NAME ...]``; names (e.g. ``http``) pick a subset of scripts.
Each script prints one JSON object per figure on stdout; its stderr passes through. A failing
script gets a FAILED row and makes this command exit 1 after the others have run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT_TIMEOUT_SECONDS = 900.0
STOP_TIMEOUT_SECONDS = 30.0
COLUMNS = ("benchmark", "figure", "value", "unit", "note")


@dataclass(frozen=True)
class Figure:
    bench: str
    figure: str
    value: float | None
    unit: str
    note: str

    def cells(self) -> tuple[str, ...]:
        value = "" if self.value is None else f"{self.value:,.1f}"
        return (self.bench, self.figure, value, self.unit, self.note)


def parse(line: str) -> Figure:
    data = json.loads(line)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    bench, figure, value, unit = (
        data.get("bench"),
        data.get("figure"),
        data.get("value"),
        data.get("unit"),
    )
    note = data.get("note", "")
    if not (isinstance(bench, str) and isinstance(figure, str) and isinstance(unit, str)):
        raise ValueError("bench, figure and unit must be strings")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("value must be a number")
    if not isinstance(note, str):
        raise ValueError("note must be a string")
    return Figure(bench, figure, float(value), unit, note)


def run_script(script: Path) -> tuple[list[Figure], str | None]:
    """Run one script; return its figures and, if it failed, why."""
    name = script.stem.removeprefix("bench_")
    print(f"== {script.relative_to(ROOT)}", file=sys.stderr, flush=True)
    argv = [sys.executable, "-m", f"bench.{script.stem}"]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    failures: list[str] = []
    try:
        out, _ = proc.communicate(timeout=SCRIPT_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        failures.append(f"timed out after {SCRIPT_TIMEOUT_SECONDS:.0f}s")
        proc.send_signal(signal.SIGTERM)  # the script stops its servers, then exits
        try:
            out, _ = proc.communicate(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    except KeyboardInterrupt:
        proc.wait()  # the script got the SIGINT too and is stopping its servers
        raise
    figures: list[Figure] = []
    for line in out.splitlines():
        if not line.strip():
            continue
        try:
            figures.append(parse(line))
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            print(f"{script.name}: bad figure line ({exc}): {line}", file=sys.stderr)
            if "bad output" not in failures:
                failures.append("bad output")
    if proc.returncode != 0:
        failures.append(f"exit status {proc.returncode}")
    if failures:
        figures.append(Figure(name, "FAILED", None, "", "; ".join(failures)))
    return figures, "; ".join(failures) or None


def table(figures: list[Figure]) -> str:
    rows = [COLUMNS, *(f.cells() for f in figures)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            cell.rjust(width) if i == 2 else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def main(names: list[str]) -> int:
    scripts = sorted((ROOT / "bench").glob("bench_*.py"))
    if names:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in names]
        if not scripts:
            print(f"no bench script matches {' '.join(names)}", file=sys.stderr)
            return 2
    started = time.monotonic()
    figures: list[Figure] = []
    failed: list[str] = []
    for script in scripts:
        found, failure = run_script(script)
        figures += found
        if failure is not None:
            failed.append(script.name)
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(
        f"\nKithost benchmarks, {now}, {os.cpu_count()} cores, {time.monotonic() - started:.0f}s\n"
    )
    print(table(figures))
    if failed:
        print(f"\nFailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
