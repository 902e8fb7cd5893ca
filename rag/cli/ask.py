"""``rag ask``: answer a question from the index, with numbered sources underneath.

The command function is typer-compatible; ``rag.cli`` registers it (``app.command("ask")(ask_command)``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from rag.config import INDEX_HELP, default_index
from rag.types import Answer, AnswerDelta

# rag.answering.assistant.DEFAULT_K, repeated so that `rag --help` does not import the answer chain (a test checks).
DEFAULT_K = 5

__all__ = ["ask_command", "format_sources"]


def format_sources(answer: Answer) -> list[str]:
    """One line per citation: ``[n] source, page p: "quote"``, flagged when the passage does not support it.

    >>> from rag.types import Citation
    >>> answer = Answer("Paris is in France [1].", [Citation(1, "d", "c", "geo.md", "Geo", None, 0, 5, "Paris is in France.")])
    >>> format_sources(answer)
    ['[1] geo.md: "Paris is in France."']
    """
    lines = []
    for citation in answer.citations:
        where = citation.source + (f", page {citation.page}" if citation.page is not None else "")
        flag = "" if citation.supported else "  (does not support the sentence citing it)"
        lines.append(f'[{citation.marker}] {where}: "{citation.quote}"{flag}')
    return list(dict.fromkeys(lines))


def _read_history(path: Path | None) -> list[dict[str, str]]:
    from rag.answering.conversation import normalise_history

    if path is None or not path.exists():
        return []
    try:
        return normalise_history(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, ValueError) as error:
        raise ValueError(f"{path}: not a chat history ({error})") from None


def ask_command(
    question: Annotated[str, typer.Argument(help="The question to answer from the documents.")],
    index: Annotated[str | None, typer.Option("--index", "-i", help=INDEX_HELP)] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the whole Answer as JSON.")] = False,
    llm: Annotated[
        str | None,
        typer.Option(
            "--llm",
            help="Answer backend: extractive (default, offline), openai:MODEL, ollama:MODEL or gguf:PATH. "
            "Default: $RAG_LLM or the config file.",
        ),
    ] = None,
    k: Annotated[int, typer.Option("--k", "-k", min=1, help="Passages given to the answerer.")] = DEFAULT_K,
    mode: Annotated[str, typer.Option(help="Retrieval: hybrid, dense or bm25.")] = "hybrid",
    history: Annotated[
        Path | None,
        typer.Option(help="A JSON chat history file: read for follow-ups, then this turn is appended to it."),
    ] = None,
) -> None:
    """Answer a question from the index, citing the passages; says so when the documents don't answer."""
    from index.store import IndexStoreError
    from rag import service
    from rag.collection import open_collection
    from rag.llm import LlmConfigError

    errors = Console(stderr=True)
    try:
        earlier = _read_history(history)
        collection = open_collection(index if index is not None else default_index())
        assistants = service.AssistantPool(service.configured_backends(llm))
        deltas = service.stream_answer(collection, assistants, question, earlier, k=k, mode=mode)
        answer = _print_answer(deltas, stream=not json_output)
    except (IndexStoreError, LlmConfigError, ValueError) as error:
        errors.print(f"[red]error:[/red] {escape(str(error))}", highlight=False)
        raise typer.Exit(code=1) from None
    except (ConnectionError, OSError) as error:  # an LLM server that is down or unreachable
        errors.print(f"[red]error:[/red] cannot reach the LLM: {escape(str(error))}", highlight=False)
        raise typer.Exit(code=1) from None
    if json_output:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
    else:
        _print_sources(answer)
    if history is not None:
        turn = [{"role": "user", "content": question}, {"role": "assistant", "content": answer.text}]
        history.write_text(json.dumps(earlier + turn, ensure_ascii=False, indent=2), encoding="utf-8")


def _print_answer(deltas: Iterator[AnswerDelta], stream: bool) -> Answer:
    """Write the answer as it comes (when ``stream``); returns the checked Answer of the last delta."""
    answer = None
    streamed: list[str] = []
    for delta in deltas:
        if stream and delta.text:
            sys.stdout.write(delta.text)
            sys.stdout.flush()
            streamed.append(delta.text)
        answer = delta.answer or answer
    assert answer is not None
    if streamed:
        sys.stdout.write("\n")
        if "".join(streamed).strip() != answer.text:
            # The check removed markers that point at no passage: show what was kept.
            print(f"\nChecked answer: {answer.text}")
    return answer


def _print_sources(answer: Answer) -> None:
    if answer.unsupported_sentences:
        print("\nNot supported by the cited passages:")
        for sentence in answer.unsupported_sentences:
            print(f"  - {sentence}")
    lines = format_sources(answer)
    if lines:
        print("\nSources:")
        for line in lines:
            print(f"  {line}")
