"""Compare a report with a stored baseline: a metric that drops by more than the tolerance is a regression.

A baseline is a report JSON (full, or the compact form :func:`baseline_json` writes for the
repository); only each run's ``metrics`` are read. Most metrics are better higher; a few are better
lower (false abstention: a rise is the regression). Latency is shown but never gated: it depends
on the machine and on what else runs on it, so it would make the gate flaky; nor are descriptive
figures that have no better direction (answer length, question counts).

>>> old = {"runs": [{"name": "bm25", "metrics": {"ndcg@10": 0.70, "latency_p95_ms": 9.0}}]}
>>> new = {"runs": [{"name": "bm25", "metrics": {"ndcg@10": 0.69, "latency_p95_ms": 30.0}}]}
>>> [(d.metric, d.regressed) for d in compare(new, old, tolerance=0.005)]
[('ndcg@10', True), ('latency_p95_ms', False)]
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

UNGATED_PREFIXES = ("latency", "answer_words", "questions_")
"""Metrics shown but not gated: timings, and figures with no better direction."""
LOWER_IS_BETTER_PREFIXES = ("false_abstention", "known_bad", "furniture")
"""Metrics whose rise is the regression (answers that abstain wrongly, known-bad answers, quoted page furniture)."""


@dataclass(frozen=True)
class MetricDiff:
    """One metric of one run, before and after; ``regressed`` when it fell by more than the tolerance."""

    run: str
    metric: str
    baseline: float | None
    current: float | None
    delta: float | None
    gated: bool
    regressed: bool


class BaselineError(ValueError):
    """The baseline file is missing or is not a report."""


def load_baseline(path: str | Path) -> dict[str, Any]:
    """Read a baseline (or any report) JSON; raises :class:`BaselineError` with a one-line reason."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BaselineError(f"{path}: baseline file not found") from None
    except json.JSONDecodeError as error:
        raise BaselineError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(data, dict) or not isinstance(data.get("runs"), list):
        raise BaselineError(f"{path}: not a report (no 'runs' list)")
    return data


def compare(current: dict[str, Any], baseline: dict[str, Any], tolerance: float) -> list[MetricDiff]:
    """Every metric present in either report, run by run. A metric missing now counts as a regression."""
    current_runs = {run["name"]: run["metrics"] for run in current["runs"]}
    baseline_runs = {run["name"]: run["metrics"] for run in baseline["runs"]}
    diffs = []
    for run_name, old_metrics in baseline_runs.items():
        new_metrics = current_runs.get(run_name, {})
        for metric in dict.fromkeys([*old_metrics, *new_metrics]):
            diffs.append(_diff(run_name, metric, old_metrics.get(metric), new_metrics.get(metric), tolerance))
    for run_name in current_runs.keys() - baseline_runs.keys():
        for metric, value in current_runs[run_name].items():
            diffs.append(_diff(run_name, metric, None, value, tolerance))
    return diffs


def _diff(run: str, metric: str, old: float | None, new: float | None, tolerance: float) -> MetricDiff:
    gated = not metric.startswith(UNGATED_PREFIXES)
    delta = new - old if old is not None and new is not None else None
    if not gated or old is None:
        regressed = False  # a new metric or run has nothing to regress from
    elif new is None:
        regressed = True
    else:
        # A small epsilon so a drop of exactly the tolerance (after float rounding) still passes.
        worsening = delta if metric.startswith(LOWER_IS_BETTER_PREFIXES) else -delta
        regressed = worsening > tolerance + 1e-12
    return MetricDiff(run, metric, old, new, delta, gated, regressed)


def regressions(diffs: list[MetricDiff]) -> list[MetricDiff]:
    return [diff for diff in diffs if diff.regressed]


def baseline_json(report: dict[str, Any]) -> dict[str, Any]:
    """The compact form stored under ``evals/baselines/``: settings, environment and mean metrics, no per-query data."""
    return {
        "suite": report["suite"],
        "kind": report["kind"],
        "created": report["created"],
        "settings": report["settings"],
        "environment": report["environment"],
        "query_count": report["query_count"],
        "runs": [{"name": run["name"], "metrics": run["metrics"]} for run in report["runs"]],
    }
