"""Write a suite report: a rich table in the terminal, ``report.json``, ``report.md`` and a recall@k plot.

The plot is a small hand-written SVG (log-scaled cutoff axis), so reports need no plotting
library. :func:`write_reports` is what the CLI calls; the pieces are public for the answer runner.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from html import escape
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from evals.baseline import MetricDiff
from evals.runner import SuiteReport

REPORT_JSON = "report.json"
REPORT_MARKDOWN = "report.md"
RECALL_PLOT = "recall_at_k.svg"
_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


def report_dict(report: SuiteReport) -> dict[str, Any]:
    """The report as plain JSON-ready data (recall-curve keys become strings, as JSON needs)."""
    data = asdict(report)
    for run in data["runs"]:
        run["recall_curve"] = {str(cutoff): value for cutoff, value in run["recall_curve"].items()}
    return data


def write_reports(report: SuiteReport, out_dir: Path, diffs: list[MetricDiff] | None = None) -> dict[str, Path]:
    """Write JSON, Markdown and (for retrieval runs) the recall plot into ``out_dir``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    data = report_dict(report)
    if diffs is not None:
        data["baseline_diff"] = [asdict(diff) for diff in diffs]
    paths = {"json": out_dir / REPORT_JSON, "markdown": out_dir / REPORT_MARKDOWN}
    paths["json"].write_text(json.dumps(data, indent=1, default=float) + "\n", encoding="utf-8")
    plot_name = None
    if any(run.recall_curve for run in report.runs):
        paths["plot"] = out_dir / RECALL_PLOT
        paths["plot"].write_text(recall_svg(report), encoding="utf-8")
        plot_name = RECALL_PLOT
    paths["markdown"].write_text(markdown(report, diffs, plot_name), encoding="utf-8")
    return paths


def metric_names(report: SuiteReport) -> list[str]:
    """Metric columns in a stable order: the suite's own, then any others, latency last."""
    names: list[str] = []
    for run in report.runs:
        names += [name for name in run.metrics if name not in names]
    return sorted(names, key=lambda name: (name.startswith("latency"), names.index(name)))


def _format(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if metric.startswith("latency") else f"{value:.4f}"


def _header(metric: str) -> str:
    """A short column title (``recall@100`` -> ``R@100``), so a table fits an 80-column terminal."""
    if metric.startswith("recall@"):
        return "R@" + metric.split("@", 1)[1]
    return _SHORT_HEADERS.get(metric, metric)


_SHORT_HEADERS = {
    "latency_p50_ms": "p50 ms",
    "latency_p95_ms": "p95 ms",
    # a feedback suite's (evals.feedback)
    "questions_total": "questions",
    "pass_rate": "pass",
    "known_bad_returned": "bad again",
    "accepted_answer_rate": "accepted",
    "gold_source_rate": "gold source",
    "false_abstention_rate": "false abst.",
}


TRANSPOSE_ABOVE = 8
"""More metrics than this (a judged answer suite has 15) are printed one a row, runs as columns."""


def metrics_table(report: SuiteReport) -> Table:
    """A rich table: one row per run, one column per metric (transposed when there are many metrics)."""
    table = Table(title=f"{report.suite}: {report.query_count} queries", title_justify="left")
    columns = metric_names(report)
    if len(columns) > TRANSPOSE_ABOVE:
        table.add_column("metric")
        for run in report.runs:
            table.add_column(run.name, justify="right", no_wrap=True)
        for metric in columns:
            table.add_row(metric, *(_format(metric, run.metrics.get(metric)) for run in report.runs))
        return table
    table.add_column("run")
    for metric in columns:
        table.add_column(_header(metric), justify="right", no_wrap=True)
    for run in report.runs:
        table.add_row(run.name, *(_format(m, run.metrics.get(m)) for m in columns))
    return table


def diff_table(diffs: list[MetricDiff], tolerance: float) -> Table:
    """A rich table of the baseline comparison; regressions in red."""
    table = Table(title=f"against baseline (tolerance {tolerance})", title_justify="left")
    for column in ("run", "metric", "baseline", "now", "delta", ""):
        table.add_column(column, justify="left" if column in ("run", "metric", "") else "right")
    for diff in diffs:
        verdict = "[red]REGRESSION[/red]" if diff.regressed else ("" if diff.gated else "[dim]not gated[/dim]")
        delta = "-" if diff.delta is None else f"{diff.delta:+.4f}"
        table.add_row(
            diff.run, diff.metric, _format(diff.metric, diff.baseline), _format(diff.metric, diff.current), delta, verdict
        )
    return table


def print_report(
    report: SuiteReport, console: Console, diffs: list[MetricDiff] | None = None, tolerance: float = 0.0
) -> None:
    console.print(metrics_table(report))
    if diffs is not None:
        console.print(diff_table(diffs, tolerance))


def markdown(report: SuiteReport, diffs: list[MetricDiff] | None = None, plot_name: str | None = None) -> str:
    """The Markdown report: settings, metrics, the recall plot, the baseline diff and the machine."""
    columns = metric_names(report)
    lines = [
        f"# Evaluation: {report.suite}",
        "",
        f"{report.created} · {report.query_count} queries · kind `{report.kind}` · index `{report.index_dir}`",
        "",
        "| run | " + " | ".join(_header(m) for m in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for run in report.runs:
        lines.append(f"| {run.name} | " + " | ".join(_format(m, run.metrics.get(m)) for m in columns) + " |")
    if plot_name:
        lines += ["", "## Recall at k", "", f"![recall at k]({plot_name})", ""]
        lines += _curve_table(report)
    if diffs is not None:
        lines += ["", "## Against the baseline", "", "| run | metric | baseline | now | delta | |", "|---|---|---:|---:|---:|---|"]
        for diff in diffs:
            verdict = "**regression**" if diff.regressed else ("" if diff.gated else "not gated")
            delta = "-" if diff.delta is None else f"{diff.delta:+.4f}"
            lines.append(
                f"| {diff.run} | {diff.metric} | {_format(diff.metric, diff.baseline)} | "
                f"{_format(diff.metric, diff.current)} | {delta} | {verdict} |"
            )
    environment = report.environment
    packages = ", ".join(f"{name} {version}" for name, version in environment.get("packages", {}).items() if version)
    lines += [
        "",
        "## Settings and machine",
        "",
        "```json",
        json.dumps(report.settings, indent=2),
        "```",
        "",
        f"- machine: {environment.get('processor')}, {environment.get('cpu_count')} CPUs, {environment.get('platform')}",
        f"- python {environment.get('python')}; {packages}",
        f"- commit: {environment.get('commit')}",
        "",
    ]
    return "\n".join(lines)


def _curve_table(report: SuiteReport) -> list[str]:
    cutoffs = sorted({cutoff for run in report.runs for cutoff in run.recall_curve})
    lines = ["| run | " + " | ".join(f"R@{c}" for c in cutoffs) + " |", "|---|" + "---:|" * len(cutoffs)]
    for run in report.runs:
        values = " | ".join(_format("recall", run.recall_curve.get(c)) for c in cutoffs)
        lines.append(f"| {run.name} | {values} |")
    return lines


def recall_svg(report: SuiteReport, width: int = 560, height: int = 340) -> str:
    """An SVG line plot of recall@k (log-scaled k) with one line per run."""
    left, right, top, bottom = 50, 130, 20, 40
    plot_width, plot_height = width - left - right, height - top - bottom
    cutoffs = sorted({cutoff for run in report.runs for cutoff in run.recall_curve}) or [1, 10]
    low, high = math.log10(cutoffs[0]), math.log10(max(cutoffs[-1], cutoffs[0] + 1))

    def x(cutoff: float) -> float:
        return left + (math.log10(cutoff) - low) / (high - low) * plot_width

    def y(recall: float) -> float:
        return top + (1 - recall) * plot_height

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">',
        f'<rect x="{left}" y="{top}" width="{plot_width}" height="{plot_height}" fill="none" stroke="#999"/>',
    ]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<line x1="{left}" x2="{left + plot_width}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:.2f}</text>')
    for cutoff in cutoffs:
        parts.append(f'<text x="{x(cutoff):.1f}" y="{top + plot_height + 15}" text-anchor="middle">{cutoff}</text>')
    parts.append(f'<text x="{left + plot_width / 2}" y="{height - 6}" text-anchor="middle">k (log scale)</text>')
    parts.append(f'<text x="12" y="{top + plot_height / 2}" transform="rotate(-90 12 {top + plot_height / 2})" '
                 'text-anchor="middle">recall@k</text>')
    for index, run in enumerate(r for r in report.runs if r.recall_curve):
        colour = _COLOURS[index % len(_COLOURS)]
        points = " ".join(f"{x(c):.1f},{y(v):.1f}" for c, v in sorted(run.recall_curve.items()))
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>')
        legend_y = top + 14 + 16 * index
        parts.append(f'<line x1="{left + plot_width + 10}" x2="{left + plot_width + 30}" y1="{legend_y - 4}" '
                     f'y2="{legend_y - 4}" stroke="{colour}" stroke-width="2"/>')
        parts.append(f'<text x="{left + plot_width + 34}" y="{legend_y}">{escape(run.name)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
