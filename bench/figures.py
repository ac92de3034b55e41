"""What a benchmark suite returns, and how a run is written down.

Every figure is a ratio against a baseline measured in the same run on the same
machine, so results from different machines stay comparable.
"""

from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
README = Path(__file__).resolve().parent.parent / "README.md"
BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    target: str = ""
    # For "lower is better" units (seconds, ms) the ratio is value / baseline too;
    # the target column says which way is good.

    @property
    def ratio(self) -> float | None:
        if not self.baseline:
            return None
        return self.value / self.baseline


def markdown_table(figures: list[Figure]) -> str:
    lines = [
        "| figure | value | unit | baseline (same run) | ratio | target |",
        "| --- | ---: | --- | --- | ---: | --- |",
    ]
    for figure in figures:
        baseline = (
            f"{figure.baseline_name}: {figure.baseline:,.1f}" if figure.baseline is not None else ""
        )
        ratio = f"{figure.ratio:.2f}" if figure.ratio is not None else ""
        lines.append(
            f"| {figure.name} | {figure.value:,.1f} | {figure.unit} | {baseline} | {ratio} | "
            f"{figure.target} |"
        )
    return "\n".join(lines)


def write_results(figures: list[Figure]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(tz=UTC).strftime("%Y-%m-%dT%H-%M-%SZ")
    machine = f"{platform.machine()}, python {platform.python_version()}"
    header = f"Run {stamp} on {platform.node()} ({machine})"
    table = markdown_table(figures)
    (RESULTS / f"{stamp}.md").write_text(f"{header}\n\n{table}\n")
    (RESULTS / "latest.md").write_text(f"{header}\n\n{table}\n")
    (RESULTS / "latest.json").write_text(
        json.dumps(
            [
                {
                    "name": figure.name,
                    "value": figure.value,
                    "unit": figure.unit,
                    "baseline": figure.baseline,
                    "baseline_name": figure.baseline_name,
                    "ratio": figure.ratio,
                    "target": figure.target,
                }
                for figure in figures
            ],
            indent=2,
        )
        + "\n"
    )
    _update_readme(f"{header}\n\n{table}")
    return RESULTS / f"{stamp}.md"


def _update_readme(block: str) -> None:
    if not README.exists():
        return
    text = README.read_text()
    if BEGIN not in text or END not in text:
        return
    before, rest = text.split(BEGIN, 1)
    _, after = rest.split(END, 1)
    README.write_text(f"{before}{BEGIN}\n{block}\n{END}{after}")


__all__ = ["Figure", "asdict", "markdown_table", "write_results"]
