"""Lexical BM25 index over chunk ids, saved next to the FAISS index and the SQLite store.

Text is analysed by :func:`tokenize` (lower-case, word split, stop words, Snowball stemming)
and scored with Lucene's BM25 (``idf = ln(1 + (N - df + 0.5) / (df + 0.5))``, term weight
``idf * tf / (tf + k1 * (1 - b + b * dl / avgdl))``), the variant Anserini publishes numbers for.

Why bm25s and not SQLite FTS5: FTS5's ``bm25()`` fixes k1=1.2 and b=0.75 and offers only the
Porter stemmer, and its tokenizer cannot be reused from Python for lexical overlap. Measured on
this machine it is not worse, though (SciFact nDCG@10 0.681 with ``porter unicode61`` and an OR
query, SQuAD dev-a MRR@10 0.840, against 0.680 and 0.833 here), so the choice is about control
and one shared tokenizer, not quality.

How the index stays incremental: each document keeps its analysed terms (term ids and term
frequencies), so :meth:`Bm25Index.add` and :meth:`Bm25Index.delete` only analyse the changed
texts. Because idf and the average length are global, the weight matrix is rebuilt, lazily,
on the first search after a change. The rebuild is vectorised numpy plus scipy's CSR-to-CSC
conversion: 0.03 s for 10k SciFact abstracts and 0.3 to 0.9 s for 100k (10M postings) on
2 cores, where ``bm25s.BM25.index`` with its per-document loops takes 0.35 s and 4.3 s. A query
sums the weight columns of its terms, as ``bm25s.BM25.get_scores`` does with its numpy backend
(about 0.5 ms a query at 100k); it is done here because importing bm25s imports numba and scipy
(about 1 s of a cold ``rag search`` on the busy 2-core machine). scipy is imported by the first
search, bm25s only for the stop words of a language other than English.

Nothing is pickled: :meth:`Bm25Index.save` writes one ``bm25.npz`` of plain integer arrays
(the vocabulary as UTF-8 bytes), atomically, and :meth:`Bm25Index.open` loads it with
``allow_pickle=False``.
"""

from __future__ import annotations

import json
import math
import operator
import os
import re
import tempfile
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import Stemmer

__all__ = ["INDEX_FILE_NAME", "Bm25Index", "tokenize"]

INDEX_FILE_NAME = "bm25.npz"
FORMAT_VERSION = 1
# Bump when tokenize() changes its output: an index saved with another version must be
# rebuilt, because its stored terms would no longer match the terms of a query.
TOKENIZER_VERSION = 1

# Single-character tokens are kept (as Lucene's StandardTokenizer does): dropping them costs
# about 0.004 nDCG@10 on SciFact ("β", "2", "x" carry meaning in science text).
_WORD_PATTERN = re.compile(r"\w+")

# English stop words: Lucene's 33-word list (ENGLISH_STOP_WORDS_SET), the one Anserini uses; the
# same as bm25s.stopwords.STOPWORDS_EN (a test checks), written out so tokenising needs no bm25s.
_ENGLISH_STOPWORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then there these"
    " they this to was will with".split()
)
# Other languages' lists come from bm25s, by Snowball algorithm name; languages without a list
# here are stemmed but keep all their words.
_BM25S_STOPWORD_LISTS = {
    "danish": "STOPWORDS_DANISH",
    "dutch": "STOPWORDS_DUTCH",
    "french": "STOPWORDS_FRENCH",
    "german": "STOPWORDS_GERMAN",
    "italian": "STOPWORDS_ITALIAN",
    "norwegian": "STOPWORDS_NORWEGIAN",
    "portuguese": "STOPWORDS_PORTUGUESE",
    "russian": "STOPWORDS_RUSSIAN",
    "spanish": "STOPWORDS_SPANISH",
    "swedish": "STOPWORDS_SWEDISH",
    "turkish": "STOPWORDS_TURKISH",
}
_STOPWORDS: dict[str, frozenset[str]] = {"english": _ENGLISH_STOPWORDS, "porter": _ENGLISH_STOPWORDS}


def _stopwords(language: str) -> frozenset[str]:
    if language not in _STOPWORDS:
        words: frozenset[str] = frozenset()
        if language in _BM25S_STOPWORD_LISTS:
            from bm25s import stopwords as bm25s_stopwords

            words = frozenset(getattr(bm25s_stopwords, _BM25S_STOPWORD_LISTS[language]))
        _STOPWORDS[language] = words
    return _STOPWORDS[language]


_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1

# PyStemmer's Stemmer objects are not thread-safe (the chat page serves requests from several
# threads), so each thread gets its own.
_thread_local = threading.local()


def _check_language(language: str) -> None:
    if language not in Stemmer.algorithms():
        known = ", ".join(sorted(Stemmer.algorithms()))
        raise ValueError(f"unknown language {language!r}: choose one of {known}")


def _stemmer(language: str) -> Stemmer.Stemmer:
    stemmers: dict[str, Stemmer.Stemmer] = getattr(_thread_local, "stemmers", None) or {}
    _thread_local.stemmers = stemmers
    if language not in stemmers:
        _check_language(language)
        stemmers[language] = Stemmer.Stemmer(language)
    return stemmers[language]


def tokenize(text: str, language: str = "english") -> list[str]:
    """Split ``text`` into the stemmed terms the BM25 index stores and queries with.

    Lower-cases, splits on runs of word characters (Unicode-aware), drops the language's
    stop words, then applies the Snowball stemmer for ``language`` (any name in
    ``Stemmer.algorithms()``; ``"porter"`` is the original Porter stemmer). Deterministic;
    order and repeats are kept. Raises ValueError for an unknown language.

    >>> tokenize("The cats are running to the 2 Hospitals!")
    ['cat', 'run', '2', 'hospit']
    """
    stemmer = _stemmer(language)
    stop_words = _stopwords(language)
    words = [word for word in _WORD_PATTERN.findall(text.lower()) if word not in stop_words]
    return stemmer.stemWords(words)


def _as_int64(value: object) -> int:
    """``value`` as a Python int in the int64 range (chunk row ids are SQLite integers)."""
    if isinstance(value, bool):
        raise TypeError(f"ids must be integers, got {value!r}")
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"ids must be integers, got {value!r}") from None
    if not _INT64_MIN <= number <= _INT64_MAX:
        raise ValueError(f"id {number} does not fit in int64")
    return number


@dataclass(frozen=True)
class _Built:
    """The scoring structure for one state of the index: rows are documents in id order."""

    row_ids: np.ndarray  # int64, ascending
    # The documents x terms weight matrix in CSC layout: term t's rows are indices[indptr[t]:indptr[t+1]].
    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray

    def scores(self, term_ids: list[int]) -> np.ndarray:
        """Each row's BM25 score: the sum of its weights for the query's terms (a repeated term counts again)."""
        scores = np.zeros(len(self.row_ids), dtype=np.float32)
        for term_id in term_ids:
            start, end = self.indptr[term_id], self.indptr[term_id + 1]
            scores[self.indices[start:end]] += self.data[start:end]  # a column names each row once
        return scores


class Bm25Index:
    """A BM25 index of texts keyed by integer ids (the chunk row ids of the SQLite store).

    ``add`` replaces a text whose id is already indexed, ``delete`` ignores unknown ids, and
    ``search`` returns ``(id, score)`` pairs best first (ties by ascending id), only documents
    that share at least one term with the query. Scores are Lucene BM25 with ``k1`` and ``b``.
    Methods are safe to call from several threads.

    >>> import tempfile
    >>> from pathlib import Path
    >>> index = Bm25Index()
    >>> index.add([1, 2, 3], ["Cats purr on the mat.", "Dogs bark at cats.", "Fish swim."])
    >>> [doc_id for doc_id, score in index.search("a purring cat", k=5)]
    [1, 2]
    >>> index.search("purr", k=5, allowed_ids={2, 3})
    []
    >>> index.delete([1, 42])
    >>> len(index)
    2
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     index.save(Path(folder))
    ...     reopened = Bm25Index.open(Path(folder))
    >>> reopened.search("cats", k=5)[0][0]
    2

    Raises ValueError for k1 < 0, b outside [0, 1] or an unknown language.
    """

    def __init__(self, k1: float = 0.9, b: float = 0.4, language: str = "english") -> None:
        if not (math.isfinite(k1) and k1 >= 0):
            raise ValueError(f"k1 must be a finite number >= 0, got {k1}")
        if not (math.isfinite(b) and 0 <= b <= 1):
            raise ValueError(f"b must be between 0 and 1, got {b}")
        _check_language(language)
        self.k1 = float(k1)
        self.b = float(b)
        self.language = language
        self._lock = threading.RLock()
        self._vocabulary: dict[str, int] = {}
        # id -> int32 array of shape (2, distinct terms): row 0 term ids, row 1 frequencies.
        self._documents: dict[int, np.ndarray] = {}
        self._built: _Built | None = None

    def __repr__(self) -> str:
        return f"Bm25Index(k1={self.k1}, b={self.b}, language={self.language!r}, documents={len(self)})"

    def __len__(self) -> int:
        """The number of indexed documents."""
        return len(self._documents)

    def add(self, ids: Sequence[int], texts: Sequence[str]) -> None:
        """Index ``texts[i]`` under ``ids[i]``, replacing any text already under that id.

        If an id repeats within one call, its last text wins. Raises ValueError when the two
        sequences differ in length or an id does not fit in int64, TypeError for a non-integer
        id or a non-string text; on error nothing is changed.
        """
        if isinstance(texts, str):
            raise TypeError("texts must be a sequence of strings, not one string")
        if len(ids) != len(texts):
            raise ValueError(f"ids and texts differ in length: {len(ids)} ids, {len(texts)} texts")
        checked_ids = [_as_int64(doc_id) for doc_id in ids]
        for text in texts:
            if not isinstance(text, str):
                raise TypeError(f"texts must be strings, got {type(text).__name__}")
        analysed = [tokenize(text, self.language) for text in texts]
        with self._lock:
            for doc_id, terms in zip(checked_ids, analysed):
                term_ids = np.fromiter(
                    (self._vocabulary.setdefault(term, len(self._vocabulary)) for term in terms),
                    dtype=np.int32,
                    count=len(terms),
                )
                distinct, counts = np.unique(term_ids, return_counts=True)
                self._documents[doc_id] = np.stack([distinct, counts.astype(np.int32)])
            if checked_ids:
                self._built = None

    def delete(self, ids: Iterable[int]) -> None:
        """Remove the documents with these ids; ids that are not indexed are ignored."""
        with self._lock:
            removed = [self._documents.pop(_as_int64(doc_id), None) for doc_id in ids]
            if any(entry is not None for entry in removed):
                self._built = None

    def search(self, query: str, k: int, allowed_ids: set[int] | None = None) -> list[tuple[int, float]]:
        """The ``k`` best ``(id, score)`` pairs for ``query``, best first.

        Only documents sharing a term with the query are returned, so fewer than ``k`` pairs
        may come back; an empty query, a query of stop words only, or an empty index gives
        ``[]``. A term repeated in the query counts once per repeat (as in Anserini's
        bag-of-words queries). With ``allowed_ids``, only those ids can be returned. Raises
        ValueError when k < 1.
        """
        if isinstance(k, bool) or operator.index(k) < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        terms = tokenize(query, self.language)
        with self._lock:
            term_ids = [self._vocabulary[term] for term in terms if term in self._vocabulary]
            if not term_ids or not self._documents:
                return []
            built = self._build()
        scores = built.scores(term_ids)
        matches = scores > 0  # Lucene's idf is always > 0, so a shared term means score > 0
        if allowed_ids is not None:
            matches &= self._rows_mask(built.row_ids, allowed_ids)
        rows = np.flatnonzero(matches)
        if len(rows) > k:
            # Keep every row tied with the k-th score, so ties are broken by id, not by chance.
            kth_score = np.partition(scores[rows], len(rows) - k)[len(rows) - k]
            rows = rows[scores[rows] >= kth_score]
        # Rows are in id order, so sorting by (-score, row) breaks ties by ascending id.
        best = rows[np.lexsort((rows, -scores[rows]))][:k]
        return [(int(built.row_ids[row]), float(scores[row])) for row in best]

    @staticmethod
    def _rows_mask(row_ids: np.ndarray, allowed_ids: set[int]) -> np.ndarray:
        mask = np.zeros(len(row_ids), dtype=bool)
        if not allowed_ids:
            return mask
        allowed = np.fromiter((_as_int64(doc_id) for doc_id in allowed_ids), dtype=np.int64, count=len(allowed_ids))
        positions = np.searchsorted(row_ids, allowed)
        inside = positions < len(row_ids)
        positions = positions[inside]
        mask[positions[row_ids[positions] == allowed[inside]]] = True
        return mask

    def document_frequencies(self, terms: Sequence[str]) -> tuple[int, list[int]]:
        """How many documents there are, and in how many of them each of ``terms`` (stems) occurs.

        >>> index = Bm25Index()
        >>> index.add([1, 2], ["red apples", "green apples"])
        >>> index.document_frequencies(tokenize("apple red blue"))
        (2, [2, 1, 0])
        """
        built = self._build()
        with self._lock:
            term_ids = [self._vocabulary.get(term) for term in terms]
        return len(built.row_ids), [
            0 if term_id is None or term_id + 1 >= len(built.indptr) else int(built.indptr[term_id + 1] - built.indptr[term_id])
            for term_id in term_ids
        ]

    def _build(self) -> _Built:
        """The scoring structure for the current documents, rebuilt if anything changed."""
        with self._lock:
            if self._built is None:
                self._built = self._build_now()
            return self._built

    def _build_now(self) -> _Built:
        row_ids = np.fromiter(sorted(self._documents), dtype=np.int64, count=len(self._documents))
        entries = [self._documents[int(doc_id)] for doc_id in row_ids]
        n_docs, n_terms = len(entries), len(self._vocabulary)
        postings = np.concatenate(entries, axis=1) if entries else np.zeros((2, 0), np.int32)
        term_ids = postings[0]
        distinct_terms = np.fromiter((entry.shape[1] for entry in entries), np.int64, n_docs)
        row_starts = np.zeros(n_docs + 1, dtype=np.int64)
        np.cumsum(distinct_terms, out=row_starts[1:])
        frequency_sums = np.zeros(len(term_ids) + 1, dtype=np.int64)
        np.cumsum(postings[1], out=frequency_sums[1:])
        doc_lengths = frequency_sums[row_starts[1:]] - frequency_sums[row_starts[:-1]]
        average_length = max(float(doc_lengths.mean()) if n_docs else 0.0, 1e-9)

        doc_freqs = np.bincount(term_ids, minlength=n_terms)
        idf = np.log1p((n_docs - doc_freqs + 0.5) / (doc_freqs + 0.5)).astype(np.float32)
        length_norm = self.k1 * (1 - self.b + self.b * doc_lengths / average_length)
        term_freqs = postings[1].astype(np.float32)
        # float32 like bm25s: half the memory traffic of float64 on ~10M postings per 100k docs.
        weights = idf[term_ids] * term_freqs
        weights /= term_freqs + np.repeat(length_norm.astype(np.float32), distinct_terms)

        # Queries sum columns of a documents x terms matrix in CSC layout (postings grouped by
        # term); scipy's CSR-to-CSC conversion is a linear-time counting sort.
        import scipy.sparse as sp  # here, not at the top: only a search needs it

        matrix = sp.csr_matrix((weights, term_ids, row_starts), shape=(n_docs, n_terms)).tocsc()
        return _Built(row_ids=row_ids, data=matrix.data, indices=matrix.indices, indptr=matrix.indptr)

    def save(self, folder: Path) -> None:
        """Write the index to ``folder/bm25.npz`` atomically, creating ``folder`` if needed.

        The file holds only integer and byte arrays plus a JSON header (no pickle); a crash
        while saving leaves the previous file in place. Terms no longer used by any document
        are dropped from the saved vocabulary.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with self._lock:
            arrays = self._to_arrays()
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".bm25.", suffix=".npz.tmp", delete=False) as handle:
            temporary = Path(handle.name)
            try:
                np.savez(handle, **arrays)
                handle.flush()
                os.fsync(handle.fileno())
            except BaseException:
                handle.close()
                temporary.unlink(missing_ok=True)
                raise
        try:
            os.replace(temporary, folder / INDEX_FILE_NAME)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        _fsync_folder(folder)

    def _to_arrays(self) -> dict[str, np.ndarray]:
        ids = sorted(self._documents)
        entries = [self._documents[doc_id] for doc_id in ids]
        postings = np.concatenate(entries, axis=1) if entries else np.zeros((2, 0), np.int32)
        used = np.unique(postings[0])
        # Renumber the used terms 0..n-1 in their current order.
        new_term_id = np.full(len(self._vocabulary), -1, dtype=np.int64)
        new_term_id[used] = np.arange(len(used))
        terms_by_id = list(self._vocabulary)
        vocabulary = "\n".join(terms_by_id[term_id] for term_id in used)
        offsets = np.zeros(len(entries) + 1, dtype=np.int64)
        np.cumsum([entry.shape[1] for entry in entries], out=offsets[1:])
        header = {
            "format": "bm25",
            "format_version": FORMAT_VERSION,
            "tokenizer_version": TOKENIZER_VERSION,
            "k1": self.k1,
            "b": self.b,
            "language": self.language,
            "documents": len(ids),
            "terms": len(used),
        }
        return {
            "header": np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8),
            "ids": np.array(ids, dtype=np.int64),
            "offsets": offsets,
            "term_ids": new_term_id[postings[0]].astype(np.int32),
            "term_freqs": postings[1].astype(np.int32),
            "vocabulary": np.frombuffer(vocabulary.encode("utf-8"), dtype=np.uint8),
        }

    @classmethod
    def open(cls, folder: Path) -> Bm25Index:
        """Load the index that :meth:`save` wrote to ``folder``.

        Raises FileNotFoundError when ``folder/bm25.npz`` does not exist, and ValueError when
        the file is not a BM25 index this code can read (another format or tokenizer version:
        rebuild the index from the store).
        """
        path = Path(folder) / INDEX_FILE_NAME
        if not path.is_file():
            raise FileNotFoundError(f"no BM25 index in {folder}: {path.name} is missing")
        try:
            with np.load(path, allow_pickle=False) as stored:
                arrays = {name: stored[name] for name in stored.files}
            header = json.loads(arrays["header"].tobytes().decode("utf-8"))
        except (OSError, ValueError, KeyError) as error:
            raise ValueError(f"{path} is not a readable BM25 index: {error}") from error
        if header.get("format") != "bm25" or header.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{path} has format {header.get('format')!r} version "
                f"{header.get('format_version')!r}; this code reads bm25 version {FORMAT_VERSION}"
            )
        if header.get("tokenizer_version") != TOKENIZER_VERSION:
            raise ValueError(
                f"{path} was built with tokenizer version {header.get('tokenizer_version')}, "
                f"this code uses {TOKENIZER_VERSION}: rebuild the BM25 index"
            )
        index = cls(k1=header["k1"], b=header["b"], language=header["language"])
        ids, offsets = arrays["ids"], arrays["offsets"]
        term_ids, term_freqs = arrays["term_ids"], arrays["term_freqs"]
        vocabulary_text = arrays["vocabulary"].tobytes().decode("utf-8")
        terms = vocabulary_text.split("\n") if vocabulary_text else []
        consistent = (
            len(ids) == header["documents"]
            and len(terms) == header["terms"]
            and len(offsets) == len(ids) + 1
            and offsets[0] == 0
            and offsets[-1] == len(term_ids) == len(term_freqs)
            and bool(np.all(np.diff(offsets) >= 0))
            and (len(term_ids) == 0 or (term_ids.min() >= 0 and term_ids.max() < len(terms)))
        )
        if not consistent:
            raise ValueError(f"{path} is damaged: its arrays do not agree with each other")
        index._vocabulary = {term: term_id for term_id, term in enumerate(terms)}
        postings = np.stack([term_ids.astype(np.int32), term_freqs.astype(np.int32)])
        index._documents = {
            int(doc_id): postings[:, start:end]
            for doc_id, start, end in zip(ids.tolist(), offsets[:-1].tolist(), offsets[1:].tolist())
        }
        return index


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable: on POSIX a rename is only on disk once its folder is synced."""
    if os.name != "posix":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
