"""rag: ask questions of your documents and get answers that cite their sources.

The public API: ``Retriever`` (build, open, add, delete, search, as_langchain), ``Assistant``
(ask, stream, as_runnable) and the data types they return.
"""

from rag.assistant import Assistant
from rag.retriever import SEARCH_MODES, Retriever
from rag.types import Answer, AnswerDelta, Citation, Passage

__all__ = ["SEARCH_MODES", "Answer", "AnswerDelta", "Assistant", "Citation", "Passage", "Retriever"]
