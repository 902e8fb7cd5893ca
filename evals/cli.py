"""The ``rag eval`` command: run a suite, print and write its reports, gate on a stored baseline.

``eval_command`` is a plain typer-compatible function, registered by the ``rag`` CLI
(``app.command("eval")(eval_command)``); ``python -m evals SUITE`` runs it on its own.
Exit codes: 0 fine, 1 a user error (bad suite, missing data), 3 a regression against the baseline.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from evals.baseline import BaselineError, baseline_json, compare, load_baseline, regressions
from evals.data import DatasetError
from evals.suite import SuiteError, load_suite
from index.embedding import ModelNotFoundError

REGRESSION_EXIT_CODE = 3
"""Distinct from 1 (user error) and 2 (usage error), so CI can tell a regression from a broken run."""

console = Console()
errors = Console(stderr=True)


def eval_command(
    suite: Annotated[Path, typer.Argument(help="Suite file (TOML), e.g. evals/suites/scifact.toml.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Report folder. Default: eval-reports/<suite>-<time> in the current folder."),
    ] = None,
    baseline: Annotated[
        Path | None,
        typer.Option(help="A baseline or report JSON to compare with; a metric drop beyond the suite's tolerance fails."),
    ] = None,
    data: Annotated[
        Path | None, typer.Option(help="Dataset folder (BEIR layout) to use instead of the one the suite names.")
    ] = None,
    write_baseline: Annotated[
        Path | None, typer.Option(help="Also write this run's metrics as a compact baseline JSON here.")
    ] = None,
    embedder: Annotated[
        str | None, typer.Option(help="Build the index with this embedder instead of the suite's (e.g. torch).")
    ] = None,
    vector_index: Annotated[
        str | None,
        typer.Option(help="Search the index with this vector index instead of the suite's: auto, flat or ivf."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Run an evaluation suite: retrieval metrics (ranx) and latency, or an answer suite; compare with a baseline."""
    # Imported here: `rag` registers this command on every start, and the runner loads the whole query side.
    from evals.report import print_report, report_dict, write_reports
    from evals.runner import run_suite
    from index.store import IndexStoreError

    try:
        parsed = load_suite(suite, data=data, embedder=embedder, vector_index=vector_index)
        baseline_data = load_baseline(baseline) if baseline is not None else None
        out_dir = out or Path("eval-reports") / f"{parsed.name}-{datetime.now():%Y%m%d-%H%M%S}"
        report = run_suite(parsed, out_dir, show_progress=not quiet)
    except (SuiteError, DatasetError, BaselineError, IndexStoreError, ModelNotFoundError) as error:
        errors.print(f"[red]error:[/red] {error}", highlight=False)
        raise typer.Exit(code=1) from None
    data_dict = report_dict(report)
    diffs = compare(data_dict, baseline_data, parsed.tolerance) if baseline_data is not None else None
    paths = write_reports(report, out_dir, diffs)
    print_report(report, console, diffs, parsed.tolerance)
    if write_baseline is not None:
        write_baseline.parent.mkdir(parents=True, exist_ok=True)
        write_baseline.write_text(json.dumps(baseline_json(data_dict), indent=1) + "\n", encoding="utf-8")
    errors.print(f"reports: {paths['markdown']} and {paths['json']}", highlight=False)
    if diffs is not None and regressions(diffs):
        failed = ", ".join(f"{d.run} {d.metric}" for d in regressions(diffs))
        errors.print(f"[red]regression[/red] beyond tolerance {parsed.tolerance}: {failed}", highlight=False)
        raise typer.Exit(code=REGRESSION_EXIT_CODE)


def main() -> None:
    """Run ``eval_command`` as a program of its own (``python -m evals``)."""
    typer.run(eval_command)
