"""The dense half of an index: one FAISS index over chunk row ids, exact while small, approximate past a size.

Two kinds behind one interface (:class:`VectorIndex`), chosen by the index's ``vector_index``
setting (``auto``, ``flat`` or ``ivf``):

- ``flat``: exact inner product over float32 vectors (FAISS ``IDMap,Flat``).
- ``ivf``: an inverted file over 8-bit scalar-quantized codes (FAISS ``IVF{nlist},SQ8``, inner
  product): a quarter of the memory of flat, and a query scans ``nprobe`` of ``nlist`` lists.

``auto`` is flat below :data:`IVF_FROM_CHUNKS` chunks and IVF from there on. The crossover,
``nlist`` and ``nprobe`` come from ``bench/scale.py`` on real MiniLM vectors (README, "Scale").
Adds go into the existing structure; removals use FAISS id selectors (IVF removes the entries
from its lists, so nothing is left to tombstone). An IVF index is retrained (rebuilt from the
stored vectors, never re-embedded) once it has grown to twice, or shrunk to half, the size it
was trained at, so ``nlist`` keeps up with the data at an amortised cost.

A reader memory-maps the saved file (``IO_FLAG_MMAP_IFC`` for flat codes, ``IO_FLAG_MMAP`` for
inverted lists), so vectors are not held in RAM beside the page cache and several processes
share one copy. A mapped index is read-only in FAISS (an add aborts the process), so the first
add or remove reads an owned copy from the same file first.

>>> import numpy as np
>>> index = VectorIndex.empty(dimension=2, kind="flat")
>>> index.add(np.array([7, 9]), np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32))
>>> index.search(np.array([0.9, 0.1], dtype=np.float32), k=1)
[(7, 0.8999999761581421)]
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import faiss  # imported by the methods that touch vectors: settings and `rag status` need no FAISS

VECTOR_INDEX_SETTINGS = ("auto", "flat", "ivf")
VECTOR_INDEX_KINDS = ("flat", "ivf")

IVF_FROM_CHUNKS = 100_000
"""``auto`` uses IVF from this many chunks on (bench/scale.py: where flat search passes a few ms)."""
RETRAIN_FACTOR = 2.0
"""An IVF index is retrained when it holds this many times more, or fewer, vectors than it was trained on."""
TRAINING_POINTS_PER_LIST = 40
"""Training sample per inverted list; FAISS's k-means warns below 39."""


class VectorIndexError(ValueError):
    """A vector index setting or file that cannot be used."""


def check_setting(setting: str) -> str:
    """``setting`` if it is one of ``auto``, ``flat``, ``ivf``; else a VectorIndexError naming them."""
    if setting not in VECTOR_INDEX_SETTINGS:
        raise VectorIndexError(f"vector index must be one of {', '.join(VECTOR_INDEX_SETTINGS)}; got {setting!r}")
    return setting


def kind_for(setting: str, count: int, current: str | None = None) -> str:
    """The kind of index the ``setting`` asks for at ``count`` vectors.

    ``auto`` keeps an IVF index until the count falls below half the crossover, so an index
    hovering around it is not rebuilt back and forth.

    >>> kind_for("auto", 5_000), kind_for("auto", 250_000), kind_for("auto", 60_000, current="ivf")
    ('flat', 'ivf', 'ivf')
    """
    check_setting(setting)
    if setting != "auto":
        return setting
    if current == "ivf" and count >= IVF_FROM_CHUNKS / RETRAIN_FACTOR:
        return "ivf"
    return "ivf" if count >= IVF_FROM_CHUNKS else "flat"


def ivf_lists(count: int) -> int:
    """``nlist`` for an IVF index trained on ``count`` vectors: about 2 sqrt(n), at least 40 points a list.

    FAISS's guidance is 4 to 16 sqrt(n); on real MiniLM vectors 4 sqrt(n) gave the same recall at
    the same nprobe as 2 sqrt(n) (100k: 0.970 at nprobe 32 either way) for three times the build
    time (13.8 s against 4.3 s), so the smaller count is used.

    >>> ivf_lists(1_000_000), ivf_lists(100_000), ivf_lists(10_000), ivf_lists(3)
    (2000, 632, 200, 1)
    """
    return max(1, min(round(2 * math.sqrt(count)), count // TRAINING_POINTS_PER_LIST))


def ivf_probes(nlist: int) -> int:
    """``nprobe`` for ``nlist`` lists: 64, or 1/32 of the lists when there are more than 2,048.

    Measured on real MiniLM vectors (recall@10 against exact search, SciFact claims): with 200
    lists (10k chunks) nprobe 32/48/64 gave 0.956/0.973/0.982; with 2,000 lists (1M chunks, real
    plus synthetic) 0.968/0.976/0.980 for 32/64/128, where 8-bit codes cap it. Queries far from
    the corpus (SQuAD questions over SciFact abstracts) need more: 0.767/0.850/0.895 at 10k.

    >>> ivf_probes(2000), ivf_probes(8000), ivf_probes(200), ivf_probes(1)
    (64, 250, 64, 1)
    """
    return min(nlist, max(64, round(nlist / 32)))


@dataclass(frozen=True)
class VectorIndexInfo:
    """What kind of index a file holds; saved in the stamp beside it and shown by ``rag status``."""

    kind: str = "flat"
    nlist: int = 0
    nprobe: int = 0
    trained_on: int = 0

    def describe(self) -> str:
        """One line for ``rag status``: ``flat (exact inner product)`` or the IVF parameters."""
        if self.kind == "flat":
            return "flat (exact inner product)"
        if not self.nlist:
            return "ivf (approximate; not trained yet)"
        return (
            f"ivf (approximate: IVF{self.nlist},SQ8, nprobe {self.nprobe}, trained on {self.trained_on:,} vectors)"
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> VectorIndexInfo:
        data = data or {}
        kind = data.get("kind", "flat")
        if kind not in VECTOR_INDEX_KINDS:
            raise VectorIndexError(f"unknown vector index kind {kind!r}")
        return cls(kind, int(data.get("nlist", 0)), int(data.get("nprobe", 0)), int(data.get("trained_on", 0)))


class VectorIndex:
    """A FAISS index of vectors keyed by int64 row ids: ``add``, ``remove``, ``search``, ``save``, ``open``.

    Flat and IVF behave the same through this interface (tests/index/test_vectors.py runs one
    contract against both); IVF's scores are inner products of the 8-bit codes, so they differ
    from exact ones by about 1e-3, and its results are approximate. Vectors must be L2-normalised
    float32 rows of ``dimension`` columns.
    """

    def __init__(self, dimension: int, info: VectorIndexInfo, index: faiss.Index | None, source: IO[bytes] | None = None):
        self.dimension = dimension
        self.info = info
        self._index = index
        self._source = source  # the file a mapped index reads from, kept open so a later rename cannot swap it

    def __repr__(self) -> str:
        return f"VectorIndex({self.info.describe()}, {len(self)} vectors)"

    def __len__(self) -> int:
        return int(self._index.ntotal) if self._index is not None else 0

    @property
    def kind(self) -> str:
        return self.info.kind

    # ---- making ---------------------------------------------------------------------------

    @classmethod
    def empty(cls, dimension: int, kind: str) -> VectorIndex:
        """An index with no vectors; an IVF one is trained by its first ``add``."""
        import faiss

        if kind not in VECTOR_INDEX_KINDS:
            raise VectorIndexError(f"vector index kind must be flat or ivf; got {kind!r}")
        if kind == "flat":
            return cls(dimension, VectorIndexInfo("flat"), faiss.IndexIDMap(faiss.IndexFlatIP(dimension)))
        return cls(dimension, VectorIndexInfo("ivf"), None)

    @classmethod
    def build(
        cls,
        dimension: int,
        kind: str,
        count: int,
        batches: Iterable[tuple[np.ndarray, np.ndarray]],
        training_sample: np.ndarray | None = None,
    ) -> VectorIndex:
        """An index of ``count`` vectors given as ``(rows, vectors)`` batches.

        IVF is trained on ``training_sample`` (at least ``40 nlist`` vectors spread over the
        data: the caller reads them first, so the batches can stream from disk) or, without
        one, on the first batches.
        """
        index = cls.empty(dimension, kind)
        if kind == "ivf" and count:
            if training_sample is None:
                batches = list(batches)
                training_sample = np.vstack([vectors for _, vectors in batches])
            index._train(training_sample, count)
        for rows, vectors in batches:
            index.add(rows, vectors)
        return index

    def _train(self, sample: np.ndarray, count: int) -> None:
        import faiss

        nlist = ivf_lists(count)
        index = faiss.index_factory(self.dimension, f"IVF{nlist},SQ8", faiss.METRIC_INNER_PRODUCT)
        sample = np.ascontiguousarray(sample, dtype=np.float32)
        if len(sample) > nlist * 256:  # what FAISS's k-means would sample itself, without the warning
            sample = sample[np.random.default_rng(0).choice(len(sample), nlist * 256, replace=False)]
        index.train(sample)
        self._index = index
        self.info = VectorIndexInfo("ivf", nlist, ivf_probes(nlist), count)

    # ---- changing -------------------------------------------------------------------------

    def add(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        """Add ``vectors`` under ``rows`` (ids not already present). An untrained IVF index trains on them."""
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dimension)
        if len(rows) != len(vectors):
            raise ValueError(f"{len(rows)} rows but {len(vectors)} vectors")
        if not len(rows):
            return
        if self._index is None:
            self._train(vectors, len(vectors))
        self._own()
        self._index.add_with_ids(vectors, rows)

    def remove(self, rows: Iterable[int]) -> int:
        """Remove the vectors of ``rows`` (unknown rows are ignored); returns how many were removed."""
        import faiss

        ids = np.fromiter(rows, dtype=np.int64)
        if not len(ids) or self._index is None:
            return 0
        self._own()
        return int(self._index.remove_ids(faiss.IDSelectorBatch(ids)))

    def _own(self) -> None:
        """Replace a memory-mapped (read-only) index by an owned copy read from the same file."""
        import faiss

        if self._source is None:
            return
        self._source.seek(0)
        self._index = faiss.deserialize_index(np.frombuffer(self._source.read(), dtype=np.uint8))
        self._source.close()
        self._source = None

    def wants_rebuild(self, setting: str, count: int) -> bool:
        """True when ``setting`` asks for another kind at ``count`` vectors, or IVF has outgrown its training."""
        if kind_for(setting, count, self.kind) != self.kind:
            return True
        if self.kind != "ivf" or self._index is None:
            return False
        trained = max(self.info.trained_on, 1)
        return count > trained * RETRAIN_FACTOR or count < trained / RETRAIN_FACTOR

    # ---- searching ------------------------------------------------------------------------

    def search(self, query: np.ndarray, k: int, allowed_rows: set[int] | None = None) -> list[tuple[int, float]]:
        """The ``k`` best ``(row, inner product)`` pairs for ``query``, best first; only ``allowed_rows`` if given.

        IVF probes ``nprobe`` lists for k <= 10 and ``sqrt(k / 10)`` times as many for deeper
        searches (hybrid search asks for 100 candidates): on SciFact (12k chunks, 220 lists, per
        document, k=100) a fixed nprobe of 64 / 96 / 128 cost hybrid nDCG@10 0.0050 / 0.0020 /
        0.0000 against exact search, and 64 x sqrt(10) = 203 probes cost nothing. A filtered
        search probes more lists in proportion to the share of rows it may return, so a narrow
        filter still finds its matches (all lists at most).
        """
        import faiss

        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        total = len(self)
        if not total or allowed_rows is not None and not allowed_rows:
            return []
        selector = faiss.IDSelectorBatch(np.fromiter(allowed_rows, dtype=np.int64)) if allowed_rows else None
        if self.kind == "ivf":
            nprobe = self.info.nprobe * math.sqrt(max(k, 10) / 10)
            if allowed_rows:
                nprobe = math.ceil(nprobe * total / len(allowed_rows))
            params = faiss.SearchParametersIVF(nprobe=min(max(math.ceil(nprobe), 1), self.info.nlist), sel=selector)
        else:
            params = faiss.SearchParameters(sel=selector) if selector is not None else None
        scores, rows = self._index.search(
            np.asarray(query, dtype=np.float32).reshape(1, -1), min(k, total), params=params
        )
        return [(int(r), float(s)) for r, s in zip(rows[0], scores[0]) if r >= 0]

    # ---- files ----------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Write the index to ``path`` atomically (a temporary file, fsync, rename)."""
        import faiss

        index = self._index if self._index is not None else faiss.IndexIDMap(faiss.IndexFlatIP(self.dimension))
        temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            faiss.write_index(index, str(temporary))
            with open(temporary, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)

    @classmethod
    def open(cls, path: Path, dimension: int, info: VectorIndexInfo, mmap: bool = True) -> VectorIndex:
        """Read the index ``save`` wrote; ``mmap`` maps its vectors from the file instead of copying them."""
        import faiss

        if info.kind == "ivf" and not info.nlist:
            return cls(dimension, info, None)  # saved before its first vector: nothing to read
        # Kept open (closed by _own or the garbage collector): an owned copy is read from this very file.
        source = open(path, "rb") if mmap else None  # noqa: SIM115
        flags = (faiss.IO_FLAG_MMAP if info.kind == "ivf" else faiss.IO_FLAG_MMAP_IFC) if mmap else 0
        index = faiss.read_index(str(path), flags)
        if index.d != dimension:
            raise VectorIndexError(f"{path}: vectors of dimension {index.d}, the index expects {dimension}")
        is_ivf = faiss.try_extract_index_ivf(index) is not None
        if is_ivf != (info.kind == "ivf"):
            raise VectorIndexError(f"{path}: the file does not hold the {info.kind} index its stamp names")
        return cls(dimension, info, index, source)
