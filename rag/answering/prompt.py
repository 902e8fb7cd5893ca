"""The prompt that asks an LLM for an answer citing the numbered passages."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag.types import Passage

__all__ = ["SYSTEM_PROMPT", "answer_messages", "format_passages"]


SYSTEM_PROMPT = (
    "You answer questions using only the numbered passages you are given. "
    "After every sentence, cite the passages that state it, as [1] or [2][3]. "
    "Use only facts that the passages state; do not add anything from memory. "
    "If the passages do not answer the question, reply exactly: The documents don't answer this question. "
    "Answer in at most three sentences."
)


def format_passages(passages: Sequence[Passage]) -> str:
    """The passages numbered as the answer must cite them: ``[1] (title, page 3) text``."""
    blocks = []
    for number, passage in enumerate(passages, start=1):
        where = passage.title or Path(passage.source).name
        if passage.page is not None:
            where += f", page {passage.page}"
        blocks.append(f"[{number}] ({where})\n{passage.text.strip()}")
    return "\n\n".join(blocks)


def answer_messages(question: str, passages: Sequence[Passage]) -> list[Any]:
    """The chat messages asking for a cited answer to ``question`` from ``passages``."""
    from langchain_core.messages import HumanMessage, SystemMessage

    return [
        SystemMessage(content=SYSTEM_PROMPT),
        HumanMessage(content=f"Passages:\n\n{format_passages(passages)}\n\nQuestion: {question}"),
    ]
