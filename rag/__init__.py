"""rag: ask questions of your documents and get answers that cite their sources.

The public API: ``Retriever`` (build, open, add, delete, search) and the data types it returns.
"""

from rag.retriever import SEARCH_MODES, Retriever
from rag.types import Answer, Citation, Passage

__all__ = ["SEARCH_MODES", "Answer", "Citation", "Passage", "Retriever"]
