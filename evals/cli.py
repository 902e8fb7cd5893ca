"""The ``rag eval`` command: run a suite, print and write its reports, gate on a stored baseline.

``eval_command`` is a plain typer-compatible function, registered by the ``rag`` CLI
(``app.command("eval")(eval_command)``); ``python -m evals SUITE`` runs it on its own.
Exit codes: 0 fine, 1 a user error (bad suite, missing data), 3 a regression against the baseline
(or, for a feedback suite, an answer users marked wrong that came back).

``rag eval --from-feedback [--index DIR] [--out suites/feedback.toml]`` writes a suite of the
thumbs up and down given in the chat page instead of running one (:mod:`evals.feedback`).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from evals.runner import SuiteReport

REGRESSION_EXIT_CODE = 3
"""Distinct from 1 (user error) and 2 (usage error), so CI can tell a regression from a broken run."""

console = Console()
errors = Console(stderr=True)


def eval_command(
    suite: Annotated[
        Path | None, typer.Argument(help="Suite file (TOML), e.g. evals/suites/scifact.toml.", show_default=False)
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Report folder. Default: eval-reports/<suite>-<time> in the current folder. "
            "With --from-feedback: the suite file to write (default suites/feedback.toml).",
        ),
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
    store: Annotated[
        str | None,
        typer.Option(help="Search the suite's index in this store instead: folder or milvus-lite (a copy, nothing re-embedded)."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    from_feedback: Annotated[
        bool,
        typer.Option(
            "--from-feedback",
            help="Write an answer suite of the feedback given in the chat page (instead of running a suite).",
        ),
    ] = False,
    index: Annotated[
        str | None,
        typer.Option(
            "--index",
            "-i",
            help="With --from-feedback: the index whose feedback to read (a folder or a Milvus URI). "
            "Default: $RAG_INDEX, else the default index.",
            show_default=False,
        ),
    ] = None,
    llm: Annotated[
        str, typer.Option(help="With --from-feedback: the answer backend the suite asks with (see rag ask --llm).")
    ] = "extractive",
) -> None:
    """Run an evaluation suite: retrieval metrics (ranx) and latency, or an answer suite; compare with a baseline."""
    # Imported here, not at the top: `rag` registers this command on every start (`rag status` too).
    from evals.baseline import BaselineError, baseline_json, compare, load_baseline, regressions
    from evals.data import DatasetError
    from evals.feedback import FeedbackSuiteError
    from evals.suite import SuiteError, load_suite
    from index.embedding import ModelNotFoundError

    if from_feedback:
        _write_feedback_suite(index, out, llm)
        return
    if suite is None:
        errors.print("[red]error:[/red] name a suite file, or pass --from-feedback to write one", highlight=False)
        raise typer.Exit(code=1)
    # Imported here: `rag` registers this command on every start, and the runner loads the whole query side.
    from evals.report import print_report, report_dict, write_reports
    from evals.runner import run_suite
    from index.store import IndexStoreError

    try:
        parsed = load_suite(suite, data=data, embedder=embedder, vector_index=vector_index, store=store)
        baseline_data = load_baseline(baseline) if baseline is not None else None
        out_dir = out or Path("eval-reports") / f"{parsed.name}-{datetime.now():%Y%m%d-%H%M%S}"
        report = run_suite(parsed, out_dir, show_progress=not quiet)
    except (SuiteError, DatasetError, BaselineError, FeedbackSuiteError, IndexStoreError, ModelNotFoundError) as error:
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
    if parsed.kind == "feedback":
        _gate_feedback(report)


def _write_feedback_suite(index: str | None, out: Path | None, llm: str) -> None:
    from evals.feedback import DEFAULT_SUITE_PATH, FeedbackSuiteError, write_feedback_suite
    from index.store import IndexStoreError
    from index.stores import MilvusLocation, parse_location
    from rag.config import default_index

    try:
        location = parse_location(index or default_index())
    except IndexStoreError as error:
        errors.print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=1) from None
    # A Milvus index keeps its feedback in its companion folder, which also reopens it.
    index_dir = location.companion_dir if isinstance(location, MilvusLocation) else location
    try:
        path, written = write_feedback_suite(index_dir, out or DEFAULT_SUITE_PATH, llm=llm)
    except FeedbackSuiteError as error:
        errors.print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=1) from None
    questions = written["questions"]
    wrong = sum(1 for q in questions if q.get("known_bad") or q.get("accepted_answers"))
    noun = "question" if len(questions) == 1 else "questions"
    console.print(f"wrote {path}: {len(questions)} {noun}, {wrong} with answers marked wrong", highlight=False, soft_wrap=True)
    console.print(f"run it with: rag eval {path}", highlight=False, soft_wrap=True)


def _gate_feedback(report: SuiteReport) -> None:
    """A feedback suite fails (status 3) when an answer users marked wrong comes back; each is named."""
    from rich.markup import escape

    run = report.runs[0]
    table_rows = list(run.per_query.values())
    for row in table_rows:
        verdict = "[green]pass[/green]" if row["passed"] else "[red]FAIL[/red]"
        console.print(f"{verdict}  {escape(row['question'])}", highlight=False, soft_wrap=True)
    # An abstention where users want an answer (they marked it wrong, or liked an answer) counts too.
    came_back = [row for row in table_rows if row["known_bad_returned"] or row["false_abstention"]]
    if came_back:
        errors.print(
            f"[red]regression[/red]: {len(came_back)} answer(s) users marked wrong came back: "
            + "; ".join(escape(row["question"]) for row in came_back),
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(code=REGRESSION_EXIT_CODE)


def main() -> None:
    """Run ``eval_command`` as a program of its own (``python -m evals``)."""
    typer.run(eval_command)
