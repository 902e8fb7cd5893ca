"""rag: ask questions of your documents and get answers that cite their sources.

The public API: ``Retriever`` (build, open, add, delete, search, as_langchain), ``Assistant``
(ask, stream, as_runnable) and the data types they return.
"""

from typing import TYPE_CHECKING, Any

from rag.types import Answer, AnswerDelta, Citation, Passage

if TYPE_CHECKING:
    from rag.answering.assistant import Assistant
    from rag.retrieval.retriever import SEARCH_MODES, Retriever

__all__ = ["SEARCH_MODES", "Answer", "AnswerDelta", "Assistant", "Citation", "Passage", "Retriever"]


def __getattr__(name: str) -> Any:
    # Loaded on first use: the retriever brings FAISS and the answer chain its scorers, and a command
    # that needs neither (`rag status`, `rag --help`) should not wait for them.
    if name == "Assistant":
        from rag.answering.assistant import Assistant

        return Assistant
    if name in ("Retriever", "SEARCH_MODES"):
        from rag.retrieval import retriever

        return getattr(retriever, name)
    raise AttributeError(f"module 'rag' has no attribute {name!r}")
