"""``rag ask`` as the lead registers it: ``app.command("ask")(ask_command)``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from rag.cli.ask import ask_command


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    app.command("ask")(ask_command)

    @app.command("noop")
    def noop() -> None:  # a second command, so typer keeps "ask" as a subcommand name
        """Nothing."""

    return app


def test_ask_prints_the_answer_and_its_sources(app: typer.Typer, notes_index_dir: Path) -> None:
    result = CliRunner().invoke(app, ["ask", "Who is the mayor?", "--index", str(notes_index_dir)])
    assert result.exit_code == 0, result.output
    assert "Ellen Quist" in result.output
    assert "Sources:" in result.output and "harbour.txt" in result.output


def test_ask_json_gives_the_whole_answer(app: typer.Typer, notes_index_dir: Path) -> None:
    result = CliRunner().invoke(app, ["ask", "Who is the mayor?", "--index", str(notes_index_dir), "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert set(answer) >= {"text", "citations", "passages", "abstained", "unsupported_sentences"}
    assert any(c["quote"].startswith("Mayor Ellen Quist") for c in answer["citations"])


def test_ask_abstains_plainly(app: typer.Typer, notes_index_dir: Path) -> None:
    result = CliRunner().invoke(
        app, ["ask", "What is the boiling point of mercury in kelvin?", "--index", str(notes_index_dir)]
    )
    assert result.exit_code == 0
    assert "The documents don't answer this question." in result.output
    assert "Sources:" not in result.output


def test_history_file_carries_a_follow_up(app: typer.Typer, notes_index_dir: Path, tmp_path: Path) -> None:
    history = tmp_path / "chat.json"
    runner = CliRunner()
    first = runner.invoke(
        app, ["ask", "What did the council vote to rebuild?", "-i", str(notes_index_dir), "--history", str(history)]
    )
    assert first.exit_code == 0, first.output
    second = runner.invoke(
        app, ["ask", "How much will it cost?", "-i", str(notes_index_dir), "--history", str(history)]
    )
    assert "two million euros" in second.output
    assert len(json.loads(history.read_text())) == 4


def test_user_errors_are_one_line(app: typer.Typer, tmp_path: Path, notes_index_dir: Path) -> None:
    missing = CliRunner().invoke(app, ["ask", "Who?", "--index", str(tmp_path / "nothing")])
    assert missing.exit_code == 1 and "error:" in missing.output
    bad_llm = CliRunner().invoke(app, ["ask", "Who?", "--index", str(notes_index_dir), "--llm", "gpt5"])
    assert bad_llm.exit_code == 1 and "unknown LLM backend" in bad_llm.output


def test_command_module_loads_without_the_answer_chain() -> None:
    import subprocess
    import sys

    from rag.answering.assistant import DEFAULT_K
    from rag.cli.ask import DEFAULT_K as CLI_DEFAULT_K

    assert CLI_DEFAULT_K == DEFAULT_K
    code = "import sys, rag.cli.ask; print('rag.answering.assistant' in sys.modules, 'langchain_core' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert loaded[0] == "False"
