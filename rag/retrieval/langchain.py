"""The edge where our types meet LangChain's: a ``BaseRetriever`` over a ``Retriever``, and Passage <-> Document.

Plug the retriever into a plain LCEL chain (``llm`` is any LangChain chat model)::

    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.runnables import RunnablePassthrough
    from rag import Retriever

    docs = Retriever.open("my-index").as_langchain(k=4)
    prompt = ChatPromptTemplate.from_template(
        "Answer from these passages only, citing them as [n].\\n\\n{context}\\n\\nQuestion: {question}"
    )

    def number(documents):
        return "\\n\\n".join(f"[{n}] {d.page_content}" for n, d in enumerate(documents, start=1))

    chain = {"context": docs | number, "question": RunnablePassthrough()} | prompt | llm | StrOutputParser()
    print(chain.invoke("How do I define a default argument value?"))
"""

from __future__ import annotations

from typing import Any, Protocol

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LangChainDocument
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, field_validator

from rag.types import Passage

__all__ = ["PassageSearch", "RagLangChainRetriever", "passage_to_document", "to_langchain_retriever"]

_SEARCH_OPTIONS = frozenset({"mode", "sources", "document_ids", "per_document"})


class PassageSearch(Protocol):
    """What the adapter needs of a retriever: ``search`` returning ranked Passages (``rag.Retriever`` has it)."""

    def search(self, query: str, k: int = 10, **options: Any) -> list[Passage]: ...


def passage_to_document(passage: Passage) -> LangChainDocument:
    """A LangChain ``Document`` holding the passage text, with where it came from as metadata.

    Metadata keys: document_id, chunk_id, source, title, page, score, rank, retriever, start, end.
    """
    return LangChainDocument(
        page_content=passage.text,
        id=passage.chunk_id,
        metadata={
            "document_id": passage.document_id,
            "chunk_id": passage.chunk_id,
            "source": passage.source,
            "title": passage.title,
            "page": passage.page,
            "score": passage.score,
            "rank": passage.rank,
            "retriever": passage.retriever,
            "start": passage.chunk.start,
            "end": passage.chunk.end,
        },
    )


class RagLangChainRetriever(BaseRetriever):
    """A LangChain retriever over a :class:`rag.Retriever`; ``k`` is set here and can be overridden per call.

    Example (``retriever`` is an open :class:`rag.Retriever`)::

        lc = RagLangChainRetriever(retriever=retriever, k=4, search_options={"mode": "bm25"})
        documents = lc.invoke("How do I define a default argument value?", k=2)
        documents[0].metadata["source"], documents[0].metadata["score"]
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retriever: Any
    """A :class:`PassageSearch`, such as :class:`rag.Retriever` (typed ``Any`` so pydantic does not validate it)."""
    k: int = 4
    search_options: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments of ``Retriever.search``: mode, sources, document_ids, per_document."""

    @field_validator("k")
    @classmethod
    def _k_positive(cls, k: int) -> int:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        return k

    @field_validator("search_options")
    @classmethod
    def _known_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        unknown = set(options) - _SEARCH_OPTIONS
        if unknown:
            raise ValueError(f"unknown search options {sorted(unknown)}; known: {sorted(_SEARCH_OPTIONS)}")
        return options

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[LangChainDocument]:
        k = kwargs.pop("k", self.k)
        options = {**self.search_options, **self._known_options(kwargs)}
        return [passage_to_document(p) for p in self.retriever.search(query, k=int(k), **options)]


def to_langchain_retriever(retriever: PassageSearch, k: int = 4, **search_options: Any) -> RagLangChainRetriever:
    """Wrap ``retriever`` as a LangChain ``BaseRetriever`` returning ``k`` Documents a query.

    ``search_options`` are passed to ``Retriever.search`` (mode, sources, document_ids, per_document).
    Raises ``ValueError`` (pydantic's ``ValidationError``) for ``k < 1`` or an unknown option.

    Example::

        lc = to_langchain_retriever(Retriever.open("my-index"), k=3, mode="hybrid")
        for document in lc.invoke("what is a generator?"):
            print(document.metadata["source"], document.metadata["page"], document.page_content[:80])
    """
    return RagLangChainRetriever(retriever=retriever, k=k, search_options=search_options)
