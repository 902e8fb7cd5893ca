"""Retriever.search on a small corpus the test writes itself (real model, real FAISS, real BM25):
filters by source glob and document id, per-document vs per-chunk results, modes, and reranking."""

from __future__ import annotations

from pathlib import Path

import pytest

from index.chunking import ChunkerSettings
from index.embedding import resolve_model_path
from index.ingest import add_to_index
from index.store import IndexStore
from rag.retrieval.rerank import CrossEncoderReranker
from rag.retrieval.retriever import Retriever

# Small chunks so one long document is cut into several chunks.
CHUNKER = ChunkerSettings(chunk_tokens=48, overlap_tokens=8)

LONG_VOLCANO = "\n\n".join(  # noqa: FLY002 - one paragraph a line reads better than one long f-string
    [
        "# Volcanoes",
        (
            "Mount Erebus in Antarctica holds one of the few persistent lava lakes on Earth; its molten "
            "surface has been observed continuously since the early nineteen seventies by visiting scientists."
        ),
        (
            "Kilauea on Hawaii erupted almost without pause from 1983 to 2018, and its lava flows added "
            "hundreds of acres of new land to the southern coast of the island."
        ),
        (
            "Volcanologists watch lava lakes with thermal cameras, gas spectrometers and seismometers placed "
            "around the crater rim, because changes in a lava lake's level warn of coming eruptions."
        ),
    ]
)

FILES = {
    "notes/volcanoes.md": LONG_VOLCANO,
    "notes/bakery.md": "# Bakery\n\nThe bakery on Elm Street opens at six in the morning and sells rye bread and pretzels.",
    "reports/orbits.txt": "A geostationary satellite circles the Earth once every sidereal day, so it hangs above one spot.",
    "reports/tides.txt": "Tides rise and fall twice a day because the Moon's gravity pulls the oceans into two bulges.",
    "reports/glaciers.txt": "Glaciers in Greenland lose ice every summer as meltwater lubricates their beds.",
}


@pytest.fixture(scope="module")
def corpus_index(tmp_path_factory: pytest.TempPathFactory, embedder) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("retriever-corpus")
    for name, text in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    index_dir = root.parent / f"{root.name}-index"
    add_to_index(index_dir, [root], chunker=CHUNKER, embedder=embedder, show_progress=False)
    return root, index_dir


@pytest.fixture(scope="module")
def retriever(corpus_index: tuple[Path, Path], embedder) -> Retriever:
    return Retriever(IndexStore.open(corpus_index[1]), embedder)


def _doc_id(root: Path, name: str) -> str:
    return str((root / name).resolve())


def _names(passages) -> list[str]:
    return [Path(passage.source).name for passage in passages]


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_every_mode_finds_the_obvious_document_first(retriever: Retriever, mode: str) -> None:
    passages = retriever.search("bakery rye bread opening time", k=3, mode=mode)
    assert _names(passages)[0] == "bakery.md"
    assert [p.rank for p in passages] == list(range(1, len(passages) + 1))
    assert all(p.retriever == mode for p in passages)
    assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)


def test_long_document_is_cut_into_several_chunks(retriever: Retriever, corpus_index) -> None:
    volcano = _doc_id(corpus_index[0], "notes/volcanoes.md")
    assert len(retriever.store.rows_for_documents([volcano])) >= 3


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_per_chunk_results_can_hold_several_chunks_of_one_document(retriever: Retriever, mode: str) -> None:
    passages = retriever.search("lava lake volcano eruption", k=5, mode=mode)
    assert _names(passages).count("volcanoes.md") >= 2


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_per_document_results_hold_each_document_once_at_its_best_chunk(retriever: Retriever, mode: str) -> None:
    per_chunk = retriever.search("lava lake volcano eruption", k=10, mode=mode)
    per_document = retriever.search("lava lake volcano eruption", k=10, mode=mode, per_document=True)
    names = _names(per_document)
    assert len(names) == len(set(names))
    best_volcano_chunk = next(p for p in per_chunk if p.source.endswith("volcanoes.md"))
    volcano = next(p for p in per_document if p.source.endswith("volcanoes.md"))
    assert volcano.chunk_id == best_volcano_chunk.chunk_id
    assert [p.rank for p in per_document] == list(range(1, len(per_document) + 1))


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_source_glob_keeps_only_matching_documents(retriever: Retriever, mode: str) -> None:
    passages = retriever.search("lava lakes on Earth", k=10, mode=mode, sources=["*/reports/*"])
    assert passages, "a filtered search still returns the matching documents"
    assert all("/reports/" in p.source for p in passages)


def test_several_source_globs_are_alternatives(retriever: Retriever) -> None:
    passages = retriever.search("earth", k=10, mode="dense", sources=["*.md", "*/tides.txt"], per_document=True)
    assert set(_names(passages)) == {"volcanoes.md", "bakery.md", "tides.txt"}


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_document_ids_filter(retriever: Retriever, corpus_index, mode: str) -> None:
    wanted = _doc_id(corpus_index[0], "reports/glaciers.txt")
    passages = retriever.search("satellite orbit", k=5, mode=mode, document_ids=[wanted])
    assert {p.document_id for p in passages} <= {wanted}
    if mode != "bm25":  # BM25 returns only documents sharing a word with the query
        assert [p.document_id for p in passages] == [wanted]


def test_source_and_document_id_filters_intersect(retriever: Retriever, corpus_index) -> None:
    root = corpus_index[0]
    ids = [_doc_id(root, "notes/bakery.md"), _doc_id(root, "reports/tides.txt")]
    passages = retriever.search("bread tides", k=10, mode="hybrid", sources=["*.txt"], document_ids=ids)
    assert _names(passages) == ["tides.txt"]


def test_filters_matching_nothing_give_no_results(retriever: Retriever) -> None:
    assert retriever.search("volcano", k=5, sources=["*.pdf"]) == []
    assert retriever.search("volcano", k=5, document_ids=["no-such-document"]) == []


def test_bad_arguments_are_refused(retriever: Retriever) -> None:
    with pytest.raises(ValueError, match="k must be >= 1, got 0"):
        retriever.search("volcano", k=0)
    with pytest.raises(ValueError, match="mode must be one of"):
        retriever.search("volcano", mode="sparse")  # type: ignore[arg-type]
    assert retriever.search("   ", k=3) == []


# ---- reranking ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cross-encoder folder made from the packaged MiniLM weights with a fresh one-logit head.

    Its scores mean nothing, which is the point: reranked results must follow the reranker's own
    scores, whatever they are. Nothing is downloaded.
    """
    from sentence_transformers import CrossEncoder

    folder = tmp_path_factory.mktemp("cross-encoder")
    CrossEncoder(resolve_model_path("all-MiniLM-L6-v2"), num_labels=1).save(str(folder))
    return folder


def test_reranker_orders_passages_by_its_own_scores(corpus_index, embedder, local_cross_encoder: Path) -> None:
    reranker = CrossEncoderReranker(local_cross_encoder, depth=20)
    reranking = Retriever(IndexStore.open(corpus_index[1]), embedder, reranker=reranker)
    query = "what happens on Earth every day"
    candidates = reranking.search(query, k=20, mode="hybrid", rerank=False)
    reranked = reranking.search(query, k=20, mode="hybrid")
    assert {p.chunk_id for p in reranked} == {p.chunk_id for p in candidates}
    own_scores = dict(zip((p.chunk_id for p in candidates), reranker.score(query, [p.text for p in candidates])))
    expected = sorted(own_scores, key=lambda chunk_id: own_scores[chunk_id], reverse=True)
    assert [p.chunk_id for p in reranked] == expected
    assert [p.score for p in reranked] == pytest.approx([own_scores[c] for c in expected], abs=1e-5)
    assert all(p.retriever == "hybrid+rerank" for p in reranked)
    assert [p.chunk_id for p in candidates] != expected, "a random head should reorder something"


def test_reranker_picks_the_best_k_of_its_depth_of_candidates(corpus_index, embedder, local_cross_encoder) -> None:
    reranker = CrossEncoderReranker(local_cross_encoder, depth=10)
    reranking = Retriever(IndexStore.open(corpus_index[1]), embedder, reranker=reranker)
    candidates = reranking.search("earth", k=10, mode="dense", rerank=False)
    top_three = reranking.search("earth", k=3, mode="dense")
    scores = dict(zip((p.chunk_id for p in candidates), reranker.score("earth", [p.text for p in candidates])))
    assert [p.chunk_id for p in top_three] == sorted(scores, key=lambda c: scores[c], reverse=True)[:3]


def test_reranker_needs_an_existing_folder(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="reranker model folder not found"):
        CrossEncoderReranker(tmp_path / "missing")
    with pytest.raises(ValueError, match="depth must be >= 1, got 0"):
        CrossEncoderReranker(tmp_path, depth=0)
