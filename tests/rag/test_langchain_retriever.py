"""LangChain's own standard retriever tests, run against our adapter over a small real index."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

# Importing langchain_tests.integration_tests runs its chat-model module, which applies
# @pytest.mark.vcr, a marker of pytest-recording; our config disables that plugin and uses
# --strict-markers, so the import would fail. Until "vcr" is listed in pyproject's markers,
# declare it here (MarkGenerator keeps its known markers in ``_markers``).
pytest.mark._markers.add("vcr")
from langchain_tests.integration_tests import RetrieversIntegrationTests

from rag import Retriever
from rag.retrieval.langchain import RagLangChainRetriever, to_langchain_retriever
from tests.rag.conftest import index_of

NOTES = {
    "tea.txt": "Green tea is made from unoxidised leaves. Black tea is fully oxidised before drying.",
    "bikes.txt": "A bicycle chain should be cleaned and oiled every few hundred kilometres of riding.",
    "rivers.txt": "The Danube flows through ten countries before it reaches the Black Sea.",
    "bread.txt": "Sourdough bread rises because wild yeast and lactic bacteria ferment the dough.",
    "comets.txt": "A comet's tail points away from the Sun, pushed by the solar wind and radiation.",
}


@pytest.fixture(scope="module")
def small_retriever(tmp_path_factory: pytest.TempPathFactory) -> Retriever:
    return Retriever.open(index_of(NOTES, tmp_path_factory))


class TestRagLangChainRetrieverStandard(RetrieversIntegrationTests):
    """LangChain's standard suite: k at construction, k per call, invoke and ainvoke return Documents."""

    # pytest-asyncio runs in strict mode here, so the suite's async test needs its mark. Marking
    # returns the same function object, which the suite's no-override check requires.
    test_ainvoke_returns_documents = pytest.mark.asyncio(RetrieversIntegrationTests.test_ainvoke_returns_documents)

    @pytest.fixture(autouse=True)
    def _retriever(self, small_retriever: Retriever) -> None:
        self._rag_retriever = small_retriever

    @property
    def retriever_constructor(self) -> type[BaseRetriever]:
        return RagLangChainRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"retriever": self._rag_retriever}

    @property
    def retriever_query_example(self) -> str:
        return "how is black tea made?"


def test_documents_carry_source_metadata(small_retriever: Retriever) -> None:
    documents = to_langchain_retriever(small_retriever, k=2).invoke("which way does a comet's tail point?")
    assert len(documents) == 2
    best = documents[0]
    assert isinstance(best, Document)
    assert "solar wind" in best.page_content
    assert best.metadata["source"].endswith("comets.txt")
    assert set(best.metadata) >= {"document_id", "chunk_id", "source", "page", "score", "title"}
    assert best.metadata["score"] >= documents[1].metadata["score"]


def test_per_call_k_overrides_constructor_k(small_retriever: Retriever) -> None:
    lc = to_langchain_retriever(small_retriever, k=4)
    assert len(lc.invoke("bread", k=1)) == 1
    assert len(lc.invoke("bread")) == 4


def test_search_options_are_passed_through(small_retriever: Retriever) -> None:
    lc = to_langchain_retriever(small_retriever, k=5, mode="bm25", sources=["*rivers.txt"])
    documents = lc.invoke("Danube Black Sea")
    assert [Path(d.metadata["source"]).name for d in documents] == ["rivers.txt"]


def test_bad_arguments_fail_early(small_retriever: Retriever) -> None:
    with pytest.raises(ValueError, match="k must be >= 1"):
        to_langchain_retriever(small_retriever, k=0)
    with pytest.raises(ValueError, match="unknown search options"):
        to_langchain_retriever(small_retriever, colour="red")


def test_lcel_example_in_the_module_docstring_runs(
    small_retriever: Retriever, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import re

    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    import rag.retrieval.langchain

    snippet = re.search(r"::\n\n(.*)", rag.retrieval.langchain.__doc__, re.DOTALL).group(1)
    snippet = "\n".join(line[4:] for line in snippet.splitlines())
    (tmp_path / "my-index").symlink_to(small_retriever.index_dir)
    monkeypatch.chdir(tmp_path)
    if not hasattr(Retriever, "as_langchain"):  # until the lead adds the method that delegates here
        monkeypatch.setattr(Retriever, "as_langchain", to_langchain_retriever, raising=False)
    llm = FakeListChatModel(responses=["Black tea is fully oxidised before drying [1]."])
    printed: list[str] = []
    exec(snippet, {"llm": llm, "print": printed.append})  # noqa: S102 -- our own docstring
    assert printed == ["Black tea is fully oxidised before drying [1]."]


def test_as_langchain_is_the_public_entry_point(tmp_path, embedder):
    from langchain_core.retrievers import BaseRetriever

    from index.ingest import add_to_index
    from rag.retrieval.retriever import Retriever

    (tmp_path / "a.txt").write_text("Lighthouses warn ships away from dangerous rocks at night.")
    (tmp_path / "b.txt").write_text("Bread dough rises when yeast ferments the sugars in flour.")
    add_to_index(tmp_path / "idx", [tmp_path / "a.txt", tmp_path / "b.txt"], embedder=embedder, show_progress=False)
    lc = Retriever.open(tmp_path / "idx").as_langchain(k=2, mode="dense")
    assert isinstance(lc, BaseRetriever)
    documents = lc.invoke("What keeps ships off the rocks?", k=1)
    assert len(documents) == 1 and documents[0].metadata["source"].endswith("a.txt")
