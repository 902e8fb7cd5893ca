"""rag: ask questions of your documents and get answers that cite their sources.

The public API: ``Retriever`` (build, open, add, delete, search, as_langchain), ``Assistant``
(ask, stream, as_runnable) and the data types they return.
"""

from typing import TYPE_CHECKING, Any

from rag.retrieval.retriever import SEARCH_MODES, Retriever
from rag.types import Answer, AnswerDelta, Citation, Passage

if TYPE_CHECKING:
    from rag.answering.assistant import Assistant

__all__ = ["SEARCH_MODES", "Answer", "AnswerDelta", "Assistant", "Citation", "Passage", "Retriever"]


def __getattr__(name: str) -> Any:
    # The answer chain pulls in LangChain's runnables; load it on first use so `rag --help` stays quick.
    if name == "Assistant":
        from rag.answering.assistant import Assistant

        return Assistant
    raise AttributeError(f"module 'rag' has no attribute {name!r}")
